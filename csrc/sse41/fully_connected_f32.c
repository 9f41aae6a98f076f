/* FULLY_CONNECTED in float32, SSE: 4 rows at a time share each load of x.
 *
 * Two 4-lane accumulators per row hold the 8 lane sums of docs/arithmetic.md
 * 9 (lanes 0-3 and 4-7), each a multiply then an add (mulps, addps). A K tail
 * of r < 8 elements is added lane by lane in C, into the lane i mod 8 it
 * belongs to. The lanes are then added in the spec's tree: (lo + hi), then
 * (s0+s2, s1+s3), then their sum. Only SSE instructions are needed. */
#include "sse41.h"

#if defined(__x86_64__) || defined(__i386__)

static inline float reduce(__m128 lo, __m128 hi, const float *x, const float *row, size_t i, size_t k) {
  if (i < k) {
    float a[8];
    _mm_storeu_ps(a, lo);
    _mm_storeu_ps(a + 4, hi);
    for (size_t j = i; j < k; j++) a[j - i] += row[j] * x[j];
    lo = _mm_loadu_ps(a);
    hi = _mm_loadu_ps(a + 4);
  }
  __m128 s = _mm_add_ps(lo, hi);
  __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

#define ROW(r)                                                                         \
  l##r = _mm_add_ps(l##r, _mm_mul_ps(_mm_loadu_ps(w + r * k + i), xl));                \
  h##r = _mm_add_ps(h##r, _mm_mul_ps(_mm_loadu_ps(w + r * k + i + 4), xh));

void kws_sse41_fully_connected_f32(const float *x, size_t k, const float *w, size_t n, const float *bias,
                                   float act_min, float act_max, float *y) {
  const size_t full = k & ~(size_t)7;
  size_t o = 0;
  for (; o + 4 <= n; o += 4, w += 4 * k) {
    __m128 l0 = _mm_setzero_ps(), l1 = l0, l2 = l0, l3 = l0, h0 = l0, h1 = l0, h2 = l0, h3 = l0;
    for (size_t i = 0; i < full; i += 8) {
      __m128 xl = _mm_loadu_ps(x + i), xh = _mm_loadu_ps(x + i + 4);
      ROW(0) ROW(1) ROW(2) ROW(3)
    }
    y[o] = kws_dense_out_f32(reduce(l0, h0, x, w, full, k), bias[o], act_min, act_max);
    y[o + 1] = kws_dense_out_f32(reduce(l1, h1, x, w + k, full, k), bias[o + 1], act_min, act_max);
    y[o + 2] = kws_dense_out_f32(reduce(l2, h2, x, w + 2 * k, full, k), bias[o + 2], act_min, act_max);
    y[o + 3] = kws_dense_out_f32(reduce(l3, h3, x, w + 3 * k, full, k), bias[o + 3], act_min, act_max);
  }
  for (; o < n; o++, w += k) {
    __m128 l0 = _mm_setzero_ps(), h0 = l0;
    for (size_t i = 0; i < full; i += 8) {
      __m128 xl = _mm_loadu_ps(x + i), xh = _mm_loadu_ps(x + i + 4);
      ROW(0)
    }
    y[o] = kws_dense_out_f32(reduce(l0, h0, x, w, full, k), bias[o], act_min, act_max);
  }
}

KWS_SSE41_END
#endif
