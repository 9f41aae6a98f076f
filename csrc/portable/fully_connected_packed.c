/* FULLY_CONNECTED from packed sub-8-bit weights, portable C: two 4-bit two's
 * complement codes per byte (2..4-bit layers), code i of a row in the low (even i)
 * or high (odd i) 4 bits of byte i / 2, rows of (k + 1) / 2 bytes; or eight signs
 * per byte (1-bit layers), bit i % 8 of byte i / 8 set for -1 and clear for +1,
 * rows of (k + 7) / 8 bytes: add x where the bit is clear, subtract it where set.
 * The sums are the int32 sums of fully_connected.c, so the results are the same. */
#include "portable.h"

/* A 4-bit two's complement field, sign-extended without shifting a negative value. */
static int32_t nibble(unsigned v) { return (int32_t)((v & 15u) ^ 8u) - 8; }

size_t kws_portable_nibbles_bytes(size_t k, size_t n) { return n * ((k + 1) / 2); }

void kws_portable_pack_nibbles(kws_codes codes, size_t k, size_t n, uint8_t *packed) {
  size_t stride = (k + 1) / 2;
  for (size_t o = 0; o < n; o++)
    for (size_t i = 0; i < k; i++)
      packed[o * stride + i / 2] |= (uint8_t)((kws_code_at(codes, o * k + i) & 15) << (4 * (i & 1)));
}

size_t kws_portable_signs_bytes(size_t k, size_t n) { return n * ((k + 7) / 8); }

void kws_portable_pack_signs(kws_codes codes, size_t k, size_t n, uint8_t *packed) {
  size_t stride = (k + 7) / 8;
  for (size_t o = 0; o < n; o++)
    for (size_t i = 0; i < k; i++)
      packed[o * stride + i / 8] |= (uint8_t)((kws_code_at(codes, o * k + i) < 0) << (i % 8));
}

void kws_portable_fully_connected_s8_nibbles(const int8_t *x, size_t batches, size_t k, const uint8_t *w,
                                             size_t n, const kws_epilogue *e, int log2_block, int8_t *y) {
  (void)log2_block;
  size_t stride = (k + 1) / 2;
  for (size_t b = 0; b < batches; b++, x += k, y += n)
    for (size_t o = 0; o < n; o++) {
      const uint8_t *row = w + o * stride;
      int32_t acc = 0;
      size_t i = 0;
      for (; i + 2 <= k; i += 2) acc += nibble(row[i / 2]) * x[i] + nibble(row[i / 2] >> 4) * x[i + 1];
      if (i < k) acc += nibble(row[i / 2]) * x[i];
      y[o] = kws_epilogue_s8(acc, e, o);
    }
}

void kws_portable_fully_connected_s8_signs(const int8_t *x, size_t batches, size_t k, const uint8_t *w, size_t n,
                                           const kws_epilogue *e, int log2_block, int8_t *y) {
  (void)log2_block;
  size_t stride = (k + 7) / 8;
  for (size_t b = 0; b < batches; b++, x += k, y += n)
    for (size_t o = 0; o < n; o++) {
      const uint8_t *row = w + o * stride;
      int32_t acc = 0;
      for (size_t i = 0; i < k; i++) acc += (row[i / 8] >> (i % 8)) & 1 ? -(int32_t)x[i] : (int32_t)x[i];
      y[o] = kws_epilogue_s8(acc, e, o);
    }
}
