/* The avx-vnni backend: the avx2 backend with int8 dense layers on VPDPBUSD.
 *
 * AVX-VNNI (VEX-encoded VPDPBUSD on 256-bit registers: Alder Lake, Sapphire
 * Rapids, Zen 5) is enabled here on top of AVX2, for the rest of each
 * including file only; backends.c selects these kernels only on CPUs that
 * report both. Include this header after every other header and end the file
 * with KWS_AVXVNNI_END, as for avx2.h. */
#ifndef KWSINT_AVXVNNI_H
#define KWSINT_AVXVNNI_H

#include "../avx2/avx2.h"

#if defined(__x86_64__) || defined(__i386__)

#if defined(__clang__) /* replaces avx2.h's pushed target: clang applies only one */
#pragma clang attribute pop
#pragma clang attribute push(__attribute__((target("avx2,avxvnni"))), apply_to = function)
#define KWS_AVXVNNI_END _Pragma("clang attribute pop")
#else
#pragma GCC target("avx2,avxvnni")
#include <immintrin.h>
#define KWS_AVXVNNI_END KWS_AVX2_END
#endif

size_t kws_avxvnni_packed_dense_s8_bytes(size_t k, size_t n);
void kws_avxvnni_pack_dense_s8(kws_codes w, size_t k, size_t n, uint8_t *packed);
kws_dense_run kws_avxvnni_fully_connected_s8; /* dense.h: 8-row blocks, x + 128 against w by VPDPBUSD */

#endif /* x86 */
#endif
