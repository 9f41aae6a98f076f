/* FULLY_CONNECTED in float32, portable C: the summation order of
 * docs/arithmetic.md 10 (8 lane sums, a fixed tree), which the SIMD kernels
 * follow too, so every backend gives the same bits. Built with
 * -ffp-contract=off: a fused multiply-add would round differently. */
#include "portable.h"

float kws_dot_f32_lanes(const float a[8]) { return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7])); }

void kws_portable_fully_connected_f32(const float *x, size_t k, const float *w, size_t n, const float *bias,
                                      float act_min, float act_max, float *y) {
  for (size_t o = 0; o < n; o++) {
    const float *row = w + o * k;
    float a[8] = {0};
    for (size_t i = 0; i < k; i++) a[i % 8] += row[i] * x[i];
    y[o] = kws_dense_out_f32(kws_dot_f32_lanes(a), bias[o], act_min, act_max);
  }
}
