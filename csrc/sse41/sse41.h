/* The sse4.1 backend: declarations and helpers shared by its kernels.
 *
 * The extension is built for baseline x86-64, so SSE4.1 (with SSSE3 for
 * phaddd) is enabled here, for the rest of each including file only;
 * backends.c selects these kernels only on CPUs that report SSE4.1. Include
 * this header after every other header and end the file with KWS_SSE41_END. GCC takes
 * `#pragma GCC target`; clang ignores it and needs `#pragma clang attribute`.
 *
 * SSE4.1 has no per-lane variable shift; the int32 requantization below gets
 * its per-channel shifts from exact multiplications instead, and the int64
 * one shifts each of its two 64-bit lanes separately. */
#ifndef KWSINT_SSE41_H
#define KWSINT_SSE41_H

#if defined(__x86_64__) || defined(__i386__)

#include <string.h>

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
void kws_sse41_requantize_s64(const int64_t *acc, const int32_t *mult, const int32_t *shift, size_t n,
                              int32_t *out);
kws_dense_run kws_sse41_fully_connected_s8; /* row-major int8 codes */
void kws_sse41_pack_nibbles(kws_codes codes, size_t k, size_t n, uint8_t *packed);
kws_dense_run kws_sse41_fully_connected_s8_nibbles; /* 2..4-bit: offset codes, 32-K steps, portable's size */
void kws_sse41_pack_signs(kws_codes codes, size_t k, size_t n, uint8_t *packed);
kws_dense_run kws_sse41_fully_connected_s8_signs; /* 1-bit: panels of 16 rows x 8 K */
void kws_sse41_fully_connected_s16(const int16_t *x, size_t k, const int8_t *w, size_t n, const int64_t *bias,
                                   const kws_requant_params *p, int16_t *y);
void kws_sse41_fully_connected_f32(const float *x, size_t k, const float *w, size_t n, const float *bias,
                                   float act_min, float act_max, float *y);
void kws_sse41_affine_s8(const int8_t *x, size_t n, const int8_t *w, const int32_t *bias,
                         const kws_requant_params *p, int8_t *y);
void kws_sse41_affine_s16(const int16_t *x, size_t n, const int8_t *w, const int64_t *bias,
                          const kws_requant_params *p, int16_t *y);
void kws_sse41_depthwise_s8(const int8_t *x, size_t row_stride, size_t taps, size_t c, const int8_t *w,
                            const kws_epilogue *e, int8_t *y);

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
/* kws_epilogue on 4 channels c..c+3 from their sums acc (no bias): int32 lanes inside int8. */
static inline __m128i kws_sse41_epilogue4(__m128i acc, const kws_epilogue *e, size_t c) {
  __m128i v = kws_sse41_output4_s32(_mm_add_epi32(acc, _mm_loadu_si128((const __m128i *)(e->bias + c))), e->p, c);
  if (e->affine_w) { /* |w * v| <= 127 * 128: exact in int32 */
    int32_t w4;
    memcpy(&w4, e->affine_w + c, 4);
    __m128i w = _mm_cvtepi8_epi32(_mm_cvtsi32_si128(w4));
    __m128i b = _mm_loadu_si128((const __m128i *)(e->affine_bias + c));
    v = kws_sse41_output4_s32(_mm_add_epi32(b, _mm_mullo_epi32(w, v)), e->affine_p, c);
  }
  return v;
}

static inline void kws_sse41_store8_s8(int8_t *y, __m128i lo, __m128i hi) {
  __m128i w16 = _mm_packs_epi32(lo, hi);
  _mm_storel_epi64((__m128i *)y, _mm_packs_epi16(w16, w16));
}

/* Store 4 clamped int32 lanes as int8. */
static inline void kws_sse41_store4_s8(int8_t *y, __m128i v) {
  __m128i w16 = _mm_packs_epi32(v, v);
  int32_t y4 = _mm_cvtsi128_si32(_mm_packs_epi16(w16, w16));
  memcpy(y, &y4, 4);
}

/* sum(x[0..k-1]) of int8 activations: psadbw adds x + 128 as unsigned bytes, 16 at a time, into
 * two 64-bit lanes of at most 255 * 8 * 1024 < 2^31 each (K <= 16384), read as int32. */
static inline int32_t kws_sse41_sum_s8(const int8_t *x, size_t k) {
  const __m128i bias = _mm_set1_epi8(-128);
  __m128i s = _mm_setzero_si128();
  size_t i = 0;
  for (; i + 16 <= k; i += 16)
    s = _mm_add_epi64(s, _mm_sad_epu8(_mm_xor_si128(_mm_loadu_si128((const __m128i *)(x + i)), bias),
                                      _mm_setzero_si128()));
  int32_t sum = _mm_cvtsi128_si32(s) + _mm_extract_epi32(s, 2) - 128 * (int32_t)i;
  for (; i < k; i++) sum += x[i];
  return sum;
}

/* kws_requant_s64 on 2 lanes (docs/arithmetic.md 3.2): |acc| < 2^47,
 * multiplier in [0, INT32_MAX] and shift in [-31, 7] in the two low int32
 * lanes of mult and shift; the two results in the low int32 lanes. The
 * product: reduced <= 0x7FFF and acc = hi * 2^32 + lo (lo the unsigned low
 * half, hi = acc >> 32 in [-2^15, 2^15)), so pmuludq gives lo * reduced and
 * pmuldq hi * reduced exactly, and lo * reduced + (hi * reduced << 32) is
 * acc * reduced modulo 2^64, the exact product since |acc * reduced| < 2^62;
 * adding 2^(total_shift - 1) cannot wrap. Shifts: psllq/psrlq take one count
 * per register, so each lane is shifted by its own count and the two are
 * blended; the arithmetic shift is (v ^ sign) >> t ^ sign with the logical
 * one (for v < 0, v >> t == ~(~v >> t)). reduced is computed in 32 bits: for
 * multiplier < 0x7FFF0000, multiplier + 2^15 cannot wrap. */
static inline __m128i kws_sse41_sll2_epi64(__m128i v, __m128i count) {
  return _mm_blend_epi16(_mm_sll_epi64(v, count), _mm_sll_epi64(v, _mm_unpackhi_epi64(count, count)), 0xF0);
}

static inline __m128i kws_sse41_srl2_epi64(__m128i v, __m128i count) {
  return _mm_blend_epi16(_mm_srl_epi64(v, count), _mm_srl_epi64(v, _mm_unpackhi_epi64(count, count)), 0xF0);
}

static inline __m128i kws_sse41_requant2_s64(__m128i acc, __m128i mult, __m128i shift) {
  __m128i red32 = _mm_srli_epi32(_mm_add_epi32(mult, _mm_set1_epi32(1 << 15)), 16);
  red32 = _mm_blendv_epi8(red32, _mm_set1_epi32(0x7FFF), _mm_cmpgt_epi32(mult, _mm_set1_epi32(0x7FFEFFFF)));
  __m128i red = _mm_cvtepu32_epi64(red32);
  __m128i prod = _mm_add_epi64(_mm_mul_epu32(acc, red), _mm_slli_epi64(_mm_mul_epi32(_mm_srli_epi64(acc, 32), red), 32));
  const __m128i one = _mm_set1_epi64x(1);
  __m128i total = _mm_cvtepi32_epi64(_mm_sub_epi32(_mm_set1_epi32(15), shift)); /* 8..46 */
  __m128i v = _mm_add_epi64(prod, kws_sse41_sll2_epi64(one, _mm_sub_epi64(total, one)));
  __m128i sign = _mm_shuffle_epi32(_mm_srai_epi32(v, 31), _MM_SHUFFLE(3, 3, 1, 1));
  __m128i r = _mm_xor_si128(kws_sse41_srl2_epi64(_mm_xor_si128(v, sign), total), sign);
  return _mm_shuffle_epi32(r, _MM_SHUFFLE(3, 3, 2, 0));
}

/* kws_requant_s64 on 4 lanes: channels c, c+1 in acc01 and c+2, c+3 in acc23. */
static inline __m128i kws_sse41_requant4_s64(__m128i acc01, __m128i acc23, const int32_t *mult,
                                             const int32_t *shift) {
  __m128i r01 = kws_sse41_requant2_s64(acc01, _mm_loadl_epi64((const __m128i *)mult),
                                       _mm_loadl_epi64((const __m128i *)shift));
  __m128i r23 = kws_sse41_requant2_s64(acc23, _mm_loadl_epi64((const __m128i *)(mult + 2)),
                                       _mm_loadl_epi64((const __m128i *)(shift + 2)));
  return _mm_unpacklo_epi64(r01, r23);
}

/* The int16 epilogue of 4 channels from int64 accumulators: clamp(requant + zp_out (wraps)). */
static inline __m128i kws_sse41_output4_s64(__m128i acc01, __m128i acc23, const kws_requant_params *p, size_t c) {
  __m128i v = _mm_add_epi32(kws_sse41_requant4_s64(acc01, acc23, p->multiplier + c, p->shift + c),
                            _mm_set1_epi32(p->output_zero_point));
  v = _mm_max_epi32(v, _mm_set1_epi32(p->act_min));
  return _mm_min_epi32(v, _mm_set1_epi32(p->act_max));
}

/* The scalar epilogues, for tail channels. */
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
