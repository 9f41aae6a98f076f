"""The four microWakeWord models, imported and run by kwsint invoke by invoke, equal TFLM's interpreter on the same
models, output for output, through resets (docs/arithmetic.md 11): the reference on synthetic codes, and every
backend on espeak-ng speech, noise and tones through the models' own front end (pymicro-features and ESPHome's
quantizer), whose detections by ESPHome's rule equal that rule run on TFLM's outputs (docs/arithmetic.md 12)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pymicro_wakeword
import pytest
from tflite_micro import runtime

import kwsint
from kwsint import GraphModel
from kwsint.engine.blob import write_blob
from kwsint.engine.graph import ReferenceStream
from kwsint.engine.graph_detector import MIN_SLICES_BEFORE_DETECTION, GraphDetector, quantized_cutoff
from kwsint.interop.tflite_import import read_tflite
from tests.microwakeword_speech import long_stream_codes, speech_folder

pytestmark = pytest.mark.tflm

MODELS = Path(pymicro_wakeword.__file__).parent / "models"
NAMES = ("okay_nabu", "hey_jarvis", "alexa", "hey_mycroft")
INVOKES = 1200  # per model; each stream below is a fifth of them


def _streams(rng: np.random.Generator, frames: int, channels: int, n: int) -> list[np.ndarray]:
    """Input codes, (n, frames, channels) int8 per stream: uniform codes, a clipped random walk (slowly changing
    features, like speech's), silence (every code -128), full scale (127), and alternating extremes."""
    shape = (n, frames, channels)
    walk = np.clip(np.cumsum(rng.integers(-6, 7, shape), axis=0) - 60, -128, 127)
    extremes = np.where(rng.random(shape) < 0.5, -128, 127)
    return [rng.integers(-128, 128, shape), walk, np.full(shape, -128), np.full(shape, 127), extremes]


@pytest.mark.parametrize("name", NAMES)
def test_the_reference_equals_tflm_invoke_by_invoke(name):
    data = (MODELS / f"{name}.tflite").read_bytes()
    spec = read_tflite(data, name=f"{name}.tflite")
    tflm = runtime.Interpreter.from_bytes(data)
    ours = ReferenceStream(spec)
    x = spec.tensors[spec.input]
    rng = np.random.default_rng(sum(map(ord, name)))
    mismatches = 0
    for stream in _streams(rng, x.frames, x.channels, INVOKES // 5):
        for i, frames in enumerate(stream.astype(np.int8)):
            if i == len(stream) // 2:  # a reset mid-stream, on both sides
                tflm.reset()
                ours.reset()
            tflm.set_input(frames.reshape(1, x.frames, x.channels), 0)
            tflm.invoke()
            want = int(tflm.get_output(0).reshape(-1)[0])
            got = int(ours.invoke(frames).reshape(-1)[0])
            mismatches += got != want
        tflm.reset()
        ours.reset()
    assert mismatches == 0


@pytest.fixture(scope="module")
def speech_codes(tmp_path_factory) -> np.ndarray:
    return long_stream_codes(speech_folder(tmp_path_factory))


def _esphome_detections(outputs: list[int], frames: int, stride: int, cutoff: int, n: int) -> list[int]:
    """The frames where ESPHome detects, its code transcribed (esphome/components/micro_wake_word:
    streaming_model.cpp perform_streaming_inference, determine_detected and reset_probabilities; micro_wake_word.cpp
    process_probabilities_, which resets a model's probabilities after its detection), fed ``outputs``, the
    model's output at each invoke, over ``frames`` feature slices."""
    recent, last_n_index, ignore_windows, unprocessed = [0] * n, 0, -MIN_SLICES_BEFORE_DETECTION, False
    current_stride_step, invokes, found = 0, iter(outputs), []
    for frame in range(frames):
        current_stride_step = current_stride_step % stride
        current_stride_step += 1
        if current_stride_step >= stride:
            last_n_index += 1
            if last_n_index == n:
                last_n_index = 0
            recent[last_n_index] = next(invokes)
            unprocessed = True
        if recent[last_n_index] < cutoff:
            ignore_windows = min(ignore_windows + 1, 0)
        if unprocessed and ignore_windows >= 0:
            unprocessed = False
            if sum(recent) > cutoff * n:
                found.append(frame)
                recent, ignore_windows = [0] * n, -MIN_SLICES_BEFORE_DETECTION
    return found


@pytest.mark.parametrize("name", NAMES)
def test_speech_equals_tflm_and_esphomes_detections_on_every_backend(name, speech_codes):
    data = (MODELS / f"{name}.tflite").read_bytes()
    spec = read_tflite(data, name=f"{name}.tflite", settings=MODELS / f"{name}.json")
    stride = spec.tensors[spec.input].frames
    cutoff, n = spec.metadata.probability_cutoff, spec.metadata.sliding_window_size
    half = len(speech_codes) // 2
    segments = [speech_codes[:half], speech_codes[half:]]  # a reset between them
    tflm = runtime.Interpreter.from_bytes(data)
    want_outputs, want_detections = [], []
    for codes in segments:
        tflm.reset()
        outputs = []
        for k in range(len(codes) // stride):
            tflm.set_input(codes[k * stride : (k + 1) * stride].reshape(1, stride, -1), 0)
            tflm.invoke()
            outputs.append(int(tflm.get_output(0).reshape(-1)[0]))
        want_outputs.append(outputs)
        want_detections.append(_esphome_detections(outputs, len(codes), stride, quantized_cutoff(cutoff), n))
    assert sum(map(len, want_outputs)) >= 2500  # x 4 models: at least 10,000 invokes against TFLM
    assert sum(map(len, want_detections)) >= 1  # each model hears its phrase in some voice
    blob = write_blob(spec)
    mismatches = {}
    for be in kwsint.backends():
        detector = GraphDetector(GraphModel(blob, backend=be), cutoff, n)
        mismatches[be] = 0
        for codes, outputs, fired in zip(segments, want_outputs, want_detections):
            detector.reset()
            steps = detector.push(codes)
            mismatches[be] += int(np.sum(steps.output != np.array(outputs)))
            assert [frame for frame, _ in steps.detections] == fired, be
    assert mismatches == dict.fromkeys(kwsint.backends(), 0)
