/* FULLY_CONNECTED int8, AVX512-VNNI: avxvnni/dense.h at 512 bits, 16 rows per
 * block, panels of 4 blocks, 16 accumulators, the 16-lane epilogue of avx512.h. */
#include "avx512.h"

#if defined(__x86_64__) || defined(__i386__)

#define VN_VEC __m512i
#define VN_ROWS 16
#define VN_PANEL 4
#define VN_ACC 16
#define VN_LOAD(p) _mm512_loadu_si512((const void *)(p))
#define VN_BCAST4(p) vn_bcast4(p)
#define VN_ZERO _mm512_setzero_si512()
#define VN_ADD(a, b) _mm512_add_epi32(a, b)
#define VN_DPBUSD(acc, u, w) _mm512_dpbusd_epi32(acc, u, w)
#define VN_HSUM(v) _mm512_reduce_add_epi32(v)
#define VN_EPILOGUE(acc, e, c, r, y) kws_avx512_epilogue16(acc, e, c, r, y)
#define VN_NAME(x) kws_avx512_##x

static inline __m512i vn_bcast4(const uint8_t *p) {
  int32_t q;
  memcpy(&q, p, 4);
  return _mm512_set1_epi32(q);
}

#include "../avxvnni/dense.h"

KWS_AVX512_END
#endif
