/* Runs test vectors through kwsint's public C API and writes every output.
 *
 * Built for aarch64 and 32-bit Arm and run under qemu by tests/test_arm.py, which
 * writes the vectors from kwsint.engine.reference and compares the results with it.
 *
 *   driver --backends             print "<name> <usable 0|1>" per compiled backend,
 *                                 then "default <name>"
 *   driver VECTORS RESULTS        run every case of VECTORS, write RESULTS
 *
 * All integers are little-endian. The formats (tests/aarch64/vectors.py writes
 * and parses them; the op payloads are described there field by field):
 *
 *   vectors: "KWV1", u32 num_cases, then per case
 *            u32 op, u32 name_len, name (backend), u32 payload_len, payload
 *   results: "KWR1", u32 num_cases, then per case
 *            u32 op, i32 status, u32 out_len, out
 *
 * Every length is checked against the bytes actually present: a short or
 * inconsistent file stops the driver with exit status 2 and a message naming
 * the case and the field. A call that returns an error is not fatal: its
 * status goes into the results (status != 0, out_len 0 for op cases).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kwsint.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the driver reads little-endian vectors with memcpy: little-endian targets only"
#endif

enum {
  OP_REQUANTIZE_S32 = 1,
  OP_REQUANTIZE_S64 = 2,
  OP_FULLY_CONNECTED_S8 = 3,
  OP_FULLY_CONNECTED_S16 = 4,
  OP_AFFINE_S8 = 5,
  OP_AFFINE_S16 = 6,
  OP_QUANTIZE = 7,
  OP_POSTERIOR = 8,
  OP_MODEL = 9,
  OP_DETECTOR = 10,
  OP_FULLY_CONNECTED_F32 = 11,
  OP_AFFINE_F32 = 12,
  OP_DENSE_OP = 13,
  OP_GRAPH = 14,
  OP_COUNT
};

/* Anything one case asks the driver to allocate is bounded by this many bytes. */
#define MAX_ALLOC ((size_t)1 << 28)

/* --- reading ------------------------------------------------------------------ */

typedef struct {
  const uint8_t *data;
  size_t size, pos;
  unsigned case_index; /* for messages */
  const char *where;   /* "header" or the op name */
} reader;

static void die(const reader *r, const char *field, const char *msg, size_t want) {
  fprintf(stderr, "driver: case %u (%s): %s: %s (needs %zu, offset %zu of %zu)\n", r->case_index, r->where,
          field, msg, want, r->pos, r->size);
  exit(2);
}

static const uint8_t *take(reader *r, size_t n, const char *field) {
  if (n > r->size - r->pos) die(r, field, "truncated", n);
  const uint8_t *p = r->data + r->pos;
  r->pos += n;
  return p;
}

static uint32_t rd_u32(reader *r, const char *field) {
  uint32_t v;
  memcpy(&v, take(r, 4, field), 4);
  return v;
}

static int32_t rd_i32(reader *r, const char *field) {
  int32_t v;
  memcpy(&v, take(r, 4, field), 4);
  return v;
}

static float rd_f32(reader *r, const char *field) {
  float v;
  memcpy(&v, take(r, 4, field), 4);
  return v;
}

/* count * elem bytes, refusing products that overflow or exceed MAX_ALLOC. */
static size_t bytes_of(const reader *r, size_t count, size_t elem, const char *field) {
  if (elem && count > MAX_ALLOC / elem) die(r, field, "array too large", count);
  return count * elem;
}

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) {
    fprintf(stderr, "driver: out of memory (%zu bytes)\n", n);
    exit(3);
  }
  return p;
}

/* A copy of count elements of elem bytes (aligned for any type). */
static void *rd_array(reader *r, size_t count, size_t elem, const char *field) {
  size_t n = bytes_of(r, count, elem, field);
  void *p = xmalloc(n);
  if (n) memcpy(p, take(r, n, field), n);
  return p;
}

/* --- writing ------------------------------------------------------------------ */

typedef struct {
  uint8_t *data;
  size_t size, cap;
} buffer;

static void put(buffer *b, const void *p, size_t n) {
  if (n > b->cap - b->size) {
    size_t cap = b->cap ? b->cap : 4096;
    while (n > cap - b->size) {
      if (cap > SIZE_MAX / 2) {
        fprintf(stderr, "driver: output too large\n");
        exit(3);
      }
      cap *= 2;
    }
    uint8_t *q = (uint8_t *)realloc(b->data, cap);
    if (!q) {
      fprintf(stderr, "driver: out of memory (%zu bytes)\n", cap);
      exit(3);
    }
    b->data = q;
    b->cap = cap;
  }
  if (n) memcpy(b->data + b->size, p, n);
  b->size += n;
}

static void put_u32(buffer *b, uint32_t v) { put(b, &v, 4); }
static void put_i32(buffer *b, int32_t v) { put(b, &v, 4); }

/* --- ops ---------------------------------------------------------------------- */

/* A stream of frames and the push sizes it arrives in, which must add up to nframes:
 *   u32 nframes, u32 frame_floats, floats; u32 nchunks, u32 chunk[nchunks] */
static void rd_pushes(reader *r, size_t *nframes, size_t *frame_floats, float **frames, size_t *nchunks,
                      uint32_t **chunks) {
  *nframes = rd_u32(r, "nframes");
  *frame_floats = rd_u32(r, "frame_floats");
  *frames = (float *)rd_array(r, *frame_floats, 4, "frames");
  *nchunks = rd_u32(r, "nchunks");
  *chunks = (uint32_t *)rd_array(r, *nchunks, 4, "chunks");
  size_t total = 0;
  for (size_t i = 0; i < *nchunks; i++) {
    if ((*chunks)[i] > *nframes - total) die(r, "chunks", "push sizes exceed nframes", *nframes);
    total += (*chunks)[i];
  }
  if (total != *nframes) die(r, "chunks", "push sizes do not add up to nframes", *nframes);
}

static kws_status run_requantize(reader *r, const kws_backend *be, int wide, buffer *out) {
  size_t n = rd_u32(r, "n");
  void *acc = rd_array(r, n, wide ? 8 : 4, "acc");
  int32_t *mult = (int32_t *)rd_array(r, n, 4, "multiplier");
  int32_t *shift = (int32_t *)rd_array(r, n, 4, "shift");
  int32_t *y = (int32_t *)xmalloc(bytes_of(r, n, 4, "out"));
  kws_status st = wide ? kws_requantize_s64(be, (const int64_t *)acc, mult, shift, n, y)
                       : kws_requantize_s32(be, (const int32_t *)acc, mult, shift, n, y);
  if (st == KWS_OK) put(out, y, n * 4);
  free(acc), free(mult), free(shift), free(y);
  return st;
}

/* fully_connected (dense = 1) and affine (dense = 0), int8 (act_bits 8) or 16x8. */
static kws_status run_layer(reader *r, const kws_backend *be, int dense, int act_bits, buffer *out) {
  size_t batches = rd_u32(r, "batches");
  size_t k = dense ? rd_u32(r, "k") : 1;
  size_t n = rd_u32(r, "n");
  size_t xk = dense ? k : n; /* input values per batch */
  kws_requant_params p;
  p.input_zero_point = rd_i32(r, "input_zero_point");
  p.output_zero_point = rd_i32(r, "output_zero_point");
  p.act_min = rd_i32(r, "act_min");
  p.act_max = rd_i32(r, "act_max");
  uint32_t has_bias = rd_u32(r, "has_bias");
  if (has_bias > 1) die(r, "has_bias", "must be 0 or 1", 1);
  int32_t *mult = (int32_t *)rd_array(r, n, 4, "multiplier");
  int32_t *shift = (int32_t *)rd_array(r, n, 4, "shift");
  p.multiplier = mult;
  p.shift = shift;
  size_t wcount = dense ? bytes_of(r, n, k, "weights") : n;
  int8_t *w = (int8_t *)rd_array(r, wcount, 1, "weights");
  size_t bias_elem = act_bits == 8 ? 4 : 8, x_elem = act_bits == 8 ? 1 : 2;
  void *bias = has_bias ? rd_array(r, n, bias_elem, "bias") : NULL;
  void *x = rd_array(r, bytes_of(r, batches, xk, "x"), x_elem, "x");
  size_t ycount = bytes_of(r, batches, n, "y");
  void *y = xmalloc(bytes_of(r, ycount, x_elem, "y"));
  kws_status st;
  if (dense && act_bits == 8)
    st = kws_fully_connected_s8(be, (const int8_t *)x, batches, k, w, n, (const int32_t *)bias, &p, (int8_t *)y);
  else if (dense)
    st = kws_fully_connected_s16(be, (const int16_t *)x, batches, k, w, n, (const int64_t *)bias, &p,
                                 (int16_t *)y);
  else if (act_bits == 8)
    st = kws_affine_s8(be, (const int8_t *)x, batches, n, w, (const int32_t *)bias, &p, (int8_t *)y);
  else
    st = kws_affine_s16(be, (const int16_t *)x, batches, n, w, (const int64_t *)bias, &p, (int16_t *)y);
  if (st == KWS_OK) put(out, y, ycount * x_elem);
  free(mult), free(shift), free(w), free(bias), free(x), free(y);
  return st;
}

/* A prepared dense op (kws_dense_op_create with weight_bits and a storage, so the packed
 * 4-bit and 1-bit kernels run). Payload: u32 batches, u32 k, u32 n, u32 weight_bits,
 * u32 storage, i32 input_zero_point, output_zero_point, act_min, act_max, u32 has_bias,
 * i32 multiplier[n], i32 shift[n], i8 w[n][k], [i32 bias[n]], i8 x[batches][k].
 * Output: i32 code_bits of the plan (which format ran), then i8 y[batches][n]. */
static kws_status run_dense_op(reader *r, const kws_backend *be, buffer *out) {
  size_t batches = rd_u32(r, "batches");
  size_t k = rd_u32(r, "k");
  size_t n = rd_u32(r, "n");
  int weight_bits = (int)rd_u32(r, "weight_bits");
  uint32_t storage = rd_u32(r, "storage");
  kws_requant_params p;
  p.input_zero_point = rd_i32(r, "input_zero_point");
  p.output_zero_point = rd_i32(r, "output_zero_point");
  p.act_min = rd_i32(r, "act_min");
  p.act_max = rd_i32(r, "act_max");
  uint32_t has_bias = rd_u32(r, "has_bias");
  if (has_bias > 1) die(r, "has_bias", "must be 0 or 1", 1);
  int32_t *mult = (int32_t *)rd_array(r, n, 4, "multiplier");
  int32_t *shift = (int32_t *)rd_array(r, n, 4, "shift");
  p.multiplier = mult;
  p.shift = shift;
  int8_t *w = (int8_t *)rd_array(r, bytes_of(r, n, k, "weights"), 1, "weights");
  int32_t *bias = has_bias ? (int32_t *)rd_array(r, n, 4, "bias") : NULL;
  int8_t *x = (int8_t *)rd_array(r, bytes_of(r, batches, k, "x"), 1, "x");
  size_t ycount = bytes_of(r, batches, n, "y");
  int8_t *y = (int8_t *)xmalloc(ycount);
  kws_dense_op *op = NULL;
  kws_status st = kws_dense_op_create(be, k, w, n, weight_bits, bias, &p, 0, (kws_weight_storage)storage, &op);
  kws_layer_plan plan;
  if (st == KWS_OK) st = kws_dense_op_plan(op, &plan);
  if (st == KWS_OK) st = kws_dense_op_run(op, x, batches, y);
  if (st == KWS_OK) put_i32(out, plan.code_bits), put(out, y, ycount);
  kws_dense_op_free(op);
  free(mult), free(shift), free(w), free(bias), free(x), free(y);
  return st;
}

/* A streaming graph (blob kind 1), invoke by invoke. Payload: u32 blob_len, blob, u32 num_resets,
 * u32 reset_before[num_resets] (invoke indices), u32 num_invokes, u32 in_len, i8 x[num_invokes][in_len].
 * Output: u32 input_frames, input_channels, output_frames, output_channels, output_uint8, then each invoke's
 * output codes; a kws_stream_invoke with one input code too few must be refused first. */
static kws_status run_graph(reader *r, const kws_backend *be, buffer *out) {
  size_t blob_len = rd_u32(r, "blob_len");
  const uint8_t *blob = take(r, blob_len, "blob");
  size_t num_resets = rd_u32(r, "num_resets");
  uint32_t *resets = (uint32_t *)rd_array(r, num_resets, 4, "reset_before");
  size_t num_invokes = rd_u32(r, "num_invokes");
  size_t in_len = rd_u32(r, "in_len");
  int8_t *x = (int8_t *)rd_array(r, bytes_of(r, num_invokes, in_len, "x"), 1, "x");
  kws_model *m = NULL;
  kws_load_error err = {NULL, 0};
  kws_status st = kws_model_load_with(blob, blob_len, be, KWS_WEIGHTS_INT8, &m, &err);
  if (st != KWS_OK) {
    fprintf(stderr, "driver: case %u: kws_model_load_with: status %d at %s (offset %zu)\n", r->case_index, (int)st,
            err.field ? err.field : "?", err.offset);
    free(resets), free(x);
    return st;
  }
  kws_graph_info info;
  kws_stream *s = NULL;
  st = kws_model_graph_info(m, &info);
  if (st == KWS_OK && in_len != info.input_frames * info.input_channels)
    die(r, "in_len", "is not input_frames * input_channels", info.input_frames * info.input_channels);
  size_t out_len = info.output_frames * info.output_channels;
  uint8_t *y = (uint8_t *)xmalloc(out_len ? out_len : 1);
  if (st == KWS_OK) st = kws_stream_create(m, &s);
  if (st == KWS_OK && kws_stream_invoke(s, x, in_len - 1, y, out_len) != KWS_ERR_ARGUMENT)
    die(r, "in_len", "one code short was not refused", in_len - 1);
  buffer o = {NULL, 0, 0};
  put_u32(&o, (uint32_t)info.input_frames), put_u32(&o, (uint32_t)info.input_channels);
  put_u32(&o, (uint32_t)info.output_frames), put_u32(&o, (uint32_t)info.output_channels);
  put_u32(&o, (uint32_t)info.output_uint8);
  for (size_t i = 0; i < num_invokes && st == KWS_OK; i++) {
    for (size_t j = 0; j < num_resets; j++)
      if (resets[j] == i) kws_stream_reset(s);
    st = kws_stream_invoke(s, x + i * in_len, in_len, y, out_len);
    put(&o, y, out_len);
  }
  if (st == KWS_OK) put(out, o.data, o.size);
  kws_stream_free(s);
  kws_model_free(m);
  free(o.data), free(resets), free(x), free(y);
  return st;
}

/* float32 dense or affine. Payload: u32 batches, [u32 k,] u32 n, dense: f32 act_min,
 * f32 act_max, u32 has_bias, f32 w[n][k], [f32 bias[n]]; affine: f32 scale[n],
 * f32 shift[n]; then f32 x[batches][k or n]. */
static kws_status run_layer_f32(reader *r, const kws_backend *be, int dense, buffer *out) {
  size_t batches = rd_u32(r, "batches");
  size_t k = dense ? rd_u32(r, "k") : 1;
  size_t n = rd_u32(r, "n");
  size_t xk = dense ? k : n;
  float act_min = dense ? rd_f32(r, "act_min") : 0.0f, act_max = dense ? rd_f32(r, "act_max") : 0.0f;
  uint32_t has_bias = dense ? rd_u32(r, "has_bias") : 1;
  if (has_bias > 1) die(r, "has_bias", "must be 0 or 1", 1);
  float *w = (float *)rd_array(r, dense ? bytes_of(r, n, k, "weights") : n, 4, "weights");
  float *bias = has_bias ? (float *)rd_array(r, n, 4, "bias") : NULL;
  float *x = (float *)rd_array(r, bytes_of(r, batches, xk, "x"), 4, "x");
  size_t ycount = bytes_of(r, batches, n, "y");
  float *y = (float *)xmalloc(bytes_of(r, ycount, 4, "y"));
  kws_status st = dense ? kws_fully_connected_f32(be, x, batches, k, w, n, bias, act_min, act_max, y)
                        : kws_affine_f32(be, x, batches, n, w, bias, y);
  if (st == KWS_OK) put(out, y, ycount * 4);
  free(w), free(bias), free(x), free(y);
  return st;
}

static kws_status run_quantize(reader *r, const kws_backend *be, buffer *out) {
  size_t n = rd_u32(r, "n");
  float scale = rd_f32(r, "scale");
  int32_t zp = rd_i32(r, "zero_point");
  int32_t act_bits = rd_i32(r, "act_bits");
  float *x = (float *)rd_array(r, n, 4, "x");
  void *y = xmalloc(bytes_of(r, n, 2, "y")); /* room for int16 whatever act_bits says */
  kws_status st = kws_quantize(be, x, n, scale, zp, (int)act_bits, y);
  if (st == KWS_OK) put(out, y, n * (act_bits == 8 ? 1 : 2));
  free(x), free(y);
  return st;
}

static kws_status run_posterior(reader *r, buffer *out) {
  size_t n = rd_u32(r, "n");
  int32_t mult = rd_i32(r, "multiplier");
  int32_t shift = rd_i32(r, "shift");
  int32_t *d = (int32_t *)rd_array(r, n, 4, "logit_diff");
  for (size_t i = 0; i < n; i++) put_i32(out, kws_posterior_q16(d[i], mult, shift));
  free(d);
  return KWS_OK;
}

/* Whole model. Payload:
 *   u32 storage                         kws_weight_storage for kws_model_load_with
 *   u32 blob_len, blob
 *   u32 nq, u32 q_len, q_len bytes      nq quantized input vectors (int8/int16 per act_bits)
 *   u32 nwin, u32 win_floats, floats    nwin float windows [window_frames][feature_dim]
 *   u32 nframes, u32 frame_floats, floats   a stream of frames [feature_dim]
 *   u32 nchunks, u32 chunk[nchunks]     push sizes, summing to nframes
 * Output:
 *   i32 act_bits, num_layers, window_frames, feature_dim, frame_stride, u32 input_size, num_outputs
 *   per q input:  i32 logits[num_outputs], i32 posterior          (kws_model_infer_q)
 *   per window:   input vector bytes (kws_model_quantize_window), then its
 *                 i32 logits[num_outputs], i32 posterior           (kws_model_infer_q)
 *   per chunk:    u32 frames (kws_stream_frames), i32 status, i32 logits[num_outputs], i32 posterior
 *                 (kws_stream_infer after the push; zeros unless status is 0)
 *   after reset:  u32 frames, i32 status of kws_stream_infer
 */
static kws_status run_model(reader *r, const kws_backend *be, buffer *out) {
  uint32_t storage = rd_u32(r, "storage");
  size_t blob_len = rd_u32(r, "blob_len");
  const uint8_t *blob = take(r, blob_len, "blob");
  size_t nq = rd_u32(r, "nq");
  size_t q_len = rd_u32(r, "q_len");
  const uint8_t *q = take(r, q_len, "q");
  size_t nwin = rd_u32(r, "nwin");
  size_t win_floats = rd_u32(r, "win_floats");
  float *windows = (float *)rd_array(r, win_floats, 4, "windows");
  size_t nframes, frame_floats, nchunks;
  float *frames;
  uint32_t *chunks;
  rd_pushes(r, &nframes, &frame_floats, &frames, &nchunks, &chunks);

  kws_model *m = NULL;
  kws_load_error err = {NULL, 0};
  kws_status st = kws_model_load_with(blob, blob_len, be, (kws_weight_storage)storage, &m, &err);
  if (st != KWS_OK) {
    fprintf(stderr, "driver: case %u: kws_model_load_with: status %d at %s (offset %zu)\n", r->case_index, (int)st,
            err.field ? err.field : "?", err.offset);
    free(windows), free(frames), free(chunks);
    return st;
  }
  kws_model_info info;
  kws_model_get_info(m, &info);
  size_t elem = info.act_bits == 8 ? 1 : 2;
  size_t in_bytes = bytes_of(r, info.input_size, elem, "input vector");
  size_t window_floats = bytes_of(r, (size_t)info.window_frames, (size_t)info.feature_dim, "window");
  if (q_len != bytes_of(r, nq, in_bytes, "q")) die(r, "q_len", "is not nq * input_size * element size", nq * in_bytes);
  if (win_floats != bytes_of(r, nwin, window_floats, "windows"))
    die(r, "win_floats", "is not nwin * window_frames * feature_dim", nwin * window_floats);
  if (frame_floats != bytes_of(r, nframes, (size_t)info.feature_dim, "frames"))
    die(r, "frame_floats", "is not nframes * feature_dim", nframes * (size_t)info.feature_dim);

  buffer o = {NULL, 0, 0};
  put_i32(&o, info.act_bits), put_i32(&o, info.num_layers), put_i32(&o, info.window_frames);
  put_i32(&o, info.feature_dim), put_i32(&o, info.frame_stride);
  put_u32(&o, (uint32_t)info.input_size), put_u32(&o, (uint32_t)info.num_outputs);

  void *scratch = xmalloc(info.scratch_bytes); /* malloc: aligned for any type */
  void *input = xmalloc(in_bytes);
  int32_t *logits = (int32_t *)xmalloc(bytes_of(r, info.num_outputs, 4, "logits"));
  int32_t post = 0;
  for (size_t i = 0; i < nq && st == KWS_OK; i++) {
    memcpy(input, q + i * in_bytes, in_bytes); /* the model may assume aligned input */
    st = kws_model_infer_q(m, input, scratch, logits, &post);
    put(&o, logits, info.num_outputs * 4), put_i32(&o, post);
  }
  for (size_t i = 0; i < nwin && st == KWS_OK; i++) {
    st = kws_model_quantize_window(m, windows + i * window_floats, input);
    if (st != KWS_OK) break;
    put(&o, input, in_bytes);
    st = kws_model_infer_q(m, input, scratch, logits, &post);
    put(&o, logits, info.num_outputs * 4), put_i32(&o, post);
  }
  kws_stream *s = NULL;
  if (st == KWS_OK) st = kws_stream_create(m, &s);
  size_t pushed = 0;
  for (size_t i = 0; i < nchunks && st == KWS_OK; i++) {
    st = kws_stream_push(s, frames + pushed * (size_t)info.feature_dim, chunks[i]);
    if (st != KWS_OK) break;
    pushed += chunks[i];
    put_u32(&o, (uint32_t)kws_stream_frames(s));
    memset(logits, 0, info.num_outputs * 4);
    post = 0;
    kws_status si = kws_stream_infer(s, logits, &post);
    if (si != KWS_OK) memset(logits, 0, info.num_outputs * 4), post = 0;
    put_i32(&o, (int32_t)si);
    put(&o, logits, info.num_outputs * 4), put_i32(&o, post);
  }
  if (st == KWS_OK) {
    kws_stream_reset(s);
    put_u32(&o, (uint32_t)kws_stream_frames(s));
    put_i32(&o, (int32_t)kws_stream_infer(s, logits, &post));
  }
  if (st == KWS_OK) put(out, o.data, o.size);
  kws_stream_free(s);
  kws_model_free(m);
  free(o.data), free(scratch), free(input), free(logits), free(windows), free(frames), free(chunks);
  return st;
}

/* The streaming detector. Payload:
 *   u32 blob_len, blob
 *   i32 hop, smoothing, threshold_q16, lockout      (kws_detector_config)
 *   u32 nframes, u32 frame_floats, floats           frames [feature_dim]
 *   u32 nchunks, u32 chunk[nchunks]                 push sizes, summing to nframes
 * Output, per chunk, then once more for all frames in one push after a reset:
 *   u32 steps (kws_detector_steps_for), i32 status of a push whose arrays hold
 *   one step too few (only when steps > 0), i32 status, u32 steps run, then
 *   u64 frame[steps], i32 logits[steps][2], i32 posterior[steps], i32 smoothed[steps], u8 fired[steps].
 * The arrays are exactly `steps` long, so a write past them is an ASan error. */
static kws_status detector_push(kws_detector *d, const float *frames, size_t n, buffer *o) {
  size_t want = kws_detector_steps_for(d, n);
  uint64_t *frame = (uint64_t *)xmalloc(want * 8);
  int32_t *logits = (int32_t *)xmalloc(want * 8), *post = (int32_t *)xmalloc(want * 4);
  int32_t *smoothed = (int32_t *)xmalloc(want * 4);
  uint8_t *fired = (uint8_t *)xmalloc(want);
  kws_detector_steps steps = {want, frame, logits, post, smoothed, fired};
  size_t ran = 0;
  put_u32(o, (uint32_t)want);
  if (want > 0) {
    steps.capacity = want - 1;
    put_i32(o, (int32_t)kws_detector_push(d, frames, n, &steps, &ran));
    steps.capacity = want;
  }
  kws_status st = kws_detector_push(d, frames, n, &steps, &ran);
  put_i32(o, (int32_t)st), put_u32(o, (uint32_t)ran);
  if (st == KWS_OK && ran == want) {
    put(o, frame, want * 8), put(o, logits, want * 8), put(o, post, want * 4), put(o, smoothed, want * 4);
    put(o, fired, want);
  }
  free(frame), free(logits), free(post), free(smoothed), free(fired);
  return st;
}

static kws_status run_detector(reader *r, const kws_backend *be, buffer *out) {
  size_t blob_len = rd_u32(r, "blob_len");
  const uint8_t *blob = take(r, blob_len, "blob");
  kws_detector_config config;
  config.hop = rd_i32(r, "hop");
  config.smoothing = rd_i32(r, "smoothing");
  config.threshold_q16 = rd_i32(r, "threshold_q16");
  config.lockout = rd_i32(r, "lockout");
  size_t nframes, frame_floats, nchunks;
  float *frames;
  uint32_t *chunks;
  rd_pushes(r, &nframes, &frame_floats, &frames, &nchunks, &chunks);

  kws_model *m = NULL;
  kws_detector *d = NULL;
  size_t dim = 0;
  kws_status st = kws_model_load(blob, blob_len, be, &m, NULL);
  if (st == KWS_OK) {
    kws_model_info info;
    kws_model_get_info(m, &info);
    dim = (size_t)info.feature_dim;
    if (frame_floats != bytes_of(r, nframes, (size_t)info.feature_dim, "frames"))
      die(r, "frame_floats", "is not nframes * feature_dim", nframes * (size_t)info.feature_dim);
    st = kws_detector_create(m, &config, &d);
  }
  buffer o = {NULL, 0, 0};
  size_t pushed = 0;
  for (size_t i = 0; i < nchunks && st == KWS_OK; i++) {
    st = detector_push(d, frames + pushed * dim, chunks[i], &o);
    pushed += chunks[i];
  }
  if (st == KWS_OK) {
    kws_detector_reset(d);
    st = detector_push(d, frames, nframes, &o);
  }
  if (st == KWS_OK) put(out, o.data, o.size);
  kws_detector_free(d);
  kws_model_free(m);
  free(o.data), free(frames), free(chunks);
  return st;
}

/* --- main --------------------------------------------------------------------- */

static uint8_t *read_file(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    perror(path);
    exit(2);
  }
  buffer b = {NULL, 0, 0};
  uint8_t chunk[65536];
  size_t got;
  while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) put(&b, chunk, got);
  if (ferror(f)) {
    perror(path);
    exit(2);
  }
  fclose(f);
  *size = b.size;
  return b.data;
}

static const char *op_name(uint32_t op) {
  static const char *names[] = {"?",        "requantize_s32", "requantize_s64", "fully_connected_s8",
                                "fully_connected_s16", "affine_s8", "affine_s16", "quantize",
                                "posterior",  "model", "detector", "fully_connected_f32", "affine_f32",
                                "dense_op", "graph"};
  return op < sizeof names / sizeof names[0] ? names[op] : "?";
}

static int list_backends(void) {
  for (int i = 0; i < kws_backend_count(); i++) {
    const kws_backend *be = kws_backend_at(i);
    printf("%s %d\n", kws_backend_name(be), kws_backend_usable(be));
  }
  const kws_backend *def = NULL;
  printf("default %s\n", kws_backend_find(NULL, &def) == KWS_OK ? kws_backend_name(def) : "(none)");
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "--backends") == 0) return list_backends();
  if (argc != 3) {
    fprintf(stderr, "usage: %s --backends | %s VECTORS RESULTS\n", argv[0], argv[0]);
    return 2;
  }
  size_t size;
  uint8_t *data = read_file(argv[1], &size);
  reader top = {data, size, 0, 0, "header"};
  if (memcmp(take(&top, 4, "magic"), "KWV1", 4) != 0) die(&top, "magic", "not a KWV1 vector file", 4);
  uint32_t num_cases = rd_u32(&top, "num_cases");

  buffer res = {NULL, 0, 0};
  put(&res, "KWR1", 4);
  put_u32(&res, num_cases);
  buffer out = {NULL, 0, 0};
  char name[64];
  unsigned counts[OP_COUNT] = {0}, failed = 0;
  for (uint32_t c = 0; c < num_cases; c++) {
    top.case_index = c;
    top.where = "case header";
    uint32_t op = rd_u32(&top, "op");
    uint32_t name_len = rd_u32(&top, "backend name length");
    if (name_len >= sizeof name) die(&top, "backend name length", "too long", name_len);
    memcpy(name, take(&top, name_len, "backend name"), name_len);
    name[name_len] = '\0';
    uint32_t payload_len = rd_u32(&top, "payload_len");
    reader r = {take(&top, payload_len, "payload"), payload_len, 0, c, op_name(op)};

    const kws_backend *be = NULL;
    kws_status st = kws_backend_find(name, &be);
    out.size = 0;
    if (st == KWS_OK || op == OP_POSTERIOR) { /* the posterior is backend-free */
      switch (op) {
        case OP_REQUANTIZE_S32: st = run_requantize(&r, be, 0, &out); break;
        case OP_REQUANTIZE_S64: st = run_requantize(&r, be, 1, &out); break;
        case OP_FULLY_CONNECTED_S8: st = run_layer(&r, be, 1, 8, &out); break;
        case OP_FULLY_CONNECTED_S16: st = run_layer(&r, be, 1, 16, &out); break;
        case OP_AFFINE_S8: st = run_layer(&r, be, 0, 8, &out); break;
        case OP_AFFINE_S16: st = run_layer(&r, be, 0, 16, &out); break;
        case OP_QUANTIZE: st = run_quantize(&r, be, &out); break;
        case OP_POSTERIOR: st = run_posterior(&r, &out); break;
        case OP_MODEL: st = run_model(&r, be, &out); break;
        case OP_DETECTOR: st = run_detector(&r, be, &out); break;
        case OP_FULLY_CONNECTED_F32: st = run_layer_f32(&r, be, 1, &out); break;
        case OP_AFFINE_F32: st = run_layer_f32(&r, be, 0, &out); break;
        case OP_DENSE_OP: st = run_dense_op(&r, be, &out); break;
        case OP_GRAPH: st = run_graph(&r, be, &out); break;
        default: die(&r, "op", "unknown op", op);
      }
      if (r.pos != r.size) die(&r, "payload", "has bytes after the last field", r.size - r.pos);
    }
    if (st != KWS_OK) failed++;
    if (op < OP_COUNT) counts[op]++;
    put_u32(&res, op);
    put_i32(&res, (int32_t)st);
    put_u32(&res, (uint32_t)out.size);
    put(&res, out.data, out.size);
  }
  if (top.pos != top.size) {
    top.where = "trailer";
    die(&top, "file", "has bytes after the last case", top.size - top.pos);
  }

  FILE *f = fopen(argv[2], "wb");
  if (!f || fwrite(res.data, 1, res.size, f) != res.size || fclose(f) != 0) {
    perror(argv[2]);
    return 2;
  }
  printf("driver: %u cases:", num_cases);
  for (uint32_t op = 1; op < OP_COUNT; op++)
    if (counts[op]) printf(" %s=%u", op_name(op), counts[op]);
  printf("; %u returned an error status\n", failed);
  free(data), free(res.data), free(out.data);
  return 0;
}
