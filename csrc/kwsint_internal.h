/* Private structures shared by the C files of kwsint. */
#ifndef KWSINT_INTERNAL_H
#define KWSINT_INTERNAL_H

#include "kwsint.h"

#define KWS_MAX_DIM 16384
#define KWS_MAX_LAYERS 64

/* One kernel table per backend. Kernels trust their arguments: the public
 * entry points in ops.c and the blob loader check every range first.
 *
 * Kernels never see the input zero point: `bias` is the folded bias
 * (kws_fold_bias_*), never NULL, so a dense kernel computes
 *   acc[o] = bias[o] + sum_i w[o][i] * x[i]
 * which equals the spec's sum_i w[o][i] * (x[i] - zp) + bias[o] exactly: with
 * int8 activations |folded| <= 2^30 + 2^28 and |sum| <= 2^28 (K <= 16384), so
 * no partial result leaves int32 (docs/arithmetic.md 5.2). The affine kernels
 * compute acc[c] = bias[c] + w[c] * x[c] likewise. */
typedef struct {
  void (*requantize_s32)(const int32_t *acc, const int32_t *mult, const int32_t *shift, size_t n,
                         int32_t *out);
  void (*requantize_s64)(const int64_t *acc, const int32_t *mult, const int32_t *shift, size_t n,
                         int32_t *out);
  void (*fully_connected_s8)(const int8_t *x, size_t k, const int8_t *w, size_t n, const int32_t *bias,
                             const kws_requant_params *p, int8_t *y);
  void (*fully_connected_s16)(const int16_t *x, size_t k, const int8_t *w, size_t n,
                              const int64_t *bias, const kws_requant_params *p, int16_t *y);
  void (*affine_s8)(const int8_t *x, size_t n, const int8_t *w, const int32_t *bias,
                    const kws_requant_params *p, int8_t *y);
  void (*affine_s16)(const int16_t *x, size_t n, const int8_t *w, const int64_t *bias,
                     const kws_requant_params *p, int16_t *y);
  void (*quantize_s8)(const float *x, size_t n, float scale, int32_t zero_point, int8_t *y);
  void (*quantize_s16)(const float *x, size_t n, float scale, int32_t zero_point, int16_t *y);
  /* float32 (docs/arithmetic.md 10): bias never NULL here */
  void (*fully_connected_f32)(const float *x, size_t k, const float *w, size_t n, const float *bias,
                              float act_min, float act_max, float *y);
  void (*affine_f32)(const float *x, size_t n, const float *scale, const float *shift, float *y);
  /* Optional (NULL in backends without it): fully_connected_s8 then reads its
   * weights as pack_dense_s8 laid them out from row-major [n][k], in
   * packed_dense_s8_bytes(k, n) bytes, instead of row-major. The model packs
   * once at load; the single op packs into a temporary. */
  size_t (*packed_dense_s8_bytes)(size_t k, size_t n);
  void (*pack_dense_s8)(const int8_t *w, size_t k, size_t n, int8_t *packed);
  /* Optional: fully_connected_s8 (same weight layout, same results) accumulating
   * in int16 over aligned blocks of 2^log2_block products per row, widened to
   * int32 after each. Called only with a block the loader or the op proved safe
   * (docs/arithmetic.md 5.6), log2_block in [4, 14]. */
  void (*fully_connected_s8_acc16)(const int8_t *x, size_t k, const int8_t *w, size_t n, const int32_t *bias,
                                   const kws_requant_params *p, int log2_block, int8_t *y);
  /* fully_connected_s8 from packed weights (KWS_WEIGHTS_PACKED): `nibbles` holds
   * rows of (k + 1) / 2 bytes, code i in the low (even i) or high (odd i) 4 bits,
   * two's complement; `signs` rows of (k + 7) / 8 bytes, bit i % 8 of byte i / 8
   * set for -1 and clear for +1. */
  void (*fully_connected_s8_nibbles)(const int8_t *x, size_t k, const uint8_t *w, size_t n, const int32_t *bias,
                                     const kws_requant_params *p, int8_t *y);
  void (*fully_connected_s8_signs)(const int8_t *x, size_t k, const uint8_t *w, size_t n, const int32_t *bias,
                                   const kws_requant_params *p, int8_t *y);
} kws_kernels;

struct kws_backend {
  const char *name;
  int (*usable)(void);
  const kws_kernels *kernels;
};

/* One table per backend; each is defined in its ISA's directory. */
extern const kws_kernels kws_portable_kernels;
extern const kws_kernels kws_avx2_kernels, kws_sse41_kernels; /* x86 */
extern const kws_kernels kws_neon_kernels, kws_neon_dot_kernels; /* aarch64, or x86 through SIMDe */

/* How a layer holds its weights: int8 codes row-major, the backend's packed
 * int8 panels (pack_dense_s8), two codes per byte, eight signs per byte. */
enum { KWS_HELD_INT8, KWS_HELD_PANELS, KWS_HELD_NIBBLES, KWS_HELD_SIGNS };

typedef struct {
  int kind;
  int weight_bits;
  int acc16_log2; /* proven int16 accumulation block (log2 products), 0 for none */
  int storage;    /* KWS_HELD_*: how `weights` holds the codes */
  size_t in_size, out_size;
  int8_t *weights;  /* dense: [out][in], or packed for the backend's fully_connected_s8; affine: [out] */
  int32_t *bias32;  /* int8 activations, folded with the input zero point */
  int64_t *bias64;  /* int16 activations */
  int32_t *multiplier, *shift;
  kws_requant_params params; /* points into multiplier/shift */
} kws_layer;

struct kws_model {
  const kws_backend *backend;
  int act_bits;
  kws_weight_storage storage;
  int window_frames, feature_dim, frame_stride;
  size_t input_size;
  float *mean, *inv_std; /* [feature_dim] */
  float input_scale;
  int32_t input_zero_point;
  int32_t posterior_multiplier, posterior_shift;
  int num_layers;
  kws_layer layers[KWS_MAX_LAYERS];
  size_t max_width; /* widest activation vector */
  size_t weight_bytes;
  size_t model_bytes; /* the one allocation holding everything above */
  uint64_t macs;
};

/* Scalar arithmetic of docs/arithmetic.md, shared by every backend's tail code. */
int32_t kws_srdhm(int32_t a, int32_t b);
int32_t kws_rounding_divide_by_pot(int32_t x, int exponent);
int32_t kws_requant_s32(int32_t acc, int32_t multiplier, int32_t shift);
int32_t kws_requant_s64(int64_t acc, int32_t multiplier, int32_t shift);
int32_t kws_add_wrap(int32_t a, int32_t b); /* a + b modulo 2^32 */
/* Folded biases (see the kernel table): out[o] = bias[o] - zp * sum_i w[o][i]
 * for dense (k > 1 inputs per row) and bias[c] - zp * w[c] for affine (k = 1);
 * bias may be NULL (zeros). */
void kws_fold_bias_s32(const int32_t *bias, const int8_t *w, size_t n, size_t k, int32_t zp, int32_t *out);
void kws_fold_bias_s64(const int64_t *bias, size_t n, int64_t *out);
/* 1 if all n values are finite. */
int kws_all_finite(const float *x, size_t n);
/* The dot product of docs/arithmetic.md 10: lane sums a[0..7] of w[i] * x[i]
 * over i = l (mod 8), added as ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7)). */
float kws_dot_f32_lanes(const float a[8]);
/* The float32 dense epilogue: dot + bias, then the clamp as the spec writes it. */
static inline float kws_dense_out_f32(float dot, float bias, float act_min, float act_max) {
  float v = dot + bias;
  v = v > act_min ? v : act_min;
  return v < act_max ? v : act_max;
}
/* Normalise and quantize one float frame; tmp holds feature_dim floats. */
void kws_model_quantize_frame(const kws_model *m, const float *frame, float *tmp, void *out);
uint32_t kws_crc32(const uint8_t *data, size_t n);
/* int16 accumulation (docs/arithmetic.md 5.6): claimed blocks are 2^4 .. 2^14 products of a row,
 * and a block is safe if 128 * sum |w| over it (|x| <= 128) fits int16. */
enum { KWS_ACC16_MIN_LOG2 = 4, KWS_ACC16_MAX_LOG2 = 14 };
static inline int kws_acc16_block_ok(int32_t abs_sum) { return 128 * abs_sum <= 32767; }
/* 1 if every aligned block of 2^log2_block products of every row of w [n][k] is safe. */
int kws_acc16_safe(const int8_t *w, size_t n, size_t k, int log2_block);

#endif
