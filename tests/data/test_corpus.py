"""kwsint-data synth and kwsint.data.corpus: a tiny synthetic corpus, end to end.

Needs the Debian packages espeak-ng and sox (scripts/setup installs them as
root); without them these tests are skipped, saying so.
"""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest

from kwsint.cli import data
from kwsint.data import corpus
from kwsint.data.dataset import load_windows

pytestmark = pytest.mark.corpus

SCALE = "0.01"  # 20 positive, 40 negative utterances: a few seconds on 2 cores
SPLITS = ("train", "val", "test")


@pytest.fixture(scope="module")
def tools():
    try:
        corpus.check_tools()
    except corpus.ToolError as e:
        pytest.skip(f"corpus tests need espeak-ng and sox (Debian: apt-get install espeak-ng sox): {e}")


@pytest.fixture(scope="module")
def built(tools, tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus") / "c"
    assert data.main(["synth", str(out), "--scale", SCALE, "--seed", "3", "--no-progress"]) == 0
    return out


def test_writes_splits_streams_and_manifest(built):
    for name in ("train.npz", "val.npz", "test.npz", "manifest.json", "val-manifest.json", "corpus.json",
                 "test/pos_0001.wav", "test/neg_0001.wav", "val/pos_0001.npy", "val/neg_0001.npy"):
        assert (built / name).is_file(), name
    assert not list((built / "val").glob("*.wav"))
    summary = json.loads((built / "corpus.json").read_text())
    assert summary["utterances"] == {"positive": 20, "confusable": 14, "speech": 22, "noise": 4}


def test_windows_have_the_model_shape_and_both_labels(built):
    for split in SPLITS:
        w = load_windows(built / f"{split}.npz")
        assert w.features.shape[1:] == (corpus.WINDOW_FRAMES, 20)
        assert np.isfinite(w.features).all()
        assert set(np.unique(w.labels)) == {0, 1}, split


def test_splits_have_disjoint_speakers(built):
    speakers = {split: set(load_windows(built / f"{split}.npz").speakers.tolist()) for split in SPLITS}
    assert not speakers["train"] & speakers["val"]
    assert not speakers["train"] & speakers["test"]
    assert not speakers["val"] & speakers["test"]
    assigned = corpus.split_speakers(3)
    for split in SPLITS:
        assert speakers[split] <= set(assigned[split])


@pytest.mark.parametrize("name", ["manifest.json", "val-manifest.json"])
def test_manifest_spans_lie_inside_the_clips(built, name):
    manifest = json.loads((built / name).read_text())
    assert set(manifest) == {"streams", "frame_shift"} and manifest["frame_shift"] == 0.01
    kinds = [s["kind"] for s in manifest["streams"]]
    assert kinds.count("positive") == 2 and kinds.count("negative") >= 1
    split = "test" if name == "manifest.json" else "val"
    assert all(s["features"].startswith(f"{split}/") for s in manifest["streams"])
    for stream in manifest["streams"]:
        frames = np.load(built / stream["features"])
        assert frames.dtype == np.float32 and frames.ndim == 2 and frames.shape[1] == 20
        assert frames.shape[0] >= corpus.WINDOW_FRAMES and np.isfinite(frames).all()
        seconds = (frames.shape[0] - 1) * 0.01 + 0.025
        if stream["kind"] == "positive":
            assert set(stream) == {"features", "kind", "spans"}
            [(start, end)] = stream["spans"]
            assert 0.1 <= start < end <= seconds - corpus.MIN_TAIL_S + 0.02
            assert end >= corpus.MIN_FOCUS_END_S
        else:
            assert set(stream) == {"features", "kind"}


def span_errors(rendered: corpus.Rendered) -> tuple[float, float]:
    """The loudest 5 ms frame outside the span (more than 10 ms from it) and the quietest 50 ms just
    inside either end (its loudest frame), both in dB relative to the loudest frame."""
    x = rendered.audio.astype(np.float64)
    power = np.mean(x[: len(x) // 80 * 80].reshape(-1, 80) ** 2, axis=1)
    db = 10 * np.log10(power / power.max() + 1e-12)
    t = np.arange(len(db)) * 0.005  # frame starts, s
    start, end = rendered.span
    outside = db[(t + 0.005 < start - 0.01) | (t > end + 0.01)]
    first = db[(t >= start) & (t + 0.005 <= start + 0.05)]
    last = db[(t >= end - 0.05) & (t + 0.005 <= end)]
    inside = min(first.max(), last.max())
    return outside.max(initial=-120.0), inside


def test_spans_match_the_audio(tools):
    """The phrase alone (no reverb, 80 dB SNR, drawn speeds): nothing louder than -40 dB outside its span,
    and something within 50 ms inside each end (flat tails at -40..-44 dB last up to 50 ms in a few voices)."""
    bank = corpus.noise_bank()
    for utt in [u for u in corpus.plan_corpus(5, 0.01) if u.kind in ("positive", "confusable")]:
        alone = dataclasses.replace(utt, segments=(utt.segments[utt.focus],), focus=0,
                                    gaps=(utt.gaps[0], utt.gaps[-1]), reverb=None, snr_db=80.0)
        outside, inside = span_errors(corpus.render(alone, bank))
        assert outside < corpus.TRIM_DB and inside > corpus.TRIM_DB - 5, (utt.segments[utt.focus], outside, inside)


def test_same_seed_same_files_and_force_replaces(built, tmp_path, capsys):
    again = tmp_path / "again"
    (again / "test").mkdir(parents=True)
    (again / "test" / "pos_9999.npy").write_bytes(b"stale")
    (again / "manifest.json").write_text("{}")
    assert data.main(["synth", str(again), "--scale", SCALE, "--seed", "3", "--no-progress"]) == 1
    assert "--force" in capsys.readouterr().err
    assert data.main(["synth", str(again), "--scale", SCALE, "--seed", "3", "--no-progress", "--force",
                      "--jobs", "1"]) == 0
    assert not (again / "test" / "pos_9999.npy").exists()
    files = sorted(p.relative_to(built) for p in built.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for name in files:
        assert (built / name).read_bytes() == (again / name).read_bytes(), name


def test_one_split_alone_gives_the_same_files(built, tmp_path):
    only = tmp_path / "only"
    assert data.main(["synth", str(only), "--scale", SCALE, "--seed", "3", "--no-progress", "--splits", "test"]) == 0
    files = sorted(p.relative_to(only) for p in only.rglob("*") if p.is_file())
    assert {p.parts[0] for p in files} == {"test.npz", "manifest.json", "corpus.json", "test"}
    for name in files:
        if name.name != "corpus.json":
            assert (built / name).read_bytes() == (only / name).read_bytes(), name
    assert list(json.loads((only / "corpus.json").read_text())["splits"]) == ["test"]


def test_the_plan_is_a_function_of_the_seed():
    a, b = corpus.plan_corpus(3, 0.01), corpus.plan_corpus(4, 0.01)
    assert a == corpus.plan_corpus(3, 0.01) and a != b


def test_bad_arguments_and_missing_tools(tmp_path, monkeypatch, capsys):
    assert data.main(["synth", str(tmp_path / "x"), "--scale", "0"]) == 2
    assert data.main(["synth", str(tmp_path / "x"), "--seed", "-1"]) == 2
    capsys.readouterr()
    assert data.main(["synth", str(tmp_path / "x"), "--splits", "test,dev", "--no-progress"]) == 2
    assert "--splits must be some of train,val,test, got test,dev" in capsys.readouterr().err
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert data.main(["synth", str(tmp_path / "x"), "--no-progress"]) == 1
    assert "espeak-ng and sox not found" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
