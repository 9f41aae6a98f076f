/* The dispatch table: every compiled backend, fastest first. The CPU is asked
 * at run time, so a binary built with every backend still runs on any CPU of
 * its architecture and picks the best kernels it can execute. */
#include <string.h>

#include "kwsint_internal.h"
#include "portable/portable.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static int cpu_avx2(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2");
}
/* AVX-VNNI is CPUID leaf 7, subleaf 1, EAX bit 4; it uses the YMM state AVX2's check already asks the OS about. */
static int cpu_avxvnni(void) {
  unsigned a, b, c, d;
  return cpu_avx2() && __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a >> 4 & 1);
}
static int cpu_avx512vnni(void) {
  __builtin_cpu_init();
  return cpu_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
}
static int cpu_sse41(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.1");
}
#endif

/* Whether the CPU has the ARMv8.2 dot product (SDOT), asked the way the OS answers. */
#if defined(__aarch64__) && defined(__linux__) /* Linux and Android (bionic has getauxval since API 18) */
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
static int cpu_dotprod(void) { return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0; }
#elif defined(__aarch64__) && defined(__APPLE__) /* macOS, iOS: the kernel's hw.optional sysctls */
#include <sys/sysctl.h>
static int sysctl_flag(const char *name) {
  int value = 0;
  size_t size = sizeof value;
  return sysctlbyname(name, &value, &size, NULL, 0) == 0 && value != 0;
}
/* FEAT_DotProd is Apple's documented name (macOS 12, iOS 15 on); releases before had only armv8_2_dotprod. */
static int cpu_dotprod(void) {
  return sysctl_flag("hw.optional.arm.FEAT_DotProd") || sysctl_flag("hw.optional.armv8_2_dotprod");
}
#elif defined(__aarch64__) /* no way to ask: the dot product only where the compiler was told the target has it */
#if defined(__ARM_FEATURE_DOTPROD)
static int cpu_dotprod(void) { return 1; }
#else
static int cpu_dotprod(void) { return 0; }
#endif
#endif

static int always_usable(void) { return 1; }

static const kws_backend backends[] = {
#if defined(__aarch64__)
    {"neon-dotprod", cpu_dotprod, &kws_neon_dot_kernels},
    {"neon", always_usable, &kws_neon_kernels},
#elif defined(__arm__) && defined(__ARM_NEON)
    /* 32-bit Arm built with NEON (-mfpu=neon...): the compiler may use NEON anywhere, so the library as a
     * whole needs it and so does this backend. */
    {"neon", always_usable, &kws_neon_kernels},
#endif
#if defined(__x86_64__) || defined(__i386__)
    {"avx512-vnni", cpu_avx512vnni, &kws_avx512_kernels},
    {"avx-vnni", cpu_avxvnni, &kws_avxvnni_kernels},
    {"avx2", cpu_avx2, &kws_avx2_kernels},
    {"sse4.1", cpu_sse41, &kws_sse41_kernels},
#endif
    {"portable", always_usable, &kws_portable_kernels},
#if defined(KWS_NEON_SIMDE)
    /* The NEON source compiled through SIMDe: checks the NEON kernels on x86.
     * Emulated, so never the default. */
    {"neon-simde", always_usable, &kws_neon_kernels},
    {"neon-dotprod-simde", always_usable, &kws_neon_dot_kernels},
#endif
};

int kws_backend_count(void) { return (int)(sizeof backends / sizeof backends[0]); }

const kws_backend *kws_backend_at(int index) {
  return index >= 0 && index < kws_backend_count() ? &backends[index] : NULL;
}

const char *kws_backend_name(const kws_backend *backend) { return backend ? backend->name : NULL; }

int kws_backend_usable(const kws_backend *backend) { return backend && backend->usable(); }

kws_status kws_backend_find(const char *name, const kws_backend **out) {
  *out = NULL;
  for (int i = 0; i < kws_backend_count(); i++) {
    const kws_backend *be = &backends[i];
    if (name ? strcmp(name, be->name) == 0 : be->usable()) {
      if (!be->usable()) return KWS_ERR_BACKEND;
      *out = be;
      return KWS_OK;
    }
  }
  return KWS_ERR_BACKEND;
}
