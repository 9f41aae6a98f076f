"""Whole models: every backend equals the reference; streams equal windows."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

import kwsint
from kwsint import reference
from kwsint.engine.backend import MEMORY
from kwsint.train.generate import paper_model, random_model


@st.composite
def small_models(draw):
    hidden = draw(st.lists(st.integers(1, 48), min_size=0, max_size=3))
    bits = draw(st.lists(st.integers(1, 8), min_size=len(hidden) + 1, max_size=len(hidden) + 1))
    window_frames = draw(st.integers(1, 24))
    return random_model(
        hidden, weight_bits=bits, act_bits=draw(st.sampled_from([8, 16])),
        param_bits=draw(st.integers(1, 8)), per_channel=draw(st.booleans()),
        window_frames=window_frames, feature_dim=draw(st.integers(1, 8)),
        frame_stride=draw(st.integers(1, window_frames)), seed=draw(st.integers(0, 2**32 - 1)))


def _windows(spec, n, seed):
    fe = spec.frontend
    rng = np.random.default_rng(seed)
    return rng.normal(-5.0, 3.0, (n, fe.window_frames, fe.feature_dim)).astype(np.float32)


@given(spec=small_models(), seed=st.integers(0, 2**32 - 1), weights=st.sampled_from(["auto", "int8", "packed"]),
       memory=st.sampled_from(MEMORY))
def test_random_models_equal_reference(backend, spec, seed, weights, memory):
    model = kwsint.load(kwsint.write_blob(spec), backend=backend, weights=weights, memory=memory)
    windows = _windows(spec, 4, seed)
    logits, post = reference.forward(spec, windows)
    got = model.infer_batch(windows)
    np.testing.assert_array_equal(got.logits, logits)
    np.testing.assert_array_equal(got.posterior_q16, post)
    np.testing.assert_array_equal(model.quantize_window(windows[0]), reference.quantize_window(spec, windows[0]))
    singles = [model.infer(w) for w in windows]  # the one-window path, its buffers reused call after call
    np.testing.assert_array_equal([r.logits for r in singles], logits)
    assert [r.posterior_q16 for r in singles] == post.tolist()


@pytest.mark.parametrize("config", ["M1", "M2", "M3", "M4", "M5", "M6"])
def test_paper_models_round_trip_and_equal_reference(backend, config):
    spec = paper_model(config)
    blob = kwsint.write_blob(spec)
    assert kwsint.write_blob(kwsint.read_blob(blob)) == blob
    model = kwsint.load(blob, backend=backend)
    windows = _windows(spec, 16, 7)
    logits, post = reference.forward(spec, windows)
    got = model.infer_batch(windows)
    np.testing.assert_array_equal(got.logits, logits)
    np.testing.assert_array_equal(got.posterior_q16, post)
    # The calibrated model does not collapse: outputs differ between windows.
    assert len({tuple(l) for l in logits}) > 1


def test_m2_shape_and_info():
    blob = kwsint.write_blob(paper_model("M2"))
    model = kwsint.load(blob)
    info = model.info()
    assert [l["out_size"] for l in info["layers"]] == [87, 87, 400, 400, 87, 87, 400, 400, 87, 87, 400, 400, 2]
    assert [l["kind"] for l in info["layers"][:2]] == ["dense", "affine"]
    assert info["input_size"] == 540
    dense_macs = 540 * 87 + 87 * 400 * 5 + 400 * 2
    assert info["macs"] == dense_macs + (87 + 400) * 3  # one MAC per affine channel
    # int8 containers, row-major; a backend that packs dense weights (avx2) may pad them
    assert kwsint.load(blob, backend="portable").info()["weight_bytes_in_memory"] == info["macs"]
    assert info["weight_bytes_in_memory"] >= info["macs"]
    n = sum(l["out_size"] for l in info["layers"])
    # biases, multipliers and shifts (int32 each per output channel) and the normalisation vectors
    assert info["model_bytes_in_memory"] >= info["weight_bytes_in_memory"] + 12 * n + 2 * 4 * 20


def test_packed_weights_scale_with_bits():
    sizes = {b: kwsint.load(kwsint.write_blob(random_model(weight_bits=b, param_bits=b))).info()["packed_weight_bytes"]
             for b in (8, 4, 1)}
    assert sizes[4] * 2 == pytest.approx(sizes[8], abs=26)  # one padding byte per layer at most
    assert sizes[1] * 8 == pytest.approx(sizes[8], abs=13 * 8)


def test_infer_accepts_quantized_input_and_single_windows(backend):
    spec = paper_model("M2")
    model = kwsint.load(kwsint.write_blob(spec), backend=backend)
    w = _windows(spec, 1, 3)[0]
    r = model.infer(w)
    assert r.logits.shape == (2,) and 0.0 <= r.posterior <= 1.0
    q = reference.quantize_window(spec, w)
    np.testing.assert_array_equal(model.infer(q).logits, r.logits)


@pytest.mark.parametrize("bad, match", [
    (np.zeros((80, 20), np.float32), "shape"),
    (np.full((81, 20), np.nan, np.float32), "finite"),
    # NaN in frame 0, which the model does not use (stride 3 from frame 2): refused all the same
    (np.where(np.arange(81)[:, None] == 0, np.float32(np.nan), np.zeros((81, 20), np.float32)), "finite"),
    (np.where(np.arange(20) == 19, np.float32(-np.inf), np.zeros((81, 20), np.float32)), "finite"),
    (np.zeros(540, np.int16), "dtype"),
    (np.zeros(539, np.int8), "540"),
])
def test_infer_rejects_bad_windows(bad, match):
    model = kwsint.load(kwsint.write_blob(paper_model("M2")))
    with pytest.raises(ValueError, match=match):
        model.infer(bad)


@given(spec=small_models(), chunks=st.lists(st.integers(1, 7), min_size=1, max_size=12),
       seed=st.integers(0, 2**32 - 1))
def test_stream_equals_windows(backend, spec, chunks, seed):
    fe = spec.frontend
    model = kwsint.load(kwsint.write_blob(spec), backend=backend)
    frames = np.random.default_rng(seed).normal(-5.0, 3.0, (fe.window_frames + sum(chunks), fe.feature_dim))
    frames = frames.astype(np.float32)
    stream = model.stream()
    stream.push(frames[: fe.window_frames])
    end = fe.window_frames
    for c in [0] + chunks:
        stream.push(frames[end : end + c])
        end += c
        window = frames[end - fe.window_frames : end]
        want = reference.forward(spec, window)
        got = stream.infer()
        np.testing.assert_array_equal(got.logits, want[0])
        assert got.posterior_q16 == want[1]
    stream.reset()
    assert stream.frames == 0
    with pytest.raises(ValueError, match="needs"):
        stream.infer()


def test_threads_share_one_model():
    from concurrent.futures import ThreadPoolExecutor

    spec = paper_model("M2")
    model = kwsint.load(kwsint.write_blob(spec))
    windows = _windows(spec, 64, 11)
    want = model.infer_batch(windows).logits
    with ThreadPoolExecutor(4) as pool:
        parts = list(pool.map(lambda i: model.infer_batch(windows[i::4]).logits, range(4)))
        singles = list(pool.map(lambda w: model.infer(w).logits, windows))
    for i, part in enumerate(parts):
        np.testing.assert_array_equal(part, want[i::4])
    np.testing.assert_array_equal(singles, want)


def test_backend_choice(monkeypatch):
    blob = kwsint.write_blob(paper_model("M2"))
    assert "portable" in kwsint.backends()
    assert set(kwsint.backends()) <= set(kwsint.compiled_backends())
    assert kwsint.load(blob).backend == kwsint.backends()[0]  # the fastest usable is the default
    monkeypatch.setenv("KWSINT_BACKEND", "portable")
    assert kwsint.load(blob).backend == "portable"
    monkeypatch.setenv("KWSINT_BACKEND", "no-such-backend")
    with pytest.raises(kwsint.BackendError, match="no-such-backend"):
        kwsint.load(blob)
    assert kwsint.load(blob, backend="portable").backend == "portable"  # the argument beats the variable


def test_time_inference_counts_ticks():
    model = kwsint.load(kwsint.write_blob(paper_model("M2")))
    xq = reference.quantize_window(model.spec, _windows(model.spec, 1, 0)[0])
    assert model.time_inference(xq, 3) > 0
    assert model.time_inference(_windows(model.spec, 1, 0)[0], 3) > 0  # from the raw window
    layers = model.time_layers(xq, 3)
    fused = [p["fused"] == "previous" for p in model.plans()]
    assert len(layers) == 13 and sum(fused) == 6  # each affine layer runs in the dense layer's epilogue
    assert all((t == 0) == f for t, f in zip(layers, fused))


def test_state_bytes():
    model = kwsint.load(kwsint.write_blob(paper_model("M2")))
    info = model.info()
    # a stream holds at least the arena, the ring of 81 quantized frames and the 540-value input vector
    assert info["stream_bytes"] >= info["scratch_bytes"] + 81 * 20 + 540
    one, many = (kwsint.Detector(model, 3, smoothing_steps=w, threshold=0.5, lockout_steps=0) for w in (1, 1024))
    assert one.state_bytes > info["stream_bytes"]
    assert many.state_bytes - one.state_bytes == 1023 * 4  # one int32 posterior per smoothing step


def test_degenerate_random_models_are_valid(backend):
    # A 2-bit affine code of 0 makes the last layer's input constant (a case hypothesis found):
    # the generator must still produce a blob both loaders accept and that runs as the reference says.
    degenerate = 0
    for seed in range(60):
        spec = random_model((1,), weight_bits=1, param_bits=2, window_frames=1, feature_dim=1, frame_stride=1,
                            seed=seed)
        degenerate += any(layer.kind == "affine" and (layer.weights == 0).any() for layer in spec.layers)
        blob = kwsint.write_blob(spec)
        assert kwsint.write_blob(kwsint.read_blob(blob)) == blob, f"seed {seed}: read_blob changed the model"
        model = kwsint.load(blob, backend=backend)
        for w in _windows(spec, 3, seed):
            np.testing.assert_array_equal(model.infer(w).logits, reference.forward(spec, w)[0],
                                          err_msg=f"seed {seed}, backend {backend}")
    assert degenerate > 0, "no seed drew an affine code of 0: the case this test is for"


@pytest.mark.parametrize("act_bits", [8, 16])
def test_long_inputs_quantize_in_several_chunks(backend, act_bits):
    # 81 frames x 40 features at stride 1: 3240 inputs, more than one 1024-float chunk of the front end
    spec = random_model((16,), act_bits=act_bits, feature_dim=40, frame_stride=1, seed=3)
    model = kwsint.load(kwsint.write_blob(spec), backend=backend)
    for w in _windows(spec, 3, 5):
        np.testing.assert_array_equal(model.quantize_window(w), reference.quantize_window(spec, w))
        np.testing.assert_array_equal(model.infer(w).logits, reference.forward(spec, w)[0])


def _packed_bytes(layer, act_bits: int) -> int:
    """Bytes a dense layer's weights take with weights="packed" (kws_weight_storage, KWS_WEIGHTS_PACKED)."""
    n, k = layer.weights.shape
    if act_bits == 8 and layer.weight_bits == 1:
        return n * ((k + 7) // 8)
    if act_bits == 8 and layer.weight_bits <= 4:
        return n * ((k + 1) // 2)
    return n * k


@pytest.mark.parametrize("config", ["M1", "M2", "M3", "M4", "M5", "M6"])
def test_packed_weights_memory_and_results(backend, config):
    spec = paper_model(config)
    blob = kwsint.write_blob(spec)
    packed, plain = kwsint.load(blob, backend=backend, weights="packed"), kwsint.load(blob, backend="portable")
    dense = [l for l in spec.layers if l.kind == "dense"]
    affine = sum(l.weights.size for l in spec.layers if l.kind == "affine")
    info = packed.info()
    if all(l.weight_bits > 4 for l in dense) or spec.act_bits == 16:
        # nothing to pack: the backend's own int8 layout
        assert info["weight_bytes_in_memory"] == kwsint.load(blob, backend=backend).info()["weight_bytes_in_memory"]
    else:
        if backend == "portable":  # other backends pad their packed panels (their own layouts)
            assert info["weight_bytes_in_memory"] == affine + sum(_packed_bytes(l, spec.act_bits) for l in dense)
        # every backend: the memory is what the plans hold, and each packed layer holds at least its codes'
        # bytes and at most panels of 32 rows by K rounded up to 8
        plans = packed.plans()
        assert info["weight_bytes_in_memory"] == sum(p["weight_bytes"] for p in plans)
        for layer, plan in zip(spec.layers, plans):
            if layer.kind == "dense" and layer.weight_bits <= 4:
                n, k = layer.weights.shape
                padded = -(-n // 32) * 32 * -(-k // 8) * 8 * plan["code_bits"] // 8
                assert _packed_bytes(layer, spec.act_bits) <= plan["weight_bytes"] <= padded
        assert info["weight_bytes_in_memory"] < plain.info()["weight_bytes_in_memory"]
    held = {l["weight_storage"] for l in info["layers"]}
    assert held <= {"int8", "4-bit packed", "1-bit packed"} and info["weights"] == "packed"
    for w in _windows(spec, 3, 7):
        np.testing.assert_array_equal(packed.infer(w).logits, reference.forward(spec, w)[0])
    with pytest.raises(ValueError, match="weights: expected one of auto, int8, packed"):
        kwsint.load(blob, weights="nibbles")


@pytest.mark.parametrize("k", [3, 31, 32, 33, 63, 64, 65, 87])
def test_packed_kernels_at_every_tail(backend, k):
    # K around the 32-code steps of the SIMD 4-bit kernels (odd K: a padding nibble) and the 1-bit
    # kernels' groups of 4 and 8, N around 4- and 8-row groups; every backend, against the reference.
    for bits in (4, 1):
        spec = random_model((7, 9, 17), weight_bits=bits, window_frames=k, feature_dim=1, frame_stride=1,
                            seed=k + bits)
        model = kwsint.load(kwsint.write_blob(spec), backend=backend, weights="packed")
        for w in _windows(spec, 3, k):
            np.testing.assert_array_equal(model.infer(w).logits, reference.forward(spec, w)[0])
