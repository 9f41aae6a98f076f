"""The C engine under AddressSanitizer, UBSan and ThreadSanitizer.

The Python extension itself, built with ASan and UBSan and loaded into Python
with their runtimes preloaded, runs every suite that calls it on every backend
(SANITIZED_SUITES: the hypothesis suites, the streaming tests, the oracles);
built with TSan, it runs the thread tests. Canaries check that each build
really reports what it should.

Two native builds of the whole library add what Python cannot reach: one runs
the blob loader, inference, streams and detectors on mutated and truncated
blobs; the other is the aarch64 test driver (tests/aarch64/driver.c) built for
this machine, which runs every op, whole models and detectors on every backend
compiled here (the x86 SIMD kernels and, with SIMDe, the NEON kernels) with
exactly-sized buffers, so a kernel that reads past a row or a tail is reported.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import kwsint
from kwsint.train.generate import random_model

from .aarch64 import vectors as vec
from .conftest import EXPECT_EXTENSION
from .native_build import build_program

ROOT = Path(__file__).resolve().parent.parent
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
ENV = {"ASAN_OPTIONS": "detect_leaks=1", "UBSAN_OPTIONS": "print_stacktrace=1"}
# Everything that calls the C library from Python: ops, models, streams, detectors, the CLI, the shipped models,
# threads, and the comparisons with the QAT simulation, TFLM, onnxruntime and the evaluation's streams.
SANITIZED_SUITES = ["engine/test_ops.py", "engine/test_model.py", "engine/test_acc16.py", "engine/test_float_model.py",
                    "engine/test_detector.py", "engine/test_format.py", "engine/test_concurrency.py",
                    "engine/test_batched.py", "engine/test_dense_kernels.py", "engine/test_graph_engine.py",
                    "cli/test_cli.py", "cli/test_import_cli.py", "test_default_model.py",
                    "train/test_qat.py", "interop/test_tflm_oracle.py", "interop/test_onnx.py",
                    "evaluation/test_evaluation.py"]


@pytest.fixture(scope="module")
def mutation_driver(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("asan") / "loader_mutations"
    return build_program(out, ROOT / "tests" / "c" / "loader_mutations.c", ["-O1", "-g", *SANITIZE])


@pytest.fixture(scope="module")
def op_driver(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("asan") / "driver"
    return build_program(out, ROOT / "tests" / "aarch64" / "driver.c", ["-O1", "-g", *SANITIZE])


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


def _runtime(name: str) -> str:
    path = subprocess.run(["gcc", f"-print-file-name={name}"], capture_output=True, text=True).stdout.strip()
    assert os.path.isabs(path), f"gcc does not know {name}: scripts/setup installs gcc"
    return path


def _instrumented_copy(tree: Path, flags: list[str]) -> Path:
    """A copy of the package and tests in ``tree`` whose extension is compiled and linked with ``flags``."""
    skip = shutil.ignore_patterns("__pycache__", "*.so", ".hypothesis")
    for part in ("kwsint", "csrc", "tests"):
        shutil.copytree(ROOT / part, tree / part, ignore=skip)
    shutil.copy(ROOT / "pyproject.toml", tree)  # pytest's settings and markers
    env = {**os.environ, "CFLAGS": f"{' '.join(flags)} -g -fno-omit-frame-pointer", "LDFLAGS": " ".join(flags)}
    build = ("import runpy; b = runpy.run_path('kwsint/_build_ffi.py'); "
             "b['make_ffibuilder'](test_backends=True).compile(tmpdir='.'); b['build_invoke_extension']()")
    r = subprocess.run([sys.executable, "-c", build], cwd=tree, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    return tree


def _assert_ran_instrumented(tree: Path, stdout: str, sanitizers: str) -> None:
    """tests/conftest.py printed that the run imported the copy's extension, built with ``sanitizers``."""
    so = re.escape(str((tree / "kwsint").resolve())) + r"/_kwsint_c[^/\s]*\.so"
    line = re.search(rf"^kwsint extension: {so} instrumented with {sanitizers}$", stdout, re.M)
    assert line, f"no line 'kwsint extension: {tree}/kwsint/... instrumented with {sanitizers}' in:\n{stdout[:4000]}"


# CPython itself is not built with the sanitizers, so their runtimes must be loaded before it (LD_PRELOAD).
@pytest.fixture(scope="module")
def sanitized_tree(tmp_path_factory) -> tuple[Path, dict]:
    """The extension built with ASan and UBSan, and the environment that runs it."""
    tree = _instrumented_copy(tmp_path_factory.mktemp("asan-python"), SANITIZE)
    env = {**os.environ, "LD_PRELOAD": f"{_runtime('libasan.so')}:{_runtime('libubsan.so')}",
           # CPython frees little at exit by design: leaks are checked by the native builds here and by valgrind.
           "ASAN_OPTIONS": "detect_leaks=0", "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
           "PYTHONDONTWRITEBYTECODE": "1", EXPECT_EXTENSION: str(tree)}
    return tree, env


@pytest.fixture(scope="module")
def thread_sanitized_tree(tmp_path_factory) -> tuple[Path, dict]:
    """The extension built with ThreadSanitizer, and the environment that runs it."""
    tree = _instrumented_copy(tmp_path_factory.mktemp("tsan-python"), ["-fsanitize=thread"])
    # glibc frees a finished thread's TLS block without a lock TSan can see: not kwsint's memory.
    (tree / "tsan.supp").write_text("race:_dl_deallocate_tls\nrace:allocate_dtv_entry\n")
    env = {**os.environ, "LD_PRELOAD": _runtime("libtsan.so"), "PYTHONDONTWRITEBYTECODE": "1",
           EXPECT_EXTENSION: str(tree),
           "TSAN_OPTIONS": f"halt_on_error=1 exitcode=66 suppressions={tree / 'tsan.supp'}"}
    return tree, env


def test_the_sanitized_extension_reports_an_overflow(sanitized_tree):
    """The canary: the copy's extension is the instrumented one, so a read one float past an array is fatal."""
    tree, env = sanitized_tree
    overflow = ("import numpy as np; from kwsint._kwsint_c import ffi, lib; import kwsint\n"
                "be = ffi.new('kws_backend **'); assert lib.kws_backend_find(b'portable', be) == 0\n"
                "x = np.zeros(4096, np.float32); y = np.zeros(8192, np.int8)\n"
                "assert kwsint.__file__.startswith(%r)\n"
                "lib.kws_quantize(be[0], ffi.from_buffer('float[]', x), x.size + 1, 1.0, 0, 8, ffi.from_buffer(y))"
                % str(tree))
    r = subprocess.run([sys.executable, "-c", overflow], cwd=tree, env=env, capture_output=True, text=True)
    assert r.returncode != 0 and "AddressSanitizer: heap-buffer-overflow" in r.stderr, r.stderr[-4000:]


def test_python_suites_under_sanitizers_on_every_backend(sanitized_tree):
    tree, env = sanitized_tree
    suites = [f"tests/{name}" for name in SANITIZED_SUITES]
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *suites], cwd=tree, env=env,
                       capture_output=True, text=True, timeout=3600)
    assert r.returncode == 0, f"pytest {' '.join(suites)} under ASan+UBSan:\n{r.stdout[-20000:]}\n{r.stderr[-20000:]}"
    _assert_ran_instrumented(tree, r.stdout, "address, undefined")


def test_the_thread_sanitized_extension_reports_a_race(thread_sanitized_tree):
    """The canary: two threads quantizing into one array is a race the instrumented build reports."""
    tree, env = thread_sanitized_tree
    race = ("import threading; import numpy as np; from kwsint._kwsint_c import ffi, lib\n"
            "be = ffi.new('kws_backend **'); assert lib.kws_backend_find(b'portable', be) == 0\n"
            "x = np.ones(1 << 20, np.float32); y = np.zeros(x.size, np.int8)\n"
            "go = lambda: [lib.kws_quantize(be[0], ffi.from_buffer('float[]', x), x.size, 1.0, 0, 8,"
            " ffi.from_buffer(y)) for _ in range(4)]\n"
            "ts = [threading.Thread(target=go) for _ in range(2)]; [t.start() for t in ts]; [t.join() for t in ts]")
    r = subprocess.run([sys.executable, "-c", race], cwd=tree, env=env, capture_output=True, text=True)
    assert r.returncode == 66 and "ThreadSanitizer: data race" in r.stderr, r.stderr[-4000:]


def test_threads_sharing_a_model_under_thread_sanitizer(thread_sanitized_tree):
    """tests/engine/test_concurrency.py on the portable and avx2 kernels (the others are slow under TSan): no race."""
    tree, env = thread_sanitized_tree
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/engine/test_concurrency.py",
           "-k", "portable or avx2"]
    r = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=3600)
    assert r.returncode == 0, f"{' '.join(cmd)} under TSan:\n{r.stdout[-20000:]}\n{r.stderr[-20000:]}"
    assert " passed" in r.stdout and "deselected" in r.stdout
    _assert_ran_instrumented(tree, r.stdout, "thread")
