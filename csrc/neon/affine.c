/* Per-channel affine (DEPTHWISE_CONV_2D 1x1) for NEON, int8 and 16x8. Bit-exact with
 * csrc/portable/affine.c. */
#if defined(__ARM_NEON) || defined(KWS_NEON_SIMDE)
#include "epilogue.h"
#include "kernels.h"

/* 16 channels: SMULL/SMULL2 of w and x into int16 lanes, SADDW/SADDW2 onto the folded
 * bias. Exact: |w * x| <= 127 * 128 = 16256 fits int16, and |bias + w * x| <=
 * 2^30 + 2^28 + 16256 < 2^31 (folded bias bound, kwsint_internal.h). */
static inline void affine_s8_16(const int8_t *x, const int8_t *w, const int32_t *bias, const int32_t *mult,
                                const int32_t *shift, kws_neon_out out, int8_t *y) {
  int8x16_t xv = vld1q_s8(x), wv = vld1q_s8(w);
  int16x8_t pl = vmull_s8(vget_low_s8(wv), vget_low_s8(xv)), ph = vmull_high_s8(wv, xv);
  int32x4_t a0 = vaddw_s16(vld1q_s32(bias), vget_low_s16(pl));
  int32x4_t a1 = vaddw_high_s16(vld1q_s32(bias + 4), pl);
  int32x4_t a2 = vaddw_s16(vld1q_s32(bias + 8), vget_low_s16(ph));
  int32x4_t a3 = vaddw_high_s16(vld1q_s32(bias + 12), ph);
  int16x4_t v0 = kws_neon_output(kws_neon_requant_s32(a0, vld1q_s32(mult), vld1q_s32(shift)), out);
  int16x4_t v1 = kws_neon_output(kws_neon_requant_s32(a1, vld1q_s32(mult + 4), vld1q_s32(shift + 4)), out);
  int16x4_t v2 = kws_neon_output(kws_neon_requant_s32(a2, vld1q_s32(mult + 8), vld1q_s32(shift + 8)), out);
  int16x4_t v3 = kws_neon_output(kws_neon_requant_s32(a3, vld1q_s32(mult + 12), vld1q_s32(shift + 12)), out);
  vst1q_s8(y, vcombine_s8(vmovn_s16(vcombine_s16(v0, v1)), vmovn_s16(vcombine_s16(v2, v3))));
}

void kws_neon_affine_s8(const int8_t *x, size_t n, const int8_t *w, const int32_t *bias,
                        const kws_requant_params *p, int8_t *y) {
  kws_neon_out out = kws_neon_out_params(p);
  size_t c = 0;
  for (; c + 16 <= n; c += 16) affine_s8_16(x + c, w + c, bias + c, p->multiplier + c, p->shift + c, out, y + c);
  if (c < n) { /* the last n % 16 channels through zero-padded copies */
    size_t r = n - c;
    int8_t xt[16] = {0}, wt[16] = {0}, yt[16];
    int32_t bt[16] = {0}, mt[16] = {0}, st[16] = {0};
    memcpy(xt, x + c, r), memcpy(wt, w + c, r);
    memcpy(bt, bias + c, r * sizeof *bt), memcpy(mt, p->multiplier + c, r * sizeof *mt);
    memcpy(st, p->shift + c, r * sizeof *st);
    affine_s8_16(xt, wt, bt, mt, st, out, yt);
    memcpy(y + c, yt, r);
  }
}

/* 8 channels: SXTL w to int16, SMULL/SMULL2 with x into int32 lanes, SADDW/SADDW2 onto
 * the int64 bias. Exact: |w * x| <= 127 * 32768 < 2^22 fits int32, and
 * |bias + w * x| < 2^46 + 2^22 < 2^47, the domain of the s64 requantization. */
static inline void affine_s16_8(const int16_t *x, const int8_t *w, const int64_t *bias, const int32_t *mult,
                                const int32_t *shift, kws_neon_out out, int16_t *y) {
  int16x8_t xv = vld1q_s16(x), wv = vmovl_s8(vld1_s8(w));
  int32x4_t pl = vmull_s16(vget_low_s16(wv), vget_low_s16(xv)), ph = vmull_high_s16(wv, xv);
  int64x2_t a0 = vaddw_s32(vld1q_s64(bias), vget_low_s32(pl));
  int64x2_t a1 = vaddw_high_s32(vld1q_s64(bias + 2), pl);
  int64x2_t a2 = vaddw_s32(vld1q_s64(bias + 4), vget_low_s32(ph));
  int64x2_t a3 = vaddw_high_s32(vld1q_s64(bias + 6), ph);
  int16x4_t v0 = kws_neon_output(kws_neon_requant_s64(a0, a1, vld1q_s32(mult), vld1q_s32(shift)), out);
  int16x4_t v1 = kws_neon_output(kws_neon_requant_s64(a2, a3, vld1q_s32(mult + 4), vld1q_s32(shift + 4)), out);
  vst1q_s16(y, vcombine_s16(v0, v1));
}

void kws_neon_affine_s16(const int16_t *x, size_t n, const int8_t *w, const int64_t *bias,
                         const kws_requant_params *p, int16_t *y) {
  kws_neon_out out = kws_neon_out_params(p);
  size_t c = 0;
  for (; c + 8 <= n; c += 8) affine_s16_8(x + c, w + c, bias + c, p->multiplier + c, p->shift + c, out, y + c);
  if (c < n) { /* the last n % 8 channels through zero-padded copies */
    size_t r = n - c;
    int16_t xt[8] = {0}, yt[8];
    int8_t wt[8] = {0};
    int64_t bt[8] = {0};
    int32_t mt[8] = {0}, st[8] = {0};
    memcpy(xt, x + c, r * sizeof *xt), memcpy(wt, w + c, r);
    memcpy(bt, bias + c, r * sizeof *bt), memcpy(mt, p->multiplier + c, r * sizeof *mt);
    memcpy(st, p->shift + c, r * sizeof *st);
    affine_s16_8(xt, wt, bt, mt, st, out, yt);
    memcpy(y + c, yt, r * sizeof *yt);
  }
}
#endif
