/* kwsint's benchmark hooks: counter-timed loops over the public calls of kwsint.h, so a benchmark
 * measures the engine with no caller (Python) in the loop. Not part of the product API: the library
 * builds them in, but csrc/Makefile installs kwsint.h alone. */
#ifndef KWSINT_BENCH_H
#define KWSINT_BENCH_H

#include "kwsint.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A free-running counter: the time-stamp counter (rdtsc, constant rate, not
 * core clock cycles) on x86, the virtual counter (cntvct_el0) on aarch64, 0
 * elsewhere. For benchmarks. */
uint64_t kws_cycle_counter(void);

/* Run kws_model_infer_q `repeats` times on one input and return the counter
 * ticks they took in *ticks (for benchmarks: no Python in the loop). */
kws_status kws_model_time_infer_q(const kws_model *model, const void *input, void *scratch, uint32_t repeats,
                                  uint64_t *ticks);
/* The same loops over kws_model_infer and kws_float_model_infer (a raw window). */
kws_status kws_model_time_infer(const kws_model *model, const float *window, void *scratch, uint32_t repeats,
                                uint64_t *ticks);
kws_status kws_float_model_time_infer(const kws_float_model *model, const float *window, void *scratch,
                                      uint32_t repeats, uint64_t *ticks);
/* Counter ticks per layer, summed over `repeats` inferences: ticks[num_layers]
 * (two counter reads per layer; each read costs some ticks). */
kws_status kws_model_time_layers(const kws_model *model, const void *input, void *scratch, uint32_t repeats,
                                 uint64_t *ticks);
kws_status kws_float_model_time_layers(const kws_float_model *model, const float *window, void *scratch,
                                       uint32_t repeats, uint64_t *ticks);

/* kws_stream_invoke `repeats` times on the same input (the stream's state moves on each time); the counter
 * ticks they took in *ticks (kws_cycle_counter; for benchmarks: no Python in the loop). */
kws_status kws_stream_time_invoke(kws_stream *stream, const int8_t *in, size_t in_len, void *out, size_t out_len,
                                  uint32_t repeats, uint64_t *ticks);

#ifdef __cplusplus
}
#endif
#endif /* KWSINT_BENCH_H */
