"""cffi build script (API mode), run by setup.py's cffi_modules at install time.

A user build compiles the backends a CPU can run. The test suite also checks the NEON source on x86
through SIMDe (``neon-simde``, ``neon-dotprod-simde``: emulated, for testing only); a build includes
them only when asked, with KWSINT_TEST_BACKENDS=1 (``scripts/setup test`` sets it).
"""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path

from cffi import FFI

ROOT = Path(__file__).resolve().parent.parent
CSRC = ROOT / "csrc"
HEADER = CSRC / "include" / "kwsint.h"
SIMDE_HEADER = Path("/usr/include/simde/arm/neon.h")
TEST_BACKENDS_ENV = "KWSINT_TEST_BACKENDS"


def _cdef_from_header(text: str) -> str:
    """The public header minus comments, the C++ guards and preprocessor lines."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"#ifdef __cplusplus.*?#endif", "", text, flags=re.S)
    return "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#"))


def _sources() -> list[str]:
    # Every file: ISA directories guard themselves with #if, so other
    # architectures compile them to nothing.
    return sorted(str(p.relative_to(ROOT)) for p in CSRC.rglob("*.c"))


def _defines(test_backends: bool) -> list[tuple[str, str]]:
    """KWS_NEON_SIMDE for a test build on a non-ARM machine: the NEON kernels compiled a second time through
    SIMDe (Debian libsimde-dev), as the neon-simde backends. ARM machines run the NEON kernels natively."""
    if not test_backends or platform.machine().lower() in ("aarch64", "arm64"):
        return []
    if not SIMDE_HEADER.exists():
        raise RuntimeError(f"{TEST_BACKENDS_ENV}=1 builds the neon-simde backends, which need SIMDe: "
                           f"{SIMDE_HEADER} is missing (Debian libsimde-dev; scripts/setup test installs it)")
    return [("KWS_NEON_SIMDE", "1")]


def make_ffibuilder(test_backends: bool) -> FFI:
    """The extension ``kwsint._kwsint_c``: every backend for this architecture, plus the test-only
    SIMDe backends if ``test_backends``."""
    builder = FFI()
    builder.cdef(_cdef_from_header(HEADER.read_text()))
    builder.set_source(
        "kwsint._kwsint_c",
        '#include "kwsint.h"',
        sources=_sources(),
        include_dirs=[str(CSRC / "include"), str(CSRC)],
        define_macros=_defines(test_backends),
        extra_compile_args=["-std=c11", "-O2", "-fno-fast-math", "-ffp-contract=off"],
        libraries=["m"],
    )
    return builder


def ffibuilder() -> FFI:
    """setup.py's cffi module: the test-only backends only when $KWSINT_TEST_BACKENDS is set (not "0")."""
    return make_ffibuilder(test_backends=os.environ.get(TEST_BACKENDS_ENV, "") not in ("", "0"))


if __name__ == "__main__":
    ffibuilder().compile(verbose=True)
