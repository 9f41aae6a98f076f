"""cffi build script (API mode), run by setup.py's cffi_modules at install time."""

import re
from pathlib import Path

from cffi import FFI

ROOT = Path(__file__).resolve().parent.parent
CSRC = ROOT / "csrc"
HEADER = CSRC / "include" / "kwsint.h"


def _cdef_from_header(text: str) -> str:
    """The public header minus comments, the C++ guards and preprocessor lines."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"#ifdef __cplusplus.*?#endif", "", text, flags=re.S)
    return "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#"))


def _sources() -> list[str]:
    return sorted(str(p.relative_to(ROOT)) for p in CSRC.rglob("*.c"))


ffibuilder = FFI()
ffibuilder.cdef(_cdef_from_header(HEADER.read_text()))
ffibuilder.set_source(
    "kwsint._kwsint_c",
    '#include "kwsint.h"',
    sources=_sources(),
    include_dirs=[str(CSRC / "include"), str(CSRC)],
    extra_compile_args=["-std=c11", "-O2", "-fno-fast-math", "-ffp-contract=off"],
    libraries=["m"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
