"""The float32 model: the paper's M0 baseline on the same engine as the integer models.

A ``FloatSpec`` is the float network as arrays: the front end (frame selection
and normalisation, as for integer models), then dense layers with their
clipped-ReLU clamp and per-channel affine (batch norm) layers. ``FloatModel``
runs it in C with the float32 kernels of docs/arithmetic.md section 10, which
give the same bits on every backend and equal ``reference.forward_f32``.
It exists to measure the integer models against (cycles, memory); it is not
a blob format.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np

from .._kwsint_c import ffi, lib
from . import backend as _backend
from .limits import MAX_DIM, MAX_LAYERS
from .modelspec import Frontend


@dataclass(frozen=True)
class FloatLayer:
    """One float32 layer.

    Attributes:
        kind: "dense" or "affine".
        weights: float32, dense (N, K); affine the per-channel scale (N,).
        bias: float32 (N,): the dense bias or the affine shift.
        act_min, act_max: the dense layer's output clamp (-inf, inf for none); unused for affine.
    """

    kind: str
    weights: np.ndarray
    bias: np.ndarray
    act_min: float = -math.inf
    act_max: float = math.inf

    @property
    def in_size(self) -> int:
        return int(self.weights.shape[-1])

    @property
    def out_size(self) -> int:
        return int(self.weights.shape[0])


@dataclass(frozen=True)
class FloatSpec:
    """A float32 network: the front end (its input_scale and zero point are unused) and its layers."""

    frontend: Frontend
    layers: tuple[FloatLayer, ...]

    @property
    def macs(self) -> int:
        return sum(int(layer.weights.size) for layer in self.layers)


def from_net(net) -> FloatSpec:
    """The float network of a float-stage ``kwsint.train.qat.model.KWSNet`` (needs torch).

    Dense i: ``gain * W`` and the bias, clamped to [0, relu_clip] on hidden
    layers; batch norm in evaluation mode becomes the affine
    ``x * gamma / sqrt(var + eps) + (beta - mean * gamma / sqrt(var + eps))``,
    computed in float64 and rounded to float32 once.
    """
    import torch

    if net.stage != "float":
        raise ValueError(f"a float-stage model is needed, got a {net.stage} model")
    c = net.config
    layers = []
    with torch.no_grad():
        for i, d in enumerate(net.dense):
            w = net.effective_weight(i).double().numpy().astype(np.float32)
            hidden = i < len(net.norms)
            layers.append(FloatLayer("dense", w, d.bias.double().numpy().astype(np.float32),
                                     0.0 if hidden else -math.inf, float(c.relu_clip) if hidden else math.inf))
            if hidden:
                bn = net.norms[i]
                a = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
                b = bn.bias.double() - bn.running_mean.double() * a
                layers.append(FloatLayer("affine", a.numpy().astype(np.float32), b.numpy().astype(np.float32)))
    fe = Frontend(c.window_frames, c.feature_dim, c.frame_stride,
                  net.feature_mean.numpy().astype(np.float32), net.feature_inv_std.numpy().astype(np.float32),
                  input_scale=1.0, input_zero_point=0)
    return FloatSpec(fe, tuple(layers))


class FloatModel:
    """A ``FloatSpec`` on a C backend: immutable, safe to share between threads."""

    def __init__(self, spec: FloatSpec, *, backend: str | None = None):
        self.spec = spec
        fe = spec.frontend
        if not 1 <= len(spec.layers) <= MAX_LAYERS:
            raise ValueError(f"layers: expected 1..{MAX_LAYERS}, got {len(spec.layers)}")
        keep = [np.ascontiguousarray(fe.mean, np.float32), np.ascontiguousarray(fe.inv_std, np.float32)]
        layers = ffi.new("kws_float_layer[]", len(spec.layers))
        width = fe.input_size
        for i, layer in enumerate(spec.layers):
            w = np.ascontiguousarray(layer.weights, np.float32)
            b = np.ascontiguousarray(layer.bias, np.float32)
            dense = layer.kind == "dense"
            want = (layer.out_size, width) if dense else (width,)
            if layer.kind not in ("dense", "affine") or w.shape != want or b.shape != (layer.out_size,):
                raise ValueError(f"layer {i}: expected a dense (N, {width}) or affine ({width},) layer with "
                                 f"bias (N,), got {layer.kind} {w.shape} with bias {b.shape}")
            keep += [w, b]  # alive until the C model has copied them
            layers[i].kind = lib.KWS_LAYER_DENSE if dense else lib.KWS_LAYER_AFFINE
            layers[i].in_size, layers[i].out_size = width, layer.out_size
            layers[i].weights = ffi.cast("float *", ffi.from_buffer(w))
            layers[i].bias = ffi.cast("float *", ffi.from_buffer(b))
            layers[i].act_min, layers[i].act_max = layer.act_min, layer.act_max
            width = layer.out_size
        desc = ffi.new("kws_float_model_desc *", dict(
            window_frames=fe.window_frames, feature_dim=fe.feature_dim, frame_stride=fe.frame_stride,
            mean=ffi.cast("float *", ffi.from_buffer(keep[0])),
            inv_std=ffi.cast("float *", ffi.from_buffer(keep[1])),
            num_layers=len(spec.layers), layers=layers))
        be = _backend.resolve(backend)
        out = ffi.new("kws_float_model **")
        status = lib.kws_float_model_create(desc, be, out)
        if status == lib.KWS_ERR_ARGUMENT:
            raise ValueError(f"float model: {_backend.STATUS_NAMES[status]} (values must be finite, sizes 1..{MAX_DIM}, "
                             "and the last layer 2 outputs)")
        _backend.check(status, "kws_float_model_create")
        self._ptr = ffi.gc(out[0], lib.kws_float_model_free)
        self._info = ffi.new("kws_model_info *")
        lib.kws_float_model_get_info(self._ptr, self._info)
        self.backend: str = _backend.name_of(be)
        self.window_shape = (fe.window_frames, fe.feature_dim)
        self._local = threading.local()

    def _window(self, window: np.ndarray) -> np.ndarray:
        a = np.asarray(window)
        if a.dtype.kind != "f" or a.shape != self.window_shape:
            raise ValueError(f"window: expected float shape {self.window_shape}, got {a.dtype} {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError("window: features must be finite (found NaN or Inf)")
        return np.ascontiguousarray(a, dtype=np.float32)

    def _scratch(self):
        local = self._local
        if not hasattr(local, "scratch"):
            local.scratch = ffi.from_buffer(np.empty(int(self._info.scratch_bytes) // 8 + 1, dtype=np.int64))
        return local.scratch

    def infer(self, window: np.ndarray) -> np.ndarray:
        """Float32 logits (2,) of one raw window (window_frames, feature_dim)."""
        w = self._window(window)
        logits = np.empty(int(self._info.num_outputs), dtype=np.float32)
        status = lib.kws_float_model_infer(self._ptr, ffi.cast("float *", ffi.from_buffer(w)), self._scratch(),
                                           ffi.cast("float *", ffi.from_buffer(logits)))
        _backend.check(status, "kws_float_model_infer")
        return logits

    def infer_steps(self, frames: np.ndarray, hop: int) -> tuple[np.ndarray, np.ndarray]:
        """Float32 logits of the windows a ``Model.detector(hop)`` would step at over these frames, in one C call.

        Args:
            frames: raw float frames (T, feature_dim), as pushed to a fresh detector.
            hop: frames between steps, >= 1.

        Returns ``step_frames`` (int64 (N,), the 0-based index of each window's
        newest frame: window_frames - 1, then every ``hop`` frames while below T)
        and ``logits`` (float32 (N, 2), each equal to ``infer`` on that window).
        """
        f = np.asarray(frames)
        if f.dtype.kind != "f" or f.ndim != 2 or f.shape[1] != self.window_shape[1]:
            raise ValueError(f"frames: expected float shape (T, {self.window_shape[1]}), got {f.dtype} {f.shape}")
        if isinstance(hop, bool) or not isinstance(hop, (int, np.integer)) or hop < 1:
            raise ValueError(f"hop: expected an integer >= 1, got {hop!r}")
        if not np.isfinite(f).all():
            raise ValueError("frames: features must be finite (found NaN or Inf)")
        f = np.ascontiguousarray(f, dtype=np.float32)
        first = self.window_shape[0] - 1
        step_frames = np.arange(first, f.shape[0], int(hop), dtype=np.int64)
        logits = np.empty((step_frames.size, int(self._info.num_outputs)), dtype=np.float32)
        ran = ffi.new("size_t *")
        status = lib.kws_float_model_infer_steps(self._ptr, ffi.cast("float *", ffi.from_buffer(f)), f.shape[0],
                                                 int(hop), self._scratch(), ffi.cast("float *", ffi.from_buffer(logits)),
                                                 step_frames.size, ran)
        _backend.check(status, "kws_float_model_infer_steps")
        if ran[0] != step_frames.size:
            raise RuntimeError(f"kws_float_model_infer_steps: {ran[0]} of {step_frames.size} steps")
        return step_frames, logits

    def time_inference(self, window: np.ndarray, repeats: int = 100) -> int:
        """Counter ticks for ``repeats`` inferences of one raw window, timed in C (as ``Model.time_inference``)."""
        ticks = ffi.new("uint64_t *")
        status = lib.kws_float_model_time_infer(self._ptr, ffi.cast("float *", ffi.from_buffer(self._window(window))),
                                                self._scratch(), repeats, ticks)
        _backend.check(status, "kws_float_model_time_infer")
        return int(ticks[0])

    def time_layers(self, window: np.ndarray, repeats: int = 100) -> list[int]:
        """Counter ticks spent in each layer over ``repeats`` inferences (as ``Model.time_layers``)."""
        ticks = np.zeros(len(self.spec.layers), dtype=np.uint64)
        status = lib.kws_float_model_time_layers(self._ptr, ffi.cast("float *", ffi.from_buffer(self._window(window))),
                                                 self._scratch(), repeats,
                                                 ffi.cast("uint64_t *", ffi.from_buffer(ticks)))
        _backend.check(status, "kws_float_model_time_layers")
        return [int(t) for t in ticks]

    def info(self) -> dict:
        """Bytes and MACs per inference, as ``Model.info`` names them."""
        return dict(backend=self.backend, act_bits=32, macs=int(self._info.macs),
                    weight_bytes_in_memory=int(self._info.weight_bytes),
                    model_bytes_in_memory=int(self._info.model_bytes),
                    scratch_bytes=int(self._info.scratch_bytes))
