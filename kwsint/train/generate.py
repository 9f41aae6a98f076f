"""Random integer models of the paper's shapes, calibrated so activations use their range.

These stand in for trained models in tests, benchmarks and the demo: the
weights are random codes on the grid, and every output scale and zero point is
chosen from the integer activations of random input windows, so the layers
neither saturate nor collapse to a few codes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..engine import reference
from ..engine.limits import BIAS_LIMIT
from ..engine.modelspec import Frontend, Layer, ModelSpec

# Hidden layer sizes and weight bits per dense layer (6 hidden + output) of the
# paper's integer configurations (Table 1 and Section 6.3).
PAPER_SIZES = (87, 400, 87, 400, 87, 400)
CONFIGS: dict[str, dict] = {
    "M1": dict(sizes=PAPER_SIZES, weight_bits=8, act_bits=16),
    "M2": dict(sizes=PAPER_SIZES, weight_bits=8, act_bits=8),
    "M3": dict(sizes=PAPER_SIZES, weight_bits=5, act_bits=8),
    "M4": dict(sizes=PAPER_SIZES, weight_bits=4, act_bits=8),
    "M5": dict(sizes=(123, 566, 123, 566, 123, 566), weight_bits=(5, 5, 1, 1, 1, 1, 5), act_bits=8),
    "M6": dict(sizes=(1080, 566, 123, 566, 123, 566), weight_bits=1, act_bits=8),
}

_CALIBRATION_WINDOWS = 32


def _grid_max(bits: int) -> int:
    return 1 if bits == 1 else (1 << (bits - 1)) - 1


def _random_codes(rng: np.random.Generator, shape, bits: int) -> np.ndarray:
    if bits == 1:
        return rng.choice(np.array([-1, 1], dtype=np.int8), size=shape)
    q = _grid_max(bits)
    return rng.integers(-q, q + 1, size=shape).astype(np.int8)


def _scale_for(real_max: float, steps: int) -> np.float32:
    return np.float32(max(real_max, 1e-6) / steps)


def _make_layer(
    rng: np.random.Generator,
    kind: str,
    x: np.ndarray,
    in_scale: np.float32,
    in_zp: int,
    out_size: int,
    bits: int,
    act_bits: int,
    per_channel: bool,
    relu: bool,
    real_std: float | None = None,
) -> tuple[Layer, np.ndarray]:
    """Builds one layer with random weights and calibrates its output on ``x``."""
    in_size = x.shape[-1]
    shape = (out_size, in_size) if kind == "dense" else (out_size,)
    weights = _random_codes(rng, shape, bits)
    fan_in = in_size if kind == "dense" else 1
    base = 1.0 / (_grid_max(bits) * np.sqrt(fan_in))
    if per_channel:
        weight_scale = (base * rng.uniform(0.5, 2.0, out_size)).astype(np.float32)
    else:
        weight_scale = np.full(out_size, base * rng.uniform(0.5, 2.0), dtype=np.float32)

    if kind == "dense":
        acc = reference._accumulate(x, weights, None, in_zp)
    else:
        acc = (x.astype(np.int64) - in_zp) * weights.astype(np.int64)
    real = acc * (np.float64(in_scale) * weight_scale.astype(np.float64))
    if real_std is not None and real.std() > 1e-6:  # rescale so the real outputs have this spread
        factor = real_std / float(real.std())
        weight_scale = (weight_scale * factor).astype(np.float32)
        real = acc * (np.float64(in_scale) * weight_scale.astype(np.float64))
    bias_real = rng.normal(0.0, 0.3, out_size) * real.std(axis=0).clip(1e-6)
    limit = BIAS_LIMIT[act_bits]
    bias = np.clip(np.round(bias_real / (np.float64(in_scale) * weight_scale)), -limit, limit)
    bias = bias.astype(np.int32 if act_bits == 8 else np.int64)
    real = real + bias * (np.float64(in_scale) * weight_scale)

    qmin, qmax = (-128, 127) if act_bits == 8 else (-32768, 32767)
    if relu:
        # Clipped ReLU at the 99th percentile of the positive outputs, as TFLite's fused RELU:
        # the clamp starts at the zero point.
        clip = float(np.percentile(np.maximum(real, 0), 99))
        out_zp = int(rng.integers(-128, -100)) if act_bits == 8 else 0
        out_scale = _scale_for(clip, qmax - out_zp)
        act_min, act_max = out_zp, qmax
    else:
        lo, hi = float(np.percentile(real, 0.5)), float(np.percentile(real, 99.5))
        if act_bits == 8:
            out_scale = _scale_for(hi - lo, 255)
            out_zp = int(np.clip(np.round(qmin - lo / out_scale), qmin, qmax))
        else:
            out_scale = _scale_for(max(abs(lo), abs(hi)), qmax)
            out_zp = 0
        act_min, act_max = qmin, qmax
    # Degenerate (near-constant) outputs would ask for a huge effective scale; the
    # 16x8 requantization allows shifts up to 7, so keep the scale ratio below 2^6.
    out_scale = max(out_scale, np.float32(np.float64(in_scale) * weight_scale.max() / 64))
    multiplier, shift = reference.dense_multipliers(in_scale, weight_scale, out_scale)
    layer = Layer(
        kind=kind,
        weights=weights,
        weight_bits=bits,
        weight_scale=weight_scale,
        bias=bias,
        multiplier=multiplier,
        shift=shift,
        per_channel=per_channel or kind == "affine",
        input_scale=float(in_scale),
        output_scale=float(out_scale),
        input_zero_point=in_zp,
        output_zero_point=out_zp,
        act_min=act_min,
        act_max=act_max,
    )
    return layer, reference.run_layer(layer, x)


def random_model(
    sizes: Sequence[int] = PAPER_SIZES,
    *,
    weight_bits: int | Sequence[int] = 8,
    act_bits: int = 8,
    param_bits: int = 8,
    seed: int = 0,
    per_channel: bool = True,
    window_frames: int = 81,
    feature_dim: int = 20,
    frame_stride: int = 3,
    name: str = "",
) -> ModelSpec:
    """A calibrated random model: dense + clipped ReLU + affine per hidden size, then dense -> 2.

    Args:
        sizes: hidden layer sizes.
        weight_bits: bits of every dense layer, or one entry per dense layer
            (len(sizes) + 1).
        act_bits: 8 or 16.
        param_bits: bits of the affine (batch-norm) weights.
        seed: the model is a pure function of its arguments.
    """
    if act_bits not in (8, 16):
        raise ValueError(f"act_bits must be 8 or 16, got {act_bits}")
    bits = [weight_bits] * (len(sizes) + 1) if isinstance(weight_bits, int) else list(weight_bits)
    if len(bits) != len(sizes) + 1:
        raise ValueError(f"weight_bits needs {len(sizes) + 1} entries (one per dense layer), got {len(bits)}")
    rng = np.random.default_rng(seed)
    qmax = 127 if act_bits == 8 else 32767
    frontend = Frontend(
        window_frames=window_frames,
        feature_dim=feature_dim,
        frame_stride=frame_stride,
        mean=rng.normal(-5.0, 2.0, feature_dim).astype(np.float32),
        inv_std=(1.0 / rng.uniform(1.0, 3.0, feature_dim)).astype(np.float32),
        input_scale=float(np.float32(4.0 / qmax)),
        input_zero_point=int(rng.integers(-8, 9)) if act_bits == 8 else 0,
    )
    windows = rng.normal(-5.0, 2.5, (_CALIBRATION_WINDOWS, window_frames, feature_dim)).astype(np.float32)
    spec0 = ModelSpec(act_bits, frontend, (), 0, 0)
    x = reference.quantize_window(spec0, windows)

    layers: list[Layer] = []
    scale, zp = np.float32(frontend.input_scale), frontend.input_zero_point
    for h, b in zip(sizes, bits):
        for kind, width, wb, relu in (("dense", h, b, True), ("affine", h, param_bits, False)):
            layer, x = _make_layer(rng, kind, x, scale, zp, width, wb, act_bits, per_channel, relu)
            layers.append(layer)
            scale, zp = np.float32(layer.output_scale), layer.output_zero_point
    # Logits spread like a trained detector's (a few units), so posteriors use [0, 1].
    layer, _ = _make_layer(rng, "dense", x, scale, zp, 2, bits[-1], act_bits, per_channel, relu=False, real_std=3.0)
    layers.append(layer)
    post_mult, post_shift = reference.quantize_multiplier(float(np.float64(np.float32(layer.output_scale)) * 4096.0))
    return reference.with_acc16_blocks(ModelSpec(act_bits, frontend, tuple(layers), post_mult, post_shift, name=name))


def paper_model(config: str, seed: int = 0) -> ModelSpec:
    """A random model of one of the paper's integer configurations (M1..M6)."""
    if config not in CONFIGS:
        raise ValueError(f"unknown config {config!r}; choose from {', '.join(CONFIGS)}")
    return random_model(**CONFIGS[config], seed=seed, name=config)
