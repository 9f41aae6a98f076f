/* The AArch64-only NEON intrinsics the kernels use, written for 32-bit Arm (ARMv7-A NEON) with the
 * instructions AArch32 has. Each gives exactly the AArch64 instruction's result (integer lanes, wrapping
 * adds as ADDP / ADDV do, table lookups that give 0 for an index past the table as TBL does); the
 * reference vectors check them under qemu-arm (tests/test_aarch64.py, the armv7 runs). neon.h includes this
 * only on 32-bit Arm. */
#ifndef KWSINT_NEON_A32_H
#define KWSINT_NEON_A32_H

/* ..._high: the same operation on the upper halves */
static inline int16x8_t vmull_high_s8(int8x16_t a, int8x16_t b) { return vmull_s8(vget_high_s8(a), vget_high_s8(b)); }
static inline int32x4_t vmull_high_s16(int16x8_t a, int16x8_t b) {
  return vmull_s16(vget_high_s16(a), vget_high_s16(b));
}
static inline int64x2_t vmull_high_s32(int32x4_t a, int32x4_t b) {
  return vmull_s32(vget_high_s32(a), vget_high_s32(b));
}
static inline int16x8_t vmlal_high_s8(int16x8_t acc, int8x16_t a, int8x16_t b) {
  return vmlal_s8(acc, vget_high_s8(a), vget_high_s8(b));
}
static inline int32x4_t vmlal_high_s16(int32x4_t acc, int16x8_t a, int16x8_t b) {
  return vmlal_s16(acc, vget_high_s16(a), vget_high_s16(b));
}
static inline int64x2_t vmlal_high_s32(int64x2_t acc, int32x4_t a, int32x4_t b) {
  return vmlal_s32(acc, vget_high_s32(a), vget_high_s32(b));
}
static inline int32x4_t vmovl_high_s16(int16x8_t a) { return vmovl_s16(vget_high_s16(a)); }
static inline int64x2_t vmovl_high_s32(int32x4_t a) { return vmovl_s32(vget_high_s32(a)); }
static inline uint32x4_t vmovl_high_u16(uint16x8_t a) { return vmovl_u16(vget_high_u16(a)); }
static inline int16x8_t vaddw_high_s8(int16x8_t a, int8x16_t b) { return vaddw_s8(a, vget_high_s8(b)); }
static inline uint16x8_t vaddw_high_u8(uint16x8_t a, uint8x16_t b) { return vaddw_u8(a, vget_high_u8(b)); }
static inline int32x4_t vaddw_high_s16(int32x4_t a, int16x8_t b) { return vaddw_s16(a, vget_high_s16(b)); }
static inline int64x2_t vaddw_high_s32(int64x2_t a, int32x4_t b) { return vaddw_s32(a, vget_high_s32(b)); }

/* ADDP: pairwise sums of a's lanes, then b's: [a0 + a1, a2 + a3, b0 + b1, b2 + b3] */
static inline int32x4_t vpaddq_s32(int32x4_t a, int32x4_t b) {
  return vcombine_s32(vpadd_s32(vget_low_s32(a), vget_high_s32(a)), vpadd_s32(vget_low_s32(b), vget_high_s32(b)));
}
static inline int64x2_t vpaddq_s64(int64x2_t a, int64x2_t b) {
  return vcombine_s64(vadd_s64(vget_low_s64(a), vget_high_s64(a)), vadd_s64(vget_low_s64(b), vget_high_s64(b)));
}

/* ADDV: the sum of the four lanes, wrapping as int32 */
static inline int32_t vaddvq_s32(int32x4_t a) {
  int32x2_t s = vpadd_s32(vget_low_s32(a), vget_high_s32(a));
  return vget_lane_s32(vpadd_s32(s, s), 0);
}

/* TBL with a 16-byte table: VTBL on its two halves; an index of 16 or more gives 0 in both */
static inline uint8x16_t vqtbl1q_u8(uint8x16_t t, uint8x16_t idx) {
  uint8x8x2_t tab = {{vget_low_u8(t), vget_high_u8(t)}};
  return vcombine_u8(vtbl2_u8(tab, vget_low_u8(idx)), vtbl2_u8(tab, vget_high_u8(idx)));
}
static inline int8x16_t vqtbl1q_s8(int8x16_t t, uint8x16_t idx) {
  int8x8x2_t tab = {{vget_low_s8(t), vget_high_s8(t)}};
  int8x16_t i = vreinterpretq_s8_u8(idx); /* VTBL reads each index as an unsigned byte */
  return vcombine_s8(vtbl2_s8(tab, vget_low_s8(i)), vtbl2_s8(tab, vget_high_s8(i)));
}

#endif
