/* Requantization: TFLite Micro's MultiplyByQuantizedMultiplier, int32 and int64.
 * See docs/arithmetic.md, "Requantization". */
#include "kwsint_internal.h"

/* int32 arithmetic that wraps modulo 2^32, as the spec requires, without UB. */
static int32_t wrap32(uint32_t u) {
  return u <= (uint32_t)INT32_MAX ? (int32_t)u : (int32_t)(u - 0x80000000u) + INT32_MIN;
}

int32_t kws_srdhm(int32_t a, int32_t b) {
  if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
  int64_t ab = (int64_t)a * (int64_t)b;
  int64_t nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
  return (int32_t)((ab + nudge) / ((int64_t)1 << 31)); /* C division truncates, as C++ */
}

int32_t kws_rounding_divide_by_pot(int32_t x, int exponent) {
  int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
  int32_t remainder = x & mask;
  int32_t threshold = (mask >> 1) + (x < 0);
  return (x >> exponent) + (remainder > threshold);
}

int32_t kws_requant_s32(int32_t acc, int32_t multiplier, int32_t shift) {
  int left = shift > 0 ? shift : 0;
  int right = shift > 0 ? 0 : -shift;
  int32_t shifted = wrap32((uint32_t)acc << left);
  return kws_rounding_divide_by_pot(kws_srdhm(shifted, multiplier), right);
}

int32_t kws_requant_s64(int64_t acc, int32_t multiplier, int32_t shift) {
  int64_t reduced = multiplier < 0x7FFF0000 ? ((int64_t)multiplier + (1 << 15)) >> 16 : 0x7FFF;
  int total_shift = 15 - shift;
  int64_t result = (acc * reduced + ((int64_t)1 << (total_shift - 1))) >> total_shift;
  return wrap32((uint32_t)(uint64_t)result);
}

int32_t kws_add_wrap(int32_t a, int32_t b) { return wrap32((uint32_t)a + (uint32_t)b); }

static int32_t clamp_to(int32_t v, const kws_requant_params *p) {
  return v < p->act_min ? p->act_min : v > p->act_max ? p->act_max : v;
}

int8_t kws_epilogue_s8(int32_t acc, const kws_epilogue *e, size_t c) {
  const kws_requant_params *p = e->p;
  int32_t v = clamp_to(kws_add_wrap(kws_requant_s32(acc + e->bias[c], p->multiplier[c], p->shift[c]),
                                    p->output_zero_point), p);
  if (e->affine_w) { /* |w * v| <= 127 * 128 and the folded bias is a layer's: exact in int32 */
    const kws_requant_params *q = e->affine_p;
    v = clamp_to(kws_add_wrap(kws_requant_s32(e->affine_bias[c] + e->affine_w[c] * v, q->multiplier[c],
                                              q->shift[c]), q->output_zero_point), q);
  }
  return (int8_t)v;
}
