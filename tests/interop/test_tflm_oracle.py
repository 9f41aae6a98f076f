"""TensorFlow Lite Micro as an external oracle: TFLM == kwsint.reference == every C backend.

Each kwsint op is one TFLite builtin (``kwsint.interop.tflite`` writes the flatbuffers
with the tflite-micro package's model_editor); the real TFLM interpreter runs
them and must produce the same integers, op by op and for whole models of the
paper's shapes. Building a model costs milliseconds, so example counts here
scale with the profile (``_examples``): single ops run the full count, whole models fewer.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tflite_micro  # noqa: F401  (the oracle; the test extra installs it)
from hypothesis import Phase, given, settings, strategies as st

import kwsint
from kwsint import ops, reference
from kwsint.interop import tflite as tfl
from kwsint.train import generate

from ..strategies import BIAS_LIMIT, MAX_SHIFT, activations, calibrated_params, weight_codes

pytestmark = pytest.mark.tflm

PAPER_SIZES = (87, 400, 87, 400, 87, 400)  # M2's shape: 540 -> 87 -> 400 -> ... -> 2


def _examples(n: int, shrink: bool = True):
    """n examples under the "ci" profile (300), scaled with the loaded profile.

    ``shrink=False`` reports the first failing example as found: shrinking a
    whole-model failure would rebuild hundreds of models (minutes).
    """
    base = settings().max_examples
    phases = None if shrink else [p for p in settings().phases if p is not Phase.shrink]
    return settings(max_examples=max(1, round(n * base / 300)), **({} if phases is None else dict(phases=phases)))


def _qrange(act_bits: int) -> tuple[int, int]:
    return (-128, 127) if act_bits == 8 else (-32768, 32767)


f32_scale = st.floats(2.0**-12, 4.0, width=32)


@st.composite
def scales(draw, n: int, per_channel: bool, log2_eff: tuple[float, float]):
    """(s_in, s_w (n,), s_out) as float32 with log2(s_in * s_w / s_out) in log2_eff."""
    si, so = np.float32(draw(f32_scale)), np.float32(draw(f32_scale))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    e = rng.uniform(*log2_eff, size=n if per_channel else 1)
    if draw(st.booleans()):  # exact powers of two: ties in every rounding step
        e = np.round(e)
    ws = np.float32(2.0**e * np.float64(so) / np.float64(si))
    ws = np.broadcast_to(np.where(ws > 0, ws, np.float32(2.0**-126)), (n,)).astype(np.float32)
    return si, ws, so


@st.composite
def layer_case(draw, kind: str, act_bits: int, per_channel: bool):
    """A FULLY_CONNECTED / affine case inside the spec's (and the C backends') bounds whose weight scales are
    calibrated to its accumulators (tests/strategies.py): most outputs lie inside the clamp. With powers of
    two for every scale the multipliers are exact, and per channel some biases plant rounding ties."""
    n = draw(st.integers(1, 48))
    k = draw(st.integers(1, 96)) if kind == "dense" else n
    batch = draw(st.sampled_from([1, 3]))
    bits = draw(st.integers(1, 8))
    mode = draw(st.sampled_from(["random", "random", "extreme"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    weights = weight_codes(rng, (n, k) if kind == "dense" else (n,), bits, mode)
    x = activations(rng, (batch, k), act_bits, mode)
    lo, hi = _qrange(act_bits)
    zp_in = draw(st.integers(lo, hi)) if act_bits == 8 else 0
    zp_out = draw(st.one_of(st.integers(-64, 64), st.integers(lo, hi))) if act_bits == 8 else 0
    sums = (x.astype(np.int64) - zp_in) @ weights.astype(np.int64).T if kind == "dense" else \
        (x.astype(np.int64) - zp_in) * weights.astype(np.int64)
    limit = BIAS_LIMIT[act_bits]
    bias_kind = draw(st.sampled_from(["none", "centre", "centre", "small", "limit"]))
    if bias_kind == "centre":
        spread = int(np.abs(sums).max()) + 1
        bias = -np.median(sums, axis=0).astype(np.int64) + rng.integers(-spread // 4, spread // 4 + 1, n)
    elif bias_kind == "limit":
        bias = rng.integers(-limit, limit + 1, n)
    else:
        bias = rng.integers(-(1 << 12), (1 << 12) + 1, n) if bias_kind == "small" else np.zeros(n, np.int64)
    bias = np.clip(bias, -limit, limit)
    # the effective scale s_in * s_w / s_out of each channel: a calibrated quantizer's, within shift <= 30 (int8,
    # left shifts wrap in int32 alike everywhere) or 7 (16x8)
    mult, shift = calibrated_params(rng, sums + bias, act_bits, zp_out, per_channel)
    eff = np.where(mult > 0, mult * 2.0 ** (shift.astype(np.float64) - 31), 2.0**-40)
    eff = np.minimum(eff, 2.0 ** MAX_SHIFT[act_bits] * (1 - 2.0**-20))  # float32 scales must not round up to 2^max
    exact = draw(st.booleans())
    if exact:  # powers of two everywhere: exact multipliers, ties in every rounding step
        si, so = np.float32(2.0 ** draw(st.integers(-12, 2))), np.float32(2.0 ** draw(st.integers(-12, 2)))
        eff = 2.0 ** np.minimum(np.round(np.log2(eff)), MAX_SHIFT[act_bits] - 1)
        if per_channel:
            for c in np.flatnonzero(rng.random(n) < 0.3):
                t = int(rng.integers(1, 12))  # a division by 2^t: tie at (2j + 1) * 2^(t - 1)
                target = int(rng.choice([-1, 1])) * (2 * int(rng.integers(0, 50)) + 1) << (t - 1)
                bias[c], eff[c] = target - int(sums.reshape(-1, n)[0, c]), 2.0**-t
    else:
        si, so = np.float32(draw(f32_scale)), np.float32(draw(f32_scale))
    ws = np.float32(eff * np.float64(so) / np.float64(si))
    ws = np.broadcast_to(np.where(ws > 0, ws, np.float32(2.0**-126)), (n,)).astype(np.float32)
    bias = None if bias_kind == "none" and not bias.any() else bias.astype(np.int32 if act_bits == 8 else np.int64)
    act = draw(st.sampled_from(["NONE"] * 5 + list(tfl.FUSED_ACTIVATIONS[1:])))
    act_min, act_max = tfl.activation_range(act, output_scale=so, output_zero_point=zp_out, act_bits=act_bits)
    # INT4 filters where TFLM reads them: int8 activations, per-tensor FULLY_CONNECTED or DEPTHWISE_CONV_2D.
    int4 = bits <= 4 and act_bits == 8 and (kind == "affine" or not per_channel) and draw(st.booleans())
    return dict(weights=weights, bias=bias, x=x, si=si, ws=ws, so=so, zp_in=zp_in, zp_out=zp_out, act=act,
                act_min=act_min, act_max=act_max, act_bits=act_bits, int4=int4)


def _check_three_ways(c, kind: str, per_channel: bool, backend: str):
    """TFLM, the numpy reference and the C backend compute the same integers."""
    model_fn = tfl.fully_connected_model if kind == "dense" else tfl.affine_model
    model = model_fn(c["weights"], c["bias"], input_scale=c["si"], input_zero_point=c["zp_in"],
                     weight_scale=c["ws"] if per_channel else c["ws"][0], output_scale=c["so"],
                     output_zero_point=c["zp_out"], act_bits=c["act_bits"], fused_activation=c["act"],
                     batch=c["x"].shape[0], int4_weights=c["int4"])
    want = tfl.run_tflm(model, c["x"])
    mult, shift = reference.dense_multipliers(float(c["si"]), c["ws"], float(c["so"]))
    args = dict(input_zero_point=c["zp_in"], output_zero_point=c["zp_out"], multiplier=mult, shift=shift,
                act_min=c["act_min"], act_max=c["act_max"])
    op_ref = reference.fully_connected if kind == "dense" else reference.affine
    op_c = ops.fully_connected if kind == "dense" else ops.affine
    got_ref = op_ref(c["x"], c["weights"], c["bias"], **args)
    assert got_ref.dtype == want.dtype
    np.testing.assert_array_equal(got_ref, want, err_msg="kwsint.reference != TFLM")
    np.testing.assert_array_equal(op_c(c["x"], c["weights"], c["bias"], **args, backend=backend), want,
                                  err_msg=f"backend {backend} != TFLM")


# --- single ops ------------------------------------------------------------------------------


@pytest.mark.parametrize("per_channel", [False, True], ids=["per_tensor", "per_channel"])
@_examples(300)
@given(data=st.data())
def test_fully_connected_int8_matches_tflm(backend, per_channel, data):
    _check_three_ways(data.draw(layer_case("dense", 8, per_channel)), "dense", per_channel, backend)


@pytest.mark.parametrize("per_channel", [False, True], ids=["per_tensor", "per_channel"])
@_examples(300)
@given(data=st.data())
def test_fully_connected_16x8_matches_tflm(backend, per_channel, data):
    _check_three_ways(data.draw(layer_case("dense", 16, per_channel)), "dense", per_channel, backend)


@pytest.mark.parametrize("act_bits", [8, 16])
@_examples(300)
@given(data=st.data())
def test_affine_matches_tflm(backend, act_bits, data):
    _check_three_ways(data.draw(layer_case("affine", act_bits, True)), "affine", True, backend)


@pytest.mark.parametrize("op", ["fc_per_tensor", "fc_per_channel", "depthwise"])
@_examples(300)
@given(data=st.data())
def test_multiplier_derivation_matches_tflm(op, data):
    """Probe TFLM's multipliers where they show: 256 consecutive accumulators around a rounding boundary.

    Each channel has weight 1 and a bias at the accumulator where the
    reference's requantization steps from k to k + 1 (|k| <= 100, so |acc| is
    up to 2^30); batch row r adds r - 128. A multiplier a few units off in its
    last bits (e.g. a float32 instead of a double product of the scales) moves
    that boundary by up to ~64 accumulators and fails here.
    """
    n = 48
    per_channel = op != "fc_per_tensor"
    si, ws, so = data.draw(scales(n, per_channel, (-30.0, -23.0)))
    mult, shift = reference.dense_multipliers(float(si), ws, float(so))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    bias = np.zeros(n, dtype=np.int64)
    for c in range(n):
        m, s = int(np.broadcast_to(mult, (n,))[c]), int(np.broadcast_to(shift, (n,))[c])
        if m == 0:
            continue
        step = m * 2.0 ** (s - 31)  # output units per accumulator unit
        k = int(rng.integers(-min(100, int(2**30 * step)), min(100, int(2**30 * step)) + 1))
        bias[c] = int(round((k + 0.5) / step))
    bias = np.clip(bias, -(2**30), 2**30).astype(np.int32)
    x = np.arange(-128, 128, dtype=np.int8)
    if op == "depthwise":
        model = tfl.affine_model(np.ones(n, np.int8), bias, input_scale=si, input_zero_point=0, weight_scale=ws,
                                 output_scale=so, output_zero_point=0, act_bits=8, batch=256)
        xin = np.repeat(x[:, None], n, axis=1)
        got_ref = reference.affine(xin, np.ones(n, np.int8), bias, input_zero_point=0, output_zero_point=0,
                                   multiplier=mult, shift=shift, act_min=-128, act_max=127)
    else:
        model = tfl.fully_connected_model(np.ones((n, 1), np.int8), bias, input_scale=si, input_zero_point=0,
                                          weight_scale=ws if per_channel else ws[0], output_scale=so,
                                          output_zero_point=0, act_bits=8, batch=256)
        xin = x[:, None]
        got_ref = reference.fully_connected(xin, np.ones((n, 1), np.int8), bias, input_zero_point=0,
                                            output_zero_point=0, multiplier=mult, shift=shift, act_min=-128,
                                            act_max=127)
    want = tfl.run_tflm(model, xin)
    np.testing.assert_array_equal(got_ref, want, err_msg="multipliers differ from TFLM's")


@pytest.mark.parametrize("act_bits", [8, 16])
@_examples(300)
@given(data=st.data())
def test_quantize_matches_tflm(backend, act_bits, data):
    """QUANTIZE: float32 division, round half away from zero (ties hit exactly), then zero point and clamp."""
    exp = data.draw(st.integers(-12, 4))
    scale = np.float32(data.draw(st.one_of(st.just(2.0**exp), st.floats(2.0**-20, 1024.0, width=32))))
    zp = data.draw(st.integers(-128, 127)) if act_bits == 8 else 0
    ks = np.array(data.draw(st.lists(st.integers(-40000, 40000), min_size=1, max_size=48)), dtype=np.float64)
    ties = np.float32((ks + 0.5) * np.float64(scale))
    near = np.concatenate([np.nextafter(ties, np.float32(np.inf)), np.nextafter(ties, np.float32(-np.inf))])
    # TFLM converts the rounded quotient to int32 with a C cast: undefined outside int32, so stay inside.
    bound = float(scale) * 2.0**30
    free = data.draw(st.lists(st.floats(-bound, bound, width=32), max_size=32))
    x = np.concatenate([ties, near, np.array(free, dtype=np.float32), np.float32([0.0, -0.0])]).astype(np.float32)
    want = tfl.run_tflm(tfl.quantize_model(x.size, scale=scale, zero_point=zp, act_bits=act_bits), x)
    np.testing.assert_array_equal(reference.quantize(x, scale, zp, act_bits), want, err_msg="reference != TFLM")
    np.testing.assert_array_equal(ops.quantize(x, scale, zp, act_bits, backend=backend), want,
                                  err_msg=f"backend {backend} != TFLM")


def test_quantize_ties_round_half_away_from_zero():
    x = np.float32([0.25, 0.75, 1.25, -0.25, -0.75, -1.25])
    got = tfl.run_tflm(tfl.quantize_model(6, scale=0.5, zero_point=0, act_bits=8), x)
    np.testing.assert_array_equal(got, [1, 2, 3, -1, -2, -3])


@pytest.mark.parametrize("act_bits", [8, 16])
@_examples(100)
@given(data=st.data())
def test_activation_range_matches_tflm(act_bits, data):
    """The clamp of each fused activation, read off TFLM's outputs over a sweep of accumulators."""
    act = data.draw(st.sampled_from(tfl.FUSED_ACTIVATIONS))
    so = np.float32(data.draw(st.floats(2.0**-10, 2.0, width=32)))
    zp = data.draw(st.integers(-128, 127)) if act_bits == 8 else 0
    lo, hi = _qrange(act_bits)
    want = tfl.activation_range(act, output_scale=so, output_zero_point=zp, act_bits=act_bits)
    # Unit effective scale (s_in = s_out, s_w = 1): out = clamp(acc + zp). Sweep the whole output
    # range coarsely and every code around the expected bounds.
    sweep = np.arange(lo - zp - 2, hi - zp + 3, dtype=np.int64)
    acc = np.union1d(sweep[:: max(1, sweep.size // 2048)], sweep[[0, -1]])
    for b in want:
        acc = np.union1d(acc, np.arange(b - zp - 3, b - zp + 4))
    bias = acc.astype(np.int32 if act_bits == 8 else np.int64)
    model = tfl.fully_connected_model(np.zeros((bias.size, 1), np.int8), bias, input_scale=so, input_zero_point=0,
                                      weight_scale=1.0, output_scale=so, output_zero_point=zp, act_bits=act_bits,
                                      fused_activation=act)
    y = tfl.run_tflm(model, np.zeros(1, np.int8 if act_bits == 8 else np.int16))
    np.testing.assert_array_equal(y, np.clip(acc + zp, *want))
    chosen = tfl.fused_activation_for(*want, output_scale=so, output_zero_point=zp, act_bits=act_bits)
    assert tfl.activation_range(chosen, output_scale=so, output_zero_point=zp, act_bits=act_bits) == want


def _normalize_model(mean: np.ndarray, inv_std: np.ndarray, batch: int) -> bytes:
    """float32 SUB then MUL by [1, F] constants, as model_to_tflite's normalize=True writes them."""
    bld = tfl._Builder()
    x = bld.float_tensor((batch, mean.size), "input")
    y = bld.float_binary("MUL", bld.float_binary("SUB", x, mean, "centered"), inv_std, "normalized")
    return bld.build([x], [y])


@st.composite
def float32s(draw, shape):
    """Finite float32 of every magnitude: random bit patterns (subnormals included) and ordinary values."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    bits = rng.integers(0, 2**32, size=shape, dtype=np.uint64).astype(np.uint32).view(np.float32)
    normal = rng.normal(0.0, 10.0, size=shape).astype(np.float32)
    return np.where(np.isfinite(bits) & (rng.random(shape) < 0.5), bits, normal).astype(np.float32)


@_examples(300)
@given(data=st.data())
def test_float_sub_mul_match_numpy_float32(data):
    """TFLM's float SUB and MUL (fused NONE) are numpy's float32 ops, each clamped to [-FLT_MAX, FLT_MAX].

    The clamp is TFLM's fused activation NONE (``[lowest, max]``): it only
    shows where a result overflows to +-inf. Broadcasting the [1, F] constants
    over the batch uses TFLM's broadcast kernels.
    """
    n, batch = data.draw(st.integers(1, 64)), data.draw(st.integers(1, 4))
    x, mean, inv_std = data.draw(float32s((batch, n))), data.draw(float32s(n)), data.draw(float32s(n))
    big = np.finfo(np.float32).max
    with np.errstate(over="ignore"):
        want = np.clip(np.clip(x - mean, -big, big) * inv_std, -big, big)
    got = tfl.run_tflm(_normalize_model(mean, inv_std, batch), x)
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))


def test_float_sub_overflow_becomes_flt_max_not_inf():
    """The one place TFLM's normalisation differs from numpy's: an overflowing SUB, then MUL by < 1."""
    big = np.finfo(np.float32).max
    x, mean, inv_std = np.float32([[3e38, 1.0]]), np.float32([-3e38, 0.5]), np.float32([0.25, 2.0])
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal((x - mean) * inv_std, [[np.inf, 1.0]])
    np.testing.assert_array_equal(tfl.run_tflm(_normalize_model(mean, inv_std, 1), x), [[big * np.float32(0.25), 1.0]])


# --- INT4 filters -------------------------------------------------------------------------------


def _unit_fc(weights: np.ndarray, int4: bool, per_channel: bool = False) -> bytes:
    """FULLY_CONNECTED with unit scales and no bias: one-hot input k reads column k of the filter."""
    n = weights.shape[0]
    return tfl.fully_connected_model(weights, None, input_scale=1.0, input_zero_point=0,
                                     weight_scale=np.ones(n) if per_channel else 1.0, output_scale=1.0,
                                     output_zero_point=0, act_bits=8, int4_weights=int4)


def test_int4_packing_is_low_nibble_first():
    """TFLM unpacks element 2i from the low nibble of byte i, 2i + 1 from the high one, in C order."""
    assert tfl.pack_int4(np.array([1, 2, 3])) == bytes([0x21, 0x03])
    assert tfl.pack_int4(np.array([[-8, 7], [-1, 0]])) == bytes([0x78, 0x0F])
    codes = np.array([[-8, 7, -1], [1, 0, -7], [3, -2, 5]], dtype=np.int8)  # 9 codes: an odd count
    got = tfl.run_tflm(_unit_fc(codes, int4=True), np.eye(3, dtype=np.int8))
    np.testing.assert_array_equal(got.T, codes)


def _int4_op(op: str, act_bits: int, weight_scales) -> bytes:
    """A FULLY_CONNECTED or DEPTHWISE_CONV_2D with a 2-channel INT4 filter, past kwsint's own checks."""
    bld = tfl._Builder()
    shape = (1, 2) if op == "fc" else (1, 1, 1, 2)
    x = bld.activation(shape, act_bits, 1.0, 0, "input")
    y = bld.activation(shape, act_bits, 1.0, 0, "output")
    if op == "fc":
        bld.fully_connected(x, np.ones((2, 2), np.int8), None, weight_scales, y, act_bits, "NONE", "fc", int4=True)
    else:
        bld.depthwise_1x1(x, np.ones(2, np.int8), None, weight_scales, y, act_bits, "NONE", "affine", int4=True)
    return bld.build([x], [y])


def test_tflm_refuses_int4_filters_per_channel_and_for_16x8():
    """Why automatic INT4 skips per-channel dense layers and 16-bit models (measured, not assumed)."""
    ones8, ones16 = np.ones(2, np.int8), np.ones(2, np.int16)
    np.testing.assert_array_equal(tfl.run_tflm(_int4_op("fc", 8, [1.0]), ones8), [2, 2])
    np.testing.assert_array_equal(tfl.run_tflm(_int4_op("affine", 8, [1.0, 2.0]), ones8), [1, 2])
    # TFLM's Prepare fails; its reasons (on stderr): per-channel FULLY_CONNECTED needs a non-INT4
    # filter, "Input type: INT16 with filter type: INT4 not supported", "Hybrid models are not supported".
    for model, x in [(_int4_op("fc", 8, [1.0, 2.0]), ones8), (_int4_op("fc", 16, [1.0]), ones16),
                     (_int4_op("affine", 16, [1.0, 1.0]), ones16)]:
        with pytest.raises(RuntimeError, match="failed to allocate"):
            tfl.run_tflm(model, x)
    with pytest.raises(ValueError, match="per-tensor"):
        _unit_fc(np.ones((2, 2), np.int8), int4=True, per_channel=True)


def _filters(model: bytes) -> dict[str, tuple[str, int]]:
    """Filter tensors of a .tflite file: name -> (TensorType name, bytes in its buffer)."""
    _, schema, _ = tfl._tflm()
    types = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    m = schema.Model.GetRootAs(model, 0)
    sg = m.Subgraphs(0)
    out = {}
    for i in range(sg.TensorsLength()):
        t = sg.Tensors(i)
        name = t.Name().decode()
        if name.endswith("/weights"):
            out[name.removesuffix("/weights")] = (types[t.Type()], m.Buffers(t.Buffer()).DataLength())
    return out


def _expected_filter_type(spec, layer) -> str:
    """What automatic int4_weights writes: INT4 where TFLM runs it (see model_to_tflite)."""
    per_channel_dense = layer.kind == "dense" and layer.per_channel and layer.out_size > 1
    return "INT4" if layer.weight_bits <= 4 and spec.act_bits == 8 and not per_channel_dense else "INT8"


def test_int4_weight_buffer_is_half_the_int8_one():
    spec = generate.random_model((86, 40), weight_bits=(4, 2, 1), param_bits=3, act_bits=8, seed=5,
                                 per_channel=False, window_frames=9, feature_dim=10)
    int4 = _filters(tfl.model_to_tflite(spec, float_input=False))
    int8 = _filters(tfl.model_to_tflite(spec, float_input=False, int4_weights=False))
    assert len(int4) == len(spec.layers) == 5
    for i, layer in enumerate(spec.layers):
        name = f"layer{i}_{layer.kind}"
        assert int4[name][0] == "INT4" and int8[name][0] == "INT8"
        assert int8[name][1] == layer.weights.size  # every size here is even
        assert int4[name][1] * 2 == int8[name][1], name


def test_int4_weights_true_refuses_what_tflm_cannot_run():
    pc = generate.random_model((8,), weight_bits=4, act_bits=8, seed=1, per_channel=True)
    with pytest.raises(ValueError, match=r"layer0_dense: weight_bits 4 .*per-channel"):
        tfl.model_to_tflite(pc, float_input=False, int4_weights=True)
    assert _filters(tfl.model_to_tflite(pc, float_input=False))["layer0_dense"][0] == "INT8"
    s16 = generate.random_model((8,), weight_bits=4, act_bits=16, seed=1, per_channel=False)
    with pytest.raises(ValueError, match=r"layer0_dense: weight_bits 4 .*act_bits is 16"):
        tfl.model_to_tflite(s16, float_input=False, int4_weights=True)
    s8 = generate.random_model((8,), weight_bits=8, act_bits=8, seed=1)
    with pytest.raises(ValueError, match="no layer has weight_bits <= 4"):
        tfl.model_to_tflite(s8, float_input=False, int4_weights=True)


# --- whole models ------------------------------------------------------------------------------


def _windows(spec, rows: int, seed: int) -> np.ndarray:
    fe = spec.frontend
    rng = np.random.default_rng(seed)
    return rng.normal(-5.0, 2.5, (rows, fe.window_frames, fe.feature_dim)).astype(np.float32)


def _check_model(spec, backend: str, seed: int, normalize: bool, rows: int = 3, align: bool = False):
    """TFLM (int and float input, INT4 filters where possible) == reference == the C backend, logits."""
    windows = _windows(spec, rows, seed)
    fe = spec.frontend
    xq = reference.quantize_window(spec, windows)
    want_logits, _ = reference.forward(spec, windows)
    # The quantized input every later step starts from is TFLM's QUANTIZE of the normalised window.
    quantize = tfl.quantize_model(fe.input_size, scale=fe.input_scale, zero_point=fe.input_zero_point,
                                  act_bits=spec.act_bits, batch=rows)
    np.testing.assert_array_equal(tfl.run_tflm(quantize, reference.normalize_window(fe, windows)), xq,
                                  err_msg="TFLM QUANTIZE != reference.quantize_window")

    # Quantized input, the whole batch in one invocation.
    int_model = tfl.model_to_tflite(spec, float_input=False, batch=rows, align=align)
    assert {name: t for name, (t, _) in _filters(int_model).items()} == {
        f"layer{i}_{layer.kind}": _expected_filter_type(spec, layer) for i, layer in enumerate(spec.layers)}
    tflm_q = tfl.run_tflm(int_model, xq)
    np.testing.assert_array_equal(tflm_q, want_logits, err_msg="TFLM (int input) != reference")
    if normalize:
        # Raw selected frames through SUB, MUL and QUANTIZE; the batch broadcasts the [1, F] constants.
        model = tfl.model_to_tflite(spec, float_input=True, normalize=True, batch=rows, align=align)
        tflm_f = tfl.run_tflm(model, reference.select_frames(spec.frontend, windows))
    else:
        # Normalised float input through QUANTIZE, one invocation per row.
        model = tfl.model_to_tflite(spec, float_input=True, align=align)
        tflm_f = tfl.run_tflm(model, reference.normalize_window(spec.frontend, windows))
    np.testing.assert_array_equal(tflm_f, want_logits,
                                  err_msg=f"TFLM (float input, normalize={normalize}) != reference")

    model = kwsint.load(kwsint.write_blob(spec), backend=backend)
    for i in range(rows):
        np.testing.assert_array_equal(model.infer(xq[i]).logits, tflm_q[i], err_msg=f"backend {backend} != TFLM")
        np.testing.assert_array_equal(model.infer(windows[i]).logits, tflm_q[i],
                                      err_msg=f"backend {backend} (float window) != TFLM")


@st.composite
def small_models(draw):
    """Random models of any shape: 0..3 hidden layers, bits 1..8 per layer, int8 or int16 activations."""
    hidden = draw(st.lists(st.integers(1, 48), max_size=3))
    window_frames = draw(st.integers(1, 24))
    return generate.random_model(
        hidden, weight_bits=draw(st.lists(st.integers(1, 8), min_size=len(hidden) + 1, max_size=len(hidden) + 1)),
        param_bits=draw(st.integers(1, 8)), act_bits=draw(st.sampled_from([8, 16])), per_channel=draw(st.booleans()),
        window_frames=window_frames, feature_dim=draw(st.integers(1, 8)),
        frame_stride=draw(st.integers(1, window_frames)), seed=draw(st.integers(0, 2**32 - 1)))


@_examples(50)
@given(spec=small_models(), normalize=st.booleans(), seed=st.integers(0, 2**16))
def test_random_models_match_tflm(backend, spec, normalize, seed):
    _check_model(spec, backend, seed, normalize)


@pytest.mark.parametrize("act_bits", [8, 16])
@_examples(40, shrink=False)
@given(weight_bits=st.lists(st.integers(1, 8), min_size=7, max_size=7), param_bits=st.integers(1, 8),
       per_channel=st.booleans(), normalize=st.booleans(), seed=st.integers(0, 2**16))
def test_random_m2_shape_model_matches_tflm(backend, act_bits, weight_bits, param_bits, per_channel, normalize, seed):
    spec = generate.random_model(PAPER_SIZES, weight_bits=weight_bits, param_bits=param_bits, act_bits=act_bits,
                                 seed=seed, per_channel=per_channel)
    assert spec.frontend.input_size == 540 and spec.layers[-1].out_size == 2
    _check_model(spec, backend, seed, normalize)


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("config", sorted(generate.CONFIGS))
def test_paper_configs_match_tflm(backend, config, normalize):
    _check_model(generate.paper_model(config, seed=3), backend, seed=11, normalize=normalize, rows=2, align=True)


@pytest.mark.parametrize("config", ["M4", "M5", "M6"])
def test_per_tensor_paper_configs_with_int4_filters_match_tflm(backend, config):
    """The paper's sub-8-bit configurations as TFLM runs INT4 dense layers: per-tensor weights."""
    spec = generate.random_model(**generate.CONFIGS[config], seed=4, per_channel=False)
    assert "INT4" in {t for t, _ in _filters(tfl.model_to_tflite(spec, float_input=False)).values()}
    _check_model(spec, backend, seed=12, normalize=True, rows=2, align=True)


# --- what kwsint.interop.tflite refuses ---------------------------------------------------------------


def test_model_to_tflite_rejects_a_clamp_no_fused_activation_gives():
    spec = generate.random_model((8,), weight_bits=4, act_bits=8, seed=1)
    dense = spec.layers[0]
    bad = dataclasses.replace(dense, act_min=dense.act_min + 1)
    spec = dataclasses.replace(spec, layers=(bad,) + spec.layers[1:])
    with pytest.raises(ValueError, match="fused activation"):
        tfl.model_to_tflite(spec, float_input=False)


def test_model_to_tflite_rejects_multipliers_tflm_would_not_derive():
    spec = generate.random_model((8,), weight_bits=4, act_bits=8, seed=1)
    layer = spec.layers[1]
    bad = dataclasses.replace(layer, multiplier=np.asarray(layer.multiplier) + 1)
    spec = dataclasses.replace(spec, layers=(spec.layers[0], bad) + spec.layers[2:])
    with pytest.raises(ValueError, match="multiplier"):
        tfl.model_to_tflite(spec, float_input=False)


def test_model_to_tflite_rejects_normalize_without_float_input_and_non_finite_frontends():
    spec = generate.random_model((8,), weight_bits=4, act_bits=8, seed=1)
    with pytest.raises(ValueError, match="float_input"):
        tfl.model_to_tflite(spec, float_input=False, normalize=True)
    fe = dataclasses.replace(spec.frontend, inv_std=np.full(spec.frontend.feature_dim, np.inf, np.float32))
    with pytest.raises(ValueError, match="frontend inv_std"):
        tfl.model_to_tflite(dataclasses.replace(spec, frontend=fe), float_input=True, normalize=True)


def test_int16_zero_points_are_refused():
    """TFLM's int16 DEPTHWISE_CONV_2D ignores zero points, so kwsint.interop.tflite never writes them."""
    with pytest.raises(ValueError, match="zero point 0"):
        tfl.affine_model(np.ones(3, np.int8), None, input_scale=1.0, input_zero_point=2, weight_scale=1.0,
                         output_scale=1.0, output_zero_point=0, act_bits=16)
