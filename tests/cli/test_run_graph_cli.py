"""kwsint-run with microWakeWord models: espeak-ng's "okay nabu" detected with the model's own settings, from a
kind 1 blob, the .tflite itself, a feature file and standard input alike; detection times as pymicro-wakeword's own
pipeline gives them where its rule and ESPHome's agree; options and inputs that do not fit refused in one line."""

from __future__ import annotations

import json
import shutil
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from kwsint.cli import import_tflite, run
from kwsint.engine.graph_detector import quantized_cutoff
from kwsint.io.inputs import iter_streams
from kwsint.io.microfrontend import MICROFRONTEND
from tests.microwakeword_speech import phrase_wav, speech_folder

pymicro_wakeword = pytest.importorskip("pymicro_wakeword")
MODELS = Path(pymicro_wakeword.__file__).parent / "models"


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = speech_folder(tmp_path_factory)
    return {name: phrase_wav(folder, name) for name in ("okay_nabu", "alexa", "hey_mycroft", "other")}


@pytest.fixture(scope="module")
def nabu(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("models") / "okay_nabu.kwsq"
    assert import_tflite.main([str(MODELS / "okay_nabu.tflite"), "--settings", str(MODELS / "okay_nabu.json"),
                               "-o", str(out)]) == 0
    return out


def _run(capsys, *argv) -> tuple[int, list[dict], str]:
    capsys.readouterr()
    code = run.main([*map(str, argv), "--no-progress"])
    out = capsys.readouterr()
    return code, [json.loads(line) for line in out.out.splitlines()], out.err


def _detections(lines: list[dict]) -> list[tuple[float, float]]:
    return [(line["time"], line["posterior"]) for line in lines if "posterior" in line]


def test_okay_nabu_is_detected_with_the_models_settings_and_other_speech_is_not(nabu, clips, capsys):
    code, lines, err = _run(capsys, nabu, clips["okay_nabu"], clips["other"])
    assert code == 0 and err == ""
    detection, nabu_stream, other_stream, summary = lines
    assert detection["file"] == str(clips["okay_nabu"]) and 1.0 < detection["time"] < 2.6  # the phrase: 1.0..1.9 s
    # the posterior is the mean of the outputs the rule summed: above int(0.85 * 255) / 255
    assert detection["posterior"] > quantized_cutoff(0.85) / 255
    assert nabu_stream == {"stream": str(clips["okay_nabu"]), "frames": nabu_stream["frames"],
                           "steps": nabu_stream["frames"] // 3, "detections": 1,
                           "peak_posterior": nabu_stream["peak_posterior"]}
    assert other_stream["detections"] == 0 and other_stream["peak_posterior"] < 0.5
    assert summary["detections"] == 1 and summary["failed"] == 0
    assert {k: summary[k] for k in ("probability_cutoff", "quantized_cutoff", "sliding_window_size")} == {
        "probability_cutoff": 0.85, "quantized_cutoff": 216, "sliding_window_size": 5}


def test_the_tflite_a_feature_file_and_standard_input_detect_alike(nabu, clips, capsys, tmp_path, monkeypatch):
    wav = clips["okay_nabu"]
    code, want, _ = _run(capsys, nabu, wav, "--verify")
    assert code == 0 and want[1]["reference_mismatches"] == 0 and want[-1]["reference_mismatches"] == 0
    tflite = tmp_path / "okay_nabu.tflite"  # its settings from okay_nabu.json beside it, as the package ships them
    shutil.copy(MODELS / "okay_nabu.tflite", tflite)
    shutil.copy(MODELS / "okay_nabu.json", tmp_path / "okay_nabu.json")
    assert _run(capsys, tflite, wav)[1] == [{k: v for k, v in line.items() if k != "reference_mismatches"}
                                            for line in want]
    features = tmp_path / "nabu.npy"  # float features as pymicro-features gives them
    [(_, chunks)] = iter_streams(wav, 40, MICROFRONTEND)
    np.save(features, np.concatenate(list(chunks)))
    code, lines, _ = _run(capsys, nabu, features)
    assert code == 0 and _detections(lines) == _detections(want)
    with wave.open(str(wav)) as w:
        pcm = w.readframes(w.getnframes())
    monkeypatch.setattr(run, "stdin_pcm", lambda: iter([pcm[:1001], pcm[1001:5000], pcm[5000:]]))
    code, lines, _ = _run(capsys, nabu, "-")
    assert code == 0 and _detections(lines) == _detections(want) and lines[1]["stream"] == "-"
    code, lines, _ = _run(capsys, nabu, wav, "--threshold", "0.999")  # --threshold replaces the cutoff
    assert code == 0 and _detections(lines) == [] and lines[-1]["quantized_cutoff"] == 254


def _pymicro_wakeword_first_detection(model, wav: Path) -> float | None:
    """The time of the first invoke where pymicro-wakeword's own pipeline (its features, its quantizer, LiteRT, the
    mean of the last 5 probabilities above the cutoff) fires, counted as kwsint-run counts frames."""
    from pymicro_wakeword import MicroWakeWord, MicroWakeWordFeatures

    detector, features = MicroWakeWord.from_builtin(model), MicroWakeWordFeatures()
    with wave.open(str(wav)) as w:
        pcm = w.readframes(w.getnframes())
    for frame, f in enumerate(features.process_streaming(pcm)):
        if detector.process_streaming(f):
            return round((frame + 1) * MICROFRONTEND.frame_shift_ms / 1000, 3)
    return None


@pytest.mark.parametrize("name", ["okay_nabu", "alexa", "hey_mycroft"])
def test_detection_times_agree_with_pymicro_wakeword_where_the_rules_agree(name, clips, capsys):
    from pymicro_wakeword import Model

    code, lines, _ = _run(capsys, MODELS / f"{name}.tflite", clips[name])
    [(time, posterior)] = _detections(lines)
    theirs = _pymicro_wakeword_first_detection(Model(name), clips[name])
    cutoff = json.loads((MODELS / f"{name}.json").read_text())["micro"]["probability_cutoff"]
    window_sum = round(posterior * 255 * 5)
    assert window_sum > quantized_cutoff(cutoff) * 5  # ESPHome's rule: the sum of 5 uint8 outputs
    if window_sum > cutoff * 256 * 5:  # pymicro-wakeword's: their mean / 256 above the cutoff
        assert theirs == time
    else:
        # the two rules differ in between: for hey_mycroft (0.95), ESPHome fires above 1210, pymicro-wakeword
        # above 1216, so it fires on a later window
        assert name == "hey_mycroft" and theirs is not None and theirs > time


def test_options_and_inputs_that_do_not_fit_are_refused_in_one_line(nabu, clips, capsys, tmp_path, monkeypatch):
    for option in (["--smoothing", "1"], ["--lockout", "2"], ["--hop", "3"], ["--posteriors", tmp_path / "p.csv"]):
        code, _, err = _run(capsys, nabu, clips["other"], *option)
        assert code == 2 and err == (f"kwsint-run: error: {option[0]}: a microWakeWord model detects by ESPHome's "
                                     f"rule (its probability cutoff over a sliding window of outputs); expected no "
                                     f"{option[0]}\n")
    code, _, err = _run(capsys, nabu, clips["other"], "--threshold", "1.5")
    assert code == 2 and err == "kwsint-run: error: --threshold: expected a probability cutoff in [0, 1], got 1.5\n"
    bare = tmp_path / "bare.kwsq"  # imported without its settings
    assert import_tflite.main([str(MODELS / "okay_nabu.tflite"), "-o", str(bare)]) == 0
    code, _, err = _run(capsys, bare, clips["other"])
    assert code == 2 and err.startswith(f"kwsint-run: error: {bare}: metadata.probability_cutoff: expected ")
    assert err.count("\n") == 1
    np.save(tmp_path / "narrow.npy", np.zeros((30, 20), np.float32))
    np.save(tmp_path / "codes.npy", np.zeros((30, 40), np.int8))
    code, lines, err = _run(capsys, nabu, tmp_path / "narrow.npy", tmp_path / "codes.npy", "--keep-going")
    assert code == 1 and err.splitlines() == [
        f"kwsint-run: error: {tmp_path / 'narrow.npy'}: shape: expected (frames, 40), got (30, 20)",
        f"kwsint-run: error: {tmp_path / 'codes.npy'}: dtype: expected float16, float32, float64, got int8"]
    monkeypatch.setitem(sys.modules, "pymicro_features", None)  # as if the extra were not installed
    code, lines, err = _run(capsys, nabu, clips["other"])
    assert code == 1 and lines == [] and err == ("kwsint-run: error: needs pymicro-features: pip install "
                                                 "'kwsint[microfrontend]'\n")
