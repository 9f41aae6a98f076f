"""Native test programs linked with the whole C library (csrc), for the sanitizer, valgrind and libFuzzer runs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CSRC = ROOT / "csrc"
SIMDE_HEADER = Path("/usr/include/simde/arm/neon.h")


def build_program(out: Path, main_source: Path, flags: list[str], compiler: str = "gcc") -> Path:
    """Compile every csrc/**/*.c with ``main_source`` into the executable ``out``, with ``flags`` (optimisation,
    sanitizers). With SIMDe (Debian's libsimde-dev) the NEON kernels are in too, as in the Python test build."""
    cc = shutil.which(compiler)
    if cc is None:
        pytest.fail(f"no {compiler}: scripts/setup test installs it")
    defines = ["-DKWS_NEON_SIMDE=1"] if SIMDE_HEADER.exists() else []
    sources = sorted(str(p) for p in CSRC.rglob("*.c")) + [str(main_source)]
    cmd = [cc, "-std=c11", *flags, "-ffp-contract=off", *defines, f"-I{CSRC / 'include'}", f"-I{CSRC}", *sources,
           "-lm", "-o", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, f"{' '.join(cmd)}\n{r.stderr}"
    return out
