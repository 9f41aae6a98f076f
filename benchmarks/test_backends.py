"""Every usable backend on the M2-shaped model: time and counter ticks per inference.

    .venv/bin/python -m pytest benchmarks/test_backends.py --benchmark-only -s

The inference loop runs in C (``Model.time_inference``), so no Python call
overhead is in these figures. Ticks are the x86 time-stamp counter (a constant
rate, not core clock cycles) or the aarch64 virtual counter; time is wall
clock. ``test_backend_ratios`` times all backends alternately in one run, so
machine noise hits them alike, and prints each one's speed relative to
portable.
"""

import dataclasses
import importlib.util
import time
from pathlib import Path

import numpy as np
import pytest

import kwsint
from kwsint import reference
from kwsint.train.generate import paper_model, random_model

REPEATS = 200
LARGE_REPEATS = 20  # inferences per round of the 1024 x 1024 layer


@pytest.fixture(scope="module")
def m2():
    spec = paper_model("M2")
    window = np.random.default_rng(0).normal(-5.0, 2.5, (81, 20)).astype(np.float32)
    return kwsint.write_blob(spec), reference.quantize_window(spec, window)


@pytest.mark.parametrize("backend", kwsint.backends())
def test_m2_inference(benchmark, m2, backend):
    blob, xq = m2
    model = kwsint.load(blob, backend=backend)
    model.time_inference(xq, REPEATS)  # warm up
    ticks = []
    benchmark.pedantic(lambda: ticks.append(model.time_inference(xq, REPEATS)), rounds=15, iterations=1)
    per_inference_us = benchmark.stats.stats.median / REPEATS * 1e6
    benchmark.extra_info.update(
        backend=backend, config="M2", macs=model.info()["macs"], repeats_per_round=REPEATS,
        median_us_per_inference=round(per_inference_us, 3),
        median_ticks_per_inference=float(np.median(ticks)) / REPEATS,
    )


def test_backend_ratios(benchmark, m2):
    blob, xq = m2
    models = {b: kwsint.load(blob, backend=b) for b in kwsint.backends()}
    seconds = {b: [] for b in models}
    ticks = {b: [] for b in models}

    def alternate():
        for _ in range(15):  # each round times every backend once
            for b, model in models.items():
                t0 = time.perf_counter()
                ticks[b].append(model.time_inference(xq, REPEATS))
                seconds[b].append(time.perf_counter() - t0)

    benchmark.pedantic(alternate, rounds=1, iterations=1)
    base = np.median(seconds["portable"])
    benchmark.extra_info["speedup_vs_portable"] = {b: round(float(base / np.median(seconds[b])), 3) for b in models}
    print(f"\nM2 ({models['portable'].info()['macs']} MACs), median of 15 alternating rounds of {REPEATS}:")
    print(f"{'backend':>20} {'us/inference':>13} {'ticks/inference':>16} {'x portable':>11}")
    for b in models:
        med = np.median(seconds[b])
        print(f"{b:>20} {med / REPEATS * 1e6:13.2f} {np.median(ticks[b]) / REPEATS:16.0f} {base / med:11.2f}")


def _report():
    spec = importlib.util.spec_from_file_location("kws_report", Path(__file__).with_name("report.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("backend", kwsint.backends())
def test_configs(benchmark, backend):
    """The float32 M0 and every paper configuration on each backend (benchmarks/report.py's table):
    ticks per inference from the raw window, per layer, MACs per tick, the counter's million ticks per second
    at one inference every 10 ms, projected Cortex-A53 cycles, and memory and size in bytes."""
    report = _report()
    rows = report.paper_rows(backend=backend)
    window = np.random.default_rng(0).normal(-5.0, 2.5, (81, 20)).astype(np.float32)
    benchmark.pedantic(lambda: report.measure(rows, window, REPEATS, 15), rounds=1, iterations=1)
    report.describe(rows, report._projector())
    benchmark.extra_info.update(backend=backend, repeats=REPEATS, rounds=15, rows=report.json_rows(rows))
    print(f"\nmedian of 15 alternating rounds of {REPEATS}:")
    print(report.markdown(rows, backend, None))
    m0, m2 = rows[0], rows[2]
    print(f"M2 int8 against the float32 M0: {m0['ticks'] / m2['ticks']:.2f}x fewer ticks, "
          f"{m0['weight_bytes'] / m2['weight_bytes']:.2f}x less weight memory")


def test_acc16(benchmark):
    """int16 against int32 accumulation on the default backend, the same models with and without their
    exported int16 claims (docs/arithmetic.md 5.6): ticks per inference and in the dense layers."""
    window = np.random.default_rng(0).normal(-5.0, 2.5, (81, 20)).astype(np.float32)
    pairs = {}
    for c in ("M3", "M4", "M5", "M6"):
        spec = paper_model(c)
        plain = dataclasses.replace(spec, layers=tuple(dataclasses.replace(l, acc16_block=0) for l in spec.layers))
        pairs[c] = (kwsint.load(kwsint.write_blob(plain)), kwsint.load(kwsint.write_blob(spec)))
    inputs = {c: m[0].quantize_window(window) for c, m in pairs.items()}
    ticks = {(c, v): [] for c in pairs for v in (0, 1)}

    def alternate():
        for _ in range(15):
            for c, models in pairs.items():
                for v, model in enumerate(models):
                    ticks[c, v].append(model.time_inference(inputs[c], REPEATS) / REPEATS)

    benchmark.pedantic(alternate, rounds=1, iterations=1)
    rows = {}
    for c, (plain, claimed) in pairs.items():
        dense = [l["kind"] == "dense" for l in claimed.info()["layers"]]
        layer = [m.time_layers(inputs[c], REPEATS) for m in (plain, claimed)]
        dense_ticks = [sum(t for t, d in zip(lt, dense) if d) / REPEATS for lt in layer]
        rows[c] = dict(blocks=sorted({l["acc16_block"] for l in claimed.info()["layers"] if l["kind"] == "dense"}),
                       int32_ticks=float(np.median(ticks[c, 0])), int16_ticks=float(np.median(ticks[c, 1])),
                       int32_dense_ticks=dense_ticks[0], int16_dense_ticks=dense_ticks[1])
    backend = next(iter(pairs.values()))[0].backend
    benchmark.extra_info.update(backend=backend, rows=rows)
    print(f"\nbackend {backend}, median of 15 alternating rounds of {REPEATS} (dense: one run of time_layers):")
    print(f"{'config':>6} {'int16 blocks':>13} {'int32 ticks':>12} {'int16 ticks':>12} {'x':>6} "
          f"{'dense int32':>12} {'dense int16':>12} {'x':>6}")
    for c, r in rows.items():
        print(f"{c:>6} {'/'.join(map(str, r['blocks'])):>13} {r['int32_ticks']:12.0f} {r['int16_ticks']:12.0f} "
              f"{r['int32_ticks'] / r['int16_ticks']:6.2f} {r['int32_dense_ticks']:12.0f} "
              f"{r['int16_dense_ticks']:12.0f} {r['int32_dense_ticks'] / r['int16_dense_ticks']:6.2f}")


NATIVE = [b for b in kwsint.backends() if not b.endswith("-simde")]  # SIMDe rows say nothing about Arm speed


@pytest.mark.parametrize("backend", NATIVE)
def test_packed_weights(benchmark, backend):
    """M4, M5 and M6 with weights="int8", "packed" and "auto" on one backend, alternating in one run:
    ticks per inference from the raw window (median of 15 rounds), each against int8 containers, the
    kernel auto picked for the sub-8-bit layers, and bytes in memory against the float32 M0. The issue's
    avx2 targets: M4 auto >= 1.25x, M6 packed >= 1.4x, M5 packed > 1x the int8 containers' speed."""
    window = np.random.default_rng(0).normal(-5.0, 2.5, (81, 20)).astype(np.float32)
    float_bytes = 4 * paper_model("M2").macs  # the float32 M0's weights: the same shapes, 4 bytes each
    blobs = {c: kwsint.write_blob(paper_model(c)) for c in ("M4", "M5", "M6")}
    storages = ("int8", "packed", "auto")
    models = {(c, w): kwsint.load(b, backend=backend, weights=w) for c, b in blobs.items() for w in storages}
    ticks = {key: [] for key in models}

    def alternate():
        for _ in range(15):
            for key, model in models.items():
                ticks[key].append(model.time_inference(window, REPEATS) / REPEATS)

    benchmark.pedantic(alternate, rounds=1, iterations=1)
    rows = {}
    for (c, w), m in models.items():
        t = float(np.median(ticks[c, w]))
        kernels = sorted({p["kernel"] for p, l in zip(m.plans(), m.spec.layers)
                          if l.kind == "dense" and l.weight_bits < 5})
        rows[f"{c} {w}"] = dict(weight_bytes=m.info()["weight_bytes_in_memory"], blob_bytes=m.blob_bytes, ticks=t,
                                x_int8=float(np.median(ticks[c, "int8"])) / t, sub8_kernels=kernels)
    benchmark.extra_info.update(backend=backend, float32_m0_weight_bytes=float_bytes, rows=rows)
    print(f"\nbackend {backend}, median of 15 alternating rounds of {REPEATS}; float32 M0 weights: {float_bytes} B")
    print(f"{'model':>10} {'weights B':>10} {'saved vs M0 f32':>15} {'blob B':>8} {'ticks':>8} {'x int8':>7}  "
          f"sub-8-bit layers run on")
    for name, r in rows.items():
        print(f"{name:>10} {r['weight_bytes']:>10} {1 - r['weight_bytes'] / float_bytes:>15.1%} {r['blob_bytes']:>8} "
              f"{r['ticks']:>8.0f} {r['x_int8']:>7.2f}  {', '.join(r['sub8_kernels'])}")


@pytest.mark.parametrize("backend", NATIVE)
def test_packed_large_layer(benchmark, backend):
    """One 1024 x 1024 dense layer of 4-bit weights (1 MiB in int8 containers, 512 KiB packed), int8 against
    packed, alternating in one run: the 4-bit kernel's gain where the weights stream from memory, next to
    M4's in-cache layers (test_packed_weights)."""
    spec = random_model([1024, 1024], weight_bits=4)
    xq = reference.quantize_window(spec, np.random.default_rng(0).normal(-5.0, 2.5, (81, 20)).astype(np.float32))
    layer = 2  # 540 -> 1024, its affine, then the 1024 -> 1024 layer
    models = {w: kwsint.load(kwsint.write_blob(spec), backend=backend, weights=w) for w in ("int8", "packed")}
    ticks = {w: [] for w in models}

    def alternate():
        for _ in range(11):
            for w, model in models.items():
                ticks[w].append(model.time_layers(xq, LARGE_REPEATS)[layer] / LARGE_REPEATS)

    benchmark.pedantic(alternate, rounds=1, iterations=1)
    med = {w: float(np.median(t)) for w, t in ticks.items()}
    benchmark.extra_info.update(backend=backend, ticks=med, x_int8=med["int8"] / med["packed"])
    print(f"\nbackend {backend}, 1024 x 1024 layer of 4-bit weights, median of 11 alternating rounds of "
          f"{LARGE_REPEATS}:")
    for w, model in models.items():
        print(f"{w:>7} {model.plans()[layer]['kernel']:<60} {med[w]:9.0f} ticks {1024 * 1024 / med[w]:6.1f} "
              f"MACs/tick {med['int8'] / med[w]:5.2f}x int8")
