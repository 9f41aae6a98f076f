"""The microWakeWord front end: TFLite Micro's "microfrontend" features through ``pymicro-features``, and the
integer feature quantizer ESPHome feeds its streaming models with (docs/arithmetic.md 12).

``pymicro-features`` (the optional extra ``kwsint[microfrontend]``) computes, from 16 kHz 16-bit mono audio, one
frame of 40 features every 10 ms (30 ms windows; the first frame after 480 samples), in integers: each feature is
a uint16 value ``v``, handed to Python as the float ``v / 25.6``. ``MicroFrontendStream`` runs it on audio pushed
in any pieces; ``quantize_features`` turns its floats into the int8 codes the models take, exactly as ESPHome
turns the uint16 values:

    code = clamp((v * 256 + 333) // 666 - 128, -128, 127)

(esphome/components/micro_wake_word/micro_wake_word.cpp, ``generate_features_``: ``value_div`` 666 is
25.6 * 26 rounded; its C division is on non-negative values, so it is floor division.) ``v`` comes back from a
float as ``round(f * 25.6)``, which recovers every uint16 value from its float32 or float64 quotient
(tests/io/test_microfrontend.py checks all 65,536).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

NEEDS_PYMICRO_FEATURES = "needs pymicro-features: pip install 'kwsint[microfrontend]'"
FEATURE_DIVISOR = 25.6
"""pymicro-features hands each uint16 feature value to Python divided by this."""
_MAX_VALUE = 65535  # uint16
_STEP_SAMPLES = 160  # 10 ms at 16 kHz: the audio fed to the front end per call, as pymicro-wakeword feeds it
_STEP_BYTES = 2 * _STEP_SAMPLES


@dataclass(frozen=True)
class MicroFrontendOptions:
    """pymicro-features' settings, which it fixes: what audio it takes and what frames it gives.

    Attributes:
        sample_rate: Hz of the 16-bit mono audio (16000).
        num_features: features per frame (40 channels, 125..7500 Hz).
        frame_shift_ms: milliseconds between frames (10); each frame covers 30 ms.
    """

    sample_rate: int = 16000
    num_features: int = 40
    frame_shift_ms: float = 10.0


MICROFRONTEND = MicroFrontendOptions()


def feature_codes(values: np.ndarray) -> np.ndarray:
    """ESPHome's quantizer on the front end's integer values.

    Args:
        values: integer feature values in [0, 65535] (uint16), any shape.

    Returns:
        int8 codes of the same shape: ``clamp((v * 256 + 333) // 666 - 128, -128, 127)``.
    """
    v = np.asarray(values, dtype=np.int64)
    return np.clip((v * 256 + 333) // 666 - 128, -128, 127).astype(np.int8)


def quantize_features(features: np.ndarray) -> np.ndarray:
    """The int8 input codes of features as pymicro-features gives them (uint16 values / 25.6).

    Args:
        features: finite floats, any shape; each is read as the value ``round(f * 25.6)``, clamped to the
            uint16 range [0, 65535] (values off the 1/25.6 grid go to the nearest value).

    Returns:
        int8 codes of the same shape (``feature_codes`` of the values).

    Raises:
        ValueError: a value is NaN or infinite.
    """
    f = np.asarray(features, dtype=np.float64)
    if not np.isfinite(f).all():
        raise ValueError("features: expected finite values")
    return feature_codes(np.clip(np.rint(f * FEATURE_DIVISOR), 0, _MAX_VALUE))


def _frontend():
    try:
        from pymicro_features import MicroFrontend
    except ImportError:
        raise ImportError(NEEDS_PYMICRO_FEATURES) from None
    return MicroFrontend()


def require_pymicro_features() -> None:
    """ImportError with the one line ``NEEDS_PYMICRO_FEATURES`` when pymicro-features cannot be imported."""
    _frontend()


class MicroFrontendStream:
    """Audio pushed in any pieces in, the front end's frames out, as pymicro-features computes them.

    The audio goes to pymicro-features 10 ms at a time, as pymicro-wakeword feeds it, so the frames do not
    depend on how the audio was cut: concatenated, the frames of every push equal those of the whole audio.
    """

    def __init__(self) -> None:
        """ImportError (``NEEDS_PYMICRO_FEATURES``) when pymicro-features is missing."""
        self.options = MICROFRONTEND
        self._frontend = _frontend()
        self._pending = b""  # audio of less than one step (and an odd byte), waiting for the next push

    def push(self, pcm: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
        """Append audio; returns the float32 (n, 40) frames it completes, n >= 0.

        ``pcm``: raw little-endian 16-bit mono PCM bytes at 16 kHz (any length), or a 1-D int16 array.
        ValueError for other arrays.
        """
        if isinstance(pcm, np.ndarray):
            if pcm.dtype != np.int16 or pcm.ndim != 1:
                raise ValueError(f"pcm: expected a 1-D int16 array, got {pcm.dtype} of shape {pcm.shape}")
            pcm = pcm.astype("<i2", copy=False).tobytes()
        data = self._pending + bytes(pcm)
        frames = []
        start = 0
        while start + _STEP_BYTES <= len(data):
            result = self._frontend.process_samples(data[start : start + _STEP_BYTES])
            start += 2 * result.samples_read
            if result.features:
                frames.append(result.features)
        self._pending = data[start:]
        return np.array(frames, dtype=np.float32).reshape(len(frames), self.options.num_features)

    def reset(self) -> None:
        """Forget the audio so far (a new stream)."""
        self._frontend.reset()
        self._pending = b""


def microfrontend_chunks(blocks: Iterable[bytes | np.ndarray]) -> Iterator[np.ndarray]:
    """The front end's frames of audio given block by block (1-D int16 arrays, or raw PCM bytes split anywhere, at
    16 kHz), each block's as soon as it is read, in constant memory:
    float32 (n, 40) arrays, n >= 1. Audio after the last whole 10 ms step completes no frame and is dropped.

    Raises:
        ImportError: at once (not at the first frame), ``NEEDS_PYMICRO_FEATURES``.
    """
    return _frames(MicroFrontendStream(), blocks)


def _frames(stream: MicroFrontendStream, blocks: Iterable[bytes | np.ndarray]) -> Iterator[np.ndarray]:
    for block in blocks:
        frames = stream.push(block)
        if len(frames):
            yield frames
