/* FULLY_CONNECTED in float32, AVX2: 4 rows at a time share each load of x.
 *
 * One 8-lane accumulator per row: lane l sums w[i] * x[i] over i = l (mod 8),
 * a multiply then an add (vmulps, vaddps; never FMA), exactly the lane sums of
 * docs/arithmetic.md 10. A K tail of r < 8 elements is loaded with vmaskmovps,
 * which reads only the r lanes: the others are 0 * 0 = +0, and adding +0 to a
 * lane sum leaves it unchanged (a sum that starts at +0 never becomes -0).
 * The lanes are then added in the spec's tree: high half onto low half gives
 * (a0+a4, a1+a5, a2+a6, a3+a7), then (s0+s2, s1+s3), then their sum. */
#include "avx2.h"

#if defined(__x86_64__) || defined(__i386__)

/* Loaded at tail_mask + 8 - r: the first r lanes all ones. */
static const int32_t tail_mask[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

static inline float reduce(__m256 a) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

#define ROW(r) a##r = _mm256_add_ps(a##r, _mm256_mul_ps(_mm256_loadu_ps(w + r * k + i), xv));
#define ROW_TAIL(r) a##r = _mm256_add_ps(a##r, _mm256_mul_ps(_mm256_maskload_ps(w + r * k + i, m), xv));

void kws_avx2_fully_connected_f32(const float *x, size_t k, const float *w, size_t n, const float *bias,
                                  float act_min, float act_max, float *y) {
  const size_t full = k & ~(size_t)7;
  const __m256i m = _mm256_loadu_si256((const __m256i *)(tail_mask + 8 - (k - full)));
  size_t o = 0;
  for (; o + 4 <= n; o += 4, w += 4 * k) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i < full; i += 8) {
      __m256 xv = _mm256_loadu_ps(x + i);
      ROW(0) ROW(1) ROW(2) ROW(3)
    }
    if (i < k) {
      __m256 xv = _mm256_maskload_ps(x + i, m);
      ROW_TAIL(0) ROW_TAIL(1) ROW_TAIL(2) ROW_TAIL(3)
    }
    y[o] = kws_dense_out_f32(reduce(a0), bias[o], act_min, act_max);
    y[o + 1] = kws_dense_out_f32(reduce(a1), bias[o + 1], act_min, act_max);
    y[o + 2] = kws_dense_out_f32(reduce(a2), bias[o + 2], act_min, act_max);
    y[o + 3] = kws_dense_out_f32(reduce(a3), bias[o + 3], act_min, act_max);
  }
  for (; o < n; o++, w += k) {
    __m256 a0 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i < full; i += 8) {
      __m256 xv = _mm256_loadu_ps(x + i);
      ROW(0)
    }
    if (i < k) {
      __m256 xv = _mm256_maskload_ps(x + i, m);
      ROW_TAIL(0)
    }
    y[o] = kws_dense_out_f32(reduce(a0), bias[o], act_min, act_max);
  }
}

KWS_AVX2_END
#endif
