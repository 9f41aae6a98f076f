"""Native test programs linked with the whole C library (csrc), for the sanitizer, valgrind and libFuzzer runs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from kwsint._build_ffi import C_FLAGS, CSRC, INCLUDE_DIRS, SIMDE_HEADER, c_sources


def arch_flags(target: str) -> list[str]:
    """csrc/Makefile's code generation flags for ``target`` (host, aarch64, armv7, cortex-m4, cortex-m7): the one
    home of each target's flags, for the programs the tests build against the library."""
    r = subprocess.run(["make", "-s", "-C", str(CSRC), f"TARGET={target}", "arch-flags"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def build_program(out: Path, main_source: Path, flags: list[str], compiler: str = "gcc") -> Path:
    """Compile every csrc/**/*.c with ``main_source`` into the executable ``out``, with ``flags`` (optimisation,
    sanitizers). With SIMDe (Debian's libsimde-dev) the NEON kernels are in too, as in the Python test build."""
    cc = shutil.which(compiler)
    if cc is None:
        pytest.fail(f"no {compiler}: scripts/setup test installs it")
    defines = ["-DKWS_NEON_SIMDE=1"] if SIMDE_HEADER.exists() else []
    cmd = [cc, *C_FLAGS, *flags, *defines, *(f"-I{d}" for d in INCLUDE_DIRS), *map(str, c_sources()),
           str(main_source), "-lm", "-o", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, f"{' '.join(cmd)}\n{r.stderr}"
    return out
