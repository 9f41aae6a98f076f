/* NEON intrinsics: the real arm_neon.h on aarch64, SIMDe's implementation of
 * the same intrinsics elsewhere (the neon-simde backends, for testing). */
#ifndef KWSINT_NEON_H
#define KWSINT_NEON_H

#if defined(__aarch64__)
#include <arm_neon.h>
#elif defined(KWS_NEON_SIMDE)
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/arm/neon.h>
#else
#error "csrc/neon needs aarch64 or SIMDe (KWS_NEON_SIMDE)"
#endif

#include "../kwsint_internal.h"

#endif
