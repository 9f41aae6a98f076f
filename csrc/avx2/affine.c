/* Per-channel affine (DEPTHWISE_CONV_2D 1x1), AVX2: 8 channels at a time.
 *
 * int8: x and w are sign-extended to int32 (vpmovsxbd) and multiplied with
 * vpmulld; |w * x| <= 127 * 128 and the folded bias is at most 2^30 + 2^28 in
 * magnitude, so acc = w * x + bias is exact in int32, and the vector epilogue
 * (avx2.h) requantizes it. int16: |w * x| <= 127 * 32768 < 2^22 is exact in
 * int32 too; it is sign-extended to int64 (vpmovsxdq) and the int64 bias
 * added; the epilogue runs on 8 lanes (avx2.h). The n % 8 tail channels
 * run the same arithmetic in scalar code. */
#include "avx2.h"

#if defined(__x86_64__) || defined(__i386__)

void kws_avx2_affine_s8(const int8_t *x, size_t n, const int8_t *w, const int32_t *bias,
                        const kws_requant_params *p, int8_t *y) {
  size_t c = 0;
  for (; c + 8 <= n; c += 8) {
    __m256i xv = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(x + c)));
    __m256i wv = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(w + c)));
    __m256i acc = _mm256_add_epi32(_mm256_mullo_epi32(wv, xv), _mm256_loadu_si256((const __m256i *)(bias + c)));
    kws_avx2_store8_s8(y + c, kws_avx2_output_s32(acc, p, c));
  }
  for (; c < n; c++) {
    int32_t acc = (int32_t)w[c] * x[c] + bias[c];
    y[c] = (int8_t)kws_avx2_clamp(
        kws_add_wrap(kws_requant_s32(acc, p->multiplier[c], p->shift[c]), p->output_zero_point), p);
  }
}

void kws_avx2_affine_s16(const int16_t *x, size_t n, const int8_t *w, const int64_t *bias,
                         const kws_requant_params *p, int16_t *y) {
  size_t c = 0;
  for (; c + 8 <= n; c += 8) {
    __m256i xv = _mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i *)(x + c)));
    __m256i wv = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(w + c)));
    __m256i prod = _mm256_mullo_epi32(wv, xv);
    __m256i lo = _mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(prod)),
                                  _mm256_loadu_si256((const __m256i *)(bias + c)));
    __m256i hi = _mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_extracti128_si256(prod, 1)),
                                  _mm256_loadu_si256((const __m256i *)(bias + c + 4)));
    kws_avx2_output8_s64(y + c, lo, hi, p, c);
  }
  for (; c < n; c++) {
    int64_t acc = (int64_t)w[c] * x[c] + bias[c];
    int32_t v = kws_add_wrap(kws_requant_s64(acc, p->multiplier[c], p->shift[c]), p->output_zero_point);
    y[c] = (int16_t)kws_avx2_clamp(v, p);
  }
}

KWS_AVX2_END
#endif
