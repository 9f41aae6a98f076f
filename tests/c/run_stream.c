/* A whole model and a stream, through the public API only: what an embedding
 * application does. Run under valgrind memcheck by tests/test_valgrind.py.
 *
 *   run_stream BACKEND STORAGE BLOB FRAMES OUT HOP SMOOTHING THRESHOLD_Q16 LOCKOUT CHUNK
 *
 * STORAGE is int8 or packed. FRAMES holds raw float32 features, frame after
 * frame (feature_dim values each, little-endian). The detector is fed CHUNK
 * frames per push and writes one record per step to OUT: frame (u64),
 * logits[2], posterior_q16, smoothed_q16 (i32) and fired (u8). Every step is
 * also run again as one whole-model call (kws_model_infer on the same window):
 * the two must give the same logits and posterior, or the program fails. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kwsint.h"

static void *read_file(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  void *data = NULL;
  long end = -1;
  if (fseek(f, 0, SEEK_END) == 0 && (end = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
    data = malloc((size_t)end + 1); /* +1: malloc(0) may give NULL */
    if (data && fread(data, 1, (size_t)end, f) != (size_t)end) {
      free(data);
      data = NULL;
    }
  }
  fclose(f);
  *size = (size_t)end;
  return data;
}

static int fail(const char *what, int status) {
  fprintf(stderr, "run_stream: %s (status %d)\n", what, status);
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 11) {
    fprintf(stderr, "usage: %s BACKEND STORAGE BLOB FRAMES OUT HOP SMOOTHING THRESHOLD_Q16 LOCKOUT CHUNK\n", argv[0]);
    return 2;
  }
  const kws_backend *be = NULL;
  kws_status st = kws_backend_find(argv[1], &be);
  if (st != KWS_OK) return fail("unknown or unusable backend", st);
  kws_weight_storage storage = strcmp(argv[2], "packed") == 0 ? KWS_WEIGHTS_PACKED : KWS_WEIGHTS_INT8;
  kws_detector_config config = {atoi(argv[6]), atoi(argv[7]), (int32_t)atol(argv[8]), atoi(argv[9])};
  size_t chunk = (size_t)atol(argv[10]);
  if (chunk == 0) return fail("CHUNK must be at least 1", 0);

  size_t blob_size, frames_size;
  void *blob = read_file(argv[3], &blob_size);
  float *frames = read_file(argv[4], &frames_size);
  if (!blob || !frames) return fail("cannot read BLOB or FRAMES", 0);

  kws_model *m = NULL;
  kws_load_error err = {NULL, 0};
  st = kws_model_load_with(blob, blob_size, be, storage, &m, &err);
  free(blob); /* the model keeps copies of what it needs */
  if (st != KWS_OK) {
    fprintf(stderr, "run_stream: %s: field %s at byte %zu\n", argv[3], err.field ? err.field : "?", err.offset);
    return 1;
  }
  kws_model_info info;
  kws_model_get_info(m, &info);
  size_t dim = (size_t)info.feature_dim, window = (size_t)info.window_frames;
  if (frames_size % (dim * sizeof(float)) != 0) return fail("FRAMES is not whole frames", 0);
  size_t n = frames_size / (dim * sizeof(float));

  kws_detector *d = NULL;
  st = kws_detector_create(m, &config, &d);
  if (st != KWS_OK) return fail("kws_detector_create", st);
  size_t cap = (chunk + (size_t)config.hop - 1) / (size_t)config.hop; /* the most steps a push runs */
  /* Exactly sized arrays (+1: malloc(0)), so a write past a step is reported. */
  uint64_t *frame = malloc(cap * sizeof *frame + 1);
  int32_t *logits = malloc(cap * 2 * sizeof *logits + 1);
  int32_t *post = malloc(cap * sizeof *post + 1), *smoothed = malloc(cap * sizeof *smoothed + 1);
  uint8_t *fired = malloc(cap + 1);
  void *scratch = malloc(info.scratch_bytes + info.input_bytes);
  FILE *out = fopen(argv[5], "wb");
  if (!frame || !logits || !post || !smoothed || !fired || !scratch || !out) return fail("out of memory or OUT", 0);

  size_t steps = 0;
  for (size_t at = 0; at < n; at += chunk) {
    size_t take = n - at < chunk ? n - at : chunk, ran = 0;
    kws_detector_steps s = {cap, frame, logits, post, smoothed, fired};
    st = kws_detector_push(d, frames + at * dim, take, &s, &ran);
    if (st != KWS_OK) return fail("kws_detector_push", st);
    for (size_t i = 0; i < ran; i++) {
      int32_t again[2], again_post;
      st = kws_model_infer(m, frames + (frame[i] + 1 - window) * dim, scratch, again, &again_post);
      if (st != KWS_OK) return fail("kws_model_infer", st);
      if (again[0] != logits[2 * i] || again[1] != logits[2 * i + 1] || again_post != post[i])
        return fail("the stream and the whole-model call disagree", 0);
      fwrite(&frame[i], 8, 1, out), fwrite(&logits[2 * i], 4, 2, out), fwrite(&post[i], 4, 1, out);
      fwrite(&smoothed[i], 4, 1, out), fwrite(&fired[i], 1, 1, out);
    }
    steps += ran;
  }
  if (fclose(out) != 0) return fail("cannot write OUT", 0);
  printf("run_stream: %zu frames, %zu steps on %s (%s)\n", n, steps, argv[1], argv[2]);
  free(frame), free(logits), free(post), free(smoothed), free(fired), free(scratch), free(frames);
  kws_detector_free(d);
  kws_model_free(m);
  return 0;
}
