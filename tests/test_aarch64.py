"""The aarch64 backends (neon-dotprod, neon, portable) on real aarch64 code, under qemu.

The whole C library and tests/aarch64/driver.c are cross-compiled, statically,
with aarch64-linux-gnu-gcc; tests/aarch64/vectors.py writes several thousand
cases (hypothesis-drawn, seeded numpy sweeps and explicit edge cases) with the
outputs kwsint.reference gives; the driver runs them through the public C API
under qemu-aarch64, and every output must equal the reference: zero mismatches.

``-cpu cortex-a53`` is ARMv8.0 (no dot product instructions): neon and portable
run there, and neon-dotprod must be refused. ``-cpu max`` has every extension:
neon-dotprod and neon run there.

Needs the Debian packages gcc-aarch64-linux-gnu, libc6-dev-arm64-cross and
qemu-user; without them these tests are skipped, saying so.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from kwsint._build_ffi import C_FLAGS, INCLUDE_DIRS, c_sources

from .aarch64 import vectors as vec

pytestmark = pytest.mark.aarch64

ROOT = Path(__file__).resolve().parent.parent
DRIVER = ROOT / "tests" / "aarch64" / "driver.c"
CC = "aarch64-linux-gnu-gcc"
QEMUS = ("qemu-aarch64", "qemu-aarch64-static")
PACKAGES = "gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user"

# (qemu -cpu, backend): every aarch64 backend on a CPU that can run it.
RUNS = [("cortex-a53", "portable"), ("cortex-a53", "neon"), ("max", "neon-dotprod"), ("max", "neon")]


def _skip_without(what: str):
    pytest.skip(f"aarch64 tests need {what} (Debian/Ubuntu: apt-get install {PACKAGES})")


@pytest.fixture(scope="session")
def tools(tmp_path_factory) -> dict[str, str]:
    cc = shutil.which(CC)
    qemu = next((path for path in map(shutil.which, QEMUS) if path), None)
    if cc is None or qemu is None:
        _skip_without(" and ".join(name for name, path in ((CC, cc), ("qemu-aarch64", qemu)) if path is None)
                      + " on PATH")
    # The cross compiler without the cross C library (libc6-dev-arm64-cross) cannot link anything.
    hello = tmp_path_factory.mktemp("aarch64-probe") / "hello.c"
    hello.write_text("#include <stdio.h>\nint main(void) { puts(\"ok\"); return 0; }\n")
    r = subprocess.run([cc, "-static", str(hello), "-o", str(hello.with_suffix(""))], capture_output=True, text=True)
    if r.returncode != 0:
        lines = r.stderr.splitlines() or ["(no message)"]
        first_error = next((line for line in lines if "error" in line), lines[0])
        _skip_without(f"an aarch64 C library for static linking ({CC} cannot build hello.c: {first_error[:160]})")
    return {"cc": cc, "qemu": qemu}


@pytest.fixture(scope="session")
def driver(tools, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("aarch64") / "driver"
    cmd = [tools["cc"], *C_FLAGS, "-O2", "-static", "-Wall", "-Wextra", *(f"-I{d}" for d in INCLUDE_DIRS),
           *map(str, c_sources()), str(DRIVER), "-lm", "-o", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, f"cross-compiling the library and driver failed:\n{' '.join(cmd)}\n{r.stderr}"
    return out


def _qemu(tools, cpu: str, *args, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([tools["qemu"], "-cpu", cpu, *map(str, args)], capture_output=True, text=True,
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


def _usable(tools, driver, cpu: str) -> dict[str, int]:
    r = _qemu(tools, cpu, driver, "--backends", timeout=60)
    assert r.returncode == 0, r.stderr
    lines = dict(line.split() for line in r.stdout.splitlines())
    default = lines.pop("default")
    return {name: int(flag) for name, flag in lines.items()} | {"default": default}


def test_backends_usable_per_cpu(tools, driver, tmp_path):
    a53 = _usable(tools, driver, "cortex-a53")
    cpu_max = _usable(tools, driver, "max")
    assert a53 == {"neon-dotprod": 0, "neon": 1, "portable": 1, "default": "neon"}, a53
    assert cpu_max == {"neon-dotprod": 1, "neon": 1, "portable": 1, "default": "neon-dotprod"}, cpu_max
    # Asking for neon-dotprod where the CPU lacks it is an error status, not a crash.
    case = vec.Case(vec.OP_REQUANTIZE_S32, vec._u32(1) + vec._i32(7, 2**30, 0), "dotprod on an ARMv8.0 CPU")
    (tmp_path / "v").write_bytes(vec.write_vectors([case], "neon-dotprod"))
    r = _qemu(tools, "cortex-a53", driver, tmp_path / "v", tmp_path / "r", timeout=60)
    assert r.returncode == 0, r.stderr
    assert vec.read_results((tmp_path / "r").read_bytes()) == [(vec.OP_REQUANTIZE_S32, vec.KWS_ERR_BACKEND, b"")]


@pytest.mark.parametrize("cpu, backend", RUNS, ids=[f"{c}-{b}" for c, b in RUNS])
def test_backend_equals_reference(tools, driver, cases, tmp_path, cpu, backend):
    vectors, results = tmp_path / "vectors.bin", tmp_path / "results.bin"
    vectors.write_bytes(vec.write_vectors(cases, backend))
    start = time.monotonic()
    r = _qemu(tools, cpu, driver, vectors, results)
    elapsed = time.monotonic() - start
    assert r.returncode == 0, f"driver failed under -cpu {cpu} (status {r.returncode}):\n{r.stdout}\n{r.stderr}"
    summary = vec.compare(cases, results.read_bytes(), f"{backend} under qemu -cpu {cpu}")
    print(f"{backend} under -cpu {cpu}: {len(cases)} cases equal the reference in {elapsed:.1f} s ({summary})")


@pytest.mark.parametrize("cpu, backend", RUNS, ids=[f"{c}-{b}" for c, b in RUNS])
def test_microwakeword_models_on_speech_equal_tflm(tools, driver, speech, tmp_path, cpu, backend):
    vectors, results = tmp_path / "vectors.bin", tmp_path / "results.bin"
    vectors.write_bytes(vec.write_vectors(speech, backend))
    r = _qemu(tools, cpu, driver, vectors, results)
    assert r.returncode == 0, f"driver failed under -cpu {cpu} (status {r.returncode}):\n{r.stdout}\n{r.stderr}"
    vec.compare(speech, results.read_bytes(), f"{backend} under qemu -cpu {cpu}, against TFLM")
