/* FULLY_CONNECTED from 1-bit codes (-1 / +1, KWS_WEIGHTS_PACKED), NEON (ARMv8.0: TBL
 * lookups, no multiplies), for both NEON backends.
 *
 * With bit b_i set for a code of -1: sum(w * x) = sum(x) - 2 * S, S = sum of x_i over the
 * set bits. S is looked up: for each group of 4 activations, a table of its 16 subset
 * sums is built once per input vector, and a row's 4 sign bits of that group index it.
 * One TBL looks up 16 rows at once (the table is the group's, the indices are the 16
 * rows' 4-bit patterns). Subset sums of int8 reach -512..508, more than a byte, so x is
 * split as x = 16 * xh + xl (xh = x >> 4 in -8..7, xl = x & 15 in 0..15, exact) and each
 * group has two byte tables: Tl (sums of xl, 0..60) and Th (sums of xh, -32..28);
 * S = 16 * Sh + Sl. Nothing is negated, so x = -128 needs no care.
 *
 * Layout (n * ceil(k / 8) bytes, the portable format's size): G = ceil(k / 8) group
 * pairs per row (8 K each, padding bits 0). Rows in panels of 16: panel p's byte
 * 16 * q + j (q < G) holds row 16p + j's pattern of group 2q in its low nibble and of
 * group 2q + 1 in its high nibble (bit b: code 4g + b is -1). A last partial panel of
 * r < 16 rows has r bytes per group pair.
 *
 * Per 8 K of 16 rows: one 16-byte load, AND and USHR (two index vectors), and a TBL per
 * group and plane; every 2 pairs (4 lookups) the byte sums are widened into uint16 (Sl)
 * and int16 (Sh) lanes. Exact: 4 lookups of Tl add up to <= 240 (uint8) and of Th to
 * -128..112 (int8); over a chunk of S1_CHUNK_PAIRS = 256 pairs (128 widenings) the
 * 16-bit lanes stay within 128 * 240 = 30720 and -16384..14336; per chunk the lanes go
 * into int32 as 16 * Sh + Sl, |S| <= 16384 * 128. Tables for one chunk (2048 K) take
 * 16 KB of stack; a layer with a longer K rebuilds them for each panel. */
#if defined(__ARM_NEON) || defined(KWS_NEON_SIMDE)
#include "fc_s8.h"
#include "kernels.h"

enum { S1_CHUNK_PAIRS = 256, S1_TABLE_BYTES = 32 }; /* per group: Tl[16], Th[16] */

size_t kws_neon_s1_bytes(size_t k, size_t n) { return n * ((k + 7) / 8); }

void kws_neon_pack_s1(kws_codes codes, size_t k, size_t n, uint8_t *packed) {
  size_t g = (k + 7) / 8;
  for (size_t o = 0; o < n; o++) {
    size_t panel = o / 16, rows = n - panel * 16 < 16 ? n - panel * 16 : 16;
    uint8_t *p = packed + panel * 16 * g + o % 16;
    for (size_t i = 0; i < k; i++) p[i / 8 * rows] |= (uint8_t)((kws_code_at(codes, o * k + i) < 0) << (i % 8));
  }
}

/* The subset-sum tables of groups 2 * q0 .. 2 * q1 - 1 (4 at a time, so up to 2 more of zero
 * x past the end), for the 16 activations of 4 groups in v (one plane): with
 * A = {0, v0, v1, v0 + v1} and B = {0, v2, v3, v2 + v3} of each group,
 * T[p] = A[p & 3] + B[p >> 2], all in bytes (|.| <= 60). */
static void build_tables(const int8_t *x, size_t k, size_t q0, size_t q1, uint8_t *tab) {
  static const uint8_t pick[4][16] = {
      {255, 0, 1, 0, 255, 4, 5, 4, 255, 8, 9, 8, 255, 12, 13, 12},               /* A: 0, v0, v1, v0 */
      {255, 255, 255, 1, 255, 255, 255, 5, 255, 255, 255, 9, 255, 255, 255, 13},  /*    + v1 in the last */
      {255, 2, 3, 2, 255, 6, 7, 6, 255, 10, 11, 10, 255, 14, 15, 14},             /* B: 0, v2, v3, v2 */
      {255, 255, 255, 3, 255, 255, 255, 7, 255, 255, 255, 11, 255, 255, 255, 15}, /*    + v3 in the last */
  };
  static const uint8_t spread[2][16] = {
      {0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3}, /* A[p & 3] of group 0 (group j: + 4j) */
      {0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3}, /* B[p >> 2] of group 0 */
  };
  uint8x16_t a1 = vld1q_u8(pick[0]), a2 = vld1q_u8(pick[1]), b1 = vld1q_u8(pick[2]), b2 = vld1q_u8(pick[3]);
  uint8x16_t ia[4], ib[4];
  for (int j = 0; j < 4; j++) {
    ia[j] = vaddq_u8(vld1q_u8(spread[0]), vdupq_n_u8((uint8_t)(4 * j)));
    ib[j] = vaddq_u8(vld1q_u8(spread[1]), vdupq_n_u8((uint8_t)(4 * j)));
  }
  for (size_t g = 2 * q0; g < 2 * q1; g += 4) {
    int8x16_t v;
    if (4 * g + 16 <= k) {
      v = vld1q_s8(x + 4 * g);
    } else {
      int8_t pad[16] = {0};
      if (4 * g < k) memcpy(pad, x + 4 * g, k - 4 * g);
      v = vld1q_s8(pad);
    }
    uint8x16_t planes[2] = {vandq_u8(vreinterpretq_u8_s8(v), vdupq_n_u8(15)),
                            vreinterpretq_u8_s8(vshrq_n_s8(v, 4))};
    uint8_t *t = tab + (g - 2 * q0) * S1_TABLE_BYTES;
    for (int pl = 0; pl < 2; pl++) {
      uint8x16_t a = vaddq_u8(vqtbl1q_u8(planes[pl], a1), vqtbl1q_u8(planes[pl], a2));
      uint8x16_t b = vaddq_u8(vqtbl1q_u8(planes[pl], b1), vqtbl1q_u8(planes[pl], b2));
      for (int j = 0; j < 4; j++)
        vst1q_u8(t + j * S1_TABLE_BYTES + pl * 16, vaddq_u8(vqtbl1q_u8(a, ia[j]), vqtbl1q_u8(b, ib[j])));
    }
  }
}

/* 16 bytes at p; past the end of the buffer (only in a partial panel) from a zero-padded copy. */
static inline uint8x16_t load_indices(const uint8_t *p, const uint8_t *end, int partial) {
  if (!partial || end - p >= 16) return vld1q_u8(p);
  uint8_t tmp[16] = {0};
  memcpy(tmp, p, (size_t)(end - p));
  return vld1q_u8(tmp);
}

/* Adds the lookups of group pairs q0 .. q1 - 1 (one chunk) of a panel's 16 rows to s[0..3]
 * (rows 0-3, 4-7, 8-11, 12-15) as 16 * Sh + Sl. stride: bytes per group pair (16, or the rows of
 * a partial panel). */
static inline void panel_chunk(const uint8_t *panel, size_t stride, const uint8_t *end, int partial, size_t q0,
                               size_t q1, const uint8_t *tab, int32x4_t s[4]) {
  const uint8x16_t m15 = vdupq_n_u8(15);
  uint16x8_t l0 = vdupq_n_u16(0), l1 = l0;
  int16x8_t h0 = vdupq_n_s16(0), h1 = h0;
  for (size_t q = q0; q < q1; q += 2) {
    const uint8_t *t = tab + (q - q0) * 2 * S1_TABLE_BYTES;
    uint8x16_t b = load_indices(panel + q * stride, end, partial);
    uint8x16_t i0 = vandq_u8(b, m15), i1 = vshrq_n_u8(b, 4);
    uint8x16_t lo = vaddq_u8(vqtbl1q_u8(vld1q_u8(t), i0), vqtbl1q_u8(vld1q_u8(t + 32), i1));
    int8x16_t hi = vaddq_s8(vqtbl1q_s8(vld1q_s8((const int8_t *)t + 16), i0),
                            vqtbl1q_s8(vld1q_s8((const int8_t *)t + 48), i1));
    if (q + 1 < q1) { /* the second pair of the step: 4 lookups per byte in all */
      b = load_indices(panel + (q + 1) * stride, end, partial);
      i0 = vandq_u8(b, m15), i1 = vshrq_n_u8(b, 4);
      lo = vaddq_u8(lo, vaddq_u8(vqtbl1q_u8(vld1q_u8(t + 64), i0), vqtbl1q_u8(vld1q_u8(t + 96), i1)));
      hi = vaddq_s8(hi, vaddq_s8(vqtbl1q_s8(vld1q_s8((const int8_t *)t + 80), i0),
                                 vqtbl1q_s8(vld1q_s8((const int8_t *)t + 112), i1)));
    }
    l0 = vaddw_u8(l0, vget_low_u8(lo));
    l1 = vaddw_high_u8(l1, lo);
    h0 = vaddw_s8(h0, vget_low_s8(hi));
    h1 = vaddw_high_s8(h1, hi);
  }
  /* 16 * h as a widening multiply, not SSHLL: SIMDe emulates SSHLL with a C left shift of
   * negative values, which UBSan rightly reports. */
  s[0] = vaddq_s32(s[0], vaddq_s32(vmull_n_s16(vget_low_s16(h0), 16), vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(l0)))));
  s[1] = vaddq_s32(s[1], vaddq_s32(vmull_n_s16(vget_high_s16(h0), 16), vreinterpretq_s32_u32(vmovl_high_u16(l0))));
  s[2] = vaddq_s32(s[2], vaddq_s32(vmull_n_s16(vget_low_s16(h1), 16), vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(l1)))));
  s[3] = vaddq_s32(s[3], vaddq_s32(vmull_n_s16(vget_high_s16(h1), 16), vreinterpretq_s32_u32(vmovl_high_u16(l1))));
}

static int32_t sum_s8(const int8_t *x, size_t k) {
  int32x4_t acc = vdupq_n_s32(0);
  size_t k16 = k & ~(size_t)15;
  for (size_t i = 0; i < k16; i += 16) acc = vpadalq_s16(acc, vpaddlq_s8(vld1q_s8(x + i)));
  int32_t s = vaddvq_s32(acc);
  for (size_t i = k16; i < k; i++) s += x[i];
  return s;
}

void kws_neon_run_s1(const int8_t *x, size_t batches, size_t k, const uint8_t *w, size_t n, const kws_epilogue *e,
                     int log2_block, int8_t *y) {
  (void)log2_block; /* the 16-bit sums above are proven from the table ranges */
  uint8_t tab[(2 * S1_CHUNK_PAIRS + 2) * S1_TABLE_BYTES];
  size_t g = (k + 7) / 8, chunks = (g + S1_CHUNK_PAIRS - 1) / S1_CHUNK_PAIRS;
  const uint8_t *end = w + n * g;
  kws_neon_out out[2];
  kws_neon_fc_out_params(e, out);
  for (size_t b = 0; b < batches; b++, x += k, y += n) {
    int32x4_t sum_x = vdupq_n_s32(sum_s8(x, k));
    if (chunks == 1) build_tables(x, k, 0, g, tab);
    for (size_t o = 0; o < n; o += 16) {
      size_t rows = n - o < 16 ? n - o : 16;
      const uint8_t *panel = w + o * g;
      int32x4_t s[4] = {vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0)};
      for (size_t q0 = 0; q0 < g; q0 += S1_CHUNK_PAIRS) {
        size_t q1 = g - q0 < S1_CHUNK_PAIRS ? g : q0 + S1_CHUNK_PAIRS;
        if (chunks > 1) build_tables(x, k, q0, q1, tab);
        if (rows == 16)
          panel_chunk(panel, 16, end, 0, q0, q1, tab, s);
        else
          panel_chunk(panel, rows, end, 1, q0, q1, tab, s);
      }
      for (int j = 0; j < 4; j++) s[j] = vsubq_s32(sum_x, vshlq_n_s32(s[j], 1)); /* sum(x) - 2 * S */
      kws_neon_fc_s8_finish(s[0], s[1], e, out, o, rows < 8 ? rows : 8, y);
      if (rows > 8) kws_neon_fc_s8_finish(s[2], s[3], e, out, o + 8, rows - 8, y);
    }
  }
}
#endif
