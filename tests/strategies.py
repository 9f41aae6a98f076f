"""Hypothesis strategies for the integer ops and models."""

import numpy as np
from hypothesis import strategies as st

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


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
    lo, hi = act_range(act_bits)
    dtype = np.int8 if act_bits == 8 else np.int16
    if mode == "extreme":
        return rng.choice(np.array([lo, hi]), size=shape).astype(dtype)
    return rng.integers(lo, hi + 1, size=shape).astype(dtype)


multipliers = st.one_of(
    st.integers(2**30, INT32_MAX),  # what QuantizeMultiplier produces
    st.sampled_from([0, 2**30, INT32_MAX]),
    st.integers(0, INT32_MAX),
)


@st.composite
def requant_params(draw, n: int, act_bits: int):
    """(multiplier, shift) per-tensor (scalars) or per-channel ((n,) arrays)."""
    max_shift = 30 if act_bits == 8 else 7
    shifts = st.one_of(st.integers(-31, max_shift), st.integers(-12, 1))
    if draw(st.booleans()):
        return draw(multipliers), draw(shifts)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    lo_shift = draw(st.integers(-31, max_shift))
    hi_shift = draw(st.integers(lo_shift, max_shift))
    mult = rng.integers(2**30, 2**31, size=n).astype(np.int32)
    mult[rng.random(n) < 0.05] = 0
    shift = rng.integers(lo_shift, hi_shift + 1, size=n).astype(np.int32)
    return mult, shift


@st.composite
def layer_case(draw, kind: str):
    """Everything one fully_connected/affine call needs, within the spec's bounds."""
    act_bits = draw(st.sampled_from([8, 16]))
    bits = draw(st.integers(1, 8))
    n = draw(st.one_of(st.integers(1, 600), st.integers(1, 40)))
    k = (draw(st.one_of(st.integers(1, 600), st.integers(1, 40))) if kind == "dense" else n)
    batches = draw(st.sampled_from([None, 1, 3]))
    mode = draw(st.sampled_from(["random", "random", "extreme"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = (n, k) if kind == "dense" else (n,)
    weights = weight_codes(rng, shape, bits, mode)
    x = activations(rng, (k,) if batches is None else (batches, k), act_bits, mode)
    lo, hi = act_range(act_bits)
    zp_in = draw(st.integers(lo, hi)) if act_bits == 8 else 0
    zp_out = draw(st.integers(lo, hi)) if act_bits == 8 else 0
    limit = 2**30 if act_bits == 8 else 2**46 - 1
    bias_kind = draw(st.sampled_from(["none", "small", "limit"]))
    if bias_kind == "none":
        bias = None
    else:
        b = limit if bias_kind == "limit" else 1 << 20
        bias = rng.integers(-b, b + 1, size=n).astype(np.int32 if act_bits == 8 else np.int64)
    mult, shift = draw(requant_params(n, act_bits))
    act_min = draw(st.integers(lo, hi))
    act_max = draw(st.integers(act_min, hi))
    return dict(x=x, weights=weights, bias=bias, input_zero_point=zp_in, output_zero_point=zp_out,
                multiplier=mult, shift=shift, act_min=act_min, act_max=act_max)
