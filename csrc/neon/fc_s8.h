/* Pieces shared by the two int8 FULLY_CONNECTED kernels (fully_connected.c,
 * ARMv8.0, and fully_connected_dot.c, SDOT): the K tail and the per-block
 * epilogue. Both kernels compute 16 K per step, the ARMv8.0 kernel in passes of 8
 * rows, two per group of 16, the SDOT kernel in passes of 4 rows, two per group of 8. */
#ifndef KWSINT_NEON_FC_S8_H
#define KWSINT_NEON_FC_S8_H

#include "epilogue.h"

/* The K % 16 elements after the whole 16-byte steps, prepared once per call.
 * Vector tails never read outside x or the weight rows: they step back so the
 * load ends at element k, and zero the x lanes that the whole steps already
 * covered, so those products are w * 0 = 0.
 *   KWS_TAIL_NONE:  k % 16 == 0.
 *   KWS_TAIL_16:    k > 16: one 16-byte step at k - 16, x16 = x[k-16..k) masked.
 *   KWS_TAIL_8:     8 <= k < 16: x8a = x[0..8), x8b = x[k-8..k) masked (zero when k == 8).
 *   KWS_TAIL_SCALAR k < 8: plain C. */
enum { KWS_TAIL_NONE, KWS_TAIL_16, KWS_TAIL_8, KWS_TAIL_SCALAR };

typedef struct {
  size_t k16; /* elements covered by whole 16-byte steps */
  int mode;
  int8x16_t x16;
  int8x8_t x8a, x8b;
} kws_neon_xtail_s8;

static inline kws_neon_xtail_s8 kws_neon_xtail_s8_make(const int8_t *x, size_t k) {
  static const uint8_t iota[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  kws_neon_xtail_s8 t;
  t.k16 = k & ~(size_t)15;
  t.x16 = vdupq_n_s8(0);
  t.x8a = t.x8b = vdup_n_s8(0);
  if (k == t.k16) {
    t.mode = KWS_TAIL_NONE;
  } else if (k > 16) { /* keep the last k % 16 lanes */
    uint8x16_t keep = vcgeq_u8(vld1q_u8(iota), vdupq_n_u8((uint8_t)(16 - (k - t.k16))));
    t.mode = KWS_TAIL_16;
    t.x16 = vandq_s8(vld1q_s8(x + k - 16), vreinterpretq_s8_u8(keep));
  } else if (k >= 8) { /* keep the last k - 8 lanes of x[k-8..k) */
    uint8x8_t keep = vcge_u8(vld1_u8(iota), vdup_n_u8((uint8_t)(16 - k)));
    t.mode = KWS_TAIL_8;
    t.x8a = vld1_s8(x);
    t.x8b = vand_s8(vld1_s8(x + k - 8), vreinterpret_s8_u8(keep));
  } else {
    t.mode = KWS_TAIL_SCALAR;
  }
  return t;
}

/* Adds the tail of one row to its accumulator. Each int16 lane gets at most two
 * products (SMULL + SMLAL), |.| <= 2 * 127 * 128 = 32512 < 2^15, as in the main step. */
static inline int32x4_t kws_neon_tail_s8(int32x4_t acc, const int8_t *row, const int8_t *x, size_t k,
                                         const kws_neon_xtail_s8 *t) {
  switch (t->mode) {
  case KWS_TAIL_16: {
    int8x16_t wv = vld1q_s8(row + k - 16);
    int16x8_t pr = vmull_s8(vget_low_s8(wv), vget_low_s8(t->x16));
    return vpadalq_s16(acc, vmlal_high_s8(pr, wv, t->x16));
  }
  case KWS_TAIL_8: {
    int16x8_t pr = vmull_s8(vld1_s8(row), t->x8a);
    return vpadalq_s16(acc, vmlal_s8(pr, vld1_s8(row + k - 8), t->x8b));
  }
  case KWS_TAIL_SCALAR: {
    int32_t s = 0;
    for (size_t i = 0; i < k; i++) s += (int32_t)row[i] * (int32_t)x[i];
    return vaddq_s32(acc, vsetq_lane_s32(s, vdupq_n_s32(0), 0));
  }
  default:
    return acc;
  }
}

/* The output zero points and clamps of an epilogue, broadcast once per kernel call: out[0] for
 * the dense layer, out[1] for the fused affine layer (if any). */
static inline void kws_neon_fc_out_params(const kws_epilogue *e, kws_neon_out out[2]) {
  out[0] = kws_neon_out_params(e->p);
  out[1] = e->affine_w ? kws_neon_out_params(e->affine_p) : out[0];
}

/* Four channels' requantization, zero point and clamp, as int32 lanes (within the output
 * type: no narrowing round trip on the way to the fused affine); channels o .. o + lanes - 1
 * (lanes 0..4) are used, the other lanes have bias, multiplier and shift 0. Tested as
 * lanes == 4, not as o + 4 <= end, so that GCC folds it for a whole group (lanes constant):
 * with no branch between them, the group's requantization chains interleave. */
static inline int32x4_t kws_neon_requant4(int32x4_t acc, const int32_t *bias, const kws_requant_params *p,
                                          kws_neon_out out, size_t o, size_t lanes) {
  int32x4_t b, m, e;
  size_t end = o + lanes;
  if (lanes == 4) {
    b = vld1q_s32(bias + o), m = vld1q_s32(p->multiplier + o), e = vld1q_s32(p->shift + o);
  } else {
    b = kws_neon_load_s32_part(bias, o, end), m = kws_neon_load_s32_part(p->multiplier, o, end);
    e = kws_neon_load_s32_part(p->shift, o, end);
  }
  return kws_neon_clamp(kws_neon_requant_s32(vaddq_s32(acc, b), m, e), out);
}

/* Rows o .. o + r - 1 (r in 1..8) from their dot products s0 (rows o..o+3) and s1
 * (o+4..o+7): kws_epilogue (bias, requantization, zero point, clamp, and the fused
 * affine layer if any), then store r int8s. bias + dot is exact in int32: |dot| <=
 * 16384 * 127 * 128 < 2^28 and |folded bias| <= 2^30 + 2^28 (kwsint_internal.h), so
 * |sum| < 2^31; the affine's w * v is at most 127 * 128. Always inlined: called out of line
 * (as GCC chose for the partial groups' sake) it would take its sums through memory and
 * save registers per group. */
static inline __attribute__((always_inline)) void kws_neon_fc_s8_finish(int32x4_t s0, int32x4_t s1,
                                                                         const kws_epilogue *e,
                                                                         const kws_neon_out *out, size_t o, size_t r,
                                                                         int8_t *y) {
  size_t lanes0 = r < 4 ? r : 4, lanes1 = r > 4 ? r - 4 : 0;
  int32x4_t v0 = kws_neon_requant4(s0, e->bias, e->p, out[0], o, lanes0);
  int32x4_t v1 = kws_neon_requant4(s1, e->bias, e->p, out[0], o + 4, lanes1);
  if (e->affine_w) {
    int8x8_t w8;
    if (r == 8) {
      w8 = vld1_s8(e->affine_w + o);
    } else {
      int8_t wt[8] = {0};
      memcpy(wt, e->affine_w + o, r);
      w8 = vld1_s8(wt);
    }
    int16x8_t w = vmovl_s8(w8);
    v0 = kws_neon_requant4(vmulq_s32(vmovl_s16(vget_low_s16(w)), v0), e->affine_bias, e->affine_p, out[1], o, lanes0);
    v1 = kws_neon_requant4(vmulq_s32(vmovl_high_s16(w), v1), e->affine_bias, e->affine_p, out[1], o + 4, lanes1);
  }
  int8x8_t v = vmovn_s16(vcombine_s16(vmovn_s32(v0), vmovn_s32(v1))); /* clamped: within int8 */
  if (r == 8) {
    vst1_s8(y + o, v);
  } else {
    int8_t tmp[8];
    vst1_s8(tmp, v);
    memcpy(y + o, tmp, r);
  }
}

/* Rows o .. o + r - 1 (r in 1..16) from their dot products s[0] (rows o..o+3) .. s[3]
 * (o+12..o+15): kws_neon_fc_s8_finish for 16 rows, with its bounds. Four requantization
 * chains in flight instead of two: an in-order core waits out each result's latency, which
 * the other chains' instructions fill. */
static inline __attribute__((always_inline)) void kws_neon_fc_s8_finish16(const int32x4_t s[4], const kws_epilogue *e,
                                                                           const kws_neon_out *out, size_t o, size_t r,
                                                                           int8_t *y) {
  size_t l0 = r < 4 ? r : 4, l1 = r <= 4 ? 0 : r < 8 ? r - 4 : 4;
  size_t l2 = r <= 8 ? 0 : r < 12 ? r - 8 : 4, l3 = r <= 12 ? 0 : r - 12;
  int32x4_t v0 = kws_neon_requant4(s[0], e->bias, e->p, out[0], o, l0);
  int32x4_t v1 = kws_neon_requant4(s[1], e->bias, e->p, out[0], o + 4, l1);
  int32x4_t v2 = kws_neon_requant4(s[2], e->bias, e->p, out[0], o + 8, l2);
  int32x4_t v3 = kws_neon_requant4(s[3], e->bias, e->p, out[0], o + 12, l3);
  if (e->affine_w) {
    int8x16_t w8;
    if (r == 16) {
      w8 = vld1q_s8(e->affine_w + o);
    } else {
      int8_t wt[16] = {0};
      memcpy(wt, e->affine_w + o, r);
      w8 = vld1q_s8(wt);
    }
    int16x8_t wl = vmovl_s8(vget_low_s8(w8)), wh = vmovl_s8(vget_high_s8(w8));
    v0 = kws_neon_requant4(vmulq_s32(vmovl_s16(vget_low_s16(wl)), v0), e->affine_bias, e->affine_p, out[1], o, l0);
    v1 = kws_neon_requant4(vmulq_s32(vmovl_high_s16(wl), v1), e->affine_bias, e->affine_p, out[1], o + 4, l1);
    v2 = kws_neon_requant4(vmulq_s32(vmovl_s16(vget_low_s16(wh)), v2), e->affine_bias, e->affine_p, out[1], o + 8, l2);
    v3 = kws_neon_requant4(vmulq_s32(vmovl_high_s16(wh), v3), e->affine_bias, e->affine_p, out[1], o + 12, l3);
  }
  int8x16_t v = vcombine_s8(vmovn_s16(vcombine_s16(vmovn_s32(v0), vmovn_s32(v1))),
                            vmovn_s16(vcombine_s16(vmovn_s32(v2), vmovn_s32(v3)))); /* clamped: within int8 */
  if (r == 16) {
    vst1q_s8(y + o, v);
  } else {
    int8_t tmp[16];
    vst1q_s8(tmp, v);
    memcpy(y + o, tmp, r);
  }
}

/* Row o + j for j = 0..3, or the last row for rows past the end (their results
 * are computed and discarded, so a partial block needs no second code path). */
static inline const int8_t *kws_neon_row(const int8_t *w, size_t k, size_t n, size_t o, size_t j) {
  return w + (o + j < n ? o + j : n - 1) * k;
}

#endif
