#!/usr/bin/env bash
# Projected cycles per iteration (64 MACs) of the int8 FULLY_CONNECTED inner loops,
# from LLVM's scheduling models (llvm-mca, Debian llvm-16): a projection, not a
# measurement on ARM hardware.
set -euo pipefail
cd "$(dirname "$0")"
MCA=$(command -v llvm-mca-16 || command -v llvm-mca) || {
  echo "benchmarks/mca/run.sh needs llvm-mca: apt-get install llvm-16" >&2
  exit 1
}
printf '%-24s %-12s %s\n' loop cpu "cycles/iteration (64 MACs)"
for cpu in cortex-a53 cortex-a55 cortex-a72 cortex-a76; do
  for loop in fc_s8_smull_sadalp fc_s8_sxtl_smlal fc_s8_smlal_lane fc_s8_sdot; do
    attr=""
    [ "$loop" = fc_s8_sdot ] && attr="-mattr=+dotprod"
    [ "$loop" = fc_s8_sdot ] && [ "$cpu" = cortex-a53 -o "$cpu" = cortex-a72 ] && continue  # no SDOT on ARMv8.0
    cycles=$("$MCA" -mtriple=aarch64 -mcpu=$cpu $attr -iterations=1000 "$loop.s" \
             | awk '/^Total Cycles:/ {print $3 / 1000}')
    printf '%-24s %-12s %s\n' "$loop" "$cpu" "$cycles"
  done
done
