/* The avx512-vnni backend's kernel table: avx2's, with 512-bit VPDPBUSD for int8 dense layers,
 * which also beat the avx2 4-bit and (on all but the widest layers) 1-bit kernels
 * (benchmarks/README.md). */
#if defined(__x86_64__) || defined(__i386__)
#include "../portable/portable.h"
#include "avx512.h"

const kws_kernels kws_avx512_kernels = {
    .dense_s8 = {.name = "avx512-vnni int8 panels of 64 rows x 4 K, VPDPBUSD on x + 128",
                 .code_bits = 8,
                 .packed_bytes = kws_avx512_packed_dense_s8_bytes,
                 .pack = kws_avx512_pack_dense_s8,
                 .run = kws_avx512_fully_connected_s8},
    .dense_s4 = KWS_AVX2_DENSE_S4(0),
    .dense_s1 = KWS_AVX2_DENSE_S1(0),
    KWS_AVX2_OTHER_OPS,
};

KWS_AVX512_END
#endif
