/* A program built against the C library alone (csrc/Makefile: libkwsint.a or .so, kwsint.h, kwsint.pc), for
 * tests/test_c_library.py: loads a dense model's blob, runs one window whose features are ((i * 37) % 101 - 50) / 8
 * (exact in float32) on BACKEND (default: the fastest this CPU has), and prints three lines:
 *   BACKEND LOGIT0 LOGIT1 POSTERIOR_Q16        the model copied (kws_model_load)
 *   bytes MODEL SCRATCH                        the memory that takes: the model's, the arena kws_model_infer needs
 *   in_place ARENA MODEL LOGIT0 LOGIT1 POSTERIOR_Q16
 *                                              the model loaded in place into an arena of kws_model_arena_bytes
 *                                              (ARENA), of which it keeps MODEL bytes, and its numbers
 * Usage: link_check BLOB [BACKEND] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kwsint.h"

static int run(const kws_model *model, int32_t out[3]) {
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
  return st == KWS_OK;
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
  int32_t r[3];
  if (!run(model, r)) return 1;
  printf("%s %ld %ld %ld\n", kws_backend_name(be), (long)r[0], (long)r[1], (long)r[2]);
  printf("bytes %lu %lu\n", (unsigned long)info.model_bytes, (unsigned long)(info.scratch_bytes + info.input_bytes));
  kws_model_free(model);

  size_t arena_bytes;
  if (kws_model_arena_bytes(data, size, be, KWS_WEIGHTS_AUTO, KWS_LOAD_IN_PLACE, &arena_bytes, &err) != KWS_OK)
    return 1;
  void *arena = malloc(arena_bytes);
  if (!arena) return 1;
  st = kws_model_load_into(data, size, be, KWS_WEIGHTS_AUTO, KWS_LOAD_IN_PLACE, arena, arena_bytes, &model, &err);
  if (st != KWS_OK || !run(model, r)) return 1;
  kws_model_get_info(model, &info);
  printf("in_place %lu %lu %ld %ld %ld\n", (unsigned long)arena_bytes, (unsigned long)info.model_bytes, (long)r[0],
         (long)r[1], (long)r[2]);
  free(arena); /* the model lived in it: nothing else to free */
  return 0;
}
