"""How streaming scales with threads sharing one model, through the API and through kwsint-run --workers.

    .venv/bin/python benchmarks/threads.py [--config M4] [--streams 16] [--seconds 120] [--rounds 5] [--json F]

Threads: STREAMS different inputs, each a Detector over one shared Model,
pushed in kwsint-run's chunks of 4096 frames, spread over T threads (1 up to
the number of cores, and twice that). cffi releases the GIL around every C
call, so the threads run the C work in parallel; the Python between pushes is
what stays serial. kwsint-run: the same inputs as .npy files through
``kwsint-run --workers N`` (worker threads; start-up, model load, reading
the files and output included).

Each figure is the median of --rounds rounds, the settings alternating within
a round so machine noise falls on all of them alike; speed-up is against one
thread (or one worker) in the same run. Real time: audio seconds processed
per wall-clock second.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

import kwsint
from kwsint import default_model
from kwsint.io.inputs import DEFAULT_CHUNK_FRAMES

FRAME_S = 0.01


def _stream(model: kwsint.Model, frames: np.ndarray) -> int:
    det = model.detector()  # kwsint-run's defaults
    fired = 0
    for i in range(0, len(frames), DEFAULT_CHUNK_FRAMES):
        fired += int(det.push(frames[i:i + DEFAULT_CHUNK_FRAMES]).fired.sum())
    return fired


def _time_threads(model: kwsint.Model, inputs: list[np.ndarray], threads: int) -> float:
    with ThreadPoolExecutor(threads) as pool:
        t0 = time.perf_counter()
        list(pool.map(lambda a: _stream(model, a), inputs))
        return time.perf_counter() - t0


def _time_workers(blob: Path, files: list[Path], workers: int) -> float:
    cmd = [sys.executable, "-m", "kwsint.cli.run", str(blob), *map(str, files), "--workers", str(workers),
           "--no-progress"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def _table(title: str, unit: str, times: dict[int, list[float]], audio_s: float) -> list[dict]:
    base = statistics.median(times[1])
    rows = []
    print(f"\n{title}\n\n| {unit} | median wall s | x real time | speed-up vs 1 |\n|---|---|---|---|")
    for n, ts in times.items():
        med = statistics.median(ts)
        rows.append({unit: n, "wall_s": med, "real_time_factor": audio_s / med, "speedup": base / med,
                     "rounds": ts})
        print(f"| {n} | {med:.3f} | {audio_s / med:.0f} | {base / med:.2f} |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="M4", choices=default_model.CONFIGS)
    ap.add_argument("--backend", default=None)
    ap.add_argument("--streams", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=120.0, help="audio seconds per stream")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", type=Path, help="write every round's figures here")
    args = ap.parse_args()

    cores = os.cpu_count() or 1
    counts = sorted({1, *range(2, cores + 1), 2 * cores})
    blob = default_model.path(f"{args.config}.kwsq")
    model = kwsint.load(blob, backend=args.backend)
    rng = np.random.default_rng(0)
    frames = int(args.seconds / FRAME_S)
    inputs = [rng.normal(0.0, 1.0, (frames, model.spec.frontend.feature_dim)).astype(np.float32)
              for _ in range(args.streams)]
    audio_s = args.streams * frames * FRAME_S
    print(f"{args.config} on {model.backend}, {cores} cores: {args.streams} streams of {args.seconds:g} s")

    thread_times: dict[int, list[float]] = {n: [] for n in counts}
    worker_times: dict[int, list[float]] = {n: [] for n in counts}
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for i, a in enumerate(inputs):
            files.append(Path(tmp) / f"s{i}.npy")
            np.save(files[-1], a)
        _time_threads(model, inputs[:2], 1)  # warm-up: per-thread buffers, caches
        for _ in range(args.rounds):
            for n in counts:
                thread_times[n].append(_time_threads(model, inputs, n))
                worker_times[n].append(_time_workers(blob, files, n))
    result = {"config": args.config, "backend": model.backend, "cores": cores, "streams": args.streams,
              "stream_seconds": args.seconds,
              "threads": _table("Threads sharing one model (Python API)", "threads", thread_times, audio_s),
              "workers": _table("kwsint-run --workers (the whole command)", "workers", worker_times, audio_s)}
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
