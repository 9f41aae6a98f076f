/* Private structures shared by the C files of kwsint. */
#ifndef KWSINT_INTERNAL_H
#define KWSINT_INTERNAL_H

#include <string.h>

#include "kwsint.h"
#include "kwsint_bench.h"

/* The end of an int8 dense layer for output channel c, from its sum acc (no bias):
 *   v = clamp(requant(acc + bias[c]) + zp_out)
 * and, where affine_w is set, the per-channel affine layer that follows fused in,
 * with the same integer operations as running that layer on its own:
 *   v = clamp(requant'(affine_bias[c] + affine_w[c] * v) + zp_out')
 * Both biases are folded with their layer's input zero point (kws_fold_bias_s32). */
typedef struct {
  const int32_t *bias;
  const kws_requant_params *p;
  const int8_t *affine_w; /* [n] or NULL: nothing fused */
  const int32_t *affine_bias;
  const kws_requant_params *affine_p;
} kws_epilogue;

/* Row-major weight codes as a blob stores them (docs/format.md): b-bit two's complement fields one after
 * the other, least significant bit first (1-bit: 1 is +1, 0 is -1), so 8-bit codes are int8 bytes. */
typedef struct {
  const uint8_t *bytes;
  int bits; /* 1..8 */
} kws_codes;

/* Code i. */
static inline int32_t kws_code_at(kws_codes c, size_t i) {
  if (c.bits == 8) return c.bytes[i] >= 128 ? (int32_t)c.bytes[i] - 256 : (int32_t)c.bytes[i];
  size_t bit = i * (size_t)c.bits;
  unsigned v = (unsigned)c.bytes[bit >> 3] >> (bit & 7);
  if ((bit & 7) + (size_t)c.bits > 8) v |= (unsigned)c.bytes[(bit >> 3) + 1] << (8 - (bit & 7));
  v &= (1u << c.bits) - 1u;
  if (c.bits == 1) return v ? 1 : -1;
  return v >= (1u << (c.bits - 1)) ? (int32_t)v - (1 << c.bits) : (int32_t)v;
}

/* A dense kernel with int8 activations for one weight format, and its packing.
 * pack lays row-major codes [n][k] out in packed_bytes(k, n) bytes (zero-filled
 * by the caller) once, at load or when an op is prepared, reading them where
 * they are (a blob's bit fields, or int8 arrays as 8-bit codes); run then computes
 *   y[b][o] = epilogue(sum_i w[o][i] * x[b][i]), b < batches
 * from that layout. Kernels trust their arguments: the loader and the op
 * constructor check every range first. Kernels never see the input zero point:
 * the folded bias holds it, and with int8 activations |folded| <= 2^30 + 2^28
 * and |sum| <= 2^28 (K <= 16384), so no partial result leaves int32
 * (docs/arithmetic.md 5.2). log2_block is 0 or an int16 accumulation block
 * proven safe for these weights (docs/arithmetic.md 5.6), which a kernel may
 * ignore (int32 sums are always exact); acc16 says which blocks it uses. */
typedef void kws_dense_run(const int8_t *x, size_t batches, size_t k, const uint8_t *w, size_t n,
                           const kws_epilogue *e, int log2_block, int8_t *y);
typedef struct {
  const char *name; /* what Model.info() shows: backend, format, layout */
  int code_bits;    /* bits a weight takes as held: 8, 4 or 1 */
  size_t (*packed_bytes)(size_t k, size_t n);
  void (*pack)(kws_codes codes, size_t k, size_t n, uint8_t *packed);
  kws_dense_run *run; /* NULL: the slot is empty, the portable kernel serves */
  int acc16;          /* the smallest proven block (log2 products) run sums in int16 over; 0: never */
  int beats_s8;       /* dense_s4 and dense_s1: faster than the backend's dense_s8 on the paper's
                         layer shapes (benchmarks/README.md), so weights="auto" picks it */
  int blob_bits;      /* b: the layout is a blob's b-bit codes as they lie, where each row takes whole bytes
                         (k * b a multiple of 8), so a model loaded in place reads such weights there; 0: none */
} kws_dense_kernel;

/* One kernel table per backend, filled with designated initializers: an
 * empty (NULL) slot means "use the portable kernel". The affine kernels
 * compute acc[c] = bias[c] + w[c] * x[c] with the folded bias. */
typedef struct {
  void (*requantize_s32)(const int32_t *acc, const int32_t *mult, const int32_t *shift, size_t n,
                         int32_t *out);
  void (*requantize_s64)(const int64_t *acc, const int32_t *mult, const int32_t *shift, size_t n,
                         int32_t *out);
  kws_dense_kernel dense_s8; /* int8 codes (5..8-bit weights, and any weights held as int8) */
  kws_dense_kernel dense_s4; /* 2..4-bit codes in [-7, 7], two per byte or better */
  kws_dense_kernel dense_s1; /* 1-bit codes, -1 or +1 */
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
  /* DEPTHWISE_CONV_2D in time, one output frame: y[c] = epilogue(sum_k w[k][c] * x[k * row_stride + c]),
   * taps rows of c codes, w [taps][c] codes in [-127, 127] (as the dense kernels': the graph loader refuses -128);
   * the folded bias holds the input zero point (taps <= 16384: exact).
   * y never overlaps x or w (a kernel may write an output code twice, with the same value). */
  void (*depthwise_s8)(const int8_t *x, size_t row_stride, size_t taps, size_t c, const int8_t *w,
                       const kws_epilogue *e, int8_t *y);
  /* depthwise_s8 with every channel's sum kept in an int16 lane: only for weights whose every channel has
   * 128 * sum_k |w[k][c]| <= 32767 (kws_depthwise_acc16_safe, docs/arithmetic.md 11.4), where no partial
   * sum of any order leaves int16. The same results; NULL: depthwise_s8 serves. */
  void (*depthwise_s8_acc16)(const int8_t *x, size_t row_stride, size_t taps, size_t c, const int8_t *w,
                             const kws_epilogue *e, int8_t *y);
} kws_kernels;

struct kws_backend {
  const char *name;
  int (*usable)(void);
  const kws_kernels *kernels;
};

/* One table per backend; each is defined in its ISA's directory. */
extern const kws_kernels kws_portable_kernels;
extern const kws_kernels kws_avx512_kernels, kws_avxvnni_kernels, kws_avx2_kernels, kws_sse41_kernels; /* x86 */
extern const kws_kernels kws_neon_kernels;     /* aarch64, 32-bit Arm NEON, or x86 through SIMDe */
extern const kws_kernels kws_neon_dot_kernels; /* aarch64, or x86 through SIMDe */

/* A layer as loaded: its plan (the kernel chosen for it once, at load) and its arrays. */
typedef struct {
  int kind;
  int weight_bits;
  int acc16_log2; /* proven int16 accumulation block (log2 products), 0 for none */
  size_t in_size, out_size;
  const kws_dense_kernel *dense; /* int8 dense layers: the kernel that runs them */
  int fused;       /* KWS_FUSED_*: how this layer's epilogue and the next layer's relate */
  size_t weight_bytes; /* as held */
  const int8_t *weights; /* dense: as dense->pack laid them out (int16 models: [out][in]); affine: [out]; in
                           place: the blob's codes */
  int32_t *bias32;  /* int8 activations, folded with the input zero point */
  int64_t *bias64;  /* int16 activations */
  int32_t *multiplier, *shift;
  kws_requant_params params; /* points into multiplier/shift */
  kws_epilogue epilogue;     /* int8 dense layers: points into this layer (and the next, if fused) */
} kws_layer;

/* A streaming graph as loaded (blob kind 1, docs/format.md 10; csrc/graph.c). */
typedef struct kws_graph kws_graph;

struct kws_model {
  const kws_backend *backend;
  unsigned load_flags; /* KWS_LOAD_* */
  int owned;           /* 1: kws_model_load allocated the block the model starts; 0: the caller's arena */
  int kind;         /* KWS_MODEL_DENSE: everything below; KWS_MODEL_GRAPH: graph, and backend */
  kws_graph *graph; /* owned; NULL for dense models */
  int act_bits;
  kws_weight_storage storage;
  int window_frames, feature_dim, frame_stride;
  size_t input_size;
  float *mean, *inv_std; /* [feature_dim] */
  float input_scale;
  int32_t input_zero_point;
  int32_t posterior_multiplier, posterior_shift;
  int num_layers;
  kws_layer *layers; /* [num_layers] */
  size_t max_width; /* widest activation vector */
  size_t weight_bytes;
  size_t model_bytes; /* the bytes the load carved for everything above (a graph's: its tables and arrays) */
  uint64_t macs;
};

/* Scalar arithmetic of docs/arithmetic.md, shared by every backend's tail code: static inline here (they run
 * once per output channel, in every epilogue), their one definition. */
int32_t kws_requant_s64(int64_t acc, int32_t multiplier, int32_t shift);

/* int32 arithmetic that wraps modulo 2^32, as the spec requires, without UB. */
static inline int32_t kws_wrap32(uint32_t u) {
  return u <= (uint32_t)INT32_MAX ? (int32_t)u : (int32_t)(u - 0x80000000u) + INT32_MIN;
}

static inline int32_t kws_srdhm(int32_t a, int32_t b) {
  if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
  int64_t ab = (int64_t)a * (int64_t)b;
  int64_t nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
  return (int32_t)((ab + nudge) / ((int64_t)1 << 31)); /* C division truncates, as C++ */
}

static inline int32_t kws_rounding_divide_by_pot(int32_t x, int exponent) {
  int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
  int32_t remainder = x & mask;
  int32_t threshold = (mask >> 1) + (x < 0);
  return (x >> exponent) + (remainder > threshold);
}

static inline int32_t kws_requant_s32(int32_t acc, int32_t multiplier, int32_t shift) {
  int left = shift > 0 ? shift : 0;
  int right = shift > 0 ? 0 : -shift;
  int32_t shifted = kws_wrap32((uint32_t)acc << left);
  return kws_rounding_divide_by_pot(kws_srdhm(shifted, multiplier), right);
}

static inline int32_t kws_add_wrap(int32_t a, int32_t b) { return kws_wrap32((uint32_t)a + (uint32_t)b); }

static inline int32_t kws_clamp_to(int32_t v, const kws_requant_params *p) {
  return v < p->act_min ? p->act_min : v > p->act_max ? p->act_max : v;
}

/* The epilogue of kws_epilogue for one channel c; acc is the sum without the bias. */
static inline int8_t kws_epilogue_s8(int32_t acc, const kws_epilogue *e, size_t c) {
  const kws_requant_params *p = e->p;
  int32_t v = kws_clamp_to(kws_add_wrap(kws_requant_s32(acc + e->bias[c], p->multiplier[c], p->shift[c]),
                                        p->output_zero_point), p);
  if (e->affine_w) { /* |w * v| <= 127 * 128 and the folded bias is a layer's: exact in int32 */
    const kws_requant_params *q = e->affine_p;
    v = kws_clamp_to(kws_add_wrap(kws_requant_s32(e->affine_bias[c] + e->affine_w[c] * v, q->multiplier[c],
                                                  q->shift[c]), q->output_zero_point), q);
  }
  return (int8_t)v;
}

/* The kernel a dense layer with int8 activations and `bits`-bit weights runs on. */
const kws_dense_kernel *kws_plan_dense(const kws_kernels *kk, int bits, kws_weight_storage storage);
/* Folded biases (see the kernel table): out[o] = bias[o] - zp * sum_i w[o][i]
 * for dense (k > 1 inputs per row) and bias[c] - zp * w[c] for affine (k = 1);
 * bias may be NULL (zeros). */
void kws_fold_bias_s32(const int32_t *bias, kws_codes w, size_t n, size_t k, int32_t zp, int32_t *out);
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
/* Gather the stream's newest window (window_frames frames pushed at least) into the
 * model's input vector. */
void kws_stream_window(const kws_stream *s, void *input);
uint32_t kws_crc32(const uint8_t *data, size_t n);
/* TFLM QuantizeMultiplier; returns 0 if the scale needs a shift above max_shift (csrc/blob.c). */
int kws_quantize_multiplier(double scale, int max_shift, int32_t *mult, int32_t *shift);

/* A bump allocator over one block, 8-byte aligned: the loaders carve every array of a model from it. */
typedef struct {
  uint8_t *base;
  size_t used, size;
} kws_arena;
static inline size_t kws_align8(size_t n) { return (n + 7) & ~(size_t)7; }
/* n bytes, zeroed; NULL if the block has no room for them. */
static inline void *kws_carve(kws_arena *a, size_t n) {
  size_t need = kws_align8(n);
  if (!a->base || need > a->size - a->used) return NULL;
  uint8_t *p = a->base + a->used;
  a->used += need;
  memset(p, 0, need);
  return p;
}

/* --- streaming graphs (csrc/graph.c) --- */
/* The kind 1 payload (after the 16-byte header, CRC checked): with out NULL, only checked, and *need set to the
 * arena bytes a load takes (exactly); else loaded into arena (arena_bytes, 8-byte aligned; KWS_ERR_NOMEM with
 * field "arena" when arena_bytes is below *need), or with arena NULL copied into allocations of its own (the
 * model's block and its arrays'; kws_model_free frees both). Offsets in err count from the blob's start. */
kws_status kws_graph_load(const uint8_t *payload, size_t size, const kws_backend *be, unsigned flags, void *arena,
                          size_t arena_bytes, size_t *need, kws_model **out, kws_load_error *err);
void kws_graph_free(kws_graph *g); /* a copied graph's arrays */
void kws_graph_get_info(const kws_graph *g, kws_model_info *info);
/* The per-stream memory of a graph: its tensors and states (codes) and the gather buffer. */
size_t kws_graph_stream_bytes(const kws_graph *g);
void kws_graph_stream_init(const kws_graph *g, uint8_t *arena);  /* states := their init codes */
void kws_graph_stream_reset(const kws_graph *g, uint8_t *arena); /* states := their zero points */
kws_status kws_graph_invoke(const kws_graph *g, uint8_t *arena, const int8_t *in, size_t in_len, void *out,
                            size_t out_len); /* the kernels were chosen at load */
kws_status kws_graph_describe(const kws_graph *g, kws_graph_info *info);
/* LOGISTIC int8 -> int8 of every input code (entry x + 128), as TFLM; 0 for a scale TFLM cannot prepare. */
int kws_logistic_table(float input_scale, int32_t input_zero_point, int8_t table[256]);
/* int16 accumulation (docs/arithmetic.md 5.6): claimed blocks are 2^4 .. 2^14 products of a row,
 * and a block is safe if 128 * sum |w| over it (|x| <= 128) fits int16. */
enum { KWS_ACC16_MIN_LOG2 = 4, KWS_ACC16_MAX_LOG2 = 14 };
static inline int kws_acc16_block_ok(int32_t abs_sum) { return 128 * abs_sum <= 32767; }
/* 1 if every aligned block of 2^log2_block products of every row of w [n][k] is safe. */
int kws_acc16_safe(const int8_t *w, size_t n, size_t k, int log2_block);
/* 1 if depthwise weights [taps][c] have 128 * sum_k |w[k][c]| <= 32767 for every channel c. */
int kws_depthwise_acc16_safe(const int8_t *w, size_t taps, size_t c);

#endif
