/* The NEON backends' kernel tables: ARMv8.0 and ARMv8.2 dot product. They differ only
 * in the int8 and 4-bit FULLY_CONNECTED kernels (SDOT accumulates in int32 directly, so the
 * dot product backend sums in int32 whatever block is proven); the 1-bit kernel multiplies
 * nothing and is shared. QUANTIZE (float, once per frame) and the elementwise float32
 * affine stay portable. The packed kernels' beats_s8 rests on LLVM's scheduling models
 * (llvm-mca on their compiled K loops against the int8 ones: a projection, no Arm core
 * was measured). int8 weights are row-major; the packed layouts are in s4.h and
 * fully_connected_s1.c.
 *
 * 32-bit Arm (ARMv7-A NEON, __arm__) has the neon table without its float32 kernel (fully_connected_f32.c
 * says why: that slot holds the portable kernel) and no dot product table. */
#if defined(__ARM_NEON) || defined(KWS_NEON_SIMDE)
#include "../portable/portable.h"
#include "kernels.h"

#if defined(__aarch64__) || defined(KWS_NEON_SIMDE)
#define NEON_F32 kws_neon_fully_connected_f32
#else
#define NEON_F32 kws_portable_fully_connected_f32
#endif

const kws_kernels kws_neon_kernels = {
    .requantize_s32 = kws_neon_requantize_s32,
    .requantize_s64 = kws_neon_requantize_s64,
    .dense_s8 = {.name = "neon int8 rows",
                 .code_bits = 8,
                 .packed_bytes = kws_portable_rows_s8_bytes,
                 .pack = kws_portable_pack_rows_s8,
                 .blob_bits = 8,
                 .run = kws_neon_run_s8,
                 .acc16 = KWS_NEON_ACC16_MIN_LOG2},
    .dense_s4 = {.name = "neon 4-bit offset rows (SMLAL)",
                 .code_bits = 4,
                 .packed_bytes = kws_neon_s4_bytes,
                 .pack = kws_neon_pack_s4,
                 .run = kws_neon_run_s4,
                 .beats_s8 = 1},
    /* beats_s8: the 4-bit kernel, in 16-row groups of 8-row passes as the int8 kernel, is projected
     * faster than it on M4 on Cortex-A53 and A55 (benchmarks/mca/project.py); the 1-bit kernel is
     * not, on M6 (the int16-block int8 kernel wins), so its slot keeps 0. */
    .dense_s1 = {.name = "neon 1-bit sign rows (TBL subset sums)",
                 .code_bits = 1,
                 .packed_bytes = kws_neon_s1_bytes,
                 .pack = kws_neon_pack_s1,
                 .run = kws_neon_run_s1},
    .fully_connected_s16 = kws_neon_fully_connected_s16,
    .affine_s8 = kws_neon_affine_s8,
    .affine_s16 = kws_neon_affine_s16,
    .quantize_s8 = kws_portable_quantize_s8,
    .quantize_s16 = kws_portable_quantize_s16,
    .fully_connected_f32 = NEON_F32,
    .affine_f32 = kws_portable_affine_f32,
    .depthwise_s8 = kws_neon_depthwise_s8,
    .depthwise_s8_acc16 = kws_neon_depthwise_s8_acc16,
};

#if defined(__aarch64__) || defined(KWS_NEON_SIMDE)
const kws_kernels kws_neon_dot_kernels = {
    .requantize_s32 = kws_neon_requantize_s32,
    .requantize_s64 = kws_neon_requantize_s64,
    .dense_s8 = {.name = "neon-dotprod int8 rows (SDOT)",
                 .code_bits = 8,
                 .packed_bytes = kws_portable_rows_s8_bytes,
                 .pack = kws_portable_pack_rows_s8,
                 .blob_bits = 8,
                 .run = kws_neon_dot_run_s8},
    .dense_s4 = {.name = "neon-dotprod 4-bit offset rows (SDOT)",
                 .code_bits = 4,
                 .packed_bytes = kws_neon_s4_bytes,
                 .pack = kws_neon_pack_s4,
                 .run = kws_neon_dot_run_s4,
                 .beats_s8 = 1},
    .dense_s1 = {.name = "neon 1-bit sign rows (TBL subset sums)",
                 .code_bits = 1,
                 .packed_bytes = kws_neon_s1_bytes,
                 .pack = kws_neon_pack_s1,
                 .run = kws_neon_run_s1,
                 .beats_s8 = 1},
    .fully_connected_s16 = kws_neon_fully_connected_s16,
    .affine_s8 = kws_neon_affine_s8,
    .affine_s16 = kws_neon_affine_s16,
    .quantize_s8 = kws_portable_quantize_s8,
    .quantize_s16 = kws_portable_quantize_s16,
    .fully_connected_f32 = kws_neon_fully_connected_f32,
    .affine_f32 = kws_portable_affine_f32,
    .depthwise_s8 = kws_neon_depthwise_s8,
    .depthwise_s8_acc16 = kws_neon_depthwise_s8_acc16,
};
#endif
#endif
