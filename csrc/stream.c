/* Per-stream state: a ring buffer of quantized frames and a scratch arena,
 * over a shared immutable model. Nothing is allocated after create. */
#include <stdlib.h>
#include <string.h>

#include "kwsint_internal.h"

struct kws_stream {
  const kws_model *model;
  int owned;          /* 1: kws_stream_create allocated it; 0: the caller's memory */
  size_t frame_bytes; /* one quantized frame */
  size_t head;        /* ring slot the next frame goes to */
  size_t pushed;      /* frames since reset, saturating */
  uint8_t *ring;      /* window_frames quantized frames */
  uint8_t *input;     /* the model's input vector */
  void *scratch;      /* the model's arena, 8-byte aligned */
  float *tmp;         /* feature_dim floats */
  uint8_t *arena;     /* graph models: every state and tensor of an invoke (csrc/graph.c) */
};

/* The one allocation of a stream: its struct, the model's arena, the ring of
 * quantized frames, the input vector and feature_dim floats, each 8-byte aligned. */
typedef struct {
  size_t frame_bytes, head, scratch, ring, input, tmp;
} stream_layout;

static stream_layout layout_of(const kws_model *m) {
  kws_model_info info;
  kws_model_get_info(m, &info);
  stream_layout s;
  s.frame_bytes = (size_t)m->feature_dim * (m->act_bits == 8 ? 1 : 2);
  s.head = (sizeof(kws_stream) + 7) & ~(size_t)7;
  s.scratch = info.scratch_bytes;
  s.ring = ((size_t)m->window_frames * s.frame_bytes + 7) & ~(size_t)7;
  s.input = info.input_bytes;
  s.tmp = 4 * (size_t)m->feature_dim;
  return s;
}

static size_t head_bytes(void) { return (sizeof(kws_stream) + 7) & ~(size_t)7; }

size_t kws_stream_bytes(const kws_model *m) {
  if (!m) return 0;
  if (m->graph) return head_bytes() + kws_graph_stream_bytes(m->graph);
  stream_layout s = layout_of(m);
  return s.head + s.scratch + s.ring + s.input + s.tmp;
}

kws_status kws_stream_init(const kws_model *m, void *mem, size_t bytes, kws_stream **out) {
  if (!out) return KWS_ERR_ARGUMENT;
  *out = NULL;
  if (!m || !mem || (uintptr_t)mem % 8 || bytes < kws_stream_bytes(m)) return KWS_ERR_ARGUMENT;
  uint8_t *p = (uint8_t *)mem;
  memset(p, 0, kws_stream_bytes(m));
  kws_stream *s = (kws_stream *)p;
  s->model = m;
  if (m->graph) {
    s->arena = p + head_bytes();
    kws_graph_stream_init(m->graph, s->arena);
  } else {
    stream_layout L = layout_of(m);
    s->frame_bytes = L.frame_bytes;
    s->scratch = p + L.head;
    s->ring = p + L.head + L.scratch;
    s->input = s->ring + L.ring;
    s->tmp = (float *)(s->input + L.input);
  }
  *out = s;
  return KWS_OK;
}

kws_status kws_stream_create(const kws_model *m, kws_stream **out) {
  if (!out) return KWS_ERR_ARGUMENT;
  *out = NULL;
  if (!m) return KWS_ERR_ARGUMENT;
  void *mem = malloc(kws_stream_bytes(m)); /* malloc aligns for any type: 8 bytes at least */
  if (!mem) return KWS_ERR_NOMEM;
  kws_stream_init(m, mem, kws_stream_bytes(m), out); /* its arguments are right: KWS_OK */
  (*out)->owned = 1;
  return KWS_OK;
}

void kws_stream_free(kws_stream *s) {
  if (s && s->owned) free(s);
}

void kws_stream_reset(kws_stream *s) {
  if (!s) return;
  if (s->model->graph) kws_graph_stream_reset(s->model->graph, s->arena);
  s->head = 0;
  s->pushed = 0;
}

kws_status kws_stream_push(kws_stream *s, const float *frames, size_t n) {
  if (!s || s->model->graph || (n && !frames)) return KWS_ERR_ARGUMENT;
  const kws_model *m = s->model;
  for (size_t i = 0; i < n; i++) {
    kws_model_quantize_frame(m, frames + i * (size_t)m->feature_dim, s->tmp, s->ring + s->head * s->frame_bytes);
    s->head = (s->head + 1) % (size_t)m->window_frames;
    if (s->pushed < SIZE_MAX) s->pushed++;
  }
  return KWS_OK;
}

size_t kws_stream_frames(const kws_stream *s) { return s ? s->pushed : 0; }

void kws_stream_window(const kws_stream *s, void *input) {
  const kws_model *m = s->model;
  size_t w = (size_t)m->window_frames;
  /* The oldest frame of the window sits at head; gather frames offset::stride. */
  uint8_t *dst = (uint8_t *)input;
  for (size_t f = (w - 1) % (size_t)m->frame_stride; f < w; f += (size_t)m->frame_stride) {
    memcpy(dst, s->ring + ((s->head + f) % w) * s->frame_bytes, s->frame_bytes);
    dst += s->frame_bytes;
  }
}

kws_status kws_stream_infer(kws_stream *s, int32_t *logits, int32_t *posterior_q16) {
  if (!s || s->model->graph || !logits) return KWS_ERR_ARGUMENT;
  if (s->pushed < (size_t)s->model->window_frames) return KWS_ERR_ARGUMENT;
  kws_stream_window(s, s->input);
  return kws_model_infer_q(s->model, s->input, s->scratch, logits, posterior_q16);
}

kws_status kws_stream_invoke(kws_stream *s, const int8_t *in, size_t in_len, void *out, size_t out_len) {
  if (!s || !s->model->graph || !in || !out) return KWS_ERR_ARGUMENT;
  return kws_graph_invoke(s->model->graph, s->arena, in, in_len, out, out_len);
}

kws_status kws_stream_invoke_many(kws_stream *s, const int8_t *in, size_t in_len, void *out, size_t out_len) {
  kws_graph_info info;
  if (!s || !in || !out || kws_model_graph_info(s->model, &info) != KWS_OK) return KWS_ERR_ARGUMENT;
  size_t one_in = info.input_frames * info.input_channels, one_out = info.output_frames * info.output_channels;
  size_t n = in_len / one_in; /* both sizes >= 1: the loader checked every tensor */
  if (in_len % one_in || out_len % one_out || out_len / one_out != n) return KWS_ERR_ARGUMENT;
  for (size_t i = 0; i < n; i++)
    kws_graph_invoke(s->model->graph, s->arena, in + i * one_in, one_in,
                     (uint8_t *)out + i * one_out, one_out); /* the sizes it checks are right: KWS_OK */
  return KWS_OK;
}
