/* The avx-vnni backend's kernel table: avx2's, with VPDPBUSD for int8 dense layers. Its 4-bit
 * layers run faster on VPDPBUSD in int8 containers than on the avx2 4-bit kernel; its 1-bit ones
 * do not (benchmarks/README.md). */
#if defined(__x86_64__) || defined(__i386__)
#include "../portable/portable.h"
#include "avxvnni.h"

const kws_kernels kws_avxvnni_kernels = {
    .dense_s8 = {.name = "avx-vnni int8 panels of 64 rows x 4 K, VPDPBUSD on x + 128",
                 .code_bits = 8,
                 .packed_bytes = kws_avxvnni_packed_dense_s8_bytes,
                 .pack = kws_avxvnni_pack_dense_s8,
                 .run = kws_avxvnni_fully_connected_s8},
    .dense_s4 = KWS_AVX2_DENSE_S4(0),
    .dense_s1 = KWS_AVX2_DENSE_S1(1),
    KWS_AVX2_OTHER_OPS,
};

KWS_AVXVNNI_END
#endif
