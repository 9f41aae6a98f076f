/* The blob loader (docs/format.md). Two passes over the payload: the first
 * checks every field and sums the memory the model needs, the second (over
 * bytes already checked) allocates once and unpacks (through one temporary
 * where the backend packs dense weights). Nothing is read past
 * `size` and nothing is allocated before the whole blob has been checked. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kwsint_internal.h"
#include "little_endian.h"

#define HEADER_BYTES 16
#define FORMAT_VERSION 5 /* 5: a model kind at offset 6 (1: csrc/graph.c); 4 as 5 kind 0; 3 is read too (no
                            metadata record), and 2 (also its layer byte 3 was reserved, 0) */
#define MAX_METADATA_BYTES 16384 /* kwsint/engine/metadata.py: the JSON is for tools; the engine only frames it */
#define FBANK_BYTES 32
#define NUM_WINDOW_TYPES 6

typedef struct {
  const uint8_t *data;
  size_t size, pos;
  kws_load_error *err;
  int version;
} cursor;

static kws_status fail(cursor *c, kws_status st, const char *field, size_t offset) {
  if (c->err) {
    c->err->field = field;
    c->err->offset = offset;
  }
  return st;
}

/* Reserve n bytes at the cursor; NULL (and a truncation error) if they are not there. */
static const uint8_t *take(cursor *c, size_t n, const char *field, kws_status *st) {
  if (n > c->size - c->pos) {
    *st = fail(c, KWS_ERR_TRUNCATED, field, c->pos);
    return NULL;
  }
  const uint8_t *p = c->data + c->pos;
  c->pos += n;
  return p;
}

/* TFLM QuantizeMultiplier; returns 0 if the scale needs a shift above max_shift. */
int kws_quantize_multiplier(double scale, int max_shift, int32_t *mult, int32_t *shift) {
  *mult = 0;
  *shift = 0;
  if (!isfinite(scale)) return 0;
  if (scale == 0.0) return 1;
  int e;
  double q = frexp(scale, &e);
  int64_t q_fixed = (int64_t)round(q * 2147483648.0);
  if (q_fixed == ((int64_t)1 << 31)) {
    q_fixed /= 2;
    e++;
  }
  if (e < -31) return 1;
  if (e > max_shift) return 0;
  *mult = (int32_t)q_fixed;
  *shift = e;
  return 1;
}

static int scale_ok(float s) { return isfinite(s) && s > 0.0f; }


/* The layer fields both passes need. */
typedef struct {
  size_t at; /* offset of the layer header */
  int kind, bits, per_channel, acc16;
  size_t in_size, out_size, count;
  float input_scale, output_scale;
  int32_t in_zp, out_zp, act_min, act_max;
  const uint8_t *weight_scale, *multiplier, *shift, *bias, *weights;
} layer_view;

/* The layer's codes where they lie in the blob. */
static kws_codes codes_of(const layer_view *v) {
  kws_codes c = {v->weights, v->bits};
  return c;
}

/* The claimed int16 accumulation block, re-proven from the codes (docs/arithmetic.md 5.6): in every
 * aligned block of 2^acc16 products of every row, 128 * sum |w| <= 32767, so no partial sum of
 * x * w over the block leaves int16 for any int8 x. Sums are at most 16384 * 127, exact in int32. */
static int acc16_safe(const layer_view *v) {
  size_t k = v->in_size, block = (size_t)1 << v->acc16;
  for (size_t o = 0; o < v->out_size; o++)
    for (size_t j = 0; j < k; j += block) {
      int32_t sum = 0;
      for (size_t i = j; i < k && i < j + block; i++) {
        int32_t code = kws_code_at(codes_of(v), o * k + i);
        sum += code < 0 ? -code : code;
      }
      if (!kws_acc16_block_ok(sum)) return 0;
    }
  return 1;
}

/* The multiplier and shift channel i must have, from the layer's scales (docs/arithmetic.md 2). */
static int derived_multiplier(const layer_view *v, size_t i, int max_shift, int32_t *mult, int32_t *shift) {
  double s_w = (double)lef32(v->weight_scale + 4 * i);
  return kws_quantize_multiplier((double)v->input_scale * s_w / (double)v->output_scale, max_shift, mult, shift);
}

static kws_status check_layer(cursor *c, const kws_model *m, float prev_scale, int32_t prev_zp,
                              size_t prev_size, layer_view *v) {
  kws_status st = KWS_OK;
  size_t at = v->at = c->pos;
  const uint8_t *h = take(c, 32, "layer header", &st);
  if (!h) return st;
  int32_t qmin = m->act_bits == 8 ? INT8_MIN : INT16_MIN, qmax = m->act_bits == 8 ? INT8_MAX : INT16_MAX;
  v->kind = h[0];
  v->bits = h[1];
  v->per_channel = h[2];
  v->in_size = le16(h + 4);
  v->out_size = le16(h + 6);
  v->input_scale = lef32(h + 8);
  v->output_scale = lef32(h + 12);
  v->in_zp = les32(h + 16);
  v->out_zp = les32(h + 20);
  v->act_min = les32(h + 24);
  v->act_max = les32(h + 28);
  if (v->kind != KWS_LAYER_DENSE && v->kind != KWS_LAYER_AFFINE) return fail(c, KWS_ERR_FIELD, "layer.kind", at);
  if (v->bits < 1 || v->bits > 8) return fail(c, KWS_ERR_FIELD, "layer.weight_bits", at + 1);
  if (v->per_channel > 1 || (v->kind == KWS_LAYER_AFFINE && !v->per_channel))
    return fail(c, KWS_ERR_FIELD, "layer.per_channel", at + 2);
  v->acc16 = h[3];
  if (v->acc16 && c->version == 2) return fail(c, KWS_ERR_FIELD, "layer.reserved", at + 3);
  if (v->acc16 && (v->kind != KWS_LAYER_DENSE || m->act_bits != 8 || v->acc16 < KWS_ACC16_MIN_LOG2 ||
                   v->acc16 > KWS_ACC16_MAX_LOG2))
    return fail(c, KWS_ERR_FIELD, "layer.acc16_block", at + 3);
  if (v->in_size < 1 || v->in_size > KWS_MAX_DIM) return fail(c, KWS_ERR_FIELD, "layer.in_size", at + 4);
  if (v->out_size < 1 || v->out_size > KWS_MAX_DIM) return fail(c, KWS_ERR_FIELD, "layer.out_size", at + 6);
  if (v->in_size != prev_size) return fail(c, KWS_ERR_SIZE, "layer.in_size", at + 4);
  if (v->kind == KWS_LAYER_AFFINE && v->out_size != v->in_size) return fail(c, KWS_ERR_SIZE, "layer.out_size", at + 6);
  if (memcmp(&v->input_scale, &prev_scale, sizeof prev_scale) != 0)
    return fail(c, KWS_ERR_FIELD, "layer.input_scale", at + 8);
  if (!scale_ok(v->output_scale)) return fail(c, KWS_ERR_FIELD, "layer.output_scale", at + 12);
  if (v->in_zp != prev_zp) return fail(c, KWS_ERR_FIELD, "layer.input_zero_point", at + 16);
  if (v->out_zp < qmin || v->out_zp > qmax || (m->act_bits == 16 && v->out_zp != 0))
    return fail(c, KWS_ERR_FIELD, "layer.output_zero_point", at + 20);
  if (v->act_min < qmin || v->act_min > qmax) return fail(c, KWS_ERR_FIELD, "layer.act_min", at + 24);
  if (v->act_max < v->act_min || v->act_max > qmax) return fail(c, KWS_ERR_FIELD, "layer.act_max", at + 28);

  size_t n = v->out_size;
  v->count = v->kind == KWS_LAYER_DENSE ? n * v->in_size : n;
  size_t bias_bytes = m->act_bits == 8 ? 4 : 8;
  if (!(v->weight_scale = take(c, 4 * n, "layer.weight_scale", &st))) return st;
  if (!(v->multiplier = take(c, 4 * n, "layer.multiplier", &st))) return st;
  if (!(v->shift = take(c, 4 * n, "layer.shift", &st))) return st;
  if (!(v->bias = take(c, bias_bytes * n, "layer.bias", &st))) return st;
  size_t weight_bytes = (v->count * (size_t)v->bits + 7) / 8;
  if (!(v->weights = take(c, weight_bytes, "layer.weights", &st))) return st;

  /* Same order as the Python reader: each array whole, then the next. */
  int max_shift = m->act_bits == 8 ? KWS_MAX_SHIFT_S8 : KWS_MAX_SHIFT_S16;
  float s_w0 = lef32(v->weight_scale);
  for (size_t i = 0; i < n; i++) {
    float s_w = lef32(v->weight_scale + 4 * i);
    if (!scale_ok(s_w) || (!v->per_channel && memcmp(&s_w, &s_w0, sizeof s_w) != 0))
      return fail(c, KWS_ERR_FIELD, "layer.weight_scale", (size_t)(v->weight_scale - c->data) + 4 * i);
  }
  int32_t mult, shift;
  for (size_t i = 0; i < n; i++)
    if (!derived_multiplier(v, i, max_shift, &mult, &shift) || les32(v->multiplier + 4 * i) != mult)
      return fail(c, KWS_ERR_FIELD, "layer.multiplier", (size_t)(v->multiplier - c->data) + 4 * i);
  for (size_t i = 0; i < n; i++) {
    derived_multiplier(v, i, max_shift, &mult, &shift); /* succeeds: checked in the loop above */
    if (les32(v->shift + 4 * i) != shift)
      return fail(c, KWS_ERR_FIELD, "layer.shift", (size_t)(v->shift - c->data) + 4 * i);
  }
  for (size_t i = 0; i < n; i++) {
    int64_t b = m->act_bits == 8 ? les32(v->bias + 4 * i) : les64(v->bias + 8 * i);
    int64_t limit = m->act_bits == 8 ? KWS_BIAS_LIMIT_S8 : KWS_BIAS_LIMIT_S16;
    if (b > limit || b < -limit)
      return fail(c, KWS_ERR_FIELD, "layer.bias", (size_t)(v->bias - c->data) + bias_bytes * i);
  }
  for (size_t i = 0; v->bits > 1 && i < v->count; i++) /* the grid is symmetric: -2^(b-1) is off it */
    if (kws_code_at(codes_of(v), i) == -(1 << (v->bits - 1)))
      return fail(c, KWS_ERR_FIELD, "layer.weights", (size_t)(v->weights - c->data) + i * v->bits / 8);
  size_t used_bits = v->count * (size_t)v->bits;
  if (used_bits % 8 && (v->weights[weight_bytes - 1] >> (used_bits % 8)) != 0)
    return fail(c, KWS_ERR_FIELD, "layer.weights", (size_t)(v->weights - c->data) + weight_bytes - 1);
  if (v->acc16 && !acc16_safe(v)) return fail(c, KWS_ERR_FIELD, "layer.acc16_block", at + 3);
  return KWS_OK;
}

/* Checks the feature settings record (docs/format.md 3.2); the engine keeps none of it. */
static kws_status check_fbank(cursor *c, int feature_dim) {
  kws_status st = KWS_OK;
  size_t at = c->pos;
  const uint8_t *f = take(c, FBANK_BYTES, "fbank", &st);
  if (!f) return st;
  uint32_t rate = le32(f);
  float length_ms = lef32(f + 4), shift_ms = lef32(f + 8), low = lef32(f + 12), high = lef32(f + 16);
  float preemph = lef32(f + 20);
  int mel_bins = le16(f + 24);
  if (f[29] || f[30] || f[31]) return fail(c, KWS_ERR_FIELD, "fbank.reserved", at + 29);
  if (f[26] < 1 || f[26] > NUM_WINDOW_TYPES) return fail(c, KWS_ERR_FIELD, "fbank.window_type", at + 26);
  if (rate < 1000 || rate > 192000) return fail(c, KWS_ERR_FIELD, "fbank.sample_rate", at);
  /* Negated comparisons: NaN fails them all. */
  if (!(length_ms >= 1.0f && length_ms <= 1000.0f)) return fail(c, KWS_ERR_FIELD, "fbank.frame_length_ms", at + 4);
  if (!(shift_ms >= 1.0f && shift_ms <= 1000.0f)) return fail(c, KWS_ERR_FIELD, "fbank.frame_shift_ms", at + 8);
  if (mel_bins < 1 || mel_bins > 1024) return fail(c, KWS_ERR_FIELD, "fbank.num_mel_bins", at + 24);
  float nyquist = 0.5f * (float)rate;
  if (!(low >= 0.0f && low < nyquist)) return fail(c, KWS_ERR_FIELD, "fbank.low_freq", at + 12);
  float top = high > 0.0f ? high : nyquist + high; /* float arithmetic, as kaldi-native-fbank */
  if (!(low < top && top <= nyquist)) return fail(c, KWS_ERR_FIELD, "fbank.high_freq", at + 16);
  if (!(preemph >= 0.0f && preemph <= 1.0f)) return fail(c, KWS_ERR_FIELD, "fbank.preemph_coeff", at + 20);
  if (f[27] > 1) return fail(c, KWS_ERR_FIELD, "fbank.remove_dc_offset", at + 27);
  if (f[28] > 1) return fail(c, KWS_ERR_FIELD, "fbank.snip_edges", at + 28);
  if (mel_bins != feature_dim) return fail(c, KWS_ERR_SIZE, "fbank.num_mel_bins", at + 24);
  return KWS_OK;
}

/* 1 if kernel dk reads the layer's codes where they lie in the blob: its layout is the blob's, rows whole bytes. */
static int reads_blob(const kws_dense_kernel *dk, const layer_view *v) {
  return dk->blob_bits == v->bits && v->in_size * (size_t)v->bits % 8 == 0;
}

/* The kernel of an int8 dense layer (NULL for other layers), chosen once from the backend, the layer's bits
 * and the storage choice; loaded in place, one that reads the blob's codes as they lie where there is one:
 * 8-bit codes (the backend's int8 kernel if it reads row-major codes, else the portable one), 4-bit codes in
 * whole-byte rows unless int8 storage is asked for (the portable nibble kernel). */
static const kws_dense_kernel *plan_of(const kws_model *m, const layer_view *v) {
  if (v->kind != KWS_LAYER_DENSE || m->act_bits != 8) return NULL;
  const kws_dense_kernel *dk = kws_plan_dense(m->backend->kernels, v->bits, m->storage);
  if (!(m->load_flags & KWS_LOAD_IN_PLACE) || reads_blob(dk, v)) return dk;
  const kws_dense_kernel *own = v->bits == 8 ? &kws_portable_kernels.dense_s8 : &kws_portable_kernels.dense_s4;
  return reads_blob(own, v) && (v->bits == 8 || m->storage != KWS_WEIGHTS_INT8) ? own : dk;
}

/* 1 if the layer's weights are read where they lie in the blob: loaded in place, and its kernel reads the
 * blob's codes (the int16 and affine kernels read int8 codes, so 8-bit ones). */
static int in_place(const kws_model *m, const layer_view *v) {
  if (!(m->load_flags & KWS_LOAD_IN_PLACE)) return 0;
  const kws_dense_kernel *dk = plan_of(m, v);
  return dk ? reads_blob(dk, v) : v->bits == 8;
}

/* Bytes of the layer's weights as its kernel reads them (in place: in the blob, the codes themselves). */
static size_t weight_bytes(const kws_model *m, const layer_view *v) {
  const kws_dense_kernel *dk = plan_of(m, v);
  return dk ? dk->packed_bytes(v->in_size, v->out_size) : v->count;
}

/* Bytes of them the model holds in its own memory. */
static size_t held_weight_bytes(const kws_model *m, const layer_view *v) {
  return in_place(m, v) ? 0 : weight_bytes(m, v);
}

/* Checks the whole payload into m (scalars only) and views; m->model_bytes gets the bytes to allocate. */
static kws_status check_payload(cursor *c, kws_model *m, layer_view *views, const uint8_t **mean,
                                const uint8_t **inv_std) {
  kws_status st = KWS_OK;
  size_t at = c->pos;
  const uint8_t *h = take(c, 24, "model header", &st);
  if (!h) return st;
  m->act_bits = h[0];
  m->num_layers = h[1];
  m->window_frames = le16(h + 2);
  m->feature_dim = le16(h + 4);
  m->frame_stride = le16(h + 6);
  m->input_scale = lef32(h + 8);
  m->input_zero_point = les32(h + 12);
  m->posterior_multiplier = les32(h + 16);
  m->posterior_shift = les32(h + 20);
  if (m->act_bits != 8 && m->act_bits != 16) return fail(c, KWS_ERR_FIELD, "act_bits", at);
  if (m->num_layers < 1 || m->num_layers > KWS_MAX_LAYERS) return fail(c, KWS_ERR_FIELD, "num_layers", at + 1);
  if (m->window_frames < 1 || m->window_frames > 4096) return fail(c, KWS_ERR_FIELD, "window_frames", at + 2);
  if (m->feature_dim < 1 || m->feature_dim > 1024) return fail(c, KWS_ERR_FIELD, "feature_dim", at + 4);
  if (m->frame_stride < 1 || m->frame_stride > m->window_frames)
    return fail(c, KWS_ERR_FIELD, "frame_stride", at + 6);
  m->input_size = (size_t)((m->window_frames - 1) / m->frame_stride + 1) * (size_t)m->feature_dim;
  if (m->input_size > KWS_MAX_DIM) return fail(c, KWS_ERR_SIZE, "feature_dim", at + 4);
  if (!scale_ok(m->input_scale)) return fail(c, KWS_ERR_FIELD, "input_scale", at + 8);
  int32_t qmin = m->act_bits == 8 ? INT8_MIN : INT16_MIN, qmax = m->act_bits == 8 ? INT8_MAX : INT16_MAX;
  if (m->input_zero_point < qmin || m->input_zero_point > qmax || (m->act_bits == 16 && m->input_zero_point))
    return fail(c, KWS_ERR_FIELD, "input_zero_point", at + 12);
  if ((st = check_fbank(c, m->feature_dim)) != KWS_OK) return st;
  if (!(*mean = take(c, 4 * (size_t)m->feature_dim, "mean", &st))) return st;
  if (!(*inv_std = take(c, 4 * (size_t)m->feature_dim, "inv_std", &st))) return st;
  for (int i = 0; i < m->feature_dim; i++)
    if (!isfinite(lef32(*mean + 4 * i))) return fail(c, KWS_ERR_FIELD, "mean", (size_t)(*mean - c->data) + 4 * i);
  for (int i = 0; i < m->feature_dim; i++)
    if (!isfinite(lef32(*inv_std + 4 * i)))
      return fail(c, KWS_ERR_FIELD, "inv_std", (size_t)(*inv_std - c->data) + 4 * i);

  size_t bytes = kws_align8(sizeof(kws_model)) + kws_align8((size_t)m->num_layers * sizeof(kws_layer)) +
                 2 * kws_align8(4 * (size_t)m->feature_dim);
  float prev_scale = m->input_scale;
  int32_t prev_zp = m->input_zero_point;
  size_t prev_size = m->input_size, max_width = m->input_size;
  m->weight_bytes = 0;
  m->macs = 0;
  for (int i = 0; i < m->num_layers; i++) {
    layer_view *v = &views[i];
    if ((st = check_layer(c, m, prev_scale, prev_zp, prev_size, v)) != KWS_OK) return st;
    prev_scale = v->output_scale;
    prev_zp = v->out_zp;
    prev_size = v->out_size;
    if (v->out_size > max_width) max_width = v->out_size;
    size_t n = v->out_size;
    bytes += kws_align8(held_weight_bytes(m, v)) + kws_align8(n * (m->act_bits == 8 ? 4 : 8)) + 2 * kws_align8(4 * n);
    m->weight_bytes += weight_bytes(m, v);
    m->macs += v->count;
  }
  layer_view *last = &views[m->num_layers - 1];
  if (last->kind != KWS_LAYER_DENSE) return fail(c, KWS_ERR_FIELD, "layer.kind", last->at);
  if (last->out_size != 2) return fail(c, KWS_ERR_SIZE, "layer.out_size", last->at + 6);
  int32_t pm, ps;
  if (!kws_quantize_multiplier((double)last->output_scale * 4096.0, 14, &pm, &ps) || pm != m->posterior_multiplier)
    return fail(c, KWS_ERR_FIELD, "posterior_multiplier", at + 16);
  if (ps != m->posterior_shift) return fail(c, KWS_ERR_FIELD, "posterior_shift", at + 20);
  if (c->version >= 4) {
    const uint8_t *len = take(c, 4, "metadata_bytes", &st);
    if (!len) return st;
    if (le32(len) > MAX_METADATA_BYTES) return fail(c, KWS_ERR_SIZE, "metadata_bytes", (size_t)(len - c->data));
    if (!take(c, le32(len), "metadata", &st)) return st;
  }
  if (c->pos != c->size) return fail(c, KWS_ERR_SIZE, "payload", c->pos);
  m->max_width = max_width;
  m->model_bytes = bytes;
  return KWS_OK;
}

/* Points each int8 dense layer's epilogue at its arrays, and fuses an affine layer
 * that follows a dense one into the dense layer's epilogue (the same integer
 * operations: kwsint_internal.h). */
static void link_epilogues(kws_model *m) {
  for (int l = 0; l < m->num_layers; l++) {
    kws_layer *L = &m->layers[l];
    if (!L->dense) continue;
    kws_epilogue e = {L->bias32, &L->params, NULL, NULL, NULL};
    kws_layer *next = l + 1 < m->num_layers ? &m->layers[l + 1] : NULL;
    if (next && next->kind == KWS_LAYER_AFFINE) {
      e.affine_w = next->weights;
      e.affine_bias = next->bias32;
      e.affine_p = &next->params;
      L->fused = KWS_FUSED_NEXT;
      next->fused = KWS_FUSED_INTO_PREVIOUS;
    }
    L->epilogue = e;
  }
}

/* Builds the checked model from its views in mem (model_bytes of it). */
static kws_model *build(const kws_model *shape, const layer_view *views, const uint8_t *mean,
                        const uint8_t *inv_std, uint8_t *mem) {
  kws_arena a = {mem, 0, shape->model_bytes};
  kws_model *m = (kws_model *)kws_carve(&a, sizeof(kws_model));
  *m = *shape;
  m->layers = (kws_layer *)kws_carve(&a, (size_t)m->num_layers * sizeof(kws_layer));
  size_t fd = (size_t)m->feature_dim;
  m->mean = (float *)kws_carve(&a, 4 * fd);
  m->inv_std = (float *)kws_carve(&a, 4 * fd);
  for (size_t i = 0; i < fd; i++) {
    m->mean[i] = lef32(mean + 4 * i);
    m->inv_std[i] = lef32(inv_std + 4 * i);
  }
  for (int l = 0; l < m->num_layers; l++) {
    const layer_view *v = &views[l];
    kws_layer *L = &m->layers[l];
    size_t n = v->out_size;
    L->kind = v->kind;
    L->weight_bits = v->bits;
    L->acc16_log2 = v->acc16;
    L->in_size = v->in_size;
    L->out_size = n;
    L->weight_bytes = weight_bytes(m, v);
    L->dense = plan_of(m, v);
    if (in_place(m, v)) {
      L->weights = (const int8_t *)v->weights;
    } else {
      uint8_t *held = (uint8_t *)kws_carve(&a, held_weight_bytes(m, v));
      if (L->dense) L->dense->pack(codes_of(v), v->in_size, n, held);
      else /* int16 and affine layers: int8 codes */
        for (size_t i = 0; i < v->count; i++) held[i] = (uint8_t)kws_code_at(codes_of(v), i);
      L->weights = (const int8_t *)held;
    }
    if (m->act_bits == 8) {
      L->bias32 = (int32_t *)kws_carve(&a, 4 * n);
      for (size_t i = 0; i < n; i++) L->bias32[i] = les32(v->bias + 4 * i);
      kws_fold_bias_s32(L->bias32, codes_of(v), n, v->count / n, v->in_zp, L->bias32);
    } else {
      L->bias64 = (int64_t *)kws_carve(&a, 8 * n);
      for (size_t i = 0; i < n; i++) L->bias64[i] = les64(v->bias + 8 * i);
    }
    L->multiplier = (int32_t *)kws_carve(&a, 4 * n);
    L->shift = (int32_t *)kws_carve(&a, 4 * n);
    for (size_t i = 0; i < n; i++) {
      L->multiplier[i] = les32(v->multiplier + 4 * i);
      L->shift[i] = les32(v->shift + 4 * i);
    }
    L->params.multiplier = L->multiplier;
    L->params.shift = L->shift;
    L->params.input_zero_point = v->in_zp;
    L->params.output_zero_point = v->out_zp;
    L->params.act_min = v->act_min;
    L->params.act_max = v->act_max;
  }
  link_epilogues(m);
  return m;
}

/* A checked blob: its kind, and for a dense model its views and the bytes its load takes. */
typedef struct {
  int kind;
  const uint8_t *payload;
  size_t payload_bytes;
  kws_model shape; /* dense: the scalars */
  layer_view views[KWS_MAX_LAYERS];
  const uint8_t *mean, *inv_std;
} checked_blob;

/* Checks the header, and a dense model's whole payload (a graph's is checked by its loader). */
static kws_status check_blob(const void *data, size_t size, const kws_backend *be, kws_weight_storage storage,
                             unsigned flags, kws_load_error *err, checked_blob *b) {
  cursor c = {(const uint8_t *)data, size, 0, err, 0};
  if (!data && size) return fail(&c, KWS_ERR_ARGUMENT, "data", 0);
  if (storage != KWS_WEIGHTS_INT8 && storage != KWS_WEIGHTS_PACKED && storage != KWS_WEIGHTS_AUTO)
    return fail(&c, KWS_ERR_ARGUMENT, "storage", 0);
  if (flags & ~(unsigned)KWS_LOAD_IN_PLACE) return fail(&c, KWS_ERR_ARGUMENT, "flags", 0);
  if (!be || !be->usable()) return fail(&c, KWS_ERR_BACKEND, "backend", 0);
  kws_status st = KWS_OK;
  const uint8_t *h = take(&c, HEADER_BYTES, "header", &st);
  if (!h) return st;
  if (memcmp(h, "KWSQ", 4) != 0) return fail(&c, KWS_ERR_MAGIC, "magic", 0);
  c.version = le16(h + 4);
  if (c.version < 2 || c.version > FORMAT_VERSION) return fail(&c, KWS_ERR_VERSION, "version", 4);
  b->kind = le16(h + 6);
  if (c.version < 5 && b->kind != 0) return fail(&c, KWS_ERR_FIELD, "reserved", 6);
  if (b->kind != KWS_MODEL_DENSE && b->kind != KWS_MODEL_GRAPH) return fail(&c, KWS_ERR_FIELD, "model_kind", 6);
  uint32_t payload_bytes = le32(h + 8);
  if (payload_bytes > size - HEADER_BYTES) return fail(&c, KWS_ERR_TRUNCATED, "payload_bytes", 8);
  if (payload_bytes < size - HEADER_BYTES) return fail(&c, KWS_ERR_SIZE, "payload_bytes", 8);
  if (kws_crc32(c.data + HEADER_BYTES, payload_bytes) != le32(h + 12))
    return fail(&c, KWS_ERR_CHECKSUM, "payload_crc32", 12);
  b->payload = c.data + HEADER_BYTES;
  b->payload_bytes = payload_bytes;
  if (b->kind == KWS_MODEL_GRAPH) return KWS_OK;
  memset(&b->shape, 0, sizeof b->shape);
  b->shape.backend = be;
  b->shape.storage = storage;
  b->shape.load_flags = flags;
  return check_payload(&c, &b->shape, b->views, &b->mean, &b->inv_std);
}

kws_status kws_model_arena_bytes(const void *data, size_t size, const kws_backend *be, kws_weight_storage storage,
                                 unsigned flags, size_t *bytes, kws_load_error *err) {
  if (!bytes) return KWS_ERR_ARGUMENT;
  *bytes = 0;
  checked_blob b;
  kws_status st = check_blob(data, size, be, storage, flags, err, &b);
  if (st != KWS_OK) return st;
  if (b.kind == KWS_MODEL_GRAPH)
    return kws_graph_load(b.payload, b.payload_bytes, be, flags, NULL, 0, bytes, NULL, err); /* out NULL: the size */
  *bytes = b.shape.model_bytes;
  return KWS_OK;
}

kws_status kws_model_load_into(const void *data, size_t size, const kws_backend *be, kws_weight_storage storage,
                               unsigned flags, void *arena, size_t arena_bytes, kws_model **out,
                               kws_load_error *err) {
  cursor c = {NULL, 0, 0, err, 0};
  if (out) *out = NULL;
  if (!out || !arena || (uintptr_t)arena % 8) return fail(&c, KWS_ERR_ARGUMENT, "arena", 0);
  checked_blob b;
  kws_status st = check_blob(data, size, be, storage, flags, err, &b);
  if (st != KWS_OK) return st;
  if (b.kind == KWS_MODEL_GRAPH) {
    size_t need;
    return kws_graph_load(b.payload, b.payload_bytes, be, flags, arena, arena_bytes, &need, out, err);
  }
  if (arena_bytes < b.shape.model_bytes) return fail(&c, KWS_ERR_NOMEM, "arena", 0);
  *out = build(&b.shape, b.views, b.mean, b.inv_std, (uint8_t *)arena);
  return KWS_OK;
}

kws_status kws_model_load(const void *data, size_t size, const kws_backend *be, kws_model **out,
                          kws_load_error *err) {
  return kws_model_load_with(data, size, be, KWS_WEIGHTS_AUTO, out, err);
}

kws_status kws_model_load_with(const void *data, size_t size, const kws_backend *be, kws_weight_storage storage,
                               kws_model **out, kws_load_error *err) {
  cursor c = {NULL, 0, 0, err, 0};
  if (!out) return fail(&c, KWS_ERR_ARGUMENT, "data", 0);
  *out = NULL;
  checked_blob b;
  kws_status st = check_blob(data, size, be, storage, 0, err, &b);
  if (st != KWS_OK) return st;
  if (b.kind == KWS_MODEL_GRAPH) {
    size_t need;
    return kws_graph_load(b.payload, b.payload_bytes, be, 0, NULL, 0, &need, out, err);
  }
  uint8_t *mem = (uint8_t *)malloc(b.shape.model_bytes);
  if (!mem) return fail(&c, KWS_ERR_NOMEM, "model", 0);
  *out = build(&b.shape, b.views, b.mean, b.inv_std, mem);
  (*out)->owned = 1;
  return KWS_OK;
}

void kws_model_free(kws_model *model) {
  if (!model || !model->owned) return;
  if (model->graph) kws_graph_free(model->graph); /* its arrays; its tables are in the model's block */
  free(model); /* the model starts its block */
}

int kws_model_kind(const kws_model *model) { return model ? model->kind : -1; }
