/* FULLY_CONNECTED int8 with the ARMv8.2 dot product (SDOT). Bit-exact with
 * csrc/portable/fully_connected.c. Only this file is compiled for ARMv8.2+dotprod;
 * backends.c calls it only where the CPU has the dot product, so the rest of the library
 * stays ARMv8.0. */
#if defined(__aarch64__) || defined(KWS_NEON_SIMDE)
#include "fc_s8.h"
#include "kernels.h"

/* Natively, enable SDOT for the functions below (after the includes: the shared
 * inline helpers stay ARMv8.0 and inline into them). GCC 12's arm_neon.h defines
 * vdotq_s32 under target("arch=armv8.2-a+dotprod") and refuses to inline it into a
 * function that has only "+dotprod", so the pragma names the architecture too.
 * Through SIMDe no target is needed. */
#if defined(__aarch64__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("dotprod"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("arch=armv8.2-a+dotprod")
#endif
#endif

/* Per 16 weights of a row: one SDOT, which adds 4 int8 x int8 products to each int32
 * lane. Exact: every lane holds a partial sum of the row's dot product, |.| <=
 * 16384 * 127 * 128 < 2^28, far inside int32. 4 rows per pass over x, as in the
 * ARMv8.0 kernel: one x load per 4 SDOTs and 4 independent accumulator chains. The K
 * tail is the ARMv8.0 vector tail (fc_s8.h), exact by the same int16 bound; it runs
 * once per row. */
static inline int32x4_t dot4_s8_sdot(const int8_t *x, size_t k, const int8_t *w, size_t n, size_t o,
                                     const kws_neon_xtail_s8 *t) {
  const int8_t *r0 = kws_neon_row(w, k, n, o, 0), *r1 = kws_neon_row(w, k, n, o, 1);
  const int8_t *r2 = kws_neon_row(w, k, n, o, 2), *r3 = kws_neon_row(w, k, n, o, 3);
  int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i < t->k16; i += 16) {
    int8x16_t xv = vld1q_s8(x + i);
    a0 = vdotq_s32(a0, vld1q_s8(r0 + i), xv);
    a1 = vdotq_s32(a1, vld1q_s8(r1 + i), xv);
    a2 = vdotq_s32(a2, vld1q_s8(r2 + i), xv);
    a3 = vdotq_s32(a3, vld1q_s8(r3 + i), xv);
  }
  a0 = kws_neon_tail_s8(a0, r0, x, k, t);
  a1 = kws_neon_tail_s8(a1, r1, x, k, t);
  a2 = kws_neon_tail_s8(a2, r2, x, k, t);
  a3 = kws_neon_tail_s8(a3, r3, x, k, t);
  return vpaddq_s32(vpaddq_s32(a0, a1), vpaddq_s32(a2, a3));
}

void kws_neon_dot_fully_connected_s8(const int8_t *x, size_t k, const int8_t *w, size_t n, const kws_epilogue *e,
                                     int8_t *y) {
  kws_neon_xtail_s8 t = kws_neon_xtail_s8_make(x, k);
  kws_neon_out out[2];
  kws_neon_fc_out_params(e, out);
  for (size_t o = 0; o < n; o += 8) {
    size_t r = n - o < 8 ? n - o : 8;
    int32x4_t s0 = dot4_s8_sdot(x, k, w, n, o, &t);
    int32x4_t s1 = r > 4 ? dot4_s8_sdot(x, k, w, n, o + 4, &t) : vdupq_n_s32(0);
    kws_neon_fc_s8_finish(s0, s1, e, out, o, r, y);
  }
}

void kws_neon_dot_run_s8(const int8_t *x, size_t batches, size_t k, const uint8_t *w, size_t n,
                         const kws_epilogue *e, int log2_block, int8_t *y) {
  (void)log2_block; /* SDOT accumulates in int32 directly */
  for (size_t b = 0; b < batches; b++) kws_neon_dot_fully_connected_s8(x + b * k, k, (const int8_t *)w, n, e, y + b * n);
}

#if defined(__aarch64__)
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif
#endif
