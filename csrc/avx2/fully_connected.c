/* FULLY_CONNECTED, AVX2.
 *
 * int8 (packed weights, x broadcast): kws_avx2_pack_dense_s8 lays the weights
 * out at model load in blocks of 8 rows (the last padded with zero rows),
 * up to 4 blocks (32 rows) per panel, each panel one contiguous stream of
 * groups of 4 K (K padded with zeros):
 *   panel of rows o..o+31, group g: w[o + 0][4g..4g+3], w[o + 1][4g..4g+3], ..., w[o + 31][4g..4g+3]
 * so one 32-byte load holds 4 K of 8 rows. x[4g..4g+3] is broadcast to all 8
 * dword lanes and the products are formed exactly with vpmaddubsw: its
 * unsigned operand is |x| (vpabsb; |-128| = 128 as unsigned), its signed one w
 * with x's sign (vpsignb: w * sign(x), |.| <= 127), so each product is
 * |x| * w * sign(x) = x * w and a pair sum is at most 2 * 128 * 127 = 32512,
 * inside int16: vpmaddubsw never saturates. vpmaddwd with ones adds the pairs
 * into int32, so lane r of a block's accumulator sums row 8b + r directly: no
 * horizontal reduction. The bias is added and the epilogue (requantization,
 * zero point, clamp, and the fused affine layer if any; avx2.h) runs on the 8
 * lanes; a last block of fewer than 8 rows goes through the scalar epilogue. The 4 blocks of a panel share
 * each broadcast of x. Tried and dropped: one stream per 8-row block (4% slower
 * than one per panel on M2) and software prefetch 512 to 2048 bytes ahead
 * (1 to 9% slower).
 *
 * int16: 8 rows of row-major weights at a time share each load of x, read in
 * chunks of 16 elements and multiplied with 16 weights of each of 8 rows,
 * sign-extended to int16, by vpmaddwd: exact 16 x 16 -> 32-bit products, added
 * in pairs into 8 int32 lanes per row. A K tail of r < 16 elements (K >= 16)
 * reloads the last 16 elements of x and of each row, which lie inside both
 * arrays, and zeroes the 16 - r lanes of x already counted, so no byte is read
 * past the end; K < 16 falls back to scalar sums. Rows are reduced with
 * vphaddd into one vector of 8 sums; N % 8 tail rows take the same dot
 * product one row at a time and the scalar epilogue. */
#include <string.h>

#include "avx2.h"

#if defined(__x86_64__) || defined(__i386__)

/* 32 zero bytes, then 32 bytes of all ones: for a tail of r in [1, 15]
 * elements, 32 bytes at tail_mask + 2r zero the first 16 - r int16 lanes. */
static const int8_t tail_mask[64] = {
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
};

#define ROWS8(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)

/* [sum(a0), ..., sum(a7)]: vphaddd only adds lanes of one row together. */
static inline __m256i hsum8(__m256i a0, __m256i a1, __m256i a2, __m256i a3, __m256i a4, __m256i a5,
                            __m256i a6, __m256i a7) {
  __m256i h0123 = _mm256_hadd_epi32(_mm256_hadd_epi32(a0, a1), _mm256_hadd_epi32(a2, a3));
  __m256i h4567 = _mm256_hadd_epi32(_mm256_hadd_epi32(a4, a5), _mm256_hadd_epi32(a6, a7));
  return _mm256_add_epi32(_mm256_permute2x128_si256(h0123, h4567, 0x20),
                          _mm256_permute2x128_si256(h0123, h4567, 0x31));
}

static inline __m256i hsum1_s64(__m256i a) { /* 8 int32 lanes -> 4 int64 lanes */
  return _mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(a)),
                          _mm256_cvtepi32_epi64(_mm256_extracti128_si256(a, 1)));
}

static inline int64_t hsum_s64(__m256i a) {
  __m128i s = _mm_add_epi64(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
  return _mm_cvtsi128_si64(_mm_add_epi64(s, _mm_unpackhi_epi64(s, s)));
}

/* ---- int8 x int8 -> int32, packed weights --------------------------------
 * Exact: the products and pair sums are exact (see the top of this file);
 * every partial sum of a row is a sum of at most K <= 16384 products,
 * |.| <= 16384 * 16256 < 2^28, and with the folded bias (|.| <= 2^30 + 2^28)
 * the total stays below 2^31. Zero padding adds nothing. */

static size_t round4(size_t k) { return (k + 3) & ~(size_t)3; }

size_t kws_avx2_packed_dense_s8_bytes(size_t k, size_t n) { return ((n + 7) & ~(size_t)7) * round4(k); }

void kws_avx2_pack_dense_s8(const int8_t *w, size_t k, size_t n, uint8_t *packed) {
  for (size_t o = 0; o < n; o += 32) {
    size_t rows = n - o >= 32 ? 32 : (n - o + 7) & ~(size_t)7;
    for (size_t g = 0; g < k; g += 4)
      for (size_t r = o; r < o + rows; r++)
        for (size_t i = g; i < g + 4; i++) *packed++ = r < n && i < k ? (uint8_t)w[r * k + i] : 0;
  }
}

/* Adds 4 K of the 8 rows of block b to its accumulator a<b>: xq holds the 4
 * elements of x in every dword lane, xa their absolute values. */
#define BLOCK_STEP(b)                                                                                      \
  if (nb > b) {                                                                                            \
    __m256i ws = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(w + 32 * b)), xq);                 \
    a##b = _mm256_add_epi32(a##b, _mm256_madd_epi16(_mm256_maddubs_epi16(xa, ws), ones));                 \
  }

/* The same 4 K added to the int16 accumulator s<b> (vpaddw, no vpmaddwd): lane 2r or 2r + 1 of
 * s<b> sums pair sums of row 8b + r only, a part of the block's products of that row, so the
 * proven bound (128 * sum |w| <= 32767 over the block) keeps every partial sum inside int16. */
#define BLOCK_STEP16(b)                                                                                    \
  if (nb > b) {                                                                                            \
    __m256i ws = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(w + 32 * b)), xq);                 \
    s##b = _mm256_add_epi16(s##b, _mm256_maddubs_epi16(xa, ws));                                          \
  }

/* Widens s<b> into a<b> at the end of an int16 block. */
#define BLOCK_FLUSH(b) if (nb > b) a##b = _mm256_add_epi32(a##b, _mm256_madd_epi16(s##b, ones));

#define LOAD_X(at)                                                                                         \
  int32_t q;                                                                                               \
  memcpy(&q, x + (at), 4);                                                                                 \
  __m256i xq = _mm256_set1_epi32(q), xa = _mm256_abs_epi8(xq);

/* Rows o .. o + 8 * nb - 1 (nb in 1..4 blocks, at most n - o of them real)
 * from the panel at w, 32 * nb bytes per group of 4 K. nb is a constant at
 * every call, so the blocks not used fold away. block: 0 to accumulate in
 * int32, or the proven int16 block in products (a multiple of 16): aligned
 * blocks of K are summed in int16 and widened once each. */
static inline void blocks_s8(const int8_t *x, size_t k, const int8_t *w, size_t n, size_t o, const int nb,
                             size_t block, const kws_epilogue *e, int8_t *y) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  const size_t k4 = k & ~(size_t)3;
  size_t i = 0;
  if (block == 0) {
    for (; i < k4; i += 4, w += 32 * nb) {
      LOAD_X(i)
      BLOCK_STEP(0) BLOCK_STEP(1) BLOCK_STEP(2) BLOCK_STEP(3)
    }
  } else {
    while (i < k4) {
      size_t end = k4 - i > block ? i + block : k4;
      __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
      for (; i < end; i += 4, w += 32 * nb) {
        LOAD_X(i)
        BLOCK_STEP16(0) BLOCK_STEP16(1) BLOCK_STEP16(2) BLOCK_STEP16(3)
      }
      BLOCK_FLUSH(0) BLOCK_FLUSH(1) BLOCK_FLUSH(2) BLOCK_FLUSH(3)
    }
  }
  if (i < k) { /* 1 to 3 elements left: x is not read past k, its zero-padded weights add nothing */
    int32_t q = 0;
    for (size_t j = i; j < k; j++) q |= (int32_t)(uint8_t)x[j] << (8 * (j - i));
    __m256i xq = _mm256_set1_epi32(q), xa = _mm256_abs_epi8(xq);
    BLOCK_STEP(0) BLOCK_STEP(1) BLOCK_STEP(2) BLOCK_STEP(3)
  }
  const __m256i acc[4] = {a0, a1, a2, a3};
  for (int b = 0; b < nb; b++, o += 8) {
    if (o + 8 <= n) {
      kws_avx2_store8_s8(y + o, kws_avx2_epilogue8(acc[b], e, o));
    } else {
      int32_t s[8];
      _mm256_storeu_si256((__m256i *)s, acc[b]);
      for (size_t r = o; r < n; r++) y[r] = kws_epilogue_s8(s[r - o], e, r);
    }
  }
}

static void fully_connected_s8(const int8_t *x, size_t k, const int8_t *w, size_t n, const kws_epilogue *e,
                               size_t block, int8_t *y) {
  const size_t panel = 32 * round4(k); /* bytes of a panel of 32 rows */
  size_t o = 0;
  for (; o + 32 <= n; o += 32, w += panel) blocks_s8(x, k, w, n, o, 4, block, e, y);
  switch ((n - o + 7) / 8) { /* 0 to 4 blocks left in the last panel, the last block maybe partial */
  case 4: blocks_s8(x, k, w, n, o, 4, block, e, y); break;
  case 3: blocks_s8(x, k, w, n, o, 3, block, e, y); break;
  case 2: blocks_s8(x, k, w, n, o, 2, block, e, y); break;
  case 1: blocks_s8(x, k, w, n, o, 1, block, e, y); break;
  }
}

void kws_avx2_fully_connected_s8(const int8_t *x, size_t batches, size_t k, const uint8_t *w, size_t n,
                                 const kws_epilogue *e, int log2_block, int8_t *y) {
  size_t block = log2_block ? (size_t)1 << log2_block : 0;
  for (size_t b = 0; b < batches; b++) fully_connected_s8(x + b * k, k, (const int8_t *)w, n, e, block, y + b * n);
}

/* ---- int16 x int8 -> int64 (16x8) -------------------------------------------
 * vpmaddwd multiplies x (int16) with w widened to int16: |w * x| <= 127 * 32768
 * = 4161536 (w is never -128, so the one overflowing pair, -32768 * -32768 * 2,
 * cannot occur) and a pair sum is at most 8323072. The int32 lanes of a row
 * are widened to int64 after at most 32 chunks (BLOCK16 full chunks, then
 * possibly the tail): all 8 lanes of a row then hold at most 32 * 16 products,
 * |.| <= 512 * 4161536 = 2130706432 < 2^31 - 1, so even their horizontal sum,
 * and every partial sum vphaddd forms, is exact in int32. The 64-bit sums,
 * |.| < 2^36, plus the bias (|.| < 2^46) are exact in int64. */

#define BLOCK16 31 /* full chunks per block: with the tail chunk at most 32 */

#define ACC_ZERO(r) __m256i a##r = _mm256_setzero_si256();
#define S16_ROW(r)                                                                                        \
  a##r = _mm256_add_epi32(                                                                                \
      a##r, _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + r * k + i))), xv));

/* Sums of 8 rows, as int64 lanes: rows 0-3 in *lo, rows 4-7 in *hi. */
static inline void dot8_s16(const int16_t *x, size_t k, const int8_t *w, __m256i *lo, __m256i *hi) {
  if (k < 16) {
    int64_t s[8] = {0};
    for (size_t r = 0; r < 8; r++)
      for (size_t j = 0; j < k; j++) s[r] += (int32_t)w[r * k + j] * x[j];
    *lo = _mm256_loadu_si256((const __m256i *)s);
    *hi = _mm256_loadu_si256((const __m256i *)(s + 4));
    return;
  }
  const size_t full_end = k & ~(size_t)15;
  __m256i s_lo = _mm256_setzero_si256(), s_hi = _mm256_setzero_si256();
  size_t i = 0;
  while (i < k) {
    ROWS8(ACC_ZERO)
    size_t stop = full_end - i > BLOCK16 * 16 ? i + BLOCK16 * 16 : full_end;
    for (; i < stop; i += 16) {
      __m256i xv = _mm256_loadu_si256((const __m256i *)(x + i));
      ROWS8(S16_ROW)
    }
    if (i == full_end && i < k) {
      __m256i m = _mm256_loadu_si256((const __m256i *)(tail_mask + 2 * (k - i)));
      i = k - 16;
      __m256i xv = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(x + i)), m);
      ROWS8(S16_ROW)
      i = k;
    }
    __m256i s = hsum8(a0, a1, a2, a3, a4, a5, a6, a7);
    s_lo = _mm256_add_epi64(s_lo, _mm256_cvtepi32_epi64(_mm256_castsi256_si128(s)));
    s_hi = _mm256_add_epi64(s_hi, _mm256_cvtepi32_epi64(_mm256_extracti128_si256(s, 1)));
  }
  *lo = s_lo;
  *hi = s_hi;
}

static inline int64_t dot1_s16(const int16_t *x, size_t k, const int8_t *w) {
  if (k < 16) {
    int64_t s = 0;
    for (size_t j = 0; j < k; j++) s += (int32_t)w[j] * x[j];
    return s;
  }
  const size_t full_end = k & ~(size_t)15;
  __m256i s64 = _mm256_setzero_si256();
  size_t i = 0;
  while (i < k) {
    ACC_ZERO(0)
    size_t stop = full_end - i > BLOCK16 * 16 ? i + BLOCK16 * 16 : full_end;
    for (; i < stop; i += 16) {
      __m256i xv = _mm256_loadu_si256((const __m256i *)(x + i));
      S16_ROW(0)
    }
    if (i == full_end && i < k) {
      __m256i m = _mm256_loadu_si256((const __m256i *)(tail_mask + 2 * (k - i)));
      i = k - 16;
      __m256i xv = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(x + i)), m);
      S16_ROW(0)
      i = k;
    }
    s64 = _mm256_add_epi64(s64, hsum1_s64(a0));
  }
  return hsum_s64(s64);
}

static inline int16_t output_s64(int64_t acc, const kws_requant_params *p, size_t c) {
  int32_t v = kws_add_wrap(kws_requant_s64(acc, p->multiplier[c], p->shift[c]), p->output_zero_point);
  return (int16_t)kws_avx2_clamp(v, p);
}

void kws_avx2_fully_connected_s16(const int16_t *x, size_t k, const int8_t *w, size_t n, const int64_t *bias,
                                  const kws_requant_params *p, int16_t *y) {
  size_t o = 0;
  for (; o + 8 <= n; o += 8) {
    __m256i lo, hi;
    dot8_s16(x, k, w + o * k, &lo, &hi);
    lo = _mm256_add_epi64(lo, _mm256_loadu_si256((const __m256i *)(bias + o)));
    hi = _mm256_add_epi64(hi, _mm256_loadu_si256((const __m256i *)(bias + o + 4)));
    kws_avx2_output8_s64(y + o, lo, hi, p, o);
  }
  for (; o < n; o++) y[o] = output_s64(bias[o] + dot1_s16(x, k, w + o * k), p, o);
}

KWS_AVX2_END
#endif
