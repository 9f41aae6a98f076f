/* FULLY_CONNECTED from 4-bit codes (2..4-bit layers, KWS_WEIGHTS_PACKED) with the ARMv8.2
 * dot product, in the layout of s4.h (unsigned codes u = w + 8, 32 per 16 bytes).
 *
 * Per 32 codes of a row: one 16-byte load, AND and USHR give the low and high 16 codes
 * (0..15, valid int8), and two SDOTs against the signed x vectors add them into the row's
 * int32 lanes. Exact: every lane holds a part of sum(u * x), |.| <= 16384 * 15 * 128 < 2^25;
 * the row's result is sum(u * x) - 8 * sum(x) = sum(w * x). The tail is the ARMv8.0
 * kernel's (int16, 4 products a lane). Compiled for ARMv8.2 + dotprod as
 * fully_connected_dot.c is, and called only where backends.c finds the dot product. */
#if defined(__aarch64__) || defined(KWS_NEON_SIMDE)
#include "kernels.h"
#include "s4.h"

#if defined(__aarch64__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("dotprod"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("arch=armv8.2-a+dotprod")
#endif
#endif

#define S4_SDOT(row, acc)                                                      \
  do {                                                                         \
    uint8x16_t b = vld1q_u8((row) + i / 2);                                    \
    acc = vdotq_s32(acc, vreinterpretq_s8_u8(vandq_u8(b, m15)), x0);           \
    acc = vdotq_s32(acc, vreinterpretq_s8_u8(vshrq_n_u8(b, 4)), x1);           \
  } while (0)

static inline int32x4_t s4_tail_dot(int32x4_t acc, const uint8_t *row, size_t s, const kws_s4_input *in) {
  uint8x16_t b = kws_s4_tail_bytes(row, s);
  acc = vdotq_s32(acc, vreinterpretq_s8_u8(vandq_u8(b, vdupq_n_u8(15))), in->xlo);
  return vdotq_s32(acc, vreinterpretq_s8_u8(vshrq_n_u8(b, 4)), in->xhi);
}

static inline int32x4_t dot4_s4_sdot(const int8_t *x, size_t k, const uint8_t *w, size_t o,
                                     const kws_s4_input *in) {
  size_t s = (k + 1) / 2;
  /* rows past n are the layout's zero rows (s4.h) */
  const uint8_t *r0 = w + o * s, *r1 = r0 + s, *r2 = r1 + s, *r3 = r2 + s;
  const uint8x16_t m15 = vdupq_n_u8(15);
  int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i < in->k32; i += 32) {
    int8x16_t x0 = vld1q_s8(x + i), x1 = vld1q_s8(x + i + 16);
    S4_SDOT(r0, a0);
    S4_SDOT(r1, a1);
    S4_SDOT(r2, a2);
    S4_SDOT(r3, a3);
  }
  if (in->t) {
    a0 = s4_tail_dot(a0, r0, s, in);
    a1 = s4_tail_dot(a1, r1, s, in);
    a2 = s4_tail_dot(a2, r2, s, in);
    a3 = s4_tail_dot(a3, r3, s, in);
  }
  int32x4_t sums = vpaddq_s32(vpaddq_s32(a0, a1), vpaddq_s32(a2, a3));
  return vaddq_s32(sums, vdupq_n_s32(in->minus8_sum_x));
}

void kws_neon_dot_run_s4(const int8_t *x, size_t batches, size_t k, const uint8_t *w, size_t n,
                         const kws_epilogue *e, int log2_block, int8_t *y) {
  (void)log2_block; /* SDOT accumulates in int32 directly */
  kws_neon_out out[2];
  kws_neon_fc_out_params(e, out);
  for (size_t b = 0; b < batches; b++, x += k, y += n) {
    kws_s4_input in = kws_s4_input_make(x, k);
    for (size_t o = 0; o < n; o += 8) {
      size_t r = n - o < 8 ? n - o : 8;
      int32x4_t s0 = dot4_s4_sdot(x, k, w, o, &in);
      int32x4_t s1 = r > 4 ? dot4_s4_sdot(x, k, w, o + 4, &in) : vdupq_n_s32(0);
      kws_neon_fc_s8_finish(s0, s1, e, out, o, r, y);
    }
  }
}

#if defined(__aarch64__)
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif
#endif
