/* FULLY_CONNECTED for ARMv8.0 NEON: int8 (SMULL/SMLAL2/SADALP) and 16x8 (SMLAL into
 * int32, flushed to int64). Bit-exact with csrc/portable/fully_connected.c. */
#if defined(__ARM_NEON) || defined(KWS_NEON_SIMDE)
#include "fc_s8.h"
#include "kernels.h"

/* --- int8 ------------------------------------------------------------------
 *
 * Per 16 weights of a row: SMULL of the low 8 bytes, SMLAL2 of the high 8 into the
 * same int16 lanes, SADALP of those lanes into the int32 accumulator. Exact: codes are
 * never -128, so each product is at most 127 * 128 = 16256 and two of them at most
 * 32512 < 32767 in an int16 lane; each int32 lane holds a partial sum of the row's
 * dot product, |.| <= 16384 * 16256 < 2^28.
 *
 * Why this shape, for a Cortex-A53-class core (in-order, dual issue, a narrow NEON
 * datapath). No A53 was at hand; LLVM's scheduling model (benchmarks/mca/project.py, a
 * projection) is the guide, and on it the loop is bound by its instruction count, a
 * 128-bit load costing an issue cycle like a NEON instruction:
 *  - 3 NEON instructions per 16 MACs is the least ARMv8.0 has for int8 x int8: the
 *    alternatives widen first (SXTL + SMLAL.8h->4s: 6 instructions per 16 MACs), and
 *    int16 lanes cannot hold a third product.
 *  - 8 rows per pass: x is loaded once per 8 rows (9 loads per 128 MACs instead of 10),
 *    the loop's compare and branch are paid once per 128 MACs, and the 8 accumulator chains
 *    are independent, so dependent instructions stand eight apart, past the multiply /
 *    accumulate latencies. 8 accumulators + x + 8 weight vectors + 8 products = 25
 *    registers: nothing spills. On the model this is about 19 cycles per 64 MACs on
 *    cortex-a53 against 26 for 4 rows per pass, and fewer on A55, A72 and A76 too. A
 *    pass over fewer than 8 rows computes 8 (rows past n repeat the last one).
 *  - Groups of 16 rows (two passes) share one epilogue, kws_neon_fc_s8_finish16: its four
 *    requantization chains keep an in-order core busier than two.
 *  - Tails are vector steps that end exactly at k (fc_s8.h), not scalar loops: at
 *    K = 87 a scalar tail of 7 (two loads and a multiply-add each) would take about as
 *    many instructions as the 5 vector steps before it.
 * The passes are inlined (always_inline) so that the epilogue sees their sums in registers. */
static inline __attribute__((always_inline)) void dot8_s8(const int8_t *x, size_t k, const int8_t *w, size_t n,
                                                          size_t o, const kws_neon_xtail_s8 *t, int32x4_t *s0,
                                                          int32x4_t *s1) {
  /* kws_neon_row's rows (past n: the last row again), each a step from the one before */
  const int8_t *r0 = w + o * k, *r1 = o + 1 < n ? r0 + k : r0, *r2 = o + 2 < n ? r1 + k : r1;
  const int8_t *r3 = o + 3 < n ? r2 + k : r2, *r4 = o + 4 < n ? r3 + k : r3, *r5 = o + 5 < n ? r4 + k : r4;
  const int8_t *r6 = o + 6 < n ? r5 + k : r5, *r7 = o + 7 < n ? r6 + k : r6;
  int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  for (size_t i = 0; i < t->k16; i += 16) {
    int8x16_t xv = vld1q_s8(x + i);
    int8x16_t w0 = vld1q_s8(r0 + i), w1 = vld1q_s8(r1 + i), w2 = vld1q_s8(r2 + i), w3 = vld1q_s8(r3 + i);
    int8x16_t w4 = vld1q_s8(r4 + i), w5 = vld1q_s8(r5 + i), w6 = vld1q_s8(r6 + i), w7 = vld1q_s8(r7 + i);
    int8x8_t xl = vget_low_s8(xv);
    int16x8_t p0 = vmull_s8(vget_low_s8(w0), xl);
    int16x8_t p1 = vmull_s8(vget_low_s8(w1), xl);
    int16x8_t p2 = vmull_s8(vget_low_s8(w2), xl);
    int16x8_t p3 = vmull_s8(vget_low_s8(w3), xl);
    int16x8_t p4 = vmull_s8(vget_low_s8(w4), xl);
    int16x8_t p5 = vmull_s8(vget_low_s8(w5), xl);
    int16x8_t p6 = vmull_s8(vget_low_s8(w6), xl);
    int16x8_t p7 = vmull_s8(vget_low_s8(w7), xl);
    p0 = vmlal_high_s8(p0, w0, xv);
    p1 = vmlal_high_s8(p1, w1, xv);
    p2 = vmlal_high_s8(p2, w2, xv);
    p3 = vmlal_high_s8(p3, w3, xv);
    p4 = vmlal_high_s8(p4, w4, xv);
    p5 = vmlal_high_s8(p5, w5, xv);
    p6 = vmlal_high_s8(p6, w6, xv);
    p7 = vmlal_high_s8(p7, w7, xv);
    a0 = vpadalq_s16(a0, p0);
    a1 = vpadalq_s16(a1, p1);
    a2 = vpadalq_s16(a2, p2);
    a3 = vpadalq_s16(a3, p3);
    a4 = vpadalq_s16(a4, p4);
    a5 = vpadalq_s16(a5, p5);
    a6 = vpadalq_s16(a6, p6);
    a7 = vpadalq_s16(a7, p7);
  }
  a0 = kws_neon_tail_s8(a0, r0, x, k, t);
  a1 = kws_neon_tail_s8(a1, r1, x, k, t);
  a2 = kws_neon_tail_s8(a2, r2, x, k, t);
  a3 = kws_neon_tail_s8(a3, r3, x, k, t);
  a4 = kws_neon_tail_s8(a4, r4, x, k, t);
  a5 = kws_neon_tail_s8(a5, r5, x, k, t);
  a6 = kws_neon_tail_s8(a6, r6, x, k, t);
  a7 = kws_neon_tail_s8(a7, r7, x, k, t);
  /* {sum a0, .., sum a3}, {sum a4, .., sum a7}: partial sums of each row, within the bound above */
  *s0 = vpaddq_s32(vpaddq_s32(a0, a1), vpaddq_s32(a2, a3));
  *s1 = vpaddq_s32(vpaddq_s32(a4, a5), vpaddq_s32(a6, a7));
}

void kws_neon_fully_connected_s8(const int8_t *x, size_t k, const int8_t *w, size_t n, const kws_epilogue *e,
                                 int8_t *y) {
  kws_neon_xtail_s8 t = kws_neon_xtail_s8_make(x, k);
  kws_neon_out out[2];
  kws_neon_fc_out_params(e, out);
  for (size_t o = 0; o < n; o += 16) { /* groups of 16 rows: kws_neon_fc_s8_finish16 */
    size_t r = n - o < 16 ? n - o : 16;
    int32x4_t s[4] = {vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0)};
    dot8_s8(x, k, w, n, o, &t, &s[0], &s[1]);
    if (r > 8) dot8_s8(x, k, w, n, o + 8, &t, &s[2], &s[3]);
    kws_neon_fc_s8_finish16(s, e, out, o, r, y);
  }
}

/* dot8_s8 accumulating in int16 across a proven block (a multiple of 16 products): SMULL /
 * SMLAL into the same int16 lanes step after step, SADALP once per block, so a step costs 2
 * NEON instructions per 16 MACs instead of 3. Lane j of p<r> sums products j and j + 8 of each
 * 16-K step of row r: a part of the block's products of that row, so the loader's bound
 * (128 * sum |w| <= 32767 over the block, docs/arithmetic.md 5.6) keeps it inside int16. */
static inline __attribute__((always_inline)) void dot8_s8_acc16(const int8_t *x, size_t k, const int8_t *w,
                                                                size_t n, size_t o, const kws_neon_xtail_s8 *t,
                                                                size_t block, int32x4_t *s0, int32x4_t *s1) {
  /* as in dot8_s8 */
  const int8_t *r0 = w + o * k, *r1 = o + 1 < n ? r0 + k : r0, *r2 = o + 2 < n ? r1 + k : r1;
  const int8_t *r3 = o + 3 < n ? r2 + k : r2, *r4 = o + 4 < n ? r3 + k : r3, *r5 = o + 5 < n ? r4 + k : r4;
  const int8_t *r6 = o + 6 < n ? r5 + k : r5, *r7 = o + 7 < n ? r6 + k : r6;
  int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  for (size_t i = 0; i < t->k16;) {
    size_t end = t->k16 - i > block ? i + block : t->k16;
    int16x8_t p0 = vdupq_n_s16(0), p1 = p0, p2 = p0, p3 = p0, p4 = p0, p5 = p0, p6 = p0, p7 = p0;
    for (; i < end; i += 16) {
      int8x16_t xv = vld1q_s8(x + i);
      int8x16_t w0 = vld1q_s8(r0 + i), w1 = vld1q_s8(r1 + i), w2 = vld1q_s8(r2 + i), w3 = vld1q_s8(r3 + i);
      int8x16_t w4 = vld1q_s8(r4 + i), w5 = vld1q_s8(r5 + i), w6 = vld1q_s8(r6 + i), w7 = vld1q_s8(r7 + i);
      int8x8_t xl = vget_low_s8(xv);
      p0 = vmlal_s8(p0, vget_low_s8(w0), xl);
      p1 = vmlal_s8(p1, vget_low_s8(w1), xl);
      p2 = vmlal_s8(p2, vget_low_s8(w2), xl);
      p3 = vmlal_s8(p3, vget_low_s8(w3), xl);
      p4 = vmlal_s8(p4, vget_low_s8(w4), xl);
      p5 = vmlal_s8(p5, vget_low_s8(w5), xl);
      p6 = vmlal_s8(p6, vget_low_s8(w6), xl);
      p7 = vmlal_s8(p7, vget_low_s8(w7), xl);
      p0 = vmlal_high_s8(p0, w0, xv);
      p1 = vmlal_high_s8(p1, w1, xv);
      p2 = vmlal_high_s8(p2, w2, xv);
      p3 = vmlal_high_s8(p3, w3, xv);
      p4 = vmlal_high_s8(p4, w4, xv);
      p5 = vmlal_high_s8(p5, w5, xv);
      p6 = vmlal_high_s8(p6, w6, xv);
      p7 = vmlal_high_s8(p7, w7, xv);
    }
    a0 = vpadalq_s16(a0, p0);
    a1 = vpadalq_s16(a1, p1);
    a2 = vpadalq_s16(a2, p2);
    a3 = vpadalq_s16(a3, p3);
    a4 = vpadalq_s16(a4, p4);
    a5 = vpadalq_s16(a5, p5);
    a6 = vpadalq_s16(a6, p6);
    a7 = vpadalq_s16(a7, p7);
  }
  a0 = kws_neon_tail_s8(a0, r0, x, k, t);
  a1 = kws_neon_tail_s8(a1, r1, x, k, t);
  a2 = kws_neon_tail_s8(a2, r2, x, k, t);
  a3 = kws_neon_tail_s8(a3, r3, x, k, t);
  a4 = kws_neon_tail_s8(a4, r4, x, k, t);
  a5 = kws_neon_tail_s8(a5, r5, x, k, t);
  a6 = kws_neon_tail_s8(a6, r6, x, k, t);
  a7 = kws_neon_tail_s8(a7, r7, x, k, t);
  *s0 = vpaddq_s32(vpaddq_s32(a0, a1), vpaddq_s32(a2, a3));
  *s1 = vpaddq_s32(vpaddq_s32(a4, a5), vpaddq_s32(a6, a7));
}

/* Blocks shorter than 2^7 products (KWS_NEON_ACC16_MIN_LOG2) run the int32 kernel: on LLVM's Cortex-A53 model
 * (benchmarks/mca/project.py --acc16, a projection) each block's flush (8 SADALP, the
 * accumulators zeroed) costs more than blocks of 16 to 64 products save (M3, blocks of 16:
 * 0.61x; M4, 32: 0.77x), while blocks of 128 pay (M6: 1.05x). */

void kws_neon_fully_connected_s8_acc16(const int8_t *x, size_t k, const int8_t *w, size_t n,
                                       const kws_epilogue *e, int log2_block, int8_t *y) {
  kws_neon_xtail_s8 t = kws_neon_xtail_s8_make(x, k);
  kws_neon_out out[2];
  kws_neon_fc_out_params(e, out);
  size_t block = (size_t)1 << log2_block;
  for (size_t o = 0; o < n; o += 16) {
    size_t r = n - o < 16 ? n - o : 16;
    int32x4_t s[4] = {vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0)};
    dot8_s8_acc16(x, k, w, n, o, &t, block, &s[0], &s[1]);
    if (r > 8) dot8_s8_acc16(x, k, w, n, o + 8, &t, block, &s[2], &s[3]);
    kws_neon_fc_s8_finish16(s, e, out, o, r, y);
  }
}

void kws_neon_run_s8(const int8_t *x, size_t batches, size_t k, const uint8_t *w, size_t n, const kws_epilogue *e,
                     int log2_block, int8_t *y) {
  for (size_t b = 0; b < batches; b++) {
    if (log2_block >= KWS_NEON_ACC16_MIN_LOG2)
      kws_neon_fully_connected_s8_acc16(x + b * k, k, (const int8_t *)w, n, e, log2_block, y + b * n);
    else
      kws_neon_fully_connected_s8(x + b * k, k, (const int8_t *)w, n, e, y + b * n);
  }
}

/* --- 16x8 ------------------------------------------------------------------
 *
 * Per 8 weights of a row: SXTL to int16, SMLAL + SMLAL2 against x into int32 lanes.
 * |w * x| <= 127 * 32768 = 4161536, so an int32 lane holds at most 516 products; each
 * lane takes 2 per step, and after at most 256 steps (2048 K, 512 products,
 * 512 * 4161536 = 2130706432 < 2^31 - 1) the lanes are flushed into int64 with SADALP.
 * The int64 sums are exact: |dot| <= 16384 * 4161536 < 2^36, and with |bias| < 2^46
 * the accumulator stays below 2^47, the domain of the s64 requantization. */
#define KWS_S16_FLUSH 2048 /* K elements per int32 chunk: 256 steps of 8 */

static inline void dot4_s16(const int16_t *x, size_t k, const int8_t *w, size_t n, size_t o, int16x8_t xt,
                            int64x2_t *s01, int64x2_t *s23) {
  const int8_t *r0 = kws_neon_row(w, k, n, o, 0), *r1 = kws_neon_row(w, k, n, o, 1);
  const int8_t *r2 = kws_neon_row(w, k, n, o, 2), *r3 = kws_neon_row(w, k, n, o, 3);
  const size_t k8 = k & ~(size_t)7;
  int64x2_t A0 = vdupq_n_s64(0), A1 = A0, A2 = A0, A3 = A0;
  for (size_t i = 0; i < k8;) {
    size_t end = k8 - i > KWS_S16_FLUSH ? i + KWS_S16_FLUSH : k8;
    int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0;
    for (; i < end; i += 8) {
      int16x8_t xv = vld1q_s16(x + i);
      int16x8_t w0 = vmovl_s8(vld1_s8(r0 + i)), w1 = vmovl_s8(vld1_s8(r1 + i));
      int16x8_t w2 = vmovl_s8(vld1_s8(r2 + i)), w3 = vmovl_s8(vld1_s8(r3 + i));
      int16x4_t xl = vget_low_s16(xv);
      a0 = vmlal_s16(a0, vget_low_s16(w0), xl);
      a1 = vmlal_s16(a1, vget_low_s16(w1), xl);
      a2 = vmlal_s16(a2, vget_low_s16(w2), xl);
      a3 = vmlal_s16(a3, vget_low_s16(w3), xl);
      a0 = vmlal_high_s16(a0, w0, xv);
      a1 = vmlal_high_s16(a1, w1, xv);
      a2 = vmlal_high_s16(a2, w2, xv);
      a3 = vmlal_high_s16(a3, w3, xv);
    }
    A0 = vpadalq_s32(A0, a0);
    A1 = vpadalq_s32(A1, a1);
    A2 = vpadalq_s32(A2, a2);
    A3 = vpadalq_s32(A3, a3);
  }
  if (k != k8) {
    if (k >= 8) {
      /* one step ending at k, with the x lanes already counted zeroed in xt: a fresh
       * int32 chunk of 2 products per lane */
      const int8_t *rows[4] = {r0, r1, r2, r3};
      int64x2_t *acc[4] = {&A0, &A1, &A2, &A3};
      for (int j = 0; j < 4; j++) {
        int16x8_t wv = vmovl_s8(vld1_s8(rows[j] + k - 8));
        int32x4_t a = vmull_s16(vget_low_s16(wv), vget_low_s16(xt));
        *acc[j] = vpadalq_s32(*acc[j], vmlal_high_s16(a, wv, xt));
      }
    } else { /* k < 8: plain C, exact in int64 */
      int64_t s[4] = {0, 0, 0, 0};
      const int8_t *rows[4] = {r0, r1, r2, r3};
      for (int j = 0; j < 4; j++)
        for (size_t i = 0; i < k; i++) s[j] += (int32_t)rows[j][i] * (int32_t)x[i];
      *s01 = vld1q_s64(s); /* {row 0, row 1}: already one sum per row */
      *s23 = vld1q_s64(s + 2);
      return;
    }
  }
  *s01 = vpaddq_s64(A0, A1);
  *s23 = vpaddq_s64(A2, A3);
}

void kws_neon_fully_connected_s16(const int16_t *x, size_t k, const int8_t *w, size_t n, const int64_t *bias,
                                  const kws_requant_params *p, int16_t *y) {
  static const uint16_t iota[8] = {0, 1, 2, 3, 4, 5, 6, 7};
  int16x8_t xt = vdupq_n_s16(0); /* x[k-8..k) with all but the last k % 8 lanes zeroed */
  if (k >= 8 && k % 8) {
    uint16x8_t keep = vcgeq_u16(vld1q_u16(iota), vdupq_n_u16((uint16_t)(8 - k % 8)));
    xt = vandq_s16(vld1q_s16(x + k - 8), vreinterpretq_s16_u16(keep));
  }
  kws_neon_out out = kws_neon_out_params(p);
  for (size_t o = 0; o < n; o += 8) {
    size_t r = n - o < 8 ? n - o : 8;
    int64x2_t s[4] = {vdupq_n_s64(0), vdupq_n_s64(0), vdupq_n_s64(0), vdupq_n_s64(0)};
    dot4_s16(x, k, w, n, o, xt, &s[0], &s[1]);
    if (r > 4) dot4_s16(x, k, w, n, o + 4, xt, &s[2], &s[3]);
    int32x4_t m0, m1, e0, e1;
    if (r == 8) {
      for (int j = 0; j < 4; j++) s[j] = vaddq_s64(s[j], vld1q_s64(bias + o + 2 * j));
      m0 = vld1q_s32(p->multiplier + o), m1 = vld1q_s32(p->multiplier + o + 4);
      e0 = vld1q_s32(p->shift + o), e1 = vld1q_s32(p->shift + o + 4);
    } else { /* unused lanes: bias, multiplier and shift 0 */
      size_t end = o + r;
      for (size_t j = 0; j < 4; j++) s[j] = vaddq_s64(s[j], kws_neon_load_s64_part(bias, o + 2 * j, end));
      m0 = kws_neon_load_s32_part(p->multiplier, o, end), m1 = kws_neon_load_s32_part(p->multiplier, o + 4, end);
      e0 = kws_neon_load_s32_part(p->shift, o, end), e1 = kws_neon_load_s32_part(p->shift, o + 4, end);
    }
    int16x8_t v = vcombine_s16(kws_neon_output(kws_neon_requant_s64(s[0], s[1], m0, e0), out),
                               kws_neon_output(kws_neon_requant_s64(s[2], s[3], m1, e1), out));
    if (r == 8) {
      vst1q_s16(y + o, v);
    } else {
      int16_t tmp[8];
      vst1q_s16(tmp, v);
      memcpy(y + o, tmp, r * sizeof *tmp);
    }
  }
}
#endif
