/* The sse4.1 backend's kernel table. QUANTIZE is float work on one 20-value
 * frame at a time and stays portable, as does the elementwise float32 affine. */
#if defined(__x86_64__) || defined(__i386__)
#include "../portable/portable.h"
#include "sse41.h"

const kws_kernels kws_sse41_kernels = {
    .requantize_s32 = kws_sse41_requantize_s32,
    .requantize_s64 = kws_sse41_requantize_s64,
    .dense_s8 = {.name = "sse4.1 int8 rows",
                 .code_bits = 8,
                 .packed_bytes = kws_portable_rows_s8_bytes,
                 .pack = kws_portable_pack_rows_s8,
                 .blob_bits = 8,
                 .run = kws_sse41_fully_connected_s8},
    .dense_s4 = {.name = "sse4.1 4-bit offset nibble rows, 32-K steps",
                 .code_bits = 4,
                 .packed_bytes = kws_portable_nibbles_bytes,
                 .pack = kws_sse41_pack_nibbles,
                 .run = kws_sse41_fully_connected_s8_nibbles,
                 .beats_s8 = 1},
    .dense_s1 = {.name = "sse4.1 1-bit sign panels of 16 rows x 8 K, table lookups",
                 .code_bits = 1,
                 .packed_bytes = kws_portable_signs_bytes,
                 .pack = kws_sse41_pack_signs,
                 .run = kws_sse41_fully_connected_s8_signs,
                 .beats_s8 = 1},
    .fully_connected_s16 = kws_sse41_fully_connected_s16,
    .affine_s8 = kws_sse41_affine_s8,
    .affine_s16 = kws_sse41_affine_s16,
    .quantize_s8 = kws_portable_quantize_s8,
    .quantize_s16 = kws_portable_quantize_s16,
    .fully_connected_f32 = kws_sse41_fully_connected_f32,
    .affine_f32 = kws_portable_affine_f32,
    .depthwise_s8 = kws_sse41_depthwise_s8,
};

KWS_SSE41_END
#endif
