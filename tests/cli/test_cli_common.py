"""What every CLI shares (kwsint/cli/common.py): --version, one overwrite rule, output checks before any work,
one line for Ctrl-C, a closed stdout and a missing PyTorch; and outputs that follow the umask."""

from __future__ import annotations

import importlib.metadata
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import kwsint
from kwsint import default_model
from kwsint.cli import (data, eval as eval_cli, export, import_tflite, info, make_model, run, train,
                        wyoming as wyoming_cli)
from kwsint.data.dataset import load_windows, save_windows
from kwsint.data.toydata import make_toy_windows
from kwsint.io.atomic import atomic_writer, write_atomic

CLIS = {"kwsint-run": run, "kwsint-make-model": make_model, "kwsint-train": train, "kwsint-export": export,
        "kwsint-data": data, "kwsint-eval": eval_cli, "kwsint-info": info, "kwsint-wyoming": wyoming_cli,
        "kwsint-import": import_tflite}
M4 = default_model.path("M4.kwsq")
SAMPLES = default_model.path("samples")


@pytest.mark.parametrize("prog", CLIS)
@pytest.mark.parametrize("flag", ["-V", "--version"])
def test_every_cli_prints_its_version(prog, flag, capsys):
    with pytest.raises(SystemExit) as e:
        CLIS[prog].main([flag])
    assert e.value.code == 0
    assert capsys.readouterr().out == f"kwsint {importlib.metadata.version('kwsint')}\n"


WITHOUT_TORCH = """
import contextlib, io, json, sys
sys.modules["torch"] = None  # as if PyTorch were not installed: every import of it fails
from kwsint.cli import data, eval, export, info, make_model, run, train, wyoming
results = {}
for name, module, argv in [(m.__name__, m, ["--help"])
                           for m in (run, make_model, train, export, data, eval, info, wyoming)] + [
        ("train run", train, ["--stage", "float", "--train", "x.npz", "-o", "x.pt"]),
        ("export run", export, ["x.pt"])]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = module.main(argv)
        except SystemExit as e:
            code = e.code
    results[name] = [code, out.getvalue(), err.getvalue()]
print(json.dumps(results))
"""


def test_without_torch_the_training_clis_say_so_and_the_others_work():
    """One subprocess (torch is already imported here): kwsint-train and kwsint-export, --help included, print one
    line; the other CLIs never import torch."""
    p = subprocess.run([sys.executable, "-c", WITHOUT_TORCH], capture_output=True, text=True, check=True,
                       cwd=Path(__file__).parents[2])  # this tree's kwsint
    results = json.loads(p.stdout)
    assert p.stderr == ""
    for name in ("kwsint.cli.train", "kwsint.cli.export", "train run", "export run"):
        prog = "kwsint-train" if "train" in name else "kwsint-export"
        assert results[name] == [1, "", f"{prog}: error: needs PyTorch: pip install 'kwsint[train]'\n"], name
    for name in ("kwsint.cli.run", "kwsint.cli.make_model", "kwsint.cli.data", "kwsint.cli.eval", "kwsint.cli.info",
                 "kwsint.cli.wyoming"):
        code, out, err = results[name]
        assert code == 0 and out.startswith("usage: kwsint-") and err == "", name


# --- Ctrl-C ---------------------------------------------------------------------------------------------------


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def test_ctrl_c_in_kwsint_run_counts_the_inputs(tmp_path, capsys, monkeypatch):
    inputs = [SAMPLES / f"positive_{i}.npy" for i in (1, 2, 3)]
    real = run.run_input
    monkeypatch.setattr(run, "run_input", lambda model, settings, path, *args: _interrupt() if path == str(inputs[1])
                        else real(model, settings, path, *args))
    out = tmp_path / "p.csv"
    assert run.main([str(M4), *map(str, inputs), "--no-progress", "--posteriors", str(out)]) == 130
    captured = capsys.readouterr()
    assert captured.err == "kwsint-run: interrupted after 1 of 3 inputs\n"
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert [r["stream"] for r in lines if "stream" in r] == [str(inputs[0])]
    assert lines[-1]["summary"] and lines[-1]["streams"] == 1  # the summary of what was done
    assert list(tmp_path.iterdir()) == []  # neither the output nor the hidden work folder


def test_ctrl_c_in_kwsint_eval_counts_the_streams(tmp_path, capsys, monkeypatch):
    from kwsint.evaluation import scoring

    calls = []
    real = scoring.score_stream
    monkeypatch.setattr(scoring, "score_stream",
                        lambda *a: _interrupt() if calls.append(1) or len(calls) == 6 else real(*a))
    argv = ["--manifest", str(SAMPLES / "manifest.json"), "--models", str(M4), str(default_model.path("M2.kwsq")),
            "--out", str(tmp_path / "r"), "--no-progress"]
    streams = len(json.loads((SAMPLES / "manifest.json").read_text())["streams"])
    assert eval_cli.main(argv) == 130
    assert capsys.readouterr().err == f"kwsint-eval: interrupted after 5 of {2 * streams} model-stream runs\n"
    assert not (tmp_path / "r").exists()


def test_ctrl_c_in_kwsint_data_synth_counts_the_utterances(tmp_path, capsys, monkeypatch):
    def make_corpus(out_dir, *, progress, **kwargs):
        for i, _ in enumerate(progress(iter(range(10)), 10)):
            if i == 4:
                raise KeyboardInterrupt

    monkeypatch.setattr(data, "make_corpus", make_corpus)
    assert data.main(["synth", str(tmp_path / "c"), "--no-progress"]) == 130
    assert capsys.readouterr().err == "kwsint-data: interrupted after 4 of 10 utterances\n"


@pytest.mark.parametrize("progress", ["--no-progress", None])
def test_ctrl_c_in_kwsint_train_counts_the_steps(progress, tmp_path, capsys, monkeypatch):
    """Interrupted at step 7 of 12, with a checkpoint every 5 steps: the line counts the steps, and --resume goes
    on from the checkpoint."""
    import torch.optim

    toy = tmp_path / "toy.npz"
    save_windows(toy, make_toy_windows(8, seed=0, speakers=range(2)))
    real_step, calls = torch.optim.Adam.step, []
    monkeypatch.setattr(torch.optim.Adam, "step", lambda self, *a: _interrupt() if calls.append(1) or len(calls) == 8
                        else real_step(self, *a))
    argv = ["--stage", "float", "--train", str(toy), "-o", str(tmp_path / "c.pt"), "--steps", "12",
            "--checkpoint-every", "5", "--batch-size", "4", *([progress] if progress else [])]
    assert CLIS["kwsint-train"].main(argv) == 130
    assert capsys.readouterr().err.splitlines()[-1] == "kwsint-train: interrupted after 7 of 12 training steps"
    monkeypatch.setattr(torch.optim.Adam, "step", real_step)
    assert CLIS["kwsint-train"].main([*argv, "--resume"]) == 0


@pytest.mark.parametrize("prog", ["kwsint-make-model", "kwsint-data", "kwsint-export"])
def test_ctrl_c_in_the_other_clis(prog, tmp_path, capsys, monkeypatch):
    import kwsint.train.qat.checkpoint

    toy = tmp_path / "toy.npz"
    save_windows(toy, make_toy_windows(8, seed=0, speakers=range(2)))
    argv, target, name = {
        "kwsint-make-model": (["-o", str(tmp_path / "m.kwsq")], make_model, "paper_model"),
        "kwsint-data": (["toy", str(tmp_path / "d")], data, "make_toy_windows"),
        "kwsint-export": ([str(default_model.path("M4.pt")), "-o", str(tmp_path / "m.kwsq")], kwsint.train.qat.checkpoint,
                          "load_checkpoint"),
    }[prog]
    monkeypatch.setattr(target, name, _interrupt)
    assert CLIS[prog].main(argv) == 130
    assert capsys.readouterr().err == f"{prog}: interrupted\n"
    assert [p for p in tmp_path.rglob("*") if not p.is_dir()] == [toy]


def test_a_closed_stdout_ends_kwsint_run_quietly(capsys, monkeypatch):
    """kwsint-run ... | head: the reader goes away; the command stops with 141 (as by SIGPIPE), no traceback."""
    class ClosedPipe:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            pass

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert run.main([str(M4), str(SAMPLES / "positive_1.npy"), "--no-progress"]) == 141
    assert capsys.readouterr().err == ""


_PRINT_LINES = """
import threading
from kwsint.cli.common import print_line

def busy():  # holds the GIL in turns, as Dask's event loop thread does in kwsint-run --scheduler
    while True:
        pass

threading.Thread(target=busy, daemon=True).start()
while True:
    try:
        while True:
            print_line('{"line": 1}')
            sum(range(10000))
    except KeyboardInterrupt:
        print_line('{"end": 1}')
"""


@pytest.mark.parametrize("unbuffered", ["1", ""])
def test_ctrl_c_never_cuts_a_line_in_two(unbuffered):
    """Ctrl-C lands between lines, never inside one: what follows it (the summary) starts on a line of its own.
    Each Ctrl-C is sent as soon as the writer's next output arrives. With PYTHONUNBUFFERED (as CI runs) and
    another thread, ``print``, which writes the text and its newline apart, glued the two in most rounds."""
    env = {**os.environ, "PYTHONUNBUFFERED": unbuffered}
    p = subprocess.Popen([sys.executable, "-c", _PRINT_LINES], stdout=subprocess.PIPE, env=env,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    got, sent, deadline = b"", 0, time.monotonic() + 60
    try:
        while got.count(b'{"end": 1}\n') < 30 and time.monotonic() < deadline:
            chunk = os.read(p.stdout.fileno(), 1 << 16)
            if not chunk:
                break  # the writer died
            got += chunk
            # The writer answered the last Ctrl-C with a whole line and writes again, in its loop.
            if sent == got.count(b'{"end": 1}\n') < 30 and not got.endswith(b'{"end": 1}\n'):
                p.send_signal(signal.SIGINT)
                sent += 1
    finally:
        p.kill()
        p.communicate()
    lines = got[:got.rfind(b'{"end": 1}\n')].splitlines()
    assert set(lines) <= {b'{"line": 1}', b'{"end": 1}'}, {line for line in lines if len(line) > 11}
    assert lines.count(b'{"end": 1}') == 29  # the 30th, where the lines stop, is cut off


# --- one overwrite rule, outputs checked before any work ---------------------------------------------------------


def _cases(tmp: Path) -> dict[str, tuple[list[str], Path]]:
    """Per CLI (and output): the arguments that write into the folder ``OUT`` (a placeholder), and the first file
    they write there."""
    toy = tmp / "toy.npz"
    return {
        "kwsint-run --posteriors": (["kwsint-run", str(M4), str(SAMPLES / "positive_1.npy"), "--no-progress",
                                     "--posteriors", "OUT/p.csv"], Path("p.csv")),
        "kwsint-make-model -o": (["kwsint-make-model", "-o", "OUT/m.kwsq"], Path("m.kwsq")),
        "kwsint-make-model --features": (["kwsint-make-model", "-o", str(tmp / "m.kwsq"), "--features",
                                          "OUT", "--count", "1"], Path("synthetic_0.npy")),
        "kwsint-export -o": (["kwsint-export", str(default_model.path("M4.pt")), "-o", "OUT/m.kwsq"], Path("m.kwsq")),
        "kwsint-train -o": (["kwsint-train", "--stage", "float", "--train", str(toy), "-o", "OUT/c.pt"],
                            Path("c.pt")),
        "kwsint-eval --out": (["kwsint-eval", "--manifest", str(SAMPLES / "manifest.json"), "--models", str(M4),
                               "--out", "OUT", "--no-progress"], Path("det.png")),
        "kwsint-data toy": (["kwsint-data", "toy", "OUT", "--train", "8", "--val", "4", "--test", "4"],
                            Path("train.npz")),
    }


def _main(capsys, argv: list[str], out: Path) -> tuple[int, str]:
    capsys.readouterr()
    code = CLIS[argv[0]].main([a.replace("OUT", str(out)) for a in argv[1:]])
    return code, capsys.readouterr().err


@pytest.fixture
def toy(tmp_path) -> Path:
    save_windows(tmp_path / "toy.npz", make_toy_windows(8, seed=0, speakers=range(2)))
    return tmp_path


@pytest.mark.parametrize("case", list(_cases(Path())))
def test_an_existing_output_needs_force(case, toy, capsys):
    argv, name = _cases(toy)[case]
    out = toy / "out"
    out.mkdir()
    (out / name).write_bytes(b"precious")
    code, err = _main(capsys, argv, out)
    also = ", or --resume to continue it" if argv[0] == "kwsint-train" else ""
    assert (code, err) == (1, f"{argv[0]}: error: {out / name}: exists; use --force to overwrite{also}\n")
    assert (out / name).read_bytes() == b"precious" and os.listdir(out) == [name.name]


@pytest.mark.parametrize("case", list(_cases(Path())))
def test_an_output_folder_that_cannot_be_used_is_refused_before_any_work(case, toy, capsys):
    """A file where the output's folder should be (a missing folder, for a file output) is one line naming it,
    never a traceback or a hidden temporary file's name."""
    argv, name = _cases(toy)[case]
    (toy / "file").write_bytes(b"not a folder")
    code, err = _main(capsys, argv, toy / "file")
    assert (code, err) == (1, f"{argv[0]}: error: {toy / 'file' / name}: {toy / 'file'} is not a folder\n")
    if not argv[0] in ("kwsint-eval", "kwsint-data") and "--features" not in argv:  # these create their folder
        code, err = _main(capsys, argv, toy / "missing")
        assert (code, err) == (1, f"{argv[0]}: error: {toy / 'missing' / name}: folder {toy / 'missing'} does not "
                                  "exist\n")
    assert sorted(p.name for p in toy.iterdir()) == ["file", "toy.npz"]


@pytest.mark.parametrize("case", ["kwsint-run --posteriors", "kwsint-make-model -o", "kwsint-export -o",
                                  "kwsint-train -o"])
def test_an_output_that_is_a_folder_is_refused(case, toy, capsys):
    argv, name = _cases(toy)[case]
    (toy / "out" / name).mkdir(parents=True)
    code, err = _main(capsys, argv, toy / "out")
    assert (code, err) == (1, f"{argv[0]}: error: {toy / 'out' / name}: is a folder; expected a file name\n")


def test_force_overwrites_make_model_and_run_outputs(tmp_path, capsys):
    model, post = tmp_path / "m.kwsq", tmp_path / "p.csv"
    for path in (model, post):
        path.write_bytes(b"old")
    assert make_model.main(["-o", str(model), "--force"]) == 0
    assert run.main([str(model), str(SAMPLES / "positive_1.npy"), "--no-progress", "--posteriors", str(post),
                     "--force"]) == 0
    assert kwsint.load(model).blob_bytes > 0 and post.read_text().startswith("file,frame,time,")


# --- outputs follow the umask ------------------------------------------------------------------------------------


@pytest.fixture(params=[0o022, 0o077], ids=["umask-022", "umask-077"])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_outputs_get_the_mode_open_gives(umask, tmp_path, capsys):
    """0666 less the umask, as open() creates files (mkstemp's are 0600 whatever the umask)."""
    want = 0o666 & ~umask
    plain = tmp_path / "plain"
    plain.write_bytes(b"x")
    assert _mode(plain) == want
    write_atomic(tmp_path / "a.bin", b"x")
    with atomic_writer(tmp_path / "b.bin") as f:
        f.write(b"x")
    save_windows(tmp_path / "w.npz", make_toy_windows(8, seed=0, speakers=range(2)))
    assert make_model.main(["-o", str(tmp_path / "m.kwsq"), "--features", str(tmp_path / "f"), "--count", "1"]) == 0
    written = ["a.bin", "b.bin", "w.npz", "m.kwsq", "f/synthetic_0.npy"]
    assert {name: oct(_mode(tmp_path / name)) for name in written} == {name: oct(want) for name in written}
    assert load_windows(tmp_path / "w.npz").labels.size == 8


def test_checkpoints_get_the_mode_open_gives(umask, tmp_path):
    from kwsint.train.qat.checkpoint import load_checkpoint, save_checkpoint

    save_checkpoint(tmp_path / "c.pt", load_checkpoint(default_model.path("M4.pt")).model)
    assert _mode(tmp_path / "c.pt") == 0o666 & ~umask


def test_atomic_writer_names_the_missing_folder_not_its_temporary_file(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        write_atomic(tmp_path / "missing" / "m.kwsq", b"x")
    assert str(e.value) == f"[Errno 2] No such file or directory: '{tmp_path / 'missing'}'"
    with pytest.raises(FileNotFoundError, match="missing'$"):
        kwsint.save(kwsint.load("default:M4").spec, tmp_path / "missing" / "m.kwsq")


def test_short_inputs_get_a_warning_in_kwsint_run(tmp_path, capsys):
    """An input shorter than one window runs no step: one warning line naming it, its frames and the window's."""
    short = tmp_path / "short.npy"
    np.save(short, np.load(SAMPLES / "positive_1.npy")[:80])
    assert run.main([str(M4), str(short), str(SAMPLES / "positive_1.npy"), str(short), "--no-progress"]) == 0
    captured = capsys.readouterr()
    warning = (f"kwsint-run: warning: {short}: 80 frames, shorter than one window of 81 frames: no step ran, "
               "nothing can be detected in it\n")
    assert captured.err == 2 * warning  # every time, not the first only
    assert [json.loads(line).get("steps") for line in captured.out.splitlines()][0] == 0
