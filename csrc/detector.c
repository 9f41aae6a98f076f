/* Streaming detection over a stream: a model step every hop frames, the moving
 * average of the last W posteriors, threshold and lockout (docs/arithmetic.md
 * section 8, "Detection"; kwsint.reference.detect_stream in numpy). Scalar
 * integer code shared by every backend, so every backend makes the same
 * decisions. Nothing is allocated after create. */
#include <stdlib.h>

#include "kwsint_internal.h"

struct kws_detector {
  const kws_model *model;
  kws_stream *stream;
  kws_detector_config config;
  uint64_t frames; /* pushed since reset */
  int count;       /* posteriors in the ring, at most smoothing */
  int head;        /* ring slot of the next posterior */
  int quiet;       /* steps that still cannot fire after a detection */
  int64_t sum;     /* of the posteriors in the ring */
  int32_t ring[];  /* smoothing posteriors */
};

static int config_ok(const kws_detector_config *c) {
  return c && c->hop >= 1 && c->smoothing >= 1 && c->smoothing <= KWS_MAX_SMOOTHING && c->threshold_q16 >= 0 &&
         c->threshold_q16 <= 65536 && c->lockout >= 0;
}

static size_t own_bytes(const kws_detector_config *c) {
  return sizeof(kws_detector) + (size_t)c->smoothing * sizeof(int32_t);
}

size_t kws_detector_bytes(const kws_model *m, const kws_detector_config *c) {
  return m && config_ok(c) ? own_bytes(c) + kws_stream_bytes(m) : 0;
}

kws_status kws_detector_create(const kws_model *m, const kws_detector_config *c, kws_detector **out) {
  if (!out) return KWS_ERR_ARGUMENT;
  *out = NULL;
  if (!m || !config_ok(c)) return KWS_ERR_ARGUMENT;
  kws_detector *d = (kws_detector *)calloc(1, own_bytes(c));
  if (!d) return KWS_ERR_NOMEM;
  kws_status st = kws_stream_create(m, &d->stream);
  if (st != KWS_OK) {
    free(d);
    return st;
  }
  d->model = m;
  d->config = *c;
  *out = d;
  return KWS_OK;
}

void kws_detector_free(kws_detector *d) {
  if (!d) return;
  kws_stream_free(d->stream);
  free(d);
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

/* One step on the stream's newest window; its results go to slot k of out. */
static kws_status step(kws_detector *d, kws_detector_steps *out, size_t k) {
  int32_t logits[2], p;
  kws_status st = kws_stream_infer(d->stream, logits, &p);
  if (st != KWS_OK) return st;
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
    if (out->frame) out->frame[k] = d->frames - 1;
    if (out->logits) out->logits[2 * k] = logits[0], out->logits[2 * k + 1] = logits[1];
    if (out->posterior_q16) out->posterior_q16[k] = p;
    if (out->smoothed_q16) out->smoothed_q16[k] = s;
    if (out->fired) out->fired[k] = (uint8_t)fired;
  }
  return KWS_OK;
}

kws_status kws_detector_push(kws_detector *d, const float *frames, size_t n, kws_detector_steps *out,
                             size_t *num_steps) {
  if (num_steps) *num_steps = 0;
  if (!d || (n && !frames) || n > UINT64_MAX - d->frames) return KWS_ERR_ARGUMENT;
  if (out && out->capacity < kws_detector_steps_for(d, n)) return KWS_ERR_ARGUMENT;
  uint64_t w = (uint64_t)d->model->window_frames, hop = (uint64_t)d->config.hop;
  size_t dim = (size_t)d->model->feature_dim, done = 0, k = 0;
  while (done < n) {
    /* Push up to the frame that completes the next step's window, then step. */
    uint64_t to_step = d->frames < w ? w - d->frames : hop - (d->frames - w) % hop;
    size_t chunk = to_step < n - done ? (size_t)to_step : n - done;
    kws_status st = kws_stream_push(d->stream, frames + done * dim, chunk);
    if (st != KWS_OK) return st;
    done += chunk;
    d->frames += chunk;
    if (chunk == to_step) {
      st = step(d, out, k);
      if (st != KWS_OK) return st;
      k++;
      if (num_steps) *num_steps = k;
    }
  }
  return KWS_OK;
}
