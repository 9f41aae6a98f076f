"""``kwsint.load`` and ``Model``: a blob on a C backend."""

from __future__ import annotations

import math
import os
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .._kwsint_c import ffi, lib
from ..default_model import SHIPPED_PREFIX, model_path
from ..errors import FormatError
from . import backend as _backend, reference
from .blob import packed_bytes, read_blob
from .limits import MAX_SMOOTHING_STEPS
from .modelspec import ModelSpec

if TYPE_CHECKING:
    from .listener import Listener


INT_MAX = 2**31 - 1  # C int fields of kws_detector_config
"""The longest moving average the C detector keeps, in steps."""
DEFAULT_THRESHOLD = 0.5
"""The detector's smoothed-posterior threshold in [0, 1] unless told otherwise (``Model.detector``, the CLIs)."""
DEFAULT_SMOOTHING_S = 0.15
"""The detector's moving-average window in seconds unless told otherwise: 5 steps at the usual hop of 3 frames."""
DEFAULT_LOCKOUT_S = 1.0
"""Seconds after a detection in which the detector does not fire again, unless told otherwise."""
_STEPS_EPS = 1e-9  # seconds / step_s lands a hair below a whole number (0.99 / 0.03 = 32.99999...): count it whole
WEIGHT_STORAGE = {"auto": lib.KWS_WEIGHTS_AUTO, "int8": lib.KWS_WEIGHTS_INT8, "packed": lib.KWS_WEIGHTS_PACKED}
"""Model.weights: how dense weights are held in memory, and so which kernels run them (kws_weight_storage)."""
FUSED = {lib.KWS_FUSED_NONE: None, lib.KWS_FUSED_NEXT: "next", lib.KWS_FUSED_INTO_PREVIOUS: "previous"}


@dataclass(frozen=True, slots=True)
class Inference:
    """Result of one window.

    Attributes:
        logits: int32 (2,), the (not-wakeword, wakeword) output codes.
        posterior_q16: wakeword posterior in Q16 (65536 == 1.0), identical on every backend.
    """

    logits: np.ndarray
    posterior_q16: int

    @property
    def posterior(self) -> float:
        """Wakeword posterior in [0, 1]."""
        return self.posterior_q16 / 65536.0


# What Model.infer's float32 path uses, looked up once: a call's Python costs about as much as the model.
_new_object = object.__new__
_set_logits = Inference.logits.__set__  # the slots' own setters: what the frozen __init__ does
_set_posterior = Inference.posterior_q16.__set__
_FLOAT32 = np.dtype(np.float32)  # the dtype of float32 arrays (others equal to it take infer's general path)
_FLOAT_ARRAY = ffi.typeof("float[]")
_from_buffer = ffi.from_buffer
_infer_window = lib.kws_model_infer
_OK = lib.KWS_OK


@dataclass(frozen=True)
class BatchInference:
    """Results of B windows: logits int32 (B, 2), posterior_q16 int32 (B,)."""

    logits: np.ndarray
    posterior_q16: np.ndarray

    @property
    def posterior(self) -> np.ndarray:
        return self.posterior_q16 / 65536.0


class Model:
    """A loaded model: immutable, safe to share between threads."""

    def __init__(self, data: bytes, *, backend: str | None = None, source: str = "<bytes>", weights: str = "auto",
                 memory: str = "copy"):
        if weights not in WEIGHT_STORAGE:
            raise ValueError(f"weights: expected one of {', '.join(WEIGHT_STORAGE)}, got {weights!r}")
        self.spec: ModelSpec = read_blob(data, source)
        self.blob_bytes = len(data)
        self.format_version: int = struct.unpack_from("<H", data, 4)[0]  # checked by read_blob
        self.weights = weights
        be = _backend.resolve(backend)
        self._ptr, self.arena_bytes = _backend.load_model(data, be, source, WEIGHT_STORAGE[weights], memory)
        self.memory = memory
        info = ffi.new("kws_model_info *")
        lib.kws_model_get_info(self._ptr, info)
        self._info = info
        self.backend: str = _backend.name_of(be)
        fe = self.spec.frontend
        self.window_shape = (fe.window_frames, fe.feature_dim)
        self._act_dtype = self.spec.act_dtype
        self._local = threading.local()  # per-thread buffers of infer(): the model stays shareable

    # --- inputs ------------------------------------------------------------------

    def _quantized_inputs(self, windows: np.ndarray, batched: bool) -> np.ndarray:
        """(B, input_size) quantized inputs from float windows or integer inputs."""
        a = np.asarray(windows)
        fe = self.spec.frontend
        lead = 1 if batched else 0
        if a.dtype.kind == "f":
            if a.shape[lead:] != self.window_shape or a.ndim != lead + 2:
                raise ValueError(f"window: expected float shape {'(B, ) + ' if batched else ''}"
                                 f"{self.window_shape}, got {a.shape}")
            if not np.isfinite(a).all():
                raise ValueError("window: features must be finite (found NaN or Inf)")
            a = np.ascontiguousarray(a.reshape(-1, *self.window_shape), dtype=np.float32)
            q = np.empty((a.shape[0], fe.input_size), dtype=self._act_dtype)
            for i in range(a.shape[0]):
                lib.kws_model_quantize_window(self._ptr, ffi.cast("float *", ffi.from_buffer(a[i])),
                                              ffi.from_buffer(q[i]))
            return q
        if a.dtype != self._act_dtype:
            raise ValueError(f"window: expected float features or {np.dtype(self._act_dtype).name} "
                             f"quantized input, got dtype {a.dtype}")
        if a.size != (a.shape[0] if batched else 1) * fe.input_size or a.ndim < lead + 1:
            raise ValueError(f"window: quantized input needs {fe.input_size} values per window, got shape {a.shape}")
        return np.ascontiguousarray(a.reshape(-1, fe.input_size))

    # --- inference ---------------------------------------------------------------

    def _run(self, q: np.ndarray) -> BatchInference:
        """Quantized inputs (B, input_size) through the model, a chunk of windows at a time in C."""
        n = q.shape[0]
        logits = np.empty((n, int(self._info.num_outputs)), dtype=np.int32)
        post = np.empty(n, dtype=np.int32)
        scratch = np.empty(int(self._info.batch_scratch_bytes) // 8 + 1, dtype=np.int64)
        status = lib.kws_model_infer_batch_q(self._ptr, ffi.from_buffer(q), n, ffi.from_buffer(scratch),
                                             ffi.cast("int32_t *", ffi.from_buffer(logits)),
                                             ffi.cast("int32_t *", ffi.from_buffer(post)))
        _backend.check(status, "kws_model_infer_batch_q")
        return BatchInference(logits, post)

    def infer(self, window: np.ndarray) -> Inference:
        """Run one window.

        Args:
            window: float features of shape (window_frames, feature_dim) (raw
                LFBE; normalisation and quantization happen here), or the
                already-quantized input vector (input_size values of the
                model's activation dtype).
        """
        # The common call, a float32 C-contiguous window, is one C call (finiteness check, quantization,
        # inference) on per-thread buffers, with as little Python around it as will do.
        if type(window) is np.ndarray and window.dtype is _FLOAT32 and window.shape == self.window_shape \
                and window.flags.c_contiguous:
            try:
                scratch, logits_p, post_p, logits = self._local.buffers
            except AttributeError:
                scratch, logits_p, post_p, logits = self._buffers()
            status = _infer_window(self._ptr, _from_buffer(_FLOAT_ARRAY, window), scratch, logits_p, post_p)
            if status == _OK:  # Inference(logits.copy(), post_p[0]), without the calls of its frozen __init__
                r = _new_object(Inference)
                _set_logits(r, logits.copy())
                _set_posterior(r, post_p[0])
                return r
            if not np.isfinite(window).all():
                raise ValueError("window: features must be finite (found NaN or Inf)")
            _backend.check(status, "kws_model_infer")
        r = self._run(self._quantized_inputs(window, batched=False))
        return Inference(r.logits[0], int(r.posterior_q16[0]))

    def _buffers(self) -> tuple:
        """This thread's arena, logits and posterior for ``infer`` (C pointers, and the logits' array), made on
        its first call; cffi's pointers keep the arrays alive."""
        logits = np.empty(int(self._info.num_outputs), dtype=np.int32)
        arena = int(self._info.scratch_bytes) + int(self._info.input_bytes)
        self._local.buffers = (ffi.from_buffer(np.empty(arena // 8 + 1, dtype=np.int64)),
                               ffi.cast("int32_t *", ffi.from_buffer(logits)), ffi.new("int32_t *"), logits)
        return self._local.buffers

    def infer_batch(self, windows: np.ndarray) -> BatchInference:
        """Run B windows: float (B, window_frames, feature_dim) or quantized (B, input_size)."""
        return self._run(self._quantized_inputs(windows, batched=True))

    def quantize_window(self, window: np.ndarray) -> np.ndarray:
        """The quantized input vector the engine computes for a float window."""
        return self._quantized_inputs(window, batched=False)[0]

    def time_inference(self, window: np.ndarray, repeats: int = 100) -> int:
        """Counter ticks for ``repeats`` inferences of one window, timed in C (for benchmarks).

        A float window is timed from the raw features (frame selection,
        normalisation and QUANTIZE included, as ``infer`` runs it); a quantized
        input vector times the layers alone. Ticks are ``kws_cycle_counter``'s:
        the x86 time-stamp counter (constant rate, not core cycles) or the
        aarch64 virtual counter.
        """
        a = np.asarray(window)
        scratch = np.empty((int(self._info.scratch_bytes) + int(self._info.input_bytes)) // 8 + 1, dtype=np.int64)
        ticks = ffi.new("uint64_t *")
        if a.dtype.kind == "f":
            self._quantized_inputs(a, batched=False)  # checks shape and finiteness
            w = np.ascontiguousarray(a, dtype=np.float32)
            status = lib.kws_model_time_infer(self._ptr, ffi.cast("float *", ffi.from_buffer(w)),
                                              ffi.from_buffer(scratch), repeats, ticks)
        else:
            q = self._quantized_inputs(a, batched=False)[0]
            status = lib.kws_model_time_infer_q(self._ptr, ffi.from_buffer(q), ffi.from_buffer(scratch), repeats,
                                                ticks)
        _backend.check(status, "kws_model_time_infer")
        return int(ticks[0])

    def time_layers(self, window: np.ndarray, repeats: int = 100) -> list[int]:
        """Counter ticks spent in each layer over ``repeats`` inferences of one window (for benchmarks).

        Each layer is timed by two counter reads around it, so the sum holds
        their cost too and exceeds what ``time_inference`` measures a little.
        A layer that runs in the previous layer's epilogue (``plans()``) shows
        0: its time is in that layer's.
        """
        q = self._quantized_inputs(window, batched=False)[0]
        scratch = np.empty(int(self._info.scratch_bytes) // 8 + 1, dtype=np.int64)
        ticks = np.zeros(len(self.spec.layers), dtype=np.uint64)
        status = lib.kws_model_time_layers(self._ptr, ffi.from_buffer(q), ffi.from_buffer(scratch), repeats,
                                           ffi.cast("uint64_t *", ffi.from_buffer(ticks)))
        _backend.check(status, "kws_model_time_layers")
        return [int(t) for t in ticks]

    def stream(self) -> Stream:
        """A new stream over this model (its own ring buffer and arena)."""
        return Stream(self)

    def operating_point(self) -> tuple[float, float, float]:
        """(threshold, smoothing_s, lockout_s): the blob's recommended values where it states them
        (``spec.metadata``), else DEFAULT_THRESHOLD, DEFAULT_SMOOTHING_S and DEFAULT_LOCKOUT_S."""
        m = self.spec.metadata
        return (DEFAULT_THRESHOLD if m.threshold is None else m.threshold,
                DEFAULT_SMOOTHING_S if m.smoothing_s is None else m.smoothing_s,
                DEFAULT_LOCKOUT_S if m.lockout_s is None else m.lockout_s)

    def detector(self, hop: int | None = None, *, threshold: float | None = None, smoothing_s: float | None = None,
                 lockout_s: float | None = None) -> Detector:
        """A new streaming detector over this model (docs/arithmetic.md section 8), with durations in seconds.

        What is not given is the model's recommended operating point (``operating_point``), as in
        kwsint-run: the same frames give the same detections.
        ``Detector(model, hop, smoothing_steps=..., threshold=..., lockout_steps=...)``
        takes the durations in steps instead.

        Args:
            hop: frames between steps, >= 1; default the model's frame stride.
            threshold: smoothed-posterior threshold in [0, 1], rounded to Q16 by ``reference.threshold_q16``.
            smoothing_s: moving-average window in seconds, >= 0; in steps the nearest whole number, at least 1
                and at most MAX_SMOOTHING_STEPS (``smoothing_steps``).
            lockout_s: seconds after a detection in which none fires, >= 0; in steps rounded down
                (``lockout_steps``).

        Raises ValueError for a value out of range, or durations longer than the detector keeps.
        """
        hop = self.spec.frontend.frame_stride if hop is None else _int_arg("hop", hop, 1, INT_MAX)
        recommended = self.operating_point()
        threshold = recommended[0] if threshold is None else threshold
        smoothing_s = recommended[1] if smoothing_s is None else smoothing_s
        lockout_s = recommended[2] if lockout_s is None else lockout_s
        frame_shift_s = self.spec.frontend.fbank.frame_shift_ms / 1000.0
        return Detector(self, hop, smoothing_steps=smoothing_steps(smoothing_s, hop, frame_shift_s),
                        threshold=threshold, lockout_steps=lockout_steps(lockout_s, hop, frame_shift_s))

    def listener(self, hop: int | None = None, *, threshold: float | None = None, smoothing_s: float | None = None,
                 lockout_s: float | None = None) -> Listener:
        """A new detector on raw audio pushed as it arrives (``kwsint.engine.listener.Listener``): 16-bit mono PCM at
        the model's sample rate in, detections out, the same as kwsint-run's on that audio. The arguments
        are ``detector``'s."""
        from .listener import Listener  # it imports this module's types

        return Listener(self, hop, threshold=threshold, smoothing_s=smoothing_s, lockout_s=lockout_s)

    def plans(self) -> list[dict]:
        """How each layer runs, as chosen at load: the kernel's name, the weights' bytes and bits as held
        (8, 4: two per byte, 1: eight per byte), the int16 accumulation block the kernel uses (products,
        0: int32 sums), and fusion ("next": the following affine layer runs in this layer's epilogue;
        "previous": this layer runs in the previous one's)."""
        plan = ffi.new("kws_layer_plan *")
        plans = []
        for i in range(len(self.spec.layers)):
            if lib.kws_model_layer_plan(self._ptr, i, plan) != lib.KWS_OK:
                raise RuntimeError(f"kws_model_layer_plan failed for layer {i}")
            plans.append(dict(kernel=ffi.string(plan.kernel).decode(), weight_bytes=int(plan.weight_bytes),
                              code_bits=int(plan.code_bits), acc16_block=int(plan.acc16_block),
                              fused=FUSED[plan.fused]))
        return plans

    def info(self) -> dict:
        """Layers (with each dense layer's proven int16 accumulation block in products, 0 for int32),
        bits, bytes (weights and model as held, one stream's state, the blob) and MACs per inference."""
        held = {8: "int8", 4: "4-bit packed", 1: "1-bit packed"}
        layers = [
            dict(kind=l.kind, in_size=l.in_size, out_size=l.out_size, weight_bits=l.weight_bits,
                 per_channel=l.per_channel, macs=l.macs, packed_weight_bytes=packed_bytes(l.weights.size, l.weight_bits),
                 acc16_block=(1 << l.acc16_block) if l.acc16_block else 0, weight_storage=held[plan["code_bits"]],
                 plan=plan)
            for l, plan in zip(self.spec.layers, self.plans())
        ]
        return dict(
            backend=self.backend,
            weights=self.weights,
            memory=self.memory,
            arena_bytes=self.arena_bytes,
            act_bits=self.spec.act_bits,
            window=self.window_shape,
            frame_stride=self.spec.frontend.frame_stride,
            input_size=self.spec.frontend.input_size,
            layers=layers,
            weight_bytes_in_memory=int(self._info.weight_bytes),
            model_bytes_in_memory=int(self._info.model_bytes),
            packed_weight_bytes=sum(l["packed_weight_bytes"] for l in layers),
            blob_bytes=self.blob_bytes,
            scratch_bytes=int(self._info.scratch_bytes),
            batch_scratch_bytes=int(self._info.batch_scratch_bytes),
            stream_bytes=int(lib.kws_stream_bytes(self._ptr)),
            macs=int(self._info.macs),
        )


class Stream:
    """Per-stream state: the last window_frames quantized frames, over a shared Model.

    Frames are quantized once, on arrival. ``infer`` runs the model on the
    newest full window and equals ``model.infer`` on that window.
    """

    def __init__(self, model: Model):
        self.model = model
        out = ffi.new("kws_stream **")
        _backend.check(lib.kws_stream_create(model._ptr, out), "kws_stream_create")
        self._ptr = ffi.gc(out[0], lib.kws_stream_free)
        self._logits = np.empty(int(model._info.num_outputs), dtype=np.int32)
        self._post = np.empty(1, dtype=np.int32)

    @property
    def frames(self) -> int:
        """Frames pushed since creation or the last reset."""
        return int(lib.kws_stream_frames(self._ptr))

    def push(self, frames: np.ndarray) -> None:
        """Append float frames, shape (T, feature_dim) or (feature_dim,)."""
        f = _frames_arg(frames, self.model.window_shape[1])
        lib.kws_stream_push(self._ptr, ffi.cast("float *", ffi.from_buffer(f)), f.shape[0])

    def infer(self) -> Inference:
        """Run the model on the newest window; needs window_frames frames pushed."""
        if self.frames < self.model.window_shape[0]:
            raise ValueError(f"stream holds {self.frames} frames; a window needs {self.model.window_shape[0]}")
        lib.kws_stream_infer(self._ptr, ffi.cast("int32_t *", ffi.from_buffer(self._logits)),
                             ffi.cast("int32_t *", ffi.from_buffer(self._post)))
        return Inference(self._logits.copy(), int(self._post[0]))

    def reset(self) -> None:
        """Forget every frame."""
        lib.kws_stream_reset(self._ptr)


@dataclass(frozen=True)
class DetectorSteps:
    """The steps one ``Detector.push`` ran, oldest first (N of them, possibly 0).

    Attributes:
        frame: int64 (N,), index of the newest frame of each step's window,
            counting frames from 0 since the detector was created or reset.
            The step's time is the end of that frame: ``(frame + 1) * frame_shift``.
        logits: int32 (N, 2), the (not-wakeword, wakeword) output codes.
        posterior_q16: int32 (N,), the wakeword posterior in Q16 (65536 == 1.0).
        smoothed_q16: int32 (N,), its moving average over the last ``smoothing_steps`` steps, Q16.
        fired: bool (N,), where a detection fired.
    """

    frame: np.ndarray
    logits: np.ndarray
    posterior_q16: np.ndarray
    smoothed_q16: np.ndarray
    fired: np.ndarray


class Detector:
    """Streaming detection over a shared Model: steps, smoothing, threshold, lockout.

    A step runs the model on the newest window at the frame that completes the
    first window, then every ``hop`` frames. Decisions are integer code in C,
    identical on every backend, and equal ``reference.detect_stream``.

    Made by ``Model.detector`` from durations in seconds, or directly from steps:
    ``hop`` frames between steps (>= 1), a moving average over ``smoothing_steps``
    steps (1..MAX_SMOOTHING_STEPS; 1: none), a ``threshold`` in [0, 1] and
    ``lockout_steps`` steps after a detection that cannot fire (>= 0).
    """

    def __init__(self, model: Model, hop: int, *, smoothing_steps: int, threshold: float, lockout_steps: int):
        self.model = model
        self.hop = _int_arg("hop", hop, 1, INT_MAX)
        self.smoothing_steps = _int_arg("smoothing_steps", smoothing_steps, 1, MAX_SMOOTHING_STEPS)
        self.threshold_q16 = reference.threshold_q16(threshold)
        self.lockout_steps = _int_arg("lockout_steps", lockout_steps, 0, INT_MAX)
        config = ffi.new("kws_detector_config *", dict(hop=self.hop, smoothing=self.smoothing_steps,
                                                      threshold_q16=self.threshold_q16, lockout=self.lockout_steps))
        out = ffi.new("kws_detector **")
        status = lib.kws_detector_create(model._ptr, config, out)
        _backend.check(status, "kws_detector_create")
        self._ptr = ffi.gc(out[0], lib.kws_detector_free)
        self.state_bytes: int = int(lib.kws_detector_bytes(model._ptr, config))
        """Bytes this detector allocated: its moving-average ring and its stream."""

    def push(self, frames: np.ndarray) -> DetectorSteps:
        """Append float frames, shape (T, feature_dim) or (feature_dim,); returns the steps they completed."""
        f = _frames_arg(frames, self.model.window_shape[1])
        n = lib.kws_detector_steps_for(self._ptr, f.shape[0])
        r = DetectorSteps(np.empty(n, np.int64), np.empty((n, 2), np.int32), np.empty(n, np.int32),
                          np.empty(n, np.int32), np.empty(n, np.bool_))  # int64 frame: indices stay below 2^63
        out = ffi.new("kws_detector_steps *", dict(
            capacity=n, frame=ffi.cast("uint64_t *", ffi.from_buffer(r.frame)),
            logits=ffi.cast("int32_t *", ffi.from_buffer(r.logits)),
            posterior_q16=ffi.cast("int32_t *", ffi.from_buffer(r.posterior_q16)),
            smoothed_q16=ffi.cast("int32_t *", ffi.from_buffer(r.smoothed_q16)),
            fired=ffi.cast("uint8_t *", ffi.from_buffer(r.fired))))
        ran = ffi.new("size_t *")
        status = lib.kws_detector_push(self._ptr, ffi.cast("float *", ffi.from_buffer(f)), f.shape[0], out, ran)
        _backend.check(status, "kws_detector_push")
        if ran[0] != n:
            raise RuntimeError(f"kws_detector_push: {ran[0]} of {n} steps")
        return r

    def reset(self) -> None:
        """Forget frames, posteriors and lockout: as freshly created."""
        lib.kws_detector_reset(self._ptr)


def _frames_arg(frames: np.ndarray, dim: int) -> np.ndarray:
    """Contiguous float32 (T, dim) frames from (T, dim) or (dim,); ValueError otherwise."""
    f = np.asarray(frames, dtype=np.float32)
    if f.ndim == 1:
        f = f[None, :]
    if f.ndim != 2 or f.shape[1] != dim:
        raise ValueError(f"frames: expected shape (T, {dim}), got {np.shape(frames)}")
    if not np.isfinite(f).all():
        raise ValueError("frames: features must be finite (found NaN or Inf)")
    return np.ascontiguousarray(f)


def _seconds_arg(what: str, seconds) -> float:
    """seconds as a float >= 0; ValueError naming ``what`` otherwise."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float, np.integer, np.floating)) \
            or not (math.isfinite(seconds) and seconds >= 0):
        raise ValueError(f"{what}: expected finite seconds >= 0, got {seconds!r}")
    return float(seconds)


def smoothing_steps(smoothing_s: float, hop: int, frame_shift_s: float = 0.010) -> int:
    """The moving average's length in steps for ``smoothing_s`` seconds (>= 0) at ``hop`` frames a step: the
    nearest whole number of steps, halves up, at least 1 (0 s: no smoothing). ValueError for a negative or
    non-finite value, or one longer than MAX_SMOOTHING_STEPS steps."""
    step_s = hop * frame_shift_s
    steps = max(1, math.floor(_seconds_arg("smoothing", smoothing_s) / step_s + 0.5 + _STEPS_EPS))
    if steps > MAX_SMOOTHING_STEPS:
        raise ValueError(f"smoothing: {smoothing_s:g} s is {steps} steps of {step_s:g} s; the detector smooths over "
                         f"at most {MAX_SMOOTHING_STEPS} steps ({MAX_SMOOTHING_STEPS * step_s:g} s)")
    return steps


def lockout_steps(lockout_s: float, hop: int, frame_shift_s: float = 0.010) -> int:
    """The lockout in steps for ``lockout_s`` seconds (>= 0) at ``hop`` frames a step.

    Detections then lie more than ``lockout_s`` apart: ``t - last > L`` with
    ``L = floor(lockout_s / (hop * frame_shift_s))`` (frames 10 ms apart by default).
    ValueError for a negative or non-finite value, or more steps than a C int holds.
    """
    step_s = hop * frame_shift_s
    steps = math.floor(_seconds_arg("lockout", lockout_s) / step_s + _STEPS_EPS)
    if steps > INT_MAX:
        raise ValueError(f"lockout: {lockout_s:g} s is {steps} steps of {step_s:g} s; at most {INT_MAX}")
    return steps


def _int_arg(name: str, value, lo: int, hi: int) -> int:
    """value as an int in [lo, hi]; ValueError naming the argument otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in [{lo}, {hi}], got {value}")
    return int(value)


def model_names(refs: Sequence[str]) -> list[str]:
    """Short names for models given as paths (their stems) or shipped names (``default:M4`` -> ``M4``); the refs
    whole where two short names clash."""
    stems = [r.removeprefix(SHIPPED_PREFIX) if r.startswith(SHIPPED_PREFIX) else Path(r).stem for r in refs]
    return stems if len(set(stems)) == len(stems) else list(refs)


def _is_graph(data: bytes) -> bool:
    """A TFLite flatbuffer ("TFL3" at offset 4), or a kwsint blob of version 5 and kind 1 (checked by the
    loaders; anything else goes to Model, whose reader names what is wrong)."""
    if data[4:8] == b"TFL3":
        return True
    return data[:4] == b"KWSQ" and len(data) >= 8 and struct.unpack_from("<HH", data, 4) == (5, 1)


def _load_graph(data: bytes, source: str, backend: str | None, memory: str):
    from .graph_model import GraphModel
    if data[4:8] == b"TFL3":  # the importer is interop, above the engine (tests/test_layout.py)
        raise FormatError(f"{source}: a TFLite flatbuffer, not a kwsint blob: load it with kwsint.load(), "
                          "which imports it, or convert it with kwsint-import")
    return GraphModel(data, backend=backend, source=source, memory=memory)


def load(path_or_bytes: str | os.PathLike | bytes, *, backend: str | None = None, weights: str = "auto",
         memory: str = "copy") -> Model:
    """Load a ``.kwsq`` blob from a path, ``"default:NAME"`` (a shipped model: ``"default:M4"``) or bytes;
    raises FormatError if it is malformed.

    weights: "auto" (the default) holds each dense layer the way the backend runs
    fastest: packed where it has a packed kernel that beats its int8 one for the
    layer's bits, int8 codes otherwise; "int8" holds every weight as an int8
    code; "packed" holds 2..4-bit dense layers two codes per byte (or the
    backend's 4-bit layout) and 1-bit layers eight per byte, computed from
    directly (the least memory). The results are the same whatever the choice;
    ``Model.plans()`` shows what each layer got.

    memory: "copy" (the default) copies what the model needs into memory of its own; "arena" builds it in an
    arena sized by the C query (kws_model_load_into, which a device's caller gives its own memory);
    "in_place" also reads int8 weights where they lie in the blob (KWS_LOAD_IN_PLACE, docs/c-api.md). The
    results are the same whatever the choice.

    A streaming graph (a blob of kind 1) loads as a ``GraphModel`` instead, whose ``stream()`` invokes it as TFLM
    does; ``weights`` does not apply to it (its dense layers hold int8 codes). A TFLite flatbuffer (microWakeWord's
    ``.tflite``) is refused here with a FormatError: the importer lives above the engine, and the top-level
    ``kwsint.load`` routes such a file to it.
    """
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        data, source = bytes(path_or_bytes), "<bytes>"
    else:
        if isinstance(path_or_bytes, str) and path_or_bytes.startswith(SHIPPED_PREFIX):
            path_or_bytes = model_path(path_or_bytes)
        path = Path(path_or_bytes)
        data, source = path.read_bytes(), str(path)
    if _is_graph(data):
        return _load_graph(data, source, backend, memory)
    return Model(data, backend=backend, source=source, weights=weights, memory=memory)
