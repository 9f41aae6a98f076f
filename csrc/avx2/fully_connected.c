/* FULLY_CONNECTED, AVX2.
 *
 * int8 (packed weights, x broadcast): kws_avx2_pack_dense_s8 lays the weights
 * out at model load in blocks of 8 rows (the last padded with zero rows),
 * up to 8 blocks (64 rows) per panel, each panel one contiguous stream of
 * groups of 4 K (K padded with zeros):
 *   panel of rows o..o+63, group g: w[o + 0][4g..4g+3], w[o + 1][4g..4g+3], ..., w[o + 63][4g..4g+3]
 * so one 32-byte load holds 4 K of 8 rows. x[4g..4g+3] is broadcast to all 8
 * dword lanes and the products are formed exactly with vpmaddubsw: its
 * unsigned operand is |x| (vpabsb; |-128| = 128 as unsigned), its signed one w
 * with x's sign (vpsignb: w * sign(x), |.| <= 127), so each product is
 * |x| * w * sign(x) = x * w and a pair sum is at most 2 * 128 * 127 = 32512,
 * inside int16: vpmaddubsw never saturates. vpmaddwd with ones adds the pairs
 * into int32, so lane r of a block's accumulator sums row 8b + r directly: no
 * horizontal reduction. |x| and x are hoisted once per input (per chunk of
 * 1024 for longer K) into zero-padded buffers, so the panel loops only
 * broadcast them. A pass over x runs 8 blocks for one input, 4 for each of 2
 * or 2 for each of 4 (batches go in groups of 4, 2, 1: each weight load
 * serves the whole group). The bias is added and the epilogue (requantization,
 * zero point, clamp, and the fused affine layer if any; avx2.h) runs on the 8
 * lanes, a last partial block's too, on copies of its parameters. Layers of
 * fewer than 8 rows are held as rows padded to 32 and dotted with 32 elements
 * of x at a time, not padded to a block of 8 rows. Tried and dropped: one
 * stream per 8-row block (4% slower than one per panel on M2) and software
 * prefetch 512 to 2048 bytes ahead (1 to 9% slower).
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

#define KWS_INLINE static inline __attribute__((always_inline))
#define CHUNK 1024   /* elements of x hoisted at a time: a multiple of 32 and of every block <= 1024 */
#define GROUP_MAX 4  /* inputs that share each load of the weights */
#define PANEL 8      /* blocks of 8 rows per panel */
#define UNROLL _Pragma("GCC unroll 8") /* loops over the inputs and blocks of a group: keep them in registers */

static size_t round4(size_t k) { return (k + 3) & ~(size_t)3; }
static size_t round8(size_t n) { return (n + 7) & ~(size_t)7; }
static size_t round32(size_t k) { return (k + 31) & ~(size_t)31; }

size_t kws_avx2_packed_dense_s8_bytes(size_t k, size_t n) { return n < 8 ? n * round32(k) : round8(n) * round4(k); }

void kws_avx2_pack_dense_s8(kws_codes w, size_t k, size_t n, uint8_t *packed) {
  if (n < 8) { /* rows, each padded to a multiple of 32 (the caller zero-filled the buffer) */
    for (size_t r = 0; r < n; r++)
      for (size_t i = 0; i < k; i++) packed[r * round32(k) + i] = (uint8_t)kws_code_at(w, r * k + i);
    return;
  }
  for (size_t o = 0; o < n; o += 8 * PANEL) {
    size_t rows = n - o >= 8 * PANEL ? 8 * PANEL : round8(n - o);
    for (size_t g = 0; g < k; g += 4)
      for (size_t r = o; r < o + rows; r++)
        for (size_t i = g; i < g + 4; i++) *packed++ = r < n && i < k ? (uint8_t)kws_code_at(w, r * k + i) : 0;
  }
}

/* x[b][i0 ..] of B inputs, up to CHUNK elements, hoisted out of the weight loops once: s holds
 * the elements (x's signs for vpsignb), a their absolute values (vpabsb, |-128| = 128 unsigned),
 * both zero-padded to a multiple of 32, so a group of 4 or a row chunk of 32 past K adds nothing. */
typedef struct {
  int8_t s[GROUP_MAX][CHUNK];
  int8_t a[GROUP_MAX][CHUNK];
} hoisted;

static __attribute__((noinline)) void hoist(const int8_t *x, size_t k, int B, size_t i0, hoisted *h) {
  size_t len = k - i0 < CHUNK ? k - i0 : CHUNK;
  UNROLL
  for (int b = 0; b < B; b++) {
    memcpy(h->s[b], x + b * k + i0, len);
    memset(h->s[b] + len, 0, round32(len) - len);
    for (size_t j = 0; j < len; j += 32)
      _mm256_storeu_si256((__m256i *)(h->a[b] + j), _mm256_abs_epi8(_mm256_loadu_si256((const __m256i *)(h->s[b] + j))));
  }
}

static inline __m256i bcast4(const int8_t *p) {
  int32_t q;
  memcpy(&q, p, 4);
  return _mm256_set1_epi32(q);
}

/* Adds the products of one hoisted chunk (end elements, a multiple of 4) of blocks s .. s + P - 1
 * of a panel (stride bytes per group of 4 K, w at its block s and at the chunk) for B inputs to
 * acc[b * P + p], and returns w past the chunk: 4 K of 8 rows per weight load, x[4g..4g+3]
 * broadcast to every dword lane. Without acc16 each step's pair sums are added into int32
 * (vpmaddwd); with it, over blocks of `block` products, the proven int16 block: lane 2r or 2r + 1
 * of an int16 sum holds pair sums of row 8p + r only, a part of one aligned block's products of
 * that row (a block <= CHUNK divides CHUNK; a larger one is flushed at least at every chunk), so
 * the bound 128 * sum |w| <= 32767 over the block keeps every partial sum inside int16; it is
 * widened once per block. B and P are constants at every call; no call inside, so the sums stay in
 * registers. */
#define ACC8(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
/* Input j / P of the group: its broadcast elements (xs) and absolute values (xa). */
#define X_OF(v, j) (j / P == 0 ? v##0 : j / P == 1 ? v##1 : j / P == 2 ? v##2 : v##3)
#define LOAD_ACC(j) __m256i a##j = acc[j];
#define STORE_ACC(j) acc[j] = a##j;
#define ZERO16(j) __m256i s##j = _mm256_setzero_si256();
#define STEP32(j)                                                                                          \
  if (B * P > j) {                                                                                         \
    __m256i ws = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(w + 32 * (j % P))), X_OF(xs, j));   \
    a##j = _mm256_add_epi32(a##j, _mm256_madd_epi16(_mm256_maddubs_epi16(X_OF(xa, j), ws), ones));         \
  }
#define STEP16(j)                                                                                          \
  if (B * P > j) {                                                                                         \
    __m256i ws = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(w + 32 * (j % P))), X_OF(xs, j));   \
    s##j = _mm256_add_epi16(s##j, _mm256_maddubs_epi16(X_OF(xa, j), ws));                                  \
  }
#define FLUSH16(j) if (B * P > j) a##j = _mm256_add_epi32(a##j, _mm256_madd_epi16(s##j, ones));
#define BCAST_X                                                                                            \
  __m256i xs0 = bcast4(h->s[0] + i), xa0 = bcast4(h->a[0] + i), xs1 = xs0, xa1 = xa0, xs2 = xs0, xa2 = xa0, \
          xs3 = xs0, xa3 = xa0;                                                                            \
  if (B > 1) xs1 = bcast4(h->s[1] + i), xa1 = bcast4(h->a[1] + i);                                         \
  if (B > 2) xs2 = bcast4(h->s[2] + i), xa2 = bcast4(h->a[2] + i), xs3 = bcast4(h->s[3] + i),             \
             xa3 = bcast4(h->a[3] + i);

KWS_INLINE const int8_t *dot_chunk(const hoisted *h, size_t end, const int8_t *w, size_t stride, const int B,
                                   const int P, const int acc16, size_t block, __m256i acc[PANEL]) {
  const __m256i ones = _mm256_set1_epi16(1);
  ACC8(LOAD_ACC)
  if (!acc16) {
    for (size_t i = 0; i < end; i += 4, w += stride) {
      BCAST_X
      ACC8(STEP32)
    }
  } else {
    for (size_t i = 0; i < end;) {
      size_t stop = end - i > block ? i + block : end;
      ACC8(ZERO16)
      for (; i < stop; i += 4, w += stride) {
        BCAST_X
        ACC8(STEP16)
      }
      ACC8(FLUSH16)
    }
  }
  ACC8(STORE_ACC)
  return w;
}

/* Fewer than 8 rows: each row, padded to a multiple of 32, against 32 elements of x at a time
 * (no broadcast, no padded block of 8 rows), summed across lanes at the end. */
KWS_INLINE void dense_rows(const int8_t *x, size_t k, const int8_t *w, size_t n, const kws_epilogue *e,
                           const int B, int refill, hoisted *h, int8_t *y) {
  const __m256i ones = _mm256_set1_epi16(1);
  int32_t sums[GROUP_MAX][8] = {{0}};
  for (size_t r = 0; r < n; r++, w += round32(k)) {
    __m256i a[GROUP_MAX];
    UNROLL
    for (int b = 0; b < B; b++) a[b] = _mm256_setzero_si256();
    for (size_t i0 = 0; i0 < k; i0 += CHUNK) {
      if (refill) hoist(x, k, B, i0, h);
      const size_t end = round32(k - i0 < CHUNK ? k - i0 : CHUNK);
      for (size_t j = 0; j < end; j += 32) {
        __m256i wv = _mm256_loadu_si256((const __m256i *)(w + i0 + j));
        UNROLL
        for (int b = 0; b < B; b++) {
          __m256i ws = _mm256_sign_epi8(wv, _mm256_loadu_si256((const __m256i *)(h->s[b] + j)));
          __m256i xa = _mm256_loadu_si256((const __m256i *)(h->a[b] + j));
          a[b] = _mm256_add_epi32(a[b], _mm256_madd_epi16(_mm256_maddubs_epi16(xa, ws), ones));
        }
      }
    }
    UNROLL
    for (int b = 0; b < B; b++) {
      __m128i s = _mm_add_epi32(_mm256_castsi256_si128(a[b]), _mm256_extracti128_si256(a[b], 1));
      s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
      sums[b][r] = _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1)));
    }
  }
  UNROLL
  for (int b = 0; b < B; b++) kws_avx2_epilogue_part(_mm256_loadu_si256((const __m256i *)sums[b]), e, 0, n, y + b * n);
}

/* The epilogues of nb blocks of rows o, o + 8, ... for B inputs, from acc[b * nb + p]. Not inlined:
 * the accumulators are stored once, and no call (the partial block's copies) lies inside their
 * lives, which would push them out of registers. */
KWS_INLINE void epilogues(const __m256i *acc, size_t nb, size_t B, size_t n, size_t o,
                                                const kws_epilogue *e, int8_t *y) {
  for (size_t p = 0; p < nb; p++, o += 8)
    for (size_t b = 0; b < B; b++) {
      if (o + 8 <= n)
        kws_avx2_store8_s8(y + b * n + o, kws_avx2_epilogue8(acc[b * nb + p], e, o));
      else
        kws_avx2_epilogue_part(acc[b * nb + p], e, o, n - o, y + b * n + o);
    }
}

/* One function per shape (inputs, blocks, int16 sums): inlined into the large panel loops, the
 * accumulators lost their registers. */
#define DOT(B, P, A)                                                                                       \
  static __attribute__((noinline)) const int8_t *dot_##B##_##P##_##A(const hoisted *h, size_t end,        \
                                                                     const int8_t *w, size_t stride,      \
                                                                     size_t block, __m256i acc[PANEL]) {  \
    return dot_chunk(h, end, w, stride, B, P, A, block, acc);                                             \
  }
DOT(1, 8, 0) DOT(1, 4, 0) DOT(1, 2, 0) DOT(1, 1, 0) DOT(2, 4, 0) DOT(2, 2, 0) DOT(2, 1, 0) DOT(4, 2, 0) DOT(4, 1, 0)
DOT(1, 4, 1) DOT(1, 2, 1) DOT(1, 1, 1) DOT(2, 2, 1) DOT(2, 1, 1) DOT(4, 1, 1)

#define CALL_DOT(B_, P_, A_) \
  if (B == B_ && P == P_ && acc16 == A_) return dot_##B_##_##P_##_##A_(h, end, w, stride, block, acc);

KWS_INLINE const int8_t *dot(const hoisted *h, size_t end, const int8_t *w, size_t stride, const int B, const int P,
                             const int acc16, size_t block, __m256i acc[PANEL]) {
  CALL_DOT(1, 8, 0) CALL_DOT(1, 4, 0) CALL_DOT(1, 2, 0) CALL_DOT(1, 1, 0) CALL_DOT(2, 4, 0) CALL_DOT(2, 2, 0)
  CALL_DOT(2, 1, 0) CALL_DOT(4, 2, 0) CALL_DOT(4, 1, 0) CALL_DOT(1, 4, 1) CALL_DOT(1, 2, 1) CALL_DOT(1, 1, 1)
  CALL_DOT(2, 2, 1) CALL_DOT(2, 1, 1) CALL_DOT(4, 1, 1)
  return w; /* not reached: every shape panels() asks for is above */
}

/* Rows o .. o + 8P - 1, blocks s .. s + P - 1 of their panel (w at block s), for B inputs. */
KWS_INLINE void sub_panel(const int8_t *x, size_t k, const int8_t *w, size_t n, size_t o, size_t stride, const int B,
                          const int P, const int acc16, size_t block, int refill, hoisted *h, const kws_epilogue *e,
                          int8_t *y) {
  __m256i acc[PANEL] = {0};
  for (size_t i0 = 0; i0 < k; i0 += CHUNK) {
    if (refill) hoist(x, k, B, i0, h);
    w = dot(h, round4(k - i0 < CHUNK ? k - i0 : CHUNK), w, stride, B, P, acc16, block, acc);
  }
  epilogues(acc, P, B, n, o, e, y);
}

/* The panels for B inputs. A panel is run in sub-panels of as many blocks as B inputs leave
 * registers for (8 int32 accumulators per input of a group of 1, half that with int16 sums beside
 * them), powers of two, each one pass over x. */
KWS_INLINE void panels(const int8_t *x, size_t k, const int8_t *w, size_t n, const kws_epilogue *e, const int B,
                       const int acc16, size_t block, int refill, hoisted *h, int8_t *y) {
  const int most = (acc16 ? PANEL / 2 : PANEL) / B;
  for (size_t o = 0; o < n; o += 8 * PANEL) {
    size_t blocks = (n - o + 7) / 8 < PANEL ? (n - o + 7) / 8 : PANEL, stride = 32 * blocks;
    for (size_t s = 0; s < blocks;) {
      size_t left = blocks - s;
      const int8_t *ws = w + 32 * s;
      if (most >= 8 && left >= 8) {
        sub_panel(x, k, ws, n, o + 8 * s, stride, B, 8, acc16, block, refill, h, e, y);
        s += 8;
      } else if (most >= 4 && left >= 4) {
        sub_panel(x, k, ws, n, o + 8 * s, stride, B, 4, acc16, block, refill, h, e, y);
        s += 4;
      } else if (most >= 2 && left >= 2) {
        sub_panel(x, k, ws, n, o + 8 * s, stride, B, 2, acc16, block, refill, h, e, y);
        s += 2;
      } else {
        sub_panel(x, k, ws, n, o + 8 * s, stride, B, 1, acc16, block, refill, h, e, y);
        s += 1;
      }
    }
    w += stride * (round4(k) / 4);
  }
}

/* B inputs x[B][k] -> y[B][n]: x hoisted once when K fits one chunk, else per chunk and pass. */
KWS_INLINE void dense_group(const int8_t *x, size_t k, const int8_t *w, size_t n, const kws_epilogue *e,
                            size_t block, const int B, hoisted *h, int8_t *y) {
  const int refill = k > CHUNK;
  if (!refill) hoist(x, k, B, 0, h);
  if (n < 8)
    dense_rows(x, k, w, n, e, B, refill, h, y);
  else if (block)
    panels(x, k, w, n, e, B, 1, block, refill, h, y);
  else
    panels(x, k, w, n, e, B, 0, 0, refill, h, y);
}

static void dense_group1(const int8_t *x, size_t k, const int8_t *w, size_t n, const kws_epilogue *e, size_t block,
                         hoisted *h, int8_t *y) {
  dense_group(x, k, w, n, e, block, 1, h, y);
}
static void dense_group2(const int8_t *x, size_t k, const int8_t *w, size_t n, const kws_epilogue *e, size_t block,
                         hoisted *h, int8_t *y) {
  dense_group(x, k, w, n, e, block, 2, h, y);
}
static void dense_group4(const int8_t *x, size_t k, const int8_t *w, size_t n, const kws_epilogue *e, size_t block,
                         hoisted *h, int8_t *y) {
  dense_group(x, k, w, n, e, block, 4, h, y);
}

/* Inputs in groups of 4, then 2, then 1: each weight load serves every input of a group. */
void kws_avx2_fully_connected_s8(const int8_t *x, size_t batches, size_t k, const uint8_t *w, size_t n,
                                 const kws_epilogue *e, int log2_block, int8_t *y) {
  size_t block = log2_block ? (size_t)1 << log2_block : 0;
  const int8_t *wp = (const int8_t *)w;
  hoisted h;
  size_t b = 0;
  for (; batches - b >= 4; b += 4) dense_group4(x + b * k, k, wp, n, e, block, &h, y + b * n);
  if (batches - b >= 2) {
    dense_group2(x + b * k, k, wp, n, e, block, &h, y + b * n);
    b += 2;
  }
  if (b < batches) dense_group1(x + b * k, k, wp, n, e, block, &h, y + b * n);
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
