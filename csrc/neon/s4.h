/* The 4-bit (2..4-bit codes) weight layout of the NEON kernels, shared by the ARMv8.0
 * kernel (fully_connected_s4.c) and the SDOT one (fully_connected_s4_dot.c), and the
 * per-input pieces both need.
 *
 * Codes w in [-7, 7] are held as u = w + 8 (1..15), unsigned, two per byte, rows of
 * (k + 1) / 2 bytes (the portable format's size), then zero rows up to a multiple of 8:
 * a pass over 8 (or 4) rows reads rows past n without a bound check on each row's address
 * (their sums are not stored). In a row, each whole block of 32 codes
 * (k32 = k - k % 32 of them) takes 16 bytes, byte j = u[32b + j] | u[32b + 16 + j] << 4,
 * so one AND and one shift give 16 codes each in K order, with no zip. The r = k % 32
 * tail codes take t = (r + 1) / 2 bytes: the low nibble of tail byte j holds code
 * k32 + j (j < t), the high nibble holds code k32 + h + j with h = r / 2 for j >= t - h,
 * and is 0 in byte 0 when r is odd. Loaded as the 16 bytes ending at the row's end, lane
 * L of the low nibbles pairs with x[k32 + t - 16 + L] and lane L of the high nibbles with
 * x[k - 16 + L]: both are whole x vectors (kws_s4_xtail), with the lanes before the tail
 * zeroed.
 *
 * Unsigned codes times signed x: sum(w * x) = sum(u * x) - 8 * sum(x), and sum(x) is
 * taken once per input vector. |u * x| <= 15 * 128 = 1920. */
#ifndef KWSINT_NEON_S4_H
#define KWSINT_NEON_S4_H

#include "fc_s8.h"

typedef struct {
  size_t k32;           /* codes in whole 32-code blocks */
  size_t t;             /* tail bytes: (k % 32 + 1) / 2 */
  int8x16_t xlo, xhi;   /* the x lanes the tail's low and high nibbles pair with, others 0 */
  int32_t minus8_sum_x; /* -8 * sum(x): |.| <= 8 * 16384 * 128 = 2^24 */
} kws_s4_input;

static inline kws_s4_input kws_s4_input_make(const int8_t *x, size_t k) {
  static const uint8_t iota[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  kws_s4_input in;
  size_t r = k % 32, h = r / 2;
  in.k32 = k - r;
  in.t = (r + 1) / 2;
  int32_t sum = 0;
  int32x4_t acc = vdupq_n_s32(0);
  size_t k16 = k & ~(size_t)15;
  for (size_t i = 0; i < k16; i += 16) acc = vpadalq_s16(acc, vpaddlq_s8(vld1q_s8(x + i)));
  for (size_t i = k16; i < k; i++) sum += x[i];
  in.minus8_sum_x = -8 * (sum + vaddvq_s32(acc));
  in.xlo = in.xhi = vdupq_n_s8(0);
  if (r == 0) return in;
  /* Below 32 codes x is read from a zero-padded copy, so the loads of 16 ending at
   * k32 + t and at k stay inside it; from 32 on they lie inside x (k32 >= 32). */
  int8_t pad[48] = {0};
  const int8_t *xs = x;
  if (k < 32) {
    memcpy(pad + 16, x, k);
    xs = pad + 16;
  }
  uint8x16_t lanes = vld1q_u8(iota);
  uint8x16_t keep_lo = vcgeq_u8(lanes, vdupq_n_u8((uint8_t)(16 - in.t)));
  uint8x16_t keep_hi = vcgeq_u8(lanes, vdupq_n_u8((uint8_t)(16 - h)));
  in.xlo = vandq_s8(vld1q_s8(xs + in.k32 + in.t - 16), vreinterpretq_s8_u8(keep_lo));
  in.xhi = vandq_s8(vld1q_s8(xs + k - 16), vreinterpretq_s8_u8(keep_hi));
  return in;
}

/* The 16 bytes ending at the end of a row of s bytes, the tail bytes in lanes 16 - t .. 15.
 * Rows shorter than 16 bytes (k < 31) are copied, so nothing is read before the buffer. */
static inline uint8x16_t kws_s4_tail_bytes(const uint8_t *row, size_t s) {
  if (s >= 16) return vld1q_u8(row + s - 16);
  uint8_t tmp[16] = {0};
  memcpy(tmp + 16 - s, row, s);
  return vld1q_u8(tmp);
}

#endif
