"""The microWakeWord front end (kwsint.io.microfrontend): pymicro-features' frames however the audio is cut, and
ESPHome's integer feature quantizer on every uint16 value."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from pymicro_features import MicroFrontend

from kwsint.io.inputs import iter_streams
from kwsint.io.microfrontend import (MICROFRONTEND, NEEDS_PYMICRO_FEATURES, MicroFrontendStream, feature_codes,
                                     quantize_features)
from tests.microwakeword_speech import write_wav


def _esphome_code(v: int) -> int:
    """esphome/components/micro_wake_word/micro_wake_word.cpp, generate_features_, on one uint16 value: int32
    arithmetic, C division (truncating; the operands are non-negative), then clamp to int8."""
    value = (v * 256 + 666 // 2) // 666
    value += -128
    return min(max(value, -128), 127)


def test_the_quantizer_is_esphomes_on_every_uint16_value():
    values = np.arange(65536)
    want = np.array([_esphome_code(v) for v in range(65536)], np.int8)
    np.testing.assert_array_equal(feature_codes(values), want)
    # pymicro-features gives v / 25.6: whether that quotient is float32 or float64, round(f * 25.6) gets v back
    np.testing.assert_array_equal(quantize_features(values.astype(np.float32) / np.float32(25.6)), want)
    np.testing.assert_array_equal(quantize_features(values / 25.6), want)
    assert want.min() == -128 and want.max() == 127  # both ends of the clamp are reached


def test_the_quantizer_reads_values_off_the_grid_and_beyond_uint16_as_the_nearest_value():
    # v = round(f * 25.6): 1.49 / 25.6 -> 1 -> code -128 and 1.51 / 25.6 -> 2 -> -127; v is clamped to [0, 65535]
    f = np.array([-5.0, -0.01, 1.49 / 25.6, 1.51 / 25.6, 25.0, 662 / 25.6, 663 / 25.6, 1e9])
    assert quantize_features(f).tolist() == [-128, -128, -128, -127, 118, 126, 127, 127]
    with pytest.raises(ValueError, match="finite"):
        quantize_features(np.array([0.0, np.nan]))


def _pymicro_features_directly(pcm: bytes) -> np.ndarray:
    """The frames as pymicro-wakeword's MicroWakeWordFeatures makes them: 10 ms of audio per call."""
    frontend, frames, i = MicroFrontend(), [], 0
    while i + 320 <= len(pcm):
        result = frontend.process_samples(pcm[i : i + 320])
        i += 2 * result.samples_read
        if result.features:
            frames.append(result.features)
    return np.array(frames, np.float32)


@pytest.fixture(scope="module")
def audio() -> np.ndarray:
    """1.3 s of a chirp over noise, int16 at 16 kHz (the frames do not need speech to be compared)."""
    rng = np.random.default_rng(7)
    t = np.arange(20800) / 16000
    x = 8000 * np.sin(2 * np.pi * (200 + 1500 * t) * t) + rng.normal(0, 500, t.size)
    return np.clip(x, -32768, 32767).astype(np.int16)


def test_a_wav_gives_the_frames_of_pymicro_features_run_directly(audio, tmp_path):
    want = _pymicro_features_directly(audio.tobytes())
    assert want.shape == (128, 40)  # the first frame after 480 samples, then one per 160
    path = write_wav(tmp_path / "a.wav", audio)
    [(name, chunks)] = iter_streams(path, 40, MICROFRONTEND, chunk_frames=50)
    got = list(chunks)
    assert name == str(path) and [len(c) for c in got] == [50, 50, 28]
    np.testing.assert_array_equal(np.concatenate(got), want)


def test_audio_pushed_in_any_pieces_gives_the_same_frames(audio):
    want = _pymicro_features_directly(audio.tobytes())
    rng = np.random.default_rng(0)
    pcm = audio.tobytes()
    stream, got, i = MicroFrontendStream(), [], 0
    while i < len(pcm):  # odd byte counts split samples
        n = int(rng.integers(0, 777))
        got.append(stream.push(pcm[i : i + n]))
        i += n
    np.testing.assert_array_equal(np.concatenate(got), want)
    stream.reset()
    np.testing.assert_array_equal(stream.push(audio), want)  # int16 arrays too, afresh after reset
    with pytest.raises(ValueError, match="1-D int16"):
        stream.push(audio.astype(np.int32))


def test_a_wav_at_another_rate_and_a_wrong_width_are_one_line(audio, tmp_path):
    path = tmp_path / "a.wav"
    write_wav(path, audio)
    with pytest.raises(ValueError, match="microfrontend's 40 features per frame, got 20"):
        list(iter_streams(path, 20, MICROFRONTEND))
    data = bytearray(path.read_bytes())
    data[24:28] = (8000).to_bytes(4, "little")  # the header's sample rate
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="sample_rate: expected 16000 Hz"):
        list(iter_streams(path, 40, MICROFRONTEND))


def test_a_missing_pymicro_features_is_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pymicro_features", None)  # "import pymicro_features" now fails
    with pytest.raises(ImportError) as e:
        MicroFrontendStream()
    assert str(e.value) == NEEDS_PYMICRO_FEATURES == "needs pymicro-features: pip install 'kwsint[microfrontend]'"
