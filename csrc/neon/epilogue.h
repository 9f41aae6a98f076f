/* The vector requantization epilogue shared by the NEON kernels: docs/arithmetic.md
 * section 3 on four lanes at a time, each lane with its own multiplier and shift,
 * then the output zero point and the fused clamp. Included only by the .c files of csrc/neon,
 * which compile it only for aarch64 or SIMDe. */
#ifndef KWSINT_NEON_EPILOGUE_H
#define KWSINT_NEON_EPILOGUE_H

#include <string.h>

#include "neon.h"

/* requantize_s32 (3.1), bit for bit, for any int32 acc and multiplier and shift in [-31, 30]:
 *  - SSHL by max(shift, 0) (0..30) is `acc * 2^left` modulo 2^32: bits shifted out are
 *    lost, which is the wrap the spec prescribes;
 *  - SQRDMULH computes saturate((2ab + 2^31) >> 32) = floor((ab + 2^30) / 2^31), which
 *    equals gemmlowp's SaturatingRoundingDoublingHighMul for every pair (for ab < 0,
 *    trunc((ab + 1 - 2^30) / 2^31) = floor((ab + 2^30) / 2^31)), and it saturates
 *    exactly at -2^31 * -2^31 -> 2^31 - 1 as SRDHM does;
 *  - RoundingDivideByPOT(x, e) is gemmlowp's NEON form: SRSHL by -e rounds ties up,
 *    (x + 2^(e-1)) >> e computed without overflow; subtracting 1 from negative x first
 *    turns that into ties away from zero. x >= -2^31 + 1 (ab >= -2^31 * (2^31 - 1)), so
 *    x - 1 does not wrap and SSRA (x + (fixup >> 31)) needs no saturation. For e = 0 the
 *    fixup and the shift are no-ops.
 *  - The fixup is -1 when e > 0 and the signs of a = acc << left and mult differ, taken from
 *    a ^ mult rather than from x so that it is computed alongside SQRDMULH instead of after it
 *    (an in-order core waits for each result). Same result: when the signs agree ab >= 0, so
 *    x >= 0 and gemmlowp's fixup is 0 too; when they differ ab <= 0, so x <= 0: x < 0 gets -1
 *    as in gemmlowp, and x = 0 gives SRSHL(-1, -e) = (2^(e-1) - 1) >> e = 0, as for 0. */
static inline int32x4_t kws_neon_requant_s32(int32x4_t acc, int32x4_t mult, int32x4_t shift) {
  const int32x4_t zero = vdupq_n_s32(0);
  int32x4_t left = vmaxq_s32(shift, zero);      /* 0..30 */
  int32x4_t neg_right = vminq_s32(shift, zero); /* -31..0, i.e. -exponent */
  int32x4_t a = vshlq_s32(acc, left);
  int32x4_t fixup = vandq_s32(veorq_s32(a, mult), neg_right); /* sign bit: the fixup */
  return vrshlq_s32(vsraq_n_s32(vqrdmulhq_s32(a, mult), fixup, 31), neg_right);
}

/* requantize_s64 (3.2) for lanes acc01 = {acc0, acc1}, acc23 = {acc2, acc3}, bit for bit
 * for |acc| < 2^47, any int32 multiplier and shift in [-31, 7]. AArch64 has no 64-bit
 * vector multiply, so acc * reduced is assembled from 32x32->64 products:
 *  - reduced = min(SRSHR(mult, 16), 0x7FFF): SRSHR is (mult + 2^15) >> 16 in wider
 *    precision (no overflow near INT32_MAX); below 0x7FFF0000 that is at most 0x7FFF, so
 *    the min only replaces the values of multipliers >= 0x7FFF0000, by 0x7FFF as the
 *    spec says. |reduced| <= 2^15.
 *  - acc = hi * 2^31 + lo with lo = acc & (2^31 - 1) in [0, 2^31) and hi = acc >> 31,
 *    |hi| <= 2^16: both fit int32 lanes, so SMULL/SMLAL give hi * reduced and
 *    lo * reduced exactly, and (hi * reduced) * 2^31 + lo * reduced is the exact product
 *    acc * reduced, |.| < 2^62, with every partial within int64.
 *  - SRSHL by -(15 - shift) (total shift 8..46) is (prod + 2^(ts-1)) >> ts, the spec's
 *    single rounding, and XTN keeps the low 32 bits: the spec's wrap to int32. */
static inline int32x4_t kws_neon_requant_s64(int64x2_t acc01, int64x2_t acc23, int32x4_t mult, int32x4_t shift) {
  const int64x2_t low31 = vdupq_n_s64(0x7FFFFFFF);
  int32x4_t red = vminq_s32(vrshrq_n_s32(mult, 16), vdupq_n_s32(0x7FFF));
  int32x4_t hi = vcombine_s32(vmovn_s64(vshrq_n_s64(acc01, 31)), vmovn_s64(vshrq_n_s64(acc23, 31)));
  int32x4_t lo = vcombine_s32(vmovn_s64(vandq_s64(acc01, low31)), vmovn_s64(vandq_s64(acc23, low31)));
  int64x2_t p01 = vshlq_n_s64(vmull_s32(vget_low_s32(hi), vget_low_s32(red)), 31);
  int64x2_t p23 = vshlq_n_s64(vmull_high_s32(hi, red), 31);
  p01 = vmlal_s32(p01, vget_low_s32(lo), vget_low_s32(red));
  p23 = vmlal_high_s32(p23, lo, red);
  int32x4_t neg_total = vsubq_s32(shift, vdupq_n_s32(15)); /* -(15 - shift): -46..-8 */
  p01 = vrshlq_s64(p01, vmovl_s32(vget_low_s32(neg_total)));
  p23 = vrshlq_s64(p23, vmovl_high_s32(neg_total));
  return vcombine_s32(vmovn_s64(p01), vmovn_s64(p23));
}

/* Output zero point and clamp, broadcast once per kernel call. */
typedef struct {
  int32x4_t zp, lo, hi;
} kws_neon_out;

static inline kws_neon_out kws_neon_out_params(const kws_requant_params *p) {
  kws_neon_out o = {vdupq_n_s32(p->output_zero_point), vdupq_n_s32(p->act_min), vdupq_n_s32(p->act_max)};
  return o;
}

/* clamp(v + zp (wraps: ADD is modulo 2^32), act_min, act_max): every lane within the output type. */
static inline int32x4_t kws_neon_clamp(int32x4_t v, kws_neon_out o) {
  return vminq_s32(vmaxq_s32(vaddq_s32(v, o.zp), o.lo), o.hi);
}

/* kws_neon_clamp narrowed to int16 lanes: XTN drops nothing. */
static inline int16x4_t kws_neon_output(int32x4_t v, kws_neon_out o) {
  return vmovn_s32(kws_neon_clamp(v, o));
}

/* base[i .. min(i + lanes, end)) into a vector, the other lanes 0: the parameters of
 * a partial block, read without touching (or pointing) past end. */
static inline int32x4_t kws_neon_load_s32_part(const int32_t *base, size_t i, size_t end) {
  int32_t tmp[4] = {0, 0, 0, 0};
  if (i < end) memcpy(tmp, base + i, (end - i < 4 ? end - i : 4) * sizeof *base);
  return vld1q_s32(tmp);
}

static inline int64x2_t kws_neon_load_s64_part(const int64_t *base, size_t i, size_t end) {
  int64_t tmp[2] = {0, 0};
  if (i < end) memcpy(tmp, base + i, (end - i < 2 ? end - i : 2) * sizeof *base);
  return vld1q_s64(tmp);
}

#endif
