"""Long runs and resources: kwsint-run's peak RSS does not grow with the stream, and no CLI leaves a half-written
output when it is killed (SIGKILL) in the middle of its work or of writing its output.

Every CLI here runs as a child process. Peak RSS is the child's own VmHWM, which it reports as it exits (see
benchmarks/long_run.py: a child's ru_maxrss would start at this process's size).
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import kwsint
from kwsint.data.dataset import save_windows
from kwsint.data.toydata import make_toy_windows

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "kwsint" / "default_model"
M4 = SHIPPED / "M4.kwsq"

_spec = importlib.util.spec_from_file_location("long_run", ROOT / "benchmarks" / "long_run.py")
long_run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(long_run)

# Peak RSS may differ by this much between a 1-hour and a 4-hour stream. What a run holds does not depend on the
# stream's length (a 4096-frame chunk is 320 KiB, a finiteness-check block 640 KiB, the detector's state a window of
# frames); a few MiB cover what differs from run to run (allocator and page-table layout, the order in which the
# memory-mapped input's pages are dropped). A reader that kept the input's pages resident grows by 27.5 MiB an hour
# (82 MiB here), one that kept --posteriors' per-step values in memory by 2 MiB an hour (as arrays) to 14 MiB an
# hour (as CSV text).
RSS_BOUND_MIB = 4.0


@pytest.fixture(scope="module")
def streams(tmp_path_factory):
    """Synthetic 1-hour and 4-hour feature files: {hours: (path, frames)}."""
    d = tmp_path_factory.mktemp("long")
    files = {}
    for hours in (1, 4):
        path = d / f"{hours}h.npy"
        files[hours] = path, long_run.write_npy(path, hours)
    return files


def _run_measured(model: Path, inp: Path, *extra: str) -> tuple[dict, float]:
    """kwsint-run in a child process: its summary line and its peak RSS in MiB."""
    cmd = long_run.kwsint_run_command([str(model), str(inp), "--no-progress", *extra])
    p = subprocess.run(cmd, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.splitlines()[-1]), long_run.peak_rss_kib(p.stderr) / 1024


@pytest.mark.parametrize("posteriors", [None, "csv", "npz"])
def test_peak_rss_does_not_grow_with_the_stream(streams, tmp_path, posteriors):
    fe = kwsint.load(M4).spec.frontend
    peaks = {}
    for hours, (path, frames) in streams.items():
        extra = ["--posteriors", str(tmp_path / f"{hours}.{posteriors}")] if posteriors else []
        summary, peaks[hours] = _run_measured(M4, path, *extra)
        steps = (frames - fe.window_frames) // fe.frame_stride + 1
        assert (summary["hours"], summary["steps"], summary["streams"], summary["failed"]) == (hours, steps, 1, 0)
        if posteriors == "npz":
            assert len(np.load(tmp_path / f"{hours}.npz")["frame_0"]) == steps
        elif posteriors == "csv":
            with open(tmp_path / f"{hours}.csv") as f:
                assert sum(1 for _ in f) == 1 + steps
    assert abs(peaks[4] - peaks[1]) < RSS_BOUND_MIB, peaks


def test_peak_rss_does_not_grow_with_one_long_ark_utterance(tmp_path):
    """A binary .ark of one utterance of 1 and 4 hours: mapped, as a .npy, not read whole (kaldiio would)."""
    peaks = {}
    for hours in (1, 4):
        path = tmp_path / f"{hours}h.ark"
        frames = long_run.write_ark(path, hours, None)
        summary, peaks[hours] = _run_measured(M4, path)
        assert (summary["hours"], summary["streams"], summary["failed"]) == (hours, 1, 0)
        assert frames == hours * 360_000
        path.unlink()
    assert abs(peaks[4] - peaks[1]) < RSS_BOUND_MIB, peaks


# --- killed mid-run ---------------------------------------------------------------------------------------------

OLD = b"the previous output\n"

# Runs the CLI module argv[2] with arguments argv[3:], announcing on stderr and then blocking as it is about to
# rename a finished temporary file onto the output argv[1]: the moment when a kill is most likely to leave a wrong
# output. A CLI that writes its output any other way never announces.
BLOCK_AT_RENAME = """import os, runpy, sys, time
target, real_replace = os.path.abspath(sys.argv[1]), os.replace
def replace(src, dst, **kwargs):
    if os.path.abspath(dst) == target:
        print("renaming onto the output", src, file=sys.stderr, flush=True)
        time.sleep(3600)
    return real_replace(src, dst, **kwargs)
os.replace = replace
sys.argv = sys.argv[2:]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""


def _prepare(folder: Path, outputs: list[Path], old: bool) -> set[str]:
    """Gives every output the old content (or none); returns the names in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for out in outputs:
        if old:
            out.write_bytes(OLD)
        else:
            assert not out.exists()
    return set(os.listdir(folder))


def _check(folder: Path, before: set[str], outputs: list[Path], old: bool) -> None:
    """Every output as it was (or absent); anything new in ``folder`` is a hidden temporary of an output."""
    for out in outputs:
        if old:
            assert out.read_bytes() == OLD, out
        else:
            assert not out.exists(), out
    new = set(os.listdir(folder)) - before
    assert all(n.startswith(tuple(f".{o.name}." for o in outputs)) and n.endswith(".tmp") for n in new), new


def _kill_at_rename(module: str, argv: list[str], target: Path, cwd: Path) -> None:
    p = subprocess.Popen([sys.executable, "-c", BLOCK_AT_RENAME, str(target), module, *map(str, argv)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=cwd)
    lines = []
    with p.stderr:
        for line in p.stderr:
            lines.append(line)
            if line.startswith("renaming onto the output"):
                p.kill()
                break
    p.wait()
    assert p.returncode == -signal.SIGKILL, f"{module} exited {p.returncode} without renaming onto {target}:\n" + \
        "".join(lines)


@pytest.fixture(scope="module")
def toy_windows(tmp_path_factory):
    path = tmp_path_factory.mktemp("toy") / "train.npz"
    save_windows(path, make_toy_windows(128, seed=1, speakers=range(4)))
    return path


def _cli_cases(toy: Path, d: Path) -> dict[str, tuple[str, list, Path, list[Path]]]:
    """Per CLI: (module, arguments, the output it renames first, all its outputs)."""
    samples = SHIPPED / "samples"
    return {
        "run-csv": ("kwsint.cli.run", [M4, samples / "positive_1.npy", "--no-progress", "--posteriors", d / "p.csv",
                                     "--force"],
                    d / "p.csv", [d / "p.csv"]),
        "run-npz": ("kwsint.cli.run", [M4, samples / "positive_1.npy", "--no-progress", "--posteriors", d / "p.npz",
                                     "--force"],
                    d / "p.npz", [d / "p.npz"]),
        "export": ("kwsint.cli.export", [SHIPPED / "M4.pt", "-o", d / "m.kwsq", "--force"], d / "m.kwsq",
                   [d / "m.kwsq"]),
        "eval": ("kwsint.cli.eval", ["--manifest", samples / "manifest.json", "--models", M4, "--out", d, "--force",
                                     "--no-progress"], d / "det.png",
                 [d / "det.png", d / "report.md", d / "report.json"]),
        "data-toy": ("kwsint.cli.data", ["toy", d, "--train", "32", "--val", "8", "--test", "8", "--force"],
                     d / "train.npz", [d / "train.npz", d / "val.npz", d / "test.npz"]),
        "data-synth": ("kwsint.cli.data", ["synth", d, "--scale", "0.01", "--seed", "3", "--splits", "test", "--force",
                                           "--no-progress"], d / "test.npz",
                       [d / "test.npz", d / "manifest.json", d / "corpus.json"]),
        "make-model": ("kwsint.cli.make_model", ["--config", "M2", "-o", d / "m.kwsq", "--force"], d / "m.kwsq",
                       [d / "m.kwsq"]),
        "make-model-features": ("kwsint.cli.make_model", ["--config", "M2", "-o", d.parent / "m.kwsq", "--features",
                                                          d, "--count", "1", "--force"], d / "synthetic_0.npy",
                                [d / "synthetic_0.npy"]),
        "train": ("kwsint.cli.train", ["--stage", "float", "--train", toy, "-o", d / "c.pt", "--steps", "4",
                                       "--sizes", "16,24", "--batch-size", "32", "--no-progress", "--force"],
                  d / "c.pt", [d / "c.pt"]),
    }


@pytest.mark.parametrize("old", [True, False], ids=["previous-output", "no-output"])
@pytest.mark.parametrize("cli", ["run-csv", "run-npz", "export", "eval", "data-toy", "data-synth", "make-model",
                                 "make-model-features", "train"])
def test_killed_while_renaming_the_output(toy_windows, tmp_path, cli, old):
    """SIGKILL with the new output whole in its temporary file, about to be renamed: the output is as it was."""
    d = tmp_path / "out"
    module, argv, target, outputs = _cli_cases(toy_windows, d)[cli]
    before = _prepare(d, outputs, old)
    _kill_at_rename(module, argv, target, tmp_path)
    _check(d, before, outputs, old)


@pytest.mark.parametrize("old", [True, False], ids=["previous-output", "no-output"])
@pytest.mark.parametrize("suffix", ["csv", "npz"])
def test_run_killed_while_streaming(streams, tmp_path, suffix, old):
    """SIGKILL once kwsint-run has written per-step values of a 4-hour stream: --posteriors is as it was."""
    d = tmp_path / "out"
    target = d / f"p.{suffix}"
    before = _prepare(d, [target], old)
    p = subprocess.Popen([sys.executable, "-m", "kwsint.cli.run", str(M4), str(streams[4][0]), "--no-progress",
                          "--posteriors", str(target), "--force"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while p.poll() is None:  # until the first input's step values are on disk in the hidden work folder
        work = [w / "0.frame" for w in d.glob(f".{target.name}.*.tmp") if w.is_dir()]
        if work and work[0].exists() and work[0].stat().st_size > 0:
            p.kill()
            break
        time.sleep(0.01)
    _, err = p.communicate()
    assert p.returncode == -signal.SIGKILL, f"kwsint-run exited {p.returncode} before it was killed: {err.decode()}"
    _check(d, before, [target], old)
