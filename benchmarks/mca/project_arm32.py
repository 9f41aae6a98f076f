"""Projected cycles per MAC of kwsint's dense inner loops on 32-bit Arm cores (issue 21 item 7).

    python benchmarks/mca/project_arm32.py

A projection from LLVM's scheduling models of one loop run back to back, not a measurement on Arm hardware,
and only the inner K loop: not the row setup, the epilogue, the K tail, cache misses or branch mispredictions.

1. Each kernel source is compiled with -O2 -S and the target's flags from `make -C csrc arch-flags TARGET=...`
   (the flags the library is built with): csrc/neon/fully_connected.c for armv7 with arm-linux-gnueabihf-gcc
   (Thumb-2 NEON; kws_neon_fully_connected_s8, int32 sums: 8 rows x 16 K = 128 MACs an iteration, its 8
   VPADAL.S16 the marker), csrc/portable/fully_connected.c and fully_connected_packed.c for Cortex-M4 and
   Cortex-M7 with arm-none-eabi-gcc (int8: one SMLABB, 1 MAC; 4-bit codes: one MUL and one MLA, 2 MACs; 1-bit
   signs: one conditional negate, RSBNE, then an add, 1 MAC).
2. The innermost loops holding the marker are cut out of the function (several when the compiler made
   copies, as for the NEON kernel: their mean is taken); each is checked to hold the marker as often as the
   MACs above assume.
3. llvm-mca runs each 1000 times back to back on a core's model; cycles per MAC = Total Cycles / Iterations
   / MACs per iteration.

LLVM 14's Cortex-M7 model has no IT instruction, so the M7 loops are costed without theirs (the 1-bit loop has
one, before its RSBNE): an under-estimate of at most the IT's own issue slot an iteration.

Cores: LLVM (llvm-mca-14 checked) has no scheduling model for the Cortex-A7 or A8 (itineraries only, which
llvm-mca refuses), nor for the A53 in AArch32, so the armv7 NEON loop is projected on the nearest AArch32 cores
that have one: the Cortex-A9 (ARMv7-A, a 64-bit NEON datapath like the A7's; LLVM's cortex-a15 uses the same model)
and the Cortex-A57 in AArch32 (ARMv8-A, 128-bit NEON, out of order). Neither is an A7. The Cortex-M4 and M7
have models of their own (triple thumbv7em).
"""


import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from project import MCA_ITERATIONS, ExtractionError, Function, _parse, mca_tool  # noqa: E402

from kwsint._build_ffi import C_FLAGS, CSRC, INCLUDE_DIRS  # noqa: E402

_CONDS = "eq|ne|cs|hs|cc|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le"
_BRANCH = re.compile(rf"^(?:b(?:{_CONDS})?|cbn?z)(?:\.[wn])?\s+(?:\w+,\s*)?([\w.$]+)$")


@dataclass(frozen=True)
class Loop:
    """One kernel's inner K loop: what it is, how to compile it, how to find it and what one iteration does."""

    name: str
    target: str  # csrc/Makefile TARGET: the compiler and flags
    source: str  # under csrc/
    function: str
    marker: str  # a mnemonic only the K loop holds
    markers: int  # how many times one iteration holds it
    macs: int  # multiply-accumulates per iteration
    triple: str
    cpus: tuple[str, ...]


ARMV7_CPUS = ("cortex-a9", "cortex-a57")  # modelled AArch32 cores; the Cortex-A7 has no llvm-mca model
M_CPUS = ("cortex-m4", "cortex-m7")
LOOPS = (
    Loop("neon int8", "armv7", "neon/fully_connected.c", "kws_neon_fully_connected_s8", "vpadal.s16", 8, 128,
         "thumbv7", ARMV7_CPUS),
    *(Loop(name, cpu, source, function, marker, 1, macs, "thumbv7em", (cpu,))
      for cpu in M_CPUS
      for name, source, function, marker, macs in (
          ("portable int8", "portable/fully_connected.c", "kws_portable_fully_connected_s8", "smlabb", 1),
          ("portable 4-bit", "portable/fully_connected_packed.c", "kws_portable_fully_connected_s8_nibbles", "mla",
           2),
          ("portable 1-bit", "portable/fully_connected_packed.c", "kws_portable_fully_connected_s8_signs", "rsbne",
           1))),
)
COMPILERS = {"armv7": "arm-linux-gnueabihf-gcc", "cortex-m4": "arm-none-eabi-gcc", "cortex-m7": "arm-none-eabi-gcc"}


def arch_flags(target: str) -> list[str]:
    return subprocess.run(["make", "-s", "-C", str(CSRC), "arch-flags", f"TARGET={target}"], capture_output=True,
                          text=True, check=True).stdout.split()


def compile_function(loop: Loop) -> Function:
    cc = COMPILERS[loop.target]
    cmd = [cc, *C_FLAGS, "-O2", *arch_flags(loop.target), *(f"-I{d}" for d in INCLUDE_DIRS),
           f"-I{CSRC / 'neon'}", "-S", "-o", "-", str(CSRC / loop.source)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True)
    except FileNotFoundError:
        raise ExtractionError(f"{cc} not found (scripts/setup test installs it)") from None
    if r.returncode != 0:
        raise ExtractionError(f"compiling {loop.source} failed:\n{' '.join(cmd)}\n{r.stderr}")
    asm = "\n".join(line.split("@")[0] for line in r.stdout.splitlines())  # @ starts an ARM comment
    return _parse(asm)[loop.function]


def k_loops(loop: Loop) -> list[str]:
    """The innermost loops of the function that hold the marker, as assembly, each checked to hold it
    loop.markers times."""
    f = compile_function(loop)
    spans = [(f.labels[m.group(1)], j) for j, line in enumerate(f.lines)
             if (m := _BRANCH.match(line)) and f.labels.get(m.group(1), j + 1) <= j]
    # Only straight bodies: a branch back that passes an unconditional jump or a return is shared code, not a loop.
    spans = [(i, j) for i, j in spans
             if not any(line.split()[0] in ("b", "b.w", "b.n", "bx") or line.startswith("pop") and "pc" in line
                        for line in f.lines[i:j])]
    inner = [(i, j) for i, j in spans if not any(i <= a and b <= j and (a, b) != (i, j) for a, b in spans)]
    found = []
    for i, j in inner:
        count = [line.split()[0] for line in f.instructions(i, j)].count(loop.marker)
        if count:
            if count != loop.markers:
                raise ExtractionError(f"{f.name}: a loop holds {count} {loop.marker}, not {loop.markers}")
            found.append("\n".join(f.instructions(i, j)))
    if not found:
        raise ExtractionError(f"{f.name}: no inner loop holds {loop.marker}")
    return found


def mca_cycles(code: str, triple: str, cpu: str) -> float:
    if cpu == "cortex-m7":  # LLVM 14's M7 model has no IT instruction: left out (see the module's docstring)
        code = "\n".join(line for line in code.splitlines() if not re.match(r"it[te]*\s", line))
    cmd = [mca_tool(), f"-mtriple={triple}", f"-mcpu={cpu}", f"-iterations={MCA_ITERATIONS}"]
    r = subprocess.run(cmd, input=code + "\n", capture_output=True, text=True)
    if r.returncode != 0:
        raise ExtractionError(f"llvm-mca failed on {cpu}:\n{r.stderr}\n{code}")
    fields = dict(re.findall(r"^(Iterations|Total Cycles):\s+(\d+)$", r.stdout, re.M))
    return int(fields["Total Cycles"]) / int(fields["Iterations"])


def project() -> list[dict]:
    """One dict per (loop, core): name, target, cpu, copies (inner loops found), macs (per iteration),
    cycles (per iteration, mean over the copies) and cycles_per_mac."""
    rows = []
    for loop in LOOPS:
        code = k_loops(loop)
        for cpu in loop.cpus:
            cycles = sum(mca_cycles(c, loop.triple, cpu) for c in code) / len(code)
            rows.append(dict(name=loop.name, target=loop.target, cpu=cpu, copies=len(code), macs=loop.macs,
                             cycles=cycles, cycles_per_mac=cycles / loop.macs))
    return rows


def main() -> None:
    print(f"inner K loops, projected ({mca_tool()}, {MCA_ITERATIONS} iterations back to back; not measured)")
    print(f"{'kernel':<15} {'built for':<10} {'model':<11} {'copies':>6} {'MACs/it':>7} {'cycles/it':>9} "
          f"{'cycles/MAC':>10}")
    for r in project():
        print(f"{r['name']:<15} {r['target']:<10} {r['cpu']:<11} {r['copies']:>6} {r['macs']:>7} "
              f"{r['cycles']:>9.2f} {r['cycles_per_mac']:>10.3f}")
    print("(armv7 NEON on the Cortex-A9 and A57 AArch32 models: LLVM has none for the Cortex-A7)")


if __name__ == "__main__":
    main()
