/* FULLY_CONNECTED from 4-bit codes (2..4-bit layers, KWS_WEIGHTS_PACKED), ARMv8.0 NEON,
 * in the layout of s4.h: unsigned codes u = w + 8, 32 per 16 bytes, rows padded to 8.
 *
 * Per 32 codes of a row: one 16-byte load, AND and USHR give the 16 low and 16 high codes
 * (0..15, valid int8), and SMLAL + SMLAL2 of each against the signed x vectors add into
 * the row's int16 accumulator: 4 multiplies per 32 MACs as in the int8 kernel, half its
 * weight loads, and the widening into int32 only once per block of 3 steps instead of once
 * per step. The result per row is sum(u * x) - 8 * sum(x) = sum(w * x); the bounds are at
 * dot8_s4.
 *
 * The shape is the int8 kernel's (fully_connected.c, where the reasons are given): 8 rows
 * per pass over x (x loaded once per 8 rows, 8 independent chains), groups of 16 rows (two
 * passes, the second skipped for 8 rows or fewer) sharing one epilogue,
 * kws_neon_fc_s8_finish16. One accumulator per row rather than one each for the low and
 * high codes keeps the pass within the registers. */
#if defined(__ARM_NEON) || defined(KWS_NEON_SIMDE)
#include "kernels.h"
#include "s4.h"

size_t kws_neon_s4_bytes(size_t k, size_t n) { return (n + 7) / 8 * 8 * ((k + 1) / 2); } /* s4.h: rows padded to 8 */

void kws_neon_pack_s4(kws_codes codes, size_t k, size_t n, uint8_t *packed) {
  size_t s = (k + 1) / 2, r = k % 32, k32 = k - r, t = (r + 1) / 2, h = r / 2;
  for (size_t o = 0; o < n; o++) {
    size_t c = o * k; /* the row's first code */
    uint8_t *row = packed + o * s;
    for (size_t i = 0; i < k32; i++) /* block i / 32: low nibbles codes 0..15, high 16..31 */
      row[i / 32 * 16 + i % 16] |= (uint8_t)((kws_code_at(codes, c + i) + 8) << (i % 32 >= 16 ? 4 : 0));
    for (size_t j = 0; j < r; j++) /* tail: low nibbles codes 0..t-1, high nibbles h..r-1 from byte t-h */
      row[k32 / 2 + (j < t ? j : j - h)] |= (uint8_t)((kws_code_at(codes, c + k32 + j) + 8) << (j < t ? 0 : 4));
  }
}

/* Row j's 32 codes at i (bytes at row + i / 2) into its int16 accumulator: the low codes
 * against x0 (codes 0..15 of the block), the high ones against x1 (16..31). */
#define S4_STEP(row, acc)                                                                     \
  do {                                                                                        \
    uint8x16_t b = vld1q_u8((row) + i / 2);                                                   \
    int8x16_t lo = vreinterpretq_s8_u8(vandq_u8(b, m15));                                     \
    int8x16_t hi = vreinterpretq_s8_u8(vshrq_n_u8(b, 4));                                     \
    acc = vmlal_high_s8(vmlal_s8(acc, vget_low_s8(lo), vget_low_s8(x0)), lo, x0);             \
    acc = vmlal_high_s8(vmlal_s8(acc, vget_low_s8(hi), vget_low_s8(x1)), hi, x1);             \
  } while (0)

/* The tail codes of one row (s4.h) into its int16 accumulator: a step of its own, 4 products
 * per lane. */
static inline int16x8_t s4_tail(int16x8_t acc, const uint8_t *row, size_t s, const kws_s4_input *in) {
  uint8x16_t b = kws_s4_tail_bytes(row, s);
  int8x16_t lo = vreinterpretq_s8_u8(vandq_u8(b, vdupq_n_u8(15))), hi = vreinterpretq_s8_u8(vshrq_n_u8(b, 4));
  acc = vmlal_high_s8(vmlal_s8(acc, vget_low_s8(lo), vget_low_s8(in->xlo)), lo, in->xlo);
  return vmlal_high_s8(vmlal_s8(acc, vget_low_s8(hi), vget_low_s8(in->xhi)), hi, in->xhi);
}

/* Codes per int16 block: 3 steps of 32, so that the tail, one more step, fits in the last. */
enum { S4_BLOCK = 96 };

/* Adds the sums of rows 0..3 (p0..p3) into the lanes of s, widened first: each int16 lane
 * holds up to 16 products, so pairs of them are added in int32. */
static inline int32x4_t s4_sums(int32x4_t s, int16x8_t p0, int16x8_t p1, int16x8_t p2, int16x8_t p3) {
  int32x4_t q01 = vpaddq_s32(vpaddlq_s16(p0), vpaddlq_s16(p1)), q23 = vpaddq_s32(vpaddlq_s16(p2), vpaddlq_s16(p3));
  return vaddq_s32(s, vpaddq_s32(q01, q23));
}

/* Rows o..o+7: their sums in s0 (rows o..o+3) and s1 (o+4..o+7). Exact: each int16 lane
 * gets 4 products per step, and a block of at most 4 steps (3 whole ones, then the tail in
 * the last) gives it at most 16 of |u * x| <= 1920, |.| <= 30720 < 2^15; the int32 lanes of
 * s0 and s1 hold -8 * sum(x) + sum(u * x) of their row, |.| <= 2^24 + 16384 * 1920 < 2^26.
 * The block's sums go into s0 and s1 as it ends rather than into an int32 accumulator per
 * row: 8 of those, live across the K loop, would leave too few registers for the loop's 16
 * code vectors, and GCC would then interleave loads and multiplies (to shorten lifetimes) so
 * that each multiply waits on the instruction before it. Always inlined, as in the int8
 * kernel, so that the epilogue sees the sums in registers. */
static inline __attribute__((always_inline)) void dot8_s4(const int8_t *x, size_t k, const uint8_t *w, size_t o,
                                                          const kws_s4_input *in, int32x4_t *s0, int32x4_t *s1) {
  size_t s = (k + 1) / 2;
  /* rows past n are the layout's zero rows (s4.h) */
  const uint8_t *r0 = w + o * s, *r1 = r0 + s, *r2 = r1 + s, *r3 = r2 + s, *r4 = r3 + s, *r5 = r4 + s;
  const uint8_t *r6 = r5 + s, *r7 = r6 + s;
  const uint8x16_t m15 = vdupq_n_u8(15);
  int32x4_t t0 = vdupq_n_s32(in->minus8_sum_x), t1 = t0; /* the correction, in every row's lane */
  int16x8_t p0 = vdupq_n_s16(0), p1 = p0, p2 = p0, p3 = p0, p4 = p0, p5 = p0, p6 = p0, p7 = p0;
  for (size_t i = 0;;) {
    size_t end = in->k32 - i > S4_BLOCK ? i + S4_BLOCK : in->k32;
    for (; i < end; i += 32) {
      int8x16_t x0 = vld1q_s8(x + i), x1 = vld1q_s8(x + i + 16);
      S4_STEP(r0, p0);
      S4_STEP(r1, p1);
      S4_STEP(r2, p2);
      S4_STEP(r3, p3);
      S4_STEP(r4, p4);
      S4_STEP(r5, p5);
      S4_STEP(r6, p6);
      S4_STEP(r7, p7);
    }
    if (i == in->k32) break; /* the last block stays open for the tail */
    t0 = s4_sums(t0, p0, p1, p2, p3);
    t1 = s4_sums(t1, p4, p5, p6, p7);
    p0 = p1 = p2 = p3 = p4 = p5 = p6 = p7 = vdupq_n_s16(0);
  }
  if (in->t) {
    p0 = s4_tail(p0, r0, s, in);
    p1 = s4_tail(p1, r1, s, in);
    p2 = s4_tail(p2, r2, s, in);
    p3 = s4_tail(p3, r3, s, in);
    p4 = s4_tail(p4, r4, s, in);
    p5 = s4_tail(p5, r5, s, in);
    p6 = s4_tail(p6, r6, s, in);
    p7 = s4_tail(p7, r7, s, in);
  }
  *s0 = s4_sums(t0, p0, p1, p2, p3);
  *s1 = s4_sums(t1, p4, p5, p6, p7);
}

void kws_neon_run_s4(const int8_t *x, size_t batches, size_t k, const uint8_t *w, size_t n, const kws_epilogue *e,
                     int log2_block, int8_t *y) {
  (void)log2_block; /* the int16 blocks above are proven from the code range */
  kws_neon_out out[2];
  kws_neon_fc_out_params(e, out);
  for (size_t b = 0; b < batches; b++, x += k, y += n) {
    kws_s4_input in = kws_s4_input_make(x, k);
    for (size_t o = 0; o < n; o += 16) { /* groups of 16 rows: kws_neon_fc_s8_finish16 */
      size_t r = n - o < 16 ? n - o : 16;
      int32x4_t s[4] = {vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0)};
      dot8_s4(x, k, w, o, &in, &s[0], &s[1]);
      if (r > 8) dot8_s4(x, k, w, o + 8, &in, &s[2], &s[3]);
      kws_neon_fc_s8_finish16(s, e, out, o, r, y);
    }
  }
}
#endif
