"""QAT (kwsint.train.qat): the quantizers, the torch integer simulation, and simulation == engine.

The strongest property here: for random models of every stage, bit width and
activation type, the checkpoint's own integer simulation (what training
evaluates) equals the C engine on every backend, window by window.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

import kwsint
from kwsint import reference
from kwsint.train.generate import random_model
from kwsint.train.qat import integer
from kwsint.train.qat.model import KWSNet, NetConfig, paper_config
from kwsint.train.qat.quantizers import (SIGMA_T, asymmetric_range, distribution_regularizer, fake_quantize, grid_max,
                                         quantize_weights, round_half_away, tanh_uniformity, tanh_weights, weight_codes)

from ..engine.test_model import small_models

torch.set_num_threads(1)  # small tensors: threads only add noise


def _array(seed: int, shape, scale: float = 1.0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).normal(0.0, scale, shape).astype(np.float32))


# --- quantizers ---------------------------------------------------------------------


@given(bits=st.integers(1, 8), seed=st.integers(0, 2**32 - 1), n=st.integers(1, 8), k=st.integers(1, 64))
def test_weight_codes_lie_on_the_grid(bits, seed, n, k):
    w = _array(seed, (n, k))
    w[0, : k // 2] = 0.0  # rows with zeros and, for k == 1, an all-zero row
    codes, scale = weight_codes(w, bits)
    q = grid_max(bits)
    assert torch.equal(codes, torch.round(codes)) and codes.abs().max() <= q
    assert (scale > 0).all()
    if bits == 1:
        assert set(codes.unique().tolist()) <= {-1.0, 1.0}
        assert torch.allclose(scale, w.abs().mean(dim=1).clamp_min(1e-30))
    else:
        nonzero = w.abs().amax(dim=1) > 0
        assert (codes.abs().amax(dim=1)[nonzero] == q).all()  # the largest weight uses the top code
        err = (codes * scale[:, None] - w).abs()
        assert (err <= scale[:, None] * 0.5 * (1 + 1e-6)).all()


def test_round_half_away_matches_the_reference():
    x = np.array([-2.5, -1.5, -0.5, -0.49999997, 0.0, 0.5, 1.5, 2.5, 3.4999998, -1e9 - 0.5], dtype=np.float64)
    np.testing.assert_array_equal(round_half_away(torch.from_numpy(x)).numpy(), reference._round_half_away(x))


@given(bits=st.integers(1, 8), seed=st.integers(0, 2**32 - 1))
def test_tanh_weights_gradient_is_the_straight_through_estimate(bits, seed):
    w = _array(seed, (4, 16), SIGMA_T).double().requires_grad_()
    g = _array(seed + 1, (4, 16)).double()
    (tanh_weights(w, bits) * g).sum().backward()
    torch.testing.assert_close(w.grad, g * (1 - torch.tanh(w.detach()) ** 2), rtol=0, atol=1e-12)
    w2 = w.detach().clone().requires_grad_()
    (quantize_weights(w2, bits) * g).sum().backward()
    assert torch.equal(w2.grad, g)


def test_fake_quantize_passes_gradients_inside_the_range_only():
    x = torch.tensor([-3.0, -0.01, 0.0, 0.3, 1.0, 2.9, 3.5], requires_grad=True)
    y = fake_quantize(x, 3.0 / 255, -128, -128, 127)  # a clipped ReLU [0, 3]
    y.sum().backward()
    assert torch.equal(x.grad, torch.tensor([0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0]))
    codes = torch.round(y.detach() / (3.0 / 255))
    assert torch.allclose(codes * (3.0 / 255), y.detach()) and y.min() == 0 and y.max() <= 3.0 + 1e-6


def test_regularizer_value_and_pull():
    w = (_array(0, (64, 64)) * 2.0 + 0.3).requires_grad_()
    lam_s, lam_m = 0.7, 0.2
    r = distribution_regularizer(w, SIGMA_T, lam_s, lam_m)
    expected = lam_s * (w.detach().std(unbiased=False) - SIGMA_T) ** 2 + lam_m * w.detach().mean() ** 2
    torch.testing.assert_close(r.detach(), expected)
    r.backward()
    step = w.detach() - 0.5 * w.grad / w.grad.abs().max()
    # A gradient step moves the spread toward sigma_t and the mean toward 0.
    assert abs(step.std() - SIGMA_T) < abs(w.detach().std() - SIGMA_T)
    assert abs(step.mean()) < abs(w.detach().mean())
    at_target = torch.from_numpy(np.array([-SIGMA_T, SIGMA_T], dtype=np.float64))
    assert float(distribution_regularizer(at_target, SIGMA_T, 1.0, 1.0)) == pytest.approx(0.0, abs=1e-15)


def test_sigma_t_makes_tanh_weights_nearly_uniform():
    ks = tanh_uniformity(SIGMA_T)
    assert ks < 0.011
    assert ks < tanh_uniformity(SIGMA_T - 0.05) and ks < tanh_uniformity(SIGMA_T + 0.05)


@given(lo=st.floats(-100, 100), width=st.floats(0, 200), act_bits=st.sampled_from([8, 16]))
def test_asymmetric_range_represents_zero_and_covers_the_range(lo, width, act_bits):
    scale, zp = asymmetric_range(lo, lo + width, act_bits)
    qmin, qmax = (-128, 127) if act_bits == 8 else (-32768, 32767)
    assert scale > 0 and qmin <= zp <= qmax
    assert np.float32(scale) == scale
    lo_, hi_ = min(lo, 0.0), max(lo + width, 0.0)
    tol = scale * 0.5 + 1e-9
    assert (qmin - zp) * scale <= lo_ + tol and (qmax - zp) * scale >= hi_ - tol


# --- the torch integer simulation == the numpy spec ------------------------------------------


@given(spec=small_models(), seed=st.integers(0, 2**32 - 1))
def test_torch_integer_path_equals_reference(spec, seed):
    fe = spec.frontend
    windows = np.random.default_rng(seed).normal(-5.0, 3.0, (5, fe.window_frames, fe.feature_dim)).astype(np.float32)
    windows[0, 0, 0] = np.nan  # QUANTIZE's NaN rule
    logits, post = reference.forward(spec, windows)
    got = integer.forward(spec, torch.from_numpy(windows))
    np.testing.assert_array_equal(got.numpy(), logits)
    got_post = integer.posterior_q16(got, spec.posterior_multiplier, spec.posterior_shift)
    np.testing.assert_array_equal(got_post.numpy(), post)


# --- simulation == engine on random QAT models ---------------------------------------------


@st.composite
def qat_models(draw):
    hidden = tuple(draw(st.lists(st.integers(1, 40), min_size=0, max_size=3)))
    bits = tuple(draw(st.lists(st.integers(1, 8), min_size=len(hidden) + 1, max_size=len(hidden) + 1)))
    window_frames = draw(st.integers(1, 16))
    config = NetConfig(hidden, bits, act_bits=draw(st.sampled_from([8, 16])), param_bits=draw(st.integers(2, 8)),
                       window_frames=window_frames, feature_dim=draw(st.integers(1, 6)),
                       frame_stride=draw(st.integers(1, window_frames)),
                       relu_clip=draw(st.sampled_from([1.0, 6.0, 20.0])), per_channel=draw(st.booleans()))
    stage = draw(st.sampled_from(["float", "stage1", "stage2"]))
    seed = draw(st.integers(0, 2**32 - 1))
    model = KWSNet(config, "stage1" if stage == "stage2" else stage)
    g = torch.Generator().manual_seed(seed)
    model.reset_weights(g)
    with torch.no_grad():  # trained-looking parameters: biases, gains of both signs, batch-norm statistics
        for d in model.dense:
            d.bias.normal_(0.0, 0.5, generator=g)
            d.gain.mul_(torch.empty_like(d.gain).uniform_(-2.0, 2.0, generator=g))
        for bn in model.norms:
            bn.weight.normal_(1.0, 0.5, generator=g)
            bn.bias.normal_(0.0, 0.5, generator=g)
            bn.running_mean.uniform_(0.0, config.relu_clip / 2, generator=g)
            bn.running_var.uniform_(0.01, config.relu_clip, generator=g)
    rng = np.random.default_rng(seed)
    windows = rng.normal(-4.0, 3.0, (24, window_frames, config.feature_dim)).astype(np.float32)
    model.set_normalization(windows)
    model.stage = stage
    model.calibrate(torch.from_numpy(windows))
    model.eval()
    return model, windows


@given(case=qat_models())
def test_checkpoint_simulation_equals_engine(backend, case):
    model, windows = case
    spec = model.to_spec()
    engine = kwsint.load(kwsint.write_blob(spec), backend=backend)
    sim = model.integer_logits(torch.from_numpy(windows)).numpy()
    np.testing.assert_array_equal(engine.infer_batch(windows).logits, sim)
    if model.stage == "stage2":  # evaluation mode *is* the integer model, dequantized
        out = spec.layers[-1]
        expected = (sim - out.output_zero_point).astype(np.float32) * np.float32(out.output_scale)
        with torch.no_grad():
            np.testing.assert_array_equal(model(torch.from_numpy(windows)).numpy(), expected)


def test_paper_configs_build():
    for name in ("M0", "M1", "M2", "M3", "M4", "M5", "M6"):
        c = paper_config(name)
        model = KWSNet(c, "stage1")
        assert model.dense[0].weight.shape == (c.sizes[0], 540)
    assert paper_config("M5").weight_bits == (5, 5, 1, 1, 1, 1, 5)
    assert paper_config("M1").act_bits == 16
    with pytest.raises(ValueError, match="unknown config"):
        paper_config("M9")


@pytest.mark.parametrize("field,value,message", [
    ("weight_bits", (9, 8), "weight_bits: expected 1..8"),
    ("weight_bits", (8,), "weight_bits: expected 2 entries"),
    ("act_bits", 4, "act_bits: expected 8 or 16"),
    ("param_bits", 1, "param_bits: expected 2..8"),
    ("sizes", (0,), "sizes: expected"),
    ("relu_clip", float("nan"), "relu_clip"),
])
def test_bad_configs_are_named(field, value, message):
    d = NetConfig((4,), (8, 8)).to_dict()
    d[field] = value
    with pytest.raises(ValueError, match=message):
        NetConfig.from_dict(d)


def test_uncalibrated_model_has_no_spec():
    with pytest.raises(ValueError, match="calibrate"):
        KWSNet(NetConfig((4,), (8, 8)), "float").to_spec()


def test_random_model_helper_still_matches():  # the generate module and the QAT grids agree on the 1-bit grid
    spec = random_model((4,), weight_bits=1, seed=3)
    assert set(np.unique(spec.layers[0].weights)) <= {-1, 1}


def test_a_dead_unit_does_not_flatten_the_batch_norm_grid():
    """A ReLU unit that never fires has running_var ~ 0 and a huge gamma / sqrt(var): it must not set the grid."""
    config = NetConfig((6,), (8, 8), window_frames=5, feature_dim=4, frame_stride=1)
    model = KWSNet(config, "stage1")
    windows = np.random.default_rng(0).normal(0, 1, (64, 5, 4)).astype(np.float32)
    model.set_normalization(windows)
    with torch.no_grad():
        model.dense[0].bias[0] = -1e3  # unit 0 is dead: its clipped ReLU output is always 0
        bn = model.norms[0]
        bn.running_mean.fill_(1.0)
        bn.running_var.fill_(1.0)
        bn.running_mean[0], bn.running_var[0] = 0.0, 0.0
        bn.bias.copy_(torch.linspace(-1, 1, 6))
    model.stage = "stage2"
    model.calibrate(torch.from_numpy(windows))
    affine = model.to_spec().layers[1]
    assert np.all(np.abs(affine.weights[1:]) == 127)  # the live channels keep their full resolution
    assert affine.weights[0] == 127  # the dead one saturates ...
    real_bias = affine.bias[0] * np.float64(affine.input_scale) * np.float64(affine.weight_scale[0])
    # ... and still gives beta
    assert abs(real_bias - (-1.0)) <= np.float64(affine.input_scale) * affine.weight_scale[0]


def test_augmented_windows_are_warped_masked_and_repeatable():
    from kwsint.train.qat.augment import MAX_MASKED_BINS, MAX_MASKED_FRAMES, augment_windows

    x = torch.arange(20, dtype=torch.float32).repeat(64, 81, 1) + torch.randn(64, 81, 20)
    a = augment_windows(x, torch.Generator().manual_seed(3))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.equal(a, augment_windows(x, torch.Generator().manual_seed(3)))
    assert not torch.equal(a, augment_windows(x, torch.Generator().manual_seed(4)))
    # a data-parallel worker's share of the batch gets the whole batch's draws for its rows
    assert torch.equal(a[10:30], augment_windows(x[10:30], torch.Generator().manual_seed(3), first=10, total=64))
    with pytest.raises(ValueError, match="not within a batch of 64"):
        augment_windows(x[:20], torch.Generator().manual_seed(3), first=50, total=64)
    # the warp stretches the bin axis by one factor per window in [0.85, 1.15]: a ramp's bin b reads b * factor
    # (bins 1..16 are never clamped at the top); the cells that do not are masked, all holding one value, and
    # they form at most one band of bins and one span of frames
    ramp = torch.arange(20, dtype=torch.float32).repeat(8, 81, 1)
    for w in augment_windows(ramp, torch.Generator().manual_seed(5)):
        cells = w[:, 1:17]
        factor = (cells / torch.arange(1, 17)).median()
        assert 0.85 - 1e-5 <= factor <= 1.15 + 1e-5
        off = (cells - factor * torch.arange(1, 17)).abs() > 1e-4
        assert not off.any() or cells[off].unique().numel() == 1
        assert off.all(dim=0).sum() <= MAX_MASKED_BINS and off.all(dim=1).sum() <= MAX_MASKED_FRAMES


@pytest.mark.parametrize("n", [1, 2, 7, 1000, 50_001])
def test_quantile_is_torch_quantile_bit_for_bit(n):
    from kwsint.train.qat.model import RANGE_QUANTILE, quantile

    g = torch.Generator().manual_seed(n)
    for decimals in (0, 1, 6):  # rounded values: ties at the ranks
        x = (torch.randn(n, generator=g, dtype=torch.float64) * 5).round(decimals=decimals)
        for q in (0.0, RANGE_QUANTILE, 0.5, 1 - RANGE_QUANTILE, 1.0):
            assert torch.equal(quantile(x, q), torch.quantile(x, q))
