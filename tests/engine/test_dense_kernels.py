"""Every dense kernel of every backend, prepared once as the model loader prepares a layer (the int8,
4-bit and 1-bit weight formats; weights "int8", "packed" and "auto"), equals kwsint.reference bit for bit."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

from kwsint import ops, reference

from ..strategies import acc16_case, grid_max, layer_case

STORAGES = ["auto", "int8", "packed"]
PARAMS = ("input_zero_point", "output_zero_point", "multiplier", "shift", "act_min", "act_max")


def code_bits(w: np.ndarray) -> int:
    """The fewest bits whose grid holds every code: 1 for codes of -1 and +1 only."""
    if np.isin(w, (-1, 1)).all():
        return 1
    return max(2, int(np.abs(w.astype(np.int32)).max()).bit_length() + 1)


def prepared(case: dict, backend: str, storage: str, bits: int | None = None, acc16_block: int = 0):
    return ops.FullyConnected(case["weights"], case["bias"], weight_bits=bits or code_bits(case["weights"]),
                              acc16_block=acc16_block, weights_storage=storage, backend=backend,
                              **{k: case[k] for k in PARAMS})


@given(case=layer_case("dense", act_bits=8), storage=st.sampled_from(STORAGES))
def test_prepared_dense_equals_reference(backend, case, storage):
    op = prepared(case, backend, storage)
    np.testing.assert_array_equal(op(case["x"]), reference.fully_connected(**case))


@given(data=acc16_case(), storage=st.sampled_from(STORAGES))
def test_prepared_dense_at_the_int16_bound(backend, data, storage):
    # Rows whose blocks sit at the int16 bound with x = -128 where the mass is, with the largest safe
    # claim: the packed formats' own int16 sums and the int8 kernels' claimed blocks both face it.
    case, claim = data
    op = prepared(case, backend, storage, acc16_block=claim)
    np.testing.assert_array_equal(op(case["x"]), reference.fully_connected(**case))


@pytest.mark.parametrize("bits", [1, 2, 3, 4])
@pytest.mark.parametrize("k", [1, 7, 8, 31, 32, 33, 63, 64, 65, 87, 127, 400, 540, 4099])
def test_packed_kernels_at_their_extremes(backend, bits, k):
    # Every code at the grid's edge and every activation at -128 or 127, rows of one sign each: the
    # largest sums any packed kernel's int16 partial sums meet (no claim made), at K around every step.
    rng = np.random.default_rng(k * 8 + bits)
    n = 19
    q = grid_max(bits)
    w = (np.where(rng.random((n, 1)) < 0.5, -q, q) * np.ones((1, k), np.int64)).astype(np.int8)
    w[n - 3] = rng.choice(np.array([-q, q]), k)
    x = np.stack([np.full(k, -128), np.full(k, 127), rng.choice(np.array([-128, 127]), k)]).astype(np.int8)
    acc = x.astype(np.int64) @ w.astype(np.int64).T
    shift = np.full(n, -20 if k > 64 else -8, np.int32)
    case = dict(x=x, weights=w, bias=None, input_zero_point=0, output_zero_point=0,
                multiplier=np.full(n, 1 << 30, np.int32), shift=shift, act_min=-128, act_max=127)
    assert np.abs(acc).max() <= 127 * 128 * k
    op = prepared(case, backend, "packed", bits)
    assert op.plan["code_bits"] == (1 if bits == 1 else 4)
    np.testing.assert_array_equal(op(x), reference.fully_connected(**case))


@pytest.mark.parametrize("bits", [1, 4])
@pytest.mark.parametrize("k, n", [(1024, 1024), (1031, 1045), (2049, 17)])
def test_packed_kernels_past_their_blocks(backend, bits, k, n):
    # Past the K and N blocks kernels keep partial sums over (sse4.1 1-bit: tables for 1024 activations
    # at a time, sums of 1024 rows in between), with extreme codes and activations, -128 included.
    rng = np.random.default_rng(k + n + bits)
    q = grid_max(bits)
    w = rng.choice(np.array([-q, q]), (n, k)).astype(np.int8)
    w[: n // 2] = np.where(rng.random((n // 2, 1)) < 0.5, -q, q)
    x = np.stack([np.full(k, -128), rng.choice(np.array([-128, 127]), k)]).astype(np.int8)
    case = dict(x=x, weights=w, bias=None, input_zero_point=0, output_zero_point=0,
                multiplier=np.full(n, 1 << 30, np.int32), shift=np.full(n, -k.bit_length(), np.int32),
                act_min=-128, act_max=127)  # |y| <= 64: errors of a block's size show
    op = prepared(case, backend, "packed", bits)
    np.testing.assert_array_equal(op(x), reference.fully_connected(**case))


@pytest.mark.parametrize("bits", [1, 4])
def test_packed_kernels_on_long_rows(backend, bits):
    # K past 2048 with more than 256 rows: kernels that build per-input tables for a stretch of K at a
    # time (avx2 1-bit) rebuild them for every set of rows; every row differs, so a stale table shows.
    rng = np.random.default_rng(bits)
    k, n = 2061, 291
    q = grid_max(bits)
    w = (rng.choice(np.array([-1, 1]), (n, k)) * (1 if bits == 1 else rng.integers(1, q + 1, (n, k)))).astype(np.int8)
    x = rng.integers(-128, 128, (2, k)).astype(np.int8)
    case = dict(x=x, weights=w, bias=None, input_zero_point=0, output_zero_point=0,
                multiplier=np.full(n, 1 << 30, np.int32), shift=np.full(n, -12, np.int32), act_min=-128, act_max=127)
    np.testing.assert_array_equal(prepared(case, backend, "packed", bits)(x), reference.fully_connected(**case))


def test_plans_follow_bits_and_storage(backend):
    rng = np.random.default_rng(0)
    params = dict(input_zero_point=0, output_zero_point=0, multiplier=1 << 30, shift=-8, act_min=-128, act_max=127)
    for bits, held in ((8, 8), (5, 8), (4, 4), (2, 4), (1, 1)):
        w = rng.choice(np.array([-1, 1]), (5, 9)).astype(np.int8) * (1 if bits == 1 else grid_max(bits))
        ops_of = {s: ops.FullyConnected(w, None, weight_bits=bits, weights_storage=s, backend=backend, **params)
                  for s in STORAGES}
        assert ops_of["int8"].plan["code_bits"] == 8
        assert ops_of["packed"].plan["code_bits"] == held
        assert ops_of["auto"].plan["code_bits"] in {8, held}
        assert {op.plan["kernel"] for op in ops_of.values()} <= {ops_of["int8"].plan["kernel"],
                                                                 ops_of["packed"].plan["kernel"]}
        if held < 8:
            assert ops_of["packed"].plan["weight_bytes"] < ops_of["int8"].plan["weight_bytes"]


@pytest.mark.parametrize("bad, match", [
    (dict(weight_bits=4, weights=np.full((2, 3), 8, np.int8)), "4-bit codes must lie in"),
    (dict(weight_bits=1, weights=np.zeros((2, 3), np.int8)), "1-bit codes must be -1 or"),
    (dict(weight_bits=9), "weight_bits: expected an integer in"),
    (dict(weights_storage="nibbles"), "weights_storage: expected one of auto, int8, packed"),
])
def test_prepared_dense_rejects_bad_arguments(bad, match):
    args = dict(weights=np.ones((2, 3), np.int8), bias=None, input_zero_point=0, output_zero_point=0,
                multiplier=1 << 30, shift=-8, act_min=-128, act_max=127) | bad
    with pytest.raises(ValueError, match=match):
        ops.FullyConnected(**args)
    op = ops.FullyConnected(np.ones((2, 3), np.int8), None, input_zero_point=0, output_zero_point=0,
                            multiplier=1 << 30, shift=-8, act_min=-128, act_max=127)
    with pytest.raises(ValueError, match="x: expected int8 activations of shape"):
        op(np.ones(4, np.int8))


def test_auto_keeps_int8_where_packed_is_slower():
    # The portable packed kernels unpack codes one by one and lose to its int8 rows: "auto" keeps int8.
    params = dict(input_zero_point=0, output_zero_point=0, multiplier=1 << 30, shift=-8, act_min=-128, act_max=127)
    for bits in (1, 4):
        w = np.ones((3, 5), np.int8)
        auto = ops.FullyConnected(w, None, weight_bits=bits, backend="portable", **params)
        packed = ops.FullyConnected(w, None, weight_bits=bits, weights_storage="packed", backend="portable", **params)
        assert (auto.plan["code_bits"], packed.plan["code_bits"]) == (8, bits if bits == 1 else 4)


@pytest.mark.parametrize("bits", [1, 4])
@pytest.mark.parametrize("n", [1, 3, 8, 9, 15, 16, 17, 33, 47])
def test_packed_kernels_across_row_groups(backend, bits, n):
    # N around the packed kernels' row groups (4, 8 and 16 rows, partial 16-row panels of 1-bit weights
    # held without padding), random codes and x with -128, K with whole steps and a tail, and for one N
    # K past 2048 (the NEON 1-bit kernel's table chunk); outputs spread over about 64 codes.
    rng = np.random.default_rng(n * 8 + bits)
    for k in (5, 40, 300) + ((2100,) if n == 17 else ()):
        q = grid_max(bits)
        w = (rng.choice(np.array([-1, 1]), (n, k)) if bits == 1 else rng.integers(-q, q + 1, (n, k))).astype(np.int8)
        x = rng.integers(-128, 128, (2, k)).astype(np.int8)
        x[rng.random((2, k)) < 0.2] = -128
        spread = float((x.astype(np.int64) @ w.astype(np.int64).T).std()) + 1.0
        bias = rng.integers(-int(spread), int(spread) + 1, n).astype(np.int32)
        case = dict(x=x, weights=w, bias=bias, input_zero_point=-3,
                    output_zero_point=4, multiplier=np.full(n, 1 << 30, np.int32),
                    shift=np.full(n, min(0, 6 - int(np.log2(spread))), np.int32), act_min=-128, act_max=127)
        op = prepared(case, backend, "packed", bits)
        np.testing.assert_array_equal(op(x), reference.fully_connected(**case))


@pytest.mark.parametrize("k, n", [(1, 1), (5, 2), (33, 7), (87, 8), (400, 9), (3, 63), (87, 64), (64, 65), (540, 87),
                                  (33, 100), (87, 120), (87, 130), (1023, 17), (1024, 3), (1025, 24), (2051, 72)])
@pytest.mark.parametrize("claim", [0, 5])
def test_int8_kernels_on_every_batch_group(backend, k, n, claim):
    # Batches 1..5 (groups of 4, 2 and 1 inputs sharing each weight load, every remainder), fewer than
    # 8 rows (padded rows) and more, last panels of 1 to 8 blocks and partial blocks, K across the hoisted chunk of 1024,
    # with x at -128 and 127 where codes sit at +-127 (int32 sums) or +-7 (int16 sums over a claim).
    rng = np.random.default_rng(k * 131 + n)
    q = 7 if claim else 127
    w = rng.integers(-q, q + 1, (n, k)).astype(np.int8)
    w[0] = q
    if n > 1:
        w[n - 1] = -q
    x = rng.integers(-128, 128, (5, k)).astype(np.int8)
    x[0] = -128
    x[1, ::2] = 127
    acc = np.abs(x.astype(np.int64) @ w.astype(np.int64).T).max()
    mult, shift = reference.quantize_multiplier(100.0 / max(int(acc), 1))
    case = dict(weights=w, bias=rng.integers(-(1 << 20), 1 << 20, n).astype(np.int32), input_zero_point=-5,
                output_zero_point=3, multiplier=np.full(n, mult, np.int32), shift=np.full(n, shift, np.int32),
                act_min=-128, act_max=127)
    op = prepared(case, backend, "int8", 8, acc16_block=claim)
    for b in range(1, 6):
        np.testing.assert_array_equal(op(x[:b]), reference.fully_connected(x[:b], **case), err_msg=f"batches={b}")
