"""Live audio in kwsint-run: raw PCM on standard input (``-``) and the microphone (``--mic``), with the same
detections and stream line as the file of that audio, printed and flushed as they happen; Ctrl-C ends a live
stream with its lines and the summary."""

from __future__ import annotations

import io
import json
import os
import select
import signal
import subprocess
import sys
import types
import wave

import numpy as np
import pytest

from kwsint import default_model
from kwsint.cli import run
from kwsint.engine.listener import microphone

M4 = str(default_model.path("M4.kwsq"))
CLIP = default_model.path("samples/positive_1.wav")  # one detection, at 3.21 s of its 5.25 s
SPEECH = default_model.path("samples/negative_1.wav")
GUARD_S = 60  # only so that a missing line fails the test instead of hanging it; not a timing check


def _pcm(path) -> bytes:
    with wave.open(str(path)) as w:
        return w.readframes(w.getnframes())


def _lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def _unnamed(line: dict) -> dict:
    """A detection or stream line without the stream's name."""
    return {k: v for k, v in line.items() if k not in ("file", "stream")}


def _file_run(capsys, path, *options) -> list[dict]:
    capsys.readouterr()
    assert run.main([M4, str(path), "--no-progress", *options]) == 0
    return _lines(capsys.readouterr().out)


def _readline(stream) -> dict:
    ready, _, _ = select.select([stream], [], [], GUARD_S)
    assert ready, f"no line in {GUARD_S} s"
    return json.loads(stream.readline())


def _child(*args: str) -> subprocess.Popen:
    """kwsint-run with its stdout a pipe, block-buffered as a user's is (PYTHONUNBUFFERED removed): only its own
    flushes send a line. The pipes are unbuffered on this side: a line read is all that was taken from the pipe,
    so that select() tells whether the next one has come."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    # Ctrl-C as a user's shell delivers it: a test runner's worker may ignore SIGINT, and a Python started with it
    # ignored keeps ignoring it.
    return subprocess.Popen([sys.executable, "-m", "kwsint.cli.run", M4, *args, "--no-progress"], bufsize=0,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def test_stdin_gives_the_files_lines_each_flushed_as_it_happens(capsys):
    """``kwsint-run MODEL FILE -`` in a subprocess: the file's lines come before any audio is written to stdin, the
    stdin stream's detection while stdin is still open, and its lines equal the file's."""
    want = _file_run(capsys, CLIP)
    child = _child(str(CLIP), "-")
    try:
        assert [_readline(child.stdout), _readline(child.stdout)] == want[:2]  # nothing written to stdin yet
        pcm = _pcm(CLIP)
        for i in range(0, len(pcm), 7001):  # odd pieces: samples split across writes
            child.stdin.write(pcm[i : i + 7001])
            child.stdin.flush()
        assert _unnamed(_readline(child.stdout)) == _unnamed(want[0])  # stdin is still open
        out, err = child.communicate(timeout=GUARD_S)
    finally:
        child.kill()
    assert child.returncode == 0, err
    stream, summary = _lines(out.decode())
    assert stream["stream"] == "-" and _unnamed(stream) == _unnamed(want[1])
    assert summary["inputs"] == 2 and summary["detections"] == 2 and summary["steps"] == 2 * want[2]["steps"]


def test_ctrl_c_ends_stdin_with_its_stream_line_and_the_summary():
    child = _child("-")
    try:
        child.stdin.write(_pcm(CLIP))
        child.stdin.flush()
        assert "time" in _readline(child.stdout)
        child.send_signal(signal.SIGINT)  # while reading stdin, which stays open
        out, err = child.communicate(timeout=GUARD_S)
    finally:
        child.kill()
    assert child.returncode == 130 and err.decode() == "kwsint-run: interrupted after 0 of 1 inputs\n"
    stream, summary = _lines(out.decode())
    assert stream["stream"] == "-" and stream["detections"] == 1 and summary["streams"] == 1


def test_a_files_detection_is_printed_before_its_stream_ends(monkeypatch, capsys):
    """The detection line is out when the chunk after the one it fired in is read, not after the file."""
    printed_at_chunk = []
    real = run.iter_streams

    def watched(*args, **kwargs):
        for name, chunks in real(*args, **kwargs):
            yield name, (printed_at_chunk.append(sys.stdout.getvalue()) or c for c in chunks)

    monkeypatch.setattr(run, "iter_streams", watched)
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    assert run.main([M4, str(CLIP), "--no-progress", "--chunk-frames", "100"]) == 0  # detection: frame 320
    detection = out.getvalue().splitlines()[0]
    assert '"time": 3.21' in detection and detection in printed_at_chunk[4] and detection not in printed_at_chunk[3]


def test_stdin_with_verify_posteriors_and_workers(tmp_path, monkeypatch, capsys):
    """Every option works on a live stream: --verify, --posteriors (from stdin's steps), --workers (files in
    threads, stdin in the main thread, output in input order)."""
    files = _file_run(capsys, CLIP, "--verify", "--posteriors", str(tmp_path / "want.npz"))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(_pcm(CLIP))))
    assert run.main([M4, str(SPEECH), "-", str(CLIP), "--verify", "--posteriors", str(tmp_path / "got.npz"),
                     "--workers", "2", "--no-progress"]) == 0
    lines = _lines(capsys.readouterr().out)
    assert [line.get("file", line.get("stream")) for line in lines[:-1]] == [str(SPEECH), "-", "-", str(CLIP),
                                                                           str(CLIP)]
    assert [_unnamed(line) for line in lines[1:3]] == [_unnamed(line) for line in files[:2]]
    assert lines[2]["reference_mismatches"] == 0 and lines[-1]["reference_mismatches"] == 0
    want, got = np.load(tmp_path / "want.npz"), np.load(tmp_path / "got.npz")
    assert list(got["files"]) == [str(SPEECH), "-", str(CLIP)]
    for k in run.STEP_FIELDS:
        np.testing.assert_array_equal(got[f"{k}_1"], want[f"{k}_0"])


@pytest.mark.parametrize("argv, message", [
    (["-", "-"], "inputs: expected - (standard input) at most once, got it 2 times"),
    (["--mic", str(CLIP)], "--mic: records alone until Ctrl-C; expected no INPUTS, got 1"),
    ([], "inputs: expected at least one file, - for standard input, or --mic"),
])
def test_live_inputs_refused(argv, message, capsys):
    assert run.main([M4, *argv]) == 2
    assert capsys.readouterr().err == f"kwsint-run: error: {message}\n"


# --- the microphone ------------------------------------------------------------------------------------------


def _fake_sounddevice(samples: np.ndarray, opened: list) -> types.ModuleType:
    """A sounddevice whose default input device records ``samples`` (one block too late: the input overflowed),
    then gets Ctrl-C."""
    sd = types.ModuleType("sounddevice")
    sd.PortAudioError = type("PortAudioError", (Exception,), {})
    sd.check_input_settings = lambda **settings: None

    class InputStream:
        def __init__(self, **settings):
            opened.append(settings)
            self.position = 0
            self.closed = False

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.closed = True
            opened.append("closed")

        def read(self, frames: int):
            if self.position >= len(samples):
                raise KeyboardInterrupt
            block = samples[self.position : self.position + frames]
            self.position += frames
            return block.reshape(-1, 1).copy(), self.position == 10 * frames  # the 10th came late: overflowed

    sd.InputStream = InputStream
    return sd


def test_mic_records_until_ctrl_c_as_the_file_runs(tmp_path, monkeypatch, capsys):
    want = _file_run(capsys, CLIP, "--posteriors", str(tmp_path / "want.csv"))
    opened = []
    monkeypatch.setitem(sys.modules, "sounddevice",
                        _fake_sounddevice(np.frombuffer(_pcm(CLIP), "<i2"), opened))
    assert run.main([M4, "--mic", "--no-progress", "--posteriors", str(tmp_path / "got.csv")]) == 130
    captured = capsys.readouterr()
    assert captured.err == ("kwsint-run: warning: microphone: the input overflowed: some audio was lost\n"
                            "kwsint-run: interrupted after 0 of 1 inputs\n")
    lines = _lines(captured.out)
    assert lines[0]["file"] == lines[1]["stream"] == "mic"
    assert [_unnamed(line) for line in lines] == [_unnamed(line) for line in want[:2]] + [want[2]]
    assert opened == [{"samplerate": 16000, "channels": 1, "dtype": "int16", "blocksize": 1600}, "closed"]
    # Ctrl-C is how a live stream ends: its posteriors are written.
    assert (tmp_path / "got.csv").read_text() == (tmp_path / "want.csv").read_text().replace(str(CLIP), "mic")


NO_PORTAUDIO = 'raise OSError("PortAudio library not found")\n'
NO_DEVICE = """class PortAudioError(Exception):
    pass
def check_input_settings(**settings):
    raise PortAudioError("Error querying device -1")
"""


@pytest.mark.parametrize("module, message", [
    (None, "needs sounddevice: pip install 'kwsint[live]'"),
    (NO_PORTAUDIO, "sounddevice cannot load PortAudio (PortAudio library not found): install it (Debian: "
                   "apt-get install libportaudio2)"),
    (NO_DEVICE, "no input device that records mono 16-bit audio at 16000 Hz (PortAudio: Error querying device -1)"),
])
def test_mic_without_sounddevice_portaudio_or_a_device_is_one_line(module, message, tmp_path, monkeypatch, capsys):
    if module is None:
        monkeypatch.setitem(sys.modules, "sounddevice", None)  # "import sounddevice" fails: not installed
    else:
        (tmp_path / "sounddevice.py").write_text(module)
        monkeypatch.syspath_prepend(str(tmp_path))
        monkeypatch.setitem(sys.modules, "sounddevice", None)  # undone: the module this test imports goes too
        monkeypatch.delitem(sys.modules, "sounddevice")
    assert run.main([M4, "--mic", "--no-progress"]) == 1
    captured = capsys.readouterr()
    assert captured.err == f"kwsint-run: error: --mic: {message}\n" and captured.out == ""


def test_mic_with_the_installed_sounddevice(capsys):
    """sounddevice as the test extra installs it, with PortAudio as scripts/setup installs it: on a machine without
    an input device (CI's) --mic is one line; on one with a microphone the device opens. A skip where either is
    missing (which fails CI: tests/conftest.py)."""
    try:
        sd = pytest.importorskip("sounddevice", reason="needs the live extra: scripts/setup test")
    except OSError as e:
        pytest.skip(f"needs PortAudio (Debian: apt-get install libportaudio2; scripts/setup test does): {e}")

    if any(device["max_input_channels"] > 0 for device in sd.query_devices()):
        microphone(16000).close()
        return
    assert run.main([M4, "--mic", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("kwsint-run: error: --mic: no input device that records mono 16-bit audio at 16000 Hz")
    assert err.count("\n") == 1
