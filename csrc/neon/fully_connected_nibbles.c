/* FULLY_CONNECTED from two 4-bit codes per byte (KWS_WEIGHTS_PACKED), NEON: 4 rows
 * per pass over x, 16 K per step, for the neon and neon-dotprod backends.
 *
 * 8 bytes of a row hold 16 codes: the low nibbles (even K) and high nibbles (odd K)
 * are split with an AND and a shift, put back in K order with ZIP1/ZIP2 and
 * sign-extended from 4 bits with (v ^ 8) - 8. The products then go as in the int8
 * kernel: SMULL + SMLAL2 into int16 lanes (two products, |.| <= 2 * 7 * 128), SADALP
 * into int32, exact. The K % 16 elements are summed in scalar code, so no load passes
 * the end of a row; rows past n repeat the last row and are not stored. */
#if defined(__aarch64__) || defined(KWS_NEON_SIMDE)
#include "fc_s8.h"
#include "kernels.h"

static inline int32_t nibble(unsigned v) { return (int32_t)((v & 15u) ^ 8u) - 8; }

/* 16 codes from 8 bytes, in K order. */
static inline int8x16_t codes16(const uint8_t *b) {
  uint8x8_t v = vld1_u8(b);
  uint8x8_t lo = vand_u8(v, vdup_n_u8(15)), hi = vshr_n_u8(v, 4);
  uint8x16_t c = vcombine_u8(vzip1_u8(lo, hi), vzip2_u8(lo, hi));
  return vsubq_s8(vreinterpretq_s8_u8(veorq_u8(c, vdupq_n_u8(8))), vdupq_n_s8(8));
}

static inline int32_t scalar_tail(const uint8_t *row, const int8_t *x, size_t from, size_t k) {
  int32_t s = 0;
  for (size_t i = from; i < k; i++) s += nibble(row[i / 2] >> (4 * (i & 1))) * x[i];
  return s;
}

static inline int32x4_t dot4_nibbles(const int8_t *x, size_t k, const uint8_t *w, size_t n, size_t o) {
  size_t stride = (k + 1) / 2, k16 = k & ~(size_t)15;
  const uint8_t *r[4];
  for (size_t j = 0; j < 4; j++) r[j] = w + (o + j < n ? o + j : n - 1) * stride;
  int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i < k16; i += 16) {
    int8x16_t xv = vld1q_s8(x + i);
    int8x8_t xl = vget_low_s8(xv);
    int8x16_t w0 = codes16(r[0] + i / 2), w1 = codes16(r[1] + i / 2);
    int8x16_t w2 = codes16(r[2] + i / 2), w3 = codes16(r[3] + i / 2);
    a0 = vpadalq_s16(a0, vmlal_high_s8(vmull_s8(vget_low_s8(w0), xl), w0, xv));
    a1 = vpadalq_s16(a1, vmlal_high_s8(vmull_s8(vget_low_s8(w1), xl), w1, xv));
    a2 = vpadalq_s16(a2, vmlal_high_s8(vmull_s8(vget_low_s8(w2), xl), w2, xv));
    a3 = vpadalq_s16(a3, vmlal_high_s8(vmull_s8(vget_low_s8(w3), xl), w3, xv));
  }
  int32x4_t sums = vpaddq_s32(vpaddq_s32(a0, a1), vpaddq_s32(a2, a3));
  if (k16 == k) return sums;
  int32_t t[4];
  for (size_t j = 0; j < 4; j++) t[j] = scalar_tail(r[j], x, k16, k);
  return vaddq_s32(sums, vld1q_s32(t));
}

void kws_neon_fully_connected_s8_nibbles(const int8_t *x, size_t k, const uint8_t *w, size_t n,
                                         const kws_epilogue *e, int8_t *y) {
  kws_neon_out out = kws_neon_out_params(e->p);
  for (size_t o = 0; o < n; o += 8) {
    size_t r = n - o < 8 ? n - o : 8;
    int32x4_t s0 = dot4_nibbles(x, k, w, n, o);
    int32x4_t s1 = r > 4 ? dot4_nibbles(x, k, w, n, o + 4) : vdupq_n_s32(0);
    kws_neon_fc_s8_finish(s0, s1, e, out, o, r, y);
  }
}

void kws_neon_run_nibbles(const int8_t *x, size_t batches, size_t k, const uint8_t *w, size_t n,
                          const kws_epilogue *e, int log2_block, int8_t *y) {
  (void)log2_block;
  for (size_t b = 0; b < batches; b++) kws_neon_fully_connected_s8_nibbles(x + b * k, k, w, n, e, y + b * n);
}
#endif
