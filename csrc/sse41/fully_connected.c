/* FULLY_CONNECTED, SSE4.1: 8 output rows at a time share each load of x.
 *
 * x is read in chunks of 16 elements held as two registers of 8 int16
 * (pmovsxbw for int8 x); each row's 16 weights are sign-extended to int16
 * (pmovsxbw) and multiplied by pmaddwd: exact 16 x 16 -> 32-bit products added
 * in pairs into 4 int32 lanes per row. A K tail of r < 16 elements (K >= 16)
 * reloads the last 16 elements of x and of each row, inside both arrays, with
 * the 16 - r lanes of x already counted zeroed; K < 16 uses scalar sums.
 * phaddd reduces 4 rows to one vector of 4 sums; the bias is added and the
 * vector epilogue (sse41.h) requantizes. N % 8 tail rows run one at a time
 * with the scalar epilogue. pmaddubsw is not used (see avx2/fully_connected.c). */
#include "sse41.h"

#if defined(__x86_64__) || defined(__i386__)

/* 32 zero bytes, then 32 bytes of all ones: for a tail of r in [1, 15]
 * elements, 16 bytes loaded at tail_mask + 16 + r zero the first 16 - r int8
 * lanes, and 2 x 16 bytes at tail_mask + 2r the first 16 - r int16 lanes. */
static const int8_t tail_mask[64] = {
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
};

#define ROWS8(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#define ZERO(r) __m128i a##r = _mm_setzero_si128();

static inline __m128i hsum4(__m128i a0, __m128i a1, __m128i a2, __m128i a3) { /* [sum(a0), ..., sum(a3)] */
  return _mm_hadd_epi32(_mm_hadd_epi32(a0, a1), _mm_hadd_epi32(a2, a3));
}

static inline int32_t hsum1(__m128i a) {
  a = _mm_add_epi32(a, _mm_shuffle_epi32(a, _MM_SHUFFLE(1, 0, 3, 2)));
  a = _mm_add_epi32(a, _mm_shuffle_epi32(a, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(a);
}

static inline __m128i hsum1_s64(__m128i a) { /* 4 int32 lanes -> 2 int64 lanes */
  return _mm_add_epi64(_mm_cvtepi32_epi64(a), _mm_cvtepi32_epi64(_mm_unpackhi_epi64(a, a)));
}

static inline __m128i wide8(const int8_t *p) { return _mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)p)); }

#define ROW(r)                                                                                            \
  a##r = _mm_add_epi32(a##r, _mm_add_epi32(_mm_madd_epi16(wide8(w + r * k + i), x0),                       \
                                           _mm_madd_epi16(wide8(w + r * k + i + 8), x1)));

/* ---- int8 x int8 -> int32 --------------------------------------------------
 * Exact: |w| <= 127 and |x| <= 128, so a product is at most 16256 in magnitude
 * and a pmaddwd pair sum at most 32512; every partial sum of a row has at most
 * K <= 16384 products, |.| < 2^28, and with the folded bias (|.| <= 2^30 +
 * 2^28) the total stays below 2^31. */

#define S8_LOAD_X(src)                                                                                    \
  __m128i xb = (src);                                                                                     \
  __m128i x0 = _mm_cvtepi8_epi16(xb), x1 = _mm_cvtepi8_epi16(_mm_srli_si128(xb, 8));

/* Sums of 8 rows of w (8 * k int8) with x: rows 0-3 in *lo, rows 4-7 in *hi. */
static inline void dot8_s8(const int8_t *x, size_t k, const int8_t *w, __m128i *lo, __m128i *hi) {
  if (k < 16) {
    int32_t s[8] = {0};
    for (size_t r = 0; r < 8; r++)
      for (size_t j = 0; j < k; j++) s[r] += (int32_t)w[r * k + j] * x[j];
    *lo = _mm_loadu_si128((const __m128i *)s);
    *hi = _mm_loadu_si128((const __m128i *)(s + 4));
    return;
  }
  ROWS8(ZERO)
  size_t i = 0;
  for (; i + 16 <= k; i += 16) {
    S8_LOAD_X(_mm_loadu_si128((const __m128i *)(x + i)))
    ROWS8(ROW)
  }
  if (i < k) {
    __m128i m = _mm_loadu_si128((const __m128i *)(tail_mask + 16 + (k - i)));
    i = k - 16;
    S8_LOAD_X(_mm_and_si128(_mm_loadu_si128((const __m128i *)(x + i)), m))
    ROWS8(ROW)
  }
  *lo = hsum4(a0, a1, a2, a3);
  *hi = hsum4(a4, a5, a6, a7);
}

static inline int32_t dot1_s8(const int8_t *x, size_t k, const int8_t *w) {
  int32_t s = 0;
  if (k < 16) {
    for (size_t j = 0; j < k; j++) s += (int32_t)w[j] * x[j];
    return s;
  }
  ZERO(0)
  size_t i = 0;
  for (; i + 16 <= k; i += 16) {
    S8_LOAD_X(_mm_loadu_si128((const __m128i *)(x + i)))
    ROW(0)
  }
  if (i < k) {
    __m128i m = _mm_loadu_si128((const __m128i *)(tail_mask + 16 + (k - i)));
    i = k - 16;
    S8_LOAD_X(_mm_and_si128(_mm_loadu_si128((const __m128i *)(x + i)), m))
    ROW(0)
  }
  return hsum1(a0);
}

static void fully_connected_s8(const int8_t *x, size_t k, const int8_t *w, size_t n, const kws_epilogue *e,
                               int8_t *y) {
  size_t o = 0;
  for (; o + 8 <= n; o += 8) {
    __m128i lo, hi;
    dot8_s8(x, k, w + o * k, &lo, &hi);
    kws_sse41_store8_s8(y + o, kws_sse41_epilogue4(lo, e, o), kws_sse41_epilogue4(hi, e, o + 4));
  }
  for (; o < n; o++) y[o] = kws_epilogue_s8(dot1_s8(x, k, w + o * k), e, o);
}

void kws_sse41_fully_connected_s8(const int8_t *x, size_t batches, size_t k, const uint8_t *w, size_t n,
                                  const kws_epilogue *e, int log2_block, int8_t *y) {
  (void)log2_block;
  for (size_t b = 0; b < batches; b++) fully_connected_s8(x + b * k, k, (const int8_t *)w, n, e, y + b * n);
}

/* ---- int16 x int8 -> int64 (16x8) -------------------------------------------
 * pmaddwd multiplies x (int16) with w widened to int16: |w * x| <= 127 * 32768
 * = 4161536 (w is never -128, so the one overflowing pair, -32768 * -32768 * 2,
 * cannot occur). A row's 4 int32 lanes are widened to int64 after at most 32
 * chunks of 16 (BLOCK16 full chunks, then possibly the tail): they then hold
 * at most 512 products, |.| <= 512 * 4161536 = 2130706432 < 2^31 - 1, so
 * their horizontal sum, and every partial sum phaddd forms, is exact in int32.
 * The 64-bit sums, |.| < 2^36, plus the bias (|.| < 2^46) are exact. */

#define BLOCK16 31 /* full chunks per block: with the tail chunk at most 32 */

/* Sums of 8 rows as int64, two rows per vector: s[0] = rows 0-1, ..., s[3] = rows 6-7. */
static inline void dot8_s16(const int16_t *x, size_t k, const int8_t *w, __m128i s[4]) {
  if (k < 16) {
    int64_t t[8];
    for (size_t r = 0; r < 8; r++) {
      t[r] = 0;
      for (size_t j = 0; j < k; j++) t[r] += (int32_t)w[r * k + j] * x[j];
    }
    for (size_t v = 0; v < 4; v++) s[v] = _mm_loadu_si128((const __m128i *)(t + 2 * v));
    return;
  }
  const size_t full_end = k & ~(size_t)15;
  __m128i s01 = _mm_setzero_si128(), s23 = s01, s45 = s01, s67 = s01;
  size_t i = 0;
  while (i < k) {
    ROWS8(ZERO)
    size_t stop = full_end - i > BLOCK16 * 16 ? i + BLOCK16 * 16 : full_end;
    for (; i < stop; i += 16) {
      __m128i x0 = _mm_loadu_si128((const __m128i *)(x + i)), x1 = _mm_loadu_si128((const __m128i *)(x + i + 8));
      ROWS8(ROW)
    }
    if (i == full_end && i < k) {
      const int8_t *m = tail_mask + 2 * (k - i);
      i = k - 16;
      __m128i x0 = _mm_and_si128(_mm_loadu_si128((const __m128i *)(x + i)), _mm_loadu_si128((const __m128i *)m));
      __m128i x1 = _mm_and_si128(_mm_loadu_si128((const __m128i *)(x + i + 8)),
                                 _mm_loadu_si128((const __m128i *)(m + 16)));
      ROWS8(ROW)
      i = k;
    }
    __m128i lo = hsum4(a0, a1, a2, a3), hi = hsum4(a4, a5, a6, a7);
    s01 = _mm_add_epi64(s01, _mm_cvtepi32_epi64(lo));
    s23 = _mm_add_epi64(s23, _mm_cvtepi32_epi64(_mm_unpackhi_epi64(lo, lo)));
    s45 = _mm_add_epi64(s45, _mm_cvtepi32_epi64(hi));
    s67 = _mm_add_epi64(s67, _mm_cvtepi32_epi64(_mm_unpackhi_epi64(hi, hi)));
  }
  s[0] = s01;
  s[1] = s23;
  s[2] = s45;
  s[3] = s67;
}

static inline int64_t dot1_s16(const int16_t *x, size_t k, const int8_t *w) {
  if (k < 16) {
    int64_t s = 0;
    for (size_t j = 0; j < k; j++) s += (int32_t)w[j] * x[j];
    return s;
  }
  const size_t full_end = k & ~(size_t)15;
  __m128i s64 = _mm_setzero_si128();
  size_t i = 0;
  while (i < k) {
    ZERO(0)
    size_t stop = full_end - i > BLOCK16 * 16 ? i + BLOCK16 * 16 : full_end;
    for (; i < stop; i += 16) {
      __m128i x0 = _mm_loadu_si128((const __m128i *)(x + i)), x1 = _mm_loadu_si128((const __m128i *)(x + i + 8));
      ROW(0)
    }
    if (i == full_end && i < k) {
      const int8_t *m = tail_mask + 2 * (k - i);
      i = k - 16;
      __m128i x0 = _mm_and_si128(_mm_loadu_si128((const __m128i *)(x + i)), _mm_loadu_si128((const __m128i *)m));
      __m128i x1 = _mm_and_si128(_mm_loadu_si128((const __m128i *)(x + i + 8)),
                                 _mm_loadu_si128((const __m128i *)(m + 16)));
      ROW(0)
      i = k;
    }
    s64 = _mm_add_epi64(s64, hsum1_s64(a0));
  }
  return _mm_cvtsi128_si64(_mm_add_epi64(s64, _mm_unpackhi_epi64(s64, s64)));
}

void kws_sse41_fully_connected_s16(const int16_t *x, size_t k, const int8_t *w, size_t n, const int64_t *bias,
                                   const kws_requant_params *p, int16_t *y) {
  size_t o = 0;
  for (; o + 8 <= n; o += 8) {
    __m128i s[4];
    dot8_s16(x, k, w + o * k, s);
    for (size_t v = 0; v < 4; v++) s[v] = _mm_add_epi64(s[v], _mm_loadu_si128((const __m128i *)(bias + o + 2 * v)));
    __m128i lo = kws_sse41_output4_s64(s[0], s[1], p, o), hi = kws_sse41_output4_s64(s[2], s[3], p, o + 4);
    _mm_storeu_si128((__m128i *)(y + o), _mm_packs_epi32(lo, hi)); /* clamped to int16: the pack is exact */
  }
  for (; o < n; o++) y[o] = (int16_t)kws_sse41_output_s64(bias[o] + dot1_s16(x, k, w + o * k), p, o);
}

KWS_SSE41_END
#endif
