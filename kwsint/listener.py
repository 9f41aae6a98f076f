"""Wake word detection on raw audio pushed as it arrives: a microphone, a socket, a pipe.

    listener = model.listener()
    for detection in listener.push(pcm):       # 16-bit mono PCM at the model's sample rate
        print(detection.time, detection.posterior)

The front end is the model's LFBE settings computed incrementally (``FbankStream``),
the detector the one ``Model.detector`` makes, so the same audio gives the same
detections as ``kwsint-run`` on a file of it, however the audio is cut into chunks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .features import FbankStream

if TYPE_CHECKING:
    from .model import Model


@dataclass(frozen=True)
class Detection:
    """One detection.

    Attributes:
        time: seconds from the start of the audio to the end of the newest frame of the window that fired
            (as ``kwsint-run`` reports it).
        frame: index of that frame.
        posterior: the smoothed posterior that crossed the threshold, in [0, 1].
    """

    time: float
    frame: int
    posterior: float


class Listener:
    """Audio in, detections out, for one stream over a shared Model (``Model.listener``).

    Not thread-safe: one listener per stream; any number of listeners may share the model.
    """

    def __init__(self, model: Model, hop: int | None = None, *, threshold: float | None = None,
                 smoothing_s: float | None = None, lockout_s: float | None = None):
        self.model = model
        self.detector = model.detector(hop, threshold=threshold, smoothing_s=smoothing_s, lockout_s=lockout_s)
        fbank = model.spec.frontend.fbank
        self.sample_rate: int = fbank.sample_rate
        """Samples per second that ``push`` expects."""
        self._frame_s = fbank.frame_shift_ms / 1000.0
        self._fbank = FbankStream(fbank)
        self._odd_byte = b""  # PCM bytes arrive in any split; a sample may straddle two pushes

    def push(self, pcm: bytes | bytearray | memoryview | np.ndarray) -> list[Detection]:
        """Append audio; returns the detections it completed (usually none).

        ``pcm``: raw little-endian 16-bit mono PCM bytes (any length: an odd byte waits for the next push), or a
        1-D int16 array, at ``sample_rate``. ValueError for other arrays.
        """
        return self._detections(self._fbank.push(self._samples(pcm)))

    def finish(self) -> list[Detection]:
        """End of the stream: detections of the frames only its end completes. The listener then starts afresh."""
        found = self._detections(self._fbank.finish())
        self.reset()
        return found

    def reset(self) -> None:
        """Forget the audio so far: as freshly made (a new stream; times start at 0 again)."""
        self.detector.reset()
        self._fbank = FbankStream(self._fbank.options)
        self._odd_byte = b""

    def _samples(self, pcm) -> np.ndarray:
        if isinstance(pcm, np.ndarray):
            if pcm.dtype != np.int16 or pcm.ndim != 1:
                raise ValueError(f"pcm: expected a 1-D int16 array, got {pcm.dtype} of shape {pcm.shape}")
            return pcm
        data = self._odd_byte + bytes(pcm)
        whole = len(data) - len(data) % 2
        self._odd_byte = data[whole:]
        return np.frombuffer(data[:whole], dtype="<i2")

    def _detections(self, frames: np.ndarray) -> list[Detection]:
        if not len(frames):
            return []
        steps = self.detector.push(frames)
        return [Detection(time=round((int(f) + 1) * self._frame_s, 6), frame=int(f), posterior=int(s) / 65536.0)
                for f, s in zip(steps.frame[steps.fired], steps.smoothed_q16[steps.fired])]
