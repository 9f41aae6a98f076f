/* A program built against the C library alone (csrc/Makefile: libkwsint.a or .so, kwsint.h, kwsint.pc), for
 * tests/test_c_library.py and benchmarks/README.md: loads a model's blob on BACKEND (default: the fastest this
 * CPU has), runs it once and prints three lines:
 *   BACKEND NUMBERS                  the model copied (kws_model_load): a dense model's logits and posterior on
 *                                    the window whose features are ((i * 37) % 101 - 50) / 8 (exact in float32),
 *                                    a streaming graph's output codes on an input of codes (i * 37) % 256 - 128
 *   bytes MODEL RUN                  the memory that takes: the model's, and what running it needs besides (a
 *                                    dense model's kws_model_infer arena, a graph's kws_stream_bytes)
 *   in_place ARENA MODEL NUMBERS     the model loaded in place into an arena of kws_model_arena_bytes (ARENA), of
 *                                    which it keeps MODEL bytes, and its numbers (a graph's stream in the
 *                                    caller's memory: kws_stream_init)
 * Usage: link_check BLOB [BACKEND] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kwsint.h"

enum { MAX_OUT = 16 };

/* A streaming graph's first invoke: up to MAX_OUT output codes into out; their count, 0 on failure. */
static int invoke(const kws_model *model, int own_memory, int32_t out[MAX_OUT]) {
  kws_graph_info g;
  kws_model_graph_info(model, &g);
  size_t in_len = g.input_frames * g.input_channels, out_len = g.output_frames * g.output_channels;
  int8_t *in = malloc(in_len);
  uint8_t *codes = malloc(out_len);
  void *mem = own_memory ? malloc(kws_stream_bytes(model)) : NULL;
  kws_stream *s = NULL;
  if (!in || !codes || (own_memory && !mem)) return 0;
  for (size_t i = 0; i < in_len; i++) in[i] = (int8_t)((long)(i * 37 % 256) - 128);
  kws_status st = own_memory ? kws_stream_init(model, mem, kws_stream_bytes(model), &s) : kws_stream_create(model, &s);
  if (st != KWS_OK || kws_stream_invoke(s, in, in_len, codes, out_len) != KWS_OK) return 0;
  int n = out_len < MAX_OUT ? (int)out_len : MAX_OUT;
  for (int i = 0; i < n; i++) out[i] = g.output_uint8 ? codes[i] : (int8_t)codes[i];
  kws_stream_free(s);
  free(mem);
  free(codes);
  free(in);
  return n;
}

/* The model once: a graph's invoke, or a dense model's window (logits and posterior); the numbers' count. */
static int run(const kws_model *model, int own_memory, int32_t out[MAX_OUT]) {
  if (kws_model_kind(model) == KWS_MODEL_GRAPH) return invoke(model, own_memory, out);
  kws_model_info info;
  kws_model_get_info(model, &info);
  size_t n = (size_t)info.window_frames * (size_t)info.feature_dim;
  float *window = malloc(n * sizeof *window);
  void *scratch = malloc(info.scratch_bytes + info.input_bytes); /* malloc aligns for any type: >= 8 */
  if (!window || !scratch) return 0;
  for (size_t i = 0; i < n; i++) window[i] = (float)((long)(i * 37 % 101) - 50) / 8.0f;
  kws_status st = kws_model_infer(model, window, scratch, out, &out[2]);
  free(window);
  free(scratch);
  return st == KWS_OK ? 3 : 0;
}

static void print_numbers(const int32_t *v, int n) {
  for (int i = 0; i < n; i++) printf(" %ld", (long)v[i]);
  printf("\n");
}

int main(int argc, char **argv) {
  if (argc != 2 && argc != 3) {
    fprintf(stderr, "usage: link_check BLOB [BACKEND]\n");
    return 2;
  }
  FILE *f = fopen(argv[1], "rb");
  if (!f) {
    perror(argv[1]);
    return 1;
  }
  static unsigned char data[1 << 22];
  size_t size = fread(data, 1, sizeof data, f);
  fclose(f);
  const kws_backend *be = NULL; /* the first usable backend is the fastest */
  if (argc == 3 && kws_backend_find(argv[2], &be) != KWS_OK) {
    fprintf(stderr, "%s: no such backend\n", argv[2]);
    return 2;
  }
  for (int i = 0; i < kws_backend_count() && !be; i++)
    if (kws_backend_usable(kws_backend_at(i))) be = kws_backend_at(i);
  kws_model *model = NULL;
  kws_load_error err;
  kws_status st = kws_model_load(data, size, be, &model, &err);
  if (st != KWS_OK) {
    fprintf(stderr, "%s: not loaded (status %d)\n", argv[1], (int)st);
    return 1;
  }
  kws_model_info info;
  kws_model_get_info(model, &info);
  int32_t r[MAX_OUT];
  int n = run(model, 0, r);
  if (!n) return 1;
  printf("%s", kws_backend_name(be));
  print_numbers(r, n);
  size_t running = kws_model_kind(model) == KWS_MODEL_GRAPH ? kws_stream_bytes(model)
                                                           : info.scratch_bytes + info.input_bytes;
  printf("bytes %lu %lu\n", (unsigned long)info.model_bytes, (unsigned long)running);
  kws_model_free(model);

  size_t arena_bytes;
  if (kws_model_arena_bytes(data, size, be, KWS_WEIGHTS_AUTO, KWS_LOAD_IN_PLACE, &arena_bytes, &err) != KWS_OK)
    return 1;
  void *arena = malloc(arena_bytes);
  if (!arena) return 1;
  st = kws_model_load_into(data, size, be, KWS_WEIGHTS_AUTO, KWS_LOAD_IN_PLACE, arena, arena_bytes, &model, &err);
  if (st != KWS_OK || !(n = run(model, 1, r))) return 1;
  kws_model_get_info(model, &info);
  printf("in_place %lu %lu", (unsigned long)arena_bytes, (unsigned long)info.model_bytes);
  print_numbers(r, n);
  free(arena); /* the model lived in it: nothing else to free */
  return 0;
}
