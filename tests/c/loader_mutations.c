/* Loads every single-byte mutation (checksum refreshed), every truncation of a
 * blob, and every truncation whose header agrees with it (payload_bytes and
 * checksum rewritten, so the field parser itself meets the end of the data),
 * and runs inference, a stream and a detector on whatever loads. Built with
 * AddressSanitizer and UBSan by tests/test_c_sanitized.py: any out-of-bounds
 * read, leak or undefined behaviour aborts the run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kwsint_internal.h"

static void set_u32(uint8_t *p, uint32_t v) {
  for (int b = 0; b < 4; b++) p[b] = (uint8_t)(v >> (8 * b));
}

static int exercise(const uint8_t *blob, size_t size, const kws_backend *be) {
  kws_model *m = NULL;
  kws_load_error err;
  if (kws_model_load(blob, size, be, &m, &err) != KWS_OK) return 0;
  kws_model_info info;
  kws_model_get_info(m, &info);
  size_t elem = info.act_bits == 8 ? 1 : 2;
  void *input = calloc(info.input_size, elem);
  void *scratch = malloc(info.scratch_bytes);
  float *frames = calloc((size_t)info.window_frames * (size_t)info.feature_dim, sizeof(float));
  int32_t logits[2], post;
  kws_model_infer_q(m, input, scratch, logits, &post);
  kws_model_quantize_window(m, frames, input);
  kws_stream *s = NULL;
  if (kws_stream_create(m, &s) == KWS_OK) {
    kws_stream_push(s, frames, (size_t)info.window_frames);
    kws_stream_infer(s, logits, &post);
    kws_stream_free(s);
  }
  kws_detector_config config = {2, 3, 32768, 1};
  kws_detector *d = NULL;
  if (kws_detector_create(m, &config, &d) == KWS_OK) {
    size_t n = (size_t)info.window_frames, steps = kws_detector_steps_for(d, n);
    int32_t *step_logits = malloc(steps * 8 + 1); /* exact size (+1: malloc(0)) */
    kws_detector_steps out = {steps, NULL, step_logits, NULL, NULL, NULL};
    kws_detector_push(d, frames, n, &out, NULL);
    free(step_logits);
    kws_detector_free(d);
  }
  free(frames);
  free(scratch);
  free(input);
  kws_model_free(m);
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  FILE *f = fopen(argv[1], "rb");
  if (!f) return 2;
  static uint8_t blob[1 << 20], work[1 << 20];
  size_t size = fread(blob, 1, sizeof blob, f);
  fclose(f);
  const kws_backend *be;
  if (kws_backend_find("portable", &be) != KWS_OK) return 2;
  if (!exercise(blob, size, be)) return 3; /* the original must load */
  size_t loaded = 0, tried = 0;
  for (size_t n = 0; n < size; n++) {
    uint8_t *cut = malloc(n ? n : 1); /* exact-size buffer: ASan sees any read past n */
    memcpy(cut, blob, n);
    if (exercise(cut, n, be)) return 4; /* a truncated blob must never load */
    free(cut);
  }
  for (size_t n = 16; n < size; n++) {
    uint8_t *cut = malloc(n);
    memcpy(cut, blob, n);
    set_u32(cut + 8, (uint32_t)(n - 16));
    set_u32(cut + 12, kws_crc32(cut + 16, n - 16));
    if (exercise(cut, n, be)) return 5; /* a consistent but short payload must never load */
    free(cut);
  }
  const uint8_t values[] = {0x00, 0x01, 0x7F, 0x80, 0xFF};
  for (size_t i = 16; i < size; i++) {
    for (size_t v = 0; v < sizeof values; v++) {
      memcpy(work, blob, size);
      work[i] = values[v];
      set_u32(work + 12, kws_crc32(work + 16, size - 16));
      uint8_t *exact = malloc(size);
      memcpy(exact, work, size);
      loaded += (size_t)exercise(exact, size, be);
      tried++;
      free(exact);
    }
  }
  printf("%zu passed, 0 failed: mutations loaded %zu of %zu\n", tried + 2 * size - 16, loaded, tried);
  return 0;
}
