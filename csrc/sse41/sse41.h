/* The sse4.1 backend: declarations and helpers shared by its kernels.
 *
 * The extension is built for baseline x86-64, so SSE4.1 (with SSSE3 for
 * phaddd) is enabled here, for the rest of each including file only;
 * backends.c selects these kernels only on CPUs that report SSE4.1. Include
 * this header first and end the file with KWS_SSE41_END. GCC takes
 * `#pragma GCC target`; clang ignores it and needs `#pragma clang attribute`.
 *
 * SSE4.1 has no per-lane variable shift; the int32 requantization below gets
 * its per-channel shifts from exact multiplications instead. int64
 * requantization is the scalar kws_requant_s64 (see requantize.c). */
#ifndef KWSINT_SSE41_H
#define KWSINT_SSE41_H

#if defined(__x86_64__) || defined(__i386__)

#include "../kwsint_internal.h"

#if defined(__clang__)
#include <immintrin.h>
#pragma clang attribute push(__attribute__((target("sse4.1"))), apply_to = function)
#define KWS_SSE41_END _Pragma("clang attribute pop")
#else
#pragma GCC target("sse4.1")
#include <immintrin.h>
#define KWS_SSE41_END
#endif

void kws_sse41_requantize_s32(const int32_t *acc, const int32_t *mult, const int32_t *shift, size_t n,
                              int32_t *out);
void kws_sse41_fully_connected_s8(const int8_t *x, size_t k, const int8_t *w, size_t n, const int32_t *bias,
                                  const kws_requant_params *p, int8_t *y);
void kws_sse41_fully_connected_s16(const int16_t *x, size_t k, const int8_t *w, size_t n, const int64_t *bias,
                                   const kws_requant_params *p, int16_t *y);
void kws_sse41_affine_s8(const int8_t *x, size_t n, const int8_t *w, const int32_t *bias,
                         const kws_requant_params *p, int8_t *y);
void kws_sse41_affine_s16(const int16_t *x, size_t n, const int8_t *w, const int64_t *bias,
                          const kws_requant_params *p, int16_t *y);

/* SaturatingRoundingDoublingHighMul on 4 lanes: floor((a*b + 2^30) / 2^31)
 * from the exact 64-bit products of pmuldq, as in avx2.h, which gives the
 * proof; the one overflow, a == b == INT32_MIN, comes out as 0x80000000 and
 * the xor turns it into INT32_MAX. */
static inline __m128i kws_sse41_srdhm(__m128i a, __m128i b) {
  const __m128i nudge = _mm_set1_epi64x((int64_t)1 << 30);
  const __m128i min = _mm_set1_epi32(INT32_MIN);
  __m128i even = _mm_add_epi64(_mm_mul_epi32(a, b), nudge);
  __m128i odd = _mm_add_epi64(_mm_mul_epi32(_mm_srli_epi64(a, 32), _mm_srli_epi64(b, 32)), nudge);
  __m128i r = _mm_blend_epi16(_mm_srli_epi64(even, 31), _mm_slli_epi64(odd, 1), 0xCC);
  __m128i sat = _mm_and_si128(_mm_cmpeq_epi32(a, min), _mm_cmpeq_epi32(b, min));
  return _mm_xor_si128(r, sat);
}

/* RoundingDivideByPOT(x, e), e in [0, 31] per lane, is x / 2^e rounded to
 * nearest with ties away from zero, computed in double: x converts exactly;
 * 2^-e is built from its float exponent bits (127 - e >= 96, a normal number)
 * and widens exactly, so v = x * 2^-e is exact (scaling by a power of two,
 * |v| >= 2^-31 or 0, never subnormal, so FTZ/DAZ cannot interfere); v +- 0.5
 * is an integer multiple of 2^-max(e, 1) below 2^32 in magnitude, at most 33
 * significant bits, so it is exact too; truncating it (cvttpd2dq ignores the
 * rounding mode) rounds v half away from zero, and the result fits int32. */
static inline __m128i kws_sse41_rounding_divide_by_pot(__m128i x, __m128i e) {
  const __m128d sign = _mm_set1_pd(-0.0), half = _mm_set1_pd(0.5);
  __m128 scale = _mm_castsi128_ps(_mm_slli_epi32(_mm_sub_epi32(_mm_set1_epi32(127), e), 23));
  __m128d lo = _mm_mul_pd(_mm_cvtepi32_pd(x), _mm_cvtps_pd(scale));
  __m128d hi = _mm_mul_pd(_mm_cvtepi32_pd(_mm_unpackhi_epi64(x, x)), _mm_cvtps_pd(_mm_movehl_ps(scale, scale)));
  lo = _mm_add_pd(lo, _mm_or_pd(_mm_and_pd(lo, sign), half));
  hi = _mm_add_pd(hi, _mm_or_pd(_mm_and_pd(hi, sign), half));
  return _mm_unpacklo_epi64(_mm_cvttpd_epi32(lo), _mm_cvttpd_epi32(hi));
}

/* kws_requant_s32 on 4 lanes, shift in [-31, 30]. The left shift is a
 * multiplication by 2^left (left <= 30: the float with exponent bits
 * left + 127 is exactly 2^left and converts exactly); the low 32 bits of
 * pmulld's product are acc << left modulo 2^32, the wrap the spec requires. */
static inline __m128i kws_sse41_requant_s32(__m128i acc, __m128i mult, __m128i shift) {
  __m128i left = _mm_max_epi32(shift, _mm_setzero_si128());
  __m128i right = _mm_sub_epi32(left, shift); /* max(-shift, 0) */
  __m128i pow2 = _mm_cvttps_epi32(_mm_castsi128_ps(_mm_slli_epi32(_mm_add_epi32(left, _mm_set1_epi32(127)), 23)));
  return kws_sse41_rounding_divide_by_pot(kws_sse41_srdhm(_mm_mullo_epi32(acc, pow2), mult), right);
}

/* The int8 epilogue of 4 channels: clamp(requant(acc) + zp_out (wraps), act_min, act_max). */
static inline __m128i kws_sse41_output4_s32(__m128i acc, const kws_requant_params *p, size_t c) {
  __m128i m = _mm_loadu_si128((const __m128i *)(p->multiplier + c));
  __m128i s = _mm_loadu_si128((const __m128i *)(p->shift + c));
  __m128i v = _mm_add_epi32(kws_sse41_requant_s32(acc, m, s), _mm_set1_epi32(p->output_zero_point));
  v = _mm_max_epi32(v, _mm_set1_epi32(p->act_min));
  return _mm_min_epi32(v, _mm_set1_epi32(p->act_max));
}

/* Store 8 clamped int32 lanes as int8; the clamp keeps them inside int8, so
 * the saturating packs change nothing. */
static inline void kws_sse41_store8_s8(int8_t *y, __m128i lo, __m128i hi) {
  __m128i w16 = _mm_packs_epi32(lo, hi);
  _mm_storel_epi64((__m128i *)y, _mm_packs_epi16(w16, w16));
}

/* The scalar epilogues, for tail channels and int64 accumulators. */
static inline int32_t kws_sse41_output_s32(int32_t acc, const kws_requant_params *p, size_t c) {
  int32_t v = kws_add_wrap(kws_requant_s32(acc, p->multiplier[c], p->shift[c]), p->output_zero_point);
  return v < p->act_min ? p->act_min : v > p->act_max ? p->act_max : v;
}

static inline int32_t kws_sse41_output_s64(int64_t acc, const kws_requant_params *p, size_t c) {
  int32_t v = kws_add_wrap(kws_requant_s64(acc, p->multiplier[c], p->shift[c]), p->output_zero_point);
  return v < p->act_min ? p->act_min : v > p->act_max ? p->act_max : v;
}

#endif /* x86 */
#endif
