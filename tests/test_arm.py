"""The Arm backends on real Arm code, under qemu: aarch64 (neon-dotprod, neon, portable) and 32-bit ARMv7-A
(neon, portable).

The whole C library and tests/aarch64/driver.c are cross-compiled, statically, with aarch64-linux-gnu-gcc and
arm-linux-gnueabihf-gcc (with csrc/Makefile's target flags; armv7: ARMv7-A, NEON, hard float);
tests/aarch64/vectors.py writes several thousand cases (hypothesis-drawn, seeded numpy sweeps and explicit
edge cases) with the outputs kwsint.reference gives; the driver runs them through the public C API under qemu,
and every output must equal the reference: zero mismatches.

aarch64: ``-cpu cortex-a53`` is ARMv8.0 (no dot product instructions): neon and portable run there, and
neon-dotprod must be refused. ``-cpu max`` has every extension: neon-dotprod and neon run there.
armv7: ``-cpu cortex-a7`` and ``cortex-a15`` (ARMv7-A with NEON): neon and portable.

Needs the Debian packages gcc-aarch64-linux-gnu, libc6-dev-arm64-cross, gcc-arm-linux-gnueabihf,
libc6-dev-armhf-cross and qemu-user; without them these tests are skipped, saying so.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from kwsint._build_ffi import C_FLAGS, INCLUDE_DIRS, c_sources

from .aarch64 import vectors as vec
from .native_build import arch_flags

ROOT = Path(__file__).resolve().parent.parent
DRIVER = ROOT / "tests" / "aarch64" / "driver.c"


@dataclass(frozen=True)
class Arch:
    cc: str
    target: str  # csrc/Makefile's TARGET, whose flags the driver is built with
    qemus: tuple[str, ...]
    packages: str
    runs: tuple[tuple[str, str], ...]  # (qemu -cpu, backend): every backend on a CPU that can run it
    speech_runs: tuple[tuple[str, str], ...]


ARCHS = {
    "aarch64": Arch("aarch64-linux-gnu-gcc", "aarch64", ("qemu-aarch64", "qemu-aarch64-static"),
                    "gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user",
                    (("cortex-a53", "portable"), ("cortex-a53", "neon"), ("max", "neon-dotprod"), ("max", "neon")),
                    (("cortex-a53", "portable"), ("cortex-a53", "neon"), ("max", "neon-dotprod"), ("max", "neon"))),
    "armv7": Arch("arm-linux-gnueabihf-gcc", "armv7", ("qemu-arm", "qemu-arm-static"),
                  "gcc-arm-linux-gnueabihf libc6-dev-armhf-cross qemu-user",
                  (("cortex-a7", "portable"), ("cortex-a7", "neon"), ("cortex-a15", "neon")),
                  (("cortex-a7", "neon"),)),
}


def _params(runs: str) -> list:
    return [pytest.param(name, cpu, backend, marks=getattr(pytest.mark, name), id=f"{name}-{cpu}-{backend}")
            for name, arch in ARCHS.items() for cpu, backend in getattr(arch, runs)]


def _skip_without(arch: str, what: str):
    pytest.skip(f"{arch} tests need {what} (Debian/Ubuntu: apt-get install {ARCHS[arch].packages})")


_tools: dict[str, dict[str, str]] = {}
_drivers: dict[str, Path] = {}


def _tools_for(arch: str, tmp_path_factory) -> dict[str, str]:
    if arch in _tools:
        return _tools[arch]
    a = ARCHS[arch]
    cc = shutil.which(a.cc)
    qemu = next((path for path in map(shutil.which, a.qemus) if path), None)
    if cc is None or qemu is None:
        _skip_without(arch, " and ".join(name for name, path in ((a.cc, cc), (a.qemus[0], qemu)) if path is None)
                      + " on PATH")
    # The cross compiler without the cross C library cannot link anything.
    hello = tmp_path_factory.mktemp(f"{arch}-probe") / "hello.c"
    hello.write_text("#include <stdio.h>\nint main(void) { puts(\"ok\"); return 0; }\n")
    r = subprocess.run([cc, *arch_flags(a.target), "-static", str(hello), "-o", str(hello.with_suffix(""))],
                       capture_output=True, text=True)
    if r.returncode != 0:
        lines = r.stderr.splitlines() or ["(no message)"]
        first_error = next((line for line in lines if "error" in line), lines[0])
        _skip_without(arch, f"a C library for static linking ({a.cc} cannot build hello.c: {first_error[:160]})")
    _tools[arch] = {"cc": cc, "qemu": qemu}
    return _tools[arch]


def _driver_for(arch: str, tmp_path_factory) -> Path:
    if arch not in _drivers:
        tools = _tools_for(arch, tmp_path_factory)
        out = tmp_path_factory.mktemp(arch) / "driver"
        cmd = [tools["cc"], *C_FLAGS, *arch_flags(ARCHS[arch].target), "-O2", "-static", "-Wall", "-Wextra",
               *(f"-I{d}" for d in INCLUDE_DIRS), *map(str, c_sources()), str(DRIVER), "-lm", "-o", str(out)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        assert r.returncode == 0, f"cross-compiling the library and driver failed:\n{' '.join(cmd)}\n{r.stderr}"
        _drivers[arch] = out
    return _drivers[arch]


def _qemu(arch: str, cpu: str, *args, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([_tools[arch]["qemu"], "-cpu", cpu, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="session")
def cases() -> list[vec.Case]:
    return vec.all_cases()


@pytest.fixture(scope="session")
def speech(tmp_path_factory) -> list[vec.Case]:
    """The four microWakeWord models on about 78 s of espeak-ng speech, noise and tones (2,590 invokes each),
    through their front end, with the outputs of TFLM's interpreter."""
    from .microwakeword_speech import long_stream_codes, speech_folder
    return vec.speech_cases(long_stream_codes(speech_folder(tmp_path_factory)))


@pytest.fixture(scope="session")
def driver(tmp_path_factory):
    """driver(arch): the cross-compiled driver for arch (built once per session), or a skip naming what is missing."""
    return lambda arch: _driver_for(arch, tmp_path_factory)


def _usable(arch: str, driver: Path, cpu: str) -> dict[str, int]:
    r = _qemu(arch, cpu, driver, "--backends", timeout=60)
    assert r.returncode == 0, r.stderr
    lines = dict(line.split() for line in r.stdout.splitlines())
    default = lines.pop("default")
    return {name: int(flag) for name, flag in lines.items()} | {"default": default}


@pytest.mark.aarch64
def test_backends_usable_per_cpu(driver, tmp_path):
    exe = driver("aarch64")
    a53 = _usable("aarch64", exe, "cortex-a53")
    cpu_max = _usable("aarch64", exe, "max")
    assert a53 == {"neon-dotprod": 0, "neon": 1, "portable": 1, "default": "neon"}, a53
    assert cpu_max == {"neon-dotprod": 1, "neon": 1, "portable": 1, "default": "neon-dotprod"}, cpu_max
    # Asking for neon-dotprod where the CPU lacks it is an error status, not a crash.
    case = vec.Case(vec.OP_REQUANTIZE_S32, vec._u32(1) + vec._i32(7, 2**30, 0), "dotprod on an ARMv8.0 CPU")
    (tmp_path / "v").write_bytes(vec.write_vectors([case], "neon-dotprod"))
    r = _qemu("aarch64", "cortex-a53", exe, tmp_path / "v", tmp_path / "r", timeout=60)
    assert r.returncode == 0, r.stderr
    assert vec.read_results((tmp_path / "r").read_bytes()) == [(vec.OP_REQUANTIZE_S32, vec.KWS_ERR_BACKEND, b"")]


@pytest.mark.armv7
def test_armv7_backends(driver):
    """32-bit Arm built with NEON has the neon backend (the default) and the portable one; no dot product."""
    exe = driver("armv7")
    for cpu in ("cortex-a7", "cortex-a15"):
        assert _usable("armv7", exe, cpu) == {"neon": 1, "portable": 1, "default": "neon"}, cpu


@pytest.mark.parametrize("arch, cpu, backend", _params("runs"))
def test_backend_equals_reference(driver, cases, tmp_path, arch, cpu, backend):
    exe = driver(arch)
    vectors, results = tmp_path / "vectors.bin", tmp_path / "results.bin"
    vectors.write_bytes(vec.write_vectors(cases, backend))
    start = time.monotonic()
    r = _qemu(arch, cpu, exe, vectors, results)
    elapsed = time.monotonic() - start
    assert r.returncode == 0, f"driver failed under -cpu {cpu} (status {r.returncode}):\n{r.stdout}\n{r.stderr}"
    summary = vec.compare(cases, results.read_bytes(), f"{backend} under qemu -cpu {cpu}")
    print(f"{arch} {backend} under -cpu {cpu}: {len(cases)} cases equal the reference in {elapsed:.1f} s ({summary})")


@pytest.mark.parametrize("arch, cpu, backend", _params("speech_runs"))
def test_microwakeword_models_on_speech_equal_tflm(driver, speech, tmp_path, arch, cpu, backend):
    exe = driver(arch)
    vectors, results = tmp_path / "vectors.bin", tmp_path / "results.bin"
    vectors.write_bytes(vec.write_vectors(speech, backend))
    r = _qemu(arch, cpu, exe, vectors, results)
    assert r.returncode == 0, f"driver failed under -cpu {cpu} (status {r.returncode}):\n{r.stdout}\n{r.stderr}"
    vec.compare(speech, results.read_bytes(), f"{backend} under qemu -cpu {cpu}, against TFLM")
