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


# --- streaming graphs (docs/arithmetic.md 11) ---------------------------------------------
#
# The ops of a ``kwsint.engine.graph.GraphSpec``, exactly as TFLM's reference kernels compute them. Activations
# are (frames, channels) arrays of int8 codes: TFLite's [1, frames, 1, channels].

CODE_RANGES: dict[str, tuple[int, int]] = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767)}
"""The codes of each activation dtype."""

ACTIVATIONS = ("none", "relu", "relu6", "relu_n1_to_1")
"""TFLite's fused activation functions, by kwsint's names (lower case of the schema's)."""


def _round_half_away_scalar(x: float) -> int:
    """C ``round``: nearest integer, ties away from zero (exact for any finite float)."""
    a = abs(x)
    r = math.floor(a)
    r += 1 if a - r >= 0.5 else 0
    return int(r if x >= 0 else -r)


def activation_range(activation: str, output_scale: float, output_zero_point: int,
                     dtype: str = "int8") -> tuple[int, int]:
    """The output clamp TFLM derives from a fused activation (``CalculateActivationRangeQuantized``).

    With ``q(f) = output_zero_point + round_half_away(float32(f) / float32(output_scale))`` (the division in
    float32, TFLM's ``Quantize``) and ``[qmin, qmax]`` the dtype's codes:
    ``none`` -> ``[qmin, qmax]``; ``relu`` -> ``[max(qmin, q(0)), qmax]``;
    ``relu6`` -> ``[max(qmin, q(0)), min(qmax, q(6))]``; ``relu_n1_to_1`` -> ``[max(qmin, q(-1)), min(qmax, q(1))]``.

    Args:
        activation: one of ``ACTIVATIONS``.
        output_scale: the output's scale, a positive finite float32 value.
        output_zero_point: the output's zero point.
        dtype: "int8", "uint8" or "int16".

    Returns:
        (act_min, act_max) in output codes.

    Raises:
        ValueError: an unknown activation or dtype, a bad scale, or a bound whose quotient leaves int32 (TFLM
            then fails Prepare) or whose sum with the zero point does (undefined behaviour in TFLM).
    """
    if dtype not in CODE_RANGES:
        raise ValueError(f"dtype must be one of {tuple(CODE_RANGES)}, got {dtype!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    scale = np.float32(output_scale)
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"output_scale must be a positive finite float32, got {output_scale!r}")
    qmin, qmax = CODE_RANGES[dtype]
    zp = int(output_zero_point)

    def q(f: float) -> int:
        with np.errstate(over="ignore"):  # an infinite quotient is refused below, as TFLM refuses it
            quotient = float(np.float32(f) / scale)
        # TFLM compares the rounded float with float(INT32_MAX) == 2^31, so 2^31 passes its check and then
        # overflows the cast: refuse it too.
        r = _round_half_away_scalar(quotient) if math.isfinite(quotient) else None
        if r is None or not (INT32_MIN <= r <= INT32_MAX and INT32_MIN <= zp + r <= INT32_MAX):
            raise ValueError(f"{activation}: {f} / {float(scale)!r} + {zp} leaves int32")
        return zp + r

    if activation == "none":
        return qmin, qmax
    if activation == "relu":
        return max(qmin, q(0.0)), qmax
    if activation == "relu6":
        return max(qmin, q(0.0)), min(qmax, q(6.0))
    return max(qmin, q(-1.0)), min(qmax, q(1.0))


PADDINGS = ("valid", "same")


def conv_output_frames(input_frames: int, kernel: int, stride: int, dilation: int, padding: str) -> tuple[int, int]:
    """Output frames and leading padding of a temporal convolution, as TFLM's ``ComputePaddingHeightWidth``.

    With ``e = (kernel - 1) * dilation + 1`` input frames under the kernel: "valid" gives
    ``(input_frames - e) // stride + 1`` frames and no padding; "same" gives ``ceil(input_frames / stride)``
    frames, and of the ``total = max((out - 1) * stride + e - input_frames, 0)`` padding frames
    ``total // 2`` go before the input (the odd one after it).

    Returns:
        (output_frames, pad_before), output_frames >= 1.

    Raises:
        ValueError: a size or factor below 1, an unknown padding, or a "valid" kernel longer than the input
            (TFLM computes no output frame).
    """
    if min(input_frames, kernel, stride, dilation) < 1:
        raise ValueError(f"input frames, kernel, stride and dilation must be >= 1, got "
                         f"{input_frames}, {kernel}, {stride}, {dilation}")
    span = (kernel - 1) * dilation + 1
    if padding == "valid":
        if input_frames < span:
            raise ValueError(f"a 'valid' kernel spanning {span} frames needs as many input frames, got {input_frames}")
        return (input_frames - span) // stride + 1, 0
    if padding == "same":
        out = -(-input_frames // stride)
        return out, max((out - 1) * stride + span - input_frames, 0) // 2
    raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")


def conv_windows(x: np.ndarray, kernel: int, stride: int, dilation: int, padding: str,
                 input_zero_point: int) -> np.ndarray:
    """The input frames under the kernel at each output frame: (output_frames, kernel, channels) codes.

    Output frame ``t``, tap ``k`` reads input frame ``t * stride - pad_before + k * dilation``. TFLM skips the
    taps outside the input; here they read the code ``input_zero_point``, whose ``x - zp`` is 0, which adds
    the same nothing to every accumulator.
    """
    x = np.asarray(x)
    frames, channels = x.shape
    out, before = conv_output_frames(frames, kernel, stride, dilation, padding)
    taps = np.arange(out)[:, None] * stride + np.arange(kernel)[None, :] * dilation  # in the padded input
    after = max(int(taps.max()) + 1 - before - frames, 0)
    padded = np.concatenate([np.full((before, channels), input_zero_point, x.dtype), x,
                             np.full((after, channels), input_zero_point, x.dtype)])
    return padded[taps]


def temporal_conv(
    x: np.ndarray,
    weights: np.ndarray,
    bias: np.ndarray,
    *,
    stride: int,
    dilation: int,
    padding: str,
    input_zero_point: int,
    output_zero_point: int,
    multiplier,
    shift,
    act_min: int,
    act_max: int,
) -> np.ndarray:
    """CONV_2D int8 with a K x 1 kernel in time (TFLM ``reference_integer_ops::ConvPerChannel``).

    ``acc[t][c] = sum_{k, i} w[c][k][i] * (x[t * stride - pad + k * dilation][i] - zp_in) + bias[c]`` over the
    taps inside the input, then 5.1's requantization, ``+ zp_out`` and clamp: FULLY_CONNECTED (5.1) on each
    window of ``conv_windows``, flattened frame by frame.

    Args:
        x: int8 (frames, Cin).
        weights: int8 (Cout, K, Cin).
        bias: int32 (Cout,).
        stride, dilation: in frames, >= 1. padding: "valid" or "same".
        multiplier, shift: (Cout,) arrays, or scalars for one per tensor.
        act_min, act_max: the fused clamp in output codes.

    Returns:
        int8 (output_frames, Cout).
    """
    w = np.asarray(weights)
    cout, kernel, cin = w.shape
    windows = conv_windows(x, kernel, stride, dilation, padding, input_zero_point)
    return fully_connected(windows.reshape(windows.shape[0], kernel * cin), w.reshape(cout, kernel * cin), bias,
                           input_zero_point=input_zero_point, output_zero_point=output_zero_point,
                           multiplier=multiplier, shift=shift, act_min=act_min, act_max=act_max)


def depthwise_temporal_conv(
    x: np.ndarray,
    weights: np.ndarray,
    bias: np.ndarray,
    *,
    stride: int,
    dilation: int,
    padding: str,
    input_zero_point: int,
    output_zero_point: int,
    multiplier,
    shift,
    act_min: int,
    act_max: int,
) -> np.ndarray:
    """DEPTHWISE_CONV_2D int8, K x 1 in time, depth multiplier 1 (TFLM
    ``reference_integer_ops::DepthwiseConvPerChannel``).

    ``acc[t][c] = sum_k w[k][c] * (x[t * stride - pad + k * dilation][c] - zp_in) + bias[c]`` over the taps
    inside the input, then requantized, ``+ zp_out`` and clamped as 5.1.

    Args:
        x: int8 (frames, C); weights: int8 (K, C); bias: int32 (C,); the rest as ``temporal_conv``.

    Returns:
        int8 (output_frames, C).
    """
    w = np.asarray(weights, dtype=np.int64)
    windows = conv_windows(x, w.shape[0], stride, dilation, padding, input_zero_point)
    acc = ((windows.astype(np.int64) - int(input_zero_point)) * w).sum(axis=1) + np.asarray(bias, dtype=np.int64)
    return _finish(acc, np.dtype(np.int8), multiplier, shift, output_zero_point, act_min, act_max)


# LOGISTIC int8 (TFLM micro/kernels/logistic_common.cc, reference/integer_ops/logistic.h, gemmlowp
# fixedpoint.h). gemmlowp's FixedPoint<int32, n> values are their raw int32 codes here, held in int64 arrays;
# "*" of two fixed-point values is SRDHM, "+" and "-" are plain int32 operations (_exact32 checks that they do
# not overflow, which would be undefined behaviour in TFLM).

LOGISTIC_INPUT_INTEGER_BITS = 4
"""The logistic's input is Q4.27: 4 integer bits."""
LOGISTIC_OUTPUT_SCALE = 1.0 / 256
LOGISTIC_OUTPUT_ZERO_POINT = -128


def _exact32(x: np.ndarray) -> np.ndarray:
    if x.size and (x.min() < INT32_MIN or x.max() > INT32_MAX):
        raise OverflowError("int32 overflow in gemmlowp's fixed-point logistic (undefined behaviour in TFLM)")
    return x


def _saturating_rounding_multiply_by_pot(x: np.ndarray, exponent: int) -> np.ndarray:
    """gemmlowp SaturatingRoundingMultiplyByPOT<exponent>: x * 2^exponent, saturated for exponent > 0,
    RoundingDivideByPOT for exponent < 0."""
    if exponent <= 0:
        return rounding_divide_by_pot(x, -exponent)
    limit = (1 << (31 - exponent)) - 1
    return np.where(x > limit, INT32_MAX, np.where(x < -limit, INT32_MIN, x << exponent))


def _exp_on_interval_between_negative_one_quarter_and_0_excl(a: np.ndarray) -> np.ndarray:
    """exp(a) for Q0.31 a in [-1/4, 0): a Taylor expansion around -1/8 (fixedpoint.h)."""
    srdhm = saturating_rounding_doubling_high_mul
    constant_term = 1895147668  # exp(-1/8)
    one_third = 715827883
    x = _exact32(a + (1 << 28))  # a + 1/8
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = _saturating_rounding_multiply_by_pot(x4, -2)
    poly = _saturating_rounding_multiply_by_pot(_exact32(srdhm(_exact32(x4_over_4 + x3), one_third) + x2), -1)
    return _exact32(constant_term + srdhm(constant_term, _exact32(x + poly)))


# exp(-2^e) in Q0.31, for the input bits e = -2..4 above the quarter (fixedpoint.h's barrel shifter).
_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308), (2, 39332535), (3, 720401),
               (4, 242))


def _exp_on_negative_values(a: np.ndarray) -> np.ndarray:
    """exp(a) in Q0.31 for Q4.27 a <= 0 (gemmlowp exp_on_negative_values with 4 integer bits)."""
    integer_bits = LOGISTIC_INPUT_INTEGER_BITS
    fractional_bits = 31 - integer_bits
    quarter = 1 << (fractional_bits - 2)
    a_mod_quarter_minus_quarter = _exact32((a & (quarter - 1)) - quarter)
    result = _exp_on_interval_between_negative_one_quarter_and_0_excl(
        _saturating_rounding_multiply_by_pot(a_mod_quarter_minus_quarter, integer_bits))  # Rescale<0>
    remainder = _exact32(a_mod_quarter_minus_quarter - a)
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent:
            bit = (remainder & (1 << (fractional_bits + exponent))) != 0
            result = np.where(bit, saturating_rounding_doubling_high_mul(result, multiplier), result)
    # (gemmlowp's clamp of a < -32 to 0 exists only for more than 5 integer bits.)
    return np.where(a == 0, INT32_MAX, result)


def _one_over_one_plus_x_for_x_in_0_1(a: np.ndarray) -> np.ndarray:
    """1 / (1 + a) in Q0.31 for Q0.31 a in (0, 1): three Newton-Raphson steps in Q2.29."""
    srdhm = saturating_rounding_doubling_high_mul
    total = a + INT32_MAX  # RoundingHalfSum(a, One()): (sum + sign) / 2, truncating, in int64
    total = total + np.where(total >= 0, 1, -1)
    half_denominator = np.where(total >= 0, total // 2, -((-total) // 2))
    x = _exact32(1515870810 + srdhm(half_denominator, -1010580540))  # 48/17 - 32/17 * h, Q2.29
    for _ in range(3):
        one_minus_half_denominator_times_x = _exact32((1 << 29) - srdhm(half_denominator, x))
        x = _exact32(x + _saturating_rounding_multiply_by_pot(srdhm(x, one_minus_half_denominator_times_x), 2))
    return _saturating_rounding_multiply_by_pot(x, 1)  # Rescale<0>(ExactMulByPot<-1>(x))


def _fixed_point_logistic(a: np.ndarray) -> np.ndarray:
    """gemmlowp logistic: Q4.27 a -> Q0.31 1 / (1 + exp(-a)), computed on |a| and mirrored."""
    a = np.asarray(a, dtype=np.int64)
    positive = a > 0
    result_if_positive = _one_over_one_plus_x_for_x_in_0_1(_exp_on_negative_values(-np.where(positive, a, -a)))
    result_if_negative = _exact32(INT32_MAX - result_if_positive)
    return np.where(a == 0, 1 << 30, np.where(positive, result_if_positive, result_if_negative))


def logistic_parameters(input_scale: float) -> tuple[int, int, int]:
    """TFLM's LOGISTIC Prepare for int8: ``(input_multiplier, input_left_shift, input_range_radius)``.

    ``(q, input_left_shift) = frexp(double(s_in) * 2^27)``; ``input_multiplier = round_half_away(q * 2^31)``
    (without QuantizeMultiplier's fix-up of 2^31); ``input_range_radius = floor(15 * 2^27 / 2^input_left_shift)``
    (``CalculateInputRadius(4, input_left_shift, 31)``).

    Raises:
        ValueError: a scale that is not a positive finite float32, or one where TFLM's Prepare is undefined
            behaviour: ``s_in < 2^-28`` (a negative shift: the radius is ``1LL << shift`` and overflows the
            int cast), ``s_in >= 2^35`` (a shift of 63 or more), or a multiplier rounding to 2^31 (an int32
            cast out of range; no float32 scale reaches it).
    """
    s = np.float32(input_scale)
    if not (np.isfinite(s) and s > 0):
        raise ValueError(f"LOGISTIC input scale must be a positive finite float32, got {input_scale!r}")
    q, shift = math.frexp(float(s) * 2.0 ** (31 - LOGISTIC_INPUT_INTEGER_BITS))
    if not 0 <= shift <= 62:
        raise ValueError(f"LOGISTIC input scale {float(s)!r} is outside [2^-28, 2^35): TFLM's input radius is "
                         f"undefined behaviour there (input_left_shift {shift})")
    multiplier = _round_half_away_scalar(q * 2.0**31)
    if multiplier > INT32_MAX:
        raise ValueError(f"LOGISTIC input scale {float(s)!r}: the input multiplier rounds to 2^31, which TFLM "
                         "casts to int32 out of range")
    radius = (((1 << LOGISTIC_INPUT_INTEGER_BITS) - 1) << (31 - LOGISTIC_INPUT_INTEGER_BITS)) >> shift  # exact floor
    return multiplier, shift, radius


def logistic_table(input_scale: float, input_zero_point: int) -> np.ndarray:
    """LOGISTIC int8 -> int8 (output scale 1/256, zero point -128) of every input code: int8 (256,), entry
    ``x + 128`` for code ``x``.

    For ``v = x - zp_in``: ``v <= -radius`` gives -128, ``v >= radius`` gives 127, otherwise
    ``clamp(RoundingDivideByPOT(logistic(requantize(v, input_multiplier, input_left_shift)), 23) - 128)``
    with gemmlowp's fixed-point logistic (docs/arithmetic.md 11.6).

    Raises:
        ValueError: as ``logistic_parameters``.
    """
    multiplier, shift, radius = logistic_parameters(input_scale)
    v = np.arange(-128, 128, dtype=np.int64) - int(input_zero_point)
    inside = (v > -radius) & (v < radius)
    # |v| < radius = floor(15 * 2^(27 - shift)) makes v * 2^shift < 15 * 2^27: no left shift overflows.
    q4 = requantize(np.where(inside, v, 0).astype(np.int32), multiplier, shift)
    y = np.clip(rounding_divide_by_pot(_fixed_point_logistic(q4), 31 - 8) - 128, -128, 127)
    return np.where(v <= -radius, -128, np.where(v >= radius, 127, y)).astype(np.int8)


def logistic(x: np.ndarray, input_scale: float, input_zero_point: int) -> np.ndarray:
    """LOGISTIC of int8 codes ``x`` (any shape): ``logistic_table`` looked up."""
    return logistic_table(input_scale, input_zero_point)[np.asarray(x, dtype=np.int64) + 128]


def requantize_multiplier(input_scale: float, output_scale: float) -> tuple[int, int]:
    """QUANTIZE's (multiplier, shift): ``QuantizeMultiplier(double(s_in) / double(s_out))`` of the float32
    scales (TFLM ``PrepareQuantizeReference``)."""
    return quantize_multiplier(float(np.float64(np.float32(input_scale)) / np.float64(np.float32(output_scale))))


def requantize_codes(x: np.ndarray, *, input_zero_point: int, output_zero_point: int, multiplier: int, shift: int,
                     dtype: str) -> np.ndarray:
    """QUANTIZE int8 -> int8 or uint8 (TFLM ``reference_ops::Requantize``):
    ``clamp(requantize(x - zp_in, multiplier, shift) + zp_out, dtype range)``.

    TFLM's fast path for equal scales and an int8 -> uint8 zero point step of 128 (``x ^ 0x80``) gives the same
    codes: ``requantize(v, 2^30, 1) == v``.

    Returns:
        codes of ``dtype`` ("int8" or "uint8"), ``x``'s shape.
    """
    lo, hi = CODE_RANGES[dtype]
    v = (np.asarray(x, dtype=np.int64) - int(input_zero_point)).astype(np.int32)
    y = _wrap_int32(requantize(v, multiplier, shift) + int(output_zero_point))
    return np.clip(y, lo, hi).astype(dtype)


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
    return lockout_filter(np.flatnonzero(np.asarray(smoothed_q16) >= threshold), lockout)


def lockout_filter(above: np.ndarray, lockout: int) -> np.ndarray:
    """Of the steps ``above`` the threshold (ascending), those at which a detection fires: the first, then each
    one more than ``lockout`` steps after the last that fired (``detect``'s rule on the steps it needs).
    Returns the int64 steps."""
    if lockout < 0:
        raise ValueError(f"lockout must be >= 0 steps, got {lockout}")
    events = []
    last = None
    for t in np.asarray(above, dtype=np.int64).tolist():
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
