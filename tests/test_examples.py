"""examples/kws_detect.c, the example program of the C library: built by csrc/Makefile's example target for the host,
aarch64 and armv7 (statically linked, run under qemu), it prints kwsint-run's JSON lines byte for byte on the
shipped default model with a feature file it detects in, and on a microWakeWord model (okay_nabu, imported) with the
microfrontend features of the tests' 78 s of espeak-ng speech, noise and tones (tests/microwakeword_speech.py). A
bad feature file is one line and exit status 1.

Needs the cross compilers and qemu, pymicro-wakeword, espeak-ng and sox that ``scripts/setup test`` installs.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import kwsint
from kwsint._build_ffi import CSRC
from kwsint.cli import import_tflite, run
from kwsint.io.inputs import iter_streams
from kwsint.io.microfrontend import MICROFRONTEND

from .microwakeword_speech import long_stream, speech_folder

ROOT = Path(__file__).resolve().parent.parent
DENSE_MODEL = ROOT / "kwsint" / "default_model" / "M4.kwsq"
DENSE_FEATURES = ROOT / "kwsint" / "default_model" / "samples" / "positive_1.npy"

# target: (compiler, qemu command or None for the host)
TARGETS = {
    "host": ("gcc", None),
    "aarch64": ("aarch64-linux-gnu-gcc", ["qemu-aarch64", "-cpu", "cortex-a53"]),
    "armv7": ("arm-linux-gnueabihf-gcc", ["qemu-arm", "-cpu", "cortex-a7"]),
}


def _make(target: str, build: Path, *goals: str) -> subprocess.CompletedProcess:
    r = subprocess.run(["make", "-s", "-C", str(CSRC), f"TARGET={target}", f"BUILD={build}",
                        f"-j{os.cpu_count() or 1}", *goals], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return r


def _kwsint_run(*argv: str) -> str:
    """kwsint-run's standard output."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert run.main([*argv, "--no-progress"]) == 0
    return out.getvalue()


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> dict[str, tuple[list[str], str]]:
    """kind: (the example's arguments, kwsint-run's output on them with the portable backend). The settings
    passed are those kwsint-run's summary line states it used (its metadata's operating point)."""
    pymicro_wakeword = pytest.importorskip("pymicro_wakeword")
    out = tmp_path_factory.mktemp("example_inputs")
    nabu = out / "okay_nabu.kwsq"
    models = Path(pymicro_wakeword.__file__).parent / "models"
    assert import_tflite.main([str(models / "okay_nabu.tflite"), "--settings", str(models / "okay_nabu.json"),
                               "-o", str(nabu)]) == 0
    [(_, chunks)] = iter_streams(long_stream(speech_folder(tmp_path_factory)), 40, MICROFRONTEND)
    nabu_features = out / "long_stream.npy"
    np.save(nabu_features, np.concatenate(list(chunks)).astype(np.float32))

    result = {}
    for kind, model, features in (("dense", DENSE_MODEL, DENSE_FEATURES), ("graph", nabu, nabu_features)):
        want = _kwsint_run(str(model), str(features), "--backend", "portable")
        summary = json.loads(want.splitlines()[-1])
        assert summary["detections"] >= (1 if kind == "dense" else 2)
        if kind == "dense":
            frame_ms = kwsint.load(model).spec.frontend.fbank.frame_shift_ms
            settings = ["--threshold", repr(summary["threshold_q16"] / 65536), "--hop", str(summary["hop"]),
                        "--smoothing-steps", str(summary["smoothing_steps"]),
                        "--lockout-steps", str(summary["lockout_steps"])]
        else:
            frame_ms = MICROFRONTEND.frame_shift_ms
            settings = ["--threshold", repr(summary["probability_cutoff"]),
                        "--sliding-window", str(summary["sliding_window_size"])]
        result[kind] = ([str(model), str(features), "--frame-ms", f"{frame_ms:g}", *settings], want)
    return result


@pytest.fixture(scope="module", params=sorted(TARGETS))
def example(request, tmp_path_factory) -> tuple[list[str], str]:
    """(the command that runs the target's kws_detect, the name of the backend it picks), built by
    ``make -C csrc TARGET=... example`` (what scripts/build-c-lib TARGET example runs) without a warning."""
    target = request.param
    cc, qemu = TARGETS[target]
    missing = [tool for tool in (cc, qemu[0] if qemu else None) if tool and shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{target} needs {', '.join(missing)} (scripts/setup test installs them)")
    build = tmp_path_factory.mktemp(f"example_{target}")
    _make(target, build)
    r = _make(target, build, "example", "CFLAGS=-Werror")  # the library is built: only the example compiles here
    assert r.stderr == ""
    cmd = [*(qemu or []), str(build / "kws_detect")]
    if qemu:
        readelf = subprocess.run([cc.replace("gcc", "readelf"), "-h", "-l", cmd[-1]], capture_output=True,
                                 text=True).stdout
        assert ("AArch64" if target == "aarch64" else "ARM") in readelf and "INTERP" not in readelf  # static
    return cmd, ("neon" if qemu else kwsint.load(DENSE_MODEL).backend)


@pytest.mark.parametrize("kind", ["dense", "graph"])
def test_the_example_prints_what_kwsint_run_prints(example, cases, kind):
    cmd, backend = example
    args, want = cases[kind]
    r = subprocess.run([*cmd, *args, "--backend", "portable"], capture_output=True, text=True, timeout=120)
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout == want
    # on the target's fastest backend: the same lines but for the backend named in the summary; so too with the
    # model in place in an arena and the detector or stream in the program's memory
    for memory in ("copy", "in-place"):
        r = subprocess.run([*cmd, *args, "--memory", memory], capture_output=True, text=True, timeout=120)
        assert (r.returncode, r.stderr) == (0, "")
        assert r.stdout == want.replace('"backend": "portable"', f'"backend": "{backend}"'), memory


@pytest.mark.parametrize("damage, field", [("truncated", "data"), ("float64", "descr"), ("width", "shape")])
def test_a_bad_feature_file_is_one_line_and_status_1(example, cases, tmp_path, damage, field):
    cmd, _ = example
    args, _ = cases["dense"]
    bad = tmp_path / "bad.npy"
    frames = np.load(DENSE_FEATURES)
    if damage == "truncated":
        bad.write_bytes(DENSE_FEATURES.read_bytes()[:-100])
    else:
        np.save(bad, frames.astype(np.float64) if damage == "float64" else frames[:, :-1])
    r = subprocess.run([*cmd, args[0], str(bad), *args[2:]], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith(f"kws_detect: {bad}: {field}: expected ") and r.stderr.count("\n") == 1, r.stderr
