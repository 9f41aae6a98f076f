/* Requantization of accumulator arrays, AVX2.
 *
 * int32: 8 lanes at a time with kws_avx2_requant_s32 (avx2.h: SRDHM through
 * exact 64-bit even/odd products, per-lane shifts with vpsllvd / vpsravd),
 * which covers every int32 multiplier, INT32_MIN included; the n % 8 tail runs
 * the scalar kws_requant_s32.
 *
 * int64 (16x8): 4 lanes at a time with kws_avx2_requant_s64 (avx2.h: the
 * 64-bit product from two 32 x 32-bit multiplies, the arithmetic shift from
 * vpsrlvq with a sign flip); the n % 4 tail runs kws_requant_s64. */
#include "avx2.h"

#if defined(__x86_64__) || defined(__i386__)

void kws_avx2_requantize_s32(const int32_t *acc, const int32_t *mult, const int32_t *shift, size_t n,
                             int32_t *out) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256i a = _mm256_loadu_si256((const __m256i *)(acc + i));
    __m256i m = _mm256_loadu_si256((const __m256i *)(mult + i));
    __m256i s = _mm256_loadu_si256((const __m256i *)(shift + i));
    _mm256_storeu_si256((__m256i *)(out + i), kws_avx2_requant_s32(a, m, s));
  }
  for (; i < n; i++) out[i] = kws_requant_s32(acc[i], mult[i], shift[i]);
}

void kws_avx2_requantize_s64(const int64_t *acc, const int32_t *mult, const int32_t *shift, size_t n,
                             int32_t *out) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    __m256i a = _mm256_loadu_si256((const __m256i *)(acc + i));
    __m128i m = _mm_loadu_si128((const __m128i *)(mult + i));
    __m128i s = _mm_loadu_si128((const __m128i *)(shift + i));
    _mm_storeu_si128((__m128i *)(out + i), kws_avx2_requant_s64(a, m, s));
  }
  for (; i < n; i++) out[i] = kws_requant_s64(acc[i], mult[i], shift[i]);
}

KWS_AVX2_END
#endif
