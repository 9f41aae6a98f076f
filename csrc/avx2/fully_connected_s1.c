/* FULLY_CONNECTED with 1-bit codes (w = -1 or +1), AVX2: exact table lookup.
 *
 * With m the set of inputs a row weights -1, dot = sum(x) - 2 S, S = sum of
 * x[i] over m (no activation is negated, so x = -128 cannot wrap). Per input
 * vector, each group g of 4 inputs gets a table of its 16 subset sums
 * T_g[p] = sum of x[4g + j] over the bits j set in p, |T| <= 512: int16,
 * stored as a 16-byte low-byte plane and a 16-byte high-byte plane. A row's
 * 4 sign bits of group g (bit j set for w = -1) index T_g with vpshufb, one
 * lookup per plane for 32 rows at once; vpunpck{l,h}bw of the two planes
 * rebuilds the int16 values exactly.
 *
 * Layout: rows padded to a multiple of 32 (panels), K to a multiple of 8
 * (steps); padding bits are 0 and the tables hold x = 0 past K, so padding
 * adds nothing. Step h of a panel is 32 bytes: byte q holds the bits of row
 * (q % 16 < 8 ? 0 : 16) + 8 (q / 16) + q % 8, group 2h in its low nibble and
 * group 2h + 1 in its high nibble, an order that makes the unpacked int16
 * lanes rows 0..15 (low unpack) and 16..31 (high unpack) in order.
 *
 * Bounds: a step adds two table values to each int16 lane, so 32 steps add
 * 64 values in [-512, 508]: the sum lies in [-32768, 32512], exact in int16,
 * and is then widened into int32 lanes (vpmovsxwd). |S| <= 128 * 16384 and
 * |sum(x) - 2 S| <= 3 * 2^21: exact in int32. Tables take 32 bytes per group,
 * so they are built for at most CHUNK_K inputs at a time (16 KiB of stack);
 * longer rows are summed chunk by chunk over sets of SET_ROWS rows, whose
 * int32 sums wait in a stack buffer. */
#include <string.h>

#include "avx2.h"

#if defined(__x86_64__) || defined(__i386__)

#define CHUNK_K 2048
#define SET_ROWS 256

static size_t round8(size_t v) { return (v + 7) & ~(size_t)7; }
static size_t round32(size_t v) { return (v + 31) & ~(size_t)31; }

size_t kws_avx2_packed_dense_s1_bytes(size_t k, size_t n) { return round32(n) * round8(k) / 8; }

void kws_avx2_pack_dense_s1(kws_codes codes, size_t k, size_t n, uint8_t *packed) {
  const size_t k8 = round8(k);
  for (size_t o = 0; o < n; o++) {
    const size_t r = o % 32, q = (r % 16) / 8 * 16 + (r >= 16 ? 8 : 0) + r % 8; /* byte of row r */
    uint8_t *panel = packed + (o - r) * k8 / 8;
    for (size_t i = 0; i < k; i++)
      panel[i / 8 * 32 + q] |= (uint8_t)((kws_code_at(codes, o * k + i) < 0) << (i % 8));
  }
}

/* The tables of groups g0 .. g0 + groups - 1, 32 bytes each (low plane, high
 * plane). vpmaddubsw forms the subset sums: int16 lane p multiplies x[4g],
 * x[4g + 1] by bits 0, 1 of p and x[4g + 2], x[4g + 3] by bits 2, 3, exact
 * (products of 0 or 1); lanes 0..7 of the result are p = 0..7, lanes 8..15
 * p = 8..15. A byte shuffle and a qword permutation gather the planes. */
static void build_tables(const int8_t *x, size_t k, size_t g0, size_t groups, uint8_t *table) {
  const __m256i bits01 = _mm256_setr_epi8(0, 0, 1, 0, 0, 1, 1, 1, 0, 0, 1, 0, 0, 1, 1, 1, 0, 0, 1, 0, 0, 1, 1,
                                          1, 0, 0, 1, 0, 0, 1, 1, 1);
  const __m256i bits23 = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 1, 0, 1, 0, 0, 1, 0, 1, 0, 1, 0,
                                          1, 1, 1, 1, 1, 1, 1, 1, 1);
  const __m256i planes = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15, 0, 2, 4, 6, 8,
                                          10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
  for (size_t g = g0; g < g0 + groups; g++, table += 32) {
    int8_t t[4] = {0}; /* zeros past K */
    const int8_t *xg = x + 4 * g;
    if (4 * g + 4 > k) {
      for (size_t i = 4 * g; i < k; i++) t[i - 4 * g] = x[i];
      xg = t;
    }
    int16_t q01, q23;
    memcpy(&q01, xg, 2);
    memcpy(&q23, xg + 2, 2);
    __m256i v = _mm256_add_epi16(_mm256_maddubs_epi16(bits01, _mm256_set1_epi16(q01)),
                                 _mm256_maddubs_epi16(bits23, _mm256_set1_epi16(q23)));
    v = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(v, planes), 0xD8);
    _mm256_storeu_si256((__m256i *)table, v);
  }
}

/* Adds (first: stores) S of the 32 rows of one panel over `steps` steps. */
static inline void panel_sums(const uint8_t *table, const uint8_t *w, size_t steps, int first, int32_t *acc) {
  const __m256i low4 = _mm256_set1_epi8(15);
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  size_t s = 0;
  while (s < steps) {
    const size_t end = steps - s > 32 ? s + 32 : steps; /* 32 steps: 64 table values per int16 lane */
    __m256i lo = _mm256_setzero_si256(), hi = lo;
    for (; s < end; s++, w += 32, table += 64) {
      __m256i v = _mm256_loadu_si256((const __m256i *)w);
      __m256i i0 = _mm256_and_si256(v, low4), i1 = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
      __m256i l0 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)table));
      __m256i h0 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(table + 16)));
      __m256i l1 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(table + 32)));
      __m256i h1 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(table + 48)));
      __m256i b0 = _mm256_shuffle_epi8(l0, i0), c0 = _mm256_shuffle_epi8(h0, i0);
      __m256i b1 = _mm256_shuffle_epi8(l1, i1), c1 = _mm256_shuffle_epi8(h1, i1);
      lo = _mm256_add_epi16(lo, _mm256_add_epi16(_mm256_unpacklo_epi8(b0, c0), _mm256_unpacklo_epi8(b1, c1)));
      hi = _mm256_add_epi16(hi, _mm256_add_epi16(_mm256_unpackhi_epi8(b0, c0), _mm256_unpackhi_epi8(b1, c1)));
    }
    a0 = _mm256_add_epi32(a0, _mm256_cvtepi16_epi32(_mm256_castsi256_si128(lo)));
    a1 = _mm256_add_epi32(a1, _mm256_cvtepi16_epi32(_mm256_extracti128_si256(lo, 1)));
    a2 = _mm256_add_epi32(a2, _mm256_cvtepi16_epi32(_mm256_castsi256_si128(hi)));
    a3 = _mm256_add_epi32(a3, _mm256_cvtepi16_epi32(_mm256_extracti128_si256(hi, 1)));
  }
  const __m256i a[4] = {a0, a1, a2, a3};
  for (int b = 0; b < 4; b++) {
    __m256i *at = (__m256i *)(acc + 8 * b);
    _mm256_storeu_si256(at, first ? a[b] : _mm256_add_epi32(_mm256_loadu_si256(at), a[b]));
  }
}

static void fully_connected_s1(const int8_t *x, size_t k, const uint8_t *w, size_t n, const kws_epilogue *e,
                               int8_t *y) {
  uint8_t table[CHUNK_K / 4 * 32];
  int32_t acc[SET_ROWS];
  const size_t k8 = round8(k), n32 = round32(n);
  const int32_t sum_x = kws_avx2_sum_s8(x, k);
  const __m256i sx = _mm256_set1_epi32(sum_x);
  for (size_t o = 0; o < n32; o += SET_ROWS) {
    const size_t rows = n32 - o < SET_ROWS ? n32 - o : SET_ROWS;
    for (size_t c = 0; c < k8; c += CHUNK_K) {
      const size_t len = k8 - c < CHUNK_K ? k8 - c : CHUNK_K;
      if (o == 0 || k8 > CHUNK_K) build_tables(x, k, c / 4, len / 4, table); /* else still there */
      for (size_t p = 0; p < rows; p += 32)
        panel_sums(table, w + (o + p) * k8 / 8 + c * 4, len / 8, c == 0, acc + p);
    }
    for (size_t r = 0; r < rows && o + r < n; r += 8) {
      __m256i d = _mm256_sub_epi32(sx, _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)(acc + r)), 1));
      if (o + r + 8 <= n) {
        kws_avx2_store8_s8(y + o + r, kws_avx2_epilogue8(d, e, o + r));
      } else {
        int32_t s[8];
        _mm256_storeu_si256((__m256i *)s, d);
        for (size_t j = o + r; j < n; j++) y[j] = kws_epilogue_s8(s[j - o - r], e, j);
      }
    }
  }
}

void kws_avx2_fully_connected_s1(const int8_t *x, size_t batches, size_t k, const uint8_t *w, size_t n,
                                 const kws_epilogue *e, int log2_block, int8_t *y) {
  (void)log2_block; /* the int16 blocks above are proven from the 1-bit codes */
  for (size_t b = 0; b < batches; b++) fully_connected_s1(x + b * k, k, w, n, e, y + b * n);
}

KWS_AVX2_END
#endif
