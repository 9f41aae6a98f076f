/* float32 models: the paper's M0 baseline on the same engine and kernels
 * tables as the integer models (docs/arithmetic.md 10). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kwsint_internal.h"

typedef struct {
  int kind;
  size_t in_size, out_size;
  float *weights, *bias;
  float act_min, act_max;
} float_layer;

struct kws_float_model {
  const kws_backend *backend;
  int window_frames, feature_dim, frame_stride;
  size_t input_size, max_width, weight_bytes, model_bytes;
  uint64_t macs;
  float *mean, *inv_std;
  int num_layers;
  float_layer layers[KWS_MAX_LAYERS];
};

static float *copy_floats(const float *src, size_t n) {
  float *dst = (float *)malloc(n * sizeof *dst);
  if (dst) memcpy(dst, src, n * sizeof *dst);
  return dst;
}

void kws_float_model_free(kws_float_model *m) {
  if (!m) return;
  for (int l = 0; l < m->num_layers; l++) {
    free(m->layers[l].weights);
    free(m->layers[l].bias);
  }
  free(m->mean);
  free(m->inv_std);
  free(m);
}

static int layer_ok(const kws_float_layer *L, size_t in_size) {
  if (L->in_size != in_size || L->out_size < 1 || L->out_size > KWS_MAX_DIM || !L->weights || !L->bias) return 0;
  if (L->kind == KWS_LAYER_AFFINE) return L->out_size == L->in_size;
  if (L->kind != KWS_LAYER_DENSE) return 0;
  /* infinite clamp bounds mean no clamp; NaN bounds are refused */
  return L->act_min <= L->act_max && L->act_min < INFINITY && L->act_max > -INFINITY;
}

kws_status kws_float_model_create(const kws_float_model_desc *d, const kws_backend *be, kws_float_model **out) {
  if (!out) return KWS_ERR_ARGUMENT;
  *out = NULL;
  if (!be) {
    kws_status st = kws_backend_find(NULL, &be);
    if (st != KWS_OK) return st;
  }
  if (!be->usable()) return KWS_ERR_BACKEND;
  if (!d || !d->mean || !d->inv_std || !d->layers || d->num_layers < 1 || d->num_layers > KWS_MAX_LAYERS ||
      d->window_frames < 1 || d->window_frames > 4096 || d->feature_dim < 1 || d->feature_dim > 1024 ||
      d->frame_stride < 1 || d->frame_stride > d->window_frames)
    return KWS_ERR_ARGUMENT;
  size_t f = (size_t)d->feature_dim;
  size_t input_size = ((size_t)(d->window_frames - 1) / (size_t)d->frame_stride + 1) * f;
  if (input_size > KWS_MAX_DIM || !kws_all_finite(d->mean, f) || !kws_all_finite(d->inv_std, f))
    return KWS_ERR_ARGUMENT;
  size_t width = input_size;
  for (int l = 0; l < d->num_layers; l++) {
    const kws_float_layer *L = &d->layers[l];
    if (!layer_ok(L, width)) return KWS_ERR_ARGUMENT;
    size_t count = L->kind == KWS_LAYER_DENSE ? L->out_size * L->in_size : L->out_size;
    if (!kws_all_finite(L->weights, count) || !kws_all_finite(L->bias, L->out_size)) return KWS_ERR_ARGUMENT;
    width = L->out_size;
  }
  if (width != 2) return KWS_ERR_ARGUMENT; /* the 2-way output */

  kws_float_model *m = (kws_float_model *)calloc(1, sizeof *m);
  if (!m) return KWS_ERR_NOMEM;
  m->backend = be;
  m->window_frames = d->window_frames;
  m->feature_dim = d->feature_dim;
  m->frame_stride = d->frame_stride;
  m->input_size = m->max_width = input_size;
  m->model_bytes = sizeof *m + 2 * f * sizeof(float);
  m->mean = copy_floats(d->mean, f);
  m->inv_std = copy_floats(d->inv_std, f);
  int ok = m->mean && m->inv_std;
  for (int l = 0; ok && l < d->num_layers; l++) {
    const kws_float_layer *src = &d->layers[l];
    float_layer *L = &m->layers[l];
    size_t count = src->kind == KWS_LAYER_DENSE ? src->out_size * src->in_size : src->out_size;
    *L = (float_layer){src->kind, src->in_size, src->out_size, copy_floats(src->weights, count),
                       copy_floats(src->bias, src->out_size), src->act_min, src->act_max};
    m->num_layers = l + 1;
    ok = L->weights && L->bias;
    if (L->out_size > m->max_width) m->max_width = L->out_size;
    m->weight_bytes += count * sizeof(float);
    m->model_bytes += (count + src->out_size) * sizeof(float);
    m->macs += count;
  }
  if (!ok) {
    kws_float_model_free(m);
    return KWS_ERR_NOMEM;
  }
  *out = m;
  return KWS_OK;
}

/* The arena: the normalised input vector, then two activation buffers. */
static size_t buffer_floats(size_t n) { return (n + 1) & ~(size_t)1; } /* 8-byte multiples */

void kws_float_model_get_info(const kws_float_model *m, kws_model_info *info) {
  memset(info, 0, sizeof *info);
  if (!m) return;
  info->act_bits = 32;
  info->num_layers = m->num_layers;
  info->window_frames = m->window_frames;
  info->feature_dim = m->feature_dim;
  info->frame_stride = m->frame_stride;
  info->input_size = m->input_size;
  info->num_outputs = m->layers[m->num_layers - 1].out_size;
  info->scratch_bytes = (buffer_floats(m->input_size) + 2 * buffer_floats(m->max_width)) * sizeof(float);
  info->weight_bytes = m->weight_bytes;
  info->model_bytes = m->model_bytes;
  info->macs = m->macs;
}

static void run_layer(const kws_kernels *kk, const float_layer *L, const float *in, float *out) {
  if (L->kind == KWS_LAYER_DENSE)
    kk->fully_connected_f32(in, L->in_size, L->weights, L->out_size, L->bias, L->act_min, L->act_max, out);
  else
    kk->affine_f32(in, L->out_size, L->weights, L->bias, out);
}

/* Selected frames of the window, normalised as for the integer models (in float32). */
static void normalise_window(const kws_float_model *m, const float *window, float *x) {
  size_t f = (size_t)m->feature_dim;
  for (int fr = (m->window_frames - 1) % m->frame_stride; fr < m->window_frames; fr += m->frame_stride, x += f)
    for (size_t i = 0; i < f; i++) x[i] = (window[(size_t)fr * f + i] - m->mean[i]) * m->inv_std[i];
}

/* One window, already checked for NaN and Inf; ticks (if given) gets each layer's counter ticks added. */
static void run(const kws_float_model *m, const float *window, void *scratch, float *logits, uint64_t *ticks) {
  float *input = (float *)scratch;
  float *bufs[2] = {input + buffer_floats(m->input_size),
                    input + buffer_floats(m->input_size) + buffer_floats(m->max_width)};
  normalise_window(m, window, input);
  const kws_kernels *kk = m->backend->kernels;
  const float *in = input;
  for (int l = 0; l < m->num_layers; l++) {
    uint64_t start = ticks ? kws_cycle_counter() : 0;
    run_layer(kk, &m->layers[l], in, bufs[l & 1]);
    if (ticks) ticks[l] += kws_cycle_counter() - start;
    in = bufs[l & 1];
  }
  memcpy(logits, in, m->layers[m->num_layers - 1].out_size * sizeof *logits);
}

static kws_status infer(const kws_float_model *m, const float *window, void *scratch, float *logits,
                        uint64_t *ticks) {
  if (!m || !window || !scratch || !logits) return KWS_ERR_ARGUMENT;
  if (!kws_all_finite(window, (size_t)m->window_frames * (size_t)m->feature_dim)) return KWS_ERR_ARGUMENT;
  run(m, window, scratch, logits, ticks);
  return KWS_OK;
}

kws_status kws_float_model_infer(const kws_float_model *m, const float *window, void *scratch, float *logits) {
  return infer(m, window, scratch, logits, NULL);
}

kws_status kws_float_model_infer_steps(const kws_float_model *m, const float *frames, size_t num_frames, size_t hop,
                                       void *scratch, float *logits, size_t capacity, size_t *num_steps) {
  if (!m || !frames || !scratch || !logits || !num_steps || hop < 1) return KWS_ERR_ARGUMENT;
  *num_steps = 0;
  size_t f = (size_t)m->feature_dim, w = (size_t)m->window_frames;
  if (num_frames > SIZE_MAX / f) return KWS_ERR_ARGUMENT; /* the frames' size would wrap */
  size_t steps = num_frames < w ? 0 : (num_frames - w) / hop + 1; /* kws_detector's steps */
  if (steps > capacity || !kws_all_finite(frames, num_frames * f)) return KWS_ERR_ARGUMENT;
  for (size_t k = 0; k < steps; k++) /* window k starts at frame k * hop: (steps - 1) * hop + w <= num_frames */
    run(m, frames + k * hop * f, scratch, logits + 2 * k, NULL);
  *num_steps = steps;
  return KWS_OK;
}

kws_status kws_float_model_time_infer(const kws_float_model *m, const float *window, void *scratch,
                                      uint32_t repeats, uint64_t *ticks) {
  if (!ticks) return KWS_ERR_ARGUMENT;
  float logits[2];
  uint64_t start = kws_cycle_counter();
  for (uint32_t r = 0; r < repeats; r++) {
    kws_status st = infer(m, window, scratch, logits, NULL);
    if (st != KWS_OK) return st;
  }
  *ticks = kws_cycle_counter() - start;
  return KWS_OK;
}

kws_status kws_float_model_time_layers(const kws_float_model *m, const float *window, void *scratch,
                                       uint32_t repeats, uint64_t *ticks) {
  if (!m || !ticks) return KWS_ERR_ARGUMENT;
  memset(ticks, 0, (size_t)m->num_layers * sizeof *ticks);
  float logits[2];
  for (uint32_t r = 0; r < repeats; r++) {
    kws_status st = infer(m, window, scratch, logits, ticks);
    if (st != KWS_OK) return st;
  }
  return KWS_OK;
}
