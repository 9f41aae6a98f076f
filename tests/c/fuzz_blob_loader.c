/* libFuzzer target for the C blob loader (csrc/blob.c).
 *
 * Each input is loaded twice per usable backend (int8 and packed weight storage):
 * once as given, and once with payload_bytes and the payload CRC32 rewritten to
 * agree with the bytes, so that mutations reach the field checks instead of
 * stopping at the checksum. Whatever loads runs one inference on a zero window,
 * a stream and a detector (a streaming graph: invokes and a reset); everything is
 * freed (LeakSanitizer checks).
 * Whether the blob loads must not depend on the backend or the storage. Each load is
 * repeated in place into an arena of exactly kws_model_arena_bytes (and a graph's
 * stream into exactly kws_stream_bytes): the same status, and the same numbers.
 *
 * Built and run by tests/test_fuzz.py:
 *   clang -std=c11 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
 *     -ffp-contract=off [-DKWS_NEON_SIMDE=1] -Icsrc/include -Icsrc (every .c under csrc) \
 *     tests/c/fuzz_blob_loader.c -lm -o fuzz_blob_loader
 *   ./fuzz_blob_loader -max_total_time=60 tests/fuzz/corpus/blob
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kwsint_internal.h"

static void set_u32(uint8_t *p, uint32_t v) {
  for (int b = 0; b < 4; b++) p[b] = (uint8_t)(v >> (8 * b));
}

/* A streaming graph (blob kind 1): two invokes on exact-size buffers, a reset between them, from two streams
 * that must agree; the dense calls refuse it. */
static void exercise_graph(const kws_model *m) {
  kws_graph_info g;
  if (kws_model_graph_info(m, &g) != KWS_OK) abort();
  size_t in_len = g.input_frames * g.input_channels, out_len = g.output_frames * g.output_channels;
  int8_t *in = calloc(in_len, 1);
  uint8_t *out = malloc(out_len), *out2 = malloc(out_len);
  kws_stream *a = NULL, *b = NULL;
  if (kws_stream_create(m, &a) != KWS_OK || kws_stream_create(m, &b) != KWS_OK) abort();
  if (kws_stream_invoke(a, in, in_len, out, out_len) != KWS_OK) abort();
  if (kws_stream_invoke(b, in, in_len, out2, out_len) != KWS_OK || memcmp(out, out2, out_len)) abort();
  kws_stream_reset(a);
  memset(in, 127, in_len);
  if (kws_stream_invoke(a, in, in_len, out, out_len) != KWS_OK) abort();
  if (kws_stream_invoke(a, in, in_len - 1, out, out_len) != KWS_ERR_ARGUMENT) abort();
  int32_t logits[2], post;
  if (kws_stream_infer(a, logits, &post) != KWS_ERR_ARGUMENT) abort();
  if (kws_model_infer_q(m, in, out, logits, &post) != KWS_ERR_ARGUMENT) abort();
  kws_stream_free(a);
  kws_stream_free(b);
  free(out2);
  free(out);
  free(in);
}

/* One output of a model on zeros: a dense model's logits, a graph's first invoke (a stream in exactly its bytes of
 * the caller's memory when own_memory); out holds 2 int32 or the graph's output codes. */
static void zeros_output(const kws_model *m, int own_memory, void *out) {
  if (kws_model_kind(m) == KWS_MODEL_GRAPH) {
    kws_graph_info g;
    kws_model_graph_info(m, &g);
    size_t in_len = g.input_frames * g.input_channels, out_len = g.output_frames * g.output_channels;
    int8_t *in = calloc(in_len, 1);
    void *mem = own_memory ? malloc(kws_stream_bytes(m)) : NULL;
    kws_stream *s = NULL;
    kws_status st = own_memory ? kws_stream_init(m, mem, kws_stream_bytes(m), &s) : kws_stream_create(m, &s);
    if (st != KWS_OK || kws_stream_invoke(s, in, in_len, out, out_len) != KWS_OK) abort();
    kws_stream_free(s);
    free(mem);
    free(in);
    return;
  }
  kws_model_info info;
  kws_model_get_info(m, &info);
  void *input = calloc(info.input_size, info.act_bits == 8 ? 1 : 2);
  void *scratch = malloc(info.scratch_bytes);
  int32_t post;
  if (kws_model_infer_q(m, input, scratch, (int32_t *)out, &post) != KWS_OK) abort();
  free(scratch);
  free(input);
}

/* The blob loaded in place into exactly the arena the query gives, against the copying load's status st and
 * model m: the query and the load refuse what it refuses, and what loads computes the same. */
static void exercise_in_place(const uint8_t *blob, size_t size, const kws_backend *be, kws_weight_storage storage,
                              kws_status st, const kws_model *m) {
  size_t need = 0;
  kws_load_error err = {NULL, 0};
  if (kws_model_arena_bytes(blob, size, be, storage, KWS_LOAD_IN_PLACE, &need, &err) != st) abort();
  if (st != KWS_OK) return;
  void *arena = malloc(need);
  kws_model *placed = NULL;
  if (kws_model_load_into(blob, size, be, storage, KWS_LOAD_IN_PLACE, arena, need, &placed, &err) != KWS_OK) abort();
  size_t out_bytes = 8;
  kws_graph_info g;
  if (kws_model_graph_info(m, &g) == KWS_OK) out_bytes = g.output_frames * g.output_channels;
  uint8_t *want = malloc(out_bytes), *got = malloc(out_bytes);
  zeros_output(m, 0, want);
  zeros_output(placed, 1, got);
  if (memcmp(want, got, out_bytes)) abort();
  free(got);
  free(want);
  free(arena);
}

/* 1 if the blob loads (and then runs it), 0 if it is refused with a field named. */
static int exercise(const uint8_t *blob, size_t size, const kws_backend *be, kws_weight_storage storage) {
  kws_model *m = NULL;
  kws_load_error err = {NULL, 0};
  kws_status st = kws_model_load_with(blob, size, be, storage, &m, &err);
  exercise_in_place(blob, size, be, storage, st, m);
  if (st != KWS_OK) {
    /* A refusal names the field, leaves no model, and is a format error, never memory or arguments. */
    if (m != NULL || err.field == NULL || st == KWS_ERR_ARGUMENT || st == KWS_ERR_BACKEND || st == KWS_ERR_NOMEM) {
      fprintf(stderr, "bad refusal: status %d, field %s, model %p\n", (int)st, err.field ? err.field : "NULL",
              (void *)m);
      abort();
    }
    return 0;
  }
  if (kws_model_kind(m) == KWS_MODEL_GRAPH) {
    exercise_graph(m);
    kws_model_free(m);
    return 1;
  }
  kws_model_info info;
  kws_model_get_info(m, &info);
  size_t elem = info.act_bits == 8 ? 1 : 2;
  /* Exact-size buffers, so ASan sees any access past what the info promises. */
  void *input = calloc(info.input_size, elem);
  void *scratch = malloc(info.scratch_bytes + info.input_bytes + 1);
  size_t window = (size_t)info.window_frames * (size_t)info.feature_dim;
  float *frames = calloc(window, sizeof(float));
  int32_t logits[2], post, logits2[2], post2;
  if (kws_model_infer_q(m, input, scratch, logits, &post) != KWS_OK) abort();
  if (kws_model_infer(m, frames, scratch, logits2, &post2) != KWS_OK) abort();
  if (post < 0 || post > 65536 || post2 < 0 || post2 > 65536) abort();
  kws_stream *s = NULL;
  if (kws_stream_create(m, &s) != KWS_OK) abort();
  if (kws_stream_push(s, frames, (size_t)info.window_frames) != KWS_OK) abort();
  int32_t slogits[2], spost;
  if (kws_stream_infer(s, slogits, &spost) != KWS_OK) abort();
  /* A stream of zero frames is the zero window. */
  if (slogits[0] != logits2[0] || slogits[1] != logits2[1] || spost != post2) abort();
  kws_stream_free(s);
  kws_detector_config config = {2, 3, 32768, 1};
  kws_detector *d = NULL;
  if (kws_detector_create(m, &config, &d) != KWS_OK) abort();
  size_t n = (size_t)info.window_frames + 3, steps = kws_detector_steps_for(d, n);
  float *more = calloc(n * (size_t)info.feature_dim, sizeof(float));
  int32_t *step_logits = malloc(steps * 8 + 1);
  kws_detector_steps out = {steps, NULL, step_logits, NULL, NULL, NULL};
  size_t ran = 0;
  if (kws_detector_push(d, more, n, &out, &ran) != KWS_OK || ran != steps) abort();
  free(step_logits);
  free(more);
  kws_detector_free(d);
  free(frames);
  free(scratch);
  free(input);
  kws_model_free(m);
  return 1;
}

/* Loads the blob on every usable backend and storage; they must all agree. */
static void check(const uint8_t *blob, size_t size) {
  int first = -1;
  for (int b = 0; b < kws_backend_count(); b++) {
    const kws_backend *be = kws_backend_at(b);
    if (!kws_backend_usable(be)) continue;
    for (int storage = KWS_WEIGHTS_INT8; storage <= KWS_WEIGHTS_PACKED; storage++) {
      int loaded = exercise(blob, size, be, (kws_weight_storage)storage);
      if (first < 0) first = loaded;
      if (loaded != first) {
        fprintf(stderr, "backend %s storage %d: loaded %d, the first %d\n", kws_backend_name(be), storage, loaded,
                first);
        abort();
      }
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* Copies of exactly `size` bytes: the fuzzer's buffer may be larger than the input. */
  uint8_t *blob = malloc(size ? size : 1);
  if (size) memcpy(blob, data, size);
  check(blob, size);
  if (size >= 16) {
    set_u32(blob + 8, (uint32_t)(size - 16));
    set_u32(blob + 12, kws_crc32(blob + 16, size - 16));
    if (memcmp(blob, data, 16) != 0) check(blob, size);
  }
  free(blob);
  return 0;
}
