/* The avx2 backend's kernel table. */
#if defined(__x86_64__) || defined(__i386__)
#include "../portable/portable.h"
#include "avx2.h"

const kws_kernels kws_avx2_kernels = {
    .dense_s8 = {.name = "avx2 int8 panels of 64 rows x 4 K",
                 .code_bits = 8,
                 .packed_bytes = kws_avx2_packed_dense_s8_bytes,
                 .pack = kws_avx2_pack_dense_s8,
                 .run = kws_avx2_fully_connected_s8,
                 .acc16 = KWS_ACC16_MIN_LOG2},
    .dense_s4 = KWS_AVX2_DENSE_S4(1),
    .dense_s1 = KWS_AVX2_DENSE_S1(1),
    KWS_AVX2_OTHER_OPS,
};

KWS_AVX2_END
#endif
