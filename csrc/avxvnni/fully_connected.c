/* FULLY_CONNECTED int8, AVX-VNNI: dense.h at 256 bits, 8 rows per block,
 * panels of 8 blocks, 8 accumulators, avx2's epilogue. */
#include "avxvnni.h"

#if defined(__x86_64__) || defined(__i386__)

#define VN_VEC __m256i
#define VN_ROWS 8
#define VN_PANEL 8
#define VN_ACC 8
#define VN_LOAD(p) _mm256_loadu_si256((const __m256i *)(p))
#define VN_BCAST4(p) vn_bcast4(p)
#define VN_ZERO _mm256_setzero_si256()
#define VN_ADD(a, b) _mm256_add_epi32(a, b)
#define VN_DPBUSD(acc, u, w) _mm256_dpbusd_avx_epi32(acc, u, w)
#define VN_HSUM(v) vn_hsum(v)
#define VN_EPILOGUE(acc, e, c, r, y) vn_epilogue(acc, e, c, r, y)
#define VN_NAME(x) kws_avxvnni_##x

static inline __m256i vn_bcast4(const uint8_t *p) {
  int32_t q;
  memcpy(&q, p, 4);
  return _mm256_set1_epi32(q);
}

static inline int32_t vn_hsum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  return _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1)));
}

static inline __attribute__((always_inline)) void vn_epilogue(__m256i acc, const kws_epilogue *e, size_t c, size_t r,
                                                              int8_t *y) {
  if (r == 8)
    kws_avx2_store8_s8(y, kws_avx2_epilogue8(acc, e, c));
  else
    kws_avx2_epilogue_part(acc, e, c, r, y);
}

#include "dense.h"

KWS_AVXVNNI_END
#endif
