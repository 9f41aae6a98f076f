"""Model.listener: raw audio pushed in chunks gives kwsint-run's detections on the same audio."""

import json
import wave

import numpy as np
import pytest

import kwsint
from kwsint.cli import run
from kwsint.io.features import FbankStream, compute_fbank

SAMPLES = kwsint.default_model.path("samples")


def _pcm(path) -> bytes:
    with wave.open(str(path)) as w:
        return w.readframes(w.getnframes())


def _kwsint_run(capsys, path) -> list[dict]:
    capsys.readouterr()
    assert run.main(["default:M4", str(path), "--no-progress"]) == 0
    return [l for l in map(json.loads, capsys.readouterr().out.splitlines()) if "time" in l]


@pytest.mark.parametrize("chunk", [1, 3, 320, 4096, 10**7])  # bytes: odd sizes split samples across pushes
def test_listener_equals_kwsint_run_however_the_audio_is_cut(capsys, chunk):
    pcm = _pcm(SAMPLES / "positive_1.wav")
    listener = kwsint.load("default:M4").listener()
    got = [d for i in range(0, len(pcm), chunk) for d in listener.push(pcm[i:i + chunk])] + listener.finish()
    want = _kwsint_run(capsys, SAMPLES / "positive_1.wav")
    assert len(want) == 1 and [(d.time, round(d.posterior, 6)) for d in got] == [(w["time"], w["posterior"])
                                                                                  for w in want]


def test_listener_on_speech_detects_nothing_and_resets():
    listener = kwsint.load("default:M4").listener()
    assert listener.push(np.frombuffer(_pcm(SAMPLES / "negative_1.wav"), "<i2")) == []
    pcm = _pcm(SAMPLES / "positive_1.wav")
    first = listener.push(pcm)  # after the speech: times count from the start of the stream
    listener.reset()
    again = listener.push(pcm)
    assert len(first) == len(again) == 1 and first[0].time > again[0].time


def test_listener_takes_the_models_operating_point_unless_told():
    model = kwsint.load("default:M4")
    pcm = _pcm(SAMPLES / "positive_1.wav")
    assert model.listener(threshold=0.999).push(pcm) == []
    assert model.listener().detector.threshold_q16 == model.detector().threshold_q16


def test_bad_audio_is_refused():
    listener = kwsint.load("default:M4").listener()
    with pytest.raises(ValueError, match="pcm: expected a 1-D int16 array, got float32"):
        listener.push(np.zeros(10, np.float32))


@pytest.mark.parametrize("chunk", [1, 159, 160, 161, 16000])
def test_fbank_stream_equals_the_whole_signal(chunk):
    x = np.random.default_rng(0).integers(-3000, 3000, 7000).astype(np.int16)
    s = FbankStream()
    frames = [s.push(x[i:i + chunk]) for i in range(0, len(x), chunk)] + [s.finish()]
    np.testing.assert_array_equal(np.concatenate(frames), compute_fbank(x))
