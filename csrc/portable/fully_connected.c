/* FULLY_CONNECTED, portable C: the scalar loops of TFLM's reference kernel. */

#include "portable.h"

static int32_t clamp(int32_t v, int32_t lo, int32_t hi) { return v < lo ? lo : v > hi ? hi : v; }

size_t kws_portable_rows_s8_bytes(size_t k, size_t n) { return k * n; }

void kws_portable_pack_rows_s8(kws_codes codes, size_t k, size_t n, uint8_t *packed) {
  for (size_t i = 0; i < k * n; i++) packed[i] = (uint8_t)kws_code_at(codes, i);
}

void kws_portable_fully_connected_s8(const int8_t *x, size_t batches, size_t k, const uint8_t *w, size_t n,
                                     const kws_epilogue *e, int log2_block, int8_t *y) {
  (void)log2_block;
  for (size_t b = 0; b < batches; b++, x += k, y += n)
    for (size_t o = 0; o < n; o++) {
      const int8_t *row = (const int8_t *)w + o * k;
      int32_t acc = 0; /* the epilogue adds the folded bias: see kwsint_internal.h for why int32 holds */
      for (size_t i = 0; i < k; i++) acc += (int32_t)row[i] * (int32_t)x[i];
      y[o] = kws_epilogue_s8(acc, e, o);
    }
}

void kws_portable_fully_connected_s16(const int16_t *x, size_t k, const int8_t *w, size_t n,
                                      const int64_t *bias, const kws_requant_params *p, int16_t *y) {
  for (size_t o = 0; o < n; o++) {
    const int8_t *row = w + o * k;
    int64_t acc = bias[o]; /* |acc| < 2^47: |w * x| < 2^22, K <= 2^14, |bias| < 2^46 */
    for (size_t i = 0; i < k; i++) acc += (int32_t)row[i] * (int32_t)x[i];
    int32_t out = kws_add_wrap(kws_requant_s64(acc, p->multiplier[o], p->shift[o]), p->output_zero_point);
    y[o] = (int16_t)clamp(out, p->act_min, p->act_max);
  }
}
