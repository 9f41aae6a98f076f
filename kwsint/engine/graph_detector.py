"""Wake word detection on a microWakeWord streaming graph, by ESPHome's rule (docs/arithmetic.md 12).

    detector = GraphDetector(model, probability_cutoff=0.85, sliding_window_size=5)
    steps = detector.push(codes)          # int8 (n, 40) feature codes, any n, in order
    steps.detections                      # [(frame, window_sum), ...]

The rule is ESPHome's (esphome/components/micro_wake_word, streaming_model.cpp and micro_wake_word.cpp, read at
commit cbd7709e of streaming_model.cpp): the model is fed one feature frame ("slice") at a time; every
``stride`` frames (the input tensor's frame count) it is invoked and its uint8 output joins a ring of the last
N = ``sliding_window_size`` outputs (zeros at the start). After each frame:

- a cool-off counter, -100 (``MIN_SLICES_BEFORE_DETECTION``) at the start and after a detection, goes up by
  one if the newest output is below the cutoff, up to 0;
- if an output arrived since the last check and the counter is 0, the rule checks ``sum > cutoff * N``, where
  cutoff is ``int(probability_cutoff * 255)`` (esphome/components/micro_wake_word/__init__.py); a check
  made while the counter is negative is no check, so a new output waits for the counter (the detection may
  then fall on a frame between invokes);
- a detection zeroes the ring and sets the counter back to -100. The model's state goes on (ESPHome stops
  the microphone after a detection by default and reloads the model when it starts again; a stream here
  goes on, as with ``stop_after_detection: false``).

So nothing is detected in the first second (100 frames of 10 ms) of a stream, nor in the second after a
detection (longer while the outputs stay at or above the cutoff).

``detection_settings`` resolves the cutoff and N from the model's metadata (microWakeWord's JSON settings), a
threshold replacing the cutoff: kwsint-run, ``GraphListener`` and the Wyoming service share it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..io.microfrontend import MICROFRONTEND
from .graph import ReferenceStream
from .graph_model import GraphModel, GraphStream

MIN_SLICES_BEFORE_DETECTION = 100
"""Frames after a start or a detection during which ESPHome detects nothing (streaming_model.h)."""
FEATURES_PER_FRAME = 40
"""ESPHome's ``PREPROCESSOR_FEATURE_SIZE``: the microfrontend's features per frame, the models' input width."""
INPUT_SCALE = float(np.float32(26 / 255))
"""The input scale ESPHome's feature quantizer assumes (features 0..26 onto int8, zero point -128)."""
INPUT_ZERO_POINT = -128
MAX_SLIDING_WINDOW = 1024


def quantized_cutoff(probability_cutoff: float) -> int:
    """ESPHome's uint8 cutoff, ``int(probability_cutoff * 255)`` (truncated, in double), for a cutoff in [0, 1]."""
    if not (isinstance(probability_cutoff, (int, float)) and 0.0 <= probability_cutoff <= 1.0):
        raise ValueError(f"probability_cutoff: expected a number in [0, 1], got {probability_cutoff!r}")
    return int(probability_cutoff * 255)


class SlidingWindowRule:
    """ESPHome's detection rule, told what each feature frame brought (module docstring).

    Attributes:
        cutoff: the uint8 cutoff, 0..255.
        window: N, the number of recent outputs summed, 1..1024.
    """

    def __init__(self, cutoff: int, window: int):
        if not (isinstance(cutoff, int) and 0 <= cutoff <= 255):
            raise ValueError(f"cutoff: expected an integer in 0..255, got {cutoff!r}")
        if not (isinstance(window, int) and 1 <= window <= MAX_SLIDING_WINDOW):
            raise ValueError(f"sliding_window_size: expected an integer in 1..{MAX_SLIDING_WINDOW}, got {window!r}")
        self.cutoff, self.window = cutoff, window
        self.reset()

    def reset(self) -> None:
        """As at a start: the ring zeroed, the cool-off at -100."""
        self._outputs = [0] * self.window
        self._newest = 0  # index of the newest output in the ring
        self._cool_off = -MIN_SLICES_BEFORE_DETECTION
        self._unchecked = False  # an output arrived since the last check

    @property
    def window_sum(self) -> int:
        """The sum of the last N outputs."""
        return sum(self._outputs)

    def frames(self, output: int | None, count: int) -> tuple[int, int] | None:
        """``count`` (>= 1) feature frames in a row, of which only the first may have completed an invoke:
        ``output`` is that invoke's uint8 output, None when none did. Returns (the frame's offset among them, the
        sum of the last N outputs) when the wake word is detected at one of them, else None.

        The same as the module docstring's steps frame by frame: between outputs the newest output is fixed, so
        the counter moves on every frame or on none, and only an output sets the flag a check clears, so at most
        one check falls in these frames.
        """
        if output is not None:
            self._newest = (self._newest + 1) % self.window
            self._outputs[self._newest] = output
            self._unchecked = True
        counting = self._outputs[self._newest] < self.cutoff  # the counter moves on each of these frames
        if counting:
            at = max(-self._cool_off - 1, 0)  # the frame whose step brings the counter to 0
        else:
            at = 0 if self._cool_off == 0 else count
        if not self._unchecked or at >= count:
            if counting:
                self._cool_off = min(self._cool_off + count, 0)
            return None
        self._unchecked = False
        self._cool_off = 0  # as it was at the check, and stays while the newest output is unchanged
        total = self.window_sum
        if total <= self.cutoff * self.window:
            return None
        self._outputs = [0] * self.window
        # the frames after the detection see the zeroed ring: below the cutoff unless it is 0
        after = count - at - 1 if self.cutoff > 0 else 0
        self._cool_off = min(-MIN_SLICES_BEFORE_DETECTION + after, 0)
        return at, total


@dataclass(frozen=True)
class GraphSteps:
    """What one ``GraphDetector.push`` ran.

    Attributes:
        frame: int64 (k,), for each invoke the index of its newest frame in the stream.
        output: uint8 (k,), each invoke's output.
        window_sum: int64 (k,), the sum of the last N outputs once each invoke's output joined them (the
            posterior ESPHome reports is sum / (255 * N)).
        detections: (frame, sum of the last N outputs) of each detection.
    """

    frame: np.ndarray
    output: np.ndarray
    window_sum: np.ndarray
    detections: list[tuple[int, int]]


def check_esphome_model(model: GraphModel) -> None:
    """ValueError, one line naming the field, unless ``model`` is a graph ESPHome's pipeline can run: int8 input
    of (frames, 40) quantized as its feature quantizer assumes, one uint8 output (the wake word probability)."""
    x = model.spec.tensors[model.spec.input]
    frames, channels = model.input_shape
    if channels != FEATURES_PER_FRAME:
        raise ValueError(f"input: expected (frames, {FEATURES_PER_FRAME}) int8, the microfrontend's features, got "
                         f"({frames}, {channels})")
    if x.quant.zero_point != INPUT_ZERO_POINT or not np.isclose(x.quant.scale, INPUT_SCALE, rtol=1e-6, atol=0):
        raise ValueError(f"input: expected scale {INPUT_SCALE:.8g} (26/255) and zero point {INPUT_ZERO_POINT}, "
                         f"as ESPHome's feature quantizer assumes, got scale {x.quant.scale:.8g} and zero point "
                         f"{x.quant.zero_point}")
    if model.output_dtype != np.uint8 or model.output_shape != (1, 1):
        raise ValueError(f"output: expected one uint8 value (the wake word probability), got "
                         f"{model.output_dtype} {model.output_shape}")


@dataclass(frozen=True)
class DetectionSettings:
    """ESPHome's detection settings for one model (``detection_settings``).

    Attributes:
        probability_cutoff: in [0, 1]; the rule compares with ``quantized_cutoff`` of it.
        sliding_window_size: N, the outputs summed, 1..1024.
    """

    probability_cutoff: float
    sliding_window_size: int


def detection_settings(model: GraphModel, threshold: float | None = None) -> DetectionSettings:
    """The settings ESPHome detects ``model``'s wake word with: its metadata's (microWakeWord's JSON settings),
    ``threshold`` (in [0, 1]) replacing the probability cutoff.

    Raises:
        ValueError: one line naming what is wrong: the graph (``check_esphome_model``), ``threshold``, or the
            metadata field that is missing or does not fit (a feature step other than pymicro-features' 10 ms).
    """
    check_esphome_model(model)
    meta = model.metadata
    if threshold is not None:
        try:
            quantized_cutoff(threshold)
        except ValueError:
            raise ValueError(f"threshold: expected a probability cutoff in [0, 1], got {threshold}") from None
    elif meta.probability_cutoff is None:
        raise ValueError("metadata.probability_cutoff: expected microWakeWord's settings (kwsint-import --settings "
                         "MODEL.json), got none; or give a threshold")
    if meta.sliding_window_size is None:
        raise ValueError("metadata.sliding_window_size: expected microWakeWord's settings (kwsint-import --settings "
                         "MODEL.json), got none")
    step = meta.feature_step_size
    if step is not None and step != MICROFRONTEND.frame_shift_ms:
        raise ValueError(f"metadata.feature_step_size: expected {MICROFRONTEND.frame_shift_ms:g} ms "
                         f"(pymicro-features' frame step), got {step} ms")
    return DetectionSettings(meta.probability_cutoff if threshold is None else threshold, meta.sliding_window_size)


class GraphDetector:
    """ESPHome's streaming inference and detection rule over one stream of a shared ``GraphModel``.

    ``push`` runs the invokes its frames complete in one call into C (``GraphStream.invoke_many``) and the rule
    once per invoke (``SlidingWindowRule.frames``), not once per frame, so that Python costs little per frame.
    Not thread-safe: one detector per stream; any number may share the model.
    """

    def __init__(self, model: GraphModel, probability_cutoff: float, sliding_window_size: int, *,
                 verify: bool = False):
        """
        Args:
            model: a graph ``check_esphome_model`` accepts (ValueError otherwise).
            probability_cutoff: in [0, 1]; ESPHome compares with ``int(probability_cutoff * 255)``.
            sliding_window_size: N, the outputs summed, 1..1024.
            verify: also run ``ReferenceStream`` (numpy, about 4 ms per invoke) on every invoke and count
                the outputs that differ in ``mismatches``.
        """
        check_esphome_model(model)
        self.model = model
        self.stride = model.input_shape[0]
        self.rule = SlidingWindowRule(quantized_cutoff(probability_cutoff), sliding_window_size)
        self.verify = verify
        self.mismatches = 0
        self.reset()

    def reset(self) -> None:
        """A new stream, as ESPHome's start: the graph's states at their init codes, the rule as at a start,
        frame indices from 0 again (``mismatches`` is kept)."""
        self._stream: GraphStream = self.model.stream()
        self._reference = ReferenceStream(self.model.spec) if self.verify else None
        self._input = np.empty(self.model.input_shape, np.int8)
        self._filled = 0  # rows of _input holding this invoke's frames
        self.rule.reset()
        self.frames = 0
        """Frames pushed since the start."""

    def push(self, codes: np.ndarray) -> GraphSteps:
        """Run the frames ``codes`` (int8 (n, 40), n >= 0, the next frames of the stream): the invokes they
        complete and the detections at them. ValueError for another dtype or width."""
        codes = np.asarray(codes)
        if codes.dtype != np.int8 or codes.ndim != 2 or codes.shape[1] != self.model.input_shape[1]:
            raise ValueError(f"codes: expected int8 (frames, {self.model.input_shape[1]}), got {codes.dtype} "
                             f"{codes.shape}")
        n, stride, held = len(codes), self.stride, self._filled
        rows = np.concatenate([self._input[:held], codes])  # the frames of a started invoke first
        count = len(rows) // stride  # invokes, all in one call into C
        inputs = rows[: count * stride].reshape(count, *self.model.input_shape)
        outputs = self._stream.invoke_many(inputs)[:, 0, 0]
        self._filled = len(rows) - count * stride
        self._input[: self._filled] = rows[count * stride :]
        if self._reference is not None:
            for x, output in zip(inputs, outputs.tolist()):
                self.mismatches += int(self._reference.invoke(x)[0, 0]) != output
        # the rule over runs of frames: those before the first invoke's last frame, then from each invoke's last
        # frame to the next's
        first = stride - 1 - held  # the offset in codes of the first invoke's last frame
        ends = range(first, first + stride * count, stride)
        sums, detections = [], []
        if first and n and (fired := self.rule.frames(None, min(first, n))) is not None:
            detections.append((self.frames + fired[0], fired[1]))
        for at, output in zip(ends, outputs.tolist()):
            fired = self.rule.frames(output, min(stride, n - at))
            sums.append(self.rule.window_sum if fired is None else fired[1])  # a detection zeroed the ring
            if fired is not None:
                detections.append((self.frames + at + fired[0], fired[1]))
        frame = self.frames + np.array(ends, np.int64)
        self.frames += n
        return GraphSteps(frame, outputs.copy(), np.array(sums, np.int64), detections)
