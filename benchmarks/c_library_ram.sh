#!/usr/bin/env bash
# RAM per model and target for the C library built alone (benchmarks/README.md, "RAM per model and target"):
# tests/c/link_check.c linked against scripts/build-c-lib's host, aarch64 and armv7 libraries, run natively and
# under qemu on the shipped M2 and M4 and on microWakeWord's okay_nabu (kwsint-import's blob), each model copied
# (kws_model_load) and in place (kws_model_load_into with KWS_LOAD_IN_PLACE). Needs what scripts/setup test
# installs; run from the repository root with the venv's kwsint-import on PATH.
set -euo pipefail
out=${TMPDIR:-/tmp}/kwsint-ram
mkdir -p "$out"
for t in host aarch64 armv7; do scripts/build-c-lib $t >/dev/null; done
gcc -std=c11 -O2 -static tests/c/link_check.c -Icsrc/include build/c/host/libkwsint.a -lm -o "$out/lc-host"
aarch64-linux-gnu-gcc -std=c11 -O2 -static tests/c/link_check.c -Icsrc/include build/c/aarch64/libkwsint.a -lm \
  -o "$out/lc-aarch64"
arm-linux-gnueabihf-gcc -std=c11 -O2 -static $(make -s -C csrc arch-flags TARGET=armv7) tests/c/link_check.c \
  -Icsrc/include build/c/armv7/libkwsint.a -lm -o "$out/lc-armv7"
models=$(python -c 'import pymicro_wakeword, os; print(os.path.dirname(pymicro_wakeword.__file__))')/models
kwsint-import "$models/okay_nabu.tflite" -o "$out/okay_nabu.kwsq" --force >/dev/null

run() { # TARGET COMMAND...: the model's three link_check lines as one row
  local target=$1 model=$2; shift 2
  local lines
  lines=$("$@")
  printf '%-10s %-8s %-13s %-21s %s\n' "$(basename "$model" .kwsq)" "$target" "$(sed -n 1p <<<"$lines" | cut -d' ' -f1)" \
    "$(sed -n 2p <<<"$lines")" "$(sed -n 3p <<<"$lines" | cut -d' ' -f1-3)"
}
for m in kwsint/default_model/M2.kwsq kwsint/default_model/M4.kwsq "$out/okay_nabu.kwsq"; do
  run host "$m" "$out/lc-host" "$m"
  run aarch64 "$m" qemu-aarch64 -cpu cortex-a53 "$out/lc-aarch64" "$m"
  run armv7 "$m" qemu-arm -cpu cortex-a7 "$out/lc-armv7" "$m"
  run armv7 "$m" qemu-arm -cpu cortex-a7 "$out/lc-armv7" "$m" portable
done
