/* Streaming graphs (blob kind 1, docs/format.md 10; docs/arithmetic.md 11): the loader, which checks every
 * field and rule kwsint/engine/blob.py's GraphReader and kwsint/engine/graph.py's validate() check, and the
 * invoke. Derived integers (multipliers, shifts, the LOGISTIC and QUANTIZE tables) are never in the file: they
 * are computed here from the scales, as TFLM's Prepare computes them. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kwsint_internal.h"
#include "little_endian.h"

enum {
  OP_WINDOW = 1,
  OP_SLICE = 2,
  OP_CONCAT = 3,
  OP_CONV = 4,
  OP_DEPTHWISE = 5,
  OP_FC = 6,
  OP_LOGISTIC = 7,
  OP_QUANTIZE = 8
};

/* A tensor's codes are frames rows `row` codes apart, channels codes each: materialized in the stream's arena
 * (row = channels), or a view on another tensor's storage (lay_out). */
typedef struct {
  size_t frames, channels;
  size_t offset, row; /* offset: of its codes in a stream's arena when materialized */
  int view;           /* 1: no storage of its own; an invoke points it into its input's */
  float scale;
  int32_t zero_point;
  int is_uint8;
} g_tensor;

/* A state lives in its Window's region of region_frames frames: the state's frames, the new frames appended
 * after them, and slack, so that an invoke advances the window's start instead of shifting the codes. */
typedef struct {
  size_t frames, channels;
  size_t offset, region_frames; /* offset: of the region in a stream's arena */
  float scale;
  int32_t zero_point;
  const int8_t *init; /* [frames][channels]: the blob's (in place) or a copy */
} g_state;

typedef struct {
  int code;
  size_t input, out, state;            /* tensor and state indices */
  size_t frames, channel_start, channels; /* Slice */
  size_t view_delta;                   /* Slice: its first code's offset in its input's codes */
  size_t num_inputs;
  size_t *inputs;                      /* Concat: set once the graph is checked */
  size_t kernel, stride, dilation, pad_before; /* Conv, DepthwiseConv */
  int same;                            /* SAME padding: windows at either end may reach past the input */
  size_t depth;                        /* products per output code */
  const kws_dense_kernel *dense;       /* Conv and FullyConnected: the backend's int8 dense kernel */
  int acc16_log2;                      /* Conv and FullyConnected: the int16 block (whole rows) proven safe, or 0 */
  int runs_acc16;                      /* 1: the kernel chosen sums in int16 (kws_graph_info.acc16_ops) */
  void (*depthwise)(const int8_t *, size_t, size_t, size_t, const int8_t *, const kws_epilogue *, int8_t *);
                                       /* DepthwiseConv: its kernel, int16 sums where proven safe */
  const uint8_t *weights;              /* dense: as dense->pack laid them out; depthwise: [K][C] codes;
                                          in place: the blob's codes */
  int32_t *bias;                       /* folded with the input zero point */
  int32_t *multiplier, *shift;
  kws_requant_params params;
  kws_epilogue epilogue;
  int8_t *table;                       /* Logistic and Quantize: [256], the output code of input code x at x + 128 */
} g_op;

struct kws_graph {
  size_t num_tensors, num_states, num_ops, input, output;
  g_tensor *tensors;
  g_state *states;
  g_op *ops;
  size_t arena_bytes;  /* per stream: the tensor pointers, the window starts, the regions and tensors */
  size_t starts;       /* offset in the arena of each state's window start (size_t, in frames) */
  size_t gather_bytes; /* per stream: the largest window a conv gathers (padding, dilation) */
  size_t weight_bytes, model_bytes;
  void *arrays_block;  /* a copied graph's run-time arrays, allocated apart from its tables; NULL in an arena */
  uint64_t macs;
};

/* --- reading ------------------------------------------------------------------------------------------- */

typedef struct {
  const uint8_t *data;
  size_t size, pos;
  kws_load_error *err;
} rd;

#define HEADER_BYTES 16
#define MAX_METADATA_BYTES 16384

static kws_status fail(rd *r, kws_status st, const char *field, size_t at) {
  if (r->err) {
    r->err->field = field;
    r->err->offset = HEADER_BYTES + at;
  }
  return st;
}

static const uint8_t *take(rd *r, size_t n, const char *field, kws_status *st) {
  if (n > r->size - r->pos) {
    *st = fail(r, KWS_ERR_TRUNCATED, field, r->pos);
    return NULL;
  }
  const uint8_t *p = r->data + r->pos;
  r->pos += n;
  return p;
}

static int scale_ok(float s) { return isfinite(s) && s > 0.0f; }

/* Frames x channels of a tensor or state (docs/format.md 10.2). */
static kws_status check_size(rd *r, size_t frames, size_t channels, size_t at) {
  if (frames < 1 || frames > KWS_MAX_DIM) return fail(r, KWS_ERR_FIELD, "frames", at);
  if (channels < 1 || channels > KWS_MAX_DIM) return fail(r, KWS_ERR_FIELD, "channels", at + 2);
  if (frames * channels > KWS_MAX_TENSOR_CODES) return fail(r, KWS_ERR_SIZE, "channels", at + 2);
  return KWS_OK;
}

static int same_quant(float s1, int32_t z1, float s2, int32_t z2) { return s1 == s2 && z1 == z2; }

/* The scales' multiplier and shift of each output channel (docs/arithmetic.md 2), int8 shifts (<= 30). */
static int linear_multipliers(float s_in, const uint8_t *ws, size_t n_ws, float s_out, size_t n, int32_t *mult,
                              int32_t *shift) {
  for (size_t c = 0; c < n; c++) {
    double s_w = (double)lef32(ws + 4 * (n_ws == 1 ? 0 : c));
    int32_t m, s;
    if (!kws_quantize_multiplier((double)s_in * s_w / (double)s_out, KWS_MAX_SHIFT_S8, &m, &s)) return 0;
    if (mult) mult[c] = m;
    if (shift) shift[c] = s;
  }
  return 1;
}

/* An op's arrays as they sit in the blob: a linear op's, or a Concat's inputs. */
typedef struct {
  int per_channel, act_min, act_max;
  size_t n, count; /* output channels, weight codes */
  const uint8_t *ws, *bias, *w;
  const uint8_t *inputs; /* Concat: num_inputs u16 */
  size_t at;       /* offset of the op */
} linear_view;

/* Reads and checks a linear op's scales, bias and weights (rows x depth codes; depth products per output). */
static kws_status read_linear(rd *r, linear_view *v, const g_tensor *x, const g_tensor *out, size_t rows,
                              size_t depth) {
  kws_status st = KWS_OK;
  if (v->per_channel > 1) return fail(r, KWS_ERR_FIELD, "op.per_channel", v->at);
  if (depth > KWS_MAX_DIM) return fail(r, KWS_ERR_SIZE, "op.weights", v->at); /* before rows * depth can overflow */
  v->count = rows * depth;
  size_t n_ws = v->per_channel ? v->n : 1;
  if (!(v->ws = take(r, 4 * n_ws, "op.weight_scale", &st))) return st;
  if (!(v->bias = take(r, 4 * v->n, "op.bias", &st))) return st;
  if (!(v->w = take(r, v->count, "op.weights", &st))) return st;
  for (size_t i = 0; i < v->count; i++)
    if (v->w[i] == 0x80) return fail(r, KWS_ERR_FIELD, "op.weights", (size_t)(v->w - r->data) + i);
  for (size_t i = 0; i < v->n; i++) {
    int64_t b = les32(v->bias + 4 * i);
    if (b > KWS_BIAS_LIMIT_S8 || b < -KWS_BIAS_LIMIT_S8)
      return fail(r, KWS_ERR_FIELD, "op.bias", (size_t)(v->bias - r->data) + 4 * i);
  }
  for (size_t i = 0; i < n_ws; i++)
    if (!scale_ok(lef32(v->ws + 4 * i)))
      return fail(r, KWS_ERR_FIELD, "op.weight_scale", (size_t)(v->ws - r->data) + 4 * i);
  if (v->act_min < -128 || v->act_min > 127) return fail(r, KWS_ERR_FIELD, "op.act_min", v->at);
  if (v->act_max < v->act_min || v->act_max > 127) return fail(r, KWS_ERR_FIELD, "op.act_max", v->at);
  if (!linear_multipliers(x->scale, v->ws, n_ws, out->scale, v->n, NULL, NULL))
    return fail(r, KWS_ERR_FIELD, "op.weight_scale", (size_t)(v->ws - r->data));
  return KWS_OK;
}

/* TFLM's LOGISTIC Prepare (docs/arithmetic.md 11.6): 0 where it is undefined behaviour. */
static int logistic_parameters(float s_in, int32_t *mult, int *shift, int64_t *radius) {
  if (!scale_ok(s_in)) return 0;
  int e;
  double q = frexp((double)s_in * 134217728.0, &e); /* 2^27 */
  if (e < 0 || e > 62) return 0;
  double m = round(q * 2147483648.0);
  if (m > 2147483647.0) return 0;
  *mult = (int32_t)m;
  *shift = e;
  *radius = ((int64_t)15 << 27) >> e;
  return 1;
}

/* --- gemmlowp's fixed-point logistic (fixedpoint.h), on raw int32 values ---------------------------------- */

static int32_t srmpot(int32_t x, int exponent) { /* SaturatingRoundingMultiplyByPOT */
  if (exponent <= 0) return kws_rounding_divide_by_pot(x, -exponent);
  int32_t limit = (int32_t)(((int64_t)1 << (31 - exponent)) - 1);
  if (x > limit) return INT32_MAX;
  if (x < -limit) return INT32_MIN;
  return (int32_t)((uint32_t)x << exponent);
}

static int32_t exp_on_interval_between_negative_one_quarter_and_0_excl(int32_t a) {
  const int32_t constant_term = 1895147668, one_third = 715827883;
  int32_t x = a + (1 << 28);
  int32_t x2 = kws_srdhm(x, x), x3 = kws_srdhm(x2, x), x4 = kws_srdhm(x2, x2);
  int32_t x4_over_4 = srmpot(x4, -2);
  int32_t poly = srmpot(kws_srdhm(x4_over_4 + x3, one_third) + x2, -1);
  return constant_term + kws_srdhm(constant_term, x + poly);
}

static int32_t exp_on_negative_values(int32_t a) { /* Q4.27 a <= 0 -> Q0.31 */
  static const int32_t barrel[6] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401};
  const int32_t quarter = 1 << 25;
  int32_t a_mod = (a & (quarter - 1)) - quarter;
  int32_t result = exp_on_interval_between_negative_one_quarter_and_0_excl(srmpot(a_mod, 4));
  int32_t remainder = a_mod - a;
  for (int e = -2; e < 4; e++)
    if (remainder & (1 << (27 + e))) result = kws_srdhm(result, barrel[e + 2]);
  return a == 0 ? INT32_MAX : result;
}

static int32_t one_over_one_plus_x_for_x_in_0_1(int32_t a) {
  int64_t total = (int64_t)a + INT32_MAX;
  total += total >= 0 ? 1 : -1;
  int32_t half_denominator = (int32_t)(total / 2); /* truncating, as RoundingHalfSum */
  int32_t x = 1515870810 + kws_srdhm(half_denominator, -1010580540);
  for (int i = 0; i < 3; i++) {
    int32_t one_minus = (1 << 29) - kws_srdhm(half_denominator, x);
    x = x + srmpot(kws_srdhm(x, one_minus), 2);
  }
  return srmpot(x, 1);
}

static int32_t fixed_point_logistic(int32_t a) { /* Q4.27 -> Q0.31 */
  if (a == 0) return 1 << 30;
  int32_t p = one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(a > 0 ? -a : a));
  return a > 0 ? p : INT32_MAX - p;
}

int kws_logistic_table(float input_scale, int32_t input_zero_point, int8_t table[256]) {
  int32_t mult;
  int shift;
  int64_t radius;
  if (!logistic_parameters(input_scale, &mult, &shift, &radius)) return 0;
  for (int x = -128; x < 128; x++) {
    int64_t v = (int64_t)x - input_zero_point;
    int32_t y;
    if (v <= -radius) {
      y = -128;
    } else if (v >= radius) {
      y = 127;
    } else { /* |v| < 15 * 2^(27 - shift): v * 2^shift stays in int32 */
      int32_t q4 = kws_requant_s32((int32_t)v, mult, shift);
      y = kws_rounding_divide_by_pot(fixed_point_logistic(q4), 23) - 128;
      y = y < -128 ? -128 : y > 127 ? 127 : y;
    }
    table[x + 128] = (int8_t)y;
  }
  return 1;
}

/* --- the loader ------------------------------------------------------------------------------------------- */

/* The kernel of a Conv or FullyConnected: the backend's int8 dense kernel; in place, one that reads the codes. */
static const kws_dense_kernel *dense_kernel(const kws_backend *be, unsigned flags) {
  const kws_dense_kernel *dk = kws_plan_dense(be->kernels, 8, KWS_WEIGHTS_INT8);
  return (flags & KWS_LOAD_IN_PLACE) && dk->blob_bits != 8 ? &kws_portable_kernels.dense_s8 : dk;
}

/* Bytes op k's run-time arrays take in the arena: what prepare_op carves. */
static size_t op_bytes(const g_op *op, const linear_view *v, const kws_backend *be, unsigned flags) {
  if (op->code == OP_CONCAT) return kws_align8(op->num_inputs * sizeof(size_t));
  if (op->code == OP_LOGISTIC || op->code == OP_QUANTIZE) return 256;
  if (op->code != OP_CONV && op->code != OP_DEPTHWISE && op->code != OP_FC) return 0;
  size_t held = flags & KWS_LOAD_IN_PLACE ? 0
                : op->code == OP_DEPTHWISE ? v->count
                                           : dense_kernel(be, flags)->packed_bytes(op->depth, v->n);
  return 3 * kws_align8(4 * v->n) + kws_align8(held);
}

/* What the ops' and states' run-time arrays take in the arena, summed as the check reads them. */
typedef struct {
  const kws_backend *be;
  unsigned flags;
  size_t bytes;
} arrays_size;

/* Sets of tensor and state indices, one bit each (they live on the stack: the size query has no memory else). */
static int in_set(const uint8_t *set, size_t i) { return set[i / 8] >> (i % 8) & 1; }
static void add_to_set(uint8_t *set, size_t i) { set[i / 8] |= (uint8_t)(1u << (i % 8)); }

/* A tensor record's fields and a state record's (docs/format.md 10.2), as read. */
static void parse_tensor(const uint8_t *f, g_tensor *t) {
  memset(t, 0, sizeof *t);
  t->frames = le16(f);
  t->channels = le16(f + 2);
  t->scale = lef32(f + 4);
  t->zero_point = les32(f + 8);
  t->is_uint8 = f[12] == 2;
}
static void parse_state(const uint8_t *f, g_state *s) {
  memset(s, 0, sizeof *s);
  s->frames = le16(f);
  s->channels = le16(f + 2);
  s->scale = lef32(f + 4);
  s->zero_point = les32(f + 8);
  s->init = (const int8_t *)(f + 12);
}

/* Tensor i and state i, once checked: from the graph's tables in a load; in the size query, which has no tables,
 * read again from the blob (the 16-byte tensor records follow the 12-byte header, the state records them). */
static g_tensor tensor_of(const rd *r, const kws_graph *g, size_t i) {
  g_tensor t;
  if (g->tensors) return g->tensors[i];
  parse_tensor(r->data + 12 + 16 * i, &t);
  return t;
}
static g_state state_of(const rd *r, const kws_graph *g, size_t i) {
  g_state s;
  if (g->states) return g->states[i];
  const uint8_t *f = r->data + 12 + 16 * g->num_tensors;
  for (size_t j = 0;; j++, f += 12 + s.frames * s.channels) {
    parse_state(f, &s);
    if (j == i) return s;
  }
}

/* The op records, checked: everything but the arrays is copied into g->ops, the arrays are viewed in views
 * (without tables, the size query: each op in turn on the stack); size gets each op's run-time arrays. */
static kws_status read_ops(rd *r, kws_graph *g, linear_view *views, uint8_t *written, uint8_t *windowed,
                           arrays_size *size) {
  kws_status st = KWS_OK;
  for (size_t k = 0; k < g->num_ops; k++) {
    g_op one_op;
    linear_view one_view;
    memset(&one_op, 0, sizeof one_op);
    memset(&one_view, 0, sizeof one_view);
    g_op *op = g->ops ? &g->ops[k] : &one_op;
    linear_view *v = views ? &views[k] : &one_view;
    size_t at = v->at = r->pos;
    const uint8_t *h = take(r, 4, "op header", &st);
    if (!h) return st;
    op->code = h[0];
    op->out = le16(h + 2);
    if (op->code < OP_WINDOW || op->code > OP_QUANTIZE) return fail(r, KWS_ERR_FIELD, "op.code", at);
    if (h[1]) return fail(r, KWS_ERR_FIELD, "op.reserved", at + 1);
    if (op->out >= g->num_tensors) return fail(r, KWS_ERR_FIELD, "op.out", at + 2);
    g_tensor out_t = tensor_of(r, g, op->out), x_t;
    const g_tensor *out = &out_t, *x = NULL;
    const uint8_t *f;
    switch (op->code) {
    case OP_WINDOW:
      if (!(f = take(r, 4, "op", &st))) return st;
      op->state = le16(f);
      op->input = le16(f + 2);
      break;
    case OP_SLICE:
      if (!(f = take(r, 8, "op", &st))) return st;
      op->input = le16(f);
      op->frames = le16(f + 2);
      op->channel_start = le16(f + 4);
      op->channels = le16(f + 6);
      break;
    case OP_CONCAT:
      if (!(f = take(r, 2, "op.count", &st))) return st;
      op->num_inputs = le16(f);
      if (!(v->inputs = take(r, 2 * op->num_inputs, "op.inputs", &st))) return st;
      break;
    case OP_CONV:
    case OP_DEPTHWISE:
      if (!(f = take(r, 12, "op", &st))) return st;
      op->input = le16(f);
      op->kernel = le16(f + 2);
      op->stride = le16(f + 4);
      op->dilation = le16(f + 6);
      if (f[8] > 1) return fail(r, KWS_ERR_FIELD, "op.padding", at + 12);
      op->same = f[8]; /* the frames and padding follow once the input is known */
      if (op->kernel < 1) return fail(r, KWS_ERR_FIELD, "op.kernel", at + 6);
      v->per_channel = f[9];
      v->act_min = (int8_t)f[10];
      v->act_max = (int8_t)f[11];
      if (op->input >= g->num_tensors) return fail(r, KWS_ERR_FIELD, "op.input", at + 4);
      x_t = tensor_of(r, g, op->input);
      x = &x_t;
      v->n = out->channels;
      op->depth = op->code == OP_DEPTHWISE ? op->kernel : op->kernel * x->channels;
      if ((st = read_linear(r, v, x, out, op->code == OP_DEPTHWISE ? x->channels : v->n, op->depth)) != KWS_OK)
        return st;
      break;
    case OP_FC:
      if (!(f = take(r, 5, "op", &st))) return st;
      op->input = le16(f);
      v->per_channel = f[2];
      v->act_min = (int8_t)f[3];
      v->act_max = (int8_t)f[4];
      if (op->input >= g->num_tensors) return fail(r, KWS_ERR_FIELD, "op.input", at + 4);
      x_t = tensor_of(r, g, op->input);
      x = &x_t;
      v->n = out->channels;
      op->depth = x->frames * x->channels;
      if ((st = read_linear(r, v, x, out, v->n, op->depth)) != KWS_OK) return st;
      break;
    default: /* OP_LOGISTIC, OP_QUANTIZE */
      if (!(f = take(r, 2, "op", &st))) return st;
      op->input = le16(f);
    }

    /* graph.validate(): inputs written before, the output written once, each state one window. */
    size_t n_in = op->code == OP_CONCAT ? op->num_inputs : 1;
    for (size_t i = 0; i < n_in; i++) {
      size_t t = op->code == OP_CONCAT ? le16(v->inputs + 2 * i) : op->input;
      if (t >= g->num_tensors || !in_set(written, t)) return fail(r, KWS_ERR_FIELD, "op.input", at + 4);
      if (tensor_of(r, g, t).is_uint8) return fail(r, KWS_ERR_FIELD, "op.input", at + 4);
    }
    if (in_set(written, op->out)) return fail(r, KWS_ERR_FIELD, "op.out", at + 2);
    add_to_set(written, op->out);
    if (out->is_uint8 && op->code != OP_QUANTIZE) return fail(r, KWS_ERR_FIELD, "op.out", at + 2);
    if (op->code == OP_WINDOW) {
      if (op->state >= g->num_states || in_set(windowed, op->state)) return fail(r, KWS_ERR_FIELD, "op.state", at + 4);
      add_to_set(windowed, op->state);
    }
    if (op->code != OP_CONCAT) {
      x_t = tensor_of(r, g, op->input);
      x = &x_t;
    }
    switch (op->code) {
    case OP_WINDOW: {
      g_state s_v = state_of(r, g, op->state);
      const g_state *s = &s_v;
      if (x->channels != s->channels || out->channels != s->channels || out->frames != s->frames + x->frames)
        return fail(r, KWS_ERR_SIZE, "op.out", at + 2);
      if (!same_quant(x->scale, x->zero_point, s->scale, s->zero_point) ||
          !same_quant(out->scale, out->zero_point, s->scale, s->zero_point))
        return fail(r, KWS_ERR_FIELD, "op.out", at + 2);
      break;
    }
    case OP_SLICE:
      if (op->frames < 1 || op->frames > x->frames) return fail(r, KWS_ERR_FIELD, "op.frames", at + 6);
      if (op->channel_start >= x->channels) return fail(r, KWS_ERR_FIELD, "op.channel_start", at + 8);
      if (op->channels < 1 || op->channels > x->channels - op->channel_start)
        return fail(r, KWS_ERR_FIELD, "op.channels", at + 10);
      if (out->frames != op->frames || out->channels != op->channels) return fail(r, KWS_ERR_SIZE, "op.out", at + 2);
      if (!same_quant(out->scale, out->zero_point, x->scale, x->zero_point))
        return fail(r, KWS_ERR_FIELD, "op.out", at + 2);
      break;
    case OP_CONCAT: {
      if (op->num_inputs < 1) return fail(r, KWS_ERR_FIELD, "op.inputs", at + 4);
      size_t sum = 0;
      for (size_t i = 0; i < op->num_inputs; i++) {
        g_tensor t_v = tensor_of(r, g, le16(v->inputs + 2 * i));
        const g_tensor *t = &t_v;
        if (t->frames != out->frames || !same_quant(t->scale, t->zero_point, out->scale, out->zero_point))
          return fail(r, KWS_ERR_FIELD, "op.inputs", at + 6 + 2 * i);
        sum += t->channels;
      }
      if (sum != out->channels) return fail(r, KWS_ERR_SIZE, "op.out", at + 2);
      break;
    }
    case OP_CONV:
    case OP_DEPTHWISE: {
      if (op->stride < 1 || op->stride > KWS_MAX_DIM) return fail(r, KWS_ERR_FIELD, "op.stride", at + 8);
      if (op->dilation < 1 || op->dilation > KWS_MAX_DIM) return fail(r, KWS_ERR_FIELD, "op.dilation", at + 10);
      if (op->code == OP_DEPTHWISE && out->channels != x->channels) return fail(r, KWS_ERR_SIZE, "op.out", at + 2);
      size_t span = (op->kernel - 1) * op->dilation + 1, frames, pad = 0;
      if (!op->same) {
        if (x->frames < span) return fail(r, KWS_ERR_SIZE, "op.input", at + 4);
        frames = (x->frames - span) / op->stride + 1;
      } else { /* same */
        frames = (x->frames + op->stride - 1) / op->stride;
        size_t need = (frames - 1) * op->stride + span;
        pad = need > x->frames ? (need - x->frames) / 2 : 0;
      }
      op->pad_before = pad;
      if (out->frames != frames) return fail(r, KWS_ERR_SIZE, "op.out", at + 2);
      op->frames = frames;
      break;
    }
    case OP_FC:
      if (out->frames != 1) return fail(r, KWS_ERR_SIZE, "op.out", at + 2);
      break;
    case OP_LOGISTIC: {
      int32_t m;
      int s;
      int64_t radius;
      if (out->frames != x->frames || out->channels != x->channels) return fail(r, KWS_ERR_SIZE, "op.out", at + 2);
      if (!same_quant(out->scale, out->zero_point, 1.0f / 256.0f, -128)) return fail(r, KWS_ERR_FIELD, "op.out", at + 2);
      if (!logistic_parameters(x->scale, &m, &s, &radius)) return fail(r, KWS_ERR_FIELD, "op.input", at + 4);
      break;
    }
    case OP_QUANTIZE: {
      int32_t m, s;
      if (out->frames != x->frames || out->channels != x->channels) return fail(r, KWS_ERR_SIZE, "op.out", at + 2);
      if (!kws_quantize_multiplier((double)x->scale / (double)out->scale, KWS_MAX_SHIFT_S8, &m, &s))
        return fail(r, KWS_ERR_FIELD, "op.out", at + 2);
      break;
    }
    }
    size->bytes += op_bytes(op, v, size->be, size->flags);
  }
  return KWS_OK;
}

/* Builds op k's run-time arrays from its checked view, carved from a (op_bytes of them: they fit). */
static void prepare_op(kws_graph *g, const kws_backend *be, unsigned flags, kws_arena *a, g_op *op,
                       const linear_view *v) {
  if (op->code == OP_CONCAT) {
    op->inputs = (size_t *)kws_carve(a, op->num_inputs * sizeof(size_t));
    for (size_t i = 0; i < op->num_inputs; i++) op->inputs[i] = le16(v->inputs + 2 * i);
    return;
  }
  const g_tensor *x = &g->tensors[op->input], *out = &g->tensors[op->out];
  if (op->code == OP_LOGISTIC || op->code == OP_QUANTIZE) op->table = (int8_t *)kws_carve(a, 256);
  if (op->code == OP_LOGISTIC) {
    kws_logistic_table(x->scale, x->zero_point, op->table); /* succeeds: checked */
    return;
  }
  if (op->code == OP_QUANTIZE) {
    int32_t m, s, lo = out->is_uint8 ? 0 : -128, hi = out->is_uint8 ? 255 : 127;
    kws_quantize_multiplier((double)x->scale / (double)out->scale, KWS_MAX_SHIFT_S8, &m, &s);
    for (int c = -128; c < 128; c++) {
      int32_t y = kws_add_wrap(kws_requant_s32(c - x->zero_point, m, s), out->zero_point);
      y = y < lo ? lo : y > hi ? hi : y;
      op->table[c + 128] = (int8_t)(uint8_t)y; /* a uint8 code's bits */
    }
    return;
  }
  if (op->code != OP_CONV && op->code != OP_DEPTHWISE && op->code != OP_FC) return;
  size_t n = v->n, k = op->depth;
  int in_place = (flags & KWS_LOAD_IN_PLACE) != 0;
  op->bias = (int32_t *)kws_carve(a, 4 * n);
  op->multiplier = (int32_t *)kws_carve(a, 4 * n);
  op->shift = (int32_t *)kws_carve(a, 4 * n);
  linear_multipliers(x->scale, v->ws, v->per_channel ? n : 1, out->scale, n, op->multiplier, op->shift);
  const int8_t *codes = (const int8_t *)v->w;
  if (op->code == OP_DEPTHWISE) { /* codes [K][C]: bias[c] - zp * sum_k w[k][c] */
    if (in_place) {
      op->weights = v->w;
    } else {
      uint8_t *held = (uint8_t *)kws_carve(a, v->count);
      memcpy(held, codes, v->count);
      op->weights = held;
    }
    const kws_kernels *kk = be->kernels;
    op->depthwise = kk->depthwise_s8 ? kk->depthwise_s8 : kws_portable_kernels.depthwise_s8;
    if (kk->depthwise_s8_acc16 && kws_depthwise_acc16_safe(codes, op->kernel, n)) { /* docs/arithmetic.md 11.4 */
      op->depthwise = kk->depthwise_s8_acc16;
      op->runs_acc16 = 1;
    }
    for (size_t c = 0; c < n; c++) {
      int32_t sum = 0;
      for (size_t t = 0; t < op->kernel; t++) sum += codes[t * n + c];
      op->bias[c] = les32(v->bias + 4 * c) - x->zero_point * sum;
    }
    g->weight_bytes += v->count;
  } else { /* Conv's [Cout][K][Cin] and FullyConnected's [N][frames * C] are dense rows of k codes */
    op->dense = dense_kernel(be, flags);
    size_t bytes = op->dense->packed_bytes(k, n);
    if (in_place) {
      op->weights = v->w; /* the kernel reads the codes: its layout is theirs */
    } else {
      uint8_t *held = (uint8_t *)kws_carve(a, bytes);
      op->dense->pack((kws_codes){v->w, 8}, k, n, held);
      op->weights = held;
    }
    /* int16 accumulation of whole rows where every row's 128 * sum |w| <= 32767 (docs/arithmetic.md 5.6 with
     * one block per row; the kernel uses it where its own smallest block allows) */
    int log2 = op->dense->acc16 > KWS_ACC16_MIN_LOG2 ? op->dense->acc16 : KWS_ACC16_MIN_LOG2;
    while (((size_t)1 << log2) < k) log2++; /* a block of at least the row: its sum is the row's */
    op->acc16_log2 = log2 <= KWS_ACC16_MAX_LOG2 && kws_acc16_safe(codes, n, k, log2) ? log2 : 0;
    op->runs_acc16 = op->dense->acc16 && op->acc16_log2 >= op->dense->acc16;
    for (size_t c = 0; c < n; c++) op->bias[c] = les32(v->bias + 4 * c);
    kws_fold_bias_s32(op->bias, (kws_codes){v->w, 8}, n, k, x->zero_point, op->bias);
    g->weight_bytes += bytes;
    if (op->code == OP_CONV && (op->same || op->dilation > 1) && k > g->gather_bytes) g->gather_bytes = k;
  }
  if (op->code == OP_DEPTHWISE && op->same && k * n > g->gather_bytes) g->gather_bytes = k * n;
  g->macs += (uint64_t)(op->code == OP_FC ? 1 : op->frames) * v->count;
  op->params.multiplier = op->multiplier;
  op->params.shift = op->shift;
  op->params.input_zero_point = x->zero_point;
  op->params.output_zero_point = out->zero_point;
  op->params.act_min = v->act_min;
  op->params.act_max = v->act_max;
  op->epilogue.bias = op->bias;
  op->epilogue.p = &op->params;
}

/* The arena of a stream, once the ops are checked: the pointer to each tensor's codes in the current invoke,
 * each state's window start, then in op order each Window's region and each tensor with storage of its own.
 * Views take no bytes: a Window's output is its window in the region (contiguous), and a Slice read only by
 * DepthwiseConv and Slice ops (which take a row stride), and not the graph's output, points into its input.
 * The input tensor is read where the caller's codes are. */
static void lay_out(kws_graph *g, uint8_t *contiguous /* [num_tensors], zeroed */) {
  for (size_t k = 0; k < g->num_ops; k++) {
    const g_op *op = &g->ops[k];
    if (op->code == OP_CONCAT)
      for (size_t i = 0; i < op->num_inputs; i++) contiguous[op->inputs[i]] = 1;
    else if (op->code != OP_DEPTHWISE && op->code != OP_SLICE)
      contiguous[op->input] = 1;
  }
  contiguous[g->output] = 1;
  size_t arena = kws_align8(g->num_tensors * sizeof(const uint8_t *));
  g->starts = arena;
  arena += kws_align8(g->num_states * sizeof(size_t));
  g->tensors[g->input].row = g->tensors[g->input].channels;
  for (size_t k = 0; k < g->num_ops; k++) {
    g_op *op = &g->ops[k];
    g_tensor *y = &g->tensors[op->out];
    const g_tensor *x = op->code == OP_CONCAT ? NULL : &g->tensors[op->input];
    y->row = y->channels;
    if (op->code == OP_WINDOW) {
      /* Slack of two windows: the state moves back to the front of the region at most once in
       * 2 * (state + new frames) / new frames + 1 invokes, under half the new frames' codes per invoke. */
      g_state *s = &g->states[op->state];
      s->region_frames = 3 * y->frames;
      s->offset = arena;
      arena += kws_align8(s->region_frames * s->channels);
      y->view = 1;
      continue;
    }
    if (op->code == OP_SLICE) {
      op->view_delta = (x->frames - op->frames) * x->row + op->channel_start; /* the last frames */
      if (!contiguous[op->out]) {
        y->view = 1;
        y->row = x->row;
        continue;
      }
    }
    y->offset = arena;
    arena += kws_align8(y->frames * y->channels);
  }
  g->arena_bytes = arena;
}

/* The graph header's counts and tensor indices, checked, into g. */
static kws_status read_header(rd *r, kws_graph *g) {
  kws_status st = KWS_OK;
  const uint8_t *h = take(r, 12, "graph header", &st);
  if (!h) return st;
  g->num_tensors = le16(h);
  g->num_states = le16(h + 2);
  g->num_ops = le16(h + 4);
  g->input = le16(h + 6);
  g->output = le16(h + 8);
  if (g->num_tensors < 2 || g->num_tensors > KWS_MAX_GRAPH_TENSORS) return fail(r, KWS_ERR_FIELD, "num_tensors", 0);
  if (g->num_states > KWS_MAX_GRAPH_STATES) return fail(r, KWS_ERR_FIELD, "num_states", 2);
  if (g->num_ops < 1 || g->num_ops > KWS_MAX_GRAPH_OPS) return fail(r, KWS_ERR_FIELD, "num_ops", 4);
  if (g->input >= g->num_tensors) return fail(r, KWS_ERR_FIELD, "input", 6);
  if (g->output >= g->num_tensors) return fail(r, KWS_ERR_FIELD, "output", 8);
  if (le16(h + 10)) return fail(r, KWS_ERR_FIELD, "graph.reserved", 10);
  return KWS_OK;
}

/* The tensors, states, ops and metadata after the header, checked into g's tables (none in the size query: then
 * only checked); nothing is allocated: a state's init and an op's arrays are viewed where they lie. size gets
 * the bytes of the arrays the load then builds. */
static kws_status read_graph(rd *r, kws_graph *g, linear_view *views, arrays_size *size) {
  kws_status st = KWS_OK;
  uint8_t written[KWS_MAX_GRAPH_TENSORS / 8] = {0}, windowed[KWS_MAX_GRAPH_STATES / 8] = {0};
  for (size_t i = 0; i < g->num_tensors; i++) {
    g_tensor one, *t = g->tensors ? &g->tensors[i] : &one;
    size_t at = r->pos;
    const uint8_t *f = take(r, 16, "tensor", &st);
    if (!f) return st;
    parse_tensor(f, t);
    if (f[13] || f[14] || f[15]) return fail(r, KWS_ERR_FIELD, "tensor.reserved", at + 13);
    if (f[12] != 1 && f[12] != 2) return fail(r, KWS_ERR_FIELD, "tensor.dtype", at + 12);
    if ((st = check_size(r, t->frames, t->channels, at)) != KWS_OK) return st;
    if (!scale_ok(t->scale)) return fail(r, KWS_ERR_FIELD, "tensor.scale", at + 4);
    int32_t lo = t->is_uint8 ? 0 : -128, hi = t->is_uint8 ? 255 : 127;
    if (t->zero_point < lo || t->zero_point > hi) return fail(r, KWS_ERR_FIELD, "tensor.zero_point", at + 8);
  }
  for (size_t i = 0; i < g->num_states; i++) {
    g_state one, *s = g->states ? &g->states[i] : &one;
    size_t at = r->pos;
    const uint8_t *f = take(r, 12, "state", &st);
    if (!f) return st;
    parse_state(f, s);
    if ((st = check_size(r, s->frames, s->channels, at)) != KWS_OK) return st;
    if (!scale_ok(s->scale)) return fail(r, KWS_ERR_FIELD, "state.scale", at + 4);
    if (s->zero_point < -128 || s->zero_point > 127) return fail(r, KWS_ERR_FIELD, "state.zero_point", at + 8);
    if (!take(r, s->frames * s->channels, "state.init", &st)) return st;
    if (!(size->flags & KWS_LOAD_IN_PLACE)) size->bytes += kws_align8(s->frames * s->channels); /* its copy */
  }
  if (tensor_of(r, g, g->input).is_uint8) return fail(r, KWS_ERR_FIELD, "input", 6);
  if (g->output == g->input) return fail(r, KWS_ERR_FIELD, "output", 8);
  add_to_set(written, g->input);
  if ((st = read_ops(r, g, views, written, windowed, size)) != KWS_OK) return st;
  for (size_t i = 0; i < g->num_tensors; i++)
    if (!in_set(written, i)) return fail(r, KWS_ERR_FIELD, "tensor", 12 + 16 * i);
  for (size_t i = 0; i < g->num_states; i++)
    if (!in_set(windowed, i)) return fail(r, KWS_ERR_FIELD, "state", 0);
  const uint8_t *len = take(r, 4, "metadata_bytes", &st);
  if (!len) return st;
  if (le32(len) > MAX_METADATA_BYTES) return fail(r, KWS_ERR_SIZE, "metadata_bytes", r->pos - 4);
  if (!take(r, le32(len), "metadata", &st)) return st;
  if (r->pos != r->size) return fail(r, KWS_ERR_SIZE, "payload", r->pos);
  return KWS_OK;
}

/* The tables a graph's load carves first, and the load's temporaries (carved from the arena's top end),
 * from the header's counts. */
static size_t tables_bytes(const kws_graph *c) {
  return kws_align8(sizeof(kws_model)) + kws_align8(sizeof(kws_graph)) +
         kws_align8(c->num_tensors * sizeof(g_tensor)) + kws_align8(c->num_states * sizeof(g_state)) +
         kws_align8(c->num_ops * sizeof(g_op));
}
static size_t temps_bytes(const kws_graph *c) {
  return kws_align8(c->num_ops * sizeof(linear_view)) + kws_align8(c->num_tensors);
}

kws_status kws_graph_load(const uint8_t *payload, size_t size, const kws_backend *be, unsigned flags, void *arena,
                          size_t arena_bytes, size_t *need, kws_model **out, kws_load_error *err) {
  rd r = {payload, size, 0, err};
  kws_graph counts;
  memset(&counts, 0, sizeof counts);
  kws_status st = read_header(&r, &counts);
  if (st != KWS_OK) return st;
  size_t tables = tables_bytes(&counts), temps = temps_bytes(&counts);
  arrays_size arrays = {be, flags, 0};
  if (!out) { /* the size only: checked without tables, straight from the blob */
    if ((st = read_graph(&r, &counts, NULL, &arrays)) != KWS_OK) return st;
    *need = tables + arrays.bytes + temps;
    return KWS_OK;
  }
  /* low: the tables, then (in an arena) the run-time arrays; high: the load's temporaries. A copying load
   * allocates the three apart, the arrays once the check has sized them, and frees the temporaries. */
  kws_arena low, high, copied = {NULL, 0, 0};
  if (arena) {
    if (arena_bytes < tables + temps) return fail(&r, KWS_ERR_NOMEM, "arena", 0);
    size_t top = (arena_bytes - temps) & ~(size_t)7; /* the temporaries' start: 8-byte aligned, below the end */
    low = (kws_arena){(uint8_t *)arena, 0, top};
    high = (kws_arena){(uint8_t *)arena + top, 0, temps};
  } else {
    low = (kws_arena){(uint8_t *)malloc(tables), 0, tables};
    high = (kws_arena){(uint8_t *)malloc(temps), 0, temps};
  }
  kws_model *m = (kws_model *)kws_carve(&low, sizeof(kws_model));
  kws_graph *g = (kws_graph *)kws_carve(&low, sizeof(kws_graph));
  linear_view *views = (linear_view *)kws_carve(&high, counts.num_ops * sizeof(linear_view));
  uint8_t *contiguous = (uint8_t *)kws_carve(&high, counts.num_tensors);
  if (!m || !views) {
    st = fail(&r, KWS_ERR_NOMEM, "model", 0);
    goto done;
  }
  *g = counts;
  g->tensors = (g_tensor *)kws_carve(&low, g->num_tensors * sizeof(g_tensor));
  g->states = (g_state *)kws_carve(&low, g->num_states * sizeof(g_state));
  g->ops = (g_op *)kws_carve(&low, g->num_ops * sizeof(g_op));
  if ((st = read_graph(&r, g, views, &arrays)) != KWS_OK) goto done;
  *need = tables + arrays.bytes + temps;
  if (arena && arena_bytes < *need) {
    st = fail(&r, KWS_ERR_NOMEM, "arena", 0);
    goto done;
  }
  if (!arena && !(g->arrays_block = copied.base = (uint8_t *)malloc(arrays.bytes ? arrays.bytes : 1))) {
    st = fail(&r, KWS_ERR_NOMEM, "model", 0);
    goto done;
  }
  copied.size = arrays.bytes;
  /* Everything checked and it fits: the run-time arrays. */
  kws_arena *at = arena ? &low : &copied;
  for (size_t k = 0; k < g->num_ops; k++) prepare_op(g, be, flags, at, &g->ops[k], &views[k]);
  for (size_t i = 0; i < g->num_states && !(flags & KWS_LOAD_IN_PLACE); i++) {
    g_state *s = &g->states[i];
    int8_t *copy = (int8_t *)kws_carve(at, s->frames * s->channels);
    memcpy(copy, s->init, s->frames * s->channels);
    s->init = copy;
  }
  lay_out(g, contiguous);
  g->model_bytes = low.used + copied.used;
  m->backend = be;
  m->load_flags = flags;
  m->owned = arena == NULL;
  m->kind = KWS_MODEL_GRAPH;
  m->graph = g;
  m->act_bits = 8;
  m->model_bytes = g->model_bytes;
  *out = m;
done:
  if (!arena) {
    free(high.base);
    if (st != KWS_OK) free(low.base);
  }
  return st;
}

void kws_graph_free(kws_graph *g) { free(g->arrays_block); }

void kws_graph_get_info(const kws_graph *g, kws_model_info *info) {
  memset(info, 0, sizeof *info);
  info->act_bits = 8;
  info->num_layers = (int)g->num_ops;
  info->num_outputs = g->tensors[g->output].frames * g->tensors[g->output].channels;
  info->weight_bytes = g->weight_bytes;
  info->model_bytes = g->model_bytes;
  info->macs = g->macs;
}

kws_status kws_graph_describe(const kws_graph *g, kws_graph_info *info) {
  memset(info, 0, sizeof *info);
  const g_tensor *x = &g->tensors[g->input], *y = &g->tensors[g->output];
  info->input_frames = x->frames;
  info->input_channels = x->channels;
  info->output_frames = y->frames;
  info->output_channels = y->channels;
  info->output_uint8 = y->is_uint8;
  info->num_tensors = g->num_tensors;
  info->num_states = g->num_states;
  info->num_ops = g->num_ops;
  for (size_t i = 0; i < g->num_states; i++) info->state_bytes += g->states[i].frames * g->states[i].channels;
  for (size_t i = 0; i < g->num_ops; i++) info->acc16_ops += (size_t)g->ops[i].runs_acc16;
  return KWS_OK;
}

/* --- streams and invokes ----------------------------------------------------------------------------------- */

size_t kws_graph_stream_bytes(const kws_graph *g) { return g->arena_bytes + kws_align8(g->gather_bytes); }

/* Each state at the front of its region, its window starting there. */
void kws_graph_stream_init(const kws_graph *g, uint8_t *arena) {
  size_t *starts = (size_t *)(arena + g->starts);
  for (size_t i = 0; i < g->num_states; i++) {
    memcpy(arena + g->states[i].offset, g->states[i].init, g->states[i].frames * g->states[i].channels);
    starts[i] = 0;
  }
}

void kws_graph_stream_reset(const kws_graph *g, uint8_t *arena) {
  size_t *starts = (size_t *)(arena + g->starts);
  for (size_t i = 0; i < g->num_states; i++) {
    memset(arena + g->states[i].offset, (int)(uint8_t)(int8_t)g->states[i].zero_point,
           g->states[i].frames * g->states[i].channels);
    starts[i] = 0;
  }
}

/* The window of output frame t: `taps` input frames `dilation` apart from t * stride - pad_before. Returns the
 * first row and sets *row_stride, or gathers the rows (the input zero point for padding frames) into buf, c
 * codes apart. */
static const int8_t *window_of(const g_op *op, const g_tensor *x, const int8_t *in, size_t t, int8_t *buf,
                               size_t *row_stride) {
  size_t c = x->channels;
  int64_t start = (int64_t)(t * op->stride) - (int64_t)op->pad_before;
  int64_t last = start + (int64_t)((op->kernel - 1) * op->dilation);
  if (start >= 0 && last < (int64_t)x->frames) {
    *row_stride = op->dilation * x->row;
    return in + (size_t)start * x->row;
  }
  for (size_t k = 0; k < op->kernel; k++) {
    int64_t f = start + (int64_t)(k * op->dilation);
    if (f >= 0 && f < (int64_t)x->frames)
      memcpy(buf + k * c, in + (size_t)f * x->row, c);
    else
      memset(buf + k * c, (int)(uint8_t)(int8_t)x->zero_point, c);
  }
  *row_stride = c;
  return buf;
}

/* x is contiguous (lay_out): its rows are its channels apart. */
static void run_conv(const g_op *op, const g_tensor *x, const g_tensor *y, const int8_t *in, int8_t *out,
                     int8_t *buf) {
  size_t k = op->depth, n = y->channels;
  if (!op->same && op->dilation == 1 && op->stride == op->kernel) { /* windows back to back: one call */
    op->dense->run(in, op->frames, k, op->weights, n, &op->epilogue, op->acc16_log2, out);
    return;
  }
  for (size_t t = 0; t < op->frames; t++) {
    size_t row_stride;
    const int8_t *w = window_of(op, x, in, t, buf, &row_stride);
    if (row_stride != x->channels) { /* dilated rows: gather them */
      for (size_t j = 0; j < op->kernel; j++) memcpy(buf + j * x->channels, w + j * row_stride, x->channels);
      w = buf;
    }
    op->dense->run(w, 1, k, op->weights, n, &op->epilogue, op->acc16_log2, out + t * n);
  }
}

kws_status kws_graph_invoke(const kws_graph *g, uint8_t *arena, const int8_t *in, size_t in_len, void *out,
                            size_t out_len) {
  const g_tensor *xin = &g->tensors[g->input], *yout = &g->tensors[g->output];
  if (in_len != xin->frames * xin->channels || out_len != yout->frames * yout->channels) return KWS_ERR_ARGUMENT;
  int8_t *buf = (int8_t *)(arena + g->arena_bytes);
  const uint8_t **codes = (const uint8_t **)arena; /* each tensor's codes in this invoke (lay_out) */
  size_t *starts = (size_t *)(arena + g->starts);
  codes[g->input] = (const uint8_t *)in;
  for (size_t k = 0; k < g->num_ops; k++) {
    const g_op *op = &g->ops[k];
    const g_tensor *y = &g->tensors[op->out];
    uint8_t *dst = arena + y->offset; /* views: set below */
    const g_tensor *x = op->code == OP_CONCAT ? NULL : &g->tensors[op->input];
    const uint8_t *src = x ? codes[op->input] : NULL;
    codes[op->out] = dst;
    switch (op->code) {
    case OP_WINDOW: {
      const g_state *s = &g->states[op->state];
      uint8_t *region = arena + s->offset;
      size_t c = s->channels, *start = &starts[op->state];
      if (*start + y->frames > s->region_frames) { /* no room for the new frames: the state to the front */
        memmove(region, region + *start * c, s->frames * c);
        *start = 0;
      }
      memcpy(region + (*start + s->frames) * c, src, x->frames * c);
      codes[op->out] = region + *start * c;
      *start += x->frames; /* the state is the window's newest frames */
      break;
    }
    case OP_SLICE:
      if (y->view) {
        codes[op->out] = src + op->view_delta;
        break;
      }
      for (size_t f = 0; f < op->frames; f++)
        memcpy(dst + f * op->channels, src + op->view_delta + f * x->row, op->channels);
      break;
    case OP_CONCAT:
      for (size_t f = 0, at = 0; f < y->frames; f++)
        for (size_t i = 0; i < op->num_inputs; i++) {
          const g_tensor *t = &g->tensors[op->inputs[i]];
          memcpy(dst + at, codes[op->inputs[i]] + f * t->row, t->channels);
          at += t->channels;
        }
      break;
    case OP_CONV:
      run_conv(op, x, y, (const int8_t *)src, (int8_t *)dst, buf);
      break;
    case OP_DEPTHWISE:
      for (size_t t = 0; t < op->frames; t++) {
        size_t row_stride;
        const int8_t *w = window_of(op, x, (const int8_t *)src, t, buf, &row_stride);
        op->depthwise(w, row_stride, op->kernel, y->channels, (const int8_t *)op->weights, &op->epilogue,
                  (int8_t *)dst + t * y->channels);
      }
      break;
    case OP_FC:
      op->dense->run((const int8_t *)src, 1, op->depth, op->weights, y->channels, &op->epilogue, op->acc16_log2,
                     (int8_t *)dst);
      break;
    default: /* OP_LOGISTIC, OP_QUANTIZE */
      for (size_t i = 0, n = x->frames * x->channels; i < n; i++) dst[i] = (uint8_t)op->table[(int8_t)src[i] + 128];
    }
  }
  memcpy(out, codes[g->output], out_len);
  return KWS_OK;
}
