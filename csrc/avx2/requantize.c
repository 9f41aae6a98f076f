/* Requantization of accumulator arrays, AVX2.
 *
 * int32: 8 lanes at a time with kws_avx2_requant_s32 (avx2.h: SRDHM through
 * exact 64-bit even/odd products, per-lane shifts with vpsllvd / vpsravd),
 * which covers every int32 multiplier, INT32_MIN included; the n % 8 tail runs
 * the scalar kws_requant_s32.
 *
 * int64 (16x8) stays scalar, kws_portable_requantize_s64 in the table: it
 * needs a 64 x 64-bit multiply and a 64-bit arithmetic shift by a per-lane
 * count, and AVX2 has neither (vpmullq and vpsravq are AVX-512). Emulating
 * them from 32-bit halves would buy little, because requantization runs once
 * per output channel, not once per multiply-accumulate. */
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

KWS_AVX2_END
#endif
