/* FULLY_CONNECTED from 1-bit codes (-1/+1), SSE4.1 (with SSSE3's pshufb and
 * pmaddubsw): table lookups over groups of 4 activations, 16 rows per vector.
 *
 * Layout: panels of 16 rows (the last one has the n % 16 rows left, if any),
 * each a run of steps of 8 K: step s of a panel of rp rows is rp bytes, byte r
 * for row r, bit j set where the code at K = 8s + j is +1; n * ceil(k / 8)
 * bytes in all, as the portable layout. The low nibble of a byte is the 4-bit
 * index of group 2s (K 8s..8s+3) and the high nibble that of group 2s + 1.
 * A step is one 16-byte load; in a short last panel its lanes past rp hold
 * bytes of other steps, whose sums are computed and dropped, and where those
 * 16 bytes would pass the end of the weights the step is copied instead.
 *
 * Per input vector and group g, the table T_g[idx] = sum of x[4g + j] over the
 * bits j set in idx (x = 0 past K, so padding codes count nothing) is built
 * with pmaddubsw (0/1 bit patterns against x, pair sums |.| <= 256) and phaddw:
 * T_g in [-512, 508], exact in int16. It is split into lo = T & 127 (0..127)
 * and hi = T >> 7 (arithmetic, -4..3), T = lo + 128 * hi, each a 16-byte table
 * for pshufb. A step looks up both groups' lo and hi for 16 rows: the two lo
 * bytes add to at most 254 (no uint8 wrap) and widen to uint16; the two hi add
 * into an int8 lane, [-8, 6] per step, so STEPS8 = 16 steps stay in
 * [-128, 96]; over those steps the lo sum is at most 16 * 254 = 4064, and
 * lo + 128 * hi lies in [-16384, 16352], exact in int16, before widening to
 * int32. S, the sum of x over a row's +1 codes, gives dot = 2 * S - sum(x):
 * no activation is ever negated (-(-128) would wrap), |dot| <= 128 * 16384.
 *
 * Tables take 64 bytes per step, so they are built for KBLOCK activations at a
 * time and the row sums of up to ROWCHUNK rows are kept in between: the stack
 * holds 12 KB, whatever K and N. */
#include "sse41.h"

#if defined(__x86_64__) || defined(__i386__)

#define STEPS8 16      /* steps an int8 lane of hi parts sums before widening */
#define KBLOCK 1024    /* activations (a multiple of 8 * STEPS8) tabulated at a time */
#define ROWCHUNK 1024  /* rows (a multiple of 16) whose sums wait for the next K block */

void kws_sse41_pack_signs(kws_codes codes, size_t k, size_t n, uint8_t *packed) {
  const size_t steps = (k + 7) / 8;
  for (size_t o = 0; o < n; o++) {
    const size_t p = o / 16, rp = n - 16 * p < 16 ? n - 16 * p : 16;
    for (size_t i = 0; i < k; i++)
      packed[16 * p * steps + i / 8 * rp + o % 16] |= (uint8_t)((kws_code_at(codes, o * k + i) > 0) << (i % 8));
  }
}

/* The 4 bits of table entries 4q..4q+3, one byte per bit, for pmaddubsw against x[4g..4g+3]. */
#define BITS(e) (e) & 1, (e) >> 1 & 1, (e) >> 2 & 1, (e) >> 3 & 1
#define BITS4(q) _mm_setr_epi8(BITS(4 * (q)), BITS(4 * (q) + 1), BITS(4 * (q) + 2), BITS(4 * (q) + 3))

/* Tables of groups 2 * s0 .. 2 * s1 - 1: t[4 (s - s0) + 2 h] = lo of group 2s + h, t[... + 1] = hi. */
static void build_tables(const int8_t *x, size_t k, size_t s0, size_t s1, __m128i *t) {
  const __m128i b0 = BITS4(0), b1 = BITS4(1), b2 = BITS4(2), b3 = BITS4(3), low7 = _mm_set1_epi16(127);
  for (size_t g = 2 * s0; g < 2 * s1; g++, t += 2) {
    int32_t q4 = 0;
    if (4 * g + 4 <= k) {
      memcpy(&q4, x + 4 * g, 4);
    } else if (4 * g < k) { /* the last, partial group: zeros past K */
      int8_t q[4] = {0};
      memcpy(q, x + 4 * g, k - 4 * g);
      memcpy(&q4, q, 4);
    }
    const __m128i xr = _mm_set1_epi32(q4);
    __m128i e07 = _mm_hadd_epi16(_mm_maddubs_epi16(b0, xr), _mm_maddubs_epi16(b1, xr));
    __m128i e8f = _mm_hadd_epi16(_mm_maddubs_epi16(b2, xr), _mm_maddubs_epi16(b3, xr));
    t[0] = _mm_packus_epi16(_mm_and_si128(e07, low7), _mm_and_si128(e8f, low7));
    t[1] = _mm_packs_epi16(_mm_srai_epi16(e07, 7), _mm_srai_epi16(e8f, 7));
  }
}

/* The 16 bytes at p, of which those from end on (outside the weights) read as zeros. */
static inline __m128i load_step(const uint8_t *p, const uint8_t *end) {
  if (end - p >= 16) return _mm_loadu_si128((const __m128i *)p);
  uint8_t b[16] = {0};
  memcpy(b, p, (size_t)(end - p));
  return _mm_loadu_si128((const __m128i *)b);
}

/* S of 16 rows over `steps` steps of rp bytes of one panel (w at the first step; the weights end at
 * end), added to the int32 lanes of a[0..3]. */
static inline void panel_sums(const uint8_t *w, size_t rp, const uint8_t *end, const __m128i *t, size_t steps,
                              __m128i a[4]) {
  const __m128i low4 = _mm_set1_epi8(15), zero = _mm_setzero_si128();
  for (size_t s = 0; s < steps;) {
    __m128i lo0 = zero, lo1 = zero, hi = zero;
    const size_t stop = steps - s > STEPS8 ? s + STEPS8 : steps;
    for (; s < stop; s++, t += 4) {
      __m128i v = load_step(w + rp * s, end);
      __m128i i0 = _mm_and_si128(v, low4), i1 = _mm_and_si128(_mm_srli_epi16(v, 4), low4);
      __m128i lo = _mm_add_epi8(_mm_shuffle_epi8(t[0], i0), _mm_shuffle_epi8(t[2], i1));
      hi = _mm_add_epi8(hi, _mm_add_epi8(_mm_shuffle_epi8(t[1], i0), _mm_shuffle_epi8(t[3], i1)));
      lo0 = _mm_add_epi16(lo0, _mm_unpacklo_epi8(lo, zero));
      lo1 = _mm_add_epi16(lo1, _mm_unpackhi_epi8(lo, zero));
    }
    __m128i s0 = _mm_add_epi16(lo0, _mm_slli_epi16(_mm_cvtepi8_epi16(hi), 7));
    __m128i s1 = _mm_add_epi16(lo1, _mm_slli_epi16(_mm_cvtepi8_epi16(_mm_srli_si128(hi, 8)), 7));
    a[0] = _mm_add_epi32(a[0], _mm_cvtepi16_epi32(s0));
    a[1] = _mm_add_epi32(a[1], _mm_cvtepi16_epi32(_mm_srli_si128(s0, 8)));
    a[2] = _mm_add_epi32(a[2], _mm_cvtepi16_epi32(s1));
    a[3] = _mm_add_epi32(a[3], _mm_cvtepi16_epi32(_mm_srli_si128(s1, 8)));
  }
}

static void signs(const int8_t *x, size_t k, const uint8_t *w, size_t n, const kws_epilogue *e, int8_t *y) {
  const size_t steps = (k + 7) / 8;
  const int32_t sum_x = kws_sse41_sum_s8(x, k);
  __m128i t[4 * (KBLOCK / 8)];
  int32_t sums[ROWCHUNK];
  for (size_t o0 = 0; o0 < n; o0 += ROWCHUNK) {
    const size_t rows = n - o0 < ROWCHUNK ? n - o0 : ROWCHUNK;
    for (size_t s0 = 0; s0 < steps; s0 += KBLOCK / 8) {
      const size_t s1 = steps - s0 < KBLOCK / 8 ? steps : s0 + KBLOCK / 8;
      build_tables(x, k, s0, s1, t);
      for (size_t r = 0; r < rows; r += 16) {
        __m128i a[4];
        for (int v = 0; v < 4; v++)
          a[v] = s0 ? _mm_loadu_si128((const __m128i *)(sums + r + 4 * v)) : _mm_setzero_si128();
        const size_t rp = n - (o0 + r) < 16 ? n - (o0 + r) : 16;
        panel_sums(w + (o0 + r) * steps + rp * s0, rp, w + n * steps, t, s1 - s0, a);
        for (int v = 0; v < 4; v++) _mm_storeu_si128((__m128i *)(sums + r + 4 * v), a[v]);
      }
    }
    size_t r = 0;
    for (; r + 4 <= rows; r += 4) {
      __m128i s = _mm_loadu_si128((const __m128i *)(sums + r));
      __m128i v = kws_sse41_epilogue4(_mm_sub_epi32(_mm_add_epi32(s, s), _mm_set1_epi32(sum_x)), e, o0 + r);
      kws_sse41_store4_s8(y + o0 + r, v);
    }
    for (; r < rows; r++) y[o0 + r] = kws_epilogue_s8(2 * sums[r] - sum_x, e, o0 + r);
  }
}

void kws_sse41_fully_connected_s8_signs(const int8_t *x, size_t batches, size_t k, const uint8_t *w, size_t n,
                                        const kws_epilogue *e, int log2_block, int8_t *y) {
  (void)log2_block;
  for (size_t b = 0; b < batches; b++) signs(x + b * k, k, w, n, e, y + b * n);
}

KWS_SSE41_END
#endif
