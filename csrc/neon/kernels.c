/* The NEON backends' kernel tables: ARMv8.0 and ARMv8.2 dot product. They differ only
 * in the int8 FULLY_CONNECTED kernel (SDOT accumulates in int32 directly, so the dot
 * product backend has no int16-accumulating one). QUANTIZE (float, once per frame) and the
 * elementwise float32 affine stay portable. */
#if defined(__aarch64__) || defined(KWS_NEON_SIMDE)
#include "../portable/portable.h"
#include "kernels.h"

const kws_kernels kws_neon_kernels = {
    kws_neon_requantize_s32,      kws_neon_requantize_s64, kws_neon_fully_connected_s8,
    kws_neon_fully_connected_s16, kws_neon_affine_s8,      kws_neon_affine_s16,
    kws_portable_quantize_s8,     kws_portable_quantize_s16,
    kws_neon_fully_connected_f32, kws_portable_affine_f32,
    NULL,                         NULL, /* weights row-major */
    kws_neon_fully_connected_s8_acc16,
    kws_neon_fully_connected_s8_nibbles, kws_portable_fully_connected_s8_signs, /* signs: portable for now */
};

const kws_kernels kws_neon_dot_kernels = {
    kws_neon_requantize_s32,      kws_neon_requantize_s64, kws_neon_dot_fully_connected_s8,
    kws_neon_fully_connected_s16, kws_neon_affine_s8,      kws_neon_affine_s16,
    kws_portable_quantize_s8,     kws_portable_quantize_s16,
    kws_neon_fully_connected_f32, kws_portable_affine_f32,
    NULL,                         NULL, /* weights row-major */
    NULL,                               /* SDOT accumulates in int32 */
    kws_neon_fully_connected_s8_nibbles, kws_portable_fully_connected_s8_signs, /* signs: portable for now */
};
#endif
