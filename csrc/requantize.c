/* Requantization: TFLite Micro's MultiplyByQuantizedMultiplier, int64 (the int32 one, run in every epilogue, is
 * static inline in kwsint_internal.h).
 * See docs/arithmetic.md, "Requantization". */
#include "kwsint_internal.h"

int32_t kws_requant_s64(int64_t acc, int32_t multiplier, int32_t shift) {
  int64_t reduced = multiplier < 0x7FFF0000 ? ((int64_t)multiplier + (1 << 15)) >> 16 : 0x7FFF;
  int total_shift = 15 - shift;
  int64_t result = (acc * reduced + ((int64_t)1 << (total_shift - 1))) >> total_shift;
  return kws_wrap32((uint32_t)(uint64_t)result);
}
