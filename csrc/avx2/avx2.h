/* The avx2 backend: declarations and the vector requantization shared by its kernels.
 *
 * The extension is built for baseline x86-64, so AVX2 is enabled here, for the
 * rest of each including file only; backends.c selects these kernels only on
 * CPUs that report AVX2. Include this header after every other header, and
 * end the file with KWS_AVX2_END. GCC takes `#pragma GCC target`; clang
 * ignores that pragma and needs a target attribute on every function, which
 * `#pragma clang attribute` supplies. */
#ifndef KWSINT_AVX2_H
#define KWSINT_AVX2_H

#if defined(__x86_64__) || defined(__i386__)

#include <string.h>

#include "../kwsint_internal.h"

#if defined(__clang__)
#include <immintrin.h>
#pragma clang attribute push(__attribute__((target("avx2"))), apply_to = function)
#define KWS_AVX2_END _Pragma("clang attribute pop")
#else
#pragma GCC target("avx2")
#include <immintrin.h>
#define KWS_AVX2_END
#endif

void kws_avx2_requantize_s32(const int32_t *acc, const int32_t *mult, const int32_t *shift, size_t n,
                             int32_t *out);
void kws_avx2_requantize_s64(const int64_t *acc, const int32_t *mult, const int32_t *shift, size_t n,
                             int32_t *out);
size_t kws_avx2_packed_dense_s8_bytes(size_t k, size_t n);
void kws_avx2_pack_dense_s8(kws_codes w, size_t k, size_t n, uint8_t *packed);
kws_dense_run kws_avx2_fully_connected_s8; /* packed panels; int16 blocks when given one */
void kws_avx2_fully_connected_s16(const int16_t *x, size_t k, const int8_t *w, size_t n, const int64_t *bias,
                                  const kws_requant_params *p, int16_t *y);
void kws_avx2_fully_connected_f32(const float *x, size_t k, const float *w, size_t n, const float *bias,
                                  float act_min, float act_max, float *y);
size_t kws_avx2_packed_dense_s4_bytes(size_t k, size_t n);
void kws_avx2_pack_dense_s4(kws_codes codes, size_t k, size_t n, uint8_t *packed);
kws_dense_run kws_avx2_fully_connected_s4; /* offset nibbles in panels */
size_t kws_avx2_packed_dense_s1_bytes(size_t k, size_t n);
void kws_avx2_pack_dense_s1(kws_codes codes, size_t k, size_t n, uint8_t *packed);
kws_dense_run kws_avx2_fully_connected_s1; /* sign nibbles looked up in per-input tables */
void kws_avx2_quantize_s8(const float *x, size_t n, float scale, int32_t zero_point, int8_t *y);
void kws_avx2_quantize_s16(const float *x, size_t n, float scale, int32_t zero_point, int16_t *y);
void kws_avx2_affine_s8(const int8_t *x, size_t n, const int8_t *w, const int32_t *bias,
                        const kws_requant_params *p, int8_t *y);
void kws_avx2_affine_s16(const int16_t *x, size_t n, const int8_t *w, const int64_t *bias,
                         const kws_requant_params *p, int16_t *y);
void kws_avx2_depthwise_s8(const int8_t *x, size_t row_stride, size_t taps, size_t c, const int8_t *w,
                           const kws_epilogue *e, int8_t *y);
void kws_avx2_depthwise_s8_acc16(const int8_t *x, size_t row_stride, size_t taps, size_t c, const int8_t *w,
                                 const kws_epilogue *e, int8_t *y);

/* The avx2 table's entries that the avx-vnni and avx512-vnni tables share (kernels.c of each):
 * every op but int8 dense layers, and the packed slots with each backend's own beats_s8. */
#define KWS_AVX2_DENSE_S4(beats)                                                                 \
  {.name = "avx2 4-bit offset nibbles, panels of 32 rows x 8 K", .code_bits = 4,                 \
   .packed_bytes = kws_avx2_packed_dense_s4_bytes, .pack = kws_avx2_pack_dense_s4,               \
   .run = kws_avx2_fully_connected_s4, .beats_s8 = (beats)}
#define KWS_AVX2_DENSE_S1(beats)                                                                 \
  {.name = "avx2 1-bit subset-sum tables, panels of 32 rows x 8 K", .code_bits = 1,              \
   .packed_bytes = kws_avx2_packed_dense_s1_bytes, .pack = kws_avx2_pack_dense_s1,               \
   .run = kws_avx2_fully_connected_s1, .beats_s8 = (beats)}
#define KWS_AVX2_OTHER_OPS                                                                       \
  .requantize_s32 = kws_avx2_requantize_s32, .requantize_s64 = kws_avx2_requantize_s64,          \
  .fully_connected_s16 = kws_avx2_fully_connected_s16, .affine_s8 = kws_avx2_affine_s8,          \
  .affine_s16 = kws_avx2_affine_s16, .quantize_s8 = kws_avx2_quantize_s8,                        \
  .quantize_s16 = kws_avx2_quantize_s16, .fully_connected_f32 = kws_avx2_fully_connected_f32,    \
  .depthwise_s8 = kws_avx2_depthwise_s8, .depthwise_s8_acc16 = kws_avx2_depthwise_s8_acc16,        \
  .affine_f32 = kws_portable_affine_f32 /* the elementwise float32 affine stays portable */

/* SaturatingRoundingDoublingHighMul on 8 lanes (docs/arithmetic.md 3.1).
 * For every a, b except a == b == INT32_MIN it equals floor((a*b + 2^30) / 2^31):
 * for a*b >= 0 that is the spec's trunc((ab + 2^30) / 2^31); for a*b < 0,
 * trunc((ab + 1 - 2^30) / 2^31) = ceil((ab + 1 - 2^30) / 2^31) = floor((ab + 2^30) / 2^31).
 * _mm256_mul_epi32 forms the exact signed 64-bit products of the even lanes
 * (and of the odd lanes after a 32-bit shift); |ab| <= 2^62, so ab + 2^30
 * cannot wrap. The quotient fits int32 (except the saturating case), so it is
 * bits 31..62 of the sum, which a logical shift extracts as well as an
 * arithmetic one. The single overflow, a == b == INT32_MIN, yields
 * 0x80000000 in kws_avx2_srdhm_unsaturated (for callers whose b is never
 * INT32_MIN); kws_avx2_srdhm xors it with all-ones into INT32_MAX. */
static inline __m256i kws_avx2_srdhm_unsaturated(__m256i a, __m256i b) {
  const __m256i nudge = _mm256_set1_epi64x((int64_t)1 << 30);
  __m256i even = _mm256_add_epi64(_mm256_mul_epi32(a, b), nudge);
  __m256i odd = _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(a, 32), _mm256_srli_epi64(b, 32)), nudge);
  return _mm256_blend_epi32(_mm256_srli_epi64(even, 31), _mm256_slli_epi64(odd, 1), 0xAA);
}

static inline __m256i kws_avx2_srdhm(__m256i a, __m256i b) {
  const __m256i min = _mm256_set1_epi32(INT32_MIN);
  __m256i r = kws_avx2_srdhm_unsaturated(a, b);
  __m256i sat = _mm256_and_si256(_mm256_cmpeq_epi32(a, min), _mm256_cmpeq_epi32(b, min));
  return _mm256_xor_si256(r, sat);
}

/* RoundingDivideByPOT with a per-lane exponent e in [0, 31], the spec's
 * formula term by term: mask = 2^e - 1 (1 << 31 wraps to INT32_MIN, minus one
 * gives 0x7FFFFFFF, the right mask), remainder and threshold are in
 * [0, 2^31 - 1] so the signed compare is exact, and a compare result (-1 for
 * true) is subtracted to add 1. */
static inline __m256i kws_avx2_rounding_divide_by_pot(__m256i x, __m256i e) {
  const __m256i one = _mm256_set1_epi32(1);
  __m256i mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, e), one);
  __m256i remainder = _mm256_and_si256(x, mask);
  __m256i threshold = _mm256_sub_epi32(_mm256_srli_epi32(mask, 1), _mm256_cmpgt_epi32(_mm256_setzero_si256(), x));
  return _mm256_sub_epi32(_mm256_srav_epi32(x, e), _mm256_cmpgt_epi32(remainder, threshold));
}

/* kws_requant_s32 on 8 lanes, shift in [-31, 30]: the left shift is
 * _mm256_sllv_epi32, which wraps modulo 2^32 as the spec requires. With
 * nonneg, every multiplier is known to be >= 0 (as kws_requant_params holds
 * them: every loader and op constructor checks), never INT32_MIN, so SRDHM's
 * saturating case cannot occur and its test is left out. */
static inline __m256i kws_avx2_requant_s32_of(__m256i acc, __m256i mult, __m256i shift, int nonneg) {
  __m256i left = _mm256_max_epi32(shift, _mm256_setzero_si256());
  __m256i right = _mm256_sub_epi32(left, shift); /* max(-shift, 0) */
  __m256i a = _mm256_sllv_epi32(acc, left);
  return kws_avx2_rounding_divide_by_pot(nonneg ? kws_avx2_srdhm_unsaturated(a, mult) : kws_avx2_srdhm(a, mult), right);
}

static inline __m256i kws_avx2_requant_s32(__m256i acc, __m256i mult, __m256i shift) {
  return kws_avx2_requant_s32_of(acc, mult, shift, 0);
}

/* The int8 epilogue of 8 channels: clamp(requant(acc) + zp_out (wraps), act_min, act_max). */
static inline __m256i kws_avx2_output_s32_of(__m256i acc, __m256i m, __m256i s, const kws_requant_params *p) {
  __m256i v = _mm256_add_epi32(kws_avx2_requant_s32_of(acc, m, s, 1), _mm256_set1_epi32(p->output_zero_point));
  v = _mm256_max_epi32(v, _mm256_set1_epi32(p->act_min));
  return _mm256_min_epi32(v, _mm256_set1_epi32(p->act_max));
}

static inline __m256i kws_avx2_output_s32(__m256i acc, const kws_requant_params *p, size_t c) {
  return kws_avx2_output_s32_of(acc, _mm256_loadu_si256((const __m256i *)(p->multiplier + c)),
                                _mm256_loadu_si256((const __m256i *)(p->shift + c)), p);
}

/* kws_epilogue on 8 channels c..c+7 from their sums acc (no bias): int32 lanes inside int8. */
static inline __attribute__((always_inline)) __m256i kws_avx2_epilogue8(__m256i acc, const kws_epilogue *e, size_t c) {
  __m256i v = kws_avx2_output_s32(_mm256_add_epi32(acc, _mm256_loadu_si256((const __m256i *)(e->bias + c))), e->p, c);
  if (e->affine_w) { /* |w * v| <= 127 * 128: exact in int32 (vpmulld keeps the low half) */
    __m256i w = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(e->affine_w + c)));
    __m256i b = _mm256_loadu_si256((const __m256i *)(e->affine_bias + c));
    v = kws_avx2_output_s32(_mm256_add_epi32(b, _mm256_mullo_epi32(w, v)), e->affine_p, c);
  }
  return v;
}

/* Store 8 clamped int32 lanes as int8; the clamp keeps them inside int8, so
 * the saturating packs change nothing. */
static inline void kws_avx2_store8_s8(int8_t *y, __m256i v) {
  __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  _mm_storel_epi64((__m128i *)y, _mm_packs_epi16(w16, w16));
}

/* kws_avx2_epilogue8 on r < 8 channels c..c+r-1 from lanes 0..r-1 of acc, stored to y[0..r-1]:
 * nothing past channel c + r - 1 is read or written, and the other lanes (zero parameters: every
 * shift and multiplier in range) are dropped. Without a fused affine layer the parameters are
 * loaded with vpmaskmovd, which reads lanes 0..r-1 only (the others are zero and cannot fault);
 * with one, they are copied into 8 lanes. The r codes are stored 4, 2 and 1 at a time: small
 * layers end in such a block, and a memcpy call per array cost more than their epilogue. */
static inline void kws_avx2_epilogue_part(__m256i acc, const kws_epilogue *e, size_t c, size_t r, int8_t *y) {
  int8_t out[8];
  if (!e->affine_w) {
    const __m256i lanes = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)r), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256i bias = _mm256_maskload_epi32(e->bias + c, lanes);
    __m256i m = _mm256_maskload_epi32(e->p->multiplier + c, lanes), s = _mm256_maskload_epi32(e->p->shift + c, lanes);
    kws_avx2_store8_s8(out, kws_avx2_output_s32_of(_mm256_add_epi32(acc, bias), m, s, e->p));
    size_t i = 0;
    if (r & 4) memcpy(y, out, 4), i = 4;
    if (r & 2) memcpy(y + i, out + i, 2), i += 2;
    if (r & 1) y[i] = out[i];
    return;
  }
  int32_t bias[8] = {0}, mult[8] = {0}, shift[8] = {0}, abias[8] = {0}, amult[8] = {0}, ashift[8] = {0};
  int8_t aw[8] = {0};
  memcpy(bias, e->bias + c, 4 * r);
  memcpy(mult, e->p->multiplier + c, 4 * r);
  memcpy(shift, e->p->shift + c, 4 * r);
  kws_requant_params p = *e->p, ap;
  p.multiplier = mult;
  p.shift = shift;
  kws_epilogue part = {bias, &p, NULL, abias, &ap};
  if (e->affine_w) {
    memcpy(aw, e->affine_w + c, r);
    memcpy(abias, e->affine_bias + c, 4 * r);
    memcpy(amult, e->affine_p->multiplier + c, 4 * r);
    memcpy(ashift, e->affine_p->shift + c, 4 * r);
    ap = *e->affine_p;
    ap.multiplier = amult;
    ap.shift = ashift;
    part.affine_w = aw;
  }
  kws_avx2_store8_s8(out, kws_avx2_epilogue8(acc, &part, 0));
  memcpy(y, out, r);
}

/* kws_requant_s64 on 4 lanes (docs/arithmetic.md 3.2): |acc| < 2^47,
 * multiplier in [0, INT32_MAX], shift in [-31, 7]. AVX2 has no 64 x 64-bit
 * multiply, but reduced <= 0x7FFF and acc = hi * 2^32 + lo with lo the
 * unsigned low half and hi = acc >> 32 in [-2^15, 2^15): vpmuludq gives
 * lo * reduced and vpmuldq hi * reduced, both exact, and
 * lo * reduced + (hi * reduced << 32) is acc * reduced modulo 2^64, which is
 * the exact product since |acc * reduced| < 2^62. Adding 2^(total_shift - 1)
 * cannot wrap either. AVX2 has no 64-bit arithmetic shift; for v < 0,
 * v >> t == ~(~v >> t) with the logical vpsrlvq, so both signs are
 * (v ^ sign) >> t ^ sign. The result is wrapped to int32 by keeping the low
 * halves. reduced is computed in 32 bits: for multiplier < 0x7FFF0000,
 * multiplier + 2^15 cannot wrap. */
static inline __m128i kws_avx2_requant_s64(__m256i acc, __m128i mult, __m128i shift) {
  __m128i red32 = _mm_srli_epi32(_mm_add_epi32(mult, _mm_set1_epi32(1 << 15)), 16);
  red32 = _mm_blendv_epi8(red32, _mm_set1_epi32(0x7FFF), _mm_cmpgt_epi32(mult, _mm_set1_epi32(0x7FFEFFFF)));
  __m256i red = _mm256_cvtepu32_epi64(red32);
  __m256i prod = _mm256_add_epi64(_mm256_mul_epu32(acc, red),
                                  _mm256_slli_epi64(_mm256_mul_epi32(_mm256_srli_epi64(acc, 32), red), 32));
  const __m256i one = _mm256_set1_epi64x(1);
  __m256i total = _mm256_cvtepi32_epi64(_mm_sub_epi32(_mm_set1_epi32(15), shift)); /* 8..46 */
  __m256i v = _mm256_add_epi64(prod, _mm256_sllv_epi64(one, _mm256_sub_epi64(total, one)));
  __m256i sign = _mm256_cmpgt_epi64(_mm256_setzero_si256(), v);
  __m256i r = _mm256_xor_si256(_mm256_srlv_epi64(_mm256_xor_si256(v, sign), total), sign);
  return _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(r, _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6)));
}

/* The int16 epilogue of 8 channels from int64 accumulators (channels c..c+3
 * in lo, c+4..c+7 in hi), stored as int16: the clamp keeps the lanes inside
 * int16, so the saturating pack changes nothing. */
static inline void kws_avx2_output8_s64(int16_t *y, __m256i lo, __m256i hi, const kws_requant_params *p, size_t c) {
  __m128i r0 = kws_avx2_requant_s64(lo, _mm_loadu_si128((const __m128i *)(p->multiplier + c)),
                                    _mm_loadu_si128((const __m128i *)(p->shift + c)));
  __m128i r1 = kws_avx2_requant_s64(hi, _mm_loadu_si128((const __m128i *)(p->multiplier + c + 4)),
                                    _mm_loadu_si128((const __m128i *)(p->shift + c + 4)));
  __m256i v = _mm256_add_epi32(_mm256_setr_m128i(r0, r1), _mm256_set1_epi32(p->output_zero_point));
  v = _mm256_min_epi32(_mm256_max_epi32(v, _mm256_set1_epi32(p->act_min)), _mm256_set1_epi32(p->act_max));
  _mm_storeu_si128((__m128i *)y, _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)));
}

/* sum(x[0..k-1]), |.| <= 128 * 16384: vpsadbw adds 32 bytes of x ^ 0x80 = x + 128 (unsigned) at a time. */
static inline int32_t kws_avx2_sum_s8(const int8_t *x, size_t k) {
  __m256i s = _mm256_setzero_si256();
  size_t i = 0;
  for (; i + 32 <= k; i += 32)
    s = _mm256_add_epi64(s, _mm256_sad_epu8(_mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(x + i)),
                                                              _mm256_set1_epi8(-128)),
                                            _mm256_setzero_si256()));
  __m128i h = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
  int32_t t = (int32_t)_mm_cvtsi128_si64(_mm_add_epi64(h, _mm_unpackhi_epi64(h, h))) - 128 * (int32_t)i;
  for (; i < k; i++) t += x[i];
  return t;
}

/* Scalar epilogue for tail channels. */
static inline int32_t kws_avx2_clamp(int32_t v, const kws_requant_params *p) {
  return v < p->act_min ? p->act_min : v > p->act_max ? p->act_max : v;
}

#endif /* x86 */
#endif
