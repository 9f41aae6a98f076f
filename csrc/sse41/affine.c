/* Per-channel affine (DEPTHWISE_CONV_2D 1x1), SSE4.1: products 8 channels at a time.
 *
 * int8: x and w are sign-extended to int16 (pmovsxbw) and multiplied with
 * pmullw, whose low 16 bits are the whole product: |w * x| <= 127 * 128 =
 * 16256 < 2^15. The products are sign-extended to int32 and the folded bias
 * added (|.| <= 2^30 + 2^28 + 16256 < 2^31). int16: x and w sign-extended to
 * int32 and multiplied with pmulld, |w * x| <= 127 * 32768 < 2^22, then
 * widened to int64 for the int64 bias. Requantization is the vector code of
 * sse41.h; the n % 8 (int16: n % 4) tail channels are scalar. */
#include <string.h>

#include "sse41.h"

#if defined(__x86_64__) || defined(__i386__)

void kws_sse41_affine_s8(const int8_t *x, size_t n, const int8_t *w, const int32_t *bias,
                         const kws_requant_params *p, int8_t *y) {
  size_t c = 0;
  for (; c + 8 <= n; c += 8) {
    __m128i xv = _mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)(x + c)));
    __m128i wv = _mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)(w + c)));
    __m128i prod = _mm_mullo_epi16(wv, xv);
    __m128i lo = _mm_add_epi32(_mm_cvtepi16_epi32(prod), _mm_loadu_si128((const __m128i *)(bias + c)));
    __m128i hi = _mm_add_epi32(_mm_cvtepi16_epi32(_mm_srli_si128(prod, 8)),
                               _mm_loadu_si128((const __m128i *)(bias + c + 4)));
    kws_sse41_store8_s8(y + c, kws_sse41_output4_s32(lo, p, c), kws_sse41_output4_s32(hi, p, c + 4));
  }
  for (; c < n; c++) y[c] = (int8_t)kws_sse41_output_s32((int32_t)w[c] * x[c] + bias[c], p, c);
}

void kws_sse41_affine_s16(const int16_t *x, size_t n, const int8_t *w, const int64_t *bias,
                          const kws_requant_params *p, int16_t *y) {
  size_t c = 0;
  for (; c + 4 <= n; c += 4) {
    __m128i xv = _mm_cvtepi16_epi32(_mm_loadl_epi64((const __m128i *)(x + c)));
    int32_t w4;
    memcpy(&w4, w + c, 4); /* 4 weights, unaligned */
    __m128i wv = _mm_cvtepi8_epi32(_mm_cvtsi32_si128(w4));
    __m128i prod = _mm_mullo_epi32(wv, xv);
    __m128i acc01 = _mm_add_epi64(_mm_cvtepi32_epi64(prod), _mm_loadu_si128((const __m128i *)(bias + c)));
    __m128i acc23 = _mm_add_epi64(_mm_cvtepi32_epi64(_mm_unpackhi_epi64(prod, prod)),
                                  _mm_loadu_si128((const __m128i *)(bias + c + 2)));
    __m128i v = kws_sse41_output4_s64(acc01, acc23, p, c);
    _mm_storel_epi64((__m128i *)(y + c), _mm_packs_epi32(v, v)); /* clamped to int16: the pack is exact */
  }
  for (; c < n; c++) y[c] = (int16_t)kws_sse41_output_s64((int64_t)w[c] * x[c] + bias[c], p, c);
}

KWS_SSE41_END
#endif
