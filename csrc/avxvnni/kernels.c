/* The avx-vnni backend's kernel table: avx2's, with VPDPBUSD for int8 dense layers. */
#if defined(__x86_64__) || defined(__i386__)
#include "../portable/portable.h"
#include "avxvnni.h"

const kws_kernels kws_avxvnni_kernels = {
    .requantize_s32 = kws_avx2_requantize_s32,
    .requantize_s64 = kws_avx2_requantize_s64,
    .dense_s8 = {.name = "avx-vnni int8 panels of 64 rows x 4 K, VPDPBUSD on x + 128",
                 .code_bits = 8,
                 .packed_bytes = kws_avxvnni_packed_dense_s8_bytes,
                 .pack = kws_avxvnni_pack_dense_s8,
                 .run = kws_avxvnni_fully_connected_s8},
    .dense_s4 = {.name = "avx2 4-bit offset nibbles, panels of 32 rows x 8 K",
                 .code_bits = 4,
                 .packed_bytes = kws_avx2_packed_dense_s4_bytes,
                 .pack = kws_avx2_pack_dense_s4,
                 .run = kws_avx2_fully_connected_s4},
    .dense_s1 = {.name = "avx2 1-bit subset-sum tables, panels of 32 rows x 8 K",
                 .code_bits = 1,
                 .packed_bytes = kws_avx2_packed_dense_s1_bytes,
                 .pack = kws_avx2_pack_dense_s1,
                 .run = kws_avx2_fully_connected_s1,
                 .beats_s8 = 1},
    .fully_connected_s16 = kws_avx2_fully_connected_s16,
    .affine_s8 = kws_avx2_affine_s8,
    .affine_s16 = kws_avx2_affine_s16,
    .quantize_s8 = kws_avx2_quantize_s8,
    .quantize_s16 = kws_avx2_quantize_s16,
    .fully_connected_f32 = kws_avx2_fully_connected_f32,
    .affine_f32 = kws_portable_affine_f32,
};

KWS_AVXVNNI_END
#endif
