/* FULLY_CONNECTED from 2..4-bit codes, two per byte, SSE4.1 (with SSSE3's
 * pmaddubsw): 4 rows at a time share each load of x, 32 K per step.
 *
 * Layout: rows of (k + 1) / 2 bytes holding offset codes u = w + 8 (1..15;
 * 0 only in the padding nibble of an odd K). Each full step of 32 codes
 * (c = 0, 32, ..., below k32 = k & ~31) takes 16 bytes: byte c/2 + j holds
 * code c + j in its low and code c + 16 + j in its high nibble, so a mask and
 * a shift give two vectors in K order against x[c..c+15] and x[c+16..c+31].
 * The r = k - k32 tail codes take rb = (r + 1) / 2 bytes: byte k32/2 + j holds
 * code k32 + j low and code k32 + rb + j high. The tail step loads the row's
 * last 16 bytes (inside the row; rows under 16 bytes are copied to a zeroed
 * 16-byte buffer, ending at its end), so tail byte j sits in lane 16 - rb + j,
 * and meets copies of x holding the tail activations in those lanes and zeros
 * elsewhere, which cancel the codes already counted and the padding nibble.
 *
 * Exactness: pmaddubsw takes u (unsigned, <= 15) against x (signed, as is, -128
 * included): a pair sum is at most 2 * 15 * 128 = 3840 in magnitude, so it never
 * saturates, and an int16 lane adds the two pair sums of each step for at most
 * STEPS16 = 4 steps: 8 pair sums, |.| <= 30720 < 32767. pmaddwd with ones then
 * widens to int32. A row's sum S = sum(u * x) has |S| <= 15 * 128 * 16384 < 2^25,
 * and the dot product is S - 8 * sum(x), sum(x) taken once per input vector. */
#include "sse41.h"

#if defined(__x86_64__) || defined(__i386__)

#define STEPS16 4 /* steps of 32 codes an int16 lane sums before widening */

/* The byte (and nibble: 0 low, 1 high) of code i in a row of k codes. */
static inline size_t code_byte(size_t k, size_t i, int *high) {
  const size_t k32 = k & ~(size_t)31, rb = (k - k32 + 1) / 2;
  if (i < k32) {
    *high = (i & 31) >= 16;
    return (i & ~(size_t)31) / 2 + (i & 15);
  }
  *high = i - k32 >= rb;
  return k32 / 2 + (i - k32) % rb;
}

void kws_sse41_pack_nibbles(kws_codes codes, size_t k, size_t n, uint8_t *packed) {
  const size_t stride = (k + 1) / 2;
  for (size_t o = 0; o < n; o++)
    for (size_t i = 0; i < k; i++) {
      int high;
      size_t b = code_byte(k, i, &high);
      packed[o * stride + b] |= (uint8_t)((kws_code_at(codes, o * k + i) + 8) << (4 * high));
    }
}

/* One row's contribution of one step: pair sums of the low and high codes of v. */
static inline __m128i step16(__m128i v, __m128i xlo, __m128i xhi) {
  const __m128i low4 = _mm_set1_epi8(15);
  __m128i lo = _mm_and_si128(v, low4), hi = _mm_and_si128(_mm_srli_epi16(v, 4), low4);
  return _mm_add_epi16(_mm_maddubs_epi16(lo, xlo), _mm_maddubs_epi16(hi, xhi));
}

/* The last 16 bytes of a row (its tail step), from a zeroed copy when the row is shorter. */
static inline __m128i tail_bytes(const uint8_t *row, size_t stride) {
  if (stride >= 16) return _mm_loadu_si128((const __m128i *)(row + stride - 16));
  uint8_t b[16] = {0};
  memcpy(b + 16 - stride, row, stride);
  return _mm_loadu_si128((const __m128i *)b);
}

/* sum(u * x) of the rows named by ROWS (rows stride bytes apart), row r in the int32 lanes of a##r:
 * int16 sums s##r over blocks of STEPS16 steps, widened by pmaddwd; then the tail step. */
#define ROWS4(X) X(0) X(1) X(2) X(3)
#define ROWS1(X) X(0)
#define ZERO(r) __m128i a##r = _mm_setzero_si128(), s##r;
#define CLEAR(r) s##r = _mm_setzero_si128();
#define STEP(r) s##r = _mm_add_epi16(s##r, step16(_mm_loadu_si128((const __m128i *)(w + r * stride + i / 2)), xlo, xhi));
#define WIDEN(r) a##r = _mm_add_epi32(a##r, _mm_madd_epi16(s##r, ones));
#define TAIL(r) a##r = _mm_add_epi32(a##r, _mm_madd_epi16(step16(tail_bytes(w + r * stride, stride), xtlo, xthi), ones));
#define DOT_ROWS(ROWS)                                                                                       \
  const size_t k32 = k & ~(size_t)31;                                                                        \
  const __m128i ones = _mm_set1_epi16(1);                                                                    \
  ROWS(ZERO)                                                                                                 \
  for (size_t i = 0; i < k32;) {                                                                             \
    ROWS(CLEAR)                                                                                              \
    const size_t stop = k32 - i > 32 * STEPS16 ? i + 32 * STEPS16 : k32;                                     \
    for (; i < stop; i += 32) {                                                                              \
      __m128i xlo = _mm_loadu_si128((const __m128i *)(x + i)), xhi = _mm_loadu_si128((const __m128i *)(x + i + 16)); \
      ROWS(STEP)                                                                                             \
    }                                                                                                        \
    ROWS(WIDEN)                                                                                              \
  }                                                                                                          \
  if (k32 < k) {                                                                                             \
    ROWS(TAIL)                                                                                               \
  }

/* [sum(u * x) of rows 0..3], rows stride bytes apart. */
static inline __m128i dot4(const int8_t *x, size_t k, const uint8_t *w, size_t stride, __m128i xtlo, __m128i xthi) {
  DOT_ROWS(ROWS4)
  return _mm_hadd_epi32(_mm_hadd_epi32(a0, a1), _mm_hadd_epi32(a2, a3));
}

static inline int32_t dot1(const int8_t *x, size_t k, const uint8_t *w, size_t stride, __m128i xtlo, __m128i xthi) {
  DOT_ROWS(ROWS1)
  a0 = _mm_hadd_epi32(a0, a0);
  return _mm_cvtsi128_si32(_mm_hadd_epi32(a0, a0));
}

static void nibbles(const int8_t *x, size_t k, const uint8_t *w, size_t n, const kws_epilogue *e, int8_t *y) {
  const size_t stride = (k + 1) / 2, k32 = k & ~(size_t)31, rb = (k - k32 + 1) / 2;
  /* the tail activations in the lanes their codes take in the row's last 16 bytes */
  int8_t tlo[16] = {0}, thi[16] = {0};
  for (size_t j = 0; j < rb; j++) {
    tlo[16 - rb + j] = x[k32 + j];
    if (k32 + rb + j < k) thi[16 - rb + j] = x[k32 + rb + j];
  }
  const __m128i xtlo = _mm_loadu_si128((const __m128i *)tlo), xthi = _mm_loadu_si128((const __m128i *)thi);
  const int32_t offset = 8 * kws_sse41_sum_s8(x, k);
  size_t o = 0;
  for (; o + 4 <= n; o += 4) {
    __m128i acc = _mm_sub_epi32(dot4(x, k, w + o * stride, stride, xtlo, xthi), _mm_set1_epi32(offset));
    kws_sse41_store4_s8(y + o, kws_sse41_epilogue4(acc, e, o));
  }
  for (; o < n; o++) y[o] = kws_epilogue_s8(dot1(x, k, w + o * stride, stride, xtlo, xthi) - offset, e, o);
}

void kws_sse41_fully_connected_s8_nibbles(const int8_t *x, size_t batches, size_t k, const uint8_t *w, size_t n,
                                          const kws_epilogue *e, int log2_block, int8_t *y) {
  (void)log2_block;
  for (size_t b = 0; b < batches; b++) nibbles(x + b * k, k, w, n, e, y + b * n);
}

KWS_SSE41_END
#endif
