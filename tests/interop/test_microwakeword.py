"""The four microWakeWord models, imported and run by kwsint's reference invoke by invoke, equal TFLM's
interpreter on the same models, output for output, through resets (docs/arithmetic.md 11).

These streams are synthetic codes; speech through the models' own front end (pymicro-features) comes with the
front end's support."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pymicro_wakeword
import pytest
from tflite_micro import runtime

from kwsint.engine.graph import ReferenceStream
from kwsint.interop.tflite_import import read_tflite

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
