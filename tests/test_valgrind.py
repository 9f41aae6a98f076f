"""The C engine under valgrind memcheck: a whole model and a stream, no invalid access, no leak.

tests/c/run_stream.c is built natively (-O2 -g, no sanitizer, so valgrind sees
the code users run) and runs a shipped model over the shipped sample streams on
every backend this machine has, in both weight storages: the detector is fed in
uneven chunks, and each step is run a second time as one whole-model call. Its
steps must equal ``reference.detect_stream`` bit for bit, and memcheck must
report no error and no leaked byte of any kind.

Needs Debian's valgrind (scripts/setup test installs it).
"""

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import kwsint
from kwsint import default_model, reference

from .native_build import build_program

ROOT = Path(__file__).resolve().parent.parent
MEMCHECK = ["valgrind", "--tool=memcheck", "--error-exitcode=99", "--leak-check=full", "--show-leak-kinds=all",
            "--errors-for-leak-kinds=all", "--track-origins=yes"]
STEP = np.dtype([("frame", "<u8"), ("logits", "<i4", 2), ("posterior", "<i4"), ("smoothed", "<i4"), ("fired", "u1")])
# (hop, smoothing, threshold_q16, lockout, chunk frames): the CLI's settings, and odd ones.
SETTINGS = [(3, 5, 32768, 33, 100), (2, 7, 16384, 0, 1), (4, 1, 65536, 2, 37)]


@pytest.fixture(scope="module")
def run_stream(tmp_path_factory) -> Path:
    if shutil.which("valgrind") is None:
        pytest.fail("valgrind is missing: scripts/setup test installs it")
    out = tmp_path_factory.mktemp("valgrind") / "run_stream"
    # Optimised as users build it, with symbols for valgrind's reports; no sanitizer, so valgrind sees the real code.
    return build_program(out, ROOT / "tests" / "c" / "run_stream.c", ["-O2", "-g"])


@pytest.fixture(scope="module")
def frames(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """The shipped samples, one after another: a stream of about 17 s."""
    samples = sorted(default_model.path("samples").glob("*.npy"))
    a = np.concatenate([np.load(p) for p in samples]).astype("<f4")
    path = tmp_path_factory.mktemp("valgrind") / "frames.f32"
    path.write_bytes(a.tobytes())
    return path, a


# valgrind 3.19 decodes neither AVX-512 nor AVX-VNNI and hides both from CPUID, so those backends cannot be
# chosen under it: their kernels run under ASan and UBSan instead (tests/test_c_sanitized.py).
VALGRIND_CANNOT_RUN = ("avx512-vnni", "avx-vnni")


@pytest.fixture(params=[b for b in kwsint.backends() if b not in VALGRIND_CANNOT_RUN])
def backend(request) -> str:
    return request.param


# The 8-bit models hold int8 weights in both storages: only M4's 4-bit layers pack.
@pytest.mark.parametrize("blob, storage, settings", [
    ("M4.kwsq", "int8", SETTINGS[0]), ("M4.kwsq", "packed", SETTINGS[1]), ("M2.kwsq", "int8", SETTINGS[1]),
    ("M0-int8.kwsq", "int8", SETTINGS[2])])
def test_model_and_stream_under_memcheck(run_stream, frames, backend, blob, storage, settings, tmp_path):
    path, a = frames
    hop, smoothing, threshold, lockout, chunk = settings
    out = tmp_path / "steps.bin"
    cmd = [*MEMCHECK, str(run_stream), backend, storage, str(default_model.path(blob)), str(path), str(out),
           *map(str, settings)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, f"{' '.join(cmd)}\n{r.stdout}\n{r.stderr}"
    assert "ERROR SUMMARY: 0 errors" in r.stderr
    assert "All heap blocks were freed -- no leaks are possible" in r.stderr

    got = np.frombuffer(out.read_bytes(), dtype=STEP)
    spec = kwsint.read_blob(default_model.path(blob).read_bytes())
    frame, logits, post, smoothed, fired = reference.detect_stream(spec, a, hop, smoothing, threshold, lockout)
    assert got.size == frame.size > 0
    np.testing.assert_array_equal(got["frame"], frame)
    np.testing.assert_array_equal(got["logits"], logits)
    np.testing.assert_array_equal(got["posterior"], post)
    np.testing.assert_array_equal(got["smoothed"], smoothed)
    np.testing.assert_array_equal(got["fired"].astype(bool), fired)
