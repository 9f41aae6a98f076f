/* Whole-model inference over a loaded blob. */
#include <string.h>

#include "kwsint_internal.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

static size_t elem_bytes(const kws_model *m) { return m->act_bits == 8 ? 1 : 2; }

static size_t buffer_bytes(const kws_model *m) { return (m->max_width * elem_bytes(m) + 7) & ~(size_t)7; }

void kws_model_get_info(const kws_model *m, kws_model_info *info) {
  memset(info, 0, sizeof *info);
  if (!m) return;
  if (m->graph) {
    kws_graph_get_info(m->graph, info);
    return;
  }
  info->act_bits = m->act_bits;
  info->num_layers = m->num_layers;
  info->window_frames = m->window_frames;
  info->feature_dim = m->feature_dim;
  info->frame_stride = m->frame_stride;
  info->input_size = m->input_size;
  info->num_outputs = m->layers[m->num_layers - 1].out_size;
  info->scratch_bytes = 2 * buffer_bytes(m);
  info->batch_scratch_bytes = 2 * KWS_BATCH_WINDOWS * buffer_bytes(m);
  info->input_bytes = (m->input_size * elem_bytes(m) + 7) & ~(size_t)7;
  info->weight_bytes = m->weight_bytes;
  info->model_bytes = m->model_bytes;
  info->macs = m->macs;
}

kws_status kws_model_graph_info(const kws_model *m, kws_graph_info *info) {
  if (!m || !m->graph || !info) return KWS_ERR_ARGUMENT;
  return kws_graph_describe(m->graph, info);
}

const kws_backend *kws_model_backend(const kws_model *m) { return m ? m->backend : NULL; }

kws_status kws_model_layer_plan(const kws_model *m, int layer, kws_layer_plan *plan) {
  if (!m || m->graph || !plan || layer < 0 || layer >= m->num_layers) return KWS_ERR_ARGUMENT;
  const kws_layer *L = &m->layers[layer];
  memset(plan, 0, sizeof *plan);
  plan->weight_bytes = L->weight_bytes;
  plan->fused = L->fused;
  plan->code_bits = 8;
  if (L->dense) {
    plan->kernel = L->dense->name;
    plan->code_bits = L->dense->code_bits;
    plan->acc16_block = L->dense->acc16 && L->acc16_log2 >= L->dense->acc16 ? 1 << L->acc16_log2 : 0;
  } else {
    plan->kernel = m->backend->name; /* affine and 16x8 layers: the backend's one kernel of their kind */
  }
  return KWS_OK;
}

/* One layer on `count` windows: in [count][in_size], out [count][out_size]. Dense int8
 * layers take them all in one kernel call (the kernel may reuse each weight load across
 * windows); the other kernels take one vector, so they loop. */
static void run_layer(const kws_kernels *kk, const kws_model *m, const kws_layer *L, const void *in, size_t count,
                      void *out) {
  if (L->dense) {
    L->dense->run((const int8_t *)in, count, L->in_size, (const uint8_t *)L->weights, L->out_size, &L->epilogue,
                  L->acc16_log2, (int8_t *)out);
    return;
  }
  for (size_t b = 0; b < count; b++) {
    if (m->act_bits == 8)
      kk->affine_s8((const int8_t *)in + b * L->in_size, L->out_size, L->weights, L->bias32, &L->params,
                    (int8_t *)out + b * L->out_size);
    else if (L->kind == KWS_LAYER_DENSE)
      kk->fully_connected_s16((const int16_t *)in + b * L->in_size, L->in_size, L->weights, L->out_size,
                              L->bias64, &L->params, (int16_t *)out + b * L->out_size);
    else
      kk->affine_s16((const int16_t *)in + b * L->in_size, L->out_size, L->weights, L->bias64, &L->params,
                     (int16_t *)out + b * L->out_size);
  }
}

/* `count` windows (inputs [count][input_size]) through every layer, the windows of a
 * layer in one call; the two halves of scratch, each half_bytes, take turns holding
 * [count][width] activations. ticks (if given) gets each layer's counter ticks added. */
static void run_layers(const kws_model *m, const void *inputs, size_t count, void *scratch, size_t half_bytes,
                       int32_t *logits, int32_t *posteriors, uint64_t *ticks) {
  const kws_kernels *kk = m->backend->kernels;
  uint8_t *bufs[2] = {(uint8_t *)scratch, (uint8_t *)scratch + half_bytes};
  const void *in = inputs;
  int flip = 0;
  for (int l = 0; l < m->num_layers; l++) {
    if (m->layers[l].fused == KWS_FUSED_INTO_PREVIOUS) continue; /* done in layer l - 1's epilogue */
    void *out = bufs[flip ^= 1];
    uint64_t start = ticks ? kws_cycle_counter() : 0;
    run_layer(kk, m, &m->layers[l], in, count, out);
    if (ticks) ticks[l] += kws_cycle_counter() - start;
    in = out;
  }
  size_t n = m->layers[m->num_layers - 1].out_size;
  for (size_t b = 0; b < count; b++) {
    int32_t *y = logits + b * n;
    for (size_t i = 0; i < n; i++)
      y[i] = m->act_bits == 8 ? ((const int8_t *)in)[b * n + i] : ((const int16_t *)in)[b * n + i];
    if (posteriors)
      posteriors[b] = kws_posterior_q16(y[1] - y[0], m->posterior_multiplier, m->posterior_shift);
  }
}

static kws_status infer_q(const kws_model *m, const void *input, void *scratch, int32_t *logits,
                          int32_t *posterior_q16, uint64_t *ticks) {
  if (!m || m->graph || !input || !scratch || !logits) return KWS_ERR_ARGUMENT;
  run_layers(m, input, 1, scratch, buffer_bytes(m), logits, posterior_q16, ticks);
  return KWS_OK;
}

kws_status kws_model_infer_batch_q(const kws_model *m, const void *inputs, size_t count, void *scratch,
                                   int32_t *logits, int32_t *posteriors) {
  if (!m || m->graph || (count && (!inputs || !scratch || !logits))) return KWS_ERR_ARGUMENT;
  size_t in_bytes = m->input_size * elem_bytes(m), n = m->layers[m->num_layers - 1].out_size;
  for (size_t done = 0; done < count; done += KWS_BATCH_WINDOWS) {
    size_t c = count - done < KWS_BATCH_WINDOWS ? count - done : KWS_BATCH_WINDOWS;
    run_layers(m, (const uint8_t *)inputs + done * in_bytes, c, scratch, KWS_BATCH_WINDOWS * buffer_bytes(m),
               logits + done * n, posteriors ? posteriors + done : NULL, NULL);
  }
  return KWS_OK;
}

kws_status kws_model_infer_q(const kws_model *m, const void *input, void *scratch, int32_t *logits,
                             int32_t *posterior_q16) {
  return infer_q(m, input, scratch, logits, posterior_q16, NULL);
}

kws_status kws_model_time_layers(const kws_model *m, const void *input, void *scratch, uint32_t repeats,
                                 uint64_t *ticks) {
  if (!m || m->graph || !ticks) return KWS_ERR_ARGUMENT;
  memset(ticks, 0, (size_t)m->num_layers * sizeof *ticks);
  int32_t logits[2], post;
  for (uint32_t r = 0; r < repeats; r++) {
    kws_status st = infer_q(m, input, scratch, logits, &post, ticks);
    if (st != KWS_OK) return st;
  }
  return KWS_OK;
}

/* Normalise one frame in float32 and quantize it into `out` (feature_dim values). */
/* Normalise `count` frames, `step` floats apart from `first`, in float32 into tmp and
 * quantize them in one kernel call. */
static void quantize_frames(const kws_model *m, const float *first, size_t step, size_t count, float *tmp,
                            void *out) {
  size_t fd = (size_t)m->feature_dim;
  for (size_t f = 0; f < count; f++) {
    const float *x = first + f * step;
    float *t = tmp + f * fd;
    size_t i = 0;
#if defined(__SSE2__) /* the same float32 subtract and multiply per element, 4 at a time */
    for (; i + 4 <= fd; i += 4)
      _mm_storeu_ps(t + i, _mm_mul_ps(_mm_sub_ps(_mm_loadu_ps(x + i), _mm_loadu_ps(m->mean + i)),
                                      _mm_loadu_ps(m->inv_std + i)));
#endif
    for (; i < fd; i++) t[i] = (x[i] - m->mean[i]) * m->inv_std[i];
  }
  const kws_kernels *kk = m->backend->kernels;
  if (m->act_bits == 8)
    kk->quantize_s8(tmp, count * fd, m->input_scale, m->input_zero_point, (int8_t *)out);
  else
    kk->quantize_s16(tmp, count * fd, m->input_scale, m->input_zero_point, (int16_t *)out);
}

void kws_model_quantize_frame(const kws_model *m, const float *frame, float *tmp, void *out) {
  quantize_frames(m, frame, 0, 1, tmp, out);
}

kws_status kws_model_quantize_window(const kws_model *m, const float *window, void *input) {
  if (!m || m->graph || !window || !input) return KWS_ERR_ARGUMENT;
  /* As many selected frames as fit in tmp go to the kernel at once (one at least:
   * feature_dim <= 1024, checked at load), so the SIMD kernels see long vectors. */
  float tmp[1024];
  size_t fd = (size_t)m->feature_dim, step = (size_t)m->frame_stride * fd, per_call = 1024 / fd;
  size_t left = (size_t)((m->window_frames - 1) / m->frame_stride + 1);
  const float *frame = window + (size_t)((m->window_frames - 1) % m->frame_stride) * fd;
  uint8_t *dst = (uint8_t *)input;
  while (left) {
    size_t count = left < per_call ? left : per_call;
    quantize_frames(m, frame, step, count, tmp, dst);
    frame += count * step;
    dst += count * fd * elem_bytes(m);
    left -= count;
  }
  return KWS_OK;
}

kws_status kws_model_infer(const kws_model *m, const float *window, void *scratch, int32_t *logits,
                           int32_t *posterior_q16) {
  if (!m || m->graph || !window || !scratch || !logits) return KWS_ERR_ARGUMENT;
  if (!kws_all_finite(window, (size_t)m->window_frames * (size_t)m->feature_dim)) return KWS_ERR_ARGUMENT;
  void *input = (uint8_t *)scratch + 2 * buffer_bytes(m); /* after the arena of infer_q */
  kws_model_quantize_window(m, window, input);
  return infer_q(m, input, scratch, logits, posterior_q16, NULL);
}
