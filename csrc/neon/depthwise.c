/* DEPTHWISE_CONV_2D in time on NEON: the sums of the portable kernel (csrc/portable/depthwise.c) for 16
 * channels at a time, then the 16-row epilogue of the int8 FULLY_CONNECTED kernels (fc_s8.h).
 *
 * Exactness: taps go in pairs. SMULL and SMLAL form w[k][c] * x[k][c] + w[k+1][c] * x[k+1][c] in an int16
 * lane, |.| <= 2 * 127 * 128 = 32512 < 2^15, exact because weight codes are in [-127, 127] (csrc/graph.c
 * refuses -128, whose pair could reach 2^15); SADDW widens it into the channel's int32 accumulator.
 * An odd last tap is a single SMULL. The int32 sum is the portable kernel's in another order:
 * |sum| <= 16384 * 127 * 128 < 2^28, so no addition wraps.
 *
 * Channels: with c >= 16, a last partial block is computed as the 16 channels that end at channel c,
 * overlapping the block before it; the overlapped channels get the same inputs, so they are written again
 * with the same codes (y never overlaps x), and no load reaches past a row. With c < 16 the sums are
 * formed in scalar code and the epilogue reads the parameters of the c channels only. */
#if defined(__ARM_NEON) || defined(KWS_NEON_SIMDE)
#include "fc_s8.h"
#include "kernels.h"

enum { BLOCK = 16 };

/* acc[0..3] (channels 0-3, 4-7, 8-11, 12-15) += the int16 lanes of lo (channels 0-7) and hi (8-15). */
static inline void widen_add(int32x4_t acc[4], int16x8_t lo, int16x8_t hi) {
  acc[0] = vaddw_s16(acc[0], vget_low_s16(lo));
  acc[1] = vaddw_high_s16(acc[1], lo);
  acc[2] = vaddw_s16(acc[2], vget_low_s16(hi));
  acc[3] = vaddw_high_s16(acc[3], hi);
}

void kws_neon_depthwise_s8(const int8_t *x, size_t row_stride, size_t taps, size_t c, const int8_t *w,
                           const kws_epilogue *e, int8_t *y) {
  kws_neon_out out[2];
  kws_neon_fc_out_params(e, out);
  if (c < BLOCK) {
    int32_t acc[BLOCK] = {0};
    for (size_t k = 0; k < taps; k++)
      for (size_t i = 0; i < c; i++) acc[i] += (int32_t)w[k * c + i] * (int32_t)x[k * row_stride + i];
    int32x4_t s[4] = {vld1q_s32(acc), vld1q_s32(acc + 4), vld1q_s32(acc + 8), vld1q_s32(acc + 12)};
    kws_neon_fc_s8_finish16(s, e, out, 0, c, y);
    return;
  }
  for (size_t b = 0; b < c; b += BLOCK) {
    size_t c0 = b + BLOCK <= c ? b : c - BLOCK;
    int32x4_t s[4] = {vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0)};
    size_t k = 0;
    for (; k + 2 <= taps; k += 2) {
      int8x16_t xa = vld1q_s8(x + k * row_stride + c0), xb = vld1q_s8(x + (k + 1) * row_stride + c0);
      int8x16_t wa = vld1q_s8(w + k * c + c0), wb = vld1q_s8(w + (k + 1) * c + c0);
      int16x8_t lo = vmlal_s8(vmull_s8(vget_low_s8(xa), vget_low_s8(wa)), vget_low_s8(xb), vget_low_s8(wb));
      int16x8_t hi = vmlal_high_s8(vmull_high_s8(xa, wa), xb, wb);
      widen_add(s, lo, hi);
    }
    if (k < taps) {
      int8x16_t xa = vld1q_s8(x + k * row_stride + c0), wa = vld1q_s8(w + k * c + c0);
      widen_add(s, vmull_s8(vget_low_s8(xa), vget_low_s8(wa)), vmull_high_s8(xa, wa));
    }
    kws_neon_fc_s8_finish16(s, e, out, c0, BLOCK, y);
  }
}

/* int16 sums (kws_kernels.depthwise_s8_acc16): per tap one SMLAL and one SMLAL2 into int16 lanes, 16 channels
 * (against two of them and two SADDW per tap above), two taps per iteration; every channel's int16 sum is exact because its weights
 * have 128 * sum_k |w| <= 32767 (checked at load), so no partial sum leaves int16. Widened once. */
void kws_neon_depthwise_s8_acc16(const int8_t *x, size_t row_stride, size_t taps, size_t c, const int8_t *w,
                                 const kws_epilogue *e, int8_t *y) {
  if (c < BLOCK) {
    kws_neon_depthwise_s8(x, row_stride, taps, c, w, e, y);
    return;
  }
  kws_neon_out out[2];
  kws_neon_fc_out_params(e, out);
  for (size_t b = 0; b < c; b += BLOCK) {
    size_t c0 = b + BLOCK <= c ? b : c - BLOCK;
    /* even and odd taps in separate lanes: two independent SMLAL chains per half, so an in-order core is not
     * held by one accumulator's latency; each is a subset sum of the channel (|.| <= 32640), and so is their
     * sum */
    int16x8_t lo = vdupq_n_s16(0), hi = vdupq_n_s16(0), lo1 = vdupq_n_s16(0), hi1 = vdupq_n_s16(0);
    size_t k = 0;
    for (; k + 2 <= taps; k += 2) {
      int8x16_t xa = vld1q_s8(x + k * row_stride + c0), wa = vld1q_s8(w + k * c + c0);
      int8x16_t xb = vld1q_s8(x + (k + 1) * row_stride + c0), wb = vld1q_s8(w + (k + 1) * c + c0);
      lo = vmlal_s8(lo, vget_low_s8(xa), vget_low_s8(wa));
      hi = vmlal_high_s8(hi, xa, wa);
      lo1 = vmlal_s8(lo1, vget_low_s8(xb), vget_low_s8(wb));
      hi1 = vmlal_high_s8(hi1, xb, wb);
    }
    if (k < taps) {
      int8x16_t xa = vld1q_s8(x + k * row_stride + c0), wa = vld1q_s8(w + k * c + c0);
      lo = vmlal_s8(lo, vget_low_s8(xa), vget_low_s8(wa));
      hi = vmlal_high_s8(hi, xa, wa);
    }
    lo = vaddq_s16(lo, lo1);
    hi = vaddq_s16(hi, hi1);
    int32x4_t s[4] = {vmovl_s16(vget_low_s16(lo)), vmovl_high_s16(lo), vmovl_s16(vget_low_s16(hi)),
                      vmovl_high_s16(hi)};
    kws_neon_fc_s8_finish16(s, e, out, c0, BLOCK, y);
  }
}
#endif
