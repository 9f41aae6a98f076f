/* Requantization of accumulator arrays, portable C. */
#include "portable.h"

void kws_portable_requantize_s32(const int32_t *acc, const int32_t *mult, const int32_t *shift, size_t n,
                                 int32_t *out) {
  for (size_t i = 0; i < n; i++) out[i] = kws_requant_s32(acc[i], mult[i], shift[i]);
}

void kws_portable_requantize_s64(const int64_t *acc, const int32_t *mult, const int32_t *shift, size_t n,
                                 int32_t *out) {
  for (size_t i = 0; i < n; i++) out[i] = kws_requant_s64(acc[i], mult[i], shift[i]);
}
