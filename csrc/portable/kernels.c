/* The portable backend's kernel table: plain C, the same loops as TFLM's reference kernels. */
#include "portable.h"

const kws_kernels kws_portable_kernels = {
    .requantize_s32 = kws_portable_requantize_s32,
    .requantize_s64 = kws_portable_requantize_s64,
    .dense_s8 = {.name = "portable int8 rows",
                 .code_bits = 8,
                 .packed_bytes = kws_portable_rows_s8_bytes,
                 .pack = kws_portable_pack_rows_s8,
                 .run = kws_portable_fully_connected_s8},
    .dense_s4 = {.name = "portable 4-bit nibble rows",
                 .code_bits = 4,
                 .packed_bytes = kws_portable_nibbles_bytes,
                 .pack = kws_portable_pack_nibbles,
                 .run = kws_portable_fully_connected_s8_nibbles},
    .dense_s1 = {.name = "portable 1-bit sign rows",
                 .code_bits = 1,
                 .packed_bytes = kws_portable_signs_bytes,
                 .pack = kws_portable_pack_signs,
                 .run = kws_portable_fully_connected_s8_signs},
    .fully_connected_s16 = kws_portable_fully_connected_s16,
    .affine_s8 = kws_portable_affine_s8,
    .affine_s16 = kws_portable_affine_s16,
    .quantize_s8 = kws_portable_quantize_s8,
    .quantize_s16 = kws_portable_quantize_s16,
    .fully_connected_f32 = kws_portable_fully_connected_f32,
    .affine_f32 = kws_portable_affine_f32,
};
