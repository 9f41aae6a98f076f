"""Every usable backend on the M2-shaped model: time and counter ticks per inference.

    .venv/bin/python -m pytest benchmarks/test_backends.py --benchmark-only -s

The inference loop runs in C (``Model.time_inference``), so no Python call
overhead is in these figures. Ticks are the x86 time-stamp counter (a constant
rate, not core clock cycles) or the aarch64 virtual counter; time is wall
clock. ``test_backend_ratios`` times all backends alternately in one run, so
machine noise hits them alike, and prints each one's speed relative to
portable.
"""

import time

import numpy as np
import pytest

import kwsint
from kwsint import reference
from kwsint.generate import paper_model

REPEATS = 200


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


CONFIGS = ("M1", "M2", "M3", "M4", "M5", "M6")
RATES_HZ = (100.0, 1000.0 / 30.0)  # one inference every 10 ms and every 30 ms


def test_configs(benchmark):
    """Every paper configuration on the default backend: ticks per inference, MACs per tick, the counter's
    million ticks per second at one inference every 10 and 30 ms, and memory and size in bytes."""
    models = {c: kwsint.load(kwsint.write_blob(paper_model(c))) for c in CONFIGS}
    window = np.random.default_rng(0).normal(-5.0, 2.5, (81, 20)).astype(np.float32)
    inputs = {c: m.quantize_window(window) for c, m in models.items()}
    ticks = {c: [] for c in models}

    def alternate():
        for _ in range(15):
            for c, model in models.items():
                ticks[c].append(model.time_inference(inputs[c], REPEATS) / REPEATS)

    benchmark.pedantic(alternate, rounds=1, iterations=1)
    rows = {}
    for c, model in models.items():
        info, per = model.info(), float(np.median(ticks[c]))
        rows[c] = dict(
            weight_bits=sorted({l["weight_bits"] for l in info["layers"]}), macs=info["macs"],
            ticks_per_inference=round(per), macs_per_tick=round(info["macs"] / per, 2),
            mticks_per_s={f"{1000 / r:.0f}ms": round(per * r / 1e6, 2) for r in RATES_HZ},
            weight_bytes_in_memory=info["weight_bytes_in_memory"], scratch_bytes=info["scratch_bytes"],
            blob_bytes=info["blob_bytes"],
        )
    benchmark.extra_info.update(backend=next(iter(models.values())).backend, configs=rows)
    print(f"\nbackend {benchmark.extra_info['backend']}, median of 15 alternating rounds of {REPEATS}:")
    print(f"{'config':>6} {'bits':>8} {'MACs':>8} {'ticks':>8} {'MACs/tick':>9} {'Mticks/s@10ms':>13} "
          f"{'@30ms':>6} {'weights B':>9} {'scratch B':>9} {'blob B':>8}")
    for c, r in rows.items():
        bits = "/".join(map(str, r["weight_bits"]))
        print(f"{c:>6} {bits:>8} {r['macs']:>8} {r['ticks_per_inference']:>8} {r['macs_per_tick']:>9} "
              f"{r['mticks_per_s']['10ms']:>13} {r['mticks_per_s']['30ms']:>6} {r['weight_bytes_in_memory']:>9} "
              f"{r['scratch_bytes']:>9} {r['blob_bytes']:>8}")
