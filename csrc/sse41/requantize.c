/* Requantization of accumulator arrays, SSE4.1.
 *
 * int32: 4 lanes at a time with kws_sse41_requant_s32 (sse41.h: SRDHM from
 * pmuldq's exact 64-bit products, the per-lane shifts as exact
 * multiplications), for every int32 multiplier, INT32_MIN included; the
 * n % 4 tail runs the scalar kws_requant_s32.
 *
 * int64 (16x8): 4 lanes at a time with kws_sse41_requant4_s64 (sse41.h: the
 * 64-bit product from two 32 x 32-bit multiplies, each 64-bit lane shifted
 * by its own count); the n % 4 tail runs kws_requant_s64. */
#include "sse41.h"

#if defined(__x86_64__) || defined(__i386__)

void kws_sse41_requantize_s32(const int32_t *acc, const int32_t *mult, const int32_t *shift, size_t n,
                              int32_t *out) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    __m128i a = _mm_loadu_si128((const __m128i *)(acc + i));
    __m128i m = _mm_loadu_si128((const __m128i *)(mult + i));
    __m128i s = _mm_loadu_si128((const __m128i *)(shift + i));
    _mm_storeu_si128((__m128i *)(out + i), kws_sse41_requant_s32(a, m, s));
  }
  for (; i < n; i++) out[i] = kws_requant_s32(acc[i], mult[i], shift[i]);
}

void kws_sse41_requantize_s64(const int64_t *acc, const int32_t *mult, const int32_t *shift, size_t n,
                              int32_t *out) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    __m128i a01 = _mm_loadu_si128((const __m128i *)(acc + i)), a23 = _mm_loadu_si128((const __m128i *)(acc + i + 2));
    _mm_storeu_si128((__m128i *)(out + i), kws_sse41_requant4_s64(a01, a23, mult + i, shift + i));
  }
  for (; i < n; i++) out[i] = kws_requant_s64(acc[i], mult[i], shift[i]);
}

KWS_SSE41_END
#endif
