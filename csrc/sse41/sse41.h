/* The sse4.1 backend: declarations and helpers shared by its kernels.
 *
 * The extension is built for baseline x86-64, so SSE4.1 (with SSSE3 for
 * phaddd) is enabled here, for the rest of each including file only;
 * backends.c selects these kernels only on CPUs that report SSE4.1. Include
 * this header first and end the file with KWS_SSE41_END. GCC takes
 * `#pragma GCC target`; clang ignores it and needs `#pragma clang attribute`.
 *
 * SSE4.1 has no per-lane variable shift, so requantization (per-channel
 * shifts) is the scalar kws_requant_s32 / kws_requant_s64 of requantize.c. */
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

void kws_sse41_fully_connected_s8(const int8_t *x, size_t k, const int8_t *w, size_t n, const int32_t *bias,
                                  const kws_requant_params *p, int8_t *y);
void kws_sse41_fully_connected_s16(const int16_t *x, size_t k, const int8_t *w, size_t n, const int64_t *bias,
                                   const kws_requant_params *p, int16_t *y);
void kws_sse41_affine_s8(const int8_t *x, size_t n, const int8_t *w, const int32_t *bias,
                         const kws_requant_params *p, int8_t *y);
void kws_sse41_affine_s16(const int16_t *x, size_t n, const int8_t *w, const int64_t *bias,
                          const kws_requant_params *p, int16_t *y);

/* The scalar epilogue: clamp(requant(acc) + zp_out (wraps), act_min, act_max). */
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
