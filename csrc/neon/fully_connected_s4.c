/* FULLY_CONNECTED from 4-bit codes (2..4-bit layers, KWS_WEIGHTS_PACKED), ARMv8.0 NEON,
 * in the layout of s4.h: unsigned codes u = w + 8, 32 per 16 bytes.
 *
 * Per 32 codes of a row: one 16-byte load, AND and USHR give the 16 low and 16 high codes
 * (0..15, valid int8), and SMLAL + SMLAL2 of each against the signed x vector add into
 * two int16 accumulators (low codes, high codes): 4 multiplies per 32 MACs as in the int8
 * kernel, half its weight loads, and the SADALP into int32 only once per 8 steps instead
 * of once per step. Exact: each int16 lane gets 2 products per step, so after 8 steps
 * (256 codes) it holds 16 products of |u * x| <= 1920, |.| <= 30720 < 2^15; the int32
 * lanes hold parts of sum(u * x), |.| <= 16384 * 1920 < 2^25. The result per row is
 * sum(u * x) - 8 * sum(x) = sum(w * x), exact in int32. 4 rows per pass over x, as in the
 * int8 kernel (rows past n repeat the last row and are not stored). */
#if defined(__aarch64__) || defined(KWS_NEON_SIMDE)
#include "kernels.h"
#include "s4.h"

size_t kws_neon_s4_bytes(size_t k, size_t n) { return n * ((k + 1) / 2); }

void kws_neon_pack_s4(const int8_t *codes, size_t k, size_t n, uint8_t *packed) {
  size_t s = (k + 1) / 2, r = k % 32, k32 = k - r, t = (r + 1) / 2, h = r / 2;
  for (size_t o = 0; o < n; o++) {
    const int8_t *c = codes + o * k;
    uint8_t *row = packed + o * s;
    for (size_t i = 0; i < k32; i++) /* block i / 32: low nibbles codes 0..15, high 16..31 */
      row[i / 32 * 16 + i % 16] |= (uint8_t)((c[i] + 8) << (i % 32 >= 16 ? 4 : 0));
    for (size_t j = 0; j < r; j++) /* tail: low nibbles codes 0..t-1, high nibbles h..r-1 from byte t-h */
      row[k32 / 2 + (j < t ? j : j - h)] |= (uint8_t)((c[k32 + j] + 8) << (j < t ? 0 : 4));
  }
}

/* Rows o..o+3: 16 codes each from the low and the high nibbles of one 16-byte load. */
#define S4_STEP(row, lo_acc, hi_acc)                                                  \
  do {                                                                                \
    uint8x16_t b = vld1q_u8((row) + i / 2);                                           \
    int8x16_t lo = vreinterpretq_s8_u8(vandq_u8(b, m15));                             \
    int8x16_t hi = vreinterpretq_s8_u8(vshrq_n_u8(b, 4));                             \
    lo_acc = vmlal_high_s8(vmlal_s8(lo_acc, vget_low_s8(lo), vget_low_s8(x0)), lo, x0); \
    hi_acc = vmlal_high_s8(vmlal_s8(hi_acc, vget_low_s8(hi), vget_low_s8(x1)), hi, x1); \
  } while (0)

/* The tail codes of one row (s4.h): 4 products per int16 lane, |.| <= 7680. */
static inline int32x4_t s4_tail(int32x4_t acc, const uint8_t *row, size_t s, const kws_s4_input *in) {
  uint8x16_t b = kws_s4_tail_bytes(row, s);
  int8x16_t lo = vreinterpretq_s8_u8(vandq_u8(b, vdupq_n_u8(15))), hi = vreinterpretq_s8_u8(vshrq_n_u8(b, 4));
  int16x8_t p = vmlal_high_s8(vmull_s8(vget_low_s8(lo), vget_low_s8(in->xlo)), lo, in->xlo);
  p = vmlal_high_s8(vmlal_s8(p, vget_low_s8(hi), vget_low_s8(in->xhi)), hi, in->xhi);
  return vpadalq_s16(acc, p);
}

enum { S4_BLOCK = 256 }; /* codes per int16 block: 8 steps of 32 */

static inline __attribute__((always_inline)) int32x4_t dot4_s4(const int8_t *x, size_t k, const uint8_t *w, size_t n, size_t o,
                                const kws_s4_input *in) {
  const uint8_t *r0 = kws_s4_row(w, k, n, o, 0), *r1 = kws_s4_row(w, k, n, o, 1);
  const uint8_t *r2 = kws_s4_row(w, k, n, o, 2), *r3 = kws_s4_row(w, k, n, o, 3);
  const uint8x16_t m15 = vdupq_n_u8(15);
  int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i < in->k32;) {
    size_t end = in->k32 - i > S4_BLOCK ? i + S4_BLOCK : in->k32;
    int16x8_t l0 = vdupq_n_s16(0), l1 = l0, l2 = l0, l3 = l0, h0 = l0, h1 = l0, h2 = l0, h3 = l0;
    for (; i < end; i += 32) {
      int8x16_t x0 = vld1q_s8(x + i), x1 = vld1q_s8(x + i + 16);
      S4_STEP(r0, l0, h0);
      S4_STEP(r1, l1, h1);
      S4_STEP(r2, l2, h2);
      S4_STEP(r3, l3, h3);
    }
    a0 = vpadalq_s16(vpadalq_s16(a0, l0), h0);
    a1 = vpadalq_s16(vpadalq_s16(a1, l1), h1);
    a2 = vpadalq_s16(vpadalq_s16(a2, l2), h2);
    a3 = vpadalq_s16(vpadalq_s16(a3, l3), h3);
  }
  if (in->t) {
    size_t s = (k + 1) / 2;
    a0 = s4_tail(a0, r0, s, in);
    a1 = s4_tail(a1, r1, s, in);
    a2 = s4_tail(a2, r2, s, in);
    a3 = s4_tail(a3, r3, s, in);
  }
  int32x4_t sums = vpaddq_s32(vpaddq_s32(a0, a1), vpaddq_s32(a2, a3));
  return vaddq_s32(sums, vdupq_n_s32(in->minus8_sum_x));
}

void kws_neon_run_s4(const int8_t *x, size_t batches, size_t k, const uint8_t *w, size_t n, const kws_epilogue *e,
                     int log2_block, int8_t *y) {
  (void)log2_block; /* the int16 blocks above are proven from the code range */
  kws_neon_out out[2];
  kws_neon_fc_out_params(e, out);
  for (size_t b = 0; b < batches; b++, x += k, y += n) {
    kws_s4_input in = kws_s4_input_make(x, k);
    for (size_t o = 0; o < n; o += 8) {
      size_t r = n - o < 8 ? n - o : 8;
      int32x4_t s0 = dot4_s4(x, k, w, n, o, &in);
      int32x4_t s1 = r > 4 ? dot4_s4(x, k, w, n, o + 4, &in) : vdupq_n_s32(0);
      kws_neon_fc_s8_finish(s0, s1, e, out, o, r, y);
    }
  }
}
#endif
