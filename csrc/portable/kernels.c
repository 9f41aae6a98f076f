/* The portable backend's kernel table: plain C, the same loops as TFLM's reference kernels. */
#include "portable.h"

const kws_kernels kws_portable_kernels = {
    kws_portable_requantize_s32,      kws_portable_requantize_s64, kws_portable_fully_connected_s8,
    kws_portable_fully_connected_s16, kws_portable_affine_s8,      kws_portable_affine_s16,
    kws_portable_quantize_s8,         kws_portable_quantize_s16,   kws_portable_fully_connected_f32,
    kws_portable_affine_f32,
    NULL, NULL, NULL, /* weights row-major; int32 accumulation only */
    kws_portable_fully_connected_s8_nibbles, kws_portable_fully_connected_s8_signs,
};
