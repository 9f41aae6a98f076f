/* Little-endian fields of a blob (docs/format.md), read from bytes the caller has bounds-checked. */
#ifndef KWS_LITTLE_ENDIAN_H
#define KWS_LITTLE_ENDIAN_H

#include <stdint.h>
#include <string.h>

static inline uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static inline uint32_t le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Two's complement without implementation-defined conversions. */
static inline int32_t les32(const uint8_t *p) {
  uint32_t u = le32(p);
  return u <= (uint32_t)INT32_MAX ? (int32_t)u : (int32_t)(u - 0x80000000u) + INT32_MIN;
}

static inline int64_t les64(const uint8_t *p) {
  uint64_t u = (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
  return u <= (uint64_t)INT64_MAX ? (int64_t)u : (int64_t)(u - 0x8000000000000000u) + INT64_MIN;
}

static inline float lef32(const uint8_t *p) {
  uint32_t u = le32(p);
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

#endif
