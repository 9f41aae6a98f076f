"""Streaming graphs (docs/arithmetic.md 11): kwsint.reference's ops and ReferenceStream against the TFLM
interpreter, and the structural rules ``validate`` enforces.

The TFLM tests build each case as a GraphSpec, write it as a .tflite with kwsint.interop.tflite_graph (model_editor)
and require TFLM's integers to equal ReferenceStream's, invoke by invoke. TFLM derives every multiplier and clamp
from the float scales in the file, so the derivations are under test too.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from kwsint import reference
from kwsint.engine.graph import (Concat, Conv, DepthwiseConv, FullyConnected, GraphSpec, Logistic, Quant, Quantize,
                                 ReferenceStream, Slice, State, Tensor, Window, validate)
from kwsint.engine.limits import BIAS_LIMIT, MAX_DIM


def _examples(n: int):
    """n examples under the "ci" profile (300 examples), scaled with the loaded profile: each builds a model."""
    return settings(max_examples=max(1, round(n * settings().max_examples / 300)))


def _builders():
    """kwsint.interop.tflite_graph, imported where TFLM is needed."""
    from kwsint.interop import tflite_graph as tflite_builders
    return tflite_builders


def _f32(x: float) -> float:
    return float(np.float32(x))


# --- hand-worked reference values --------------------------------------------------------------------------------


@pytest.mark.parametrize("frames, kernel, stride, dilation, padding, want", [
    (5, 5, 3, 1, "valid", (1, 0)),      # the microWakeWord input conv
    (7, 5, 3, 1, "valid", (1, 0)),      # (7 - 5) // 3 + 1
    (8, 5, 3, 1, "valid", (2, 0)),
    (9, 3, 1, 4, "valid", (1, 0)),      # dilation 4: the kernel spans 9 frames
    (1, 1, 1, 1, "same", (1, 0)),       # the 1x1 convs
    (5, 4, 1, 1, "same", (5, 1)),       # total padding 3: 1 before, 2 after
    (5, 3, 2, 1, "same", (3, 1)),       # out ceil(5 / 2) = 3, total (3 - 1) * 2 + 3 - 5 = 2
    (4, 3, 4, 1, "same", (1, 0)),       # total max(0 + 3 - 4, 0) = 0
    (6, 5, 1, 2, "same", (6, 4)),       # span 9, total 8
])
def test_conv_output_frames_follow_compute_padding_height_width(frames, kernel, stride, dilation, padding, want):
    assert reference.conv_output_frames(frames, kernel, stride, dilation, padding) == want


def test_conv_output_frames_refuses_a_valid_kernel_longer_than_the_input():
    with pytest.raises(ValueError, match="needs as many input frames"):
        reference.conv_output_frames(4, 3, 1, 2, "valid")


def test_same_padding_reads_the_zero_point_outside_the_input():
    # One channel, weights 1, 2, 3, zp_in 10, multiplier 1.0: each output is the plain weighted sum of x - 10 over
    # the taps inside the input.
    x = np.array([[11], [12], [13]], np.int8)
    y = reference.temporal_conv(x, np.array([[[1], [2], [3]]], np.int8), np.zeros(1, np.int32), stride=1,
                                dilation=1, padding="same", input_zero_point=10, output_zero_point=0,
                                multiplier=2**30, shift=1, act_min=-128, act_max=127)
    np.testing.assert_array_equal(y[:, 0], [2 * 1 + 3 * 2, 1 * 1 + 2 * 2 + 3 * 3, 1 * 2 + 2 * 3])


def test_logistic_parameters_of_the_shipped_models():
    """The values the research note read from TFLM's Prepare on okay_nabu, hey_jarvis, alexa and hey_mycroft."""
    assert reference.logistic_parameters(0.094740279) == (1627625600, 24, 120)
    assert reference.logistic_parameters(0.178955153) == (1537213056, 25, 60)
    assert reference.logistic_parameters(0.189555809) == (1628272000, 25, 60)
    assert reference.logistic_parameters(0.221857265) == (1905739392, 25, 60)


@pytest.mark.parametrize("scale, ok", [
    (2.0**-28, True), (_f32(2.0**-28 * (1 - 2.0**-24)), False), (2.0**35, False),
    (_f32(2.0**35 * (1 - 2.0**-24)), True), (8.0, True), (1e-9, False), (0.0, False), (math.inf, False),
])
def test_logistic_refuses_the_input_scales_where_tflm_is_undefined(scale, ok):
    if ok:
        assert reference.logistic_table(scale, 0).dtype == np.int8
    else:
        with pytest.raises(ValueError):
            reference.logistic_parameters(scale)


def test_logistic_with_a_zero_radius_saturates_every_input():
    # s_in >= 8: input_left_shift >= 31, radius 0; v <= 0 is -128 (the first comparison wins), v > 0 is 127.
    table = reference.logistic_table(8.0, 3)
    np.testing.assert_array_equal(table, np.where(np.arange(-128, 128) - 3 <= 0, -128, 127))


def test_quantize_int8_to_uint8_with_equal_scales_flips_the_sign_bit():
    x = np.arange(-128, 128, dtype=np.int8)
    m, s = reference.requantize_multiplier(1 / 256, 1 / 256)
    assert (m, s) == (2**30, 1)
    y = reference.requantize_codes(x, input_zero_point=-128, output_zero_point=0, multiplier=m, shift=s, dtype="uint8")
    np.testing.assert_array_equal(y, (x.view(np.uint8) ^ 0x80))


@pytest.mark.parametrize("kind, scale, zp, want", [
    ("none", 0.1, 5, (-128, 127)), ("relu", 0.1, 5, (5, 127)), ("relu", 0.1, -128, (-128, 127)),
    ("relu6", 0.1, -100, (-100, -40)), ("relu6", 0.01, 0, (0, 127)), ("relu_n1_to_1", 0.25, 10, (6, 14)),
    ("relu", 0.5, 200, (200, 255)),
])
def test_activation_range(kind, scale, zp, want):
    assert reference.activation_range(kind, scale, zp, "uint8" if zp > 127 else "int8") == want


def test_activation_range_refuses_a_bound_beyond_int32():
    with pytest.raises(ValueError, match="leaves int32"):
        reference.activation_range("relu6", 1e-10, 0)


# --- single-op graphs against TFLM ------------------------------------------------------------------------------


@st.composite
def outputs(draw, pow2: bool):
    """(s_in, s_out, zp_out, act_min, act_max): any zero point and fused activation. A RELU6 or RELU_N1_TO_1 output
    gets a scale that spreads [0, 6] or [-1, 1] over about 256 codes (x 2^[-1, 1]), as a calibrated model's would;
    ``pow2``: every scale a power of two."""
    kind = draw(st.sampled_from(reference.ACTIVATIONS))
    zp_out = draw(st.integers(-128, 127))
    if pow2:
        s_in, s_out = 2.0 ** draw(st.integers(-12, 2)), 2.0 ** draw(st.integers(-12, 2))
    else:
        s_in, s_out = _f32(2 ** draw(st.floats(-12, 2))), _f32(2 ** draw(st.floats(-12, 2)))
    if kind in ("relu6", "relu_n1_to_1"):
        u = draw(st.integers(-9, -6) if pow2 else st.floats(-1, 1))
        s_out = 2.0**u if pow2 else _f32((6 if kind == "relu6" else 2) / 255 * 2**u)
    act_min, act_max = reference.activation_range(kind, s_out, zp_out)
    return s_in, s_out, zp_out, act_min, act_max


def _calibrated_weight_scales(rng, acc: np.ndarray, s_in: float, s_out: float, zp_out: int, act_min: int,
                              act_max: int, per_channel: bool, pow2: bool, log2_gain: float = 0.0) -> np.ndarray:
    """float32 weight scales that bring the accumulators ``acc`` (rows, channels) into the clamp around the output
    zero point, as a calibrated quantizer would (most outputs inside, a few saturating); so the multipliers spread
    over [2^30, 2^31) with the shifts the accumulators need. ``pow2``: powers of two (with power-of-two s_in and
    s_out, multipliers of exactly 2^30 and rounding ties). ``log2_gain`` > 0 overdrives them: most outputs
    saturate, and the shifts reach the left shifts whose ``acc * 2^shift`` wraps in int32."""
    headroom = max(act_max - zp_out, zp_out - act_min, 4)
    peak = np.maximum(np.abs(acc).max(axis=0), 1).astype(np.float64)
    if not per_channel:
        peak = np.array([peak.max()])
    effective = rng.uniform(0.25, 1.05, peak.size) * headroom / peak * 2.0**log2_gain
    ws = effective * s_out / s_in
    if pow2:
        ws = 2.0 ** np.round(np.log2(ws))
    return ws.astype(np.float32)


_gains = st.one_of(st.just(0.0), st.just(0.0), st.just(0.0), st.floats(0, 24))  # log2 of _calibrated_weight_scales' gain


def _int8(rng, shape, extreme: bool = False) -> np.ndarray:
    if extreme:
        return rng.choice(np.array([-128, 127], np.int8), size=shape)
    return rng.integers(-128, 128, size=shape).astype(np.int8)


def _bias(rng, kind: str, sums: np.ndarray) -> np.ndarray:
    n = sums.shape[1]
    if kind == "centre":  # a trained layer's bias keeps its outputs around the zero point
        spread = int(np.abs(sums).max()) + 1
        b = -np.median(sums, axis=0).astype(np.int64) + rng.integers(-spread // 4, spread // 4 + 1, n)
    elif kind == "limit":
        b = rng.choice(np.array([-1, 1]), n) * (BIAS_LIMIT[8] - rng.integers(0, 4, n))
    else:
        b = np.zeros(n, np.int64)
    return np.clip(b, -BIAS_LIMIT[8], BIAS_LIMIT[8]).astype(np.int32)


def _single_op_graph(x_tensor: Tensor, out_tensor: Tensor, op) -> GraphSpec:
    return GraphSpec(tensors=(x_tensor, out_tensor), states=(), ops=(op,), input=0, output=1)


def _equal_to_tflm(spec: GraphSpec, inputs: list[np.ndarray], **builder_options) -> None:
    """ReferenceStream and TFLM give the same codes for each input in turn."""
    b = _builders()
    tflm = b.TflmStream(b.graph_to_tflite(spec, **builder_options), spec)
    ref = ReferenceStream(spec)
    for k, x in enumerate(inputs):
        want, got = ref.invoke(x), tflm.invoke(x)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want, err_msg=f"invoke {k}")


@st.composite
def conv_cases(draw, depthwise: bool):
    """A Conv or DepthwiseConv graph and inputs: kernel 1..25, stride 1..4, dilation 1..3, VALID or SAME, 1..128
    channels, any zero points, per-channel or per-tensor scales, any fused activation."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kernel = draw(st.one_of(st.integers(1, 25), st.sampled_from([1, 3, 5])))
    stride = draw(st.integers(1, 4))
    dilation = draw(st.sampled_from([1, 1, 1, 2, 3]))
    padding = draw(st.sampled_from(reference.PADDINGS))
    cin = draw(st.one_of(st.integers(1, 16), st.integers(1, 128)))
    cout = cin if depthwise else draw(st.one_of(st.integers(1, 16), st.integers(1, 128)))
    span = (kernel - 1) * dilation + 1
    frames = draw(st.integers(span if padding == "valid" else 1, span + 8))
    zp_in = draw(st.integers(-128, 127))
    pow2 = draw(st.booleans())
    s_in, s_out, zp_out, act_min, act_max = draw(outputs(pow2))
    extreme = draw(st.sampled_from([False, False, False, True]))
    weights = _int8(rng, (kernel, cin) if depthwise else (cout, kernel, cin), extreme)
    inputs = [_int8(rng, (frames, cin), extreme) for _ in range(3)]
    windows = np.concatenate([reference.conv_windows(x, kernel, stride, dilation, padding, zp_in) for x in inputs])
    centred = windows.astype(np.int64) - zp_in
    sums = ((centred * weights.astype(np.int64)).sum(axis=1) if depthwise else
            centred.reshape(len(centred), -1) @ weights.reshape(cout, -1).astype(np.int64).T)
    bias = _bias(rng, draw(st.sampled_from(["zero", "centre", "centre", "centre", "limit"])), sums)
    per_channel = draw(st.booleans())
    ws = _calibrated_weight_scales(rng, sums + bias, s_in, s_out, zp_out, act_min, act_max, per_channel, pow2,
                                   draw(_gains))
    out_frames, _ = reference.conv_output_frames(frames, kernel, stride, dilation, padding)
    op = (DepthwiseConv if depthwise else Conv)(
        input=0, weights=weights, bias=bias, weight_scale=ws, stride=stride, dilation=dilation, padding=padding,
        act_min=act_min, act_max=act_max, out=1)
    spec = _single_op_graph(Tensor(frames, cin, Quant(s_in, zp_in)), Tensor(out_frames, cout, Quant(s_out, zp_out)),
                            op)
    return spec, inputs


@pytest.mark.tflm
@_examples(120)
@given(conv_cases(depthwise=False))
def test_conv_matches_tflm(case):
    _equal_to_tflm(*case)


@pytest.mark.tflm
@_examples(120)
@given(conv_cases(depthwise=True))
def test_depthwise_conv_matches_tflm(case):
    _equal_to_tflm(*case)


@st.composite
def fully_connected_cases(draw):
    """A FullyConnected graph on a frames x channels input (flattened by TFLM, or after a RESHAPE), per-tensor or
    per-channel, and inputs."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    frames, channels = draw(st.integers(1, 16)), draw(st.one_of(st.integers(1, 16), st.integers(1, 128)))
    n = draw(st.one_of(st.integers(1, 4), st.integers(1, 64)))
    zp_in = draw(st.integers(-128, 127))
    pow2 = draw(st.booleans())
    s_in, s_out, zp_out, act_min, act_max = draw(outputs(pow2))
    extreme = draw(st.sampled_from([False, False, False, True]))
    weights = _int8(rng, (n, frames * channels), extreme)
    inputs = [_int8(rng, (frames, channels), extreme) for _ in range(3)]
    sums = np.stack([(x.reshape(-1).astype(np.int64) - zp_in) @ weights.astype(np.int64).T for x in inputs])
    bias = _bias(rng, draw(st.sampled_from(["zero", "centre", "centre", "centre", "limit"])), sums)
    per_channel = draw(st.booleans())
    # A per-tensor FULLY_CONNECTED fails TFLM's Prepare unless |s_in * s_w - s_bias| / s_out <= 0.02, and the bias
    # scale in the file is a float32 (relative error up to 2^-25): so its effective scale stays below 2^16.
    log2_gain = draw(_gains) if per_channel else min(draw(_gains), 8.0)
    ws = _calibrated_weight_scales(rng, sums + bias, s_in, s_out, zp_out, act_min, act_max, per_channel, pow2,
                                   log2_gain)
    op = FullyConnected(input=0, weights=weights, bias=bias, weight_scale=ws, act_min=act_min, act_max=act_max,
                        out=1)
    spec = _single_op_graph(Tensor(frames, channels, Quant(s_in, zp_in)), Tensor(1, n, Quant(s_out, zp_out)), op)
    return spec, inputs, draw(st.booleans())


@pytest.mark.tflm
@_examples(100)
@given(fully_connected_cases())
def test_fully_connected_matches_tflm(case):
    spec, inputs, fc_reshape = case
    _equal_to_tflm(spec, inputs, fc_reshape=fc_reshape)


def _all_codes() -> np.ndarray:
    """Every int8 code, as one frame of 256 channels."""
    return np.arange(-128, 128, dtype=np.int8).reshape(1, 256)


def _logistic_graph(scale: float, zero_point: int) -> GraphSpec:
    return _single_op_graph(Tensor(1, 256, Quant(scale, zero_point)), Tensor(1, 256, Quant(1 / 256, -128)),
                            Logistic(input=0, out=1))


def _logistic_cases() -> list[tuple[float, int]]:
    """The four shipped models' inputs; random float32 scales, log-uniform over the accepted range [2^-28, 2^35):
    130 below 16 (from 8 on, the radius is 0 and every input saturates) and 20 above, and 100 in the models'
    decade; powers of two; the edges of the radius."""
    rng = np.random.default_rng(18)
    cases = [(_f32(s), zp) for s, zp in ((0.094740279, 36), (0.178955153, 30), (0.189555809, 24), (0.221857265, 34))]
    cases += [(_f32(2 ** rng.uniform(-28, 4)), int(rng.integers(-128, 128))) for _ in range(130)]
    cases += [(_f32(2 ** rng.uniform(4, 35)), int(rng.integers(-128, 128))) for _ in range(20)]
    cases += [(_f32(10 ** rng.uniform(-2, 0.5)), int(rng.integers(-128, 128))) for _ in range(100)]
    cases += [(2.0**e, zp) for e in range(-28, 35, 3) for zp in (0, -128)]
    cases += [(_f32(s), zp) for s in (7.999, 8.0, 8.001, 2.0**-28 * 1.5, 2.0**35 * (1 - 2.0**-24)) for zp in (0, 127)]
    return cases


@pytest.mark.tflm
def test_logistic_matches_tflm_on_every_input():
    b = _builders()
    for scale, zp in _logistic_cases():
        spec = _logistic_graph(scale, zp)
        got = b.TflmStream(b.graph_to_tflite(spec), spec).invoke(_all_codes())
        np.testing.assert_array_equal(got[0], reference.logistic_table(scale, zp), err_msg=f"scale {scale!r}, zp {zp}")


@st.composite
def quantize_cases(draw):
    """QUANTIZE int8 -> int8 or uint8 of all 256 codes, scales of any ratio the shift limit allows."""
    dtype = draw(st.sampled_from(["int8", "uint8"]))
    lo, hi = reference.CODE_RANGES[dtype]
    s_in = _f32(2 ** draw(st.floats(-12, 4)))
    # s_in / s_out up to 2^29.9 (shift 30): from 2^24 on, (x - zp) * 2^shift wraps in int32, and TFLM wraps too.
    s_out = _f32(s_in * 2 ** draw(st.one_of(st.floats(-29.9, 9), st.integers(-29, 9))))
    x = Tensor(1, 256, Quant(s_in, draw(st.integers(-128, 127))))
    out = Tensor(1, 256, Quant(s_out, draw(st.integers(lo, hi))), dtype)
    return _single_op_graph(x, out, Quantize(input=0, out=1))


@pytest.mark.tflm
@_examples(60)
@given(quantize_cases())
def test_quantize_matches_tflm(spec):
    _equal_to_tflm(spec, [_all_codes()])


@pytest.mark.tflm
@pytest.mark.parametrize("per_channel", [True, False])
@_examples(40)
@given(seed=st.integers(0, 2**32 - 1))
def test_conv_multipliers_match_tflm_at_rounding_boundaries(per_channel, seed):
    """TFLM's CONV_2D multipliers where they show: 256 consecutive accumulators around a rounding boundary per
    channel. A 1x1 conv of weight 1 over 256 frames x = -128..127 (zero point 0) gives acc = x + bias[c], with
    bias[c] where the reference's requantization steps from k to k + 1; a multiplier a few units off in its last
    bits (a float32 instead of a double product of the scales) moves that boundary and fails here."""
    rng = np.random.default_rng(seed)
    n = 48
    s_in, s_out = _f32(2 ** rng.uniform(-12, 2)), _f32(2 ** rng.uniform(-12, 2))
    ws = (2.0 ** rng.uniform(-30, -23, n if per_channel else 1) * s_out / s_in).astype(np.float32)
    mult, shift = reference.dense_multipliers(s_in, np.broadcast_to(ws, (n,)), s_out)
    step = mult * 2.0 ** (shift.astype(np.float64) - 31)  # output units per accumulator unit
    k = np.round(rng.uniform(-1, 1, n) * np.minimum(100, 2**30 * step))
    bias = np.clip(np.round((k + 0.5) / step), -(2**30), 2**30).astype(np.int32)
    op = Conv(input=0, weights=np.ones((n, 1, 1), np.int8), bias=bias, weight_scale=ws, stride=1, dilation=1,
              padding="same", act_min=-128, act_max=127, out=1)
    spec = _single_op_graph(Tensor(256, 1, Quant(s_in, 0)), Tensor(256, n, Quant(s_out, 0)), op)
    _equal_to_tflm(spec, [_all_codes().reshape(256, 1)])


@pytest.mark.tflm
def test_quantize_of_the_shipped_models_matches_tflm():
    spec = _single_op_graph(Tensor(1, 256, Quant(1 / 256, -128)), Tensor(1, 256, Quant(1 / 256, 0), "uint8"),
                            Quantize(input=0, out=1))
    _equal_to_tflm(spec, [_all_codes()])


# --- a streaming graph against TFLM -----------------------------------------------------------------------------


def _streaming_graph(seed: int = 1) -> GraphSpec:
    """A small microWakeWord-like graph with every op and every variant of the data movement: 3 new frames of 8
    channels -> window (state 0, 2 frames) -> conv 5x1 stride 3 VALID, RELU -> window (state 1, 4 frames) -> two
    channel halves cropped to 3 and 5 frames -> depthwise convs 3x1 and 5x1 -> concat -> 1x1 conv SAME, RELU6 ->
    window (state 2, 3 frames) -> FC on the flattened 4 frames -> LOGISTIC -> QUANTIZE to uint8. Each state's init
    differs from its zero point, so TFLM's reset() (zero points) and its first invoke (init) differ."""
    rng = np.random.default_rng(seed)

    def q(scale, zp):
        return Quant(_f32(scale), zp)

    def linear_args(n: int, weight_shape, weight_scale_n: int):
        return dict(weights=rng.integers(-127, 128, weight_shape).astype(np.int8),
                    bias=rng.integers(-2000, 2000, n).astype(np.int32),
                    weight_scale=(2.0 ** rng.uniform(-9, -6, weight_scale_n)).astype(np.float32))

    q_in, q_c1, q_dw, q_c2, q_fc = q(0.10196079, -128), q(0.5, -128), q(0.4, 3), q(0.05, -128), q(0.09474, 36)
    tensors = (
        Tensor(3, 8, q_in),                   # 0 input
        Tensor(5, 8, q_in),                   # 1 window 0
        Tensor(1, 16, q_c1),                  # 2 conv
        Tensor(5, 16, q_c1),                  # 3 window 1
        Tensor(3, 8, q_c1),                   # 4 channels 0..7, last 3 frames
        Tensor(5, 8, q_c1),                   # 5 channels 8..15, all 5 frames
        Tensor(1, 8, q_dw),                   # 6 dw 3x1
        Tensor(1, 8, q_dw),                   # 7 dw 5x1
        Tensor(1, 16, q_dw),                  # 8 concat
        Tensor(1, 12, q_c2),                  # 9 1x1 conv
        Tensor(4, 12, q_c2),                  # 10 window 2
        Tensor(1, 4, q_fc),                   # 11 fc
        Tensor(1, 4, q(1 / 256, -128)),       # 12 logistic
        Tensor(1, 4, q(1 / 256, 0), "uint8"),  # 13 quantize
    )
    states = (State(2, 8, q_in, rng.integers(-128, 128, (2, 8)).astype(np.int8)),
              State(4, 16, q_c1, np.full((4, 16), 7, np.int8)),
              State(3, 12, q_c2, rng.integers(-128, 128, (3, 12)).astype(np.int8)))
    relu6 = reference.activation_range("relu6", q_c2.scale, q_c2.zero_point)
    ops = (
        Window(state=0, input=0, out=1),
        Conv(input=1, **linear_args(16, (16, 5, 8), 16), stride=3, dilation=1, padding="valid", act_min=-128,
             act_max=127, out=2),
        Window(state=1, input=2, out=3),
        Slice(input=3, frames=3, channel_start=0, channels=8, out=4),
        Slice(input=3, frames=5, channel_start=8, channels=8, out=5),
        DepthwiseConv(input=4, **linear_args(8, (3, 8), 8), stride=1, dilation=1, padding="valid", act_min=-128,
                      act_max=127, out=6),
        DepthwiseConv(input=5, **linear_args(8, (5, 8), 1), stride=1, dilation=1, padding="valid", act_min=-128,
                      act_max=127, out=7),
        Concat(inputs=(6, 7), out=8),
        Conv(input=8, **linear_args(12, (12, 1, 16), 12), stride=1, dilation=1, padding="same", act_min=relu6[0],
             act_max=relu6[1], out=9),
        Window(state=2, input=9, out=10),
        FullyConnected(input=10, **linear_args(4, (4, 48), 1), act_min=-128, act_max=127, out=11),
        Logistic(input=11, out=12),
        Quantize(input=12, out=13),
    )
    return GraphSpec(tensors=tensors, states=states, ops=ops, input=0, output=13)


def test_reference_stream_starts_from_init_and_resets_to_zero_points():
    spec = _streaming_graph()
    stream = ReferenceStream(spec)
    for state, codes in zip(spec.states, stream.states()):
        np.testing.assert_array_equal(codes, state.init)
    x = np.arange(24, dtype=np.int8).reshape(3, 8)
    stream.invoke(x)
    np.testing.assert_array_equal(stream.states()[0], x[1:])  # the state keeps the newest 2 frames of [state ; x]
    stream.reset()
    for state, codes in zip(spec.states, stream.states()):
        np.testing.assert_array_equal(codes, np.full((state.frames, state.channels), state.quant.zero_point))


@pytest.mark.tflm
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("options", [
    {},
    dict(input_rank3=True, fc_reshape=True, channel_slices="split_v"),  # as the shipped models write it
])
def test_streaming_graph_matches_tflm_invoke_by_invoke(options, seed):
    """Every tensor of every invoke (TFLM's kPreserveAllTensors), through reset()s, over 200 invokes."""
    b = _builders()
    spec = _streaming_graph(seed)
    indices: dict[int, int] = {}
    model = b.graph_to_tflite(spec, tensor_indices=indices, **options)
    tflm = b.TflmStream(model, spec, preserve_all_tensors=True)
    ref = ReferenceStream(spec)
    rng = np.random.default_rng(3)
    outputs = []
    for k in range(200):
        if k in (60, 61, 150):  # twice in a row, and once more later
            tflm.reset()
            ref.reset()
        x = (rng.integers(-128, 128, (3, 8)) if k % 50 < 40 else np.full((3, 8), 127 if k % 2 else -128)).astype(np.int8)
        values = ref.trace(x)
        got = tflm.invoke(x)
        np.testing.assert_array_equal(got, values[spec.output], err_msg=f"invoke {k}")
        for i, want in values.items():
            np.testing.assert_array_equal(tflm.tensor(indices[i]).reshape(want.shape), want,
                                          err_msg=f"invoke {k}, tensors[{i}]")
        outputs.append(got)
    outputs = np.concatenate(outputs)
    assert len(np.unique(outputs)) > 20  # the graph's output moves: a wrong tensor upstream would show


# --- validate -------------------------------------------------------------------------------------------------


def _replace_op(spec: GraphSpec, k: int, **changes):
    ops = list(spec.ops)
    ops[k] = dataclasses.replace(ops[k], **changes)
    return dataclasses.replace(spec, ops=tuple(ops))


def _replace_tensor(spec: GraphSpec, i: int, **changes):
    tensors = list(spec.tensors)
    tensors[i] = dataclasses.replace(tensors[i], **changes)
    return dataclasses.replace(spec, tensors=tuple(tensors))


def _replace_state(spec: GraphSpec, i: int, **changes):
    states = list(spec.states)
    states[i] = dataclasses.replace(states[i], **changes)
    return dataclasses.replace(spec, states=tuple(states))


def _ops(spec: GraphSpec, ops):
    return dataclasses.replace(spec, ops=tuple(ops))


BAD_GRAPHS = {
    # tensors and states
    "zero frames": (lambda g: _replace_tensor(g, 2, frames=0), r"tensors\[2\]\.frames"),
    "too many channels": (lambda g: _replace_tensor(g, 0, channels=MAX_DIM + 1), r"tensors\[0\]\.channels"),
    "int16 tensor": (lambda g: _replace_tensor(g, 2, dtype="int16"), r"tensors\[2\]\.dtype"),
    "float64 scale": (lambda g: _replace_tensor(g, 2, quant=Quant(0.1, -128)), r"tensors\[2\]\.quant\.scale"),
    "zero scale": (lambda g: _replace_tensor(g, 2, quant=Quant(0.0, -128)), r"tensors\[2\]\.quant\.scale"),
    "zero point beyond int8": (lambda g: _replace_tensor(g, 2, quant=Quant(0.5, 128)),
                               r"tensors\[2\]\.quant\.zero_point"),
    "uint8 zero point": (lambda g: _replace_tensor(g, 13, quant=Quant(1 / 256, -1)),
                         r"tensors\[13\]\.quant\.zero_point"),
    "state init shape": (lambda g: _replace_state(g, 1, init=np.zeros((3, 16), np.int8)), r"states\[1\]\.init"),
    "state init dtype": (lambda g: _replace_state(g, 1, init=np.zeros((4, 16), np.int16)), r"states\[1\]\.init"),
    "state never read": (lambda g: dataclasses.replace(g, states=g.states + g.states[:1]), r"states\[3\]: no Window"),
    "uint8 input": (lambda g: _replace_tensor(g, 0, dtype="uint8", quant=Quant(_f32(0.10196079), 0)), r"input: "),
    "output out of range": (lambda g: dataclasses.replace(g, output=14), r"output: "),
    "output is the input": (lambda g: dataclasses.replace(g, output=0), r"output: "),
    # the order of writes and reads
    "read before written": (lambda g: _ops(g, g.ops[1:2] + g.ops[:1] + g.ops[2:]),
                            r"ops\[0\] \(Conv\)\.input: tensors\[1\] is read before"),
    "written twice": (lambda g: _replace_op(g, 4, out=4), r"ops\[4\] \(Slice\)\.out: tensors\[4\] is already written"),
    "tensor never written": (lambda g: dataclasses.replace(g, tensors=g.tensors + g.tensors[-1:]),
                             r"tensors\[14\]: no op writes it"),
    "input id out of range": (lambda g: _replace_op(g, 11, input=99), r"ops\[11\] \(Logistic\)\.input"),
    "op of another kind": (lambda g: _ops(g, g.ops[:-1] + ("QUANTIZE",)), r"ops\[12\]: an op"),
    # windows
    "two windows on a state": (lambda g: _replace_op(g, 9, state=1), r"ops\[9\] \(Window\)\.state: states\[1\] is"),
    "state out of range": (lambda g: _replace_op(g, 0, state=3), r"ops\[0\] \(Window\)\.state"),
    "window frames": (lambda g: _replace_state(g, 0, frames=3, init=np.zeros((3, 8), np.int8)),
                      r"ops\[0\] \(Window\)\.out: 3 state \+ 3 input = 6 frames expected, got 5"),
    "window channels": (lambda g: _replace_state(g, 0, channels=9, init=np.zeros((2, 9), np.int8)),
                        r"ops\[0\] \(Window\)\.out: state, input and output channels differ"),
    "window quantization": (lambda g: _replace_state(g, 0, quant=Quant(0.5, -128)),
                            r"ops\[0\] \(Window\)\.out: state, input and output quantization differ"),
    # slices and concatenation
    "slice too many frames": (lambda g: _replace_op(g, 3, frames=6), r"ops\[3\] \(Slice\)\.frames"),
    "slice past the channels": (lambda g: _replace_op(g, 4, channel_start=9),
                                r"ops\[4\] \(Slice\)\.channels: an integer in \[1, 7\]"),
    "slice output shape": (lambda g: _replace_op(g, 3, frames=2), r"ops\[3\] \(Slice\)\.out: 2 x 8 expected"),
    "slice requantizes": (lambda g: _replace_tensor(g, 4, quant=Quant(0.25, -128)), r"ops\[3\] \(Slice\)\.out: "
                                                                                    "quantization"),
    "concat frames": (lambda g: _replace_op(g, 7, inputs=(6, 4)), r"ops\[7\] \(Concat\)\.inputs: tensors\[4\]"),
    "concat channels": (lambda g: _replace_op(g, 7, inputs=(6,)), r"ops\[7\] \(Concat\)\.out: 8 channels expected"),
    "concat of nothing": (lambda g: _replace_op(g, 7, inputs=()), r"ops\[7\] \(Concat\)\.inputs: at least one"),
    # convolutions
    "conv output frames": (lambda g: _replace_op(g, 1, padding="same"),
                           r"ops\[1\] \(Conv\)\.out: 2 frames expected from 5 input frames, kernel 5, stride 3, "
                           r"dilation 1, same padding; got 1"),
    "conv kernel longer than the input": (lambda g: _replace_op(g, 1, dilation=2),
                                          r"ops\[1\] \(Conv\)\.input: a 'valid' kernel spanning 9 frames"),
    "conv stride 0": (lambda g: _replace_op(g, 1, stride=0), r"ops\[1\] \(Conv\)\.stride"),
    "conv padding": (lambda g: _replace_op(g, 1, padding="causal"), r"ops\[1\] \(Conv\)\.padding"),
    "conv weights dtype": (lambda g: _replace_op(g, 1, weights=g.ops[1].weights.astype(np.int16)),
                           r"ops\[1\] \(Conv\)\.weights: a numpy int8 array"),
    "conv weights channels": (lambda g: _replace_op(g, 1, weights=g.ops[1].weights[:, :, :7]),
                              r"ops\[1\] \(Conv\)\.weights: shape \(16, 5, 8\) expected"),
    "conv weights rank": (lambda g: _replace_op(g, 1, weights=g.ops[1].weights[0]), r"ops\[1\] \(Conv\)\.weights"),
    "conv kernel 0": (lambda g: _replace_op(g, 8, weights=np.zeros((12, 0, 16), np.int8)),
                      r"ops\[8\] \(Conv\)\.weights: a kernel"),
    "bias dtype": (lambda g: _replace_op(g, 1, bias=g.ops[1].bias.astype(np.int64)), r"ops\[1\] \(Conv\)\.bias"),
    "bias beyond the limit": (lambda g: _replace_op(g, 1, bias=np.full(16, BIAS_LIMIT[8] + 1, np.int32)),
                              r"ops\[1\] \(Conv\)\.bias: \|bias\| exceeds"),
    "weight scale shape": (lambda g: _replace_op(g, 1, weight_scale=np.ones(3, np.float32)),
                           r"ops\[1\] \(Conv\)\.weight_scale"),
    "weight scale float64": (lambda g: _replace_op(g, 1, weight_scale=np.ones(16)), r"ops\[1\] \(Conv\)\.weight_scale"),
    "negative weight scale": (lambda g: _replace_op(g, 1, weight_scale=-np.ones(16, np.float32)),
                              r"ops\[1\] \(Conv\)\.weight_scale: every scale"),
    "nan weight scale": (lambda g: _replace_op(g, 1, weight_scale=np.full(1, np.nan, np.float32)),
                         r"ops\[1\] \(Conv\)\.weight_scale: every scale"),
    "shift too large": (lambda g: _replace_op(g, 1, weight_scale=np.full(1, 2.0**40, np.float32)),
                        r"ops\[1\] \(Conv\)\.weight_scale: the scales need a requantization shift"),
    "act_min below int8": (lambda g: _replace_op(g, 1, act_min=-129), r"ops\[1\] \(Conv\)\.act_min"),
    "act_max below act_min": (lambda g: _replace_op(g, 1, act_min=5, act_max=4), r"ops\[1\] \(Conv\)\.act_max"),
    "act_max beyond int8": (lambda g: _replace_op(g, 1, act_max=128), r"ops\[1\] \(Conv\)\.act_max"),
    "depthwise channels": (lambda g: _replace_tensor(g, 6, channels=9),
                           r"ops\[5\] \(DepthwiseConv\)\.out: 8 channels \(depth multiplier 1\)"),
    "depthwise weights": (lambda g: _replace_op(g, 5, weights=np.zeros((3, 7), np.int8)),
                          r"ops\[5\] \(DepthwiseConv\)\.weights: shape \(3, 8\)"),
    # fully connected, logistic, quantize
    "fc weights": (lambda g: _replace_op(g, 10, weights=np.zeros((4, 47), np.int8)),
                   r"ops\[10\] \(FullyConnected\)\.weights: shape \(4, 48\)"),
    "fc output frames": (lambda g: _replace_tensor(_replace_tensor(_replace_tensor(g, 11, frames=2), 12, frames=2),
                                                   13, frames=2), r"ops\[10\] \(FullyConnected\)\.out: 1 frame"),
    "logistic output quantization": (lambda g: _replace_tensor(g, 12, quant=Quant(1 / 128, -128)),
                                     r"ops\[11\] \(Logistic\)\.out: quantization"),
    "logistic input scale": (lambda g: _replace_tensor(g, 11, quant=Quant(2.0**-29, 36)),
                             r"ops\[11\] \(Logistic\)\.input: LOGISTIC input scale"),
    "logistic output shape": (lambda g: _replace_tensor(_replace_tensor(g, 12, channels=5), 13, channels=5),
                              r"ops\[11\] \(Logistic\)\.out: the input's 1 x 4"),
    "uint8 written by a conv": (lambda g: _replace_tensor(g, 2, dtype="uint8", quant=Quant(0.5, 0)),
                                r"ops\[1\] \(Conv\)\.out: tensors\[2\] is uint8"),
    "uint8 read by an op": (lambda g: dataclasses.replace(g, tensors=g.tensors + (g.tensors[12],), output=14,
                                                          ops=g.ops + (Logistic(input=13, out=14),)),
                            r"ops\[13\] \(Logistic\)\.input: tensors\[13\] is uint8"),
    "quantize shift": (lambda g: _replace_tensor(g, 13, quant=Quant(2.0**-40, 0)),
                       r"ops\[12\] \(Quantize\)\.out: the scales need a requantization shift of 33"),
}


def test_the_streaming_graph_is_valid():
    validate(_streaming_graph())


@pytest.mark.parametrize("name", BAD_GRAPHS)
def test_validate_refuses(name):
    """Each broken rule is refused at construction, naming its place."""
    make, message = BAD_GRAPHS[name]
    with pytest.raises(ValueError, match=message):
        make(_streaming_graph())



@pytest.mark.parametrize("kind", ["conv", "depthwise", "fc"])
def test_validate_refuses_more_products_per_output_than_the_accumulator_bound(kind):
    """K * Cin (conv), K (depthwise) and the flattened input (FC) are at most MAX_DIM (docs/arithmetic.md 5.2)."""
    q = Quant(0.5, 0)
    common = dict(input=0, bias=np.zeros(1, np.int32), weight_scale=np.full(1, 0.01, np.float32), act_min=-128,
                  act_max=127, out=1)
    if kind == "conv":  # a 2-frame kernel over (MAX_DIM / 2 + 1) channels
        x = Tensor(2, MAX_DIM // 2 + 1, q)
        op = Conv(weights=np.zeros((1, 2, x.channels), np.int8), stride=1, dilation=1, padding="valid", **common)
    elif kind == "depthwise":  # a kernel longer than the input, with SAME padding
        x = Tensor(1, 1, q)
        op = DepthwiseConv(weights=np.zeros((MAX_DIM + 1, 1), np.int8), stride=1, dilation=1, padding="same",
                           **common)
    else:
        x = Tensor(2, MAX_DIM // 2 + 1, q)
        op = FullyConnected(weights=np.zeros((1, 2 * x.channels), np.int8), **common)
    depth = op.weights[0].size if kind != "depthwise" else MAX_DIM + 1
    with pytest.raises(ValueError, match=rf"ops\[0\] \({type(op).__name__}\)\.weights: {depth} products per output "
                                         "exceed"):
        _single_op_graph(x, Tensor(1, 1, q), op)
