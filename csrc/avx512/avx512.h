/* The avx512-vnni backend: the avx2 backend with int8 dense layers on 512-bit
 * VPDPBUSD and a 16-lane epilogue.
 *
 * AVX512F, BW, VL and VNNI (Ice Lake and later Xeons, Zen 4) are enabled here
 * on top of AVX2, for the rest of each including file only; backends.c selects
 * these kernels only on CPUs that report all of them. Include this header after
 * every other header and end the file with KWS_AVX512_END, as for avx2.h. */
#ifndef KWSINT_AVX512_H
#define KWSINT_AVX512_H

#include "../avx2/avx2.h"

#if defined(__x86_64__) || defined(__i386__)

#if defined(__clang__) /* replaces avx2.h's pushed target: clang applies only one */
#pragma clang attribute pop
#pragma clang attribute push(__attribute__((target("avx2,avx512f,avx512bw,avx512vl,avx512vnni"))), apply_to = function)
#define KWS_AVX512_END _Pragma("clang attribute pop")
#else
#pragma GCC target("avx2,avx512f,avx512bw,avx512vl,avx512vnni")
#include <immintrin.h>
#define KWS_AVX512_END KWS_AVX2_END
#endif

size_t kws_avx512_packed_dense_s8_bytes(size_t k, size_t n);
void kws_avx512_pack_dense_s8(kws_codes w, size_t k, size_t n, uint8_t *packed);
kws_dense_run kws_avx512_fully_connected_s8; /* 16-row blocks, x + 128 against w by VPDPBUSD */

/* SaturatingRoundingDoublingHighMul on 16 lanes, for b never INT32_MIN (a
 * requantization multiplier, >= 0): floor((a * b + 2^30) / 2^31) from the
 * exact 64-bit products of the even and odd lanes, as kws_avx2_srdhm_unsaturated
 * (avx2.h) does on 8. */
static inline __m512i kws_avx512_srdhm_unsaturated(__m512i a, __m512i b) {
  const __m512i nudge = _mm512_set1_epi64((int64_t)1 << 30);
  __m512i even = _mm512_add_epi64(_mm512_mul_epi32(a, b), nudge);
  __m512i odd = _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(a, 32), _mm512_srli_epi64(b, 32)), nudge);
  return _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 31), _mm512_slli_epi64(odd, 1));
}

/* RoundingDivideByPOT with a per-lane exponent e in [0, 31], as kws_avx2_rounding_divide_by_pot:
 * remainder = x & (2^e - 1), threshold = (2^e - 1) / 2 + (x < 0), x >> e plus one where the
 * remainder exceeds the threshold. */
static inline __m512i kws_avx512_rounding_divide_by_pot(__m512i x, __m512i e) {
  const __m512i one = _mm512_set1_epi32(1);
  __m512i mask = _mm512_sub_epi32(_mm512_sllv_epi32(one, e), one);
  __m512i remainder = _mm512_and_si512(x, mask);
  __m512i half = _mm512_srli_epi32(mask, 1);
  __m512i threshold = _mm512_mask_add_epi32(half, _mm512_cmplt_epi32_mask(x, _mm512_setzero_si512()), half, one);
  __m512i q = _mm512_srav_epi32(x, e);
  return _mm512_mask_add_epi32(q, _mm512_cmpgt_epi32_mask(remainder, threshold), q, one);
}

/* clamp(requant(acc) + zp, act_min, act_max) on 16 channels c.., their parameters loaded
 * under `live` (lanes outside it get multiplier and shift 0 and are never stored). */
static inline __m512i kws_avx512_output_s32(__m512i acc, const kws_requant_params *p, size_t c, __mmask16 live) {
  __m512i m = _mm512_maskz_loadu_epi32(live, p->multiplier + c);
  __m512i s = _mm512_maskz_loadu_epi32(live, p->shift + c);
  __m512i left = _mm512_max_epi32(s, _mm512_setzero_si512());
  __m512i right = _mm512_sub_epi32(left, s); /* max(-shift, 0) */
  __m512i v = kws_avx512_rounding_divide_by_pot(kws_avx512_srdhm_unsaturated(_mm512_sllv_epi32(acc, left), m), right);
  v = _mm512_max_epi32(_mm512_add_epi32(v, _mm512_set1_epi32(p->output_zero_point)), _mm512_set1_epi32(p->act_min));
  return _mm512_min_epi32(v, _mm512_set1_epi32(p->act_max));
}

/* kws_epilogue on channels c .. c + r - 1 (r <= 16) from their sums in the first r lanes of acc,
 * stored to y[0 .. r-1]; nothing past channel c + r - 1 is read or written. */
static inline __attribute__((always_inline)) void kws_avx512_epilogue16(__m512i acc, const kws_epilogue *e, size_t c,
                                                                       size_t r, int8_t *y) {
  const __mmask16 live = (__mmask16)((1u << r) - 1);
  __m512i v = kws_avx512_output_s32(_mm512_add_epi32(acc, _mm512_maskz_loadu_epi32(live, e->bias + c)), e->p, c, live);
  if (e->affine_w) { /* |w * v| <= 127 * 128: exact in int32 */
    __m512i w = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(live, e->affine_w + c));
    __m512i b = _mm512_maskz_loadu_epi32(live, e->affine_bias + c);
    v = kws_avx512_output_s32(_mm512_add_epi32(b, _mm512_mullo_epi32(w, v)), e->affine_p, c, live);
  }
  _mm_mask_storeu_epi8(y, live, _mm512_cvtsepi32_epi8(v)); /* the clamp keeps v inside int8 */
}

#endif /* x86 */
#endif
