/* DEPTHWISE_CONV_2D in time on SSE4.1: the sums of the portable kernel (csrc/portable/depthwise.c) for 8
 * channels at a time, then the vector epilogue (sse41.h).
 *
 * Exactness: taps go in pairs. The codes of taps k and k + 1 are sign-extended to int16 and interleaved
 * channel by channel (punpck*wd), so pmaddwd forms w[k][c] * x[k][c] + w[k+1][c] * x[k+1][c] exactly in an
 * int32 lane (each product |.| <= 127 * 128); an odd last tap pairs with zero codes. The int32 sum is the
 * portable kernel's in another order: |sum| <= 16384 * 127 * 128 < 2^28, so no addition wraps. The low
 * unpack holds channels 0-3 of the block, the high one 4-7.
 *
 * Channels: with c >= 8, a last partial block is computed as the 8 channels that end at channel c,
 * overlapping the block before it; the overlapped channels get the same inputs, so they are written again
 * with the same codes (y never overlaps x), and no load reaches past a row. With c < 8 the sums are formed
 * in scalar code and the epilogue is the scalar one. */
#include "sse41.h"

#if defined(__x86_64__) || defined(__i386__)

enum { BLOCK = 8 };

static inline __m128i codes8(const int8_t *p) { return _mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)p)); }

void kws_sse41_depthwise_s8(const int8_t *x, size_t row_stride, size_t taps, size_t c, const int8_t *w,
                            const kws_epilogue *e, int8_t *y) {
  if (c < BLOCK) {
    for (size_t i = 0; i < c; i++) {
      int32_t acc = 0;
      for (size_t k = 0; k < taps; k++) acc += (int32_t)w[k * c + i] * (int32_t)x[k * row_stride + i];
      y[i] = kws_epilogue_s8(acc, e, i);
    }
    return;
  }
  for (size_t b = 0; b < c; b += BLOCK) {
    size_t c0 = b + BLOCK <= c ? b : c - BLOCK;
    __m128i lo = _mm_setzero_si128(), hi = _mm_setzero_si128();
    size_t k = 0;
    for (; k + 2 <= taps; k += 2) {
      __m128i xa = codes8(x + k * row_stride + c0), xb = codes8(x + (k + 1) * row_stride + c0);
      __m128i wa = codes8(w + k * c + c0), wb = codes8(w + (k + 1) * c + c0);
      lo = _mm_add_epi32(lo, _mm_madd_epi16(_mm_unpacklo_epi16(xa, xb), _mm_unpacklo_epi16(wa, wb)));
      hi = _mm_add_epi32(hi, _mm_madd_epi16(_mm_unpackhi_epi16(xa, xb), _mm_unpackhi_epi16(wa, wb)));
    }
    if (k < taps) {
      const __m128i zero = _mm_setzero_si128();
      __m128i xa = codes8(x + k * row_stride + c0), wa = codes8(w + k * c + c0);
      lo = _mm_add_epi32(lo, _mm_madd_epi16(_mm_unpacklo_epi16(xa, zero), _mm_unpacklo_epi16(wa, zero)));
      hi = _mm_add_epi32(hi, _mm_madd_epi16(_mm_unpackhi_epi16(xa, zero), _mm_unpackhi_epi16(wa, zero)));
    }
    kws_sse41_store8_s8(y + c0, kws_sse41_epilogue4(lo, e, c0), kws_sse41_epilogue4(hi, e, c0 + 4));
  }
}

KWS_SSE41_END
#endif
