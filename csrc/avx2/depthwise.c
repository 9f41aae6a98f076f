/* DEPTHWISE_CONV_2D in time on AVX2: the sums of the portable kernel (csrc/portable/depthwise.c) for 16
 * channels at a time, then the vector epilogue (avx2.h).
 *
 * Exactness: taps go in pairs. The codes of taps k and k + 1 are sign-extended to int16 and interleaved
 * channel by channel (vpunpck*wd), so vpmaddwd forms w[k][c] * x[k][c] + w[k+1][c] * x[k+1][c] exactly in
 * an int32 lane (each product |.| <= 127 * 128); an odd last tap pairs with zero codes. The int32 sum is
 * the portable kernel's in another order: |sum| <= 16384 * 127 * 128 < 2^28, so no addition wraps.
 * The unpacks work inside each 128-bit half: the low accumulator holds channels 0-3 and 8-11 of the block,
 * the high one 4-7 and 12-15, which vperm2i128 puts back in order before the epilogue.
 *
 * Channels: with c >= 16, a last partial block is computed as the 16 channels that end at channel c,
 * overlapping the block before it; the overlapped channels get the same inputs, so they are written again
 * with the same codes (y never overlaps x), and no load reaches past a row. With c < 16 the sums are
 * formed in scalar code and the epilogue reads the parameters of the c channels only. */
#include "avx2.h"

#if defined(__x86_64__) || defined(__i386__)

enum { BLOCK = 16 };

static inline __m256i codes16(const int8_t *p) { return _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)p)); }

/* epilogue of channels c0 .. c0 + r - 1 (r in 1..16) from v0 (channels c0..c0+7) and v1 (c0+8..c0+15). */
static inline void finish(__m256i v0, __m256i v1, const kws_epilogue *e, size_t c0, size_t r, int8_t *y) {
  if (r < 8) {
    kws_avx2_epilogue_part(v0, e, c0, r, y + c0);
    return;
  }
  kws_avx2_store8_s8(y + c0, kws_avx2_epilogue8(v0, e, c0));
  if (r == BLOCK)
    kws_avx2_store8_s8(y + c0 + 8, kws_avx2_epilogue8(v1, e, c0 + 8));
  else if (r > 8)
    kws_avx2_epilogue_part(v1, e, c0 + 8, r - 8, y + c0 + 8);
}

void kws_avx2_depthwise_s8(const int8_t *x, size_t row_stride, size_t taps, size_t c, const int8_t *w,
                           const kws_epilogue *e, int8_t *y) {
  if (c < BLOCK) {
    int32_t acc[BLOCK] = {0};
    for (size_t k = 0; k < taps; k++)
      for (size_t i = 0; i < c; i++) acc[i] += (int32_t)w[k * c + i] * (int32_t)x[k * row_stride + i];
    finish(_mm256_loadu_si256((const __m256i *)acc), _mm256_loadu_si256((const __m256i *)(acc + 8)), e, 0, c, y);
    return;
  }
  for (size_t b = 0; b < c; b += BLOCK) {
    size_t c0 = b + BLOCK <= c ? b : c - BLOCK;
    __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
    size_t k = 0;
    for (; k + 2 <= taps; k += 2) {
      __m256i xa = codes16(x + k * row_stride + c0), xb = codes16(x + (k + 1) * row_stride + c0);
      __m256i wa = codes16(w + k * c + c0), wb = codes16(w + (k + 1) * c + c0);
      lo = _mm256_add_epi32(lo, _mm256_madd_epi16(_mm256_unpacklo_epi16(xa, xb), _mm256_unpacklo_epi16(wa, wb)));
      hi = _mm256_add_epi32(hi, _mm256_madd_epi16(_mm256_unpackhi_epi16(xa, xb), _mm256_unpackhi_epi16(wa, wb)));
    }
    if (k < taps) {
      const __m256i zero = _mm256_setzero_si256();
      __m256i xa = codes16(x + k * row_stride + c0), wa = codes16(w + k * c + c0);
      lo = _mm256_add_epi32(lo, _mm256_madd_epi16(_mm256_unpacklo_epi16(xa, zero), _mm256_unpacklo_epi16(wa, zero)));
      hi = _mm256_add_epi32(hi, _mm256_madd_epi16(_mm256_unpackhi_epi16(xa, zero), _mm256_unpackhi_epi16(wa, zero)));
    }
    finish(_mm256_permute2x128_si256(lo, hi, 0x20), _mm256_permute2x128_si256(lo, hi, 0x31), e, c0, BLOCK, y);
  }
}

/* int16 sums (kws_kernels.depthwise_s8_acc16): per tap one vpmullw of the sign-extended codes
 * (|w * x| <= 127 * 128 fits int16 exactly) and one vpaddw, 16 channels a vector; the int16 sum of every
 * channel is exact because its weights have 128 * sum_k |w| <= 32767 (checked at load), so no partial sum
 * leaves int16. Widened to int32 once, for the epilogue. */
void kws_avx2_depthwise_s8_acc16(const int8_t *x, size_t row_stride, size_t taps, size_t c, const int8_t *w,
                                 const kws_epilogue *e, int8_t *y) {
  if (c < BLOCK) {
    kws_avx2_depthwise_s8(x, row_stride, taps, c, w, e, y);
    return;
  }
  for (size_t b = 0; b < c; b += BLOCK) {
    size_t c0 = b + BLOCK <= c ? b : c - BLOCK;
    __m256i acc = _mm256_setzero_si256();
    for (size_t k = 0; k < taps; k++)
      acc = _mm256_add_epi16(acc, _mm256_mullo_epi16(codes16(x + k * row_stride + c0), codes16(w + k * c + c0)));
    finish(_mm256_cvtepi16_epi32(_mm256_castsi256_si128(acc)), _mm256_cvtepi16_epi32(_mm256_extracti128_si256(acc, 1)),
           e, c0, BLOCK, y);
  }
}

KWS_AVX2_END
#endif
