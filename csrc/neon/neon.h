/* NEON intrinsics: the real arm_neon.h on aarch64 and on 32-bit Arm with NEON
 * (ARMv7-A, with the AArch64-only intrinsics the kernels use written for it in
 * a32.h), SIMDe's implementation of the same intrinsics elsewhere (the
 * neon-simde backends, for testing). */
#ifndef KWSINT_NEON_H
#define KWSINT_NEON_H

#if defined(__aarch64__)
#include <arm_neon.h>
#if defined(__clang__) /* apart: a GCC without __has_builtin (before 10) could not parse the line below */
#if !defined(__ARM_FEATURE_DOTPROD) && __has_builtin(__builtin_neon_vdotq_v)
/* Clang 14's arm_neon.h declares vdotq_s32 only when the whole translation unit targets the dot product; the
 * SDOT files enable it per function (target("dotprod")), so they call the builtin behind it as that header
 * does (34: its type code for int32x4). Clangs whose header declares it anyway get the same instruction. */
__attribute__((target("dotprod"))) static inline int32x4_t kws_vdotq_s32(int32x4_t acc, int8x16_t a, int8x16_t b) {
  return (int32x4_t)__builtin_neon_vdotq_v((int8x16_t)acc, a, b, 34);
}
#define vdotq_s32 kws_vdotq_s32
#endif
#endif
#elif defined(__arm__) && defined(__ARM_NEON)
#include <arm_neon.h>
#include "a32.h"
#elif defined(KWS_NEON_SIMDE)
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/arm/neon.h>
#else
#error "csrc/neon needs NEON (aarch64, or 32-bit Arm with -mfpu=neon) or SIMDe (KWS_NEON_SIMDE)"
#endif

#include "../kwsint_internal.h"

#if defined(KWS_NEON_SIMDE) && !defined(__ARM_NEON)
/* SIMDe (0.7.4, Debian's libsimde-dev) emulates three of the intrinsics the
 * kernels rely on differently from the hardware (Arm ARM pseudocode):
 *  - vqrdmulhq_s32 computes (2ab + 2^31) >> 32 without saturating, so
 *    SQRDMULH(INT32_MIN, INT32_MIN) comes out INT32_MIN instead of INT32_MAX
 *    (and the doubling overflows int64 there);
 *  - vrshlq_s32 with a negative shift -n adds the rounding constant 2^(n-1) in
 *    int32, which overflows for a > INT32_MAX - 2^(n-1); SRSHL rounds in
 *    wider precision and never overflows;
 *  - vshlq_s32 left-shifts negative int32 values in C, which is undefined
 *    behaviour (UBSan reports it); SSHL simply drops the bits shifted out.
 * Here all three are replaced by lane loops that follow the Arm pseudocode, so the
 * emulated kernels compute what the real instructions compute. Native builds
 * never see this. */
static inline int32x4_t kws_simde_vqrdmulhq_s32(int32x4_t a, int32x4_t b) {
  int32_t av[4], bv[4], r[4];
  vst1q_s32(av, a);
  vst1q_s32(bv, b);
  for (int i = 0; i < 4; i++) {
    /* SQRDMULH: saturate((2ab + 2^31) >> 32) == (ab + 2^30) >> 31 with the only overflow at -2^31 * -2^31 */
    int64_t ab = (int64_t)av[i] * (int64_t)bv[i];
    r[i] = (av[i] == INT32_MIN && bv[i] == INT32_MIN) ? INT32_MAX : (int32_t)((ab + ((int64_t)1 << 30)) >> 31);
  }
  return vld1q_s32(r);
}

static inline int32x4_t kws_simde_vrshlq_s32(int32x4_t a, int32x4_t b) {
  int32_t av[4], bv[4], r[4];
  vst1q_s32(av, a);
  vst1q_s32(bv, b);
  for (int i = 0; i < 4; i++) {
    int s = (int8_t)(bv[i] & 0xFF); /* SRSHL uses the low byte, signed */
    if (s >= 32) {
      r[i] = 0;
    } else if (s >= 0) {
      uint32_t u = (uint32_t)av[i] << s; /* bits shifted out are lost */
      r[i] = u <= (uint32_t)INT32_MAX ? (int32_t)u : (int32_t)(u - 0x80000000u) + INT32_MIN;
    } else {
      int n = -s > 63 ? 63 : -s; /* (a + 2^(n-1)) >> n in int64: exact, 0 for n >= 32 */
      r[i] = (int32_t)(((int64_t)av[i] + ((int64_t)1 << (n - 1))) >> n);
    }
  }
  return vld1q_s32(r);
}

static inline int32x4_t kws_simde_vshlq_s32(int32x4_t a, int32x4_t b) {
  int32_t av[4], bv[4], r[4];
  vst1q_s32(av, a);
  vst1q_s32(bv, b);
  for (int i = 0; i < 4; i++) {
    int s = (int8_t)(bv[i] & 0xFF); /* SSHL uses the low byte, signed */
    if (s >= 32) {
      r[i] = 0;
    } else if (s >= 0) {
      uint32_t u = (uint32_t)av[i] << s;
      r[i] = u <= (uint32_t)INT32_MAX ? (int32_t)u : (int32_t)(u - 0x80000000u) + INT32_MIN;
    } else {
      r[i] = av[i] >> (-s > 31 ? 31 : -s); /* arithmetic: sign fill */
    }
  }
  return vld1q_s32(r);
}

#undef vshlq_s32
#define vshlq_s32(a, b) kws_simde_vshlq_s32((a), (b))
#undef vqrdmulhq_s32
#define vqrdmulhq_s32(a, b) kws_simde_vqrdmulhq_s32((a), (b))
#undef vrshlq_s32
#define vrshlq_s32(a, b) kws_simde_vrshlq_s32((a), (b))
#endif

#endif
