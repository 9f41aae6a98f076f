/* DEPTHWISE_CONV_2D in time, portable C: TFLM's reference loop for one output frame. */
#include "portable.h"

void kws_portable_depthwise_s8(const int8_t *x, size_t row_stride, size_t taps, size_t c, const int8_t *w,
                               const kws_epilogue *e, int8_t *y) {
  for (size_t ch = 0; ch < c; ch++) {
    int32_t acc = 0; /* |acc| <= 16384 * 128 * 128 = 2^28; the folded bias keeps the sum in int32 */
    for (size_t k = 0; k < taps; k++) acc += (int32_t)w[k * c + ch] * (int32_t)x[k * row_stride + ch];
    y[ch] = kws_epilogue_s8(acc, e, ch);
  }
}
