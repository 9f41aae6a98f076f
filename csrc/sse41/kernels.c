/* The sse41 backend's kernel table. */
#if defined(__x86_64__) || defined(__i386__)
#include "../portable/portable.h"

const kws_kernels kws_sse41_kernels = {
    kws_portable_requantize_s32,      kws_portable_requantize_s64, kws_portable_fully_connected_s8,
    kws_portable_fully_connected_s16, kws_portable_affine_s8,      kws_portable_affine_s16,
    kws_portable_quantize_s8,         kws_portable_quantize_s16,
};
#endif
