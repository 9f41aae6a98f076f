/* The avx2 backend's kernel table. The elementwise float32 affine stays portable. */
#if defined(__x86_64__) || defined(__i386__)
#include "../portable/portable.h"
#include "avx2.h"

const kws_kernels kws_avx2_kernels = {
    kws_avx2_requantize_s32,      kws_avx2_requantize_s64,     kws_avx2_fully_connected_s8,
    kws_avx2_fully_connected_s16, kws_avx2_affine_s8,          kws_avx2_affine_s16,
    kws_avx2_quantize_s8,         kws_avx2_quantize_s16,
    kws_avx2_fully_connected_f32, kws_portable_affine_f32,     kws_avx2_packed_dense_s8_bytes,
    kws_avx2_pack_dense_s8,       kws_avx2_fully_connected_s8_acc16,
    kws_avx2_fully_connected_s8_nibbles, kws_portable_fully_connected_s8_signs, /* signs: portable for now */
};

KWS_AVX2_END
#endif
