"""The streaming detector: every backend equals reference.detect_stream, however frames are chunked.

Smoothing and lockout themselves are unit-tested on the reference
(tests/engine/test_reference.py); here the C detector must make the same decisions.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import kwsint
from kwsint import reference
from kwsint._kwsint_c import ffi, lib
from kwsint.train.generate import paper_model, random_model

from .test_model import small_models


def _frames(spec, n, seed):
    return np.random.default_rng(seed).normal(-5.0, 3.0, (n, spec.frontend.feature_dim)).astype(np.float32)


def _chunks(draw, n):
    """Push sizes summing to n: one frame at a time, all at once, or random splits (with empty pushes)."""
    mode = draw(st.sampled_from(["single", "all", "random"]))
    if mode == "single":
        return [1] * n or [0]
    if mode == "all":
        return [n]
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=8)))
    return [b - a for a, b in zip([0] + cuts, cuts + [n])]


def _concat(parts):
    return {k: np.concatenate([getattr(p, k) for p in parts]) for k in
            ("frame", "logits", "posterior_q16", "smoothed_q16", "fired")}


def _assert_equal_reference(got, want):
    for key, w in zip(("frame", "logits", "posterior_q16", "smoothed_q16", "fired"), want):
        np.testing.assert_array_equal(got[key], w.reshape(got[key].shape), err_msg=key)


def _examples(n: int):
    """n examples under the "ci" profile (300), scaled with the loaded profile."""
    return settings(max_examples=max(1, round(n * settings().max_examples / 300)))


@_examples(200)
@given(spec=small_models(), data=st.data())
def test_detector_equals_reference(backend, spec, data):
    w = spec.frontend.window_frames
    hop = data.draw(st.integers(1, w + 3), label="hop")
    steps = data.draw(st.integers(0, 40), label="steps")
    tail = data.draw(st.integers(0, (hop if steps else w) - 1), label="frames after the last step")
    n = w + (steps - 1) * hop + tail if steps else tail
    smoothing = data.draw(st.integers(1, 6), label="smoothing")
    lockout = data.draw(st.integers(0, 4), label="lockout")
    frames = _frames(spec, n, data.draw(st.integers(0, 2**32 - 1), label="seed"))
    # A threshold among the smoothed posteriors, so that steps fire and are locked out.
    _, _, _, smoothed, _ = reference.detect_stream(spec, frames, hop, smoothing, 0, lockout)
    pick = data.draw(st.integers(0, 2**16), label="threshold pick")
    threshold = int(np.sort(smoothed)[pick % smoothed.size]) if smoothed.size and pick else pick
    want = reference.detect_stream(spec, frames, hop, smoothing, threshold, lockout)

    model = kwsint.load(kwsint.write_blob(spec), backend=backend)
    det = kwsint.Detector(model, hop, smoothing_steps=smoothing, threshold=threshold / 65536, lockout_steps=lockout)
    assert det.threshold_q16 == threshold
    parts, end = [], 0
    for c in _chunks(data.draw, n):
        part = det.push(frames[end : end + c])
        assert len(part.frame) <= math.ceil(c / hop)  # the documented capacity bound
        parts.append(part)
        end += c
    _assert_equal_reference(_concat(parts), want)

    det.reset()  # as fresh: the same steps again, pushed in one go
    _assert_equal_reference(_concat([det.push(frames)]), want)


@pytest.mark.parametrize("config", ["M2", "M1"])
def test_paper_model_smooths_fires_and_locks_out(backend, config):
    spec = paper_model(config)
    frames = _frames(spec, 81 + 59 * 3, 5)  # 60 steps at hop 3
    _, _, post, smoothed, _ = reference.detect_stream(spec, frames, 3, 4, 0, 5)
    threshold = int(np.median(smoothed))
    want = reference.detect_stream(spec, frames, 3, 4, threshold, 5)
    # The case exercises every rule: smoothing changes values, some steps above threshold are locked out.
    assert (smoothed != post).any() and 0 < want[4].sum() < (smoothed >= threshold).sum()
    det = kwsint.Detector(kwsint.load(kwsint.write_blob(spec), backend=backend), 3, smoothing_steps=4,
                          threshold=threshold / 65536, lockout_steps=5)
    cuts = [0, 1, 80, 81, 82, 100, 150, len(frames)]
    _assert_equal_reference(_concat([det.push(frames[a:b]) for a, b in zip(cuts, cuts[1:])]), want)


def test_step_timing():
    spec = random_model((3,), window_frames=5, feature_dim=2, frame_stride=2, seed=1)
    det = kwsint.load(kwsint.write_blob(spec)).detector(3)
    frames = _frames(spec, 14, 0)
    assert det.push(frames[:4]).frame.tolist() == []  # no full window yet
    assert det.push(frames[4:5]).frame.tolist() == [4]  # the frame that completes the window
    assert det.push(frames[5:14]).frame.tolist() == [7, 10, 13]  # then every hop frames
    assert kwsint.load(kwsint.write_blob(spec)).detector().hop == 2  # default: the frame stride


@pytest.mark.parametrize("kwargs, match", [
    (dict(hop=0), "hop"), (dict(hop=1.5), "hop"), (dict(hop=2**31), "hop"),
    (dict(smoothing_steps=0), "smoothing_steps"), (dict(smoothing_steps=1025), "smoothing_steps"),
    (dict(smoothing_steps=True), "smoothing_steps"),
    (dict(threshold=-0.01), "threshold"), (dict(threshold=1.01), "threshold"),
    (dict(threshold=float("nan")), "threshold"),
    (dict(lockout_steps=-1), "lockout_steps"), (dict(lockout_steps=2**31), "lockout_steps"),
])
def test_detector_rejects_bad_arguments(kwargs, match):
    model = kwsint.load(kwsint.write_blob(random_model((3,), window_frames=5, feature_dim=2, seed=1)))
    with pytest.raises(ValueError, match=match):
        kwsint.Detector(model, **(dict(hop=1, smoothing_steps=1, threshold=0.5, lockout_steps=0) | kwargs))


def test_model_detector_takes_seconds():
    """Model.detector's durations are seconds, in whole steps of hop * 10 ms, with kwsint-run's defaults."""
    model = kwsint.load(kwsint.write_blob(random_model((3,), window_frames=5, feature_dim=2, seed=1)))  # stride 3
    det = model.detector()
    assert (det.hop, det.smoothing_steps, det.lockout_steps, det.threshold_q16) == (3, 5, 33, 32768)
    assert model.detector(1).smoothing_steps == 15 and model.detector(1).lockout_steps == 100
    assert model.detector(smoothing_s=0).smoothing_steps == 1  # no smoothing
    assert model.detector(smoothing_s=0.045).smoothing_steps == 2  # 1.5 steps: halves up
    assert model.detector(smoothing_s=30.72).smoothing_steps == 1024
    assert model.detector(lockout_s=0.99).lockout_steps == 33 and model.detector(lockout_s=0).lockout_steps == 0


@pytest.mark.parametrize("kwargs, match", [
    (dict(smoothing_s=-0.1), r"^smoothing: expected finite seconds >= 0, got -0.1$"),
    (dict(smoothing_s=float("nan")), r"^smoothing: expected finite seconds >= 0, got nan$"),
    (dict(smoothing_s=float("inf")), "smoothing: expected finite seconds"),
    (dict(smoothing_s="0.15"), "smoothing: expected finite seconds"),
    (dict(smoothing_s=31), r"^smoothing: 31 s is 1033 steps of 0.03 s; the detector smooths over at most 1024 "
                           r"steps \(30.72 s\)$"),
    (dict(lockout_s=-1), r"^lockout: expected finite seconds >= 0, got -1$"),
    (dict(lockout_s=1e9), r"^lockout: 1e\+09 s is 33333333333 steps of 0.03 s; at most 2147483647$"),
    (dict(hop=0), "hop"),
])
def test_model_detector_rejects_bad_seconds(kwargs, match):
    model = kwsint.load(kwsint.write_blob(random_model((3,), window_frames=5, feature_dim=2, seed=1)))
    with pytest.raises(ValueError, match=match):
        model.detector(**kwargs)


def test_detector_rejects_bad_frames():
    det = kwsint.load(kwsint.write_blob(random_model((3,), window_frames=5, feature_dim=2, seed=1))).detector()
    with pytest.raises(ValueError, match="shape"):
        det.push(np.zeros((4, 3), np.float32))
    with pytest.raises(ValueError, match="finite"):
        det.push(np.full((4, 2), np.inf, np.float32))


def _c_config(**fields):
    return ffi.new("kws_detector_config *", dict(dict(hop=1, smoothing=1, threshold_q16=0, lockout=0), **fields))


def test_c_create_checks_the_config():
    model = kwsint.load(kwsint.write_blob(random_model((3,), window_frames=5, feature_dim=2, seed=1)))
    out = ffi.new("kws_detector **")
    for bad in (dict(hop=0), dict(smoothing=0), dict(smoothing=lib.KWS_MAX_SMOOTHING + 1), dict(threshold_q16=-1),
                dict(threshold_q16=65537), dict(lockout=-1)):
        assert lib.kws_detector_create(model._ptr, _c_config(**bad), out) == lib.KWS_ERR_ARGUMENT, bad
        assert out[0] == ffi.NULL
    assert lib.kws_detector_create(ffi.NULL, _c_config(), out) == lib.KWS_ERR_ARGUMENT
    assert lib.kws_detector_create(model._ptr, ffi.NULL, out) == lib.KWS_ERR_ARGUMENT
    widest = _c_config(smoothing=lib.KWS_MAX_SMOOTHING, threshold_q16=65536)
    assert lib.kws_detector_create(model._ptr, widest, out) == lib.KWS_OK
    lib.kws_detector_free(out[0])


def test_c_push_checks_capacity_and_consumes_nothing_on_error():
    spec = random_model((3,), window_frames=5, feature_dim=2, frame_stride=2, seed=1)
    model = kwsint.load(kwsint.write_blob(spec))
    out = ffi.new("kws_detector **")
    assert lib.kws_detector_create(model._ptr, _c_config(hop=2, smoothing=3, threshold_q16=20000), out) == 0
    det = ffi.gc(out[0], lib.kws_detector_free)
    frames = _frames(spec, 12, 3)
    fp = ffi.cast("float *", ffi.from_buffer(frames))
    assert lib.kws_detector_steps_for(det, 12) == 4  # at frames 5, 7, 9, 11
    post = np.zeros(4, np.int32)
    steps = ffi.new("kws_detector_steps *", dict(capacity=3, posterior_q16=ffi.cast("int32_t *",
                                                                                     ffi.from_buffer(post))))
    ran = ffi.new("size_t *", 99)
    assert lib.kws_detector_push(det, fp, 12, steps, ran) == lib.KWS_ERR_ARGUMENT
    assert ran[0] == 0 and not post.any()
    assert lib.kws_detector_push(det, ffi.NULL, 1, ffi.NULL, ran) == lib.KWS_ERR_ARGUMENT
    steps.capacity = 4  # the refused pushes consumed nothing: the steps are a fresh detector's
    assert lib.kws_detector_push(det, fp, 12, steps, ran) == lib.KWS_OK and ran[0] == 4
    np.testing.assert_array_equal(post, reference.detect_stream(spec, frames, 2, 3, 20000, 0)[2])
    assert lib.kws_detector_push(det, fp, 0, ffi.NULL, ran) == lib.KWS_OK and ran[0] == 0
    assert lib.kws_detector_push(det, fp, 1, ffi.NULL, ran) == lib.KWS_OK and ran[0] == 1  # no report needs no room
