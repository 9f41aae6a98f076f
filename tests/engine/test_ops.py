"""Every backend equals kwsint.reference bit for bit, op by op."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

import kwsint
from kwsint import ops, reference

from ..strategies import layer_case, requantize_s32_case, requantize_s64_case


@given(case=layer_case("dense"))
def test_fully_connected_equals_reference(backend, case):
    want = reference.fully_connected(**case)
    got = ops.fully_connected(**case, backend=backend)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


@given(case=layer_case("affine"))
def test_affine_equals_reference(backend, case):
    want = reference.affine(**case)
    got = ops.affine(**case, backend=backend)
    np.testing.assert_array_equal(got, want)


@given(case=requantize_s32_case())
def test_requantize_s32_equals_reference(backend, case):
    acc, mult, shift = case
    np.testing.assert_array_equal(ops.requantize(acc, mult, shift, backend=backend),
                                  reference.requantize(acc, mult, shift))


@given(case=requantize_s64_case())
def test_requantize_s64_equals_reference(backend, case):
    acc, mult, shift = case
    np.testing.assert_array_equal(ops.requantize(acc, mult, shift, backend=backend),
                                  reference.requantize(acc, mult, shift))


finite_or_not = st.floats(width=32, allow_nan=True, allow_infinity=True)


@given(act_bits=st.sampled_from([8, 16]), data=st.data())
def test_quantize_equals_reference(backend, act_bits, data):
    # Power-of-two scales make k + 0.5 exact quotients: ties are hit every time.
    exp = data.draw(st.integers(-12, 4))
    scale = data.draw(st.one_of(st.just(float(2.0**exp)), st.floats(2.0**-20, 1024.0, width=32)))
    zp = data.draw(st.integers(-128, 127)) if act_bits == 8 else 0
    ties = [(k + 0.5) * scale for k in data.draw(st.lists(st.integers(-300, 300), max_size=32))]
    values = data.draw(st.lists(finite_or_not, max_size=32)) + ties
    x = np.array(values, dtype=np.float32)
    np.testing.assert_array_equal(ops.quantize(x, scale, zp, act_bits, backend=backend),
                                  reference.quantize(x, scale, zp, act_bits))


@given(logits=st.lists(st.tuples(st.integers(-32768, 32767), st.integers(-32768, 32767)), min_size=1, max_size=32),
       scale=st.floats(2.0**-17, 3.5, width=32))
def test_posterior_equals_reference(logits, scale):
    mult, shift = reference.quantize_multiplier(float(np.float32(scale)) * 4096.0)
    lg = np.array(logits, dtype=np.int32)
    got = ops.posterior_q16(lg, mult, shift)
    np.testing.assert_array_equal(got, reference.posterior_q16(lg, mult, shift))
    assert ((got >= 0) & (got <= 65536)).all()


def test_posterior_tracks_the_sigmoid():
    scale = 0.05
    mult, shift = reference.quantize_multiplier(scale * 4096.0)
    d = np.arange(-400, 401)
    lg = np.stack([np.zeros_like(d), d], axis=-1)
    p = reference.posterior_q16(lg, mult, shift) / 65536.0
    exact = 1.0 / (1.0 + np.exp(-d * scale))
    assert np.abs(p - exact).max() < 1e-4
    assert (np.diff(p) >= 0).all()  # monotonic: a threshold on it is a threshold on the logit difference


@pytest.mark.parametrize("bad, match", [
    (dict(input_zero_point=200), "input_zero_point"),
    (dict(act_min=10, act_max=5), "act_max"),
    (dict(multiplier=-1), "multiplier"),
    (dict(shift=31), "shift"),
    (dict(bias=np.full(4, 2**30 + 1, dtype=np.int64)), "bias"),
    (dict(weights=np.full((4, 3), -128, dtype=np.int8)), "weights"),
    (dict(weights=np.zeros((4, 2), dtype=np.int8)), "weights"),
    (dict(x=np.zeros(3, dtype=np.int32)), "x"),
])
def test_fully_connected_rejects_out_of_range_arguments(bad, match):
    args = dict(x=np.zeros(3, dtype=np.int8), weights=np.ones((4, 3), dtype=np.int8), bias=None,
                input_zero_point=0, output_zero_point=0, multiplier=2**30, shift=0, act_min=-128, act_max=127)
    args.update(bad)
    with pytest.raises(ValueError, match=match):
        ops.fully_connected(**args)


def test_int16_requires_zero_point_zero():
    with pytest.raises(ValueError, match="input_zero_point"):
        ops.fully_connected(np.zeros(3, dtype=np.int16), np.ones((2, 3), dtype=np.int8), None, input_zero_point=1,
                            output_zero_point=0, multiplier=2**30, shift=0, act_min=-100, act_max=100)


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(kwsint.BackendError, match="unknown backend 'nope'"):
        ops.quantize(np.zeros(2), 1.0, 0, 8, backend="nope")


# Shapes at the edges of the int8 kernels: the avx2 panels (64 rows in blocks of 8, groups of
# 4 K, rows padded to 32 bytes below 8 rows), partial last blocks, K < 4 and every K % 4; and
# the row-dot kernels' K % 16 tails.
EDGE_N = (1, 2, 7, 8, 9, 24, 25, 31, 32, 33, 57, 63, 64, 65, 87)
EDGE_K = (1, 2, 3, 4, 5, 7, 15, 16, 17, 33, 87, 400)


@pytest.mark.parametrize("fill", ["worst", "extreme"])
def test_fully_connected_edge_shapes_exact_sums(backend, fill):
    """Each row's bias cancels its exact sum up to a small offset, so the output (scale 1) is the offset
    and any error in any product or pair sum shows. "worst": x = -128, w = -127 everywhere, the largest
    pair sums (2 * 128 * 127 = 32512); "extreme": random signs at those magnitudes."""
    rng = np.random.default_rng(7)
    for n in EDGE_N:
        for k in EDGE_K:
            if fill == "worst":
                x, w = np.full(k, -128, np.int8), np.full((n, k), -127, np.int8)
            else:
                x = rng.choice(np.array([-128, 127], np.int8), k)
                w = rng.choice(np.array([-127, 127], np.int8), (n, k))
            offset = rng.integers(-100, 101, n)
            bias = (offset - w.astype(np.int64) @ x.astype(np.int64)).astype(np.int32)
            case = dict(x=x, weights=w, bias=bias, input_zero_point=0, output_zero_point=0, multiplier=2**30,
                        shift=1, act_min=-128, act_max=127)
            got = ops.fully_connected(**case, backend=backend)
            np.testing.assert_array_equal(got, reference.fully_connected(**case), err_msg=f"n={n} k={k}")
            np.testing.assert_array_equal(got, offset, err_msg=f"n={n} k={k}")
