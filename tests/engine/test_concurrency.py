"""One model shared by many threads gives exactly what one thread gives.

A loaded Model is read-only after load; each Stream and Detector owns its
state, and Model.infer keeps its arena per thread. cffi releases the GIL
around every C call, so the threads below really do run the C code at the same
time (benchmarks/threads.py measures how that scales).
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

import kwsint
from kwsint import default_model
from kwsint.train.generate import random_model

THREADS = 8


def _run_threads(work, inputs: list) -> list:
    """work(input) on THREADS threads at once, started together; results in input order."""
    results: list = [None] * len(inputs)
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def worker(t: int) -> None:
        try:
            start.wait()
            for i in range(t, len(inputs), THREADS):
                results[i] = work(inputs[i])
        except BaseException as e:  # noqa: BLE001 - re-raised in the main thread
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        raise errors[0]
    return results


def _streams(model: kwsint.Model, count: int, seed: int) -> list[tuple[np.ndarray, int]]:
    """Different inputs: random frames (some loud enough to saturate), each with its own push size."""
    rng = np.random.default_rng(seed)
    dim = model.spec.frontend.feature_dim
    return [(rng.normal(0.0, rng.uniform(0.5, 4.0), (int(rng.integers(200, 1200)), dim)).astype(np.float32),
             int(rng.integers(1, 300))) for _ in range(count)]


def _detect(model: kwsint.Model, item: tuple[np.ndarray, int]) -> tuple[np.ndarray, ...]:
    frames, chunk = item
    det = kwsint.Detector(model, model.spec.frontend.frame_stride, smoothing_steps=5, threshold=0.3,
                          lockout_steps=7)
    parts = [det.push(frames[i:i + chunk]) for i in range(0, len(frames), chunk)]
    return tuple(np.concatenate([getattr(p, k) for p in parts])
                 for k in ("frame", "logits", "posterior_q16", "smoothed_q16", "fired"))


def _models(backend: str) -> list[kwsint.Model]:
    shipped = kwsint.load(default_model.path("M4.kwsq"), backend=backend)
    int16 = random_model((24, 16), weight_bits=8, act_bits=16, window_frames=9, feature_dim=5, frame_stride=2, seed=3)
    packed = random_model((40, 17), weight_bits=4, act_bits=8, window_frames=7, feature_dim=6, frame_stride=3, seed=4)
    return [shipped, kwsint.load(kwsint.write_blob(int16), backend=backend),
            kwsint.load(kwsint.write_blob(packed), backend=backend, weights="packed")]


def test_detectors_on_many_threads_equal_one_thread(backend):
    for n, model in enumerate(_models(backend)):
        items = _streams(model, 3 * THREADS, seed=n)
        want = [_detect(model, item) for item in items]
        for _ in range(2):  # twice: threads interleave differently
            got = _run_threads(lambda item: _detect(model, item), items)
            for w, g in zip(want, got):
                for a, b in zip(w, g):
                    np.testing.assert_array_equal(a, b)


def test_window_calls_on_many_threads_equal_one_thread(backend):
    """Model.infer's per-thread arenas, infer_batch's per-call arena and the streams, interleaved at random."""
    for n, model in enumerate(_models(backend)):
        rng = np.random.default_rng(100 + n)
        windows = rng.normal(0.0, 2.0, (64, *model.window_shape)).astype(np.float32)
        want = model.infer_batch(windows)

        def infer(i: int) -> tuple[np.ndarray, int]:
            if i % 3 == 0:
                r = model.infer_batch(windows[i:i + 1])
                return r.logits[0], int(r.posterior_q16[0])
            if i % 3 == 1:
                s = model.stream()
                s.push(windows[i])
                r = s.infer()
            else:
                r = model.infer(windows[i])
            return r.logits, r.posterior_q16

        got = _run_threads(infer, list(range(len(windows))) * 4)
        for i, (logits, post) in enumerate(got):
            np.testing.assert_array_equal(logits, want.logits[i % len(windows)])
            assert post == want.posterior_q16[i % len(windows)]


@pytest.mark.parametrize("config", default_model.CONFIGS)
def test_shipped_models_share_one_load_across_threads(config):
    model = kwsint.load(f"default:{config}")
    items = _streams(model, THREADS, seed=7)
    want = [_detect(model, item) for item in items]
    got = _run_threads(lambda item: _detect(model, item), items)
    for w, g in zip(want, got):
        for a, b in zip(w, g):
            np.testing.assert_array_equal(a, b)


def test_graph_streams_on_many_threads_equal_one_thread(backend):
    """A streaming graph (blob kind 1) shared by THREADS threads, each invoking its own streams, with resets."""
    from .test_graph import _streaming_graph
    model = kwsint.load(kwsint.write_blob(_streaming_graph(2)), backend=backend)
    rng = np.random.default_rng(7)
    items = [rng.integers(-128, 128, (int(rng.integers(20, 120)), 3, 8)).astype(np.int8) for _ in range(2 * THREADS)]

    def run(xs: np.ndarray) -> np.ndarray:
        stream = model.stream()
        out = []
        for k, x in enumerate(xs):
            if k == len(xs) // 2:
                stream.reset()
            out.append(stream.invoke(x))
        return np.stack(out)

    want = [run(xs) for xs in items]
    for _ in range(2):
        for w, g in zip(want, _run_threads(run, items)):
            np.testing.assert_array_equal(g, w)
