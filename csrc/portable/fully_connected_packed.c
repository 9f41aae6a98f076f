/* FULLY_CONNECTED from packed sub-8-bit weights (KWS_WEIGHTS_PACKED), portable C:
 * two 4-bit two's complement codes per byte (2..4-bit layers), or eight signs per
 * byte (1-bit layers: add x where the bit is clear, subtract it where set). The
 * sums are the int32 sums of fully_connected.c, so the results are the same. */
#include "portable.h"

static int32_t clamp(int32_t v, int32_t lo, int32_t hi) { return v < lo ? lo : v > hi ? hi : v; }

static int8_t output(int32_t acc, const kws_requant_params *p, size_t o) {
  int32_t v = kws_add_wrap(kws_requant_s32(acc, p->multiplier[o], p->shift[o]), p->output_zero_point);
  return (int8_t)clamp(v, p->act_min, p->act_max);
}

/* A 4-bit two's complement field, sign-extended without shifting a negative value. */
static int32_t nibble(unsigned v) { return (int32_t)((v & 15u) ^ 8u) - 8; }

void kws_portable_fully_connected_s8_nibbles(const int8_t *x, size_t k, const uint8_t *w, size_t n,
                                             const int32_t *bias, const kws_requant_params *p, int8_t *y) {
  size_t stride = (k + 1) / 2;
  for (size_t o = 0; o < n; o++) {
    const uint8_t *row = w + o * stride;
    int32_t acc = bias[o]; /* folded bias: int32 as for int8 containers (kwsint_internal.h) */
    size_t i = 0;
    for (; i + 2 <= k; i += 2) acc += nibble(row[i / 2]) * x[i] + nibble(row[i / 2] >> 4) * x[i + 1];
    if (i < k) acc += nibble(row[i / 2]) * x[i];
    y[o] = output(acc, p, o);
  }
}

void kws_portable_fully_connected_s8_signs(const int8_t *x, size_t k, const uint8_t *w, size_t n,
                                           const int32_t *bias, const kws_requant_params *p, int8_t *y) {
  size_t stride = (k + 7) / 8;
  for (size_t o = 0; o < n; o++) {
    const uint8_t *row = w + o * stride;
    int32_t acc = bias[o];
    for (size_t i = 0; i < k; i++) acc += (row[i / 8] >> (i % 8)) & 1 ? -(int32_t)x[i] : (int32_t)x[i];
    y[o] = output(acc, p, o);
  }
}
