"""Projected Arm cycles per inference of kwsint's NEON backends, per model configuration.

    python benchmarks/mca/project.py          # every backend and core, per configuration
    python benchmarks/mca/project.py --acc16  # neon: int32 against int16 accumulation
    python benchmarks/mca/project.py --packed # neon: int8 containers against packed 4-bit weights

A projection from LLVM's scheduling models, not a measurement on Arm hardware:

1. The real NEON kernels (csrc/neon/*.c) are compiled with aarch64-linux-gnu-gcc -O2 -S, with
   the flags of the project's qemu cross build (tests/test_aarch64.py).
2. From the generated assembly, each kernel's hot code is cut out by its loops (a loop is a
   branch back to a label of the same function): the int8 dense K loop (4 rows x 16 K per
   iteration), the dense row-group path (8 rows: the per-pass setup, reduction, bias,
   requantization, clamp, store and loop control, everything of the row-group loop but the K
   loops), and the affine loop (16 channels per iteration). For a dense layer that carries a
   proven int16 block (docs/arithmetic.md 5.6) the neon backend runs
   kws_neon_fully_connected_s8_acc16: its K loop (4 rows x 16 K, SMLAL + SMLAL2 into int16
   lanes, no SADALP) and its block flush (the block loop around the K loop without it: zeroing
   the int16 lanes, the block end, 4 SADALP into int32 and loop control) are cut out the same
   way, by that loop nesting.
3. llvm-mca (Debian llvm-16) runs each piece 1000 times back to back on a core's model;
   cycles per iteration = Total Cycles / Iterations.
4. Trip counts per layer follow the C loops of csrc/neon/fully_connected.c and affine.c (see
   trip_counts), and cycles per inference = sum over layers and loop kinds of
   iterations x cycles per iteration. `--acc16` sets the neon backend with int32 accumulation
   (the layers' int16 claims ignored, as for an 8-bit model) beside the same backend with the
   claims as exported, dense layers alone and whole inference.

Not counted: cache and TLB misses (llvm-mca assumes every load hits L1), branch
mispredictions, the kernels' per-call prologues, the float QUANTIZE of the input window, the
posterior and the C model's layer dispatch. Approximations: a K tail (K % 16 != 0) is costed
as one ARMv8.0 K step per 4-row pass, the path it runs (fc_s8.h), in every int8 kernel; a
partial row group (N % 8 != 0) and the affine's zero-padded last block cost as much as whole
ones; the int16 K loop and the block flush are costed each back to back, so a block of B K
costs B / 16 K iterations + 1 flush (on these models a straight sequence of B / 16 K bodies and
one flush gives the same cycles to within 1%, tests/test_mca_projection.py).

`--packed`: dense layers with 2..4-bit weights loaded with weights="packed" run
kws_neon_fully_connected_s8_nibbles (csrc/neon/fully_connected_nibbles.c). Its K loop (4 rows
x 16 K: 4 LDR d, AND/USHR, ZIP1/ZIP2, EOR/SUB, then SMULL + SMLAL2 + SADALP) and its scalar K
tail loop (one K element of one row per iteration, 4 x (K % 16) per pass) are cut out of the
compiled code and costed; the per-row overhead around the scalar tail is not counted, and the
row-group path is NOT extracted from the nibble kernel: it reuses the int8 kernel's
(kws_neon_fully_connected_s8) row-group cost, an approximation (the nibble kernel calls its
dot4 helper out of line and sets up 4 row pointers per pass in a small loop).
"""

import argparse
import functools
import math
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NEON = ROOT / "csrc" / "neon"
CC = "aarch64-linux-gnu-gcc"
# The flags of the qemu cross build (tests/test_aarch64.py), so these are the instructions
# that run there. fully_connected_dot.c gets ARMv8.2 + dotprod from its own
# `#pragma GCC target`, as in that build (adding -march=armv8.2-a+dotprod changes nothing).
CFLAGS = ("-std=c11", "-O2", "-fno-fast-math", "-ffp-contract=off", f"-I{ROOT / 'csrc' / 'include'}",
          f"-I{ROOT / 'csrc'}")
CPUS = ("cortex-a53", "cortex-a55", "cortex-a72", "cortex-a76")
DOTPROD_CPUS = ("cortex-a55", "cortex-a76")  # ARMv8.2 cores; the A53 and A72 have no SDOT
BACKENDS = ("neon", "neon-dotprod")
RATES_HZ = {"10ms": 100.0, "30ms": 1000.0 / 30.0}  # one inference per 10 ms, per 30 ms
MCA_ITERATIONS = 1000

# The dense kernels: 8 rows per group, computed as 2 passes of 4 rows (fully_connected.c).
GROUP_ROWS, PASS_ROWS = 8, 4


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
    whose K loop runs inside a block loop (the int16 kernel): the block loop's own code (all of
    it but the K loop) must hold it `markers` times.
    """

    source: str
    function: str
    marker: str
    markers: int
    step: int
    dotprod: bool = False
    mix: tuple[tuple[str, int], ...] = ()
    flush: str | None = None


DENSE = {
    ("neon", 8): Kernel("fully_connected.c", "kws_neon_fully_connected_s8", "sadalp", 4, 16),
    ("neon-dotprod", 8): Kernel("fully_connected_dot.c", "kws_neon_dot_fully_connected_s8", "sdot", 4, 16, True),
    # 16x8: both backends run the ARMv8.0 kernel.
    ("neon", 16): Kernel("fully_connected.c", "kws_neon_fully_connected_s16", "smlal2", 4, 8),
    ("neon-dotprod", 16): Kernel("fully_connected.c", "kws_neon_fully_connected_s16", "smlal2", 4, 8),
}
# int8 with a proven int16 block (docs/arithmetic.md 5.6): the neon backend only (SDOT
# accumulates in int32; neon-dotprod runs its int32 kernel whatever the layer claims).
# One K iteration: 4 SMLAL + 4 SMLAL2 into int16 lanes, no SMULL, no SADALP.
ACC16 = Kernel("fully_connected.c", "kws_neon_fully_connected_s8_acc16", "smlal", 4, 16,
               mix=(("smlal2", 4), ("sadalp", 0), ("smull", 0)), flush="sadalp")
# Packed 4-bit weights (KWS_HELD_NIBBLES, csrc/blob.c: 2..4-bit layers loaded with
# weights="packed"), neon backend. One K iteration: 4 rows x 16 K, each row's 8 bytes split into
# low / high nibbles (AND, USHR), put in K order (ZIP1, ZIP2), sign-extended (EOR, SUB), then
# SMULL + SMLAL2 + SADALP as in the int8 kernel.
NIBBLES = Kernel("fully_connected_nibbles.c", "kws_neon_fully_connected_s8_nibbles", "sadalp", 4, 16,
                 mix=(("smull", 4), ("smlal2", 4), ("zip1", 4), ("zip2", 4), ("ushr", 4), ("eor", 4)))
# Its K % 16 tail: a scalar loop, one element of one row per iteration (LDRSB x, LDRB the code
# byte, shift, SBFX, MADD).
NIBBLE_TAIL = Kernel(NIBBLES.source, NIBBLES.function, "ldrsb", 1, 1, mix=(("ldrb", 1), ("madd", 1)))
PACKED_BITS = range(2, 5)  # weight bits held as nibbles when packed
AFFINE = {
    8: Kernel("affine.c", "kws_neon_affine_s8", "sqrdmulh", 4, 16),
    16: Kernel("affine.c", "kws_neon_affine_s16", "srshl", 4, 8),
}


# --- trip counts -------------------------------------------------------------------------

def trip_counts(kind: str, in_size: int, out_size: int, act_bits: int = 8, acc16_block: int = 0) -> dict[str, int]:
    """Iterations per inference of each costed piece for one layer, as the C loops run them.

    Dense (fully_connected.c): rows in groups of 8, ceil(N / 8) groups; each group runs one
    4-row pass, or two when it has more than 4 rows, so ceil(N / 4) passes (rows past N reuse
    the last row and are discarded). Each pass runs K // step K iterations and, when
    K % step != 0, one tail step. With acc16_block = B products per row (int8 only; a power of
    two, 16..16384; 0: int32 accumulation) the pass is dot4_s8_acc16: the K16 = K // 16 * 16
    elements of whole steps in blocks of B, the last one shorter, so ceil(K16 / B) block
    flushes around the same K // 16 K iterations, then the same tail step. Affine (affine.c):
    ceil(N / step) blocks, the last one zero-padded. Keys: "k_loop", "flush", "tail", "group",
    "affine"; values in iterations.
    """
    if kind == "dense":
        step = DENSE[("neon", act_bits)].step
        passes = math.ceil(out_size / PASS_ROWS)
        flushes = 0
        if acc16_block:
            if act_bits != 8 or acc16_block < ACC16.step or acc16_block & (acc16_block - 1):
                raise ValueError(f"acc16_block: {acc16_block} products; int8 layers claim a power of two >= 16")
            flushes = passes * -(-(in_size // step * step) // acc16_block)
        return {"k_loop": passes * (in_size // step), "flush": flushes, "tail": passes * (in_size % step != 0),
                "group": math.ceil(out_size / GROUP_ROWS), "affine": 0}
    if kind == "affine":
        return {"k_loop": 0, "flush": 0, "tail": 0, "group": 0,
                "affine": math.ceil(out_size / AFFINE[act_bits].step)}
    raise ValueError(f"unknown layer kind {kind!r}")


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


@functools.cache
def _compile(source: str) -> dict[str, Function]:
    """Compiles csrc/neon/<source> to aarch64 assembly; its functions by name."""
    if shutil.which(CC) is None:
        raise ExtractionError(f"{CC} not found: apt-get install gcc-aarch64-linux-gnu (scripts/setup does)")
    cmd = [CC, *CFLAGS, "-S", "-o", "-", str(NEON / source)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise ExtractionError(f"compiling {source} failed:\n{' '.join(cmd)}\n{r.stderr}")
    functions, name, body = {}, None, []
    for raw in r.stdout.splitlines():
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


@dataclass(frozen=True)
class Pieces:
    """A dense kernel's hot code: its K loop bodies, the straight row-group path and, for the
    int16 kernel, its block flushes (one per K loop)."""

    k_loops: tuple[str, ...]
    group: str
    flushes: tuple[str, ...] = ()


def _hot_loops(f: Function, marker: str, markers: int, mix: Sequence[tuple[str, int]] = ()) -> list[tuple[int, int]]:
    """The innermost loops of f whose body holds `marker`, each checked to hold it `markers` times
    (and each (mnemonic, count) of mix exactly count times).

    Only straight bodies count as loops here: a branch back to shared code (a jump to a
    common ret, say) also targets an earlier label but passes a ret or an unconditional
    branch on the way."""
    straight = _straight_loops(f)
    inner = [(i, j) for i, j in straight if not any(i <= a and b <= j and (a, b) != (i, j) for a, b in straight)]
    hot = []
    for i, j in inner:
        mnemonics = [line.split()[0] for line in f.instructions(i, j)]
        count = mnemonics.count(marker)
        if count:
            for name, expected in ((marker, markers), *mix):
                if mnemonics.count(name) != expected:
                    raise ExtractionError(f"{f.name}: the loop at {f.lines[i].rstrip(':')} holds "
                                          f"{mnemonics.count(name)} {name}, not {expected}; the projection costs "
                                          f"no such loop")
            hot.append((i, j))
    return hot


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
    k_loops; for an int16 kernel the block loops around them, whose own code goes to flushes)
    and calls to local functions followed to their first ret. Returns the instructions and how
    many K loops were cut. Fails on anything else that would repeat or skip code."""
    hot = dict(_hot_loops(f, kernel.marker, kernel.markers, kernel.mix))
    blocks = _block_loops(f, kernel, hot)
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


@functools.cache
def dense_pieces(backend: str, act_bits: int, acc16: bool = False) -> Pieces:
    """Cuts a dense kernel's K loops and row-group path out of its compiled code.

    The row-group loop is the loop of the exported function that runs the most K loops (its
    own or those of functions it calls); it must run GROUP_ROWS / PASS_ROWS of them, the
    passes trip_counts assumes. acc16: the int16 kernel (ACC16; backend "neon", act_bits 8
    only), whose pieces include the block flushes.
    """
    if acc16 and (backend, act_bits) != ("neon", 8):
        raise ValueError(f"int16 accumulation: the neon backend with int8 activations only, not {backend} "
                         f"with {act_bits}-bit activations")
    kernel = ACC16 if acc16 else DENSE[(backend, act_bits)]
    functions = _compile(kernel.source)
    if kernel.function not in functions:
        raise ExtractionError(f"{kernel.function} not found in the assembly of {kernel.source}")
    f = functions[kernel.function]
    hot = _hot_loops(f, kernel.marker, kernel.markers, kernel.mix)
    k_loop_spans = set(hot) | {(i, v[0]) for i, v in _block_loops(f, kernel, dict(hot)).items()}

    def runs_marker(lines) -> bool:  # holds the marker, or calls a function of this file that does
        return any(line.split()[0] == kernel.marker
                   or (m := _CALL.match(line)) and m.group(1) in functions and runs_marker(functions[m.group(1)].lines)
                   for line in lines)

    best, errors = None, []
    for i, j in f.loops:
        if (i, j) in k_loop_spans or not runs_marker(f.lines[i:j + 1]):
            continue
        k_loops: list[str] = []
        flushes: list[str] = []
        try:
            body, passes = _straight(f, i, j, kernel, functions, k_loops, flushes)
        except ExtractionError as e:
            errors.append(str(e))
            continue
        if passes and (best is None or (passes, -len(body)) > (best[0], -len(best[1]))):
            best = (passes, body, k_loops, flushes)
    if best is None:
        reasons = "; ".join(dict.fromkeys(errors)) or "no loop runs it"
        raise ExtractionError(f"{kernel.function}: no straight row-group loop around the {kernel.marker} K loop "
                              f"({reasons})")
    passes, body, k_loops, flushes = best
    if passes != GROUP_ROWS // PASS_ROWS:
        raise ExtractionError(f"{kernel.function}: the row-group loop runs {passes} K loops, expected "
                              f"{GROUP_ROWS // PASS_ROWS}")
    if kernel.flush and len(flushes) != passes:
        raise ExtractionError(f"{kernel.function}: {len(flushes)} block flushes for {passes} K loops")
    return Pieces(tuple(k_loops), "\n".join(body), tuple(flushes))


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


@functools.cache
def nibble_pieces() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The packed 4-bit kernel's K loops (NIBBLES) and scalar K tail loops (NIBBLE_TAIL), cut out
    of the compiled kws_neon_fully_connected_s8_nibbles and the static helpers it calls.

    Raises ExtractionError, naming the function, when a loop holding SADALP (or LDRSB) has not
    the expected instruction mix, or when no such loop is found."""
    functions = _compile(NIBBLES.source)
    if NIBBLES.function not in functions:
        raise ExtractionError(f"{NIBBLES.function} not found in the assembly of {NIBBLES.source}")
    found: dict[Kernel, list[str]] = {NIBBLES: [], NIBBLE_TAIL: []}
    for f in _reachable(functions, NIBBLES.function):
        for kernel, out in found.items():
            try:
                loops = _hot_loops(f, kernel.marker, kernel.markers, kernel.mix)
            except ExtractionError as e:
                raise ExtractionError(f"{NIBBLES.function}: {e}") from None
            out += ["\n".join(f.instructions(i, j)) for i, j in loops]
    for kernel, what in ((NIBBLES, "K loop (4 rows x 16 K)"), (NIBBLE_TAIL, "scalar K tail loop")):
        if not found[kernel]:
            mix = ", ".join(f"{c} {m}" for m, c in ((kernel.marker, kernel.markers), *kernel.mix))
            raise ExtractionError(f"{NIBBLES.function}: no innermost loop with {mix}: the {what} the "
                                  f"projection costs is not there")
    return tuple(found[NIBBLES]), tuple(found[NIBBLE_TAIL])


# --- llvm-mca ----------------------------------------------------------------------------

def _mca_tool() -> str:
    tool = shutil.which("llvm-mca-16") or shutil.which("llvm-mca")
    if tool is None:
        raise ExtractionError("llvm-mca not found: apt-get install llvm-16 (scripts/setup does)")
    return tool


@functools.cache
def mca_cycles(code: str, cpu: str, dotprod: bool = False) -> float:
    """llvm-mca's cycles per iteration of `code` (aarch64 assembly) on `cpu`, run back to back."""
    cmd = [_mca_tool(), "-mtriple=aarch64", f"-mcpu={cpu}", f"-iterations={MCA_ITERATIONS}"]
    if dotprod:
        cmd.append("-mattr=+dotprod")
    r = subprocess.run(cmd, input=code + "\n", capture_output=True, text=True)
    if r.returncode != 0:
        raise ExtractionError(f"llvm-mca failed on {cpu}:\n{r.stderr}\n{code}")
    fields = dict(re.findall(r"^(Iterations|Total Cycles):\s+(\d+)$", r.stdout, re.M))
    return int(fields["Total Cycles"]) / int(fields["Iterations"])


def _mean(pieces: Sequence[str], cpu: str, dotprod: bool = False) -> float:
    return sum(mca_cycles(p, cpu, dotprod) for p in pieces) / len(pieces)


def loop_cycles(backend: str, act_bits: int, cpu: str, acc16: bool = False) -> dict[str, float]:
    """Cycles per iteration of each costed piece on `cpu`, keyed as trip_counts' keys.

    k_loop: one K iteration of the backend's dense kernel (the mean over its inlined copies);
    flush: one block flush of the int16 kernel (acc16; 0 otherwise: int32 kernels have none);
    tail: one K step of the ARMv8.0 kernel, which every int8 backend runs for its K tail;
    group: the row-group path (8 rows); affine: one block of the affine kernel.
    acc16: the int16 kernel's K loop, flush and row-group path (neon, int8 only).
    """
    kernel = ACC16 if acc16 else DENSE[(backend, act_bits)]
    pieces, armv8 = dense_pieces(backend, act_bits, acc16), dense_pieces("neon", act_bits)
    return {
        "k_loop": _mean(pieces.k_loops, cpu, kernel.dotprod),
        "flush": _mean(pieces.flushes, cpu) if acc16 else 0.0,
        "tail": _mean(armv8.k_loops, cpu),
        "group": mca_cycles(pieces.group, cpu, kernel.dotprod),
        "affine": mca_cycles(affine_loop(act_bits), cpu),
    }


def nibble_cycles(cpu: str) -> dict[str, float]:
    """Cycles per iteration of the packed 4-bit kernel's pieces on `cpu`: k_loop (4 rows x 16 K)
    and tail (one scalar K element of one row), extracted; group: the int8 kernel's row-group
    path, reused (not extracted from the nibble kernel: an approximation); affine as loop_cycles."""
    k_loops, tails = nibble_pieces()
    int8 = loop_cycles("neon", 8, cpu)
    return {"k_loop": _mean(k_loops, cpu), "flush": 0.0, "tail": _mean(tails, cpu), "group": int8["group"],
            "affine": int8["affine"]}


def nibble_trip_counts(in_size: int, out_size: int) -> dict[str, int]:
    """Iterations per inference of the packed kernel's pieces for one dense layer: as the int8
    kernel's (trip_counts), but the tail counts scalar iterations, 4 rows x (K % 16) per pass."""
    counts = trip_counts("dense", in_size, out_size)
    counts["tail"] = math.ceil(out_size / PASS_ROWS) * PASS_ROWS * (in_size % NIBBLES.step)
    return counts


def _packed(layer: Mapping) -> bool:
    return layer["kind"] == "dense" and layer.get("weight_bits", 8) in PACKED_BITS


def compare_packed(layers: Sequence[Mapping], act_bits: int = 8, cpus: Sequence[str] = CPUS) -> list[dict]:
    """The neon backend with int8 containers (as loaded by default) against packed nibbles (the
    2..4-bit dense layers on kws_neon_fully_connected_s8_nibbles, the others unchanged).

    One dict per cpu: cpu, dense8 / dense4 (projected cycles of the dense layers), total8 / total4
    (whole inference), dense_ratio and total_ratio (packed cycles / int8-container cycles: above 1
    is a projected slow-down from unpacking)."""
    rows = []
    for cpu in cpus:
        per8 = [layer_cycles(l, act_bits, "neon", cpu) for l in layers]
        c = nibble_cycles(cpu)
        per4 = [sum(n * c[k] for k, n in nibble_trip_counts(l["in_size"], l["out_size"]).items()) if _packed(l)
                else x for l, x in zip(layers, per8)]
        dense8 = sum(x for x, l in zip(per8, layers) if l["kind"] == "dense")
        dense4 = sum(x for x, l in zip(per4, layers) if l["kind"] == "dense")
        rows.append(dict(cpu=cpu, dense8=round(dense8), dense4=round(dense4), total8=round(sum(per8)),
                         total4=round(sum(per4)), dense_ratio=dense4 / dense8, total_ratio=sum(per4) / sum(per8)))
    return rows


# --- projection --------------------------------------------------------------------------

# Claims below this many products run the int32 kernel on neon: NEON_ACC16_MIN_LOG2 in
# csrc/neon/fully_connected.c, set from this projection.
NEON_ACC16_MIN_BLOCK = 128


def _uses_acc16(layer: Mapping, backend: str, act_bits: int, acc16: bool) -> int:
    """The block (products) this layer runs in int16 on this backend, or 0: the neon backend with
    int8 activations honours a dense layer's claim of NEON_ACC16_MIN_BLOCK products or more
    (csrc/model.c, csrc/neon/fully_connected.c); neon-dotprod has no int16 kernel."""
    block = layer.get("acc16_block", 0) if acc16 and backend == "neon" and act_bits == 8 else 0
    return block if layer["kind"] == "dense" and block >= NEON_ACC16_MIN_BLOCK else 0


def layer_cycles(layer: Mapping, act_bits: int, backend: str, cpu: str, acc16: bool = True) -> float:
    """Projected cycles of one layer (dict as in project) on one backend and core."""
    block = _uses_acc16(layer, backend, act_bits, acc16)
    counts = trip_counts(layer["kind"], layer["in_size"], layer["out_size"], act_bits, block)
    per_iteration = loop_cycles(backend, act_bits, cpu, acc16=bool(block))
    return sum(counts[piece] * per_iteration[piece] for piece in per_iteration)


def project(layers: Iterable[Mapping], act_bits: int = 8, cpus: Sequence[str] = CPUS,
            backends: Sequence[str] = BACKENDS, acc16: bool = True) -> list[dict]:
    """Projected cycles per inference of a layer stack, per backend and core.

    layers: dicts with kind ("dense" or "affine"), in_size, out_size and optionally
    acc16_block (products per int16 block, 0 = none), as in kwsint Model.info()["layers"].
    The neon backend runs a dense layer that claims a block with the int16 kernel, as the
    engine does, unless acc16 is False (every layer in int32); neon-dotprod always runs int32.
    neon-dotprod is projected only on DOTPROD_CPUS.
    Returns one dict per (backend, cpu): backend, cpu, macs (per inference, dense K x N plus
    one per affine channel, as Model.info counts them), cycles (projected cycles per
    inference), dense_cycles (those of the dense layers), macs_per_cycle, and mcps (projected
    million cycles per second, keyed by RATES_HZ: one inference every 10 ms and every 30 ms).
    Raises ExtractionError, naming the function, when a kernel cannot be costed.
    """
    layers = list(layers)
    macs = sum(l["in_size"] * l["out_size"] if l["kind"] == "dense" else l["out_size"] for l in layers)
    rows = []
    for backend in backends:
        for cpu in cpus:
            if backend == "neon-dotprod" and cpu not in DOTPROD_CPUS:
                continue
            per_layer = [layer_cycles(l, act_bits, backend, cpu, acc16) for l in layers]
            cycles = sum(per_layer)
            dense = sum(c for c, l in zip(per_layer, layers) if l["kind"] == "dense")
            rows.append(dict(backend=backend, cpu=cpu, macs=macs, cycles=round(cycles), dense_cycles=round(dense),
                             macs_per_cycle=macs / cycles,
                             mcps={name: cycles * hz / 1e6 for name, hz in RATES_HZ.items()}))
    return rows


def compare_acc16(layers: Sequence[Mapping], act_bits: int = 8, cpus: Sequence[str] = CPUS) -> list[dict]:
    """The neon backend with int32 accumulation (claims ignored) against int16 (claims as given).

    One dict per cpu: cpu, dense32 / dense16 (projected cycles of the dense layers), total32 /
    total16 (whole inference), dense_ratio and total_ratio (int32 cycles / int16 cycles: above 1
    is a projected speed-up from int16 accumulation)."""
    rows = []
    for cpu in cpus:
        (a,) = project(layers, act_bits, (cpu,), ("neon",), acc16=False)
        (b,) = project(layers, act_bits, (cpu,), ("neon",), acc16=True)
        rows.append(dict(cpu=cpu, dense32=a["dense_cycles"], dense16=b["dense_cycles"], total32=a["cycles"],
                         total16=b["cycles"], dense_ratio=a["dense_cycles"] / b["dense_cycles"],
                         total_ratio=a["cycles"] / b["cycles"]))
    return rows


def paper_layers(config: str) -> tuple[list[dict], int]:
    """The layer shapes, int16 blocks (products, 0 = none) and activation bits of a paper
    configuration (kwsint.generate, the blocks as the exporter claims them)."""
    from kwsint.generate import paper_model

    spec = paper_model(config)
    return [dict(kind=l.kind, in_size=l.in_size, out_size=l.out_size,
                 acc16_block=(1 << l.acc16_block) if l.acc16_block else 0,
                 weight_bits=l.weight_bits) for l in spec.layers], spec.act_bits


def _blocks(layers: Sequence[Mapping]) -> str:
    blocks = sorted({l.get("acc16_block", 0) for l in layers if l["kind"] == "dense"})
    return "/".join(str(b) if b else "-" for b in blocks)


def main_acc16() -> None:
    from kwsint.generate import CONFIGS

    print(f"neon, cycles per iteration (llvm-mca, {MCA_ITERATIONS} iterations back to back)")
    print(f"{'cpu':<11} {'K int32':>7} {'K int16':>7} {'flush':>6} {'group32':>7} {'group16':>7}")
    for cpu in CPUS:
        a, b = loop_cycles("neon", 8, cpu), loop_cycles("neon", 8, cpu, acc16=True)
        print(f"{cpu:<11} {a['k_loop']:7.2f} {b['k_loop']:7.2f} {b['flush']:6.2f} {a['group']:7.2f} {b['group']:7.2f}")
    print("(K: one K iteration, 4 rows x 16 K = 64 MACs; flush: one int16 block flush (4 SADALP + block loop);\n"
          " group: the 8-row row-group path of the int32 / int16 kernel)\n")
    print("neon, int32 accumulation (claims ignored) against int16 (claims as exported); "
          "ratio = int32 cycles / int16 cycles")
    print(f"{'config':<6} {'blocks':<8} {'cpu':<11} {'dense i32':>9} {'dense i16':>9} {'ratio':>5} "
          f"{'total i32':>9} {'total i16':>9} {'ratio':>5}")
    for config in CONFIGS:
        layers, act_bits = paper_layers(config)
        if act_bits != 8:
            print(f"{config:<6} not listed: {act_bits}-bit activations, no int16 accumulation")
            continue
        for r in compare_acc16(layers, act_bits):
            print(f"{config:<6} {_blocks(layers):<8} {r['cpu']:<11} {r['dense32']:>9} {r['dense16']:>9} "
                  f"{r['dense_ratio']:>5.2f} {r['total32']:>9} {r['total16']:>9} {r['total_ratio']:>5.2f}")
    print("(blocks: the dense layers' int16 blocks in products, - = int32)")


def main_packed() -> None:
    from kwsint.generate import CONFIGS

    print(f"neon, cycles per iteration (llvm-mca, {MCA_ITERATIONS} iterations back to back)")
    print(f"{'cpu':<11} {'K int8':>7} {'K nib':>7} {'tail8':>6} {'tail nib':>8} {'group':>7}")
    for cpu in CPUS:
        a, b = loop_cycles("neon", 8, cpu), nibble_cycles(cpu)
        print(f"{cpu:<11} {a['k_loop']:7.2f} {b['k_loop']:7.2f} {a['tail']:6.2f} {b['tail']:8.2f} {a['group']:7.2f}")
    print("(K: one K iteration, 4 rows x 16 K = 64 MACs; tail8: one int8 tail step per 4-row pass;\n"
          " tail nib: one scalar K element of one row, 4 x (K % 16) per pass, extracted, its per-row\n"
          " overhead not counted; group: the 8-row row-group path, the int8 kernel's, REUSED for the\n"
          " nibble kernel (not extracted from it: an approximation))\n")
    print("neon, int8 containers against packed 4-bit nibbles (2..4-bit dense layers); "
          "ratio = packed cycles / int8 cycles")
    print(f"{'config':<6} {'cpu':<11} {'dense i8':>9} {'dense nib':>9} {'ratio':>5} "
          f"{'total i8':>9} {'total nib':>9} {'ratio':>5}")
    for config in CONFIGS:
        layers, act_bits = paper_layers(config)
        if act_bits != 8 or not any(_packed(l) for l in layers):
            continue
        for r in compare_packed(layers, act_bits):
            print(f"{config:<6} {r['cpu']:<11} {r['dense8']:>9} {r['dense4']:>9} {r['dense_ratio']:>5.2f} "
                  f"{r['total8']:>9} {r['total4']:>9} {r['total_ratio']:>5.2f}")
    print("(configurations with no 2..4-bit dense layer run no nibble kernel and are not listed)")


def main(argv: Sequence[str] | None = None) -> None:
    global NEON_ACC16_MIN_BLOCK
    from kwsint.generate import CONFIGS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--acc16", action="store_true",
                        help="the neon backend with int32 against int16 accumulation, per configuration and core")
    parser.add_argument("--min-block", type=int, default=NEON_ACC16_MIN_BLOCK,
                        help="shortest claimed block (products) run in int16 on neon "
                             f"(default {NEON_ACC16_MIN_BLOCK}, as the kernel does; 16 honours every claim)")
    parser.add_argument("--packed", action="store_true",
                        help="the neon backend with int8 containers against packed 4-bit weights (2..4-bit dense "
                             "layers), per configuration and core")
    args = parser.parse_args(argv)
    NEON_ACC16_MIN_BLOCK = args.min_block
    if args.packed:
        main_packed()
        return
    if args.acc16:
        main_acc16()
        return
    print(f"cycles per iteration (llvm-mca, {MCA_ITERATIONS} iterations back to back)")
    print(f"{'backend':<13} {'cpu':<11} {'K loop':>7} {'K tail':>7} {'row group':>9} {'affine':>7}")
    for backend in BACKENDS:
        for cpu in CPUS if backend == "neon" else DOTPROD_CPUS:
            c = loop_cycles(backend, 8, cpu)
            print(f"{backend:<13} {cpu:<11} {c['k_loop']:7.2f} {c['tail']:7.2f} {c['group']:9.2f} {c['affine']:7.2f}")
    print("(int8; K loop: 4 rows x 16 K = 64 MACs; row group: 8 rows; affine: 16 channels;\n"
          " the int16 kernel's pieces: --acc16)\n")
    print(f"(neon runs the dense layers that claim an int16 block of {NEON_ACC16_MIN_BLOCK} products or more "
          "with the int16 kernel)")
    print(f"{'config':<6} {'backend':<13} {'cpu':<11} {'MACs':>7} {'cycles/inf':>10} {'MACs/cycle':>10} "
          f"{'MCPS@10ms':>9} {'MCPS@30ms':>9}")
    for config in CONFIGS:
        layers, act_bits = paper_layers(config)
        try:
            rows = project(layers, act_bits)
        except ExtractionError as e:
            print(f"{config:<6} not projected: {e}")
            continue
        for r in rows:
            print(f"{config:<6} {r['backend']:<13} {r['cpu']:<11} {r['macs']:>7} {r['cycles']:>10} "
                  f"{r['macs_per_cycle']:>10.2f} {r['mcps']['10ms']:>9.2f} {r['mcps']['30ms']:>9.2f}")


if __name__ == "__main__":
    main()
