/* kwsint: bit-exact integer inference for streaming keyword-spotting models.
 *
 * The arithmetic is specified in docs/arithmetic.md and the blob format in
 * docs/format.md. A loaded model is immutable: any number of threads may run
 * it at once, each with its own kws_stream (or scratch arena). No function
 * keeps global mutable state. The benchmarks' timing loops are in kwsint_bench.h.
 */
#ifndef KWSINT_H
#define KWSINT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  KWS_OK = 0,
  KWS_ERR_ARGUMENT = 1,  /* an argument is out of its documented range */
  KWS_ERR_TRUNCATED = 2, /* the blob ends before a field it declares */
  KWS_ERR_MAGIC = 3,     /* not a kwsint blob */
  KWS_ERR_VERSION = 4,   /* unknown format version */
  KWS_ERR_CHECKSUM = 5,  /* payload CRC32 mismatch */
  KWS_ERR_FIELD = 6,     /* a field holds a value outside its range */
  KWS_ERR_SIZE = 7,      /* declared sizes do not add up */
  KWS_ERR_NOMEM = 8,
  KWS_ERR_BACKEND = 9    /* unknown or unusable backend */
} kws_status;

/* Where a blob failed to load: the field's name and its byte offset. */
typedef struct {
  const char *field;
  size_t offset;
} kws_load_error;

typedef struct kws_backend kws_backend;
typedef struct kws_model kws_model;
typedef struct kws_stream kws_stream;

/* Backends compiled into this library, in order of preference (fastest first). */
int kws_backend_count(void);
const kws_backend *kws_backend_at(int index);
const char *kws_backend_name(const kws_backend *backend);
int kws_backend_usable(const kws_backend *backend); /* 1 if this CPU runs it */
/* Look a backend up by name; NULL name gives the fastest usable one. */
kws_status kws_backend_find(const char *name, const kws_backend **out);

/* --- single ops (TFLite builtin semantics, see docs/arithmetic.md) ------- */

/* Q31 requantization of n accumulators with one multiplier/shift each:
 * int32 (double rounding) and int64 (16x8) variants. multiplier in
 * [INT32_MIN, INT32_MAX] for s32 and [0, INT32_MAX] for s64; shift in
 * [-31, 30] for s32 and [-31, 7] for s64; |acc| < 2^47 for s64. */
kws_status kws_requantize_s32(const kws_backend *be, const int32_t *acc, const int32_t *multiplier,
                              const int32_t *shift, size_t n, int32_t *out);
kws_status kws_requantize_s64(const kws_backend *be, const int64_t *acc, const int32_t *multiplier,
                              const int32_t *shift, size_t n, int32_t *out);

/* Per-output-channel parameters shared by FULLY_CONNECTED and the affine op. */
typedef struct {
  const int32_t *multiplier; /* [n], in [0, INT32_MAX] */
  const int32_t *shift;      /* [n], in [-31, 30] (int8) or [-31, 7] (int16) */
  int32_t input_zero_point;  /* int8: [-128, 127]; int16: 0 */
  int32_t output_zero_point; /* int8: [-128, 127]; int16: 0 */
  int32_t act_min, act_max;  /* fused clamp, within the output type */
} kws_requant_params;

/* y[b][n] = clamp(requant(sum_k w[n][k] * (x[b][k] - zp_in) + bias[n]) + zp_out).
 * x: [batches][k], w: [n][k] with codes in [-127, 127], bias: [n] or NULL.
 * k in [1, 16384], n in [1, 16384]; int8: |bias| <= 2^30; int16: |bias| < 2^46. */
kws_status kws_fully_connected_s8(const kws_backend *be, const int8_t *x, size_t batches, size_t k,
                                  const int8_t *w, size_t n, const int32_t *bias,
                                  const kws_requant_params *p, int8_t *y);
/* kws_fully_connected_s8 accumulating in int16 over aligned blocks of 2^log2_block
 * products per row (docs/arithmetic.md 5.6): the same results, faster where the
 * backend has such a kernel. log2_block in [4, 14], and the block must be safe for
 * these weights (128 * sum |w| <= 32767 in every block of every row), or
 * KWS_ERR_ARGUMENT. */
kws_status kws_fully_connected_s8_acc16(const kws_backend *be, const int8_t *x, size_t batches, size_t k,
                                        const int8_t *w, size_t n, const int32_t *bias,
                                        const kws_requant_params *p, int log2_block, int8_t *y);
/* DEPTHWISE_CONV_2D in time, one output frame (docs/arithmetic.md 11.4):
 * y[c] = clamp(requant(sum_k w[k][c] * (x[k][c] - zp_in) + bias[c]) + zp_out), x and w [taps][c], w codes in
 * [-127, 127], taps and c in [1, 16384], |bias| <= 2^30, bias may be NULL. acc16 1: accumulate in int16 (the
 * kernel a graph op runs on when its weights allow it: 128 * sum_k |w[k][c]| <= 32767 for every c, else
 * KWS_ERR_ARGUMENT); the same results. */
kws_status kws_depthwise_s8(const kws_backend *be, const int8_t *x, size_t taps, size_t c, const int8_t *w,
                            const int32_t *bias, const kws_requant_params *p, int acc16, int8_t *y);
/* How the dense weights of int8-activation models are held in memory, and so
 * which kernel runs each layer (chosen once per layer, at load).
 * INT8: one int8 code each, in the backend's int8 layout.
 * PACKED: 2..4-bit layers two codes per byte (or the backend's 4-bit layout),
 * 1-bit layers eight signs per byte (the paper's Table 5 memory), run by
 * kernels that compute from the packed codes; other layers as INT8.
 * AUTO: PACKED for the layers whose bits the backend has a packed kernel for
 * that is faster than its int8 one (benchmarks/README.md), INT8 otherwise.
 * Results are the same whatever the choice. */
typedef enum { KWS_WEIGHTS_INT8 = 0, KWS_WEIGHTS_PACKED = 1, KWS_WEIGHTS_AUTO = 2 } kws_weight_storage;

/* How one layer runs, as chosen at load (or when a dense op is prepared). */
enum {
  KWS_FUSED_NONE = 0,
  KWS_FUSED_NEXT = 1,         /* the next (affine) layer runs inside this layer's epilogue */
  KWS_FUSED_INTO_PREVIOUS = 2 /* this affine layer runs inside the previous layer's epilogue */
};
typedef struct {
  const char *kernel;  /* the kernel's name: backend, weight format and layout */
  size_t weight_bytes; /* this layer's weights as held */
  int code_bits;       /* bits each weight takes as held: 8, 4 (two per byte) or 1 (eight per byte) */
  int acc16_block;     /* products per int16 accumulation block the kernel uses; 0: int32 sums */
  int fused;           /* KWS_FUSED_* */
} kws_layer_plan;

/* A prepared int8 FULLY_CONNECTED: the arguments of kws_fully_connected_s8 checked,
 * the bias folded and the weights packed once (with the kernel the model loader would
 * choose for weight_bits-bit codes and `storage`), then run on any number of inputs.
 * weight_bits in [1, 8]: codes in [-(2^(bits-1) - 1), 2^(bits-1) - 1], or -1 and +1
 * for 1 bit; log2_block 0, or an int16 block as for kws_fully_connected_s8_acc16. The
 * op copies what it needs: the caller may free its arrays after create. An op is
 * immutable, so threads may share it. */
typedef struct kws_dense_op kws_dense_op;
kws_status kws_dense_op_create(const kws_backend *be, size_t k, const int8_t *w, size_t n, int weight_bits,
                               const int32_t *bias, const kws_requant_params *p, int log2_block,
                               kws_weight_storage storage, kws_dense_op **out);
/* y[b][n] for x[b][k], b < batches (batches <= SIZE_MAX / 16384). */
kws_status kws_dense_op_run(const kws_dense_op *op, const int8_t *x, size_t batches, int8_t *y);
kws_status kws_dense_op_plan(const kws_dense_op *op, kws_layer_plan *plan);
void kws_dense_op_free(kws_dense_op *op);

kws_status kws_fully_connected_s16(const kws_backend *be, const int16_t *x, size_t batches, size_t k,
                                   const int8_t *w, size_t n, const int64_t *bias,
                                   const kws_requant_params *p, int16_t *y);

/* y[b][c] = clamp(requant(w[c] * (x[b][c] - zp_in) + bias[c]) + zp_out): DEPTHWISE_CONV_2D 1x1. */
kws_status kws_affine_s8(const kws_backend *be, const int8_t *x, size_t batches, size_t n,
                         const int8_t *w, const int32_t *bias, const kws_requant_params *p, int8_t *y);
kws_status kws_affine_s16(const kws_backend *be, const int16_t *x, size_t batches, size_t n,
                          const int8_t *w, const int64_t *bias, const kws_requant_params *p, int16_t *y);

/* QUANTIZE: y = clamp(round_half_away(x / scale) + zero_point); act_bits 8 or 16. */
kws_status kws_quantize(const kws_backend *be, const float *x, size_t n, float scale, int32_t zero_point,
                        int act_bits, void *y);

/* Wakeword posterior in Q16 (65536 == 1.0) from logit[1] - logit[0]. */
int32_t kws_posterior_q16(int32_t logit_diff, int32_t multiplier, int32_t shift);

/* float32 ops (docs/arithmetic.md 10): a fixed summation order, no fused
 * multiply-add, so every backend gives the same bits. Dense:
 * y[b][n] = min(max(dot(w[n], x[b]) + bias[n], act_min), act_max) with dot()
 * summed in 8 lanes (k mod 8) and the lanes added in a fixed tree.
 * k, n in [1, 16384]; bias may be NULL (zeros). */
kws_status kws_fully_connected_f32(const kws_backend *be, const float *x, size_t batches, size_t k,
                                   const float *w, size_t n, const float *bias, float act_min, float act_max,
                                   float *y);
/* y[b][c] = x[b][c] * scale[c] + shift[c] (batch norm after the activation). */
kws_status kws_affine_f32(const kws_backend *be, const float *x, size_t batches, size_t n, const float *scale,
                          const float *shift, float *y);

/* --- models ---------------------------------------------------------------- */

/* Parse and check a blob; the model owns copies of everything it needs, so the
 * caller may free `data` afterwards. On failure *out is NULL and err (if given)
 * names the field. */
kws_status kws_model_load(const void *data, size_t size, const kws_backend *be, kws_model **out,
                          kws_load_error *err);
void kws_model_free(kws_model *model);


/* kws_model_load with a weight storage choice (kws_model_load uses AUTO). */
kws_status kws_model_load_with(const void *data, size_t size, const kws_backend *be, kws_weight_storage storage,
                               kws_model **out, kws_load_error *err);

/* Loading into the caller's memory, and in place. kws_model_load_into allocates nothing: the model is built
 * in the caller's arena. With KWS_LOAD_IN_PLACE it reads the blob's weights where they lie (in flash, or a
 * memory map) wherever a kernel reads them as the blob stores them: 8-bit weights; 4-bit weights of dense
 * layers whose rows are whole bytes (an even number of inputs), unless int8 storage is asked for; every
 * weight of a streaming graph and its initial states. The blob must then stay unchanged for as long as the
 * model is used. Other weights are packed into the arena as kws_model_load packs them, and so are the
 * per-channel arrays (folded biases, multipliers, shifts). In place may choose a slower kernel: 8-bit dense
 * layers run on the backend's kernel where it reads row-major codes (neon, neon-dotprod, sse4.1, portable)
 * and on the portable one where the backend packs its own layout (avx2, avx-vnni, avx512-vnni); 4-bit ones
 * on the portable nibble kernel. kws_model_layer_plan names each layer's. The format needs no alignment:
 * the kernels read weights byte-wise or with unaligned loads. */
enum { KWS_LOAD_IN_PLACE = 1 };

/* The arena bytes kws_model_load_into takes for this blob, backend, storage and flags, exactly. Checks the
 * whole blob as kws_model_load does, with the same errors; allocates nothing. */
kws_status kws_model_arena_bytes(const void *data, size_t size, const kws_backend *be, kws_weight_storage storage,
                                 unsigned flags, size_t *bytes, kws_load_error *err);
/* Load into arena (8-byte aligned, arena_bytes at least kws_model_arena_bytes, else KWS_ERR_NOMEM with err
 * field "arena"); allocates nothing. The model then lives in the arena's first info.model_bytes bytes (a
 * dense model's are all of them; a graph's load also used the rest, for its tables while they were checked). The
 * caller owns the arena: kws_model_free does nothing on such a model, and the arena may be reused once the
 * model and its streams are no longer used. */
kws_status kws_model_load_into(const void *data, size_t size, const kws_backend *be, kws_weight_storage storage,
                               unsigned flags, void *arena, size_t arena_bytes, kws_model **out,
                               kws_load_error *err);

typedef struct {
  int act_bits;          /* 8 or 16 */
  int num_layers;
  int window_frames;     /* frames per window */
  int feature_dim;       /* features per frame */
  int frame_stride;
  size_t input_size;     /* quantized input vector length */
  size_t num_outputs;    /* 2 */
  size_t scratch_bytes;  /* size of the arena kws_model_infer_q needs */
  size_t input_bytes;    /* the input vector (8-byte multiple); kws_model_infer's arena
                            is scratch_bytes + input_bytes */
  size_t weight_bytes;   /* weights as the kernels read them (in place: in the blob) */
  size_t model_bytes;    /* all the loaded model holds in its own memory: weights (not those
                            read in place), biases, multipliers and shifts, normalisation, its
                            structs (the bytes carved, exactly) */
  uint64_t macs;         /* multiply-accumulates per inference */
  size_t batch_scratch_bytes; /* size of the arena kws_model_infer_batch_q needs */
} kws_model_info;

void kws_model_get_info(const kws_model *model, kws_model_info *info);


/* The plan of layer `layer` (0-based); KWS_ERR_ARGUMENT if there is no such layer. */
kws_status kws_model_layer_plan(const kws_model *model, int layer, kws_layer_plan *plan);
const kws_backend *kws_model_backend(const kws_model *model);

/* One inference from the quantized input vector (int8 or int16 per act_bits).
 * scratch: at least info.scratch_bytes, 8-byte aligned, owned by the caller.
 * logits: num_outputs values; posterior_q16: wakeword posterior, 65536 == 1.0. */
kws_status kws_model_infer_q(const kws_model *model, const void *input, void *scratch, int32_t *logits,
                             int32_t *posterior_q16);

/* Windows kws_model_infer_batch_q runs through the layers together. */
enum { KWS_BATCH_WINDOWS = 16 };

/* kws_model_infer_q on `count` quantized input vectors, inputs [count][input_size]
 * (no padding between them), with the same results: the windows go through the model
 * layer by layer in chunks of KWS_BATCH_WINDOWS, each layer of a chunk in one kernel
 * call. scratch: at least info.batch_scratch_bytes, 8-byte aligned, whatever count;
 * logits: [count][num_outputs]; posteriors: [count] or NULL. */
kws_status kws_model_infer_batch_q(const kws_model *model, const void *inputs, size_t count, void *scratch,
                                   int32_t *logits, int32_t *posteriors);

/* Quantize one float window [window_frames][feature_dim] into the input vector
 * (frame selection, float32 normalisation, QUANTIZE). */
kws_status kws_model_quantize_window(const kws_model *model, const float *window, void *input);

/* kws_model_quantize_window then kws_model_infer_q in one call. scratch: at
 * least scratch_bytes + input_bytes, 8-byte aligned. KWS_ERR_ARGUMENT if any
 * value of the window is NaN or infinite (nothing is computed then). */
kws_status kws_model_infer(const kws_model *model, const float *window, void *scratch, int32_t *logits,
                           int32_t *posterior_q16);

/* --- float32 models: the paper's M0 baseline on the same engine ------------ */

/* A float network given as arrays (no blob): frame selection and
 * normalisation as for integer models, then dense and affine layers in
 * float32 (kws_fully_connected_f32, kws_affine_f32). */
enum { KWS_LAYER_DENSE = 1, KWS_LAYER_AFFINE = 2 };

typedef struct {
  int kind;               /* KWS_LAYER_DENSE or KWS_LAYER_AFFINE (in_size == out_size) */
  size_t in_size, out_size;
  const float *weights;   /* dense: [out][in]; affine: the scale [out] */
  const float *bias;      /* [out]: the dense bias or the affine shift */
  float act_min, act_max; /* dense output clamp (-INFINITY, INFINITY for none) */
} kws_float_layer;

typedef struct {
  int window_frames, feature_dim, frame_stride; /* as in the blob (docs/format.md 3.1) */
  const float *mean, *inv_std;                  /* [feature_dim] */
  int num_layers;                               /* [1, 64] */
  const kws_float_layer *layers;
} kws_float_model_desc;

typedef struct kws_float_model kws_float_model;

/* Check the description and copy every array; all values must be finite
 * (clamp bounds may be infinite). */
kws_status kws_float_model_create(const kws_float_model_desc *desc, const kws_backend *be,
                                  kws_float_model **out);
void kws_float_model_free(kws_float_model *model);
/* act_bits is 32; input_bytes is 0: the arena holds the normalised input too. */
void kws_float_model_get_info(const kws_float_model *model, kws_model_info *info);
/* One inference on a raw window [window_frames][feature_dim]; scratch: at least
 * info.scratch_bytes, 8-byte aligned; logits: num_outputs floats.
 * KWS_ERR_ARGUMENT if the window holds NaN or Inf. */
kws_status kws_float_model_infer(const kws_float_model *model, const float *window, void *scratch,
                                 float *logits);
/* The model on the windows a fresh kws_detector with this hop would step at over
 * num_frames frames [num_frames][feature_dim]: those whose newest frame is
 * window_frames - 1 + k * hop, k = 0, 1, ..., below num_frames. logits:
 * [capacity][2], each window's as kws_float_model_infer gives them; *num_steps
 * gets the windows run (0 when num_frames < window_frames). KWS_ERR_ARGUMENT,
 * with nothing computed, for hop < 1, capacity below the windows, or a frame
 * holding NaN or Inf. */
kws_status kws_float_model_infer_steps(const kws_float_model *model, const float *frames, size_t num_frames,
                                       size_t hop, void *scratch, float *logits, size_t capacity,
                                       size_t *num_steps);

/* --- streams: per-stream state over a shared model ------------------------- */

/* A stream keeps the last window_frames quantized frames in a ring buffer and
 * its own scratch arena; frames are quantized once, when they arrive. */
kws_status kws_stream_create(const kws_model *model, kws_stream **out);
void kws_stream_free(kws_stream *stream);
void kws_stream_reset(kws_stream *stream);
/* Push n float frames [n][feature_dim]. */
kws_status kws_stream_push(kws_stream *stream, const float *frames, size_t n);
/* Bytes one stream over this model allocates (its whole state; a graph's layout: docs/arithmetic.md 11.9). */
size_t kws_stream_bytes(const kws_model *model);
/* A stream in the caller's memory (mem: kws_stream_bytes(model) bytes, 8-byte aligned); allocates nothing.
 * kws_stream_free does nothing on it. */
kws_status kws_stream_init(const kws_model *model, void *mem, size_t bytes, kws_stream **out);
/* Frames pushed since the last reset (saturates at SIZE_MAX). */
size_t kws_stream_frames(const kws_stream *stream);
/* Run the model on the newest full window; KWS_ERR_ARGUMENT until
 * window_frames frames have been pushed. */
kws_status kws_stream_infer(kws_stream *stream, int32_t *logits, int32_t *posterior_q16);

/* --- streaming graphs (blob kind 1: microWakeWord's TFLite models) ------------
 * A graph model is loaded by kws_model_load like any blob (or by kwsint.load from a
 * .tflite file through the importer); kws_model_kind tells which it is. The dense
 * calls (kws_model_infer*, kws_stream_push/infer, detectors) refuse a graph model
 * with KWS_ERR_ARGUMENT, and kws_stream_invoke refuses a dense one. A stream over a
 * graph holds every state and tensor of one invoke, allocated at create: an invoke
 * allocates nothing. kws_stream_reset sets every state code to its zero point, as
 * TFLM's reset() (a new stream starts from the states' init codes instead). */
enum { KWS_MODEL_DENSE = 0, KWS_MODEL_GRAPH = 1 };
int kws_model_kind(const kws_model *model); /* KWS_MODEL_*, -1 for NULL */

typedef struct {
  size_t input_frames, input_channels;   /* one invoke's int8 input codes */
  size_t output_frames, output_channels; /* its output codes */
  int output_uint8;                      /* 1: the output is uint8, 0: int8 */
  size_t num_tensors, num_states, num_ops;
  size_t state_bytes;                    /* codes of all states */
  size_t acc16_ops;                      /* convolutions and FULLY_CONNECTEDs that run int16 sums: their weights
                                            allow it (docs/arithmetic.md 11.4) and the backend has the kernel */
} kws_graph_info;

kws_status kws_model_graph_info(const kws_model *model, kws_graph_info *info);
/* One invoke: in_len int8 input codes (input_frames x input_channels, frame by frame),
 * out_len output codes (output_frames x output_channels bytes) into out. */
kws_status kws_stream_invoke(kws_stream *stream, const int8_t *in, size_t in_len, void *out, size_t out_len);
/* Consecutive invokes on a feature array: in holds n inputs back to back (in_len = n * one input's codes),
 * out receives their n outputs back to back (out_len = n * one output's codes); n = 0 does nothing. Lengths
 * that are not such multiples of one invoke's are refused (KWS_ERR_ARGUMENT) before any invoke. */
kws_status kws_stream_invoke_many(kws_stream *stream, const int8_t *in, size_t in_len, void *out, size_t out_len);

/* --- limits: every check of them, in C and in Python (kwsint.engine.limits), uses these --- */

#define KWS_MAX_DIM 16384                              /* features of a frame; inputs, outputs of a layer */
#define KWS_MAX_LAYERS 64
#define KWS_MAX_SHIFT_S8 30                            /* requantization shift, int8 activations */
#define KWS_MAX_SHIFT_S16 7                            /* ... int16 activations */
#define KWS_BIAS_LIMIT_S8 ((int64_t)1 << 30)           /* |bias|, int8 activations */
#define KWS_BIAS_LIMIT_S16 (((int64_t)1 << 46) - 1)    /* |bias|, int16 activations */
#define KWS_MAX_GRAPH_TENSORS 1024                     /* tensors of a streaming graph (blob kind 1) */
#define KWS_MAX_GRAPH_STATES 256                       /* states of a streaming graph */
#define KWS_MAX_GRAPH_OPS 1024                         /* ops of a streaming graph */
#define KWS_MAX_TENSOR_CODES 65536                     /* frames x channels of a graph tensor or state */

/* --- detection: steps, smoothing, threshold, lockout (docs/arithmetic.md 8) --- */

typedef struct kws_detector kws_detector;

enum { KWS_MAX_SMOOTHING = 1024 };

typedef struct {
  int hop;               /* frames between steps, >= 1 */
  int smoothing;         /* moving-average window W in steps, [1, KWS_MAX_SMOOTHING] */
  int32_t threshold_q16; /* [0, 65536], 65536 == 1.0 */
  int lockout;           /* steps after a detection that cannot fire, >= 0 */
} kws_detector_config;

/* Per-step outputs of kws_detector_push, in caller-owned arrays; any pointer
 * may be NULL. A step is one model run, on the window whose newest frame has
 * index frame (frames counted from 0 since create or reset). */
typedef struct {
  size_t capacity;        /* steps each non-NULL array holds */
  uint64_t *frame;        /* [capacity] */
  int32_t *logits;        /* [capacity][2] */
  int32_t *posterior_q16; /* [capacity], the model's posterior */
  int32_t *smoothed_q16;  /* [capacity], its moving average */
  uint8_t *fired;         /* [capacity], 1 where a detection fired */
} kws_detector_steps;

/* A detector owns a stream over the model and W posteriors; it allocates
 * nothing after create. Steps run at the frame that completes the first
 * window (window_frames frames pushed) and every hop frames after it. */
kws_status kws_detector_create(const kws_model *model, const kws_detector_config *config, kws_detector **out);
void kws_detector_free(kws_detector *detector);
/* Bytes one detector with this config allocates, its stream included (0 for a bad config). */
size_t kws_detector_bytes(const kws_model *model, const kws_detector_config *config);
/* A detector (its stream included) in the caller's memory (mem: kws_detector_bytes bytes, 8-byte aligned);
 * allocates nothing. kws_detector_free does nothing on it. */
kws_status kws_detector_init(const kws_model *model, const kws_detector_config *config, void *mem, size_t bytes,
                             kws_detector **out);
/* Forget frames, posteriors and lockout: as freshly created. */
void kws_detector_reset(kws_detector *detector);
/* Steps a push of n frames would run now: at most ceil(n / hop). */
size_t kws_detector_steps_for(const kws_detector *detector, size_t n);
/* Push n float frames [n][feature_dim]; *num_steps (if given) gets the steps
 * run. The steps of one push run the model in batches (kws_model_infer_batch_q)
 * before their decisions are made in order: a big push costs less per step
 * than many small ones, with the same results. If out is given and out->capacity < kws_detector_steps_for(n), returns
 * KWS_ERR_ARGUMENT and consumes nothing. */
kws_status kws_detector_push(kws_detector *detector, const float *frames, size_t n, kws_detector_steps *out,
                             size_t *num_steps);

#ifdef __cplusplus
}
#endif
#endif /* KWSINT_H */
