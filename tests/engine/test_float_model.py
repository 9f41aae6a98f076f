"""The float32 path: every backend equals kwsint.reference bit for bit, op by op and for whole models."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

from kwsint import ops, reference
from kwsint._kwsint_c import ffi, lib
from kwsint.engine import float_model
from kwsint.engine.float_model import FloatLayer, FloatModel, FloatSpec
from kwsint.engine.modelspec import Frontend
from kwsint.train.qat.model import KWSNet, paper_config

# Finite float32 values over many exponents, subnormals and signed zeros included, small enough that
# no sum of a few hundred products overflows.
values = st.one_of(st.floats(-1e3, 1e3, width=32), st.sampled_from([0.0, -0.0, 1e-40, -1e-40, 1.0, -1.0]))
clamps = st.one_of(st.just((-math.inf, math.inf)), st.just((0.0, 6.0)),
                   st.tuples(values, values).map(sorted).map(tuple))


def _same_bits(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype == np.float32
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))


@given(data=st.data(), k=st.integers(1, 70), n=st.integers(1, 13), batches=st.integers(1, 3), clamp=clamps,
       with_bias=st.booleans())
def test_fully_connected_f32_equals_reference(backend, data, k, n, batches, clamp, with_bias):
    x = data.draw(hnp.arrays(np.float32, (batches, k), elements=values))
    w = data.draw(hnp.arrays(np.float32, (n, k), elements=values))
    b = data.draw(hnp.arrays(np.float32, (n,), elements=values)) if with_bias else None
    got = ops.fully_connected_f32(x, w, b, act_min=clamp[0], act_max=clamp[1], backend=backend)
    _same_bits(got, reference.fully_connected_f32(x, w, b, *clamp))


@given(data=st.data(), n=st.integers(1, 40), batches=st.integers(1, 3))
def test_affine_f32_equals_reference(backend, data, n, batches):
    x = data.draw(hnp.arrays(np.float32, (batches, n), elements=values))
    scale, shift = (data.draw(hnp.arrays(np.float32, (n,), elements=values)) for _ in range(2))
    _same_bits(ops.affine_f32(x, scale, shift, backend=backend), reference.affine_f32(x, scale, shift))


def test_summation_order_is_the_specs():
    # 1 + 2^-24 + 2^-24 ... depends on the order: lane sums, then the fixed tree, no FMA.
    k = 16
    x = np.ones(k, np.float32)
    w = np.full((1, k), 2.0**-24, np.float32)
    w[0, 0] = 1.0
    a = np.zeros(8, np.float64)
    for i in range(k):
        a[i % 8] = np.float32(a[i % 8] + np.float32(w[0, i] * x[i]))
    f = np.float32
    tree = f(f(f(a[0] + a[4]) + f(a[2] + a[6])) + f(f(a[1] + a[5]) + f(a[3] + a[7])))
    assert reference.dot_f32(x, w)[0] == tree
    assert tree != np.float32(np.sum(w[0].astype(np.float64)))  # the order matters for these values


def _random_spec(rng: np.random.Generator, window_frames: int, feature_dim: int, stride: int,
                 sizes: list[int]) -> FloatSpec:
    fe = Frontend(window_frames, feature_dim, stride, rng.normal(0, 1, feature_dim).astype(np.float32),
                  rng.uniform(0.5, 2, feature_dim).astype(np.float32), input_scale=1.0, input_zero_point=0)
    layers, width = [], fe.input_size
    for i, size in enumerate(sizes + [2]):
        w = (rng.normal(0, 1, (size, width)) / math.sqrt(width)).astype(np.float32)
        hidden = i < len(sizes)
        layers.append(FloatLayer("dense", w, rng.normal(0, 0.1, size).astype(np.float32),
                                 0.0 if hidden else -math.inf, 6.0 if hidden else math.inf))
        if hidden:
            layers.append(FloatLayer("affine", rng.uniform(0.5, 2, size).astype(np.float32),
                                     rng.normal(0, 0.5, size).astype(np.float32)))
        width = size
    return FloatSpec(fe, tuple(layers))


@pytest.mark.parametrize("shape", [(81, 20, 3, [87, 400, 87]), (7, 3, 2, [5, 9]), (1, 1, 1, [1])])
def test_float_model_equals_reference(backend, shape):
    rng = np.random.default_rng(len(shape[3]))
    spec = _random_spec(rng, *shape)
    model = FloatModel(spec, backend=backend)
    for _ in range(5):
        window = rng.normal(0, 3, shape[:2]).astype(np.float32)
        _same_bits(model.infer(window), reference.forward_f32(spec, window))
    assert len(model.time_layers(window, 2)) == len(spec.layers)
    info = model.info()
    assert info["weight_bytes_in_memory"] == 4 * sum(layer.weights.size for layer in spec.layers)
    biases = 4 * sum(layer.bias.size for layer in spec.layers)
    assert info["model_bytes_in_memory"] >= info["weight_bytes_in_memory"] + biases + 2 * 4 * shape[1]


@pytest.mark.parametrize("shape, frames, hop", [((7, 3, 2, [5, 9]), 40, 3), ((81, 20, 3, [16]), 100, 1),
                                                 ((7, 3, 2, [5]), 7, 5), ((7, 3, 2, [5]), 6, 1)])
def test_infer_steps_equals_infer_on_each_window(backend, shape, frames, hop):
    rng = np.random.default_rng(frames)
    model = FloatModel(_random_spec(rng, *shape), backend=backend)
    x = rng.normal(0, 3, (frames, shape[1])).astype(np.float32)
    step_frames, logits = model.infer_steps(x, hop)
    np.testing.assert_array_equal(step_frames, np.arange(shape[0] - 1, frames, hop))  # a Detector's steps
    want = np.stack([model.infer(x[f - shape[0] + 1 : f + 1]) for f in step_frames]) if len(step_frames) else \
        np.empty((0, 2), np.float32)
    _same_bits(logits, want)


def test_infer_steps_checks_every_length():
    rng = np.random.default_rng(0)
    model = FloatModel(_random_spec(rng, 7, 3, 2, [5]))
    x = rng.normal(0, 1, (20, 3)).astype(np.float32)
    logits, ran = np.zeros((14, 2), np.float32), ffi.new("size_t *")
    scratch = model._scratch()

    def call(frames, n, hop, capacity):
        return lib.kws_float_model_infer_steps(model._ptr, ffi.cast("float *", ffi.from_buffer(frames)), n, hop,
                                               scratch, ffi.cast("float *", ffi.from_buffer(logits)), capacity, ran)

    assert call(x, 20, 1, 14) == lib.KWS_OK and ran[0] == 14
    assert call(x, 20, 1, 13) == lib.KWS_ERR_ARGUMENT and ran[0] == 0  # capacity below the 14 windows
    assert call(x, 20, 0, 14) == lib.KWS_ERR_ARGUMENT
    assert call(x, 2**64 // 3 + 1, 1, 14) == lib.KWS_ERR_ARGUMENT  # frames x feature_dim would wrap
    x[19, 2] = np.inf
    assert call(x, 20, 1, 14) == lib.KWS_ERR_ARGUMENT and ran[0] == 0
    with pytest.raises(ValueError, match="finite"):
        model.infer_steps(x, 1)
    with pytest.raises(ValueError, match=r"frames: expected float shape \(T, 3\)"):
        model.infer_steps(np.zeros((20, 4), np.float32), 1)
    with pytest.raises(ValueError, match="hop: expected an integer >= 1"):
        model.infer_steps(np.zeros((20, 3), np.float32), 0)


def test_from_net_runs_the_torch_float_model(backend):
    net = KWSNet(paper_config("M0"), "float")
    torch.manual_seed(0)
    with torch.no_grad():  # batch norm statistics other than the defaults, so the fold is exercised
        for bn in net.norms:
            bn.running_mean.uniform_(0, 1)
            bn.running_var.uniform_(0.5, 2)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
    net.eval()
    spec = float_model.from_net(net)
    model = FloatModel(spec, backend=backend)
    windows = np.random.default_rng(1).normal(0, 1, (8, 81, 20)).astype(np.float32)
    with torch.no_grad():
        want = net(torch.from_numpy(windows)).numpy()
    got = np.stack([model.infer(w) for w in windows])
    # torch sums in another order, so equal only to float32 rounding, not bit for bit
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    _same_bits(got, reference.forward_f32(spec, windows))


def test_bad_inputs_are_refused():
    rng = np.random.default_rng(0)
    spec = _random_spec(rng, 7, 3, 2, [5])
    model = FloatModel(spec)
    window = np.zeros((7, 3), np.float32)
    window[6, 2] = np.nan
    with pytest.raises(ValueError, match="finite"):
        model.infer(window)
    with pytest.raises(ValueError, match=r"window: expected float shape \(7, 3\)"):
        model.infer(np.zeros((3, 7), np.float32))
    bad = spec.layers[0].weights.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="finite"):
        FloatModel(FloatSpec(spec.frontend, (FloatLayer("dense", bad, spec.layers[0].bias),) + spec.layers[1:]))
    with pytest.raises(ValueError, match="layer 1: expected a dense"):
        FloatModel(FloatSpec(spec.frontend, (spec.layers[0], spec.layers[0])))
    with pytest.raises(ValueError, match="float-stage"):
        float_model.from_net(KWSNet(paper_config("M2"), "stage1"))
    with pytest.raises(ValueError, match="weights: expected shape"):
        ops.fully_connected_f32(np.zeros(4, np.float32), np.zeros((2, 3), np.float32), None)
    with pytest.raises(ValueError, match="act_min <= act_max"):
        ops.fully_connected_f32(np.zeros(3), np.zeros((2, 3)), None, act_min=1.0, act_max=0.0)
