/* A program built against the C library alone (csrc/Makefile: libkwsint.a or .so, kwsint.h, kwsint.pc), for
 * tests/test_c_library.py: loads a dense model's blob, runs one window whose features are ((i * 37) % 101 - 50) / 8
 * (exact in float32) on the fastest backend this CPU has, and prints the backend, both logits and the posterior,
 * then the memory it used: the loaded model's bytes and the scratch arena's (what kws_model_infer needs).
 * Usage: link_check BLOB */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "kwsint.h"

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: link_check BLOB\n");
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
  size_t n = (size_t)info.window_frames * (size_t)info.feature_dim;
  float *window = malloc(n * sizeof *window);
  void *scratch = malloc(info.scratch_bytes + info.input_bytes); /* malloc aligns for any type: >= 8 */
  if (!window || !scratch) return 1;
  for (size_t i = 0; i < n; i++) window[i] = (float)((long)(i * 37 % 101) - 50) / 8.0f;
  int32_t logits[2], posterior;
  st = kws_model_infer(model, window, scratch, logits, &posterior);
  if (st != KWS_OK) return 1;
  printf("%s %ld %ld %ld\n", kws_backend_name(kws_model_backend(model)), (long)logits[0], (long)logits[1],
         (long)posterior);
  printf("bytes %lu %lu\n", (unsigned long)info.model_bytes, (unsigned long)(info.scratch_bytes + info.input_bytes));
  free(window);
  free(scratch);
  kws_model_free(model);
  return 0;
}
