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
from setuptools import Extension

ROOT = Path(__file__).resolve().parent.parent
CSRC = ROOT / "csrc"
HEADER = CSRC / "include" / "kwsint.h"
BENCH_HEADER = CSRC / "include" / "kwsint_bench.h"  # the benchmarks' timing loops, beside the product API
INCLUDE_DIRS = (CSRC / "include", CSRC)
SIMDE_HEADER = Path("/usr/include/simde/arm/neon.h")
TEST_BACKENDS_ENV = "KWSINT_TEST_BACKENDS"
SOURCES_MK = CSRC / "sources.mk"


def _make_variables(path: Path) -> dict[str, list[str]]:
    """The ``NAME = words`` assignments of a make fragment (comments and backslash continuations allowed)."""
    text = re.sub(r"\\\n", " ", path.read_text())
    out = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0]
        if "=" in line:
            name, value = line.split("=", 1)
            out[name.strip()] = value.split()
    return out


_BUILD = _make_variables(SOURCES_MK)
C_FLAGS = tuple(_BUILD["KWS_CFLAGS"])
"""Every build of csrc (this one, the native test programs, the cross builds, csrc/Makefile): csrc/sources.mk."""


def _cdef_from_header(text: str) -> str:
    """The public header minus comments, the C++ guards and preprocessor lines, except its KWS_ constants,
    whose values cffi takes from the compiler."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"#ifdef __cplusplus.*?#endif", "", text, flags=re.S)
    text = re.sub(r"(?m)^#define (KWS_\w+) .+$", r"#define \1 ...", text)
    return "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#") or ln.endswith(" ..."))


def c_sources() -> list[Path]:
    """The engine's C files (csrc/sources.mk, which csrc/Makefile builds too): ISA directories guard themselves
    with #if, so other architectures compile them to nothing."""
    return [CSRC / name for name in _BUILD["KWS_SOURCES"]]


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
    builder.cdef(_cdef_from_header(HEADER.read_text()) + _cdef_from_header(BENCH_HEADER.read_text()))
    builder.set_source(
        "kwsint._kwsint_c",
        '#include "kwsint.h"\n#include "kwsint_bench.h"',
        sources=[str(p.relative_to(ROOT)) for p in c_sources()],
        include_dirs=[str(d) for d in INCLUDE_DIRS],
        define_macros=_defines(test_backends),
        extra_compile_args=[*C_FLAGS, "-O2"],
        libraries=["m"],
    )
    return builder


def invoke_extension() -> Extension:
    """The module ``kwsint.engine._invoke`` (kwsint/engine/_invoke.c): ``GraphStream.invoke`` as a C callable. It
    reaches the engine only through the address of ``kws_stream_invoke`` that cffi gives, so it links no csrc."""
    import numpy

    return Extension("kwsint.engine._invoke", sources=["kwsint/engine/_invoke.c"],
                     include_dirs=[str(CSRC.relative_to(ROOT) / "include"), numpy.get_include()],
                     extra_compile_args=[*C_FLAGS, "-O2"])


def knf_direct_extension() -> Extension | None:
    """The module ``kwsint.io._knf_direct`` (kwsint/io/_knf_direct.cpp): kaldi-native-fbank's compiled OnlineFbank
    called on numpy buffers, the LFBE front end's fast route. Optional: without a C++ compiler, or without
    kaldi-native-fbank's headers (shipped in its wheels) at build time, kwsint builds without it and the front
    end calls kaldi-native-fbank's Python binding (the same features, slower). _GLIBCXX_USE_CXX11_ABI=0 is the
    libstdc++ ABI of kaldi-native-fbank's manylinux wheels, whose pybind11 checks the platform ABI id it implies
    (the file's comment says why nothing else depends on it)."""
    try:
        import kaldi_native_fbank
    except ImportError:
        return None
    include = Path(kaldi_native_fbank.__file__).resolve().parent / "include"
    if not (include / "kaldi-native-fbank" / "csrc" / "online-feature.h").exists():
        return None
    return Extension("kwsint.io._knf_direct", sources=["kwsint/io/_knf_direct.cpp"],
                     language="c++", optional=True,
                     extra_compile_args=["-isystem", str(include), "-std=c++14", "-O2", "-D_GLIBCXX_USE_CXX11_ABI=0",
                                         "-fvisibility=hidden"])  # -isystem: no warnings from its headers


def build_invoke_extension() -> None:
    """``invoke_extension`` compiled in place, in the working directory (a copy of the tree); $CFLAGS and
    $LDFLAGS apply, as to the cffi build."""
    from setuptools import Distribution
    from setuptools.command.build_ext import build_ext

    command = build_ext(Distribution({"ext_modules": [invoke_extension()]}))
    command.inplace = True
    command.ensure_finalized()
    command.run()


def ffibuilder() -> FFI:
    """setup.py's cffi module: the test-only backends only when $KWSINT_TEST_BACKENDS is set (not "0")."""
    return make_ffibuilder(test_backends=os.environ.get(TEST_BACKENDS_ENV, "") not in ("", "0"))


if __name__ == "__main__":
    ffibuilder().compile(verbose=True)
