/* DEPTHWISE_CONV_2D in time, portable C: TFLM's reference sums for one output frame. Channels go in blocks of
 * 64 with the taps outside, so each tap's row and weights are read contiguously (and the compiler can vectorise
 * across channels); the sums are the same integers in another order (int32 addition is exact here). */
#include "portable.h"

enum { BLOCK = 64 };

void kws_portable_depthwise_s8(const int8_t *x, size_t row_stride, size_t taps, size_t c, const int8_t *w,
                               const kws_epilogue *e, int8_t *y) {
  for (size_t c0 = 0; c0 < c; c0 += BLOCK) {
    size_t n = c - c0 < BLOCK ? c - c0 : BLOCK;
    int32_t acc[BLOCK] = {0}; /* |acc| <= 16384 * 128 * 127 < 2^28; the folded bias keeps the sum in int32 */
    for (size_t k = 0; k < taps; k++) {
      const int8_t *xr = x + k * row_stride + c0, *wr = w + k * c + c0;
      for (size_t i = 0; i < n; i++) acc[i] += (int32_t)wr[i] * (int32_t)xr[i];
    }
    for (size_t i = 0; i < n; i++) y[c0 + i] = kws_epilogue_s8(acc[i], e, c0 + i);
  }
}
