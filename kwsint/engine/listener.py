"""Wake word detection on raw audio pushed as it arrives: a microphone, a socket, a pipe.

    listener = model.listener()
    for detection in listener.push(pcm):       # 16-bit mono PCM at the model's sample rate
        print(detection.time, detection.posterior)

    for pcm in microphone(listener.sample_rate):   # the default input device, until Ctrl-C (kwsint[live])
        ...

The front end (``PcmFrames``) is the model's LFBE settings computed incrementally
(``FbankStream``), the detector the one ``Model.detector`` makes, so the same
audio gives the same detections as ``kwsint-run`` on a file of it, however the
audio is cut into chunks. ``kwsint-run MODEL -`` and ``kwsint-run MODEL --mic``
run their audio through the same front end.

A microWakeWord streaming graph's listener (``GraphModel.listener``, a ``GraphListener``) has the same
interface: pymicro-features' front end (``MicroFrontendStream``), ESPHome's quantizer and its detection rule
(``GraphDetector``) with the model's settings (``detection_settings``), as ``kwsint-run`` runs such a model.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..io.features import FbankOptions, FbankStream
from ..io.microfrontend import MICROFRONTEND, MicroFrontendStream, quantize_features
from .graph_detector import GraphDetector, detection_settings

if TYPE_CHECKING:
    from .graph_model import GraphModel
    from .model import Model

NEEDS_SOUNDDEVICE = "needs sounddevice: pip install 'kwsint[live]'"


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
        self._frames = PcmFrames(fbank)

    def push(self, pcm: bytes | bytearray | memoryview | np.ndarray) -> list[Detection]:
        """Append audio; returns the detections it completed (usually none).

        ``pcm``: raw little-endian 16-bit mono PCM bytes (any length: an odd byte waits for the next push), or a
        1-D int16 array, at ``sample_rate``. ValueError for other arrays.
        """
        return self._detections(self._frames.push(pcm))

    def finish(self) -> list[Detection]:
        """End of the stream: detections of the frames only its end completes. The listener then starts afresh."""
        found = self._detections(self._frames.finish())
        self.reset()
        return found

    def reset(self) -> None:
        """Forget the audio so far: as freshly made (a new stream; times start at 0 again)."""
        self.detector.reset()
        self._frames = PcmFrames(self._frames.options)

    def _detections(self, frames: np.ndarray) -> list[Detection]:
        if not len(frames):
            return []
        steps = self.detector.push(frames)
        return [Detection(time=round((int(f) + 1) * self._frame_s, 6), frame=int(f), posterior=int(s) / 65536.0)
                for f, s in zip(steps.frame[steps.fired], steps.smoothed_q16[steps.fired])]


class GraphListener:
    """``Listener`` for a microWakeWord streaming graph (``GraphModel.listener``): 16 kHz audio through
    pymicro-features and ESPHome's quantizer into ESPHome's detection rule, the same detections as ``kwsint-run``
    on a file of the audio, however it is cut.

    A detection's ``time`` is the end of the frame the rule fired at, its ``posterior`` the mean of the outputs
    it summed, ``sum / (255 * N)``. Not thread-safe: one listener per stream; any number may share the model.
    """

    def __init__(self, model: GraphModel, *, threshold: float | None = None):
        """``threshold`` (in [0, 1]) replaces the model's probability cutoff. ValueError (``detection_settings``)
        for a graph ESPHome cannot run or metadata that does not say how; ImportError (one line) without
        pymicro-features."""
        self.model = model
        self.settings = detection_settings(model, threshold)
        self.detector = GraphDetector(model, self.settings.probability_cutoff, self.settings.sliding_window_size)
        self.sample_rate: int = MICROFRONTEND.sample_rate
        """Samples per second that ``push`` expects."""
        self._frame_s = MICROFRONTEND.frame_shift_ms / 1000.0
        self._frames = MicroFrontendStream()

    def push(self, pcm: bytes | bytearray | memoryview | np.ndarray) -> list[Detection]:
        """Append audio; returns the detections it completed (usually none).

        ``pcm``: raw little-endian 16-bit mono PCM bytes (any length), or a 1-D int16 array, at ``sample_rate``.
        ValueError for other arrays.
        """
        frames = self._frames.push(pcm)
        if not len(frames):
            return []
        n = self.settings.sliding_window_size
        return [Detection(time=round((frame + 1) * self._frame_s, 6), frame=frame, posterior=total / (255 * n))
                for frame, total in self.detector.push(quantize_features(frames)).detections]

    def finish(self) -> list[Detection]:
        """End of the stream. The front end's frames are complete as they come (audio short of a 10 ms step makes
        none), so there are no more detections: an empty list. The listener then starts afresh."""
        self.reset()
        return []

    def reset(self) -> None:
        """Forget the audio so far: as freshly made (a new stream; times start at 0 again)."""
        self.detector.reset()
        self._frames.reset()


class PcmFrames:
    """Raw audio pushed as it arrives in, the LFBE frames it completes out: ``FbankStream`` on 16-bit PCM bytes
    split anywhere (the front end of ``Listener`` and of ``kwsint-run``'s standard input and microphone)."""

    def __init__(self, options: FbankOptions):
        self.options = options
        self._fbank = FbankStream(options)
        self._odd_byte = b""  # PCM bytes arrive in any split; a sample may straddle two pushes

    def push(self, pcm: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
        """Append audio; returns the float32 (n, num_mel_bins) frames it completes, n >= 0.

        ``pcm``: raw little-endian 16-bit mono PCM bytes (any length: an odd byte waits for the next push), or a
        1-D int16 array, at ``options.sample_rate``. ValueError for other arrays.
        """
        return self._fbank.push(self._samples(pcm))

    def finish(self) -> np.ndarray:
        """End of the audio: the frames only its end completes. A last odd byte, half a sample, is dropped."""
        return self._fbank.finish()

    def _samples(self, pcm) -> np.ndarray:
        if isinstance(pcm, np.ndarray):
            if pcm.dtype != np.int16 or pcm.ndim != 1:
                raise ValueError(f"pcm: expected a 1-D int16 array, got {pcm.dtype} of shape {pcm.shape}")
            return pcm
        data = self._odd_byte + bytes(pcm)
        whole = len(data) - len(data) % 2
        self._odd_byte = data[whole:]
        return np.frombuffer(data[:whole], dtype="<i2")


class MicrophoneError(OSError):
    """The default input device cannot record: sounddevice or PortAudio is missing, or there is no input device."""


def microphone(sample_rate: int, block_s: float = 0.1) -> Iterator[np.ndarray]:
    """Mono int16 audio from the default input device at ``sample_rate`` Hz, in 1-D arrays of ``block_s`` seconds
    (> 0), until the caller stops (Ctrl-C, or closing the generator, which closes the device).

    Needs the optional ``sounddevice`` package (``pip install 'kwsint[live]'``) and the PortAudio library. The
    device is checked here, before the first block: MicrophoneError, one line saying what is missing. A block
    that came too late to keep every sample (the input overflowed) gives a RuntimeWarning.
    """
    if not block_s > 0:
        raise ValueError(f"block_s: expected > 0 seconds, got {block_s}")
    try:
        import sounddevice as sd
    except ImportError:
        raise MicrophoneError(NEEDS_SOUNDDEVICE) from None
    except OSError as e:  # sounddevice imports, then fails to load PortAudio
        raise MicrophoneError(f"sounddevice cannot load PortAudio ({e}): install it (Debian: apt-get install "
                              "libportaudio2)") from None
    try:
        sd.check_input_settings(channels=1, dtype="int16", samplerate=sample_rate)
    except (sd.PortAudioError, ValueError) as e:  # no default input device, or one that cannot record this
        raise MicrophoneError(f"no input device that records mono 16-bit audio at {sample_rate} Hz "
                              f"(PortAudio: {e})") from None
    return _recording(sd, sample_rate, max(1, round(block_s * sample_rate)))


def _recording(sd, sample_rate: int, block: int) -> Iterator[np.ndarray]:
    try:
        stream = sd.InputStream(samplerate=sample_rate, channels=1, dtype="int16", blocksize=block)
    except sd.PortAudioError as e:  # the device went away or is busy since it was checked
        raise MicrophoneError(f"the input device cannot record: {e}") from None
    with stream:
        while True:
            samples, overflowed = stream.read(block)
            if overflowed:
                warnings.warn("microphone: the input overflowed: some audio was lost", RuntimeWarning)
            yield np.ascontiguousarray(samples[:, 0])
