#!/usr/bin/env bash
# Peak MACs per time-stamp-counter tick of vpmaddwd / vpmaddubsw (ymm) on this
# machine, register-only loops: see vpmaddwd_peak.c.
set -euo pipefail
cd "$(dirname "$0")"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
${CC:-gcc} -O2 -o "$out/vpmaddwd_peak" vpmaddwd_peak.c
grep -m1 'model name' /proc/cpuinfo | sed 's/.*: /cpu: /'
awk -F': ' '/^cpu family/ {f=$2} /^model\t/ {m=$2} END {print "family " f ", model " m}' /proc/cpuinfo
"$out/vpmaddwd_peak"
