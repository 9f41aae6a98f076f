/* FULLY_CONNECTED from two 4-bit codes per byte (KWS_WEIGHTS_PACKED), AVX2: 8 rows
 * at a time share each load of x, 32 K per step.
 *
 * 16 bytes of a row hold 32 codes: the low nibbles (even K) and high nibbles (odd K)
 * are split with a mask and a shift, interleaved back into K order
 * (vpunpck{l,h}bw), and sign-extended from 4 bits with (v ^ 8) - 8. Products use the
 * exact sign trick of fully_connected.c: vpmaddubsw(|x|, w * sign(x)), pair sums at
 * most 2 * 128 * 7, then vpmaddwd with ones into int32 lanes of the row; the row sums
 * are exact in int32 as for int8 containers. A K tail (K >= 32) reloads the last 16
 * bytes of each row, which lie inside it, against a copy of x holding only the
 * elements not yet counted (zeros elsewhere, and for the padding nibble of an odd K),
 * so no load passes the end of a row; K < 32 is summed in scalar code. Rows go 8 at a
 * time (the last group maybe partial, through the scalar epilogue). */
#include "avx2.h"

#if defined(__x86_64__) || defined(__i386__)

static inline int32_t nibble(unsigned v) { return (int32_t)((v & 15u) ^ 8u) - 8; }

/* 32 codes of one row from 16 bytes, in K order, as int8. */
static inline __m256i codes32(const uint8_t *b) {
  const __m128i low4 = _mm_set1_epi8(15), eight = _mm_set1_epi8(8);
  __m128i v = _mm_loadu_si128((const __m128i *)b);
  __m128i lo = _mm_and_si128(v, low4), hi = _mm_and_si128(_mm_srli_epi16(v, 4), low4);
  __m128i c0 = _mm_sub_epi8(_mm_xor_si128(_mm_unpacklo_epi8(lo, hi), eight), eight);
  __m128i c1 = _mm_sub_epi8(_mm_xor_si128(_mm_unpackhi_epi8(lo, hi), eight), eight);
  return _mm256_set_m128i(c1, c0);
}

static inline int32_t scalar_tail(const uint8_t *row, const int8_t *x, size_t from, size_t k) {
  int32_t s = 0;
  for (size_t i = from; i < k; i++) s += nibble(row[i / 2] >> (4 * (i & 1))) * x[i];
  return s;
}

static inline __m256i hsum8(const __m256i a[8]) {
  __m256i h0123 = _mm256_hadd_epi32(_mm256_hadd_epi32(a[0], a[1]), _mm256_hadd_epi32(a[2], a[3]));
  __m256i h4567 = _mm256_hadd_epi32(_mm256_hadd_epi32(a[4], a[5]), _mm256_hadd_epi32(a[6], a[7]));
  return _mm256_add_epi32(_mm256_permute2x128_si256(h0123, h4567, 0x20),
                          _mm256_permute2x128_si256(h0123, h4567, 0x31));
}

static void nibbles(const int8_t *x, size_t k, const uint8_t *w, size_t n, const kws_epilogue *e, int8_t *y) {
  const size_t stride = (k + 1) / 2, k32 = k & ~(size_t)31;
  const __m256i ones = _mm256_set1_epi16(1);
  /* x for the K tail: lane j is code c0 + j of each row's last 16 bytes, zero where counted already */
  const size_t c0 = k32 && k32 < k ? 2 * stride - 32 : 0;
  int8_t xt[32] = {0};
  for (size_t j = 0; c0 && j < 32; j++)
    if (c0 + j >= k32 && c0 + j < k) xt[j] = x[c0 + j];
  const __m256i xtv = _mm256_loadu_si256((const __m256i *)xt), xta = _mm256_abs_epi8(xtv);
  for (size_t o = 0; o < n; o += 8) {
    const int rows = n - o < 8 ? (int)(n - o) : 8;
    __m256i a[8];
    int32_t tail[8] = {0};
    for (int r = 0; r < 8; r++) a[r] = _mm256_setzero_si256();
    for (int r = 0; r < rows; r++) {
      const uint8_t *row = w + (o + (size_t)r) * stride;
      for (size_t i = 0; i < k32; i += 32) {
        __m256i xv = _mm256_loadu_si256((const __m256i *)(x + i));
        __m256i ws = _mm256_sign_epi8(codes32(row + i / 2), xv);
        a[r] = _mm256_add_epi32(a[r], _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(xv), ws), ones));
      }
      if (c0) {
        __m256i ws = _mm256_sign_epi8(codes32(row + stride - 16), xtv);
        a[r] = _mm256_add_epi32(a[r], _mm256_madd_epi16(_mm256_maddubs_epi16(xta, ws), ones));
      } else if (k32 < k) {
        tail[r] = scalar_tail(row, x, 0, k);
      }
    }
    __m256i acc = _mm256_add_epi32(hsum8(a), _mm256_loadu_si256((const __m256i *)tail));
    if (rows == 8) {
      kws_avx2_store8_s8(y + o, kws_avx2_epilogue8(acc, e, o));
    } else {
      int32_t s[8];
      _mm256_storeu_si256((__m256i *)s, acc);
      for (int r = 0; r < rows; r++) y[o + (size_t)r] = kws_epilogue_s8(s[r], e, o + (size_t)r);
    }
  }
}

void kws_avx2_fully_connected_s8_nibbles(const int8_t *x, size_t batches, size_t k, const uint8_t *w, size_t n,
                                         const kws_epilogue *e, int log2_block, int8_t *y) {
  (void)log2_block;
  for (size_t b = 0; b < batches; b++) nibbles(x + b * k, k, w, n, e, y + b * n);
}

KWS_AVX2_END
#endif
