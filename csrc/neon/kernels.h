/* The NEON kernels (the .c files of csrc/neon); kernels.c puts them in the backends' tables. */
#ifndef KWSINT_NEON_KERNELS_H
#define KWSINT_NEON_KERNELS_H

#include "../kwsint_internal.h"

void kws_neon_requantize_s32(const int32_t *acc, const int32_t *mult, const int32_t *shift, size_t n,
                             int32_t *out);
void kws_neon_requantize_s64(const int64_t *acc, const int32_t *mult, const int32_t *shift, size_t n,
                             int32_t *out);
/* One input vector each; the kws_dense_run entries (kws_neon_run_*) loop over the batch. */
void kws_neon_fully_connected_s8(const int8_t *x, size_t k, const int8_t *w, size_t n, const kws_epilogue *e,
                                 int8_t *y);
void kws_neon_fully_connected_s8_acc16(const int8_t *x, size_t k, const int8_t *w, size_t n,
                                       const kws_epilogue *e, int log2_block, int8_t *y);
kws_dense_run kws_neon_run_s8;
/* 4-bit codes (s4.h's layout; the SDOT kernel below shares it) and 1-bit codes (LUT). */
size_t kws_neon_s4_bytes(size_t k, size_t n);
void kws_neon_pack_s4(kws_codes codes, size_t k, size_t n, uint8_t *packed);
size_t kws_neon_s1_bytes(size_t k, size_t n);
void kws_neon_pack_s1(kws_codes codes, size_t k, size_t n, uint8_t *packed);
kws_dense_run kws_neon_run_s4, kws_neon_run_s1;
enum { KWS_NEON_ACC16_MIN_LOG2 = 7 }; /* kws_neon_run_s8 sums in int16 over proven blocks this long or longer */
/* ARMv8.2 SDOT: call only where backends.c finds that the CPU has it. */
void kws_neon_dot_fully_connected_s8(const int8_t *x, size_t k, const int8_t *w, size_t n, const kws_epilogue *e,
                                     int8_t *y);
kws_dense_run kws_neon_dot_run_s8, kws_neon_dot_run_s4;
void kws_neon_fully_connected_s16(const int16_t *x, size_t k, const int8_t *w, size_t n, const int64_t *bias,
                                  const kws_requant_params *p, int16_t *y);
void kws_neon_fully_connected_f32(const float *x, size_t k, const float *w, size_t n, const float *bias,
                                  float act_min, float act_max, float *y);
void kws_neon_affine_s8(const int8_t *x, size_t n, const int8_t *w, const int32_t *bias,
                        const kws_requant_params *p, int8_t *y);
void kws_neon_affine_s16(const int16_t *x, size_t n, const int8_t *w, const int64_t *bias,
                         const kws_requant_params *p, int16_t *y);
void kws_neon_depthwise_s8(const int8_t *x, size_t row_stride, size_t taps, size_t c, const int8_t *w,
                           const kws_epilogue *e, int8_t *y);
void kws_neon_depthwise_s8_acc16(const int8_t *x, size_t row_stride, size_t taps, size_t c, const int8_t *w,
                                 const kws_epilogue *e, int8_t *y);

#endif
