"""The arithmetic of ``docs/arithmetic.md`` in numpy: the executable spec.

Every C backend must equal these functions bit for bit. They favour being
obviously right over being fast: integer work is done in int64 (or Python
ints) and every rounding step is written out.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .modelspec import Frontend, Layer, ModelSpec

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1

# Posterior: the logit difference is requantized to Q12 (1.0 == 4096), and the
# sigmoid is read from a 257-entry table over [0, 16] in steps of 1/16 with
# linear interpolation. See docs/arithmetic.md, "Posterior".
POSTERIOR_FRAC_BITS = 12
POSTERIOR_ONE = 1 << 16


def _round_half_away(x: np.ndarray) -> np.ndarray:
    """Round to nearest, ties away from zero (C ``round``), exactly for floats."""
    t = np.trunc(x)
    frac = x - t  # exact: x and trunc(x) share the exponent range
    return t + np.where(np.abs(frac) >= 0.5, np.sign(x), 0)


def _posterior_table() -> np.ndarray:
    k = np.arange(257, dtype=np.float64) / 16.0
    return np.floor(65536.0 / (1.0 + np.exp(-k)) + 0.5).astype(np.int64)


POSTERIOR_TABLE = _posterior_table()


# --- multipliers ---------------------------------------------------------------


def quantize_multiplier(scale: float) -> tuple[int, int]:
    """TFLM ``QuantizeMultiplier``: scale ~= multiplier * 2^(shift - 31).

    Args:
        scale: a non-negative real multiplier (double).

    Returns:
        (multiplier, shift): multiplier in [2^30, 2^31 - 1] (or 0 for a zero or
        negligible scale), shift the power of two, positive for a left shift.
        Callers check the shift against the range their op allows.
    """
    if scale < 0 or not math.isfinite(scale):
        raise ValueError(f"scale must be finite and >= 0, got {scale!r}")
    if scale == 0.0:
        return 0, 0
    q, shift = math.frexp(scale)
    q_fixed = int(_round_half_away(np.float64(q * 2.0**31)))
    if q_fixed == 2**31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q_fixed, shift


def dense_multipliers(input_scale: float, weight_scale: np.ndarray, output_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Multipliers and shifts of a layer from its float32 scales, as TFLM derives them.

    ``QuantizeMultiplier(double(s_in) * double(s_w[c]) / double(s_out))``, in double,
    left to right, for per-channel and per-tensor layers alike (a per-tensor
    layer has equal ``s_w[c]``). Measured against the TFLM interpreter: older
    TFLM sources form the per-tensor product in float32, the shipped one does not.
    """
    s_in = np.float64(np.float32(input_scale))
    s_out = np.float64(np.float32(output_scale))
    ws = np.asarray(weight_scale, dtype=np.float32).reshape(-1)
    mult = np.empty(ws.size, dtype=np.int32)
    shift = np.empty(ws.size, dtype=np.int32)
    for c, s_w in enumerate(ws):
        mult[c], shift[c] = quantize_multiplier(float(s_in * np.float64(s_w) / s_out))
    return mult, shift


# --- requantization ------------------------------------------------------------


def saturating_rounding_doubling_high_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul on int32 values (as int64 arrays)."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    overflow = (a == INT32_MIN) & (b == INT32_MIN)
    ab = a * b  # |ab| <= 2^62: exact in int64
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    # C++ integer division truncates toward zero.
    num = ab + nudge
    q = np.where(num >= 0, num >> 31, -((-num) >> 31))
    return np.where(overflow, INT32_MAX, q)


def rounding_divide_by_pot(x: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """gemmlowp RoundingDivideByPOT: x / 2^exponent, ties away from zero. 0 <= exponent <= 31."""
    x = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def _wrap_int32(x: np.ndarray) -> np.ndarray:
    return ((np.asarray(x, dtype=np.int64) + 2**31) & 0xFFFFFFFF) - 2**31


def requantize(acc: np.ndarray, multiplier: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """TFLM ``MultiplyByQuantizedMultiplier`` for int32 or int64 accumulators.

    int32 ``acc`` (int8 activations): double rounding,
    ``RoundingDivideByPOT(SRDHM(acc * 2^max(shift, 0), multiplier), max(-shift, 0))``;
    the left shift wraps modulo 2^32 as two's complement int32 does.
    int64 ``acc`` (16x8): the multiplier is reduced to 16 bits and one rounding
    shift is applied in int64; the result is wrapped to int32.

    Returns int64 array of int32 values.
    """
    acc = np.asarray(acc)
    multiplier = np.asarray(multiplier, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    if acc.dtype == np.int64:
        return _requantize_s64(acc, multiplier, shift)
    if acc.dtype != np.int32:
        raise TypeError(f"acc must be int32 or int64, got {acc.dtype}")
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    shifted = _wrap_int32(acc.astype(np.int64) << left)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, multiplier), right)


def _requantize_s64(acc: np.ndarray, multiplier: np.ndarray, shift: np.ndarray) -> np.ndarray:
    # |acc| < 2^47 and reduced <= 2^15, so acc * reduced + round fits int64 exactly.
    if acc.size and np.abs(acc).max() >= 2**47:
        raise OverflowError("int64 accumulator outside [-2^47, 2^47)")
    reduced = np.where(multiplier < 0x7FFF0000, (multiplier + (1 << 15)) >> 16, 0x7FFF)
    total_shift = 15 - shift
    result = (acc * reduced + (np.int64(1) << (total_shift - 1))) >> total_shift
    return _wrap_int32(result)


# --- ops -----------------------------------------------------------------------


def quantize(x: np.ndarray, scale: float, zero_point: int, act_bits: int) -> np.ndarray:
    """TFLite QUANTIZE of float32 ``x``: round_half_away(x / scale) + zero_point, saturated.

    The division is float32; quotients outside the int32 range saturate and
    NaN maps to the smallest code (the engine's Python layer rejects NaN first).
    """
    dtype = np.int8 if act_bits == 8 else np.int16
    info = np.iinfo(dtype)
    with np.errstate(over="ignore", invalid="ignore"):  # inf and NaN are defined below
        q = np.asarray(x, dtype=np.float32) / np.float32(scale)
    q = np.where(np.isnan(q), np.float32(-np.inf), q)
    q = np.clip(q, np.float32(-(2.0**31)), np.float32(2.0**31 - 128))
    r = _round_half_away(q).astype(np.int64) + int(zero_point)
    return np.clip(r, info.min, info.max).astype(dtype)


def _accumulate(x: np.ndarray, weights: np.ndarray, bias: np.ndarray | None, input_zero_point: int) -> np.ndarray:
    """sum_k w[n,k] * (x[k] - zp) + bias[n], exactly, as int64."""
    xs = x.astype(np.int64) - int(input_zero_point)
    acc = xs @ weights.astype(np.int64).T
    if bias is not None:
        acc = acc + np.asarray(bias, dtype=np.int64)
    return acc


def _finish(acc: np.ndarray, x_dtype, multiplier, shift, output_zero_point, act_min, act_max) -> np.ndarray:
    acc_type = np.int32 if x_dtype == np.int8 else np.int64
    info = np.iinfo(acc_type)
    if acc.size and (acc.min() < info.min or acc.max() > info.max):
        raise OverflowError("accumulator exceeds its width; the spec's input bounds were violated")
    out = _wrap_int32(requantize(acc.astype(acc_type), multiplier, shift) + int(output_zero_point))
    return np.clip(out, act_min, act_max).astype(x_dtype)


def fully_connected(
    x: np.ndarray,
    weights: np.ndarray,
    bias: np.ndarray | None,
    *,
    input_zero_point: int,
    output_zero_point: int,
    multiplier,
    shift,
    act_min: int,
    act_max: int,
) -> np.ndarray:
    """TFLite FULLY_CONNECTED, integer semantics.

    Args:
        x: int8 (zero point ``input_zero_point``) or int16 (zero point 0), shape
            (K,) or (B, K).
        weights: int8 (N, K), symmetric (zero point 0).
        bias: (N,) int32 for int8, int64 for int16, or None.
        multiplier, shift: scalars (per-tensor) or (N,) arrays (per-channel).
        act_min, act_max: the fused clamp in output codes.

    Returns:
        Same dtype as ``x``, shape (N,) or (B, N).
    """
    acc = _accumulate(np.asarray(x), np.asarray(weights), bias, input_zero_point)
    return _finish(acc, np.asarray(x).dtype, multiplier, shift, output_zero_point, act_min, act_max)


# --- int16 accumulation (docs/arithmetic.md 5.6) -------------------------------------------

ACC16_MAX = 2**15 - 1
ACC16_X_MAX = 128  # |x| of an int8 activation, zero point not subtracted (the kernels fold it into the bias)
ACC16_MIN_LOG2 = 4  # blocks of 16 products and more: the kernels' steps are 4 and 16 K
ACC16_MAX_LOG2 = 14  # 16384, the largest K


def acc16_block_sums(weights: np.ndarray, log2_block: int) -> np.ndarray:
    """sum |w| over each aligned block of 2^log2_block products of each row: int64 (N, ceil(K / B))."""
    w = np.abs(np.asarray(weights, dtype=np.int64))
    b = 1 << log2_block
    pad = -w.shape[1] % b
    w = np.concatenate([w, np.zeros((w.shape[0], pad), np.int64)], axis=1)
    return w.reshape(w.shape[0], -1, b).sum(axis=2)


def acc16_safe(weights: np.ndarray, log2_block: int) -> bool:
    """Whether every partial sum of x * w over any aligned block of 2^log2_block products of a row fits
    int16 for every int8 x: ``128 * sum |w| <= 32767`` over each block (docs/arithmetic.md 5.6)."""
    return bool(ACC16_X_MAX * acc16_block_sums(weights, log2_block).max() <= ACC16_MAX)


def acc16_log2_block(weights: np.ndarray, act_bits: int) -> int:
    """The largest safe int16 accumulation block of a dense layer, as log2 of its products per row
    (4..14), or 0 where none of 16 products or more is safe or activations are int16.

    Blocks are aligned (products [j B, (j + 1) B) of each row), so a block of 2B is two blocks of B
    and its sums are larger: the first unsafe size ends the search, and once B covers K the sums
    stop growing.
    """
    w = np.asarray(weights)
    if act_bits != 8 or w.ndim != 2:
        return 0
    best = 0
    for log2 in range(ACC16_MIN_LOG2, ACC16_MAX_LOG2 + 1):
        if not acc16_safe(w, log2):
            break
        best = log2
        if 1 << log2 >= w.shape[1]:
            break
    return best


def with_acc16_blocks(spec: ModelSpec) -> ModelSpec:
    """The model with every dense layer claiming its largest safe int16 accumulation block."""
    layers = tuple(dataclasses.replace(l, acc16_block=acc16_log2_block(l.weights, spec.act_bits))
                   if l.kind == "dense" else l for l in spec.layers)
    return dataclasses.replace(spec, layers=layers)


def affine(
    x: np.ndarray,
    weights: np.ndarray,
    bias: np.ndarray | None,
    *,
    input_zero_point: int,
    output_zero_point: int,
    multiplier,
    shift,
    act_min: int,
    act_max: int,
) -> np.ndarray:
    """Per-channel affine y[c] = requant(w[c] * (x[c] - zp) + bias[c]): DEPTHWISE_CONV_2D 1x1.

    Shapes: x (N,) or (B, N); weights, bias, multiplier, shift (N,).
    """
    x = np.asarray(x)
    acc = (x.astype(np.int64) - int(input_zero_point)) * np.asarray(weights, dtype=np.int64)
    if bias is not None:
        acc = acc + np.asarray(bias, dtype=np.int64)
    return _finish(acc, x.dtype, multiplier, shift, output_zero_point, act_min, act_max)


def run_layer(layer: Layer, x: np.ndarray) -> np.ndarray:
    op = fully_connected if layer.kind == "dense" else affine
    return op(
        x,
        layer.weights,
        layer.bias,
        input_zero_point=layer.input_zero_point,
        output_zero_point=layer.output_zero_point,
        multiplier=layer.multiplier,
        shift=layer.shift,
        act_min=layer.act_min,
        act_max=layer.act_max,
    )


# --- float32 path (docs/arithmetic.md 10) ------------------------------------------------

F32_LANES = 8


def dot_f32(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The spec's float32 dot products of x (..., K) with each row of weights (N, K): (..., N).

    Lane l sums ``w[i] * x[i]`` over ``i = l (mod 8)`` in order of i, each
    product and each sum rounded to float32 (no fused multiply-add); the lanes
    are added as ``((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7))``.
    """
    x = np.asarray(x, dtype=np.float32)
    w = np.asarray(weights, dtype=np.float32)
    k = w.shape[1]
    pad = -k % F32_LANES
    xp = np.concatenate([x, np.zeros(x.shape[:-1] + (pad,), np.float32)], axis=-1)
    wp = np.concatenate([w, np.zeros((w.shape[0], pad), np.float32)], axis=1)
    a = np.zeros(x.shape[:-1] + (w.shape[0], F32_LANES), dtype=np.float32)
    for i in range(0, k + pad, F32_LANES):
        a += xp[..., None, i:i + F32_LANES] * wp[:, i:i + F32_LANES]  # padding adds +0: no change
    return ((a[..., 0] + a[..., 4]) + (a[..., 2] + a[..., 6])) + ((a[..., 1] + a[..., 5]) + (a[..., 3] + a[..., 7]))


def fully_connected_f32(x: np.ndarray, weights: np.ndarray, bias: np.ndarray | None, act_min: float,
                        act_max: float) -> np.ndarray:
    """Float32 dense layer: ``min(max(dot_f32(x, w) + bias, act_min), act_max)``, with
    ``max(v, lo) = v if v > lo else lo`` and ``min(v, hi) = v if v < hi else hi``."""
    v = dot_f32(x, weights)
    if bias is not None:
        v = v + np.asarray(bias, dtype=np.float32)
    lo, hi = np.float32(act_min), np.float32(act_max)
    v = np.where(v > lo, v, lo)
    return np.where(v < hi, v, hi).astype(np.float32)


def affine_f32(x: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Float32 per-channel affine: ``x * scale`` rounded, then ``+ shift`` rounded."""
    return np.asarray(x, np.float32) * np.asarray(scale, np.float32) + np.asarray(shift, np.float32)


# --- front end, posterior, whole model -------------------------------------------


def select_frames(frontend: Frontend, window: np.ndarray) -> np.ndarray:
    """Frames ``offset::stride`` of (..., window_frames, feature_dim) float window(s), flattened frame-major.

    Returns float32 (..., input_size), the raw (unnormalised) features.
    """
    w = np.asarray(window, dtype=np.float32)
    frames = w[..., frontend.frame_offset :: frontend.frame_stride, :]
    return frames.reshape(*w.shape[:-2], frontend.input_size)


def normalize_window(frontend: Frontend, window: np.ndarray) -> np.ndarray:
    """Selected frames of a (window_frames, feature_dim) float window, normalised in float32.

    Returns float32 (..., input_size): ``select_frames``, each value
    ``(x - mean[f]) * inv_std[f]`` with float32 rounding after each operation.
    """
    x = select_frames(frontend, window)
    mean = np.tile(frontend.mean.astype(np.float32), frontend.selected_frames)
    inv_std = np.tile(frontend.inv_std.astype(np.float32), frontend.selected_frames)
    return (x - mean) * inv_std


def quantize_window(spec: ModelSpec, window: np.ndarray) -> np.ndarray:
    """Float window(s) (..., window_frames, feature_dim) -> quantized input vector(s)."""
    fe = spec.frontend
    return quantize(normalize_window(fe, window), fe.input_scale, fe.input_zero_point, spec.act_bits)


def posterior_q16(logits: np.ndarray, multiplier: int, shift: int) -> np.ndarray:
    """Wakeword posterior in Q16 (65536 == 1.0) from integer logits (..., 2).

    d = logit[1] - logit[0]; x = requantize(d) is the real difference in Q12;
    sigmoid(|x|) is interpolated from ``POSTERIOR_TABLE``; negative x mirrors.
    """
    logits = np.asarray(logits, dtype=np.int64)
    d = (logits[..., 1] - logits[..., 0]).astype(np.int32)
    x = requantize(d, multiplier, shift)
    a = np.minimum(np.abs(x), 256 << 8)
    idx = a >> 8
    frac = a & 255
    lo = POSTERIOR_TABLE[np.minimum(idx, 256)]
    hi = POSTERIOR_TABLE[np.minimum(idx + 1, 256)]
    p = lo + (((hi - lo) * frac + 128) >> 8)
    return np.where(x >= 0, p, POSTERIOR_ONE - p).astype(np.int32)


def forward_quantized(spec: ModelSpec, xq: np.ndarray) -> np.ndarray:
    """Integer logits (..., 2) from quantized input vector(s) (..., input_size)."""
    h = np.asarray(xq)
    for layer in spec.layers:
        h = run_layer(layer, h)
    return h


def forward(spec: ModelSpec, window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Whole model on float window(s): (integer logits (..., 2), posterior Q16 (...))."""
    logits = forward_quantized(spec, quantize_window(spec, window))
    return logits, posterior_q16(logits, spec.posterior_multiplier, spec.posterior_shift)


def forward_f32(spec, window: np.ndarray) -> np.ndarray:
    """A ``kwsint.engine.float_model.FloatSpec`` on float window(s): float32 logits (..., 2)."""
    h = normalize_window(spec.frontend, window)
    for layer in spec.layers:
        if layer.kind == "dense":
            h = fully_connected_f32(h, layer.weights, layer.bias, layer.act_min, layer.act_max)
        else:
            h = affine_f32(h, layer.weights, layer.bias)
    return h


# --- detection: smoothing, threshold, lockout ----------------------------------------------


def threshold_q16(threshold: float) -> int:
    """A posterior threshold in [0, 1] as Q16: round(threshold * 65536), ties away from zero."""
    if not (0.0 <= threshold <= 1.0):
        raise ValueError(f"threshold must be in [0, 1], got {threshold!r}")
    return int(math.floor(threshold * 65536.0 + 0.5))


def smooth_posteriors(posterior_q16: np.ndarray, window: int) -> np.ndarray:
    """Windowed moving average of Q16 posteriors over the last ``window`` inference steps.

    ``s[t] = (p[t-n+1] + ... + p[t] + n // 2) // n`` with ``n = min(t + 1, window)``:
    the mean of the steps seen so far (since the stream started or was reset),
    rounded half up. All values are non-negative, so every step is exact.
    Returns int32 values in [0, 65536].
    """
    if window < 1:
        raise ValueError(f"smoothing window must be >= 1, got {window}")
    p = np.asarray(posterior_q16, dtype=np.int64)
    csum = np.concatenate([[0], np.cumsum(p)])
    t = np.arange(p.size)
    n = np.minimum(t + 1, window)
    return ((csum[t + 1] - csum[t + 1 - n] + n // 2) // n).astype(np.int32)


def detect(smoothed_q16: np.ndarray, threshold: int, lockout: int) -> np.ndarray:
    """Steps at which a detection fires.

    Step t fires when ``smoothed[t] >= threshold`` (Q16) and no detection fired
    at any of the ``lockout`` steps before it (``t - last > lockout``): one
    utterance above threshold for a while gives one event.
    Returns the int64 step indices in increasing order.
    """
    if lockout < 0:
        raise ValueError(f"lockout must be >= 0 steps, got {lockout}")
    events = []
    last = None
    for t in np.flatnonzero(np.asarray(smoothed_q16) >= threshold):
        if last is None or t - last > lockout:
            events.append(t)
            last = t
    return np.asarray(events, dtype=np.int64)


def detect_stream(spec: ModelSpec, frames: np.ndarray, hop: int, smoothing_steps: int, threshold: int,
                  lockout_steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The streaming detector on float frames (T, feature_dim), from a fresh start.

    Steps run on the windows whose newest frame has index
    ``e = window_frames - 1 + k * hop < T`` (k = 0, 1, ...); each step is
    ``forward`` on ``frames[e - window_frames + 1 : e + 1]``, then
    ``smooth_posteriors`` over ``smoothing_steps`` steps and ``detect`` with the Q16
    ``threshold`` and ``lockout_steps`` steps.
    Returns per step: newest frame index (int64), logits int32 (N, 2),
    posterior Q16 int32, smoothed posterior Q16 int32, fired (bool).
    """
    if hop < 1:
        raise ValueError(f"hop must be >= 1 frame, got {hop}")
    f = np.asarray(frames, dtype=np.float32)
    w = spec.frontend.window_frames
    newest = np.arange(w - 1, f.shape[0], hop, dtype=np.int64)
    logits, post = forward(spec, f[newest[:, None] + np.arange(1 - w, 1)])  # windows (N, w, feature_dim)
    smoothed = smooth_posteriors(post, smoothing_steps)
    fired = np.zeros(newest.size, dtype=bool)
    fired[detect(smoothed, threshold, lockout_steps)] = True
    return newest, logits.astype(np.int32).reshape(-1, 2), post.astype(np.int32), smoothed, fired
