"""kwsint-run and kwsint-eval on a Dask LocalCluster give one process's outputs byte for byte: streams split into
pieces, a worker killed mid-run, an interrupted evaluation resumed, a scheduler that does not answer."""

from __future__ import annotations

import json
import re
import os
import signal
import socket
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from kwsint import cluster, default_model
from kwsint.cli import eval as eval_cli
from kwsint.cli import run

distributed = pytest.importorskip("distributed")

SAMPLES = default_model.path("samples")
M4 = default_model.path("M4.kwsq")
SPLIT = ["--piece-seconds", "1.3"]  # pieces of 130 frames: every sample stream in several pieces


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> list[str]:
    """A 3-minute .npy of the samples end to end (several detections, lockouts across pieces), a .wav, and a
    file that is missing."""
    d = tmp_path_factory.mktemp("inputs")
    names = ["negative_1", "positive_1", "positive_2", "positive_3"] * 4
    np.save(d / "long.npy", np.concatenate([np.load(SAMPLES / f"{n}.npy") for n in names]))
    return [str(d / "long.npy"), str(SAMPLES / "positive_1.wav"), str(d / "missing.npy")]


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    status = run.main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize("posteriors", [".csv", ".npz"])
def test_kwsint_run_on_a_cluster_prints_what_one_process_prints(posteriors, local_cluster, inputs, tmp_path,
                                                                 capsys):
    address, _ = local_cluster
    base = [str(M4), *inputs, "--keep-going", "--no-progress"]
    one = _run([*base, "--posteriors", str(tmp_path / f"one{posteriors}")], capsys)
    many = _run([*base, "--posteriors", str(tmp_path / f"many{posteriors}"), "--scheduler", address, *SPLIT],
                capsys)
    assert one[0] == 1  # the missing file
    assert many == one
    assert (tmp_path / f"many{posteriors}").read_bytes() == (tmp_path / f"one{posteriors}").read_bytes()
    summary = json.loads(one[1].splitlines()[-1])
    assert summary["detections"] >= 5 and summary["streams"] == 2


def test_a_failed_input_stops_the_cluster_run_as_it_stops_one_process(local_cluster, inputs, capsys):
    address, _ = local_cluster
    base = [str(M4), inputs[2], inputs[0], "--no-progress"]
    assert _run([*base, "--scheduler", address], capsys) == _run(base, capsys)


def test_kwsint_eval_on_a_cluster_reports_what_one_process_reports(local_cluster, inputs, tmp_path, capsys):
    address, _ = local_cluster
    manifest = json.loads((SAMPLES / "manifest.json").read_text())
    for s in manifest["streams"]:
        s["features"] = str(SAMPLES / s["features"])
    manifest["streams"].append({"features": inputs[0], "kind": "negative"})
    (tmp_path / "m.json").write_text(json.dumps(manifest))
    base = ["--manifest", str(tmp_path / "m.json"), "--models", "default:M0", str(M4), "default:M2",
            "--no-progress", "--bootstrap", "50"]
    assert eval_cli.main([*base, "--out", str(tmp_path / "one")]) == 0
    assert eval_cli.main([*base, "--out", str(tmp_path / "many"), "--scheduler", address, *SPLIT]) == 0
    capsys.readouterr()
    for name in ("report.json", "report.md"):
        assert (tmp_path / "many" / name).read_bytes() == (tmp_path / "one" / name).read_bytes()


def test_a_worker_killed_mid_run_loses_no_stream(local_cluster, inputs, tmp_path):
    """SIGKILL one worker process while pieces are running: its tasks run again elsewhere (its nanny starts a
    new one), and the output is unchanged."""
    address, client = local_cluster
    argv = [sys.executable, "-m", "kwsint.cli.run", str(M4), inputs[0], inputs[0], "--no-progress",
            "--posteriors", str(tmp_path / "p.npz")]
    one = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    (tmp_path / "p.npz").unlink()
    p = subprocess.Popen([*argv, "--scheduler", address, "--piece-seconds", "0.2"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not any(client.processing().values()):  # pieces running
        assert time.monotonic() < deadline and p.poll() is None, "the run ended before a worker could be killed"
        time.sleep(0.01)
    pids = client.run(os.getpid)
    os.kill(next(iter(pids.values())), signal.SIGKILL)
    assert p.poll() is None, "the run ended before a worker was killed"
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    assert out == one
    client.wait_for_workers(2, timeout=60)  # the nanny's new worker, for the tests after


def test_an_interrupted_evaluation_resumes_from_its_finished_streams(tmp_path, capsys, monkeypatch):
    from kwsint.evaluation import scoring

    argv = ["--manifest", str(SAMPLES / "manifest.json"), "--models", str(M4), "default:M2", "--no-progress"]
    streams = len(json.loads((SAMPLES / "manifest.json").read_text())["streams"])
    assert eval_cli.main([*argv, "--out", str(tmp_path / "fresh")]) == 0
    calls = []
    real = scoring.score_stream

    def interrupting(*a):
        calls.append(1)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return real(*a)

    monkeypatch.setattr(scoring, "score_stream", interrupting)
    out = ["--out", str(tmp_path / "r"), "--resume"]
    assert eval_cli.main([*argv, *out]) == 130
    assert len(list((tmp_path / "r" / eval_cli.PARTIAL).iterdir())) == 5
    calls.clear()
    assert eval_cli.main([*argv, *out]) == 0
    assert len(calls) == 2 * streams - 5  # the five finished ones were not scored again
    assert not (tmp_path / "r" / eval_cli.PARTIAL).exists()
    capsys.readouterr()
    for name in ("report.json", "report.md"):
        assert (tmp_path / "r" / name).read_bytes() == (tmp_path / "fresh" / name).read_bytes()


def test_a_scheduler_that_does_not_answer_is_one_line(tmp_path, capsys):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    status, out, err = _run([str(M4), str(SAMPLES / "positive_1.npy"), "--scheduler", address], capsys)
    assert (status, out) == (1, "")
    assert err.startswith(f"kwsint-run: error: --scheduler: cannot reach a scheduler at {address} within ")
    assert err.count("\n") == 1


@pytest.mark.parametrize("extra, message", [
    (["--scheduler", "localhost:8786"], "--scheduler: expected tcp://HOST:PORT or local:N, got 'localhost:8786'"),
    (["--scheduler", "local:0"], "--scheduler: expected local:N with N >= 1 worker processes, got 'local:0'"),
    (["--scheduler", "local:2", "--verify"], "--scheduler: the cluster's workers run the inputs; expected no --verify"),
    (["--scheduler", "local:2", "--workers", "2"], "expected no --workers"),
    (["--scheduler", "local:2", "-"], "--scheduler: runs files; expected no live input (- or --mic)"),
    (["--scheduler", "local:2", "--piece-seconds", "0"], "--piece-seconds: expected seconds > 0, got 0"),
])
def test_what_the_scheduler_cannot_go_with_is_refused_before_any_work(extra, message, capsys):
    status, out, err = _run([str(M4), str(SAMPLES / "positive_1.npy"), *extra], capsys)
    assert (status, out) == (2, "")
    assert message in err and err.count("\n") == 1


def test_local_n_starts_and_closes_its_own_workers(capsys):
    argv = [str(M4), str(SAMPLES / "positive_1.npy"), "--no-progress"]
    assert _run([*argv, "--scheduler", "local:1"], capsys) == _run(argv, capsys)


def test_pieces_cover_the_stream_and_own_each_step_once():
    for frames, size, window, hop in [(0, 5, 3, 1), (1, 1, 1, 1), (100, 7, 81, 3), (1000, 13, 4, 5), (82, 81, 81, 3)]:
        pieces = cluster.split(frames, size)
        assert pieces[0].start == 0 and pieces[-1].stop == frames
        assert all(a.stop == b.start for a, b in zip(pieces, pieces[1:]))
        steps = [p.steps(window, hop) for p in pieces]
        assert all(a[1] == b[0] for a, b in zip(steps, steps[1:]))
        assert steps[-1][1] == len(range(window - 1, frames, hop))


def test_a_wav_split_into_frame_ranges_gives_its_frames(tmp_path):
    from kwsint.io.features import FbankOptions
    from kwsint.io.inputs import frames_bound, iter_streams, read_frames

    rng = np.random.default_rng(5)
    for fbank in (FbankOptions(), FbankOptions(sample_rate=8000, frame_length_ms=12.5, frame_shift_ms=7.3,
                                               num_mel_bins=13, window_type="hamming")):
        path = tmp_path / f"{fbank.sample_rate}.wav"
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(fbank.sample_rate)
            w.writeframes((rng.standard_normal(int(rng.integers(9000, 20000))) * 3000).astype("<i2").tobytes())
        whole = np.concatenate([c for _, chunks in iter_streams(path, fbank.num_mel_bins, fbank) for c in chunks])
        assert frames_bound(path, fbank.num_mel_bins, fbank) >= len(whole)
        for _ in range(20):
            start = int(rng.integers(0, len(whole) + 3))
            stop = int(rng.integers(start, len(whole) + 5))
            assert np.array_equal(read_frames(path, fbank.num_mel_bins, fbank, start, stop), whole[start:stop])


def test_a_bad_frame_is_named_by_its_index_in_the_stream(tmp_path):
    from kwsint.io.features import FbankOptions
    from kwsint.io.inputs import read_frames

    a = np.zeros((500, 20), np.float32)
    a[321, 4] = np.inf
    np.save(tmp_path / "bad.npy", a)
    with pytest.raises(ValueError, match=r"bad.npy: frames\[321\]: expected finite float32 values, got inf"):
        read_frames(tmp_path / "bad.npy", 20, FbankOptions(), 300, 400)
    assert read_frames(tmp_path / "bad.npy", 20, FbankOptions(), 0, 321).shape == (321, 20)


def test_a_task_that_kills_every_worker_it_runs_on_is_one_line(local_cluster):
    _, client = local_cluster
    with pytest.raises(cluster.WorkersLost, match="the workers running it died, one after another"):
        cluster.result(client.submit(os._exit, 1, pure=False))
    client.wait_for_workers(2, timeout=60)


def test_conv_models_and_float_checkpoints_are_scored_on_a_cluster_as_in_one_process(local_cluster, tmp_path):
    """A streaming graph's streams and a float conv checkpoint's run whole on a worker, a dense model's in
    pieces: the report is one process's."""
    pytest.importorskip("torch")
    from kwsint.evaluation.scoring import evaluate
    from tests.train.test_conv import conv_evaluation

    _, client = local_cluster
    conv_evaluation(tmp_path, 300)
    models = [str(tmp_path / "f.pt"), str(tmp_path / "g.kwsq"), "default:M2"]
    one = evaluate(tmp_path / "m.json", models, bootstrap=20)
    many = evaluate(tmp_path / "m.json", models, bootstrap=20, workers=cluster.Workers(client, 90))
    assert json.dumps(many) == json.dumps(one)


def test_a_resumed_evaluation_scores_the_rest_on_a_cluster(local_cluster, tmp_path, capsys, monkeypatch):
    from kwsint.evaluation import cluster_scores as remote
    from kwsint.evaluation import scoring

    address, _ = local_cluster
    argv = ["--manifest", str(SAMPLES / "manifest.json"), "--models", str(M4), "default:M2", "--no-progress"]
    streams = len(json.loads((SAMPLES / "manifest.json").read_text())["streams"])
    assert eval_cli.main([*argv, "--out", str(tmp_path / "fresh")]) == 0
    calls = []
    real = scoring.score_stream
    monkeypatch.setattr(scoring, "score_stream",
                        lambda *a: (_ for _ in ()).throw(KeyboardInterrupt) if calls.append(1) or len(calls) == 4
                        else real(*a))
    out = ["--out", str(tmp_path / "r"), "--resume"]
    assert eval_cli.main([*argv, *out]) == 130  # three scores kept
    submitted = []
    real_submit = remote.ClusterScores.submit
    monkeypatch.setattr(remote.ClusterScores, "submit", lambda self, pairs: submitted.extend(pairs) or
                        real_submit(self, pairs))
    assert eval_cli.main([*argv, *out, "--scheduler", address, *SPLIT]) == 0
    assert len(submitted) == 2 * streams - 3
    capsys.readouterr()
    for name in ("report.json", "report.md"):
        assert (tmp_path / "r" / name).read_bytes() == (tmp_path / "fresh" / name).read_bytes()


def test_a_changed_features_file_is_scored_again(tmp_path):
    from kwsint.evaluation.resume import ScoreStore

    store = ScoreStore(tmp_path / "partial")
    np.save(tmp_path / "a.npy", np.zeros((10, 20), np.float32))
    key = store.key("sha", 3, tmp_path / "a.npy")
    store.put(key, np.arange(3), np.arange(3, dtype=np.int32))
    assert store.key("sha", 3, tmp_path / "a.npy") == key and store.get(key) is not None
    np.save(tmp_path / "a.npy", np.zeros((11, 20), np.float32))
    assert store.key("sha", 3, tmp_path / "a.npy") != key
    assert store.key("other", 3, tmp_path / "a.npy") != store.key("sha", 3, tmp_path / "a.npy")
    assert store.key("sha", 1, tmp_path / "a.npy") != store.key("sha", 3, tmp_path / "a.npy")


def test_a_microwakeword_model_runs_its_inputs_whole_on_a_worker(local_cluster, tmp_path_factory, capsys):
    """Its microfrontend and states carry from frame to frame: each input runs whole on a worker, and the lines
    are one process's (ESPHome's rule, the model's own settings)."""
    pymicro_wakeword = pytest.importorskip("pymicro_wakeword")
    from tests.microwakeword_speech import phrase_wav, speech_folder

    address, _ = local_cluster
    folder = speech_folder(tmp_path_factory)
    model = Path(pymicro_wakeword.__file__).parent / "models" / "okay_nabu.tflite"
    base = [str(model), str(phrase_wav(folder, "okay_nabu")), str(phrase_wav(folder, "other")), "--no-progress"]
    one = _run(base, capsys)
    assert one[0] == 0 and json.loads(one[1].splitlines()[-1])["detections"] == 1
    assert _run([*base, "--scheduler", address, *SPLIT], capsys) == one


def test_ctrl_c_stops_a_local_cluster_run_in_one_line(inputs):
    """A terminal's Ctrl-C reaches the whole process group: the driver stops the work and its workers (which
    ignore it) and says so in one line, with none of Dask's shutdown noise; no worker is left behind."""
    argv = [sys.executable, "-m", "kwsint.cli.run", str(M4), *[inputs[0]] * 12, "--no-progress",
            "--scheduler", "local:2", "--piece-seconds", "1"]
    # Unbuffered here: what readline takes from the pipe is one line, and communicate reads the rest.
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0,
                         preexec_fn=lambda: (os.setpgrp(), signal.signal(signal.SIGINT, signal.SIG_DFL)))
    first = p.stdout.readline()  # the first detection: the work is under way
    assert first and p.poll() is None, "the run ended before Ctrl-C"
    os.killpg(p.pid, signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130
    assert re.fullmatch(r"kwsint-run: interrupted after \d+ of 12 inputs\n", err.decode()), err
    lines = [json.loads(line) for line in (first + out).decode().splitlines()]  # every line whole
    assert lines[-1]["summary"] and not any("summary" in r for r in lines[:-1])
    deadline = time.monotonic() + 30
    while _group(p.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _group(p.pid), "worker processes were left running"


def _group(pgid: int) -> list[int]:
    """The live processes of a process group."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(entry))
    return found
