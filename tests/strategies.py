"""Hypothesis strategies for the integer ops and models.

They are built to reach the arithmetic, not just the API: requantization
parameters are calibrated to each case's accumulators (so most outputs land
inside the clamp and a wrong sum shows), clamps are the full range most of the
time, and rounding ties, SRDHM saturations, wrapping zero points and int16
accumulation blocks at their bound are planted at random channels, so they
fall in the vector lanes of every backend, not only in scalar tails.
tests/test_strategy_coverage.py measures how often each of these happens
(tests/edge_cases.py) and fails when a strategy stops producing them.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from kwsint import reference
from kwsint.engine.limits import BIAS_LIMIT, MAX_SHIFT

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
S64_ACC_LIMIT = 2**47 - 1  # |acc| of requantize_s64


def grid_max(bits: int) -> int:
    return 1 if bits == 1 else (1 << (bits - 1)) - 1


def act_range(act_bits: int) -> tuple[int, int]:
    return (-128, 127) if act_bits == 8 else (-32768, 32767)


def weight_codes(rng: np.random.Generator, shape, bits: int, mode: str) -> np.ndarray:
    """Codes on the b-bit grid: uniform, or only the two extremes (worst-case sums)."""
    q = grid_max(bits)
    if bits == 1 or mode == "extreme":
        return (rng.choice(np.array([-q, q]), size=shape)).astype(np.int8)
    return rng.integers(-q, q + 1, size=shape).astype(np.int8)


def activations(rng: np.random.Generator, shape, act_bits: int, mode: str) -> np.ndarray:
    """Uniform codes with about one in eight at the most negative value (-128 is the one int8 code
    whose magnitude has no int8 negation), or only the two extremes."""
    lo, hi = act_range(act_bits)
    dtype = np.int8 if act_bits == 8 else np.int16
    if mode == "extreme":
        return rng.choice(np.array([lo, hi]), size=shape).astype(dtype)
    x = rng.integers(lo, hi + 1, size=shape)
    x[rng.random(shape) < 0.125] = lo
    return x.astype(dtype)


def _wrap32(v) -> np.ndarray:
    return ((np.asarray(v, dtype=np.int64) + 2**31) & 0xFFFFFFFF) - 2**31


# --- requantization parameters ------------------------------------------------------------


def calibrated_params(rng: np.random.Generator, acc: np.ndarray, act_bits: int, output_zero_point: int,
                      per_channel: bool) -> tuple[np.ndarray, np.ndarray]:
    """(multiplier, shift) per channel that map the accumulators `acc` (B, N) into the output range around
    the zero point, as a calibrated quantizer would: scale = f * headroom / max |acc| with f in [0.25, 1.05],
    so most outputs are inside the clamp and a few saturate. Per-tensor: one scale for all channels (the
    arrays repeat it). One channel in ten (per channel) takes any multiplier in [0, 2^31), not only
    QuantizeMultiplier's [2^30, 2^31)."""
    lo, hi = act_range(act_bits)
    n = acc.shape[-1]
    headroom = max(min(hi - output_zero_point, output_zero_point - lo), 16)
    peak = np.maximum(np.abs(acc.reshape(-1, n)).max(axis=0), 1).astype(np.float64)
    if not per_channel:
        peak = np.full(n, peak.max())
    f = rng.uniform(0.25, 1.05, n) if per_channel else np.full(n, rng.uniform(0.25, 1.05))
    mult = np.empty(n, np.int64)
    shift = np.empty(n, np.int64)
    for c in range(n):
        m, s = reference.quantize_multiplier(float(f[c] * headroom / peak[c]))
        mult[c], shift[c] = (m, s) if s <= MAX_SHIFT[act_bits] else (INT32_MAX, MAX_SHIFT[act_bits])
    if per_channel:
        any_mult = rng.random(n) < 0.1
        mult[any_mult] = rng.integers(0, 2**31, int(any_mult.sum()))
    return mult, shift


@st.composite
def clamps(draw, act_bits: int, output_zero_point: int):
    """(act_min, act_max): mostly the full range (no fused activation), else ReLU-like or any sub-range."""
    lo, hi = act_range(act_bits)
    kind = draw(st.sampled_from(["full"] * 6 + ["relu", "range"]))
    if kind == "full":
        return lo, hi
    if kind == "relu":
        return max(lo, output_zero_point), hi
    a, b = sorted(draw(st.tuples(st.integers(lo, hi), st.integers(lo, hi))))
    return a, b


# --- planted channels ----------------------------------------------------------------------


def _tie_target(rng: np.random.Generator, act_bits: int) -> tuple[int, int, int]:
    """(accumulator, multiplier, shift) whose requantization is an exact rounding tie, either sign.

    int32: multiplier 2^30 halves the accumulator in SRDHM; an odd accumulator with shift 0 is an SRDHM
    tie, (2j + 1) * 2^e with shift -e a RoundingDivideByPOT tie, an odd one with shift < 0 both.
    int64: reduced multiplier 1 and acc = (2j + 1) * 2^(t - 1) is a tie of the single rounding by t."""
    sign = int(rng.choice([-1, 1]))
    odd = 2 * int(rng.integers(0, 40)) + 1
    if act_bits == 16:
        total = int(rng.integers(8, 22))
        return sign * odd << (total - 1), 1 << 16, 15 - total
    kind = rng.integers(0, 3)
    if kind == 0:
        return sign * odd, 1 << 30, 0
    e = int(rng.integers(1, 21))
    return (sign * odd << e, 1 << 30, -e) if kind == 1 else (sign * (2 * int(rng.integers(0, 1 << 12)) + 1),
                                                            1 << 30, -e)


def _near_limit_target(rng: np.random.Generator, output_zero_point: int) -> tuple[int, int, int]:
    """(accumulator, multiplier, shift) whose int32 requantization lies within |zero point| + 9 of INT32_MAX
    (for a positive zero point) or INT32_MIN (negative), so that adding the zero point mostly wraps:
    SRDHM by INT32_MAX (1 - 2^-31) of acc << s, s in {2, 3}, with acc << s inside int32 (no wrap) and
    |acc| < 2^30 (a legal bias can reach it)."""
    s = int(rng.integers(2, 4))
    u = int(rng.integers(0, abs(output_zero_point)))
    acc = (INT32_MAX - u) >> s if output_zero_point > 0 else -((2**31 - u) >> s)
    return acc, INT32_MAX, s


def plant_channels(rng: np.random.Generator, sums: np.ndarray, act_bits: int, output_zero_point: int,
                   bias: np.ndarray, mult: np.ndarray, shift: np.ndarray, share: float) -> None:
    """Turn about `share` of the channels into edge cases, in place: their bias makes batch row 0's
    accumulator (sums[0] + bias) a chosen value and their multiplier and shift act on it:
    rounding ties of either sign; int32 results within 128 of the limits, on the side where the output
    zero point wraps them (int8); left shifts and int64 results that wrap modulo 2^32."""
    n = bias.size
    picked = np.flatnonzero(rng.random(n) < share)
    limit = BIAS_LIMIT[act_bits]
    for c in picked:
        kind = rng.choice(["tie", "tie", "limit", "wrap"])
        if kind == "tie":
            acc, m, s = _tie_target(rng, act_bits)
        elif kind == "limit" and act_bits == 8 and output_zero_point != 0:
            acc, m, s = _near_limit_target(rng, output_zero_point)
        elif act_bits == 8:  # acc << s leaves int32: the spec wraps it
            s = int(rng.integers(8, 31))
            acc, m = int(rng.integers(1 << (31 - s), 1 << 24)) * int(rng.choice([-1, 1])), int(rng.integers(0, 2**31))
        else:  # acc * reduced >> (15 - s) beyond int32: wraps when narrowed
            s = int(rng.integers(0, 8))
            acc, m = int(rng.integers(1 << 40, 1 << 45)) * int(rng.choice([-1, 1])), int(rng.integers(2**30, 2**31))
        b = acc - int(sums[0, c])
        if abs(b) <= limit:
            bias[c], mult[c], shift[c] = b, m, s


# --- layers --------------------------------------------------------------------------------


def _accumulate(kind: str, x: np.ndarray, weights: np.ndarray, input_zero_point: int) -> np.ndarray:
    """sum w * (x - zp) without the bias, (B, N) int64."""
    x2 = x.reshape(-1, x.shape[-1]).astype(np.int64) - input_zero_point
    return x2 @ weights.astype(np.int64).T if kind == "dense" else x2 * weights.astype(np.int64)


@st.composite
def layer_case(draw, kind: str, act_bits: int | None = None):
    """Everything one fully_connected/affine call needs, within the spec's bounds, calibrated so that the
    outputs depend on every accumulator bit that the requantization keeps; act_bits 8 or 16 (drawn if
    None)."""
    act_bits = act_bits or draw(st.sampled_from([8, 16]))
    bits = draw(st.integers(1, 8))
    n = draw(st.one_of(st.integers(1, 600), st.integers(1, 40), st.sampled_from([8, 16, 24, 32, 48, 64])))
    k = (draw(st.one_of(st.integers(1, 600), st.integers(1, 40))) if kind == "dense" else n)
    batches = draw(st.sampled_from([None, 1, 3]))
    mode = draw(st.sampled_from(["random", "random", "extreme"]))
    per_channel = draw(st.sampled_from([True, True, False]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    lo, hi = act_range(act_bits)
    weights = weight_codes(rng, (n, k) if kind == "dense" else (n,), bits, mode)
    x = activations(rng, (k if kind == "dense" else n,) if batches is None else
                    (batches, k if kind == "dense" else n), act_bits, mode)
    zp_in = draw(st.integers(lo, hi)) if act_bits == 8 else 0
    zp_out = draw(st.one_of(st.integers(-64, 64), st.integers(lo, hi))) if act_bits == 8 else 0
    sums = _accumulate(kind, x, weights, zp_in)
    limit = BIAS_LIMIT[act_bits]
    bias_kind = draw(st.sampled_from(["none", "centre", "centre", "small", "limit"]))
    if bias_kind == "centre":  # a trained layer's bias keeps its outputs around the zero point
        spread = int(np.abs(sums).max()) + 1
        bias = -np.median(sums, axis=0).astype(np.int64) + rng.integers(-spread // 4, spread // 4 + 1, n)
    elif bias_kind == "small":
        bias = rng.integers(-(1 << 20), (1 << 20) + 1, n)
    elif bias_kind == "limit":
        bias = rng.choice(np.array([-1, 1]), n) * (limit - rng.integers(0, 4, n))
    else:
        bias = np.zeros(n, np.int64)
    bias = np.clip(bias, -limit, limit)
    mult, shift = calibrated_params(rng, sums + bias, act_bits, zp_out, per_channel)
    if per_channel:
        plant_channels(rng, sums, act_bits, zp_out, bias, mult, shift, share=draw(st.sampled_from([0.0, 0.1, 0.3])))
    act_min, act_max = draw(clamps(act_bits, zp_out))
    bias_dtype = np.int32 if act_bits == 8 else np.int64
    return dict(x=x, weights=weights,
                bias=None if bias_kind == "none" and not bias.any() else bias.astype(bias_dtype),
                input_zero_point=zp_in, output_zero_point=zp_out,
                multiplier=mult.astype(np.int32) if per_channel else int(mult[0]),
                shift=shift.astype(np.int32) if per_channel else int(shift[0]), act_min=act_min, act_max=act_max)


# --- requantization of accumulator arrays ----------------------------------------------------

lane_lengths = st.one_of(st.integers(1, 70), st.sampled_from([8, 16, 17, 24, 32, 33, 48, 64]))


@st.composite
def requantize_s32_case(draw):
    """(acc, multiplier, shift) int32 arrays, each element its own kind: calibrated, an SRDHM or
    RoundingDivideByPOT tie, the SRDHM saturation INT32_MIN * INT32_MIN, a wrapping left shift, or any
    value with any multiplier (negative ones included)."""
    n = draw(lane_lengths)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    acc = np.empty(n, np.int64)
    mult = np.empty(n, np.int64)
    shift = np.empty(n, np.int64)
    for i in range(n):
        kind = rng.choice(["tie", "tie", "saturate", "wrap", "calibrated", "any"])
        if kind == "tie":
            a, m, s = _tie_target(rng, 8)
            if rng.random() < 0.3:  # SRDHM by INT32_MIN is an exact negation: ties of the divide up to 2^31
                e = int(rng.integers(1, 32))
                odd = 2 * int(rng.integers(0, max(1, (1 << (31 - e)) // 2))) + 1  # odd << (e - 1) < 2^30
                a, m, s = int(rng.choice([-1, 1])) * odd << (e - 1), INT32_MIN, -e
        elif kind == "saturate":  # acc << left is INT32_MIN
            s = int(rng.integers(-31, 31))
            a, m = (INT32_MIN if s <= 0 else -(1 << (31 - s))), INT32_MIN
        elif kind == "wrap":
            s = int(rng.integers(1, 31))
            a, m = int(rng.integers(INT32_MIN, INT32_MAX, endpoint=True)), int(rng.integers(INT32_MIN, INT32_MAX))
        elif kind == "calibrated":
            a = int(rng.integers(-(1 << 24), 1 << 24))
            m, s = reference.quantize_multiplier(float(rng.uniform(0.25, 1.25) * 128 / (abs(a) + 1)))
            s = min(s, 30)
        else:
            a = int(rng.integers(INT32_MIN, INT32_MAX, endpoint=True))
            m, s = int(rng.integers(INT32_MIN, INT32_MAX, endpoint=True)), int(rng.integers(-31, 31))
        acc[i], mult[i], shift[i] = _wrap32(a), m, s
    return acc.astype(np.int32), mult.astype(np.int32), shift.astype(np.int32)


@st.composite
def requantize_s64_case(draw):
    """(acc int64, multiplier, shift) arrays for the 16x8 requantization, each element its own kind:
    a tie of the single rounding, a result that wraps to int32, a multiplier of 0x7FFF0000 or more (whose
    reduced value is capped), or any value in range."""
    n = draw(lane_lengths)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    acc = np.empty(n, np.int64)
    mult = np.empty(n, np.int64)
    shift = np.empty(n, np.int64)
    for i in range(n):
        kind = rng.choice(["tie", "tie", "wrap", "cap", "any"])
        if kind == "tie":  # reduced multiplier r odd, acc = odd * 2^(t - 1): a tie of the shift by t
            t = int(rng.integers(8, 47))
            r = 2 * int(rng.integers(0, 0x3FFF)) + 1
            odd = 2 * int(rng.integers(0, max(1, S64_ACC_LIMIT >> t))) + 1
            a, m, s = int(rng.choice([-1, 1])) * (odd << (t - 1)), (r << 16) + int(rng.integers(-(1 << 15), 1 << 15)), 15 - t
            if abs(a) > S64_ACC_LIMIT:
                a = int(np.sign(a)) * (1 << (t - 1))
        elif kind == "wrap":
            a, m, s = int(rng.integers(1 << 40, S64_ACC_LIMIT)) * int(rng.choice([-1, 1])), int(rng.integers(2**30, 2**31)), int(rng.integers(0, 8))
        elif kind == "cap":
            a, m, s = int(rng.integers(-(1 << 36), 1 << 36)), int(rng.integers(0x7FFF0000, INT32_MAX, endpoint=True)), int(rng.integers(-31, 8))
        else:
            a, m, s = int(rng.integers(-S64_ACC_LIMIT, S64_ACC_LIMIT, endpoint=True)), int(rng.integers(0, 2**31)), int(rng.integers(-31, 8))
        acc[i], mult[i], shift[i] = a, m, s
    return acc, mult.astype(np.int32), shift.astype(np.int32)


# --- int16 accumulation ------------------------------------------------------------------------


def bound_weights(rng: np.random.Generator, n: int, k: int, bits: int, log2_block: int) -> np.ndarray:
    """Weights whose every aligned block of 2^log2_block products per row sums |w| to 255, the most
    the int16 bound allows (128 * 255 = 32640), with the mass on one residue class of positions mod 8
    where it fits: the positions that share an int16 lane in the SIMD kernels. Two such blocks side by
    side sum to 510, so 2^log2_block is the largest safe block (when K spans two blocks)."""
    q = grid_max(bits)
    block = 1 << log2_block
    w = np.zeros((n, k), np.int64)
    for r in range(n):
        residue = int(rng.integers(0, 8))
        sign = int(rng.choice([-1, 1]))
        for start in range(0, k, block):
            stop = min(start + block, k)
            lane = np.arange(start + (residue - start) % 8, stop, 8)
            others = np.setdiff1d(np.arange(start, stop), lane)
            left = 255
            for pos in np.concatenate([rng.permutation(lane), rng.permutation(others)]):
                if left == 0:
                    break
                w[r, pos] = min(q, left)
                left -= w[r, pos]
            w[r, start:stop] *= sign
    return w.astype(np.int8)


@st.composite
def acc16_case(draw):
    """A fully_connected call for the int16-accumulating kernels, with its largest safe block (log2).

    "bound": rows whose blocks sit exactly at the int16 bound, their mass on one lane's positions, and
    x = -128 there, so each block's partial sums in that lane reach +-32640 (twice the block would wrap);
    "random": uniform 1..4-bit codes and activations. Zero points, biases, multipliers and clamps are
    drawn as for any layer, the multipliers calibrated to the accumulators, edge cases planted."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.one_of(st.integers(1, 40), st.sampled_from([8, 16, 24, 32, 33])))
    batches = draw(st.sampled_from([1, 2]))
    if draw(st.sampled_from(["bound", "bound", "random"])) == "bound":
        bits = draw(st.integers(2, 8))  # 1-bit codes are +-1: no zeros to leave room between the blocks' mass
        # the smallest block whose lane positions (one in 8) can hold |w| = 255, and up to 2^9
        need = max(4, int(np.ceil(np.log2(8 * 254 / grid_max(bits)))))
        log2_block = draw(st.integers(min(need, 9), 9))
        k = draw(st.integers(2 << log2_block, 3 << log2_block))
        w = bound_weights(rng, n, k, bits, log2_block)
        x = activations(rng, (batches, k), 8, "random")
        x[:, (w != 0).any(axis=0)] = -128
    else:
        bits = draw(st.integers(1, 4))
        k = draw(st.integers(1, 600))
        mode = draw(st.sampled_from(["random", "extreme"]))
        w = weight_codes(rng, (n, k), bits, mode)
        x = activations(rng, (batches, k), 8, mode)
    claim = reference.acc16_log2_block(w, 8)
    zp_in = draw(st.one_of(st.just(0), st.integers(-128, 127)))
    zp_out = draw(st.one_of(st.integers(-64, 64), st.integers(-128, 127)))
    sums = _accumulate("dense", x, w, zp_in)
    bias = np.zeros(n, np.int64) if draw(st.booleans()) else rng.integers(-(1 << 16), (1 << 16) + 1, n)
    mult, shift = calibrated_params(rng, sums + bias, 8, zp_out, per_channel=True)
    plant_channels(rng, sums, 8, zp_out, bias, mult, shift, share=draw(st.sampled_from([0.0, 0.1, 0.3])))
    act_min, act_max = draw(clamps(8, zp_out))
    case = dict(x=x, weights=w, bias=bias.astype(np.int32), input_zero_point=zp_in, output_zero_point=zp_out,
                multiplier=mult.astype(np.int32), shift=shift.astype(np.int32), act_min=act_min, act_max=act_max)
    return case, claim
