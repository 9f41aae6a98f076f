"""kwsint-data synth and kwsint.data.corpus: a tiny synthetic corpus, end to end.

Needs the synthesizers, sox and the recorded speech of Debian's packages and
pyroomacoustics (scripts/setup installs them); without them these tests are
skipped, saying so.
"""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest

from kwsint.cli import data
from kwsint.data import augment, corpus, synthesizers
from kwsint.data.dataset import load_windows

pytestmark = pytest.mark.corpus

SCALE = "0.01"  # 20 positive, 40 negative utterances: a few seconds on 2 cores
SPLITS = ("train", "val", "test")


@pytest.fixture(scope="module")
def tools():
    try:
        corpus.check_tools()
    except augment.ToolError as e:
        pytest.skip(f"corpus tests need the synthesizers, sox, recordings and pyroomacoustics (scripts/setup): {e}")


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
    assert summary["utterances"] == {"positive": 20, "confusable": 14, "speech": 22, "noise": 4,
                                     "recorded": {"train": 5, "val": 5, "test": 5}}
    assert {v.split(":")[0] for v in summary["voices"]["test"]} == set(corpus.SYNTHESIZERS)
    assert {v.split(":")[0] for v in summary["voices"]["train"] + summary["voices"]["val"]} == {
        s for s in corpus.SYNTHESIZERS if s not in corpus.TEST_ONLY}


def test_windows_have_the_model_shape_and_both_labels(built):
    for split in SPLITS:
        w = load_windows(built / f"{split}.npz")
        assert w.features.shape[1:] == (corpus.WINDOW_FRAMES, 20)
        assert np.isfinite(w.features).all()
        assert set(np.unique(w.labels)) == {0, 1}, split
        mf = load_windows(built / corpus.microfrontend_name(split))  # the same windows through the microfrontend
        assert mf.features.shape == (len(w), corpus.MICROFRONTEND_WINDOW_FRAMES, 40)
        assert np.array_equal(mf.labels, w.labels) and np.array_equal(mf.speakers, w.speakers)
        assert (mf.features >= 0).all() and (mf.features.max(axis=(1, 2)) > 0).mean() > 0.9


def test_splits_have_disjoint_speakers(built):
    speakers = {split: set(load_windows(built / f"{split}.npz").speakers.tolist()) for split in SPLITS}
    assert not speakers["train"] & speakers["val"]
    assert not speakers["train"] & speakers["test"]
    assert not speakers["val"] & speakers["test"]
    assigned = corpus.split_speakers(3)
    for split in SPLITS:
        assert speakers[split] <= {*assigned[split], corpus.recorded_speaker(split)}
    for synthesizer in corpus.SYNTHESIZERS:  # every split hears every synthesizer but TEST_ONLY's, only in test
        voices = {split: {i for i in assigned[split] if corpus.VOICES[i].synthesizer == synthesizer}
                  for split in SPLITS}
        heard = ("test",) if synthesizer in corpus.TEST_ONLY else SPLITS
        assert all(bool(voices[split]) == (split in heard) for split in SPLITS), synthesizer
        assert not (voices["train"] & voices["test"]) and not (voices["val"] & voices["test"])


@pytest.mark.parametrize("name", ["manifest.json", "val-manifest.json"])
def test_manifest_spans_lie_inside_the_clips(built, name):
    manifest = json.loads((built / name).read_text())
    assert set(manifest) == {"streams", "frame_shift"} and manifest["frame_shift"] == 0.01
    kinds = [s["kind"] for s in manifest["streams"]]
    assert kinds.count("positive") == (3 if name == "manifest.json" else 2) and kinds.count("negative") >= 4
    split = "test" if name == "manifest.json" else "val"
    assert all(s["features"].startswith(f"{split}/") for s in manifest["streams"])
    for stream in manifest["streams"]:
        frames = np.load(built / stream["features"])
        assert frames.dtype == np.float32 and frames.ndim == 2 and frames.shape[1] == 20
        assert frames.shape[0] >= corpus.WINDOW_FRAMES and np.isfinite(frames).all()
        seconds = (frames.shape[0] - 1) * 0.01 + 0.025
        mf = np.load(built / stream["microfrontend"])  # the same audio through the microfrontend (30 ms frames)
        assert mf.dtype == np.float32 and mf.shape[1] == 40 and frames.shape[0] - 1 <= mf.shape[0] <= frames.shape[0]
        assert (mf >= 0).all()
        assert np.abs(mf * 25.6 - np.rint(mf * 25.6)).max() < 1e-3  # uint16 values / 25.6
        if stream["kind"] == "positive":
            assert set(stream) == {"features", "microfrontend", "kind", "spans", "tags"}
            assert set(stream["tags"]) == {"synthesizer", "category", "channel", "room"}
            [(start, end)] = stream["spans"]
            assert 0.1 <= start < end <= seconds - corpus.MIN_TAIL_S + 0.02
            assert end >= corpus.MIN_FOCUS_END_S
        else:
            assert set(stream) == {"features", "microfrontend", "kind", "tags"}
            assert stream["tags"]["category"] != "positive"
    categories = {s["tags"]["category"] for s in manifest["streams"]}
    assert categories == {"positive", "near-miss", "speech", "noise", "recorded"}


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


@pytest.fixture(scope="module")
def banks(tools):
    return corpus.make_banks(5)


def alone(utt: corpus.Utterance, **changes) -> corpus.Utterance:
    """The utterance's phrase or confusable alone, dry, at 80 dB SNR, with ``changes``."""
    dry = dict(room="none", reverb=None, room_index=None, snr_db=80.0, channel="none", channel_effects=())
    return dataclasses.replace(utt, segments=(utt.segments[utt.focus],), focus=0, gaps=(utt.gaps[0], utt.gaps[-1]),
                               **{**dry, **changes})


def focus_utterances(per_synthesizer: int) -> list[corpus.Utterance]:
    """The first ``per_synthesizer`` phrase or confusable utterances of each synthesizer in a small plan."""
    chosen: dict[str, list[corpus.Utterance]] = {s: [] for s in corpus.SYNTHESIZERS}
    for u in corpus.plan_corpus(5, 0.2):
        if u.kind in ("positive", "confusable") and len(chosen[corpus.VOICES[u.speaker].synthesizer]) < per_synthesizer:
            chosen[corpus.VOICES[u.speaker].synthesizer].append(u)
    assert all(len(us) == per_synthesizer for us in chosen.values())
    return [u for us in chosen.values() for u in us]


def test_spans_match_the_audio(banks):
    """The phrase alone (no room, no channel, 80 dB SNR, drawn voices, speeds and pitch shifts), of every
    synthesizer: nothing louder than -40 dB outside its span, and something within 50 ms inside each end (flat
    tails at -40..-44 dB last up to 50 ms in a few voices)."""
    for utt in focus_utterances(8):
        outside, inside = span_errors(corpus.render(alone(utt), banks))
        assert outside < synthesizers.TRIM_DB and inside > synthesizers.TRIM_DB - 5, (str(corpus.VOICES[utt.speaker]),
                                                                         utt.segments[utt.focus], outside, inside)


@pytest.mark.parametrize("channel", augment.CHANNELS[1:])
def test_channels_do_not_move_the_speech(banks, channel):
    """Through each channel the phrase stays where it was: in 500-3000 Hz, a band every channel passes, the
    channel's output correlates best with its input within one 10 ms frame. (The codecs' phase changes can put
    the peak a pitch period off: 8 ms was the most seen. Filters ring and codecs mute quiet tails, so the
    -40 dB test above does not apply.)"""
    rng = np.random.default_rng(0)

    def band(audio: np.ndarray, size: int) -> np.ndarray:
        spectrum = np.fft.rfft(audio.astype(np.float64), size)
        hz = np.fft.rfftfreq(size, 1 / corpus.SAMPLE_RATE)
        return np.where((hz >= 500) & (hz <= 3000), spectrum, 0)

    for utt in focus_utterances(3):
        dry = corpus.render(alone(utt), banks).audio
        sent = corpus.render(alone(utt, channel=channel, channel_effects=augment.channel_effects(channel, rng)),
                             banks).audio
        size = 1 << (2 * len(dry)).bit_length()
        xcorr = np.fft.irfft(band(sent, size) * np.conj(band(dry, size)), size)
        lag = (int(np.argmax(xcorr)) + size // 2) % size - size // 2
        assert len(sent) == len(dry) and abs(lag) <= corpus.SAMPLE_RATE // 100, (str(corpus.VOICES[utt.speaker]), lag)


def test_a_room_starts_at_its_direct_path(banks):
    """Convolving with a generated room keeps the speech where it was: the room's response peaks at sample 0,
    and the reverberant phrase starts where the dry one does."""
    for room in banks.rooms["test"]:
        assert np.argmax(np.abs(room.rir)) == 0 and room.rir[0] == 1.0 and 0.1 < room.rt60_s < 2.0
    utt = next(u for u in corpus.plan_corpus(5, 0.01) if u.kind == "positive")
    rendered = corpus.render(alone(utt, room="rir", room_index=0), banks)
    x = rendered.audio.astype(np.float64)
    onset = np.flatnonzero(np.abs(x) > np.abs(x).max() * 10 ** (synthesizers.TRIM_DB / 20))[0] / corpus.SAMPLE_RATE
    assert abs(onset - rendered.span[0]) < 0.01


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
    assert {p.parts[0] for p in files} == {"test.npz", "test-mf.npz", "manifest.json", "corpus.json", "test"}
    for name in files:
        if name.name != "corpus.json":
            assert (built / name).read_bytes() == (only / name).read_bytes(), name
    assert list(json.loads((only / "corpus.json").read_text())["splits"]) == ["test"]


def test_hold_out_leaves_one_synthesizer_out(built, tmp_path, capsys):
    out = tmp_path / "no-flite"
    assert data.main(["hold-out", str(built), "flite", str(out)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["split"] for line in lines] == ["train", "train", "val", "val"]
    flite = {i for i, v in enumerate(corpus.VOICES) if v.synthesizer == "flite"}
    for name in ("train.npz", "train-mf.npz", "val.npz", "val-mf.npz"):
        before, after = load_windows(built / name), load_windows(out / name)
        assert set(before.speakers.tolist()) & flite and not set(after.speakers.tolist()) & flite
        assert len(after) == int(np.sum(~np.isin(before.speakers, list(flite))))
    assert data.main(["hold-out", str(built), "flite", str(out)]) == 1
    assert "--force" in capsys.readouterr().err
    assert data.main(["hold-out", str(tmp_path), "flite", str(out), "--force"]) == 1
    assert "corpus.json" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        data.main(["hold-out", str(built), "mbrola", str(out)])


def test_the_plan_is_a_function_of_the_seed():
    a, b = corpus.plan_corpus(3, 0.01), corpus.plan_corpus(4, 0.01)
    assert a == corpus.plan_corpus(3, 0.01) and a != b


def test_what_test_holds_does_not_change_train_and_val(monkeypatch):
    """Each split draws from its own streams: more of a test-only synthesizer changes the test split alone."""
    before = corpus.plan_corpus(3, 0.05)
    monkeypatch.setitem(corpus.SYNTHESIZER_SHARE, corpus.TEST_ONLY[0], 0.6)
    after = corpus.plan_corpus(3, 0.05)
    for split in SPLITS:
        same = [u for u in before if u.split == split] == [u for u in after if u.split == split]
        assert same == (split != "test"), split


def test_each_utterance_draws_its_own_voice_change():
    """A voice is heard as many speakers: its utterances differ in speed (all engines) and pitch shift (those
    without a pitch control of their own)."""
    plan = [u for u in corpus.plan_corpus(3, 0.2) if u.segments]
    for synthesizer in corpus.SYNTHESIZERS:
        speaker = max({u.speaker for u in plan if corpus.VOICES[u.speaker].synthesizer == synthesizer},
                      key=lambda s: sum(u.speaker == s for u in plan))
        said = [u for u in plan if u.speaker == speaker]
        assert len(said) > 5 and len({u.speed for u in said}) > len(said) // 2, synthesizer
        cents = {u.segments[0].pitch_cents for u in said}
        assert (cents == {0.0}) == (synthesizer == "espeak-ng"), synthesizer
        assert synthesizer == "espeak-ng" or max(map(abs, cents)) <= corpus.PITCH_SHIFT_CENTS


def test_bad_arguments_and_missing_tools(tmp_path, monkeypatch, capsys):
    assert data.main(["synth", str(tmp_path / "x"), "--scale", "0"]) == 2
    assert data.main(["synth", str(tmp_path / "x"), "--seed", "-1"]) == 2
    capsys.readouterr()
    assert data.main(["synth", str(tmp_path / "x"), "--splits", "test,dev", "--no-progress"]) == 2
    assert "--splits must be some of train,val,test, got test,dev" in capsys.readouterr().err
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert data.main(["synth", str(tmp_path / "x"), "--no-progress"]) == 1
    assert "espeak-ng, flite, festival, sox, soxi, stdbuf not found on PATH" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
