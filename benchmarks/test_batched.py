"""Batch 1 against LiteRT, and the detector's batched path against its per-step path, in one run each.

    .venv/bin/python -m pytest benchmarks/test_batched.py --benchmark-only -s
    KWSINT_BENCH_HOURS=1 .venv/bin/python -m pytest benchmarks/test_batched.py --benchmark-only -s -k detector

* ``test_batch1_against_litert``: the paper's M2 shape (``paper_model("M2")``), one
  window, one thread, one inference per call, each runtime fed what its file
  takes, the feeding timed with it: kwsint's ``Model.infer`` the raw (81, 20)
  float32 window; LiteRT with its default XNNPACK delegate the ``.tflite`` that
  ``kwsint-export`` writes (``model_to_tflite(float_input=True,
  normalize=True)``), which takes the selected raw frames
  (``reference.select_frames``: the slicing is the caller's), then
  ``set_tensor``, ``invoke``, ``get_tensor``. Rounds of ROUND_CALLS calls
  alternate, ROUNDS times; medians per call.
* ``test_infer_call_overhead``: what ``Model.infer`` adds per call to the C work
  it runs (``kws_model_infer``, looped in C by ``Model.time_inference``), in
  alternating rounds.
* ``test_detector_batched_against_per_step``: ``KWSINT_BENCH_HOURS`` (10) hours
  of 10 ms frames (20 random features, written once to a temporary .npy and
  memory-mapped) through two detectors over one M2 model at the frame stride's
  hop, as ``kwsint-run`` pushes: one in blocks of one hop (a live stream: one
  step, so one model run, per push) and one in blocks of ``kwsint-run``'s
  chunk (``DEFAULT_CHUNK_FRAMES``: the steps of a push run in batches). A third
  detector takes blocks of one hop through ``kws_detector_push`` called from
  cffi with its output arrays made once: the per-step path's C work with little
  Python around it, so that the batches' own gain shows apart from the Python
  cost of many small ``Detector.push`` calls. The three alternate over
  SEGMENT_HOURS of the file at a time, each timed in CPU seconds
  (``time.process_time``), and their steps (frames, logits, posteriors,
  smoothed values, detections) must be identical.
"""

import os
import time

import numpy as np
import pytest

import kwsint
from kwsint import reference
from kwsint._kwsint_c import ffi, lib
from kwsint.interop.tflite import model_to_tflite
from kwsint.io.inputs import DEFAULT_CHUNK_FRAMES
from kwsint.train.generate import paper_model

ROUNDS = 15
ROUND_CALLS = 2000
FRAMES_PER_HOUR = 360_000  # 10 ms frames
SEGMENT_HOURS = 0.25
STEP_FIELDS = ("frame", "logits", "posterior_q16", "smoothed_q16", "fired")


def test_batch1_against_litert(benchmark):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    spec = paper_model("M2")
    fe = spec.frontend
    window = np.random.default_rng(0).normal(-5.0, 2.5, (fe.window_frames, fe.feature_dim)).astype(np.float32)
    model = kwsint.load(kwsint.write_blob(spec))
    interp = Interpreter(model_content=model_to_tflite(spec, float_input=True, normalize=True), num_threads=1,
                         experimental_op_resolver_type=OpResolverType.AUTO)  # AUTO: the XNNPACK delegate
    interp.allocate_tensors()
    i, o = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]

    def litert():
        interp.set_tensor(i, reference.select_frames(fe, window)[None])
        interp.invoke()
        return interp.get_tensor(o)

    runners = {f"kwsint ({model.backend})": lambda: model.infer(window), "LiteRT (XNNPACK)": litert}
    seconds = {name: [] for name in runners}

    def alternate():
        for _ in range(ROUNDS):
            for name, run in runners.items():
                run()  # warm: the first call after the other runtime's round
                t0 = time.perf_counter()
                for _ in range(ROUND_CALLS):
                    run()
                seconds[name].append((time.perf_counter() - t0) / ROUND_CALLS)

    benchmark.pedantic(alternate, rounds=1, iterations=1)
    us = {name: float(np.median(s)) * 1e6 for name, s in seconds.items()}
    kws, lite = us.values()
    same = bool(np.array_equal(np.ravel(litert()), model.infer(window).logits))
    benchmark.extra_info.update(config="M2", rounds=ROUNDS, calls_per_round=ROUND_CALLS, median_us_per_call=us,
                                litert_over_kwsint=round(lite / kws, 2), same_logits=same)
    print(f"\nM2, batch 1, median of {ROUNDS} alternating rounds of {ROUND_CALLS} calls: "
          + ", ".join(f"{name} {u:.2f} us" for name, u in us.items())
          + f"; LiteRT / kwsint {lite / kws:.2f} (target >= 2); same logits: {same}")


def test_infer_call_overhead(benchmark):
    """What Model.infer adds per call to the C work it runs (kws_model_infer, timed in C by time_inference)."""
    model = kwsint.load(kwsint.write_blob(paper_model("M2")))
    window = np.random.default_rng(0).normal(-5.0, 2.5, (81, 20)).astype(np.float32)
    t0, c0 = time.perf_counter(), lib.kws_cycle_counter()
    time.sleep(0.5)
    ticks_per_us = (lib.kws_cycle_counter() - c0) / ((time.perf_counter() - t0) * 1e6)
    c_us, py_us = [], []
    infer = model.infer

    def alternate():
        for _ in range(4 * ROUNDS):
            c_us.append(model.time_inference(window, ROUND_CALLS) / ticks_per_us / ROUND_CALLS)
            t = time.perf_counter()
            for _ in range(ROUND_CALLS):
                infer(window)
            py_us.append((time.perf_counter() - t) / ROUND_CALLS * 1e6)

    benchmark.pedantic(alternate, rounds=1, iterations=1)
    figures = {how: (f(c_us), f(py_us)) for how, f in (("min", min), ("median", np.median))}
    benchmark.extra_info.update(config="M2", backend=model.backend, us_per_call={
        how: dict(c=round(c, 3), infer=round(p, 3), overhead=round(p - c, 3)) for how, (c, p) in figures.items()})
    print(f"\nM2 on {model.backend}, {4 * ROUNDS} alternating rounds of {ROUND_CALLS} calls: " + "; ".join(
        f"{how} C {c:.3f} us, Model.infer {p:.3f} us, overhead {p - c:.3f} us" for how, (c, p) in figures.items()))


@pytest.fixture(scope="module")
def features(tmp_path_factory):
    """KWSINT_BENCH_HOURS hours of random 20-feature frames in a .npy, written a block at a time and memory-mapped."""
    hours = float(os.environ.get("KWSINT_BENCH_HOURS", "10"))
    n = int(hours * FRAMES_PER_HOUR)
    path = tmp_path_factory.mktemp("batched") / f"{hours}h.npy"
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, 20))
    rng = np.random.default_rng(0)
    for a in range(0, n, FRAMES_PER_HOUR // 10):
        b = min(n, a + FRAMES_PER_HOUR // 10)
        out[a:b] = rng.normal(-5.0, 2.5, (b - a, 20))
    out.flush()
    del out
    yield np.load(path, mmap_mode="r")
    path.unlink()


def thin_pushes(det: kwsint.Detector, frames: np.ndarray, hop: int) -> dict:
    """All steps of ``frames`` pushed hop frames at a time straight through kws_detector_push."""
    n = len(frames) // hop + 1
    r = dict(frame=np.empty(n, np.int64), logits=np.empty((n, 2), np.int32), posterior_q16=np.empty(n, np.int32),
             smoothed_q16=np.empty(n, np.int32), fired=np.empty(n, np.bool_))
    ptr = {k: ffi.from_buffer(v) for k, v in r.items()}
    out = ffi.new("kws_detector_steps *", dict(
        capacity=1, frame=ffi.cast("uint64_t *", ptr["frame"]), logits=ffi.cast("int32_t *", ptr["logits"]),
        posterior_q16=ffi.cast("int32_t *", ptr["posterior_q16"]),
        smoothed_q16=ffi.cast("int32_t *", ptr["smoothed_q16"]), fired=ffi.cast("uint8_t *", ptr["fired"])))
    ran = ffi.new("size_t *")
    f = ffi.cast("float *", ffi.from_buffer(frames))
    push, dim, det_ptr, k = lib.kws_detector_push, frames.shape[1], det._ptr, 0
    for a in range(0, len(frames), hop):
        if push(det_ptr, f + a * dim, min(hop, len(frames) - a), out, ran) != lib.KWS_OK:
            raise RuntimeError("kws_detector_push failed")
        if ran[0]:  # the next step's slot
            k += 1
            out.frame += 1
            out.logits += 2
            out.posterior_q16 += 1
            out.smoothed_q16 += 1
            out.fired += 1
    return {key: v[:k] for key, v in r.items()}


def test_detector_batched_against_per_step(benchmark, features):
    model = kwsint.load(kwsint.write_blob(paper_model("M2")))
    hop = model.spec.frontend.frame_stride

    def pushes(block):
        def run(det, frames):
            parts = [det.push(frames[a : a + block]) for a in range(0, len(frames), block)]
            return {k: np.concatenate([getattr(p, k) for p in parts]) for k in STEP_FIELDS}
        return run

    paths = {"per step (Detector.push of one hop)": pushes(hop),
             f"batched (Detector.push of {DEFAULT_CHUNK_FRAMES})": pushes(DEFAULT_CHUNK_FRAMES),
             "per step (kws_detector_push of one hop from cffi)": lambda det, frames: thin_pushes(det, frames, hop)}
    detectors = {name: model.detector(hop) for name in paths}  # kwsint-run's defaults: 5 steps, 33 of lockout
    cpu = {name: 0.0 for name in paths}
    steps = mismatches = 0
    segment = int(SEGMENT_HOURS * FRAMES_PER_HOUR)

    def alternate():
        nonlocal steps, mismatches
        for start in range(0, len(features), segment):
            frames = np.ascontiguousarray(features[start : start + segment])  # read from disk outside the timing
            got = []
            for name, run in paths.items():
                t0 = time.process_time()
                got.append(run(detectors[name], frames))
                cpu[name] += time.process_time() - t0
            mismatches += sum(not np.array_equal(g[k], got[0][k]) for g in got[1:] for k in STEP_FIELDS)
            steps += len(got[0]["frame"])

    benchmark.pedantic(alternate, rounds=1, iterations=1)
    hours = len(features) / FRAMES_PER_HOUR
    rate = {name: hours / s for name, s in cpu.items()}
    per_step, batched, thin = rate.values()
    benchmark.extra_info.update(config="M2", hours=hours, hop=hop, steps=steps, cpu_seconds=cpu,
                                hours_per_cpu_second=rate, batched_over_per_step=round(batched / per_step, 2),
                                batched_over_thin_per_step=round(batched / thin, 2), mismatched_fields=mismatches)
    print(f"\n{hours:g} h of frames, M2 at hop {hop} ({steps} steps per path), CPU seconds and hours of audio per CPU "
          "second: " + ", ".join(f"{name} {cpu[name]:.1f} s, {r:.1f} h/s" for name, r in rate.items())
          + f"; batched / per step {batched / per_step:.2f} (target >= 3), batched / per step from cffi "
          f"{batched / thin:.2f}; mismatched fields {mismatches}")
    assert mismatches == 0
