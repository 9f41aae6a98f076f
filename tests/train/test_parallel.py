"""kwsint-train --nproc: data-parallel training in worker processes (gloo), on toy data, a few steps each.

Runs where fewer than 2 cores are free too: the core count the option is checked against is raised to 2 (the
workers then share a core, which changes nothing but the time).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import torch

from kwsint.cli import export as export_cli, train as train_cli
from kwsint.data.dataset import save_windows
from kwsint.data.toydata import make_toy_windows
from kwsint.train.qat import parallel
from kwsint.train.qat.checkpoint import load_checkpoint

CORES = max(2, parallel.available_cores())
OPTIONS = ["--sizes", "16,24", "--weight-bits", "4", "--batch-size", "64", "--eval-every", "4",
           "--checkpoint-every", "4", "--no-progress"]
@pytest.fixture(autouse=True)
def _two_cores(monkeypatch):
    monkeypatch.setattr(parallel, "available_cores", lambda: CORES)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("ddp")
    save_windows(d / "train.npz", make_toy_windows(320, seed=1, speakers=range(8)))
    save_windows(d / "val.npz", make_toy_windows(64, seed=2, speakers=range(8, 10)))
    return d


def _stage1(data: Path, steps: int, out: Path, nproc: int, *more: str) -> list[str]:
    """kwsint-train's arguments for a stage-1 model with augmentation, of 5 batches an epoch (the last one short)."""
    return ["--stage", "stage1", "--train", str(data / "train.npz"), "--val", str(data / "val.npz"), *OPTIONS,
            "--augment", "--batch-size", "70", "--steps", str(steps), "-o", str(out), "--nproc", str(nproc), *more]


@pytest.fixture(scope="module")
def stage1(data):
    """A stage-1 model trained by 2 processes for 8 steps."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(parallel, "available_cores", lambda: CORES)
        assert train_cli.main(_stage1(data, 8, data / "s1-2.pt", 2)) == 0
    return data / "s1-2.pt"


def test_nproc_must_be_1_to_the_cores_and_at_most_the_batch(data, capsys):
    argv = ["--stage", "float", "--train", str(data / "train.npz"), "-o", str(data / "never.pt")]
    for n, message in [("0", f"expected 1..{CORES} (the cores this process may use), got 0"),
                       (str(CORES + 1), f"expected 1..{CORES} (the cores this process may use), got {CORES + 1}"),
                       ("two", "expected a number of processes, got 'two'")]:
        with pytest.raises(SystemExit) as e:
            train_cli.main([*argv, "--nproc", n])
        assert e.value.code == 2
        assert capsys.readouterr().err.splitlines()[-1] == f"kwsint-train: error: argument --nproc: {message}"
    with pytest.raises(SystemExit) as e:
        train_cli.main([*argv, "--nproc", "2", "--batch-size", "1"])
    assert e.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == ("kwsint-train: error: --nproc 2 is more than --batch-size 1: "
                                                        "every process needs a share of each batch")
    assert not (data / "never.pt").exists()


def test_nproc_1_is_the_default_path_bit_for_bit(data, tmp_path):
    argv = ["--stage", "stage1", "--train", str(data / "train.npz"), "--val", str(data / "val.npz"), *OPTIONS,
            "--augment", "--steps", "6"]
    assert train_cli.main([*argv, "-o", str(tmp_path / "default.pt")]) == 0
    assert train_cli.main([*argv, "-o", str(tmp_path / "one.pt"), "--nproc", "1"]) == 0
    assert (tmp_path / "default.pt").read_bytes() == (tmp_path / "one.pt").read_bytes()
    assert "nproc" not in load_checkpoint(tmp_path / "one.pt").train  # the checkpoint of today's runs


def test_two_processes_repeat_bit_for_bit_and_resume_exactly(data, stage1, tmp_path, capsys):
    ck = load_checkpoint(stage1)
    assert ck.train["nproc"] == 2 and ck.train["step"] == 8 and [h["step"] for h in ck.train["history"]] == [4, 8]
    assert train_cli.main(_stage1(data, 8, tmp_path / "again.pt", 2)) == 0
    assert (tmp_path / "again.pt").read_bytes() == stage1.read_bytes()
    # 4 steps, then --resume to 8: the same checkpoint as 8 steps straight; with another --nproc, refused
    resumed = tmp_path / "resumed.pt"
    assert train_cli.main(_stage1(data, 4, resumed, 2)) == 0
    capsys.readouterr()
    assert train_cli.main(_stage1(data, 8, resumed, 1, "--resume")) == 1
    assert capsys.readouterr().err == ("kwsint-train: error: resume: the checkpoint was trained with --nproc 2, not 1: "
                                       "resume it with --nproc 2 (a run continues exactly only with the same number "
                                       "of workers)\n")
    assert train_cli.main(_stage1(data, 8, resumed, 2, "--resume")) == 0
    # the same values (the bytes differ where pickle shares a string in one file and repeats it in the other)
    assert _same(torch.load(resumed, weights_only=True), torch.load(stage1, weights_only=True))


def _same(a, b) -> bool:
    """Equal containers of equal values, tensors bit for bit."""
    if isinstance(a, torch.Tensor):
        return (isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape
                and torch.equal(a.reshape(-1).view(torch.uint8), b.reshape(-1).view(torch.uint8)))
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def test_two_processes_train_a_model_that_exports_bit_exact(data, stage1, tmp_path, capsys):
    s1 = stage1
    history = load_checkpoint(s1).train["history"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    s2 = tmp_path / "s2.pt"
    capsys.readouterr()
    assert train_cli.main(["--stage", "stage2", "--init", str(s1), "--train", str(data / "train.npz"), "--val",
                           str(data / "val.npz"), "--batch-size", "64", "--steps", "4", "--no-progress", "-o",
                           str(s2), "--nproc", "2"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["stage"] == "stage2" and summary["step"] == 4 and 0 <= summary["val_accuracy"] <= 1
    assert export_cli.main([str(s2), "-o", str(tmp_path / "m.kwsq"), "--samples", str(data / "val.npz"),
                            "--json"]) == 0
    agreement = json.loads(capsys.readouterr().out)["agreement"]
    assert agreement["windows"] == agreement["bit_exact"] == 64


def _workers() -> list[int]:
    """This process's spawned workers."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            spawned = b"spawn_main" in Path(f"/proc/{entry}/cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == os.getpid() and spawned:
            found.append(int(entry))
    return sorted(found)


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the workers in /proc (Linux)")
@pytest.mark.parametrize("stop", ["kill worker 1", "ctrl-c"])
def test_a_dead_worker_or_ctrl_c_ends_the_run_in_one_line(data, tmp_path, capsys, stop):
    """Once training has begun (the first checkpoint is written), SIGKILL one worker, or Ctrl-C (SIGINT to the
    parent: the terminal's SIGINT to the workers is ignored by them): one line, exit 1 or 130, no worker left,
    the last checkpoint whole and no temporary file beside it."""
    out = tmp_path / "c.pt"
    seen: list[int] = []

    def stop_it():
        deadline = time.monotonic() + 60
        while not out.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        seen.extend(_workers())
        if stop == "ctrl-c" or len(seen) != 2:  # not two workers: end the run all the same, for the asserts
            os.kill(os.getpid(), signal.SIGINT)
        else:
            os.kill(seen[1], signal.SIGKILL)

    # Ctrl-C as a terminal gives it, even where this process inherited SIGINT ignored (a shell's background job,
    # an xdist worker started from one): otherwise the run would never see it and train on.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    stopper = threading.Thread(target=stop_it)
    stopper.start()
    try:
        status = train_cli.main(["--stage", "float", "--sizes", "64,64", "--train", str(data / "train.npz"), "-o",
                                 str(out), "--steps", "1000000", "--checkpoint-every", "1", "--no-progress",
                                 "--nproc", "2"])
    finally:
        stopper.join()
        signal.signal(signal.SIGINT, previous)
    lines = capsys.readouterr().err.splitlines()
    assert len(seen) == 2 and len(lines) == 1, (seen, lines)
    if stop == "ctrl-c":
        assert status == 130 and lines[0].startswith("kwsint-train: interrupted after ")
    else:
        assert status == 1
        assert lines[0] == ("kwsint-train: error: worker 1 of 2 was killed by SIGKILL; the run is stopped (its last "
                            "checkpoint stands)")
    assert all(_gone(w) for w in seen)
    assert load_checkpoint(out).train["step"] >= 1
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
