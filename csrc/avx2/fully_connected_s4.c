/* FULLY_CONNECTED with 2..4-bit codes (w in [-7, 7]), AVX2: unsigned offset
 * codes u = w + 8 (1..15), two per byte, in panels like the int8 kernel's
 * (fully_connected.c).
 *
 * Layout: rows padded to a multiple of 8 (blocks), 4 blocks (32 rows) per
 * panel, the last panel holding the 1..4 blocks left; K padded to a multiple
 * of 8 (steps). A panel is one stream of steps; step h holds 32 bytes per
 * block, byte 4r + j of block b holding u[8b + r][8h + j] in its low nibble
 * and u[8b + r][8h + 4 + j] in its high nibble. Padding codes are 0, and the
 * kernel reads x as zero past K, so padding adds nothing to any sum.
 *
 * Kernel: x[8h..8h+3] and x[8h+4..8h+7] are broadcast to all dword lanes;
 * vpmaddubsw takes the nibbles (split with and/shift) as its unsigned operand
 * and x as its signed one, so no sign or abs step: each int16 lane gets pair
 * sums u0 x0 + u1 x1 in [-2 * 15 * 128, 2 * 15 * 127] = [-3840, 3810] of the
 * row its dword lane belongs to. A step adds two pair sums to each int16 lane
 * and a block of 4 steps at most 8, |.| <= 30720 < 2^15: exact in int16
 * (vpmaddubsw never saturates, |pair| < 2^15). vpmaddwd with ones then adds
 * the two int16 lanes of a row into its int32 lane, once per 4 steps. The row
 * sum is S = sum u x = dot + 8 sum(x), so dot = S - 8 sum(x), with sum(x)
 * formed once per input vector; |S| <= 15 * 128 * 16384 < 2^25, exact in
 * int32. The epilogue (avx2.h) runs on 8 rows, the scalar one on a last
 * partial block. */
#include <string.h>

#include "avx2.h"

#if defined(__x86_64__) || defined(__i386__)

static size_t round8(size_t v) { return (v + 7) & ~(size_t)7; }

size_t kws_avx2_packed_dense_s4_bytes(size_t k, size_t n) { return round8(n) * round8(k) / 2; }

void kws_avx2_pack_dense_s4(kws_codes codes, size_t k, size_t n, uint8_t *packed) {
  const size_t k8 = round8(k), n8 = round8(n);
  for (size_t p = 0; p < n8; p += 32) {
    const size_t nb = n8 - p < 32 ? (n8 - p) / 8 : 4; /* blocks in this panel */
    uint8_t *panel = packed + p * k8 / 2;
    for (size_t r = 0; r < 8 * nb && p + r < n; r++)
      for (size_t i = 0; i < k; i++) {
        size_t h = i / 8, j = i % 8;
        size_t at = h * 32 * nb + (r / 8) * 32 + (r % 8) * 4 + j % 4;
        panel[at] |= (uint8_t)((kws_code_at(codes, (p + r) * k + i) + 8) << (j < 4 ? 0 : 4));
      }
  }
}

#define STEP(b)                                                                                             \
  if (nb > b) {                                                                                             \
    __m256i v = _mm256_loadu_si256((const __m256i *)(w + 32 * b));                                          \
    __m256i lo = _mm256_and_si256(v, low4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);           \
    s##b = _mm256_add_epi16(s##b, _mm256_add_epi16(_mm256_maddubs_epi16(lo, x0), _mm256_maddubs_epi16(hi, x1))); \
  }

/* One step: 8 K (x at xp) of every block; adds two pair sums to each int16 lane. */
#define STEPS(xp)                                                                                           \
  {                                                                                                         \
    int32_t q0, q1;                                                                                         \
    memcpy(&q0, (xp), 4);                                                                                   \
    memcpy(&q1, (xp) + 4, 4);                                                                               \
    const __m256i x0 = _mm256_set1_epi32(q0), x1 = _mm256_set1_epi32(q1);                                   \
    STEP(0) STEP(1) STEP(2) STEP(3)                                                                         \
    w += 32 * nb;                                                                                           \
  }

#define ZERO __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
#define FLUSH(b) if (nb > b) a##b = _mm256_add_epi32(a##b, _mm256_madd_epi16(s##b, ones));
#define FLUSH4 FLUSH(0) FLUSH(1) FLUSH(2) FLUSH(3)

/* Rows o .. o + 8 * nb - 1 from the panel at w. Inlined into each call, where
 * nb is a constant, so the blocks not used fold away. */
static inline __attribute__((always_inline)) void blocks_s4(const int8_t *x, size_t k, const uint8_t *w, size_t n,
                                                             size_t o, const int nb, int32_t sum_x,
                                                             const kws_epilogue *e, int8_t *y) {
  const __m256i ones = _mm256_set1_epi16(1), low4 = _mm256_set1_epi8(15);
  const __m256i corr = _mm256_set1_epi32(-8 * sum_x);
  __m256i a0 = corr, a1 = corr, a2 = corr, a3 = corr;
  size_t i = 0;
  for (; i + 32 <= k; i += 32) { /* 4 steps: 8 pair sums per int16 lane */
    ZERO
    STEPS(x + i) STEPS(x + i + 8) STEPS(x + i + 16) STEPS(x + i + 24)
    FLUSH4
  }
  if (i < k) { /* at most 3 whole steps and one partial one: x is not read past k */
    ZERO
    for (; i + 8 <= k; i += 8) STEPS(x + i)
    if (i < k) {
      int8_t t[8] = {0};
      memcpy(t, x + i, k - i);
      STEPS(t)
    }
    FLUSH4
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

static void fully_connected_s4(const int8_t *x, size_t k, const uint8_t *w, size_t n, const kws_epilogue *e,
                               int8_t *y) {
  const size_t panel = 16 * round8(k); /* bytes of a panel of 32 rows */
  const int32_t sum_x = kws_avx2_sum_s8(x, k);
  size_t o = 0;
  for (; o + 32 <= n; o += 32, w += panel) blocks_s4(x, k, w, n, o, 4, sum_x, e, y);
  switch ((n - o + 7) / 8) { /* 0 to 4 blocks left in the last panel, the last block maybe partial */
  case 4: blocks_s4(x, k, w, n, o, 4, sum_x, e, y); break;
  case 3: blocks_s4(x, k, w, n, o, 3, sum_x, e, y); break;
  case 2: blocks_s4(x, k, w, n, o, 2, sum_x, e, y); break;
  case 1: blocks_s4(x, k, w, n, o, 1, sum_x, e, y); break;
  }
}

void kws_avx2_fully_connected_s4(const int8_t *x, size_t batches, size_t k, const uint8_t *w, size_t n,
                                 const kws_epilogue *e, int log2_block, int8_t *y) {
  (void)log2_block; /* the int16 blocks above are proven from the 4-bit codes */
  for (size_t b = 0; b < batches; b++) fully_connected_s4(x + b * k, k, w, n, e, y + b * n);
}

KWS_AVX2_END
#endif
