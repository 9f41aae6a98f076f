/* CRC-32 (IEEE 802.3, reflected, as zlib's crc32), bytewise without a table:
 * blobs are checked once at load, so size beats speed here. */
#include "kwsint_internal.h"

uint32_t kws_crc32(const uint8_t *data, size_t n) {
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) {
    crc ^= data[i];
    for (int b = 0; b < 8; b++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}
