/* Streaming detection over a stream: a model step every hop frames, the moving
 * average of the last W posteriors, threshold and lockout (docs/arithmetic.md
 * section 8, "Detection"; kwsint.reference.detect_stream in numpy). Scalar
 * integer code shared by every backend, so every backend makes the same
 * decisions. Nothing is allocated after create. */
#include <stdlib.h>

#include "kwsint_internal.h"

struct kws_detector {
  const kws_model *model;
  int owned;          /* 1: kws_detector_create allocated it; 0: the caller's memory */
  kws_stream *stream; /* in the same memory, before the smoothing ring */
  kws_detector_config config;
  uint64_t frames; /* pushed since reset */
  int count;       /* posteriors in the ring, at most smoothing */
  int head;        /* ring slot of the next posterior */
  int quiet;       /* steps that still cannot fire after a detection */
  int64_t sum;     /* of the posteriors in the ring */
  /* The steps of a push waiting for their model run, up to KWS_BATCH_WINDOWS of them: */
  size_t input_bytes;    /* one window's quantized input vector */
  uint8_t *inputs;       /* [KWS_BATCH_WINDOWS][input_bytes] */
  void *scratch;         /* the model's batch arena */
  int32_t *logits;       /* [KWS_BATCH_WINDOWS][2] */
  int32_t *posteriors;   /* [KWS_BATCH_WINDOWS] */
  uint64_t *step_frames; /* [KWS_BATCH_WINDOWS], each step's newest frame */
  int32_t *ring;         /* smoothing posteriors */
};

static int config_ok(const kws_detector_config *c) {
  return c && c->hop >= 1 && c->smoothing >= 1 && c->smoothing <= KWS_MAX_SMOOTHING && c->threshold_q16 >= 0 &&
         c->threshold_q16 <= 65536 && c->lockout >= 0;
}

/* The detector's memory: the struct, then the batch arena, inputs, step frames, logits,
 * posteriors, each 8-byte aligned, then its stream and the smoothing ring. */
typedef struct {
  size_t head, scratch, inputs, frames, logits, posteriors, ring;
} detector_layout;


static detector_layout layout_of(const kws_model *m, const kws_detector_config *c) {
  kws_model_info info;
  kws_model_get_info(m, &info);
  detector_layout L;
  L.head = kws_align8(sizeof(kws_detector));
  L.scratch = info.batch_scratch_bytes;
  L.inputs = kws_align8(KWS_BATCH_WINDOWS * info.input_size * (size_t)(m->act_bits / 8));
  L.frames = KWS_BATCH_WINDOWS * sizeof(uint64_t);
  L.logits = KWS_BATCH_WINDOWS * 2 * sizeof(int32_t);
  L.posteriors = kws_align8(KWS_BATCH_WINDOWS * sizeof(int32_t));
  L.ring = (size_t)c->smoothing * sizeof(int32_t); /* last: no padding after it */
  return L;
}

static size_t own_bytes(const detector_layout *L) {
  return L->head + L->scratch + L->inputs + L->frames + L->logits + L->posteriors + L->ring;
}

size_t kws_detector_bytes(const kws_model *m, const kws_detector_config *c) {
  if (!m || m->graph || !config_ok(c)) return 0;
  detector_layout L = layout_of(m, c);
  return own_bytes(&L) + kws_stream_bytes(m);
}

kws_status kws_detector_init(const kws_model *m, const kws_detector_config *c, void *mem, size_t bytes,
                             kws_detector **out) {
  if (!out) return KWS_ERR_ARGUMENT;
  *out = NULL;
  if (!m || m->graph || !config_ok(c) || !mem || (uintptr_t)mem % 8 || bytes < kws_detector_bytes(m, c))
    return KWS_ERR_ARGUMENT;
  detector_layout L = layout_of(m, c);
  uint8_t *p = (uint8_t *)mem;
  memset(p, 0, kws_detector_bytes(m, c));
  kws_detector *d = (kws_detector *)p;
  d->scratch = p += L.head;
  d->inputs = p += L.scratch;
  d->step_frames = (uint64_t *)(p += L.inputs);
  d->logits = (int32_t *)(p += L.frames);
  d->posteriors = (int32_t *)(p += L.logits);
  kws_stream_init(m, p += L.posteriors, kws_stream_bytes(m), &d->stream); /* 8-byte aligned, fits: KWS_OK */
  d->ring = (int32_t *)(p + kws_stream_bytes(m)); /* a stream's bytes are a multiple of 4 */
  d->input_bytes = m->input_size * (size_t)(m->act_bits / 8);
  d->model = m;
  d->config = *c;
  *out = d;
  return KWS_OK;
}

kws_status kws_detector_create(const kws_model *m, const kws_detector_config *c, kws_detector **out) {
  if (!out) return KWS_ERR_ARGUMENT;
  *out = NULL;
  if (!m || m->graph || !config_ok(c)) return KWS_ERR_ARGUMENT;
  size_t bytes = kws_detector_bytes(m, c);
  void *mem = malloc(bytes);
  if (!mem) return KWS_ERR_NOMEM;
  kws_detector_init(m, c, mem, bytes, out); /* its arguments are right: KWS_OK */
  (*out)->owned = 1;
  return KWS_OK;
}

void kws_detector_free(kws_detector *d) {
  if (d && d->owned) free(d); /* its stream is in the same block */
}

void kws_detector_reset(kws_detector *d) {
  if (!d) return;
  kws_stream_reset(d->stream);
  d->frames = 0;
  d->count = d->head = d->quiet = 0;
  d->sum = 0;
}

/* Steps run once `frames` frames have been pushed: at window_frames, then every hop. */
static uint64_t steps_until(const kws_detector *d, uint64_t frames) {
  uint64_t w = (uint64_t)d->model->window_frames;
  return frames < w ? 0 : (frames - w) / (uint64_t)d->config.hop + 1;
}

size_t kws_detector_steps_for(const kws_detector *d, size_t n) {
  if (!d) return 0;
  uint64_t end = n > UINT64_MAX - d->frames ? UINT64_MAX : d->frames + n; /* push refuses the overflow */
  return (size_t)(steps_until(d, end) - steps_until(d, d->frames)); /* <= n, so it fits */
}

/* The decisions of one step, after its model run (logits, posterior p); its results go to slot k of out. */
static void decide(kws_detector *d, const int32_t *logits, int32_t p, uint64_t frame, kws_detector_steps *out,
                   size_t k) {
  const kws_detector_config *c = &d->config;
  if (d->count == c->smoothing)
    d->sum -= d->ring[d->head];
  else
    d->count++;
  d->ring[d->head] = p;
  d->sum += p;
  d->head = (d->head + 1) % c->smoothing;
  /* Non-negative terms: C's truncating division is the floor of the spec. */
  int32_t s = (int32_t)((d->sum + d->count / 2) / d->count);
  /* quiet counts down the lockout: after a detection at t, steps t+1..t+lockout cannot fire. */
  int fired = d->quiet == 0 && s >= c->threshold_q16;
  if (fired)
    d->quiet = c->lockout;
  else if (d->quiet > 0)
    d->quiet--;
  if (out) {
    if (out->frame) out->frame[k] = frame;
    if (out->logits) out->logits[2 * k] = logits[0], out->logits[2 * k + 1] = logits[1];
    if (out->posterior_q16) out->posterior_q16[k] = p;
    if (out->smoothed_q16) out->smoothed_q16[k] = s;
    if (out->fired) out->fired[k] = (uint8_t)fired;
  }
}

/* Run the model on the `pending` gathered windows in one batch, then decide their
 * steps in order; their results go to slots k.. of out. */
static kws_status run_pending(kws_detector *d, size_t pending, kws_detector_steps *out, size_t k) {
  kws_status st = kws_model_infer_batch_q(d->model, d->inputs, pending, d->scratch, d->logits, d->posteriors);
  if (st != KWS_OK) return st;
  for (size_t i = 0; i < pending; i++)
    decide(d, d->logits + 2 * i, d->posteriors[i], d->step_frames[i], out, k + i);
  return KWS_OK;
}

kws_status kws_detector_push(kws_detector *d, const float *frames, size_t n, kws_detector_steps *out,
                             size_t *num_steps) {
  if (num_steps) *num_steps = 0;
  if (!d || (n && !frames) || n > UINT64_MAX - d->frames) return KWS_ERR_ARGUMENT;
  if (out && out->capacity < kws_detector_steps_for(d, n)) return KWS_ERR_ARGUMENT;
  uint64_t w = (uint64_t)d->model->window_frames, hop = (uint64_t)d->config.hop;
  size_t dim = (size_t)d->model->feature_dim, done = 0, k = 0, pending = 0;
  while (done < n) {
    /* Push up to the frame that completes the next step's window; the ring will
     * overwrite that window, so gather it now and run the model on a batch of them
     * (the steps of a big push share each layer's kernel calls). */
    uint64_t to_step = d->frames < w ? w - d->frames : hop - (d->frames - w) % hop;
    size_t chunk = to_step < n - done ? (size_t)to_step : n - done;
    kws_status st = kws_stream_push(d->stream, frames + done * dim, chunk);
    if (st != KWS_OK) return st;
    done += chunk;
    d->frames += chunk;
    if (chunk == to_step) {
      kws_stream_window(d->stream, d->inputs + pending * d->input_bytes);
      d->step_frames[pending++] = d->frames - 1;
    }
    if (pending == KWS_BATCH_WINDOWS || (pending && done == n)) {
      st = run_pending(d, pending, out, k);
      if (st != KWS_OK) return st;
      k += pending;
      pending = 0;
      if (num_steps) *num_steps = k;
    }
  }
  return KWS_OK;
}
