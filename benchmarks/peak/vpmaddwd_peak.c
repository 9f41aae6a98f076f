/* Peak throughput of the instructions the avx2 int8 FULLY_CONNECTED kernel
 * relies on, in multiply-accumulates per time-stamp-counter tick (the unit of
 * benchmarks/test_backends.py), measured in register-only loops (one loop
 * reads L1 on purpose: "vpmovsxbw m", the memory form, which on Zen 3 runs
 * at 2 per cycle where the register form runs below 1).
 *
 * The bound: an exact signed int8 product needs a multiply-pipe op per 16
 * MACs, either one vpmaddwd (16 MACs) or vpmaddubsw + vpmaddwd (32 MACs);
 * "ubsw+wd" shows the two share the same 2 pipes, so the bound is
 * 16 MACs x vpmaddwd's instructions per tick.
 *
 * The single-instruction loops are 12 instructions with 12 independent accumulators
 * (ymm0..ymm11; ymm12..ymm15 are operands), unrolled so that the loop branch
 * is 1 in 13 instructions; 12 chains hide the latency (3 to 4 cycles) of
 * vpmaddwd at up to 4 per cycle, so only throughput is measured. MACs counted:
 * 16 per vpmaddwd ymm (16 products, added in pairs into 8 int32 lanes) and
 * 32 per vpmaddubsw ymm.
 *
 * "add chain" is 12 dependent scalar adds (1 cycle each on every x86 core), so
 * its instructions per tick is the core clock in cycles per TSC tick; dividing
 * any rate by it gives per-cycle figures.
 *
 * The mixes are inner loops of FULLY_CONNECTED kernels: "madd+add" is
 * vpmaddwd + vpaddd per 16 MACs (int16 operands already there), "widen+madd"
 * adds the vpmovsxbw of the weights from (L1-resident) memory, as the
 * row-dot kernel before packing did; "ubsw+wd" is the two multiplies of the
 * exact vpmaddubsw form per 32 MACs (vpmaddubsw, then vpmaddwd with ones),
 * "sign trick" that form whole, as the packed kernel runs it: vpsignb,
 * vpmaddubsw, vpmaddwd with ones, vpaddd. "sign acc16" is that form with
 * proven int16 blocks (vpsignb, vpmaddubsw, vpaddw per 32 MACs; the int16
 * sums are widened once per block, left out here); "nibbles" the 4-bit
 * kernel's step (fully_connected_s4.c): vpand, vpsrlw, vpand, two vpmaddubsw,
 * two vpaddw per 64 MACs. Their ratio to "sign trick" bounds what the 4-bit
 * kernel can gain over int8 while the weights stay in cache. "vpdpbusd" and
 * "vpdpbusd z" are the VPDPBUSD backends' multiply (32 and 64 MACs, ymm and
 * zmm), run only where the CPU has AVX-VNNI or AVX512-VNNI. Build and run:
 * run.sh. */
#include <stdint.h>
#include <stdio.h>
#include <x86intrin.h>

#define ITERS 2000000L
#define ROUNDS 15

#define R12(op) op(0) op(1) op(2) op(3) op(4) op(5) op(6) op(7) op(8) op(9) op(10) op(11)

#define MADDWD(i) "vpmaddwd %%ymm12, %%ymm" #i ", %%ymm" #i "\n\t"
#define MADDUBSW(i) "vpmaddubsw %%ymm12, %%ymm" #i ", %%ymm" #i "\n\t"
#define PADDD(i) "vpaddd %%ymm12, %%ymm" #i ", %%ymm" #i "\n\t"
#define PMOVSXBW(i) "vpmovsxbw %%xmm12, %%ymm" #i "\n\t"
#define ADDQ(i) "addq %%rcx, %%rdx\n\t"
/* madd+add: 6 rows, each a product into a scratch register (ymm6..11, no
 * chain) and its add into an accumulator (ymm0..5). */
#define MIX_MADD(i) "vpmaddwd %%ymm12, %%ymm13, %%ymm" #i "\n\t"
#define MADD_ADD                                                                                                   \
  MIX_MADD(6) MIX_MADD(7) MIX_MADD(8) MIX_MADD(9) MIX_MADD(10) MIX_MADD(11) "vpaddd %%ymm6, %%ymm0, %%ymm0\n\t"  \
      "vpaddd %%ymm7, %%ymm1, %%ymm1\n\t"                                                                          \
      "vpaddd %%ymm8, %%ymm2, %%ymm2\n\t"                                                                          \
      "vpaddd %%ymm9, %%ymm3, %%ymm3\n\t"                                                                          \
      "vpaddd %%ymm10, %%ymm4, %%ymm4\n\t"                                                                         \
      "vpaddd %%ymm11, %%ymm5, %%ymm5\n\t"
/* sign trick, 3 rows: t = sign(w, x); t = maddubs(|x|, t); t = madd(t, ones); acc += t. */
#define SIGN_ROW(t, a)                                                                                           \
  "vpsignb %%ymm13, %%ymm14, %%ymm" #t "\n\t"                                                                    \
  "vpmaddubsw %%ymm" #t ", %%ymm12, %%ymm" #t "\n\t"                                                             \
  "vpmaddwd %%ymm15, %%ymm" #t ", %%ymm" #t "\n\t"                                                               \
  "vpaddd %%ymm" #t ", %%ymm" #a ", %%ymm" #a "\n\t"
#define SIGN_TRICK SIGN_ROW(6, 0) SIGN_ROW(7, 1) SIGN_ROW(8, 2)
/* ubsw+wd, 6 rows: the two multiplies of the sign trick, pairs = maddubs(x, w), sums = madd(pairs, ones). */
#define UBSW_WD(t)                                                                                               \
  "vpmaddubsw %%ymm13, %%ymm12, %%ymm" #t "\n\t"                                                                 \
  "vpmaddwd %%ymm15, %%ymm" #t ", %%ymm" #t "\n\t"
#define UBSW_WD6 UBSW_WD(0) UBSW_WD(1) UBSW_WD(2) UBSW_WD(3) UBSW_WD(4) UBSW_WD(5)
/* widen+madd+add, 4 rows: the current kernel's vpmovsxbw, vpmaddwd, vpaddd per 16 MACs. */
#define WIDEN_ROW(t, a)                                                                                          \
  "vpmovsxbw " #t "*16(%1), %%ymm" #t "\n\t"                                                                            \
  "vpmaddwd %%ymm12, %%ymm" #t ", %%ymm" #t "\n\t"                                                               \
  "vpaddd %%ymm" #t ", %%ymm" #a ", %%ymm" #a "\n\t"
#define WIDEN_MADD_ADD WIDEN_ROW(6, 0) WIDEN_ROW(7, 1) WIDEN_ROW(8, 2) WIDEN_ROW(9, 3)
/* sign acc16, 4 rows: t = sign(w, x); t = maddubs(|x|, t); s += t (int16). */
#define SIGN16_ROW(t, a)                                                                                         \
  "vpsignb %%ymm13, %%ymm14, %%ymm" #t "\n\t"                                                                    \
  "vpmaddubsw %%ymm" #t ", %%ymm12, %%ymm" #t "\n\t"                                                             \
  "vpaddw %%ymm" #t ", %%ymm" #a ", %%ymm" #a "\n\t"
#define SIGN_ACC16 SIGN16_ROW(6, 0) SIGN16_ROW(7, 1) SIGN16_ROW(8, 2) SIGN16_ROW(9, 3)
/* nibbles, 3 rows of 64 codes (v = ymm14, low-nibble mask = ymm15, x = ymm12 and ymm13):
 * lo = v & 15; hi = (v >> 4) & 15; s += maddubs(lo, x0); s += maddubs(hi, x1) (int16). */
#define NIBBLE_ROW(lo, hi, a)                                                                                    \
  "vpand %%ymm15, %%ymm14, %%ymm" #lo "\n\t"                                                                     \
  "vpsrlw $4, %%ymm14, %%ymm" #hi "\n\t"                                                                         \
  "vpand %%ymm15, %%ymm" #hi ", %%ymm" #hi "\n\t"                                                                \
  "vpmaddubsw %%ymm12, %%ymm" #lo ", %%ymm" #lo "\n\t"                                                           \
  "vpmaddubsw %%ymm13, %%ymm" #hi ", %%ymm" #hi "\n\t"                                                           \
  "vpaddw %%ymm" #lo ", %%ymm" #a ", %%ymm" #a "\n\t"                                                            \
  "vpaddw %%ymm" #hi ", %%ymm" #a ", %%ymm" #a "\n\t"
#define NIBBLES NIBBLE_ROW(6, 7, 0) NIBBLE_ROW(8, 9, 1) NIBBLE_ROW(10, 11, 2)
#define DPBUSD_Y(i) "%{vex%} vpdpbusd %%ymm12, %%ymm13, %%ymm" #i "\n\t"
#define DPBUSD_Z(i) "vpdpbusd %%zmm12, %%zmm13, %%zmm" #i "\n\t"
#define PMOVSXBW_MEM(i) "vpmovsxbw " #i "*16(%1), %%ymm" #i "\n\t"

#define CLOBBERS                                                                                                   \
  "rcx", "rdx", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",         \
      "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "cc"

/* Ticks of the fastest of ROUNDS runs of ITERS iterations of BODY. */
static int8_t buf[192]; /* L1-resident source of the memory-operand loop */

#define TIME(name, BODY)                                                                                           \
  static uint64_t name(void) {                                                                                     \
    uint64_t best = UINT64_MAX;                                                                                    \
    for (int r = 0; r < ROUNDS; r++) {                                                                             \
      long n = ITERS;                                                                                              \
      uint64_t t0 = __rdtsc();                                                                                     \
      __asm__ volatile("vpxor %%ymm12, %%ymm12, %%ymm12\n\t"                                                       \
                       "vpxor %%ymm13, %%ymm13, %%ymm13\n\t"                                                       \
                       "vpxor %%ymm14, %%ymm14, %%ymm14\n\t"                                                       \
                       "vpxor %%ymm15, %%ymm15, %%ymm15\n\t"                                                       \
                       "xorl %%ecx, %%ecx\n\t"                                                                     \
                       "1:\n\t" BODY "dec %0\n\t"                                                                  \
                       "jnz 1b\n\t"                                                                                \
                       "vzeroupper\n\t"                                                                            \
                       : "+r"(n)                                                                                   \
                       : "r"(buf)                                                                                  \
                       : CLOBBERS);                                                                                \
      uint64_t t = __rdtsc() - t0;                                                                                 \
      if (t < best) best = t;                                                                                      \
    }                                                                                                              \
    return best;                                                                                                   \
  }

TIME(t_add_chain, R12(ADDQ))
TIME(t_maddwd, R12(MADDWD))
TIME(t_maddubsw, R12(MADDUBSW))
TIME(t_paddd, R12(PADDD))
TIME(t_pmovsxbw, R12(PMOVSXBW))
TIME(t_pmovsxbw_mem, R12(PMOVSXBW_MEM))
TIME(t_madd_add, MADD_ADD)
TIME(t_widen_madd_add, WIDEN_MADD_ADD)
TIME(t_ubsw_wd, UBSW_WD6)
TIME(t_sign_trick, SIGN_TRICK)
TIME(t_sign_acc16, SIGN_ACC16)
TIME(t_nibbles, NIBBLES)
TIME(t_dpbusd_y, R12(DPBUSD_Y))
TIME(t_dpbusd_z, R12(DPBUSD_Z))

static void row(const char *name, uint64_t ticks, double insns, double macs, double cycles_per_tick) {
  double per_tick = insns * ITERS / (double)ticks;
  double macs_per_tick = macs * ITERS / (double)ticks;
  printf("%-12s %10.2f %10.2f", name, per_tick, per_tick / cycles_per_tick);
  if (macs > 0)
    printf(" %10.2f %10.2f\n", macs_per_tick, macs_per_tick / cycles_per_tick);
  else
    printf(" %10s %10s\n", "-", "-");
}

int main(void) {
  double cpt = 12.0 * ITERS / (double)t_add_chain();
  printf("core cycles per TSC tick: %.3f (12 dependent adds per iteration)\n", cpt);
  printf("%-12s %10s %10s %10s %10s\n", "loop", "insn/tick", "insn/cycle", "MACs/tick", "MACs/cycle");
  row("vpmaddwd", t_maddwd(), 12, 12 * 16, cpt);
  row("vpmaddubsw", t_maddubsw(), 12, 12 * 32, cpt);
  row("vpaddd", t_paddd(), 12, 0, cpt);
  row("vpmovsxbw", t_pmovsxbw(), 12, 0, cpt);
  row("vpmovsxbw m", t_pmovsxbw_mem(), 12, 0, cpt);
  row("madd+add", t_madd_add(), 12, 6 * 16, cpt);
  row("widen+madd", t_widen_madd_add(), 12, 4 * 16, cpt);
  row("ubsw+wd", t_ubsw_wd(), 12, 6 * 32, cpt);
  row("sign trick", t_sign_trick(), 12, 3 * 32, cpt);
  row("sign acc16", t_sign_acc16(), 12, 4 * 32, cpt);
  row("nibbles", t_nibbles(), 21, 3 * 64, cpt);
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avxvnni")) row("vpdpbusd", t_dpbusd_y(), 12, 12 * 32, cpt);
  if (__builtin_cpu_supports("avx512vnni")) row("vpdpbusd z", t_dpbusd_z(), 12, 12 * 64, cpt);
  return 0;
}
