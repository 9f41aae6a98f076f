/* Requantization of accumulator arrays for NEON (kwsint.ops.requantize), int32 and
 * int64. Bit-exact with csrc/requantize.c; the lane arithmetic and why it is exact are
 * in epilogue.h. */
#if defined(__ARM_NEON) || defined(KWS_NEON_SIMDE)
#include "epilogue.h"
#include "kernels.h"

/* Any int32 acc and multiplier (this entry point accepts negative multipliers too),
 * shift in [-31, 30]: kws_neon_requant_s32 is exact on all of it, including the one
 * saturating case SRDHM(INT32_MIN, INT32_MIN). */
void kws_neon_requantize_s32(const int32_t *acc, const int32_t *mult, const int32_t *shift, size_t n,
                             int32_t *out) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4)
    vst1q_s32(out + i, kws_neon_requant_s32(vld1q_s32(acc + i), vld1q_s32(mult + i), vld1q_s32(shift + i)));
  if (i < n) { /* the last n % 4 through zero-padded lanes */
    int32_t r[4];
    vst1q_s32(r, kws_neon_requant_s32(kws_neon_load_s32_part(acc, i, n), kws_neon_load_s32_part(mult, i, n),
                                      kws_neon_load_s32_part(shift, i, n)));
    memcpy(out + i, r, (n - i) * sizeof *r);
  }
}

/* |acc| < 2^47, multiplier >= 0, shift in [-31, 7] (checked by ops.c). Vectorized
 * rather than left to the scalar code: the 64-bit product that AArch64 vectors lack is
 * built from two 32x32->64 multiplies (see kws_neon_requant_s64), which the affine and
 * 16x8 kernels need anyway. */
void kws_neon_requantize_s64(const int64_t *acc, const int32_t *mult, const int32_t *shift, size_t n,
                             int32_t *out) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4)
    vst1q_s32(out + i, kws_neon_requant_s64(vld1q_s64(acc + i), vld1q_s64(acc + i + 2), vld1q_s32(mult + i),
                                            vld1q_s32(shift + i)));
  if (i < n) {
    int32_t r[4];
    vst1q_s32(r, kws_neon_requant_s64(kws_neon_load_s64_part(acc, i, n), kws_neon_load_s64_part(acc, i + 2, n),
                                      kws_neon_load_s32_part(mult, i, n), kws_neon_load_s32_part(shift, i, n)));
    memcpy(out + i, r, (n - i) * sizeof *r);
  }
}
#endif
