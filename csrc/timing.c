/* Counters for benchmarks. */
#include "kwsint_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

uint64_t kws_cycle_counter(void) {
#if defined(__x86_64__) || defined(__i386__)
  return __rdtsc();
#elif defined(__aarch64__)
  uint64_t v;
  __asm__ volatile("isb; mrs %0, cntvct_el0" : "=r"(v));
  return v;
#else
  return 0;
#endif
}

kws_status kws_model_time_infer_q(const kws_model *m, const void *input, void *scratch, uint32_t repeats,
                                  uint64_t *ticks) {
  if (!m || !input || !scratch || !ticks) return KWS_ERR_ARGUMENT;
  int32_t logits[2], post;
  uint64_t start = kws_cycle_counter();
  for (uint32_t r = 0; r < repeats; r++) {
    kws_status st = kws_model_infer_q(m, input, scratch, logits, &post);
    if (st != KWS_OK) return st;
  }
  *ticks = kws_cycle_counter() - start;
  return KWS_OK;
}

kws_status kws_stream_time_invoke(kws_stream *s, const int8_t *in, size_t in_len, void *out, size_t out_len,
                                  uint32_t repeats, uint64_t *ticks) {
  if (!ticks) return KWS_ERR_ARGUMENT;
  kws_status st = kws_stream_invoke(s, in, in_len, out, out_len); /* checks the arguments once */
  if (st != KWS_OK) return st;
  uint64_t start = kws_cycle_counter();
  for (uint32_t r = 0; r < repeats; r++) kws_stream_invoke(s, in, in_len, out, out_len);
  *ticks = kws_cycle_counter() - start;
  return KWS_OK;
}

kws_status kws_model_time_infer(const kws_model *m, const float *window, void *scratch, uint32_t repeats,
                                uint64_t *ticks) {
  if (!ticks) return KWS_ERR_ARGUMENT;
  int32_t logits[2], post;
  uint64_t start = kws_cycle_counter();
  for (uint32_t r = 0; r < repeats; r++) {
    kws_status st = kws_model_infer(m, window, scratch, logits, &post);
    if (st != KWS_OK) return st;
  }
  *ticks = kws_cycle_counter() - start;
  return KWS_OK;
}
