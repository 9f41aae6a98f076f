"""GraphModel.listener: a microWakeWord model on raw audio pushed in pieces gives kwsint-run's detections on the
same audio; the settings come from the model's metadata, and metadata that does not say how to detect is refused
in one line naming the field."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pytest

import kwsint
from kwsint.cli import run
from kwsint.interop.tflite_import import load_tflite
from tests.microwakeword_speech import phrase_wav, speech_folder

pymicro_wakeword = pytest.importorskip("pymicro_wakeword")
MODELS = Path(pymicro_wakeword.__file__).parent / "models"


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = speech_folder(tmp_path_factory)
    return {name: phrase_wav(folder, name) for name in ("okay_nabu", "other")}


@pytest.fixture(scope="module")
def nabu() -> kwsint.GraphModel:
    return kwsint.load(MODELS / "okay_nabu.tflite")  # its settings from okay_nabu.json beside it


def _pcm(path: Path) -> bytes:
    with wave.open(str(path)) as w:
        return w.readframes(w.getnframes())


def test_the_listener_equals_kwsint_run_however_the_audio_is_cut(nabu, clips, capsys):
    capsys.readouterr()
    assert run.main([str(MODELS / "okay_nabu.tflite"), str(clips["okay_nabu"]), "--no-progress"]) == 0
    want = [(line["time"], line["posterior"]) for line in map(json.loads, capsys.readouterr().out.splitlines())
            if "time" in line]
    assert len(want) == 1
    pcm = _pcm(clips["okay_nabu"])
    listener = nabu.listener()
    assert listener.sample_rate == 16000
    for chunk in (3, 1001, len(pcm)):  # bytes: odd sizes split samples across pushes
        got = [d for i in range(0, len(pcm), chunk) for d in listener.push(pcm[i:i + chunk])] + listener.finish()
        assert [(round(d.time, 3), round(d.posterior, 6)) for d in got] == want
        assert got[0].frame == round(got[0].time * 100) - 1  # the end of frame f is (f + 1) * 10 ms
    samples = np.frombuffer(pcm, "<i2")
    got = listener.push(samples[:12345]) + listener.push(samples[12345:])  # int16 arrays too
    assert [(round(d.time, 3), round(d.posterior, 6)) for d in got] == want


def test_other_speech_detects_nothing_a_threshold_replaces_the_cutoff_and_reset_restarts_time(nabu, clips):
    nabu_pcm = _pcm(clips["okay_nabu"])
    listener = nabu.listener()
    assert listener.push(_pcm(clips["other"])) == []
    [late] = listener.push(nabu_pcm)  # times count from the start of the stream
    listener.reset()
    [first] = listener.push(nabu_pcm)
    assert late.time == pytest.approx(first.time + len(_pcm(clips["other"])) / 32000, abs=0.031)
    assert nabu.listener(threshold=0.999).push(nabu_pcm) == []


def test_metadata_that_does_not_say_how_to_detect_is_refused_in_one_line():
    tflite = MODELS / "okay_nabu.tflite"
    bare = load_tflite(tflite)  # no settings
    with pytest.raises(ValueError, match=r"^metadata\.probability_cutoff: expected microWakeWord's settings"):
        bare.listener()
    with pytest.raises(ValueError, match=r"^metadata\.sliding_window_size: expected microWakeWord's settings"):
        bare.listener(threshold=0.5)
    settings = json.loads((MODELS / "okay_nabu.json").read_text())
    settings["micro"]["feature_step_size"] = 20
    stepped = load_tflite(tflite, settings=json.dumps(settings).encode())
    with pytest.raises(ValueError, match=r"^metadata\.feature_step_size: expected 10 ms \(pymicro-features' frame "
                                         r"step\), got 20 ms$"):
        stepped.listener()
    with pytest.raises(ValueError, match=r"^threshold: expected a probability cutoff in \[0, 1\], got 1\.5$"):
        kwsint.load(tflite).listener(threshold=1.5)
