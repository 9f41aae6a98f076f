/* QUANTIZE float32 -> int8/int16, AVX2: 8 values at a time, the arithmetic of
 * the portable kernel (docs/arithmetic.md 4).
 *
 * vdivps is the IEEE division the scalar code does. The quotient is clamped
 * to just outside the output range with vmaxps/vminps; vmaxps(q, lo) returns
 * lo when q is NaN, as the scalar `!(q >= lo)` does. vcvttps2dq truncates;
 * q - trunc(q) is exact (|q| < 2^17), and comparing it with +-0.5 rounds half
 * away from zero. The n % 8 tail runs the scalar kernel. */
#include "../portable/portable.h"
#include "avx2.h"

#if defined(__x86_64__) || defined(__i386__)

/* 8 quantized values, clamped to [qmin, qmax], as int16 (they fit int8 when qmin, qmax do). */
static inline __m128i quantize8(const float *x, __m256 scale, __m256 lo, __m256 hi, __m256i zp, __m256i qmin,
                                __m256i qmax) {
  __m256 q = _mm256_div_ps(_mm256_loadu_ps(x), scale);
  q = _mm256_min_ps(_mm256_max_ps(q, lo), hi);
  __m256i t = _mm256_cvttps_epi32(q);
  __m256 frac = _mm256_sub_ps(q, _mm256_cvtepi32_ps(t));
  __m256i up = _mm256_castps_si256(_mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ));
  __m256i down = _mm256_castps_si256(_mm256_cmp_ps(frac, _mm256_set1_ps(-0.5f), _CMP_LE_OQ));
  t = _mm256_add_epi32(_mm256_sub_epi32(t, up), down); /* masks are -1: t + 1, t - 1 */
  __m256i r = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(t, zp), qmin), qmax);
  return _mm_packs_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
}

#define QUANTIZE_SETUP(QMIN, QMAX)                                                   \
  const __m256 s = _mm256_set1_ps(scale);                                            \
  const __m256 lo = _mm256_set1_ps((float)(QMIN - zero_point - 1));                  \
  const __m256 hi = _mm256_set1_ps((float)(QMAX - zero_point + 1));                  \
  const __m256i zp = _mm256_set1_epi32(zero_point), qmin = _mm256_set1_epi32(QMIN), \
                qmax = _mm256_set1_epi32(QMAX);

void kws_avx2_quantize_s8(const float *x, size_t n, float scale, int32_t zero_point, int8_t *y) {
  QUANTIZE_SETUP(INT8_MIN, INT8_MAX)
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m128i v = quantize8(x + i, s, lo, hi, zp, qmin, qmax);
    _mm_storel_epi64((__m128i *)(y + i), _mm_packs_epi16(v, v));
  }
  kws_portable_quantize_s8(x + i, n - i, scale, zero_point, y + i);
}

void kws_avx2_quantize_s16(const float *x, size_t n, float scale, int32_t zero_point, int16_t *y) {
  QUANTIZE_SETUP(INT16_MIN, INT16_MAX)
  size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm_storeu_si128((__m128i *)(y + i), quantize8(x + i, s, lo, hi, zp, qmin, qmax));
  kws_portable_quantize_s16(x + i, n - i, scale, zero_point, y + i);
}

KWS_AVX2_END
#endif
