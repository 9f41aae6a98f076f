/* FULLY_CONNECTED in float32, NEON: 4 rows at a time share each load of x.
 *
 * Two 4-lane accumulators per row hold the 8 lane sums of docs/arithmetic.md
 * 9 (lanes 0-3 and 4-7), each vmulq_f32 then vaddq_f32: never vfmaq_f32, whose
 * single rounding would give other bits. A K tail of r < 8 elements is added
 * lane by lane in C, into the lane i mod 8 it belongs to. The lanes are then
 * added in the spec's tree: (lo + hi), then (s0+s2, s1+s3), then their sum.
 *
 * AArch64 only: 32-bit Arm NEON arithmetic flushes subnormals to zero (the Advanced SIMD standard FPSCR
 * value), so its sums would differ from IEEE float32's; the armv7 neon backend keeps the portable kernel. */
#if defined(__aarch64__) || defined(KWS_NEON_SIMDE)
#include "neon.h"
#include "kernels.h"

static inline float reduce(float32x4_t lo, float32x4_t hi, const float *x, const float *row, size_t i, size_t k) {
  if (i < k) {
    float a[8];
    vst1q_f32(a, lo);
    vst1q_f32(a + 4, hi);
    for (size_t j = i; j < k; j++) a[j - i] += row[j] * x[j];
    lo = vld1q_f32(a);
    hi = vld1q_f32(a + 4);
  }
  float32x4_t s = vaddq_f32(lo, hi);
  float32x2_t t = vadd_f32(vget_low_f32(s), vget_high_f32(s));
  return vget_lane_f32(t, 0) + vget_lane_f32(t, 1);
}

#define ROW(r)                                                                 \
  l##r = vaddq_f32(l##r, vmulq_f32(vld1q_f32(w + r * k + i), xl));             \
  h##r = vaddq_f32(h##r, vmulq_f32(vld1q_f32(w + r * k + i + 4), xh));

void kws_neon_fully_connected_f32(const float *x, size_t k, const float *w, size_t n, const float *bias,
                                  float act_min, float act_max, float *y) {
  const size_t full = k & ~(size_t)7;
  size_t o = 0;
  for (; o + 4 <= n; o += 4, w += 4 * k) {
    float32x4_t l0 = vdupq_n_f32(0.0f), l1 = l0, l2 = l0, l3 = l0, h0 = l0, h1 = l0, h2 = l0, h3 = l0;
    for (size_t i = 0; i < full; i += 8) {
      float32x4_t xl = vld1q_f32(x + i), xh = vld1q_f32(x + i + 4);
      ROW(0) ROW(1) ROW(2) ROW(3)
    }
    y[o] = kws_dense_out_f32(reduce(l0, h0, x, w, full, k), bias[o], act_min, act_max);
    y[o + 1] = kws_dense_out_f32(reduce(l1, h1, x, w + k, full, k), bias[o + 1], act_min, act_max);
    y[o + 2] = kws_dense_out_f32(reduce(l2, h2, x, w + 2 * k, full, k), bias[o + 2], act_min, act_max);
    y[o + 3] = kws_dense_out_f32(reduce(l3, h3, x, w + 3 * k, full, k), bias[o + 3], act_min, act_max);
  }
  for (; o < n; o++, w += k) {
    float32x4_t l0 = vdupq_n_f32(0.0f), h0 = l0;
    for (size_t i = 0; i < full; i += 8) {
      float32x4_t xl = vld1q_f32(x + i), xh = vld1q_f32(x + i + 4);
      ROW(0)
    }
    y[o] = kws_dense_out_f32(reduce(l0, h0, x, w, full, k), bias[o], act_min, act_max);
  }
}
#endif
