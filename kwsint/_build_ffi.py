"""cffi build script (API mode), run by setup.py's cffi_modules at install time."""

import platform
import re
from pathlib import Path

from cffi import FFI

ROOT = Path(__file__).resolve().parent.parent
CSRC = ROOT / "csrc"
HEADER = CSRC / "include" / "kwsint.h"
SIMDE_HEADER = Path("/usr/include/simde/arm/neon.h")


def _cdef_from_header(text: str) -> str:
    """The public header minus comments, the C++ guards and preprocessor lines."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"#ifdef __cplusplus.*?#endif", "", text, flags=re.S)
    return "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#"))


def _sources() -> list[str]:
    # Every file: ISA directories guard themselves with #if, so other
    # architectures compile them to nothing.
    return sorted(str(p.relative_to(ROOT)) for p in CSRC.rglob("*.c"))


def _defines() -> list[tuple[str, str]]:
    """KWS_NEON_SIMDE: on non-ARM machines with SIMDe (Debian libsimde-dev),
    compile the NEON kernels a second time through it, as the neon-simde backends."""
    arm = platform.machine().lower() in ("aarch64", "arm64")
    return [] if arm or not SIMDE_HEADER.exists() else [("KWS_NEON_SIMDE", "1")]


ffibuilder = FFI()
ffibuilder.cdef(_cdef_from_header(HEADER.read_text()))
ffibuilder.set_source(
    "kwsint._kwsint_c",
    '#include "kwsint.h"',
    sources=_sources(),
    include_dirs=[str(CSRC / "include"), str(CSRC)],
    define_macros=_defines(),
    extra_compile_args=["-std=c11", "-O2", "-fno-fast-math", "-ffp-contract=off"],
    libraries=["m"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
