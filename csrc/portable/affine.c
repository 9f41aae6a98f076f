/* Per-channel affine (DEPTHWISE_CONV_2D 1x1, depth multiplier 1), portable C. */
#include "portable.h"

static int32_t clamp(int32_t v, int32_t lo, int32_t hi) { return v < lo ? lo : v > hi ? hi : v; }

void kws_portable_affine_s8(const int8_t *x, size_t n, const int8_t *w, const int32_t *bias,
                            const kws_requant_params *p, int8_t *y) {
  for (size_t c = 0; c < n; c++) {
    int32_t acc = (int32_t)w[c] * (int32_t)x[c] + bias[c]; /* folded bias */
    int32_t out = kws_add_wrap(kws_requant_s32(acc, p->multiplier[c], p->shift[c]), p->output_zero_point);
    y[c] = (int8_t)clamp(out, p->act_min, p->act_max);
  }
}

void kws_portable_affine_s16(const int16_t *x, size_t n, const int8_t *w, const int64_t *bias,
                             const kws_requant_params *p, int16_t *y) {
  for (size_t c = 0; c < n; c++) {
    int64_t acc = (int64_t)w[c] * x[c] + bias[c];
    int32_t out = kws_add_wrap(kws_requant_s64(acc, p->multiplier[c], p->shift[c]), p->output_zero_point);
    y[c] = (int16_t)clamp(out, p->act_min, p->act_max);
  }
}

/* float32 batch norm: multiply, then add (two roundings, never fused). */
void kws_portable_affine_f32(const float *x, size_t n, const float *scale, const float *shift, float *y) {
  for (size_t c = 0; c < n; c++) y[c] = x[c] * scale[c] + shift[c];
}
