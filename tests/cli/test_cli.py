"""kwsint-make-model and kwsint-run, end to end through their main() functions."""

import dataclasses
import inspect
import json
import re

import numpy as np
import pytest

import kwsint
from kwsint import reference
from kwsint.cli import make_model, run
from kwsint.engine.metadata import ModelMetadata
from kwsint.train.generate import paper_model


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = tmp_path_factory.mktemp("demo")
    assert make_model.main(["--config", "M4", "-o", str(d / "m.kwsq"), "--features", str(d / "f"), "--count", "2",
                            "--seconds", "1.5"]) == 0
    return d


def _lines(capsys):
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def _run(capsys, *argv) -> tuple[int, list[dict], str]:
    capsys.readouterr()
    code = run.main([*map(str, argv), "--no-progress"])
    out = capsys.readouterr()
    return code, [json.loads(line) for line in out.out.splitlines()], out.err


def test_run_verifies_every_step_and_writes_posteriors(demo, capsys):
    out = demo / "post.npz"
    files = sorted(str(p) for p in (demo / "f").glob("*.npy"))
    code, lines, _ = _run(capsys, demo / "m.kwsq", *files, "--verify", "--posteriors", out, "--chunk-frames", "7")
    assert code == 0
    streams = [l for l in lines if "stream" in l]
    assert [l["stream"] for l in streams] == files
    assert all(l["reference_mismatches"] == 0 and l["steps"] == (150 - 81) // 3 + 1 for l in streams)
    assert lines[-1]["summary"] and lines[-1]["reference_mismatches"] == 0 and lines[-1]["failed"] == 0
    saved = np.load(out)
    model = kwsint.load(demo / "m.kwsq")
    frames = np.load(files[0])
    assert saved["frame_0"][:2].tolist() == [80, 83]
    assert saved["posterior_q16_0"][0] == model.infer(frames[:81]).posterior_q16
    assert saved["posterior_q16_0"][1] == model.infer(frames[3:84]).posterior_q16


def test_detections_follow_the_reference(demo, capsys, tmp_path):
    """Threshold 0 fires at the first step and then once per lockout: times and posteriors as specified."""
    f = sorted((demo / "f").glob("*.npy"))[0]
    csv_out = tmp_path / "p.csv"
    code, lines, _ = _run(capsys, demo / "m.kwsq", f, "--threshold", "0", "--lockout", "0.2", "--smoothing", "0.06",
                          "--posteriors", csv_out)
    assert code == 0
    summary = lines[-1]
    assert (summary["hop"], summary["smoothing_steps"], summary["lockout_steps"]) == (3, 2, 6)
    model = kwsint.load(demo / "m.kwsq")
    frame, _, _, smoothed, fired = reference.detect_stream(model.spec, np.load(f), 3, 2, 0, 6)
    want = [round((int(e) + 1) * 0.01, 3) for e in frame[fired]]
    got = [l for l in lines if "time" in l]
    assert [l["time"] for l in got] == want and len(want) == 4
    assert [l["posterior"] for l in got] == [round(int(s) / 65536, 6) for s in smoothed[fired]]
    rows = csv_out.read_text().splitlines()
    assert rows[0] == "file,frame,time,posterior,smoothed,fired" and len(rows) == 1 + len(frame)
    assert sum(int(r.split(",")[-1]) for r in rows[1:]) == 4


@pytest.mark.parametrize("array, message", [
    (np.zeros((100, 19), np.float32), r"shape: expected \(frames, 20\), got \(100, 19\)"),
    (np.full((100, 20), np.nan, np.float32), r"frames\[0\]: expected finite float32 values, got nan"),
    (np.zeros((100, 20), np.int16), "float"),
])
def test_run_names_the_bad_file(demo, tmp_path, capsys, array, message):
    bad = tmp_path / "bad.npy"
    np.save(bad, array)
    code, _, err = _run(capsys, demo / "m.kwsq", bad)
    assert code == 1 and str(bad) in err and re.search(message, err)


def test_keep_going_and_workers(demo, tmp_path, capsys):
    good = sorted(str(p) for p in (demo / "f").glob("*.npy"))
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((100, 3), np.float32))
    code, lines, err = _run(capsys, demo / "m.kwsq", good[0], bad, good[1])
    assert code == 1 and "bad.npy" in err
    assert [l["stream"] for l in lines if "stream" in l] == [good[0]]  # stopped at the bad file
    code, one, _ = _run(capsys, demo / "m.kwsq", good[0], bad, good[1], "--keep-going", "--threshold", "0.3")
    assert code == 1 and [l["stream"] for l in one if "stream" in l] == good
    assert one[-1]["failed"] == 1 and one[-1]["inputs"] == 3
    code, two, _ = _run(capsys, demo / "m.kwsq", good[0], bad, good[1], "--keep-going", "--threshold", "0.3",
                        "--workers", "2")
    assert code == 1 and two == one


def test_wav_and_kaldi_inputs(demo, tmp_path, capsys):
    import wave

    import kaldiio

    rng = np.random.default_rng(0)
    wav = tmp_path / "a.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(rng.normal(0, 2000, 16000 * 2).astype("<i2").tobytes())
    feats = np.load(sorted((demo / "f").glob("*.npy"))[0])
    ark = tmp_path / "f.ark"
    kaldiio.save_ark(str(ark), {"utt1": feats, "utt2": feats[:90]})
    code, lines, _ = _run(capsys, demo / "m.kwsq", wav, ark, "--verify")
    assert code == 0
    streams = {l["stream"]: l for l in lines if "stream" in l}
    assert set(streams) == {str(wav), f"{ark}:utt1", f"{ark}:utt2"}
    assert streams[str(wav)]["frames"] == 198 and streams[f"{ark}:utt2"]["steps"] == 4
    assert lines[-1]["reference_mismatches"] == 0


def test_long_input_streams_in_constant_memory(demo, tmp_path, capsys):
    """A 1-hour feature file (360,000 frames, 27.5 MiB) through kwsint-run with a traced peak far below its size."""
    import tracemalloc

    long = tmp_path / "long.npy"
    frames = np.lib.format.open_memmap(long, mode="w+", dtype=np.float32, shape=(360_000, 20))
    frames[:] = np.random.default_rng(1).normal(-5.0, 2.0, (1, 20)).astype(np.float32)
    del frames
    tracemalloc.start()
    code, lines, _ = _run(capsys, demo / "m.kwsq", long, "--threshold", "1.0")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert code == 0 and lines[-1]["steps"] == (360_000 - 81) // 3 + 1 and lines[-1]["hours"] == 1.0
    assert peak < 8 * 2**20, peak


def test_run_refuses_a_broken_model_and_unreadable_input(demo, tmp_path, capsys):
    broken = tmp_path / "broken.kwsq"
    broken.write_bytes((demo / "m.kwsq").read_bytes()[:100])
    assert run.main([str(broken), str(next((demo / "f").glob("*.npy")))]) == 2
    assert "broken.kwsq" in capsys.readouterr().err
    text = tmp_path / "notes.npy"
    text.write_text("not numpy")
    assert run.main([str(demo / "m.kwsq"), str(text), "--no-progress"]) == 1
    assert "notes.npy" in capsys.readouterr().err


def test_each_run_uses_the_model_it_was_given(demo, tmp_path, capsys):
    """Runs in one process (as from Python) load their own model, even one replaced at the same path."""
    f = sorted((demo / "f").glob("*.npy"))[0]
    path = tmp_path / "m.kwsq"
    peaks = []
    for seed in (1, 2):
        assert make_model.main(["--config", "M4", "--seed", str(seed), "-o", str(path), "--force"]) == 0
        code, lines, _ = _run(capsys, path, f)
        peaks.append(next(line["peak_posterior"] for line in lines if "stream" in line))
        steps = kwsint.load(path).detector().push(np.load(f))  # kwsint-run's defaults
        assert code == 0 and peaks[-1] == round(steps.smoothed_q16.max() / 65536, 6)
    assert peaks[0] != peaks[1]


def test_python_detector_defaults_are_kwsint_run_defaults(capsys):
    """The same features through kwsint-run and Model.detector(), each with its defaults, give the same
    detections: one for the one utterance of the phrase (the Python defaults once fired 9 times on it)."""
    sample = kwsint.default_model.path("samples/positive_1.npy")
    code, lines, _ = _run(capsys, kwsint.default_model.path("M4.kwsq"), sample)
    steps = kwsint.load("default:M4").detector().push(np.load(sample))
    [(start, end)] = json.loads(kwsint.default_model.path("samples/manifest.json").read_text())["streams"][0]["spans"]
    [frame] = steps.frame[steps.fired].tolist()
    assert code == 0 and start <= (frame + 1) * 0.01 <= end + 0.5
    assert [l["time"] for l in lines if "time" in l] == [round((f + 1) * 0.01, 3) for f in steps.frame[steps.fired]]
    defaults = inspect.signature(kwsint.Model.detector).parameters
    args = run._parser().parse_args(["m.kwsq", "x.npy"])
    # both leave it to the model: its recommended operating point, else the same built-in defaults
    assert (args.threshold, args.smoothing, args.lockout) == tuple(
        defaults[k].default for k in ("threshold", "smoothing_s", "lockout_s")) == (None, None, None)
    assert kwsint.load(kwsint.write_blob(paper_model("M4"))).operating_point() == (0.5, 0.15, 1.0)
    from kwsint.cli import eval as eval_cli

    args = eval_cli._parser().parse_args(["--manifest", "m.json", "--models", "m.kwsq", "--out", "r"])
    assert (args.smoothing, args.lockout) == (0.15, 1.0)


def test_kwsint_run_and_the_detector_take_the_models_recommended_operating_point(tmp_path, capsys):
    """A blob that states an operating point gets it in kwsint-run and Model.detector() unless told otherwise."""
    sample = kwsint.default_model.path("samples/positive_1.npy")
    spec = kwsint.load("default:M4").spec
    path = tmp_path / "m.kwsq"
    kwsint.save(dataclasses.replace(spec, metadata=ModelMetadata(threshold=0.95, smoothing_s=0.3, lockout_s=2.0)),
                path)
    code, lines, _ = _run(capsys, path, sample)
    summary = lines[-1]
    assert code == 0 and (summary["threshold_q16"], summary["smoothing_steps"], summary["lockout_steps"]) == (
        kwsint.reference.threshold_q16(0.95), 10, 66)
    model = kwsint.load(path)
    det = model.detector()
    assert (det.threshold_q16, det.smoothing_steps, det.lockout_steps) == (summary["threshold_q16"], 10, 66)
    steps = det.push(np.load(sample))
    assert [l["time"] for l in lines if "time" in l] == [round((f + 1) * 0.01, 3) for f in steps.frame[steps.fired]]
    code, lines, _ = _run(capsys, path, sample, "--threshold", "0.5", "--smoothing", "0.15", "--lockout", "1")
    assert (lines[-1]["threshold_q16"], lines[-1]["smoothing_steps"], lines[-1]["lockout_steps"]) == (32768, 5, 33)
