"""Projected Arm cycles per inference of kwsint's NEON backends, per model configuration.

    python benchmarks/mca/project.py                  # every configuration, weights policy, backend, core
    python benchmarks/mca/project.py --cpu cortex-a53 --weights auto
    python benchmarks/mca/project.py --breakdown M2   # where the cycles go: per layer and piece
    python benchmarks/mca/project.py --acc16          # neon: int32 against int16 accumulation

A projection from LLVM's scheduling models, not a measurement on Arm hardware:

1. The NEON kernels (csrc/neon/*.c) are compiled with aarch64-linux-gnu-gcc -O2 -S, with the
   flags of the project's qemu cross build (tests/test_arm.py).
2. The hot loops are cut out of the real kernels' assembly (a loop is a branch back to a label of
   the same function, recognised by its instruction mix): the int8 K loop (8 rows x 16 K:
   SMULL/SMLAL2/SADALP; SDOT on neon-dotprod: 4 rows x 16 K), the int16-block K loop (8 rows x 16 K) and its block flush
   (kws_neon_fully_connected_s8_acc16), the 16x8 K loop, the 4-bit K loop (32 codes: 8 rows,
   AND/USHR, 16 SMLAL + 16 SMLAL2 into int16, fully_connected_s4.c; 4 rows, 8 SDOT,
   fully_connected_s4_dot.c) and its block (ARMv8.0 only: the block loop's own code, whose 8 SADDLP
   and ADDP tree add the rows' int16 sums into int32, per block of up to 96 codes), the
   1-bit K loop (16 rows x 16 K: 8 TBL, fully_connected_s1.c), the per-input sum(x) loops (16 K
   per iteration, then one scalar iteration per K % 16 element), the 1-bit table build (16 K per
   iteration of build_tables, its two inner loops unrolled by their trip counts) and the affine
   loop (int16 models).
3. The straight per-group code (row-group or 16-row panel path: row pointers, reductions, the
   epilogue kws_neon_fc_s8_finish with or without the fused affine layer, stores, loop control)
   and the 4-bit kernels' K tails come from a harness compiled with each kernel's source
   (HARNESS below: `#include`s the .c file and calls its own static inline pieces), in which a
   group is whole (r = 8 rows, 16 for s8, acc16 and s4, so the partial-group branches fold away), the fused affine is
   known present or absent, and the int8 K tail is left out (costed apart). A whole group loads
   its fused affine weights directly; were a call to memcpy left on a costed path, it would be
   costed as a PLT stub plus glibc's aarch64 memcpy for 8..16 bytes (SMALL_MEMCPY). The 16x8 kernel's row-group path is cut out of the
   real kernel (it has no such branches).
4. llvm-mca (llvm-mca-16, else llvm-mca-NN or llvm-mca as installed) runs each piece 1000 times
   back to back on a core's model; cycles per iteration = Total Cycles / Iterations.
5. Trip counts per layer follow the C loops (trip_counts, s4_trip_counts, s1_trip_counts); cycles
   per inference = sum over layers and pieces of iterations x cycles per iteration.

What runs (csrc/neon/kernels.c, csrc/plan.c, csrc/blob.c link_epilogues, csrc/model.c): with
int8 activations a dense layer followed by an affine layer runs that affine inside its epilogue
(the affine layer costs nothing of its own); weights="int8" and 5..8-bit layers run the int8
kernel (neon: the int16-block kernel for a proven block of NEON_ACC16_MIN_BLOCK products or more);
2..4-bit layers with weights="packed" run the 4-bit kernel and 1-bit layers the 1-bit kernel;
weights="auto" does the same as "packed" on neon-dotprod (its dense_s4 and dense_s1 slots have
beats_s8 = 1) and for 2..4-bit layers on neon (dense_s4), and the same as "int8" for 1-bit layers
on neon (dense_s1 has beats_s8 = 0: its int8 kernel projects faster). With 16-bit activations (M1) every dense layer runs the 16x8 kernel and every
affine layer its own pass (kws_neon_affine_s16), whatever the weights policy.

Counted: the pieces above, per layer and per inference (one input vector per layer). Not counted:
cache and TLB misses (llvm-mca assumes every load hits L1), branch mispredictions, the kernels'
per-call prologues (int8: the K tail vector and the output parameters; 4-bit: the tail x vectors
and masks after sum(x); 1-bit: the tables' setup and the stack frame), the float QUANTIZE of the
input window, the posterior and the model's layer dispatch. Approximations: a partial group or
panel (N % 8; N % 16 for s8, acc16 and 1-bit panels) costs as much as a whole one; an int8 K tail (K % 16 != 0) costs one ARMv8.0
8-row K step per 8-row pass, half of one per 4-row SDOT pass (fc_s8.h runs one vector step per row); a 4-bit tail (K % 32 != 0) costs the
harness's tail step (8 rows, into int16, ARMv8.0; 4 rows, SDOT; rows of 16 bytes or more: no copy,
and its x vector loads may be hoisted there); the ARMv8.0 4-bit kernel's last block (the
block loop's control, then, after the tail, its rows' sums: the same instructions as every other
block's) costs one block; the 1-bit kernel's last K iteration (an odd number of 8-K group pairs) costs as
much as a whole one, a layer over 2048 K (several table chunks) rebuilds the tables per panel and
chunk as the kernel does, the table build's zero-padded last 16 K costs as a whole one and its
copy is not counted; K loops, block flushes and the rest are costed each back to back (for the
int16-block kernel a straight sequence of a block gives the same cycles to within 1% on the
in-order A53; on the out-of-order A72 the pieces back to back overestimate a block of 128 products
by up to 8%, tests/test_mca_projection.py).
"""

import argparse
import functools
import glob
import math
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from kwsint._build_ffi import C_FLAGS, INCLUDE_DIRS

ROOT = Path(__file__).resolve().parents[2]
NEON = ROOT / "csrc" / "neon"
CC = "aarch64-linux-gnu-gcc"
# The flags of the qemu cross build (tests/test_arm.py), so these are the instructions
# that run there. The SDOT files get ARMv8.2 + dotprod from their own `#pragma GCC target`,
# as in that build.
CFLAGS = (*C_FLAGS, "-O2", *(f"-I{d}" for d in INCLUDE_DIRS), f"-I{NEON}")
CPUS = ("cortex-a53", "cortex-a55", "cortex-a72", "cortex-a76")
DOTPROD_CPUS = ("cortex-a55", "cortex-a76")  # ARMv8.2 cores; the A53 and A72 have no SDOT
BACKENDS = ("neon", "neon-dotprod")
WEIGHTS = ("auto", "int8", "packed")
RATES_HZ = {"10ms": 100.0, "30ms": 1000.0 / 30.0}  # one inference per 10 ms, per 30 ms
MCA_ITERATIONS = 1000

# The SDOT int8 and 4-bit kernels and 16x8: 8 rows per group, computed as 2 passes of 4 rows (the
# ARMv8.0 int8 and 4-bit kernels, kinds s8, acc16 and s4: 16 rows per group, 2 passes of 8 rows);
# the 1-bit kernel: panels of 16 rows in one pass.
GROUP_ROWS, PASS_ROWS, PANEL_ROWS = 8, 4, 16
S8_PASS_ROWS = 8
S8_KINDS = ("s8", "acc16")  # the kinds that run one 8-row pass per group
S4_PASS_ROWS = 8  # the ARMv8.0 4-bit kernel (kind s4): 16 rows per group, 2 passes of 8 rows
S16_FLUSH_K = 2048  # K per int32 chunk of the 16x8 kernel (KWS_S16_FLUSH, fully_connected.c)
S4_BLOCK = 96  # codes per int16 block of the ARMv8.0 4-bit kernel (fully_connected_s4.c)
S1_CHUNK_K = 2048  # activations per 1-bit table chunk (S1_CHUNK_PAIRS group pairs of 8 K)
# csrc/neon/kernels.c: the packed slots' beats_s8, per backend, so what weights="auto" runs.
BEATS_S8 = {("neon", 4): True, ("neon", 1): False, ("neon-dotprod", 4): True, ("neon-dotprod", 1): True}


class ExtractionError(RuntimeError):
    """The compiled kernel does not have the shape the projection costs; the message names it."""


@dataclass(frozen=True)
class Kernel:
    """One compiled NEON kernel and how to recognise its hot loop.

    source: file in csrc/neon; function: the exported symbol; marker: a mnemonic of the hot
    loop that no other innermost loop of the function (or of the functions it calls) holds;
    markers: how many times one iteration holds it, a check that the loop found is the one
    costed; step: K elements (dense) or channels (affine) per iteration; dotprod: the kernel
    needs llvm-mca's +dotprod; mix: (mnemonic, count) pairs one iteration of the hot loop must
    also hold exactly (0: must not hold); flush: the mnemonic of a block flush, for a kernel
    whose K loop runs inside a block loop: the block loop's own code (all of it but the K loop)
    must hold it `markers` times; variants: other innermost loops may hold the marker a
    different number of times (the 1-bit kernel's partial-panel copy of its K loop): they are
    not this kernel's hot loop and are skipped instead of failing; path_trips: how many times
    any other loop on the group path runs (the 1-bit kernel's loop over the 4 quarters of a
    panel's sums; the 16x8 kernel's K tail loop, costed apart as its tail: 0), None: the path
    holds no other loop.
    """

    source: str
    function: str
    marker: str
    markers: int
    step: int
    dotprod: bool = False
    mix: tuple[tuple[str, int], ...] = ()
    flush: str | None = None
    variants: bool = False
    path_trips: int | None = None


# int8, ARMv8.0: 8 rows x 16 K per iteration (SMULL / SMLAL2 / SADALP per row).
S8 = Kernel("fully_connected.c", "kws_neon_fully_connected_s8", "sadalp", 8, 16)
DOT_S8 = Kernel("fully_connected_dot.c", "kws_neon_dot_fully_connected_s8", "sdot", 4, 16, True)
# int8 with a proven int16 block (docs/arithmetic.md 5.6): the neon backend only. One K
# iteration: 8 rows, 8 SMLAL + 8 SMLAL2 into int16 lanes, no SMULL, no SADALP.
ACC16 = Kernel("fully_connected.c", "kws_neon_fully_connected_s8_acc16", "smlal", 8, 16,
               mix=(("smlal2", 8), ("sadalp", 0), ("smull", 0)), flush="sadalp")
# 16x8 (int16 activations): both backends run the ARMv8.0 kernel; its int32 lanes go into int64
# (4 SADALP) once per 2048 K.
S16 = Kernel("fully_connected.c", "kws_neon_fully_connected_s16", "smlal2", 4, 8, variants=True, path_trips=0,
             flush="sadalp")
# 4-bit codes (2..4-bit layers), 32 codes per iteration: ARMv8.0, 8 rows: one 16-byte load per
# row, AND + USHR, then 16 SMLAL + 16 SMLAL2 into int16 (one SADALP per row per block of 128
# codes); neon-dotprod, 4 rows: AND + USHR and 8 SDOT.
S4 = Kernel("fully_connected_s4.c", "kws_neon_run_s4", "ushr", 8, 32,
            mix=(("smlal", 16), ("smlal2", 16), ("sadalp", 0)), flush="saddlp")
DOT_S4 = Kernel("fully_connected_s4_dot.c", "kws_neon_dot_run_s4", "sdot", 8, 32, True, mix=(("ushr", 4),))
# 1-bit codes, 16 rows x 16 K (2 group pairs) per iteration of a whole panel: 8 TBL, widened
# into 16-bit sums once.
S1 = Kernel("fully_connected_s1.c", "kws_neon_run_s1", "tbl", 8, 16,
            mix=(("ushr", 2), ("uaddw", 1), ("uaddw2", 1), ("saddw", 1), ("saddw2", 1)), variants=True, path_trips=4)
AFFINE = {
    8: Kernel("affine.c", "kws_neon_affine_s8", "sqrdmulh", 4, 16),
    16: Kernel("affine.c", "kws_neon_affine_s16", "srshl", 4, 8),
}
# The per-input sum(x) of the packed kernels (kws_s4_input_make, sum_s8): 16 K per iteration,
# then one scalar iteration per K % 16 element.
SUM_X = (("saddlp", 1, (("sadalp", 1),)), ("ldrsb", 1, ()))
# The kernel (K loops, flushes) and the harness group / tail of each dense kernel kind.
KINDS = {"s8": S8, "acc16": ACC16, "dot_s8": DOT_S8, "s16": S16, "s4": S4, "dot_s4": DOT_S4, "s1": S1}


# --- trip counts -------------------------------------------------------------------------

def trip_counts(kind: str, in_size: int, out_size: int, act_bits: int = 8, acc16_block: int = 0,
                pass_rows: int = PASS_ROWS) -> dict[str, int]:
    """Iterations per inference of each costed piece of an int8 / 16x8 dense layer or an affine
    layer, as the C loops run them.

    Dense (fully_connected.c, fully_connected_dot.c): rows in groups of 2 * pass_rows,
    ceil(N / (2 * pass_rows)) groups, each running one pass of pass_rows rows, or two when it has
    more than pass_rows rows, so ceil(N / pass_rows) passes (rows past N reuse the last row and are
    discarded); pass_rows 4: 16x8 and SDOT, 8: the ARMv8.0 int8 kernels (kinds s8 and acc16). Each pass runs
    K // step K iterations and, when K % step != 0, one tail step; 16x8 (act_bits 16) flushes its
    int32 lanes into int64 once per 2048 K of whole steps, ceil(K8 / 2048) times a pass. With
    acc16_block = B products per row (int8 only; a power of two, 16..16384; 0: int32
    accumulation) the pass is dot8_s8_acc16: the K16 = K // 16 * 16 elements of whole steps in blocks of B, the last one shorter, so ceil(K16 / B) block
    flushes around the same K // 16 K iterations, then the same tail step. Affine (affine.c):
    ceil(N / step) blocks, the last one zero-padded. Keys: "k_loop", "flush", "tail", "group",
    "affine"; values in iterations.
    """
    if kind == "dense":
        step = (S8 if act_bits == 8 else S16).step
        passes = math.ceil(out_size / pass_rows)
        flushes = passes * -(-(in_size // step * step) // S16_FLUSH_K) if act_bits == 16 else 0
        if acc16_block:
            if act_bits != 8 or acc16_block < ACC16.step or acc16_block & (acc16_block - 1):
                raise ValueError(f"acc16_block: {acc16_block} products; int8 layers claim a power of two >= 16")
            flushes = passes * -(-(in_size // step * step) // acc16_block)
        return {"k_loop": passes * (in_size // step), "flush": flushes, "tail": passes * (in_size % step != 0),
                "group": math.ceil(out_size / (2 * pass_rows)), "affine": 0}
    if kind == "affine":
        return {"k_loop": 0, "flush": 0, "tail": 0, "group": 0,
                "affine": math.ceil(out_size / AFFINE[act_bits].step)}
    raise ValueError(f"unknown layer kind {kind!r}")


def s4_trip_counts(in_size: int, out_size: int, sdot: bool = False) -> dict[str, int]:
    """Iterations per inference of the 4-bit kernels' pieces for one layer (kws_neon_run_s4,
    kws_neon_dot_run_s4): rows in groups of 2 * R, each running one pass of R rows, or two when it
    has more than R rows (R = 8: ARMv8.0, dot8_s4; 4: SDOT, dot4_s4_sdot), so ceil(N / R) passes
    of K32 // 32 K iterations (K32 = K - K % 32) and, when K % 32 != 0, one R-row tail step; the
    ARMv8.0 kernel runs its K iterations in blocks of 96 codes, max(1, ceil(K32 / 96)) blocks a
    pass (one with no K iteration when K < 32), each adding its int16 sums into int32 (the last
    after the tail; SDOT: no blocks); ceil(N / (2 * R)) groups; per input vector, sum(x): K // 16
    vector iterations and K % 16 scalar ones."""
    rows = PASS_ROWS if sdot else S4_PASS_ROWS
    passes, k32 = math.ceil(out_size / rows), in_size - in_size % 32
    return {"k_loop": passes * (k32 // 32), "flush": 0 if sdot else passes * max(1, -(-k32 // S4_BLOCK)),
            "tail": passes * (in_size % 32 != 0), "group": math.ceil(out_size / (2 * rows)),
            "sum_x": in_size // 16, "sum_tail": in_size % 16}


def s1_trip_counts(in_size: int, out_size: int) -> dict[str, int]:
    """Iterations per inference of the 1-bit kernel's pieces for one layer (kws_neon_run_s1):
    G = ceil(K / 8) group pairs in chunks of 256 (2048 K); each panel of 16 rows runs
    ceil(pairs / 2) K iterations per chunk; the tables are built once per input vector when there
    is one chunk, else per panel and chunk, ceil(pairs / 2) iterations of build_tables (4 groups,
    16 K, each); per input vector, sum(x) as s4_trip_counts."""
    g, panels = -(-in_size // 8), math.ceil(out_size / PANEL_ROWS)
    pairs = [min(S1_CHUNK_K // 8, g - q0) for q0 in range(0, g, S1_CHUNK_K // 8)]
    per_panel = sum(-(-p // 2) for p in pairs)
    return {"k_loop": panels * per_panel, "group": panels, "tables": per_panel * (1 if len(pairs) == 1 else panels),
            "sum_x": in_size // 16, "sum_tail": in_size % 16}


# --- assembly ----------------------------------------------------------------------------

_LABEL = re.compile(r"^([\w.$]+):")
_CONDS = "eq|ne|cs|hs|cc|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le|al"
_BRANCH = re.compile(rf"^(b(?:\.?(?:{_CONDS}))?|cbn?z|tbn?z)\s+(?:.*,\s*)?([\w.$]+)$")
_CALL = re.compile(r"^bl\s+([\w.$]+)$")


@dataclass(frozen=True)
class Function:
    """A compiled function: its label and instruction lines (directives dropped), in order."""

    name: str
    lines: tuple[str, ...]

    @functools.cached_property
    def labels(self) -> dict[str, int]:
        return {m.group(1): i for i, line in enumerate(self.lines) if (m := _LABEL.match(line))}

    @functools.cached_property
    def loops(self) -> list[tuple[int, int]]:
        """(label index, backward branch index) of every branch back to a label of this function."""
        found = []
        for j, line in enumerate(self.lines):
            m = _BRANCH.match(line)
            if m and self.labels.get(m.group(2), j + 1) <= j:
                found.append((self.labels[m.group(2)], j))
        return found

    def instructions(self, start: int, end: int) -> list[str]:
        return [line for line in self.lines[start:end + 1] if not _LABEL.match(line)]


def _parse(asm: str) -> dict[str, Function]:
    functions, name, body = {}, None, []
    for raw in asm.splitlines():
        line = raw.split("//")[0].strip()
        if name is None:
            if (m := _LABEL.match(line)) and not line.startswith(".L"):
                name, body = m.group(1), []
        elif line.startswith(".size"):
            functions[name] = Function(name, tuple(body))
            name = None
        elif line and not (line.startswith(".") and not _LABEL.match(line)):
            body.append(line)
    return functions


def _cc(what: str, args: Sequence[str], stdin: str | None = None) -> dict[str, Function]:
    if shutil.which(CC) is None:
        raise ExtractionError(f"{CC} not found: apt-get install gcc-aarch64-linux-gnu (scripts/setup test does)")
    cmd = [CC, *CFLAGS, "-S", "-o", "-", *args]
    r = subprocess.run(cmd, input=stdin, capture_output=True, text=True)
    if r.returncode != 0:
        raise ExtractionError(f"compiling {what} failed:\n{' '.join(cmd)}\n{r.stderr}")
    return _parse(r.stdout)


@functools.cache
def _compile(source: str) -> dict[str, Function]:
    """Compiles csrc/neon/<source> to aarch64 assembly; its functions by name."""
    return _cc(source, [str(NEON / source)])


def _hot_loops(f: Function, marker: str, markers: int, mix: Sequence[tuple[str, int]] = (),
               variants: bool = False) -> list[tuple[int, int]]:
    """The innermost loops of f whose body holds `marker`, each checked to hold it `markers` times
    (and each (mnemonic, count) of mix exactly count times); with variants, a loop that holds the
    marker another number of times is skipped instead.

    Only straight bodies count as loops here: a branch back to shared code (a jump to a
    common ret, say) also targets an earlier label but passes a ret or an unconditional
    branch on the way."""
    straight = _merged(_straight_loops(f))
    inner = [(i, j) for i, j in straight if not any(i <= a and b <= j and (a, b) != (i, j) for a, b in straight)]
    hot = []
    for i, j in inner:
        mnemonics = [line.split()[0] for line in f.instructions(i, j)]
        count = mnemonics.count(marker)
        if count and not (variants and count != markers):
            for name, expected in ((marker, markers), *mix):
                if mnemonics.count(name) != expected:
                    raise ExtractionError(f"{f.name}: the loop at {f.lines[i].rstrip(':')} holds "
                                          f"{mnemonics.count(name)} {name}, not {expected}; the projection costs "
                                          f"no such loop")
            hot.append((i, j))
    return hot


def _merged(loops: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Loops with one header and several latches (GCC's rotated loops) as one, to the last latch."""
    last: dict[int, int] = {}
    for i, j in loops:
        last[i] = max(j, last.get(i, j))
    return sorted(last.items())


def _straight_loops(f: Function) -> list[tuple[int, int]]:
    return [(i, j) for i, j in f.loops if not any(line == "ret" or line.split()[0] == "b" for line in f.lines[i:j])]


def _block_loops(f: Function, kernel: Kernel, hot: Mapping[int, int]) -> dict[int, tuple[int, int, int]]:
    """The block loops of an int16 kernel: {start: (end, K loop start, K loop end)}.

    A block loop is the innermost straight loop of f around a K loop; it must hold that K loop
    and no other loop, and its own code (all of it but the K loop) must hold kernel.flush
    kernel.markers times. Every K loop of such a kernel must have one. Empty for a kernel with
    no flush."""
    if kernel.flush is None:
        return {}
    straight, blocks = _straight_loops(f), {}
    for ki, kj in hot.items():
        around = [(i, j) for i, j in straight if i <= ki and kj <= j and (i, j) != (ki, kj)]
        if not around:
            raise ExtractionError(f"{f.name}: the K loop at {f.lines[ki].rstrip(':')} runs in no block loop; "
                                  f"the projection costs an int16 K loop only with its block flush")
        i, j = min(around, key=lambda span: span[1] - span[0])
        others = [(a, b) for a, b in straight if i <= a and b <= j and (a, b) not in ((i, j), (ki, kj))]
        if others:
            raise ExtractionError(f"{f.name}: the block loop at {f.lines[i].rstrip(':')} holds another loop "
                                  f"({f.lines[others[0][0]].rstrip(':')}) besides the K loop")
        own = f.instructions(i, ki - 1) + f.instructions(kj + 1, j)
        count = sum(line.split()[0] == kernel.flush for line in own)
        if count != kernel.markers:
            raise ExtractionError(f"{f.name}: the block loop at {f.lines[i].rstrip(':')} holds {count} "
                                  f"{kernel.flush} besides its K loop, not {kernel.markers}; the projection "
                                  f"costs no such flush")
        blocks[i] = (j, ki, kj)
    return blocks


def _straight(f: Function, start: int, end: int, kernel: Kernel, functions: Mapping[str, Function],
              k_loops: list[str], flushes: list[str] | None = None) -> tuple[list[str], int]:
    """The instructions of f[start..end] run once each, the K loops cut out (their bodies go to
    k_loops; for a kernel with block flushes the block loops around them, whose own code goes to
    flushes), jumps ahead followed, calls to local functions followed to their first ret and
    calls to memcpy costed as SMALL_MEMCPY. Returns the instructions and how
    many K loops were cut. Fails on anything else that would repeat or skip code."""
    hot = dict(_hot_loops(f, kernel.marker, kernel.markers, kernel.mix, kernel.variants))
    blocks = _block_loops(f, kernel, hot)
    others = {} if kernel.path_trips is None else dict(_merged(_straight_loops(f)))
    flushes = [] if flushes is None else flushes
    out, passes, idx = [], 0, start
    while idx <= end:
        i, line = idx, f.lines[idx]
        idx += 1
        if i in blocks and blocks[i][0] <= end:  # a block loop: its K loop and its flush, costed on their own
            j, ki, kj = blocks[i]
            k_loops.append("\n".join(f.instructions(ki, kj)))
            flushes.append("\n".join(f.instructions(i, ki - 1) + f.instructions(kj + 1, j)))
            passes, idx = passes + 1, j + 1
        elif i in hot and hot[i] <= end:  # a K loop: costed on its own
            k_loops.append("\n".join(f.instructions(i, hot[i])))
            passes, idx = passes + 1, hot[i] + 1
        elif i in others and i != start and others[i] <= end:  # another loop with a known trip count
            out += f.instructions(i, others[i]) * kernel.path_trips
            idx = others[i] + 1
        elif (m := _CALL.match(line)) and m.group(1) in MEMCPY:
            out += [f"b\t{m.group(1)}", *SMALL_MEMCPY]
        elif m := _CALL.match(line):
            callee = functions.get(m.group(1))
            ret = callee.lines.index("ret") if callee and "ret" in callee.lines else None
            if ret is None:
                raise ExtractionError(f"{f.name}: the row-group path calls {m.group(1)}, which is not costed")
            # llvm-mca assumes 100 cycles for a call; a direct call is a predicted branch, so it is
            # costed as one, followed by the callee's instructions.
            body, n = _straight(callee, 0, ret, kernel, functions, k_loops, flushes)
            out += [f"b\t{m.group(1)}", *body]
            passes += n
        elif (m := _BRANCH.match(line)) and m.group(1) == "b" and i < f.labels.get(m.group(2), -1) <= end:
            out.append(line)  # a jump ahead on the path: followed; into a rotated K loop: past it
            idx = f.labels[m.group(2)]
            into = [(a, b) for a, b in hot.items() if a < idx <= b]
            if into:
                k_loops.append("\n".join(f.instructions(*into[0])))
                passes, idx = passes + 1, into[0][1] + 1
        elif not _LABEL.match(line):
            out.append(line)
            m = _BRANCH.match(line)
            # A conditional branch back to the start of the loop being costed is a second latch
            # of that same loop (GCC rotates the int16 kernel's row-group loop so that a group of
            # at most 4 rows goes back before the second pass): not taken on a whole group's path.
            latch = m and m.group(1) != "b" and f.labels.get(m.group(2)) == start
            if m and i != end and not latch and start <= f.labels.get(m.group(2), -1) <= i:
                raise ExtractionError(f"{f.name}: a loop ({m.group(2)}) inside the row-group path that is not "
                                      f"the K loop; its trip count is unknown to the projection")
            if i != end and (line == "ret" or m and m.group(1) == "b"):
                raise ExtractionError(f"{f.name}: `{line}` inside the row-group path; the path is not straight")
    return out, passes



# A call to memcpy on a costed path: the PLT stub (kwsint is a shared library) and glibc's
# aarch64 memcpy for 8..16 bytes (the epilogue copies r <= 8 affine weights).
MEMCPY = ("memcpy", "kws_mca_memcpy")
SMALL_MEMCPY = ("adrp\tx16, memcpy", "ldr\tx17, [x16, 8]", "add\tx16, x16, 8", "br\tx17",
                "add\tx4, x1, x2", "add\tx5, x0, x2", "cmp\tx2, 128", "b.hi\tmemcpy_long", "cmp\tx2, 32",
                "b.hi\tmemcpy_32", "cmp\tx2, 16", "b.lo\tmemcpy_16", "tbz\tx2, 3, memcpy_8", "ldr\tx6, [x1]",
                "ldr\tx7, [x4, -8]", "str\tx6, [x0]", "str\tx7, [x5, -8]", "ret")

# --- harness -----------------------------------------------------------------------------
#
# Per kernel source, functions that run its own static inline pieces with the conditions of a
# whole group fixed: kws_mca_group_affine / kws_mca_group_plain (the row-group or panel loop with
# r = 8 rows per epilogue, 16 for s8, acc16 and s4, the fused affine present / absent, the int8
# and 4-bit K tails off) and, for the 4-bit kernels, kws_mca_tail (the tail step in a loop). memcpy is renamed to
# an external function so that the epilogue's copy of r affine weights stays a call, as it is in
# the kernel, where r is known only at run time.

_PRELUDE = """#include <string.h>
void *kws_mca_memcpy(void *, const void *, size_t);
#define memcpy kws_mca_memcpy
#include "{source}"
{pragma}
#define KWS_MCA_EPILOGUE(affine)                             \\
  kws_epilogue f = *e;                                       \\
  if (affine) {{                                              \\
    if (!f.affine_w) __builtin_unreachable();                \\
  }} else {{                                                  \\
    f.affine_w = NULL;                                       \\
  }}
"""
_DOTPROD = '#pragma GCC target("arch=armv8.2-a+dotprod")'
_GROUP_S8 = """
void kws_mca_group_{name}(const int8_t *x, size_t k, const int8_t *w, size_t n, const kws_epilogue *e,
                          int log2_block, int8_t *y) {{
  kws_neon_xtail_s8 t = kws_neon_xtail_s8_make(x, k);
  size_t block = (size_t)1 << log2_block;
  KWS_MCA_EPILOGUE({affine})
  kws_neon_out out[2];
  kws_neon_fc_out_params(&f, out);
  (void)block;
  t.mode = KWS_TAIL_NONE;
  for (size_t o = 0; o < n; o += 8) {{
    int32x4_t s0 = {dot4}(x, k, w, n, o, &t{block});
    int32x4_t s1 = {dot4}(x, k, w, n, o + 4, &t{block});
    kws_neon_fc_s8_finish(s0, s1, &f, out, o, 8, y);
  }}
}}
"""
_GROUP_S8_DOT8 = """
void kws_mca_group_{name}(const int8_t *x, size_t k, const int8_t *w, size_t n, const kws_epilogue *e,
                          int log2_block, int8_t *y) {{
  kws_neon_xtail_s8 t = kws_neon_xtail_s8_make(x, k);
  size_t block = (size_t)1 << log2_block;
  KWS_MCA_EPILOGUE({affine})
  kws_neon_out out[2];
  kws_neon_fc_out_params(&f, out);
  (void)block;
  t.mode = KWS_TAIL_NONE;
  for (size_t o = 0; o < n; o += 16) {{
    int32x4_t s[4];
    {dot8}(x, k, w, n, o, &t{block}, &s[0], &s[1]);
    {dot8}(x, k, w, n, o + 8, &t{block}, &s[2], &s[3]);
    kws_neon_fc_s8_finish16(s, &f, out, o, 16, y);
  }}
}}
"""
_GROUP_S4 = """
void kws_mca_group_{name}(const int8_t *x, size_t k, const uint8_t *w, size_t n, const kws_epilogue *e, int8_t *y) {{
  kws_s4_input in = kws_s4_input_make(x, k);
  KWS_MCA_EPILOGUE({affine})
  kws_neon_out out[2];
  kws_neon_fc_out_params(&f, out);
  in.t = 0;
  for (size_t o = 0; o < n; o += 8) {{
    int32x4_t s0 = {dot4}(x, k, w{n}, o, &in);
    int32x4_t s1 = {dot4}(x, k, w{n}, o + 4, &in);
    kws_neon_fc_s8_finish(s0, s1, &f, out, o, 8, y);
  }}
}}
"""
_GROUP_S4_DOT8 = """
void kws_mca_group_{name}(const int8_t *x, size_t k, const uint8_t *w, size_t n, const kws_epilogue *e, int8_t *y) {{
  kws_s4_input in = kws_s4_input_make(x, k);
  KWS_MCA_EPILOGUE({affine})
  kws_neon_out out[2];
  kws_neon_fc_out_params(&f, out);
  in.t = 0;
  for (size_t o = 0; o < n; o += 16) {{
    int32x4_t s[4];
    dot8_s4(x, k, w, o, &in, &s[0], &s[1]);
    dot8_s4(x, k, w, o + 8, &in, &s[2], &s[3]);
    kws_neon_fc_s8_finish16(s, &f, out, o, 16, y);
  }}
}}
"""
_TAIL_S4_8 = """
void kws_mca_tail(int16x8_t *a, const uint8_t *w, size_t s, size_t n, const kws_s4_input *in) {{
  if (s < 16) __builtin_unreachable(); /* rows of 16 bytes or more: K >= 31 */
  int16x8_t a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3], a4 = a[4], a5 = a[5], a6 = a[6], a7 = a[7];
  for (size_t o = 0; o < n; o += 8) {{
    a0 = {tail}(a0, w + o * s, s, in);
    a1 = {tail}(a1, w + (o + 1) * s, s, in);
    a2 = {tail}(a2, w + (o + 2) * s, s, in);
    a3 = {tail}(a3, w + (o + 3) * s, s, in);
    a4 = {tail}(a4, w + (o + 4) * s, s, in);
    a5 = {tail}(a5, w + (o + 5) * s, s, in);
    a6 = {tail}(a6, w + (o + 6) * s, s, in);
    a7 = {tail}(a7, w + (o + 7) * s, s, in);
  }}
  a[0] = a0, a[1] = a1, a[2] = a2, a[3] = a3, a[4] = a4, a[5] = a5, a[6] = a6, a[7] = a7;
}}
"""
_TAIL_S4 = """
void kws_mca_tail(int32x4_t *a, const uint8_t *w, size_t s, size_t n, const kws_s4_input *in) {{
  if (s < 16) __builtin_unreachable(); /* rows of 16 bytes or more: K >= 31 */
  int32x4_t a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];
  for (size_t o = 0; o < n; o += 4) {{
    a0 = {tail}(a0, w + o * s, s, in);
    a1 = {tail}(a1, w + (o + 1) * s, s, in);
    a2 = {tail}(a2, w + (o + 2) * s, s, in);
    a3 = {tail}(a3, w + (o + 3) * s, s, in);
  }}
  a[0] = a0, a[1] = a1, a[2] = a2, a[3] = a3;
}}
"""
# kws_neon_run_s1's panel loop for whole panels and one table chunk (K <= 2048); flattened, so
# that the epilogue, called out of line there, sees whether the affine is fused.
_GROUP_S1 = """
__attribute__((flatten)) void kws_mca_group_{name}(const uint8_t *w, size_t k, size_t n, const kws_epilogue *e,
                                                   const uint8_t *tab,
                          int32x4_t sum_x, int8_t *y) {{
  size_t g = (k + 7) / 8;
  const uint8_t *end = w + n * g;
  KWS_MCA_EPILOGUE({affine})
  kws_neon_out out[2];
  kws_neon_fc_out_params(&f, out);
  for (size_t o = 0; o < n; o += 16) {{
    int32x4_t s[4] = {{vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0)}};
    panel_chunk(w + o * g, 16, end, 0, 0, g, tab, s);
    for (int j = 0; j < 4; j++) s[j] = vsubq_s32(sum_x, vshlq_n_s32(s[j], 1));
    kws_neon_fc_s8_finish(s[0], s[1], &f, out, o, 8, y);
    kws_neon_fc_s8_finish(s[2], s[3], &f, out, o + 8, 8, y);
  }}
}}
"""


def _groups(template: str, **kw) -> str:
    return "".join(template.format(name=name, affine=affine, **kw) for name, affine in (("affine", 1), ("plain", 0)))


HARNESS = {
    "s8": _groups(_GROUP_S8_DOT8, dot8="dot8_s8", block=""),
    "acc16": _groups(_GROUP_S8_DOT8, dot8="dot8_s8_acc16", block=", block"),
    "dot_s8": _groups(_GROUP_S8, dot4="dot4_s8_sdot", block=""),
    "s4": _groups(_GROUP_S4_DOT8) + _TAIL_S4_8.format(tail="s4_tail"),
    "dot_s4": _groups(_GROUP_S4, dot4="dot4_s4_sdot", n="") + _TAIL_S4.format(tail="s4_tail_dot"),
    "s1": _groups(_GROUP_S1),
}
# The 4-bit kernels' tail loop in the harness: 8 rows (ARMv8.0) or 4 (SDOT), each AND + USHR and
# 4 multiplies.
TAILS = {"s4": Kernel("fully_connected_s4.c", "kws_mca_tail", "ushr", 8, 1, mix=(("smlal2", 16), ("sadalp", 0))),
         "dot_s4": Kernel("fully_connected_s4_dot.c", "kws_mca_tail", "ushr", 4, 1, True, mix=(("sdot", 8),))}


@functools.cache
def _harness(kind: str) -> dict[str, Function]:
    kernel = KINDS[kind]
    text = _PRELUDE.format(source=kernel.source, pragma=_DOTPROD if kernel.dotprod else "") + HARNESS[kind]
    return _cc(f"the {kind} harness ({kernel.source})", ["-x", "c", "-"], text)


# --- pieces ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Pieces:
    """A dense kernel's hot code: its K loop bodies, its block flushes (kernels with a block loop,
    one per K loop) and the straight group path (with and without the fused affine)."""

    k_loops: tuple[str, ...]
    flushes: tuple[str, ...]
    group: str
    group_affine: str = ""


def _reachable(functions: Mapping[str, Function], name: str) -> list[Function]:
    """The function `name` and the functions of the same file it calls, directly or not."""
    seen, todo = [], [name]
    while todo:
        f = functions[todo.pop()]
        if f in seen:
            continue
        seen.append(f)
        todo += [m.group(1) for line in f.lines if (m := _CALL.match(line)) and m.group(1) in functions]
    return seen


def _kernel_loops(kernel: Kernel) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The K loop bodies and block flushes of the real kernel (kernel.function and the static
    functions of its file it calls). Raises ExtractionError, naming the function, when a loop
    holding the marker has not the expected mix, or when no such loop is found."""
    functions = _compile(kernel.source)
    if kernel.function not in functions:
        raise ExtractionError(f"{kernel.function} not found in the assembly of {kernel.source}")
    k_loops, flushes = [], []
    for f in _reachable(functions, kernel.function):
        try:
            hot = dict(_hot_loops(f, kernel.marker, kernel.markers, kernel.mix, kernel.variants))
            blocks = _block_loops(f, kernel, hot)
        except ExtractionError as e:
            raise ExtractionError(f"{kernel.function}: {e}") from None
        k_loops += ["\n".join(f.instructions(i, j)) for i, j in hot.items()]
        flushes += ["\n".join(f.instructions(i, ki - 1) + f.instructions(kj + 1, j))
                    for i, (j, ki, kj) in blocks.items()]
    if not k_loops:
        mix = ", ".join(f"{c} {m}" for m, c in ((kernel.marker, kernel.markers), *kernel.mix))
        raise ExtractionError(f"{kernel.function}: no innermost loop with {mix}: the K loop the projection costs "
                              f"is not there")
    return tuple(k_loops), tuple(flushes)


def _group_path(f: Function, kernel: Kernel, functions: Mapping[str, Function], passes_expected: int) -> str:
    """The straight path of f's group loop: the loop of f that runs the most K loops (its own or
    those of functions it calls), which must run passes_expected of them."""
    def runs_marker(lines) -> bool:  # holds the marker, or calls a function of this file that does
        return any(line.split()[0] == kernel.marker
                   or (m := _CALL.match(line)) and m.group(1) in functions and runs_marker(functions[m.group(1)].lines)
                   for line in lines)

    hot = _hot_loops(f, kernel.marker, kernel.markers, kernel.mix, kernel.variants)
    k_loop_spans = set(hot) | {(i, v[0]) for i, v in _block_loops(f, kernel, dict(hot)).items()}
    best, errors = None, []
    for i, j in f.loops:
        if (i, j) in k_loop_spans or not runs_marker(f.lines[i:j + 1]):
            continue
        flushes: list[str] = []
        try:
            body, passes = _straight(f, i, j, kernel, functions, [], flushes)
        except ExtractionError as e:
            errors.append(str(e))
            continue
        if passes and (best is None or (passes, -len(body)) > (best[0], -len(best[1]))):
            best = (passes, body, flushes)
    if best is None:
        reasons = "; ".join(dict.fromkeys(errors)) or "no loop runs it"
        raise ExtractionError(f"{f.name}: no straight group loop around the {kernel.marker} K loop ({reasons})")
    passes, body, flushes = best
    if passes != passes_expected:
        raise ExtractionError(f"{f.name}: the group loop runs {passes} K loops, expected {passes_expected}")
    if kernel.flush and len(flushes) != passes:
        raise ExtractionError(f"{f.name}: {len(flushes)} block flushes for {passes} K loops")
    return "\n".join(body)


@functools.cache
def dense_pieces(kind: str) -> Pieces:
    """A dense kernel kind's K loops and block flushes (cut out of the real kernel) and group
    paths (the harness's, with and without the fused affine; the 16x8 kernel's own row-group
    path, which has no epilogue to fuse)."""
    kernel = KINDS[kind]
    k_loops, flushes = _kernel_loops(kernel)
    passes = 1 if kind == "s1" else 2
    if kind == "s16":
        functions = _compile(kernel.source)
        return Pieces(k_loops, flushes, _group_path(functions[kernel.function], kernel, functions, passes))
    functions = _harness(kind)
    plain, affine = (_group_path(functions[f"kws_mca_group_{v}"], kernel, functions, passes)
                     for v in ("plain", "affine"))
    return Pieces(k_loops, flushes, plain, affine)


@functools.cache
def tail_loop(kind: str) -> str:
    """The body of the 4-bit harness's tail loop: one tail step (K % 32 codes) of a pass: 8 rows
    (ARMv8.0), 4 (SDOT)."""
    kernel = TAILS[kind]
    f = _harness(kind)["kws_mca_tail"]
    loops = _hot_loops(f, kernel.marker, kernel.markers, kernel.mix)
    if len(loops) != 1:
        raise ExtractionError(f"the {kind} harness's kws_mca_tail: {len(loops)} loops hold {kernel.marker}, expected 1")
    return "\n".join(f.instructions(*loops[0]))


@functools.cache
def sum_x_loops(kind: str) -> tuple[str, str]:
    """The packed kernels' per-input sum(x) loops, cut out of the real kernel: the vector loop (16
    K per iteration: SADDLP + SADALP) and the scalar loop (one K, LDRSB)."""
    kernel = KINDS[kind]
    functions = _compile(kernel.source)
    found = []
    for marker, markers, mix in SUM_X:
        loops = [(f, span) for f in _reachable(functions, kernel.function)
                 for span in _hot_loops(f, marker, markers, mix)]
        if len(loops) != 1:
            raise ExtractionError(f"{kernel.function}: {len(loops)} sum(x) loops hold {marker}, expected 1")
        f, span = loops[0]
        found.append("\n".join(f.instructions(*span)))
    return found[0], found[1]


def _expanded(f: Function, i: int, j: int, trips: Sequence[int]) -> list[str]:
    """f[i..j] as it runs once, each loop directly inside run trips[0] times (theirs trips[1:])."""
    inner = [(a, b) for a, b in _straight_loops(f) if i < a and b < j]
    top = [(a, b) for a, b in inner if not any(c <= a and b <= d and (c, d) != (a, b) for c, d in inner)]
    if top and not trips:
        raise ExtractionError(f"{f.name}: a loop at {f.lines[top[0][0]].rstrip(':')} with no trip count given")
    out, idx = [], i
    for a, b in sorted(top):
        out += f.instructions(idx, a - 1) + _expanded(f, a, b, trips[1:]) * trips[0]
        idx = b + 1
    return out + f.instructions(idx, j)


# build_tables: per 4 groups (16 K), 2 planes (pl), 4 tables per plane (j): 24 TBL.
TABLE_TRIPS, TABLE_TBL = (2, 4), 24


@functools.cache
def table_loop() -> str:
    """One iteration of the 1-bit kernel's table build (build_tables: 16 K, 4 groups' tables of
    both planes), its inner loops unrolled by their trip counts."""
    f = _compile(S1.source).get("build_tables")
    if f is None:
        raise ExtractionError(f"build_tables not found in the assembly of {S1.source}")
    tbl = [(i, j) for i, j in _straight_loops(f) if any(line.startswith("tbl") for line in f.lines[i:j])]
    outer = [(i, j) for i, j in tbl if not any(a <= i and j <= b and (a, b) != (i, j) for a, b in tbl)]
    if len(outer) != 1:
        raise ExtractionError(f"build_tables: {len(outer)} outermost loops hold tbl, expected 1")
    body = _expanded(f, *outer[0], TABLE_TRIPS)
    count = sum(line.split()[0] == "tbl" for line in body)
    if count != TABLE_TBL:
        raise ExtractionError(f"build_tables: one iteration runs {count} tbl, not {TABLE_TBL}")
    return "\n".join(body)


@functools.cache
def affine_loop(act_bits: int) -> str:
    """The body of the affine kernel's block loop (one iteration = AFFINE[act_bits].step channels)."""
    kernel = AFFINE[act_bits]
    f = _compile(kernel.source).get(kernel.function)
    if f is None:
        raise ExtractionError(f"{kernel.function} not found in the assembly of {kernel.source}")
    loops = _hot_loops(f, kernel.marker, kernel.markers, kernel.mix)
    if len(loops) != 1:
        raise ExtractionError(f"{kernel.function}: {len(loops)} loops hold {kernel.marker}, expected 1")
    return "\n".join(f.instructions(*loops[0]))


# --- llvm-mca ----------------------------------------------------------------------------

@functools.cache
def mca_tool() -> str:
    """$LLVM_MCA if set, else llvm-mca-16 (what scripts/setup test installs), else the newest
    llvm-mca-NN on PATH, else llvm-mca. Models differ a little between LLVM versions."""
    if os.environ.get("LLVM_MCA"):
        return os.environ["LLVM_MCA"]
    versioned = sorted({Path(p).name for d in os.environ.get("PATH", "").split(os.pathsep) if d
                        for p in glob.glob(os.path.join(d, "llvm-mca-[0-9]*"))},
                       key=lambda name: int(name.rsplit("-", 1)[1]) if name.rsplit("-", 1)[1].isdigit() else 0)
    for name in ("llvm-mca-16", *reversed(versioned), "llvm-mca"):
        if shutil.which(name):
            return name
    raise ExtractionError("llvm-mca not found: apt-get install llvm-16 (scripts/setup test does), or set LLVM_MCA")


@functools.cache
def mca_cycles(code: str, cpu: str, dotprod: bool = False) -> float:
    """llvm-mca's cycles per iteration of `code` (aarch64 assembly) on `cpu`, run back to back."""
    cmd = [mca_tool(), "-mtriple=aarch64", f"-mcpu={cpu}", f"-iterations={MCA_ITERATIONS}"]
    if dotprod:
        cmd.append("-mattr=+dotprod")
    r = subprocess.run(cmd, input=code + "\n", capture_output=True, text=True)
    if r.returncode != 0:
        raise ExtractionError(f"llvm-mca failed on {cpu}:\n{r.stderr}\n{code}")
    fields = dict(re.findall(r"^(Iterations|Total Cycles):\s+(\d+)$", r.stdout, re.M))
    return int(fields["Total Cycles"]) / int(fields["Iterations"])


def _mean(pieces: Sequence[str], cpu: str, dotprod: bool = False) -> float:
    return sum(mca_cycles(p, cpu, dotprod) for p in pieces) / len(pieces)


def piece_cycles(kind: str, cpu: str, affine: bool = False) -> dict[str, float]:
    """Cycles per iteration of each costed piece of a dense kernel kind on `cpu`, keyed as its
    trip counts: k_loop (mean over the kernel's inlined copies), flush (kernels with a block
    loop; 0 otherwise), tail (int8 kinds: one ARMv8.0 K step, which every int8 kernel runs for
    its K tail; 16x8: one K step of its own; 4-bit: the harness's tail step of a pass), group (the
    group or panel path, the fused affine's when affine), sum_x / sum_tail / tables (packed
    kinds' per-input work)."""
    kernel, pieces = KINDS[kind], dense_pieces(kind)
    dot = kernel.dotprod
    c = {"k_loop": _mean(pieces.k_loops, cpu, dot), "flush": _mean(pieces.flushes, cpu) if pieces.flushes else 0.0,
         "group": mca_cycles(pieces.group_affine if affine else pieces.group, cpu, dot)}
    if kind in ("s8", "acc16", "dot_s8"):  # one 8-row ARMv8.0 K step; half of it per 4-row pass
        c["tail"] = _mean(dense_pieces("s8").k_loops, cpu) * (1 if kind in S8_KINDS else PASS_ROWS / S8_PASS_ROWS)
    elif kind == "s16":
        c["tail"] = c["k_loop"]
    else:
        if kind != "s1":
            c["tail"] = mca_cycles(tail_loop(kind), cpu, dot)
        vector, scalar = sum_x_loops(kind)
        c["sum_x"], c["sum_tail"] = mca_cycles(vector, cpu), mca_cycles(scalar, cpu)
        if kind == "s1":
            c["tables"] = mca_cycles(table_loop(), cpu)
    return c


def loop_cycles(backend: str, act_bits: int, cpu: str, acc16: bool = False) -> dict[str, float]:
    """The int8 (act_bits 8) or 16x8 kernel's pieces on `cpu` (piece_cycles, the group without a
    fused affine) and the affine kernel's block (affine: one iteration, AFFINE[act_bits].step
    channels)."""
    kind = "s16" if act_bits == 16 else "acc16" if acc16 else "dot_s8" if backend == "neon-dotprod" else "s8"
    return {**piece_cycles(kind, cpu), "affine": mca_cycles(affine_loop(act_bits), cpu)}


# --- projection --------------------------------------------------------------------------

# Claims below this many products run the int32 kernel on neon: KWS_NEON_ACC16_MIN_LOG2
# (csrc/neon/kernels.h), set from this projection.
NEON_ACC16_MIN_BLOCK = 128


def _uses_acc16(layer: Mapping, backend: str, act_bits: int, acc16: bool) -> int:
    """The block (products) this layer runs in int16 on this backend, or 0: the neon backend with
    int8 activations honours a dense layer's claim of NEON_ACC16_MIN_BLOCK products or more
    (csrc/neon/fully_connected.c kws_neon_run_s8); neon-dotprod has no int16 kernel."""
    block = layer.get("acc16_block", 0) if acc16 and backend == "neon" and act_bits == 8 else 0
    return block if layer["kind"] == "dense" and block >= NEON_ACC16_MIN_BLOCK else 0


def dense_kind(layer: Mapping, act_bits: int, backend: str, weights: str = "auto", acc16: bool = True) -> str:
    """The kernel kind a dense layer runs on a NEON backend (csrc/plan.c kws_plan_dense)."""
    if act_bits == 16:
        return "s16"
    bits = layer.get("weight_bits", 8)
    if weights not in WEIGHTS:
        raise ValueError(f"weights: one of {', '.join(WEIGHTS)}, not {weights!r}")
    packed = bits <= 4 and (weights == "packed" or weights == "auto" and BEATS_S8[(backend, 1 if bits == 1 else 4)])
    if packed:
        return "s1" if bits == 1 else "dot_s4" if backend == "neon-dotprod" else "s4"
    if backend == "neon-dotprod":
        return "dot_s8"
    return "acc16" if _uses_acc16(layer, backend, act_bits, acc16) else "s8"


def plan(layers: Sequence[Mapping], act_bits: int, backend: str, weights: str = "auto",
         acc16: bool = True) -> list[dict]:
    """What runs per layer: dicts with the layer, kind (a dense kernel kind, "affine", or "fused":
    an affine layer run in the epilogue of the dense layer before it, int8 activations only,
    csrc/blob.c link_epilogues) and, for a dense layer, fused_affine."""
    out = []
    for i, layer in enumerate(layers):
        if layer["kind"] == "dense":
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            fused = act_bits == 8 and nxt is not None and nxt["kind"] == "affine"
            out.append(dict(layer=layer, kind=dense_kind(layer, act_bits, backend, weights, acc16), fused_affine=fused))
        elif layer["kind"] == "affine":
            fused = act_bits == 8 and i > 0 and layers[i - 1]["kind"] == "dense"
            out.append(dict(layer=layer, kind="fused" if fused else "affine"))
        else:
            raise ValueError(f"unknown layer kind {layer['kind']!r}")
    return out


def counts_of(step: Mapping, act_bits: int) -> dict[str, int]:
    """Iterations per inference of each piece of one planned layer (plan)."""
    layer, kind = step["layer"], step["kind"]
    k, n = layer["in_size"], layer["out_size"]
    if kind == "fused":
        return {}
    if kind == "affine":
        return {"affine": trip_counts("affine", k, n, act_bits)["affine"]}
    if kind == "s4" or kind == "dot_s4":
        return s4_trip_counts(k, n, kind == "dot_s4")
    if kind == "s1":
        return s1_trip_counts(k, n)
    c = trip_counts("dense", k, n, act_bits, layer.get("acc16_block", 0) if kind == "acc16" else 0,
                    S8_PASS_ROWS if kind in S8_KINDS else PASS_ROWS)
    del c["affine"]
    return c


def layer_pieces(step: Mapping, act_bits: int, cpu: str) -> dict[str, float]:
    """Projected cycles of one planned layer on one core, per piece."""
    kind = step["kind"]
    if kind == "fused":
        return {}
    if kind == "affine":
        per = {"affine": mca_cycles(affine_loop(act_bits), cpu)}
    else:
        per = piece_cycles(kind, cpu, step["fused_affine"])
    return {piece: n * per[piece] for piece, n in counts_of(step, act_bits).items()}


def layer_cycles(layer: Mapping, act_bits: int, backend: str, cpu: str, acc16: bool = True,
                 weights: str = "int8", fused_affine: bool = False) -> float:
    """Projected cycles of one layer (dict as in project) run on its own on one backend and core."""
    if layer["kind"] == "affine":
        step = dict(layer=layer, kind="affine")
    else:
        step = dict(layer=layer, kind=dense_kind(layer, act_bits, backend, weights, acc16), fused_affine=fused_affine)
    return sum(layer_pieces(step, act_bits, cpu).values())


def project(layers: Iterable[Mapping], act_bits: int = 8, cpus: Sequence[str] = CPUS,
            backends: Sequence[str] = BACKENDS, acc16: bool = True, weights: str = "auto") -> list[dict]:
    """Projected cycles per inference of a layer stack, per backend and core.

    layers: dicts with kind ("dense" or "affine"), in_size, out_size and optionally weight_bits
    (8) and acc16_block (products per int16 block, 0 = none), as in kwsint Model.info()["layers"].
    weights: the load policy ("auto", "int8", "packed"), which picks the dense kernels (plan).
    The neon backend runs an int8 dense layer that claims a block with the int16 kernel, as the
    engine does, unless acc16 is False (every layer in int32); neon-dotprod always runs int32.
    neon-dotprod is projected only on DOTPROD_CPUS.
    Returns one dict per (backend, cpu): backend, cpu, weights, kinds (the dense layers' kernel
    kinds), macs (per inference, dense K x N plus one per affine channel, as Model.info counts
    them), cycles (projected cycles per inference), dense_cycles (those of the dense layers,
    fused affines included), macs_per_cycle, and mcps (projected million cycles per second, keyed
    by RATES_HZ: one inference every 10 ms and every 30 ms).
    Raises ExtractionError, naming the function, when a kernel cannot be costed.
    """
    layers = list(layers)
    macs = sum(l["in_size"] * l["out_size"] if l["kind"] == "dense" else l["out_size"] for l in layers)
    rows = []
    for backend in backends:
        steps = plan(layers, act_bits, backend, weights, acc16)
        for cpu in cpus:
            if backend == "neon-dotprod" and cpu not in DOTPROD_CPUS:
                continue
            per_layer = [sum(layer_pieces(s, act_bits, cpu).values()) for s in steps]
            cycles = sum(per_layer)
            dense = sum(c for c, s in zip(per_layer, steps) if s["layer"]["kind"] == "dense")
            rows.append(dict(backend=backend, cpu=cpu, weights=weights,
                             kinds=[s["kind"] for s in steps if s["layer"]["kind"] == "dense"], macs=macs,
                             cycles=round(cycles), dense_cycles=round(dense), macs_per_cycle=macs / cycles,
                             mcps={name: cycles * hz / 1e6 for name, hz in RATES_HZ.items()}))
    return rows


def compare_acc16(layers: Sequence[Mapping], act_bits: int = 8, cpus: Sequence[str] = CPUS) -> list[dict]:
    """The neon backend with int32 accumulation (claims ignored) against int16 (claims as given),
    weights held as int8.

    One dict per cpu: cpu, dense32 / dense16 (projected cycles of the dense layers), total32 /
    total16 (whole inference), dense_ratio and total_ratio (int32 cycles / int16 cycles: above 1
    is a projected speed-up from int16 accumulation)."""
    rows = []
    for cpu in cpus:
        (a,) = project(layers, act_bits, (cpu,), ("neon",), acc16=False, weights="int8")
        (b,) = project(layers, act_bits, (cpu,), ("neon",), acc16=True, weights="int8")
        rows.append(dict(cpu=cpu, dense32=a["dense_cycles"], dense16=b["dense_cycles"], total32=a["cycles"],
                         total16=b["cycles"], dense_ratio=a["dense_cycles"] / b["dense_cycles"],
                         total_ratio=a["cycles"] / b["cycles"]))
    return rows


def paper_layers(config: str) -> tuple[list[dict], int]:
    """The layer shapes, weight bits, int16 blocks (products, 0 = none) and activation bits of a
    paper configuration (kwsint.train.generate, the blocks as the exporter claims them)."""
    from kwsint.train.generate import paper_model

    spec = paper_model(config)
    return [dict(kind=l.kind, in_size=l.in_size, out_size=l.out_size,
                 acc16_block=(1 << l.acc16_block) if l.acc16_block else 0,
                 weight_bits=l.weight_bits) for l in spec.layers], spec.act_bits


def breakdown(layers: Sequence[Mapping], act_bits: int, backend: str, cpu: str, weights: str = "auto",
              acc16: bool = True) -> list[dict]:
    """Per layer: index, shape, kind, fused_affine and the projected cycles per piece."""
    rows = []
    for i, s in enumerate(plan(layers, act_bits, backend, weights, acc16)):
        l = s["layer"]
        rows.append(dict(index=i, shape=f"{l['kind']} {l['in_size']}x{l['out_size']}", kind=s["kind"],
                         fused_affine=s.get("fused_affine", False), pieces=layer_pieces(s, act_bits, cpu)))
    return rows


# --- command line ------------------------------------------------------------------------

def _policies(layers: Sequence[Mapping], act_bits: int, weights: Sequence[str]) -> list[tuple[str, str]]:
    """(label, policy) per distinct plan: policies that run the same kernels on both backends
    share a row, labelled a=b."""
    seen: dict[tuple, list[str]] = {}
    for w in weights:
        key = tuple(tuple(s["kind"] for s in plan(layers, act_bits, b, w)) for b in BACKENDS)
        seen.setdefault(key, []).append(w)
    return [("=".join(ws), ws[0]) for ws in seen.values()]


def main_acc16() -> None:
    from kwsint.train.generate import CONFIGS

    print(f"neon, cycles per iteration ({mca_tool()}, {MCA_ITERATIONS} iterations back to back)")
    print(f"{'cpu':<11} {'K int32':>7} {'K int16':>7} {'flush':>6} {'group32':>7} {'group16':>7}")
    for cpu in CPUS:
        a, b = piece_cycles("s8", cpu), piece_cycles("acc16", cpu)
        print(f"{cpu:<11} {a['k_loop']:7.2f} {b['k_loop']:7.2f} {b['flush']:6.2f} {a['group']:7.2f} {b['group']:7.2f}")
    print("(K: one K iteration, 8 rows x 16 K = 128 MACs; flush: one int16 block flush (8 SADALP + block loop);\n"
          " group: the 16-row group path of the int32 / int16 kernel, no fused affine)\n")
    print("neon, weights int8, int32 accumulation (claims ignored) against int16 (claims as exported); "
          "ratio = int32 cycles / int16 cycles")
    print(f"{'config':<6} {'blocks':<8} {'cpu':<11} {'dense i32':>9} {'dense i16':>9} {'ratio':>5} "
          f"{'total i32':>9} {'total i16':>9} {'ratio':>5}")
    for config in CONFIGS:
        layers, act_bits = paper_layers(config)
        if act_bits != 8:
            print(f"{config:<6} not listed: {act_bits}-bit activations, no int16 accumulation")
            continue
        blocks = "/".join(str(b) if b else "-" for b in sorted({l["acc16_block"] for l in layers
                                                                if l["kind"] == "dense"}))
        for r in compare_acc16(layers, act_bits):
            print(f"{config:<6} {blocks:<8} {r['cpu']:<11} {r['dense32']:>9} {r['dense16']:>9} "
                  f"{r['dense_ratio']:>5.2f} {r['total32']:>9} {r['total16']:>9} {r['total_ratio']:>5.2f}")
    print("(blocks: the dense layers' int16 blocks in products, - = int32)")


def depthwise_loops() -> dict[str, str]:
    """The tap loops of the two NEON depthwise kernels (csrc/neon/depthwise.c) as assembly: int32 sums (two taps
    per iteration: 2 SMULL, 2 SMLAL, 4 SADDW) and int16 sums (two taps: 4 SMLAL into two pairs of int16 lanes)."""
    functions = _compile("depthwise.c")
    out = {}
    for name, smlal2, mix in (("int32", 1, (("smull2", 1), ("saddw2", 2))),
                              ("int16", 2, (("smull2", 0), ("saddw2", 0)))):
        f = functions[f"kws_neon_depthwise_s8{'_acc16' if name == 'int16' else ''}"]
        loops = _hot_loops(f, "smlal2", smlal2, mix, variants=True)
        if len(loops) != 1:
            raise ExtractionError(f"{f.name}: expected one tap loop holding SMLAL2, found {len(loops)}")
        i, j = loops[0]
        out[name] = "\n".join(f.instructions(i, j))
    return out


def main_depthwise(cpus: Sequence[str]) -> None:
    loops = depthwise_loops()
    print(f"neon depthwise, cycles per tap of 16 channels ({mca_tool()}, {MCA_ITERATIONS} iterations back to back)")
    print(f"{'cpu':<11} {'int32':>7} {'int16':>7} {'ratio':>6}")
    for cpu in cpus:
        i32, i16 = mca_cycles(loops["int32"], cpu) / 2, mca_cycles(loops["int16"], cpu) / 2
        print(f"{cpu:<11} {i32:7.2f} {i16:7.2f} {i32 / i16:6.2f}")
    print("(the tap loops alone, two taps an iteration in both; the epilogue, the same in both, is not in them)")


def main_breakdown(config: str, backend: str, cpu: str, weights: str) -> None:
    layers, act_bits = paper_layers(config)
    rows = breakdown(layers, act_bits, backend, cpu, weights)
    names = ["k_loop", "flush", "tail", "group", "sum_x", "sum_tail", "tables", "affine"]
    print(f"{config}, {backend}, {cpu}, weights={weights}: projected cycles per inference per layer and piece "
          f"({mca_tool()})")
    print(f"{'#':>2} {'layer':<16} {'kernel':<7} {'+aff':<4} " + " ".join(f"{n:>8}" for n in names) + f" {'total':>8}")
    totals = dict.fromkeys(names, 0.0)
    for r in rows:
        for n in names:
            totals[n] += r["pieces"].get(n, 0.0)
        print(f"{r['index']:>2} {r['shape']:<16} {r['kind']:<7} {'yes' if r['fused_affine'] else '':<4} "
              + " ".join(f"{r['pieces'].get(n, 0):>8.0f}" for n in names) + f" {sum(r['pieces'].values()):>8.0f}")
    print(f"{'':>2} {'total':<16} {'':<7} {'':<4} " + " ".join(f"{totals[n]:>8.0f}" for n in names)
          + f" {sum(totals.values()):>8.0f}")
    per = {kind: piece_cycles(kind, cpu) for kind in dict.fromkeys(r["kind"] for r in rows if r["kind"] in KINDS)}
    print("\ncycles per iteration:")
    for kind, c in per.items():
        extra = f" group+affine {piece_cycles(kind, cpu, True)['group']:.2f}" if kind != "s16" else ""
        print(f"  {kind:<7} " + " ".join(f"{n} {v:.2f}" for n, v in c.items()) + extra)


def main(argv: Sequence[str] | None = None) -> None:
    global NEON_ACC16_MIN_BLOCK
    from kwsint.train.generate import CONFIGS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--acc16", action="store_true",
                        help="the neon backend with int32 against int16 accumulation, per configuration and core")
    parser.add_argument("--min-block", type=int, default=NEON_ACC16_MIN_BLOCK,
                        help="shortest claimed block (products) run in int16 on neon "
                             f"(default {NEON_ACC16_MIN_BLOCK}, as the kernel does; 16 honours every claim)")
    parser.add_argument("--weights", choices=(*WEIGHTS, "all"), default="all",
                        help="the weights policy the model is loaded with (default: all three)")
    parser.add_argument("--depthwise", action="store_true",
                        help="the neon depthwise kernels' tap loops, int32 against int16 sums, per core")
    parser.add_argument("--cpu", choices=CPUS, action="append", help="cores to project (default: all)")
    parser.add_argument("--config", choices=tuple(CONFIGS), action="append", help="configurations (default: all)")
    parser.add_argument("--breakdown", choices=tuple(CONFIGS),
                        help="per layer and piece cycles of one configuration (--backend, first --cpu, --weights)")
    parser.add_argument("--backend", choices=BACKENDS, default="neon", help="backend of --breakdown")
    args = parser.parse_args(argv)
    NEON_ACC16_MIN_BLOCK = args.min_block
    cpus = tuple(args.cpu) if args.cpu else CPUS
    weights = WEIGHTS if args.weights == "all" else (args.weights,)
    if args.acc16:
        main_acc16()
        return
    if args.depthwise:
        main_depthwise(cpus)
        return
    if args.breakdown:
        main_breakdown(args.breakdown, args.backend, cpus[0], weights[0])
        return
    print(f"cycles per iteration ({mca_tool()}, {MCA_ITERATIONS} iterations back to back)")
    print(f"{'kernel':<7} {'cpu':<11} {'K loop':>7} {'flush':>6} {'tail':>6} {'group':>7} {'+affine':>7} "
          f"{'sum(x)':>6} {'tables':>6}")
    for kind in KINDS:
        for cpu in cpus:
            if KINDS[kind].dotprod and cpu not in DOTPROD_CPUS:
                continue
            c = piece_cycles(kind, cpu)
            aff = piece_cycles(kind, cpu, True)["group"] if kind != "s16" else float("nan")
            print(f"{kind:<7} {cpu:<11} {c['k_loop']:7.2f} {c['flush']:6.2f} {c.get('tail', 0):6.2f} "
                  f"{c['group']:7.2f} {aff:7.2f} {c.get('sum_x', 0):6.2f} {c.get('tables', 0):6.2f}")
    print("(K loop: s8, acc16: 8 rows x 16 K; dot_s8: 4 rows x 16 K; s16: 4 rows x 8 K; s4: 8 rows x 32 K; dot_s4: 4 rows x 32 K;\n"
          " s1: 16 rows x 16 K. group: 8 rows (s8, acc16, s4: 16 rows; s1: a 16-row panel), +affine: with the fused affine layer. sum(x): 16 K of the\n"
          " packed kernels' per-input sum; tables: 16 K of the 1-bit table build, per input vector)\n")
    print(f"(neon runs int8 dense layers that claim an int16 block of {NEON_ACC16_MIN_BLOCK} products or more with "
          "the int16 kernel;\n kernels per dense layer: s8 int8, acc16 int8 int16-block, dot_s8 int8 SDOT, s16 16x8, "
          "s4 / dot_s4 4-bit, s1 1-bit)")
    print(f"{'config':<6} {'weights':<17} {'backend':<13} {'cpu':<11} {'MACs':>7} {'cycles/inf':>10} "
          f"{'dense':>9} {'MACs/cycle':>10} {'MCPS@10ms':>9} {'kernels'}")
    for config in args.config or CONFIGS:
        layers, act_bits = paper_layers(config)
        for label, policy in _policies(layers, act_bits, weights):
            try:
                rows = project(layers, act_bits, cpus, weights=policy)
            except ExtractionError as e:
                print(f"{config:<6} {label:<17} not projected: {e}")
                continue
            for r in rows:
                kinds = "/".join(dict.fromkeys(r["kinds"]))
                print(f"{config:<6} {label:<17} {r['backend']:<13} {r['cpu']:<11} {r['macs']:>7} {r['cycles']:>10} "
                      f"{r['dense_cycles']:>9} {r['macs_per_cycle']:>10.2f} {r['mcps']['10ms']:>9.2f} {kinds}")


if __name__ == "__main__":
    main()
