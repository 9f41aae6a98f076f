/* Folding the input zero point into the bias, once per layer (or per op call). */
#include "kwsint_internal.h"

void kws_fold_bias_s32(const int32_t *bias, kws_codes w, size_t n, size_t k, int32_t zp, int32_t *out) {
  for (size_t o = 0; o < n; o++) {
    int32_t row_sum = 0; /* |row_sum| <= 127 * 16384 */
    for (size_t i = 0; i < k; i++) row_sum += kws_code_at(w, o * k + i);
    out[o] = (bias ? bias[o] : 0) - zp * row_sum;
  }
}

void kws_fold_bias_s64(const int64_t *bias, size_t n, int64_t *out) {
  for (size_t o = 0; o < n; o++) out[o] = bias ? bias[o] : 0; /* int16 activations have zero point 0 */
}
