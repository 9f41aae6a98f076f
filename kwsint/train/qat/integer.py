"""The integer arithmetic of ``docs/arithmetic.md`` in PyTorch: the QAT model's evaluation path.

A stage-2 model in evaluation mode runs these functions, so the logits a user
sees while training are the integers the engine computes. They mirror
``kwsint.reference`` (the numpy spec) step by step on int64 tensors, work on
any device, and are tested equal to it and to the C engine.
"""

from __future__ import annotations

import torch

from ...engine.modelspec import Layer, ModelSpec
from ...engine.reference import POSTERIOR_TABLE
from .quantizers import round_half_away

_I32_MIN, _I32_MAX = -(2**31), 2**31 - 1


def _wrap_int32(x: torch.Tensor) -> torch.Tensor:
    return ((x + 2**31) & 0xFFFFFFFF) - 2**31


def quantize(x: torch.Tensor, scale: float, zero_point: int, act_bits: int) -> torch.Tensor:
    """TFLite QUANTIZE of float32 ``x``: round_half_away(x / scale) + zero_point, saturated (int64 out)."""
    qmin, qmax = (-128, 127) if act_bits == 8 else (-32768, 32767)
    q = x.to(torch.float32) / torch.tensor(scale, dtype=torch.float32, device=x.device)
    q = torch.where(torch.isnan(q), torch.tensor(float("-inf"), device=x.device), q)
    q = q.clamp(-(2.0**31), 2.0**31 - 128)
    return (round_half_away(q).to(torch.int64) + zero_point).clamp(qmin, qmax)


def _srdhm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    overflow = (a == _I32_MIN) & (b == _I32_MIN)
    ab = a * b
    num = ab + torch.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    q = torch.where(num >= 0, num >> 31, -((-num) >> 31))  # C division truncates toward zero
    return torch.where(overflow, torch.full_like(q, _I32_MAX), q)


def _rounding_divide_by_pot(x: torch.Tensor, exponent: torch.Tensor) -> torch.Tensor:
    mask = (torch.ones_like(exponent) << exponent) - 1
    threshold = (mask >> 1) + (x < 0).to(torch.int64)
    return (x >> exponent) + ((x & mask) > threshold).to(torch.int64)


def requantize(acc: torch.Tensor, multiplier: torch.Tensor, shift: torch.Tensor, acc_bits: int) -> torch.Tensor:
    """TFLM MultiplyByQuantizedMultiplier on int64 tensors holding int32 (``acc_bits`` 32) or int64 (64) sums."""
    if acc_bits == 32:
        left, right = shift.clamp_min(0), (-shift).clamp_min(0)
        shifted = _wrap_int32(acc << left)
        return _rounding_divide_by_pot(_srdhm(shifted, multiplier), right)
    if acc.numel() and acc.abs().max() >= 2**47:
        raise OverflowError("int64 accumulator outside [-2^47, 2^47)")
    reduced = torch.where(multiplier < 0x7FFF0000, (multiplier + (1 << 15)) >> 16, torch.full_like(multiplier, 0x7FFF))
    total_shift = 15 - shift
    return _wrap_int32((acc * reduced + (torch.ones_like(total_shift) << (total_shift - 1))) >> total_shift)


def _t(a, device) -> torch.Tensor:
    return torch.as_tensor(a, dtype=torch.int64, device=device)


def run_layer(layer: Layer, x: torch.Tensor, act_bits: int) -> torch.Tensor:
    """One dense (FULLY_CONNECTED) or affine (DEPTHWISE_CONV_2D 1x1) layer on int64 codes (..., K)."""
    dev = x.device
    w = _t(layer.weights, dev)
    xs = x - layer.input_zero_point
    acc = xs @ w.T if layer.kind == "dense" else xs * w
    acc = acc + _t(layer.bias, dev)
    acc_bits = 32 if act_bits == 8 else 64
    if acc_bits == 32 and acc.numel() and (acc.min() < _I32_MIN or acc.max() > _I32_MAX):
        raise OverflowError("accumulator exceeds int32; the spec's input bounds were violated")
    out = _wrap_int32(requantize(acc, _t(layer.multiplier, dev), _t(layer.shift, dev), acc_bits)
                      + layer.output_zero_point)
    return out.clamp(layer.act_min, layer.act_max)


def normalize_window(windows: torch.Tensor, frame_stride: int, mean, inv_std) -> torch.Tensor:
    """The front end in float32: frames ``offset::frame_stride`` (the newest included) of
    (..., window_frames, feature_dim) windows, ``(x - mean) * inv_std``, flattened frame-major."""
    w = windows.to(torch.float32)
    frames = w[..., (w.shape[-2] - 1) % frame_stride :: frame_stride, :]
    mean = torch.as_tensor(mean, dtype=torch.float32, device=w.device)
    inv_std = torch.as_tensor(inv_std, dtype=torch.float32, device=w.device)
    return ((frames - mean) * inv_std).reshape(*w.shape[:-2], -1)


def quantize_window(spec: ModelSpec, windows: torch.Tensor) -> torch.Tensor:
    """Float (..., window_frames, feature_dim) windows -> quantized input codes (..., input_size)."""
    fe = spec.frontend
    y = normalize_window(windows, fe.frame_stride, fe.mean, fe.inv_std)
    return quantize(y, fe.input_scale, fe.input_zero_point, spec.act_bits)


def forward_quantized(spec: ModelSpec, xq: torch.Tensor) -> torch.Tensor:
    """Integer logits (..., 2) as int64 from quantized inputs (..., input_size)."""
    h = xq.to(torch.int64)
    for layer in spec.layers:
        h = run_layer(layer, h, spec.act_bits)
    return h


def forward(spec: ModelSpec, windows: torch.Tensor) -> torch.Tensor:
    """Integer logits (..., 2) as int64 from float windows (..., window_frames, feature_dim)."""
    return forward_quantized(spec, quantize_window(spec, windows))


def posterior_q16(logits: torch.Tensor, multiplier: int, shift: int) -> torch.Tensor:
    """Wakeword posterior in Q16 (65536 == 1.0) from integer logits (..., 2); see ``reference.posterior_q16``."""
    dev = logits.device
    d = _wrap_int32(logits[..., 1] - logits[..., 0])
    x = requantize(d, _t(multiplier, dev), _t(shift, dev), 32)
    a = x.abs().clamp_max(256 << 8)
    table = _t(POSTERIOR_TABLE, dev)
    lo = table[(a >> 8).clamp_max(256)]
    hi = table[((a >> 8) + 1).clamp_max(256)]
    p = lo + (((hi - lo) * (a & 255) + 128) >> 8)
    return torch.where(x >= 0, p, (1 << 16) - p)
