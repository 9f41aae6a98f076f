"""Batched inference: windows run through the layers KWS_BATCH_WINDOWS at a time give what one window at a
time gives, in Model.infer_batch and in the detector (whose pushes batch the steps they complete)."""

import numpy as np
import pytest

import kwsint
from kwsint import reference
from kwsint._kwsint_c import ffi, lib
from kwsint.train.generate import random_model

BATCH = int(lib.KWS_BATCH_WINDOWS)
STEP_FIELDS = ("frame", "logits", "posterior_q16", "smoothed_q16", "fired")


def _spec(act_bits: int):
    # 4-, 1- and 8-bit dense layers (each affine one after them), so that weights="packed" and "auto" run every
    # kernel slot; widths off the SIMD kernels' multiples, so their tails run too.
    return random_model((37, 21), weight_bits=(4, 1, 8), act_bits=act_bits, window_frames=9, feature_dim=4,
                        frame_stride=2, seed=act_bits)


def _frames(spec, n, seed):
    return np.random.default_rng(seed).normal(-5.0, 3.0, (n, spec.frontend.feature_dim)).astype(np.float32)


def _concat(parts):
    return {k: np.concatenate([getattr(p, k) for p in parts]) for k in STEP_FIELDS}


def _assert_same_steps(got, want, what):
    for k in STEP_FIELDS:
        np.testing.assert_array_equal(got[k], want[k], err_msg=f"{what}: {k}")


@pytest.mark.parametrize("weights", ["auto", "int8", "packed"])
@pytest.mark.parametrize("act_bits", [8, 16])
def test_infer_batch_equals_one_window_at_a_time(backend, act_bits, weights):
    spec = _spec(act_bits)
    model = kwsint.load(kwsint.write_blob(spec), backend=backend, weights=weights)
    fe = spec.frontend
    windows = np.random.default_rng(1).normal(-5.0, 3.0, (2 * BATCH + 5, fe.window_frames, fe.feature_dim))
    windows = windows.astype(np.float32)
    singles = [model.infer(w) for w in windows]
    logits = np.array([r.logits for r in singles])
    post = np.array([r.posterior_q16 for r in singles])
    want_logits, want_post = reference.forward(spec, windows)
    np.testing.assert_array_equal(logits, want_logits)
    np.testing.assert_array_equal(post, want_post)
    quantized = np.stack([model.quantize_window(w) for w in windows])
    for count in (0, 1, BATCH - 1, BATCH, BATCH + 1, len(windows)):  # chunks, full and partial
        for inputs in (windows[:count], quantized[:count]):
            got = model.infer_batch(inputs)
            np.testing.assert_array_equal(got.logits, logits[:count], err_msg=f"{count} windows")
            np.testing.assert_array_equal(got.posterior_q16, post[:count], err_msg=f"{count} windows")


@pytest.mark.parametrize("hop", [1, 2, 3, 7])
@pytest.mark.parametrize("weights", ["auto", "int8", "packed"])
@pytest.mark.parametrize("act_bits", [8, 16])
def test_detector_pushes_of_any_size_agree(backend, act_bits, weights, hop):
    spec = _spec(act_bits)
    model = kwsint.load(kwsint.write_blob(spec), backend=backend, weights=weights)
    w = spec.frontend.window_frames
    frames = _frames(spec, w + (2 * BATCH + 4) * hop + hop // 2, hop)  # over two batches of steps, and a tail
    # A threshold among the smoothed posteriors, so that steps fire and others are locked out.
    smoothed = reference.detect_stream(spec, frames, hop, 3, 0, 2)[3]
    threshold = int(np.median(smoothed))
    want = dict(zip(STEP_FIELDS, reference.detect_stream(spec, frames, hop, 3, threshold, 2)))
    want["logits"] = want["logits"].reshape(-1, 2)
    assert 0 < want["fired"].sum() < (want["smoothed_q16"] >= threshold).sum()
    det = kwsint.Detector(model, hop, smoothing_steps=3, threshold=threshold / 65536, lockout_steps=2)

    # Live streaming, frame by frame: one step at most per push.
    _assert_same_steps(_concat([det.push(f) for f in frames]), want, "frame by frame")
    det.reset()
    whole = det.push(frames)  # every step of the file in one push: batches of steps
    _assert_same_steps(_concat([whole]), want, "one push")
    # The model on each step's window, in one batch.
    windows = np.stack([frames[f - w + 1 : f + 1] for f in whole.frame])
    batch = model.infer_batch(windows)
    np.testing.assert_array_equal(batch.logits, whole.logits)
    np.testing.assert_array_equal(batch.posterior_q16, whole.posterior_q16)

    # Two pushes split at every frame of the first window and batch and past them, so that the split falls at
    # every offset of a window and of a hop, and at every step of a batch.
    for cut in range(min(len(frames), w + (BATCH + 1) * hop) + 1):
        det.reset()
        _assert_same_steps(_concat([det.push(frames[:cut]), det.push(frames[cut:])]), want, f"split at {cut}")
    # Blocks of one hop (the per-step path of a live stream), and around a batch's worth of steps.
    for block in sorted({hop, BATCH * hop - 1, BATCH * hop, BATCH * hop + 1, 5}):
        det.reset()
        parts = [det.push(frames[a : a + block]) for a in range(0, len(frames), block)]
        _assert_same_steps(_concat(parts), want, f"blocks of {block}")


def test_c_batch_arguments_and_sizes():
    for act_bits in (8, 16):
        model = kwsint.load(kwsint.write_blob(_spec(act_bits)))
        info = model.info()
        # The one-window arena (two buffers of the widest layer) for each window of a batch.
        assert info["batch_scratch_bytes"] == BATCH * info["scratch_bytes"]
        # A detector holds its stream, a batch arena and a batch of input vectors, allocated once at create.
        det = model.detector(1)
        elem = act_bits // 8
        assert det.state_bytes >= (info["stream_bytes"] + info["batch_scratch_bytes"]
                                   + BATCH * info["input_size"] * elem)
        logits, post = ffi.new("int32_t[2]"), ffi.new("int32_t *")
        assert lib.kws_model_infer_batch_q(model._ptr, ffi.NULL, 0, ffi.NULL, ffi.NULL, ffi.NULL) == lib.KWS_OK
        x = ffi.new("int8_t[]", info["input_size"] * elem)
        scratch = ffi.new("int64_t[]", info["batch_scratch_bytes"] // 8)
        assert lib.kws_model_infer_batch_q(ffi.NULL, x, 1, scratch, logits, post) == lib.KWS_ERR_ARGUMENT
        assert lib.kws_model_infer_batch_q(model._ptr, ffi.NULL, 1, scratch, logits, post) == lib.KWS_ERR_ARGUMENT
        assert lib.kws_model_infer_batch_q(model._ptr, x, 1, ffi.NULL, logits, post) == lib.KWS_ERR_ARGUMENT
        assert lib.kws_model_infer_batch_q(model._ptr, x, 1, scratch, ffi.NULL, post) == lib.KWS_ERR_ARGUMENT
        assert lib.kws_model_infer_batch_q(model._ptr, x, 1, scratch, logits, ffi.NULL) == lib.KWS_OK
