"""The C engine under AddressSanitizer and UBSan.

Two native builds of the whole library: one runs the blob loader, inference,
streams and detectors on mutated and truncated blobs; the other is the aarch64
test driver (tests/aarch64/driver.c) built for this machine, which runs every
op, whole models and detectors on every backend compiled here (the x86 SIMD kernels and, with
SIMDe, the NEON kernels) with exactly-sized buffers, so a kernel that reads
past a row or a tail is reported.
"""

import shutil
import subprocess
from pathlib import Path

import pytest

import kwsint
from kwsint.generate import random_model

from .aarch64 import vectors as vec

ROOT = Path(__file__).resolve().parent.parent
CSRC = ROOT / "csrc"
SIMDE_HEADER = Path("/usr/include/simde/arm/neon.h")
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
ENV = {"ASAN_OPTIONS": "detect_leaks=1", "UBSAN_OPTIONS": "print_stacktrace=1"}


def _build(out: Path, main_source: Path) -> Path:
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.fail("no C compiler: scripts/setup installs gcc")
    defines = ["-DKWS_NEON_SIMDE=1"] if SIMDE_HEADER.exists() else []
    sources = sorted(str(p) for p in CSRC.rglob("*.c")) + [str(main_source)]
    cmd = [cc, "-std=c11", "-O1", "-g", *SANITIZE, "-ffp-contract=off", *defines, f"-I{CSRC / 'include'}",
           f"-I{CSRC}", *sources, "-lm", "-o", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, f"{' '.join(cmd)}\n{r.stderr}"
    return out


@pytest.fixture(scope="module")
def mutation_driver(tmp_path_factory) -> Path:
    return _build(tmp_path_factory.mktemp("asan") / "loader_mutations", ROOT / "tests" / "c" / "loader_mutations.c")


@pytest.fixture(scope="module")
def op_driver(tmp_path_factory) -> Path:
    return _build(tmp_path_factory.mktemp("asan") / "driver", ROOT / "tests" / "aarch64" / "driver.c")


@pytest.mark.parametrize("act_bits, bits, per_channel", [(8, 4, True), (8, 1, False), (16, 8, True), (8, 3, True)])
def test_loader_mutations_under_sanitizers(mutation_driver, tmp_path, act_bits, bits, per_channel):
    spec = random_model((3, 5), weight_bits=bits, act_bits=act_bits, per_channel=per_channel, window_frames=5,
                        feature_dim=3, frame_stride=2, seed=bits)
    blob = tmp_path / "m.kwsq"
    kwsint.save(spec, blob)
    r = subprocess.run([str(mutation_driver), str(blob)], capture_output=True, text=True, timeout=600, env=ENV)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "passed, 0 failed" in r.stdout


@pytest.fixture(scope="module")
def cases() -> list[vec.Case]:
    return vec.all_cases()


def test_every_backend_under_sanitizers(op_driver, cases, tmp_path):
    r = subprocess.run([str(op_driver), "--backends"], capture_output=True, text=True, timeout=60, env=ENV)
    assert r.returncode == 0, r.stderr
    usable = [name for name, flag in map(str.split, r.stdout.splitlines()) if name != "default" and flag == "1"]
    assert sorted(usable) == sorted(kwsint.backends())  # the Python build and this one agree
    for backend in usable:
        vectors, results = tmp_path / f"{backend}.vec", tmp_path / f"{backend}.res"
        vectors.write_bytes(vec.write_vectors(cases, backend))
        r = subprocess.run([str(op_driver), str(vectors), str(results)], capture_output=True, text=True,
                           timeout=600, env=ENV)
        assert r.returncode == 0, f"{backend}: driver failed (status {r.returncode}):\n{r.stdout}\n{r.stderr}"
        vec.compare(cases, results.read_bytes(), f"{backend} under ASan+UBSan")
