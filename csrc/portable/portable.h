/* Kernels of the portable C backend. */
#ifndef KWSINT_PORTABLE_H
#define KWSINT_PORTABLE_H

#include "kwsint_internal.h"

void kws_portable_requantize_s32(const int32_t *, const int32_t *, const int32_t *, size_t, int32_t *);
void kws_portable_requantize_s64(const int64_t *, const int32_t *, const int32_t *, size_t, int32_t *);
size_t kws_portable_rows_s8_bytes(size_t k, size_t n);
void kws_portable_pack_rows_s8(kws_codes codes, size_t k, size_t n, uint8_t *packed);
kws_dense_run kws_portable_fully_connected_s8;
size_t kws_portable_nibbles_bytes(size_t k, size_t n);
void kws_portable_pack_nibbles(kws_codes codes, size_t k, size_t n, uint8_t *packed);
kws_dense_run kws_portable_fully_connected_s8_nibbles;
size_t kws_portable_signs_bytes(size_t k, size_t n);
void kws_portable_pack_signs(kws_codes codes, size_t k, size_t n, uint8_t *packed);
kws_dense_run kws_portable_fully_connected_s8_signs;
void kws_portable_fully_connected_s16(const int16_t *, size_t, const int8_t *, size_t, const int64_t *,
                                      const kws_requant_params *, int16_t *);
void kws_portable_affine_s8(const int8_t *, size_t, const int8_t *, const int32_t *,
                            const kws_requant_params *, int8_t *);
void kws_portable_affine_s16(const int16_t *, size_t, const int8_t *, const int64_t *,
                             const kws_requant_params *, int16_t *);
void kws_portable_quantize_s8(const float *, size_t, float, int32_t, int8_t *);
void kws_portable_quantize_s16(const float *, size_t, float, int32_t, int16_t *);
void kws_portable_fully_connected_f32(const float *, size_t, const float *, size_t, const float *, float, float,
                                      float *);
void kws_portable_affine_f32(const float *, size_t, const float *, const float *, float *);
void kws_portable_depthwise_s8(const int8_t *x, size_t row_stride, size_t taps, size_t c, const int8_t *w,
                               const kws_epilogue *e, int8_t *y);

#endif
