"""How training scales with kwsint-train --nproc: epochs of one configuration in 1 process and in N.

    .venv/bin/python benchmarks/train_ddp.py [--config M4] [--stage stage1] [--windows 8000] [--epochs 2]
                                             [--nproc 1,2] [--rounds 3] [--json F]

The data is ``kwsint-data toy``'s training split at its default size (8000
windows of 81 x 20), the model a paper configuration in stage 1 (or float),
trained as kwsint-train trains it (its default batch of 256 and learning rate),
one epoch of warm-up and then --epochs timed epochs. One process is ``train``
with one torch thread, and with torch's threads on every core (kwsint-train's
default); N processes are ``train_parallel`` (what --nproc N runs), one torch
thread each. The timed span is read from the progress reports (each
step in one process; worker 0's, every 0.1 s, with N): from the first report at
or after the warm-up epoch to the last, so start-up (spawning, importing torch,
the rendezvous) is not in it; the whole call, start-up and the final
checkpoint included, is reported beside it.

Each figure is the median of --rounds rounds, the process counts alternating
within a round so machine noise falls on all of them alike; speed-up is the
median epoch time of one single-threaded process, or of the default one,
over that of each variant.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from kwsint.cli.train import DEFAULT_LR  # kwsint-train's learning rates
from kwsint.data.toydata import make_toy_windows
from kwsint.train.qat.model import KWSNet, paper_config
from kwsint.train.qat.parallel import available_cores, train_parallel
from kwsint.train.qat.train import TrainOptions, train



class _Clock:
    """A progress bar that notes when each step count was reported."""

    def __init__(self, initial: int) -> None:
        self.step, self.marks = initial, []

    def update(self, n: int) -> None:
        self.step += n
        self.marks.append((time.perf_counter(), self.step))

    def set_postfix(self, *args, **kwargs) -> None:
        pass

    def close(self) -> None:
        pass

    def rate(self, after: int) -> tuple[float, int]:
        """(seconds per step, steps timed) from the first report at or after step ``after`` to the last."""
        marks = [m for m in self.marks if m[1] >= after]
        (t0, s0), (t1, s1) = marks[0], marks[-1]
        if s1 <= s0:
            raise RuntimeError(f"too few progress reports after step {after} to time: {marks}")
        return (t1 - t0) / (s1 - s0), s1 - s0


def _model(config: str, stage: str, features, seed: int) -> KWSNet:
    model = KWSNet(paper_config(config), stage)
    model.reset_weights(torch.Generator().manual_seed(seed))
    model.set_normalization(features)
    return model


def run_once(nproc: int, threads: int, args, data, out: Path) -> dict:
    steps_per_epoch = math.ceil(len(data.labels) / args.batch_size)
    warm = steps_per_epoch
    options = TrainOptions(steps=warm + args.epochs * steps_per_epoch, batch_size=args.batch_size,
                           lr=DEFAULT_LR[args.stage], seed=0, eval_every=10**9, checkpoint_every=10**9)
    model = _model(args.config, args.stage, data.features, 0)
    clocks = []

    def progress(total, initial):
        clocks.append(_Clock(initial))
        return clocks[-1]

    start = time.perf_counter()
    if nproc == 1:
        torch.set_num_threads(threads)
        try:
            train(model, data.features, data.labels, options, out=out, progress=progress)
        finally:
            torch.set_num_threads(1)
    else:
        train_parallel(model, data.features, data.labels, options, out=out, progress=progress, nproc=nproc)
    whole = time.perf_counter() - start
    per_step, timed = clocks[0].rate(warm)
    return {"nproc": nproc, "threads": threads, "epoch_s": per_step * steps_per_epoch, "steps_timed": timed,
            "whole_s": whole}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="M4", help="paper configuration M0..M6 (default M4)")
    ap.add_argument("--stage", default="stage1", choices=("float", "stage1"))
    ap.add_argument("--windows", type=int, default=8000, help="training windows (default 8000, kwsint-data toy's)")
    ap.add_argument("--batch-size", type=int, default=TrainOptions().batch_size)
    ap.add_argument("--epochs", type=int, default=2, help="timed epochs per run, after one of warm-up (default 2)")
    ap.add_argument("--nproc", default="1,2", help="process counts, comma-separated (default 1,2)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    counts = [int(n) for n in args.nproc.split(",")]
    if 1 not in counts or any(not 1 <= n <= available_cores() for n in counts):
        ap.error(f"--nproc: expected 1 and others in 1..{available_cores()}, got {args.nproc}")

    torch.set_num_threads(1)  # one process, one thread: the baseline each worker is
    load_before = os.getloadavg()[0]
    data = make_toy_windows(args.windows, seed=0, speakers=range(20))
    # (processes, torch threads each): one thread in one process, the baseline each worker is; one process on
    # every core through torch's own threads (kwsint-train's default); then the process counts asked for
    variants = [(1, 1), (1, available_cores())] + [(n, 1) for n in counts if n > 1]
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for n, t in variants if r % 2 == 0 else variants[::-1]:
                runs.append(run_once(n, t, args, data, Path(tmp) / f"r{r}-{n}-{t}.pt"))
                print(f"round {r + 1}: {n} process(es) x {t} thread(s): {runs[-1]['epoch_s']:.3f} s an epoch",
                      file=sys.stderr)
    rows = []
    for n, t in variants:
        mine = [x for x in runs if (x["nproc"], x["threads"]) == (n, t)]
        rows.append({"nproc": n, "threads": t, "epoch_s": statistics.median(x["epoch_s"] for x in mine),
                     "whole_s": statistics.median(x["whole_s"] for x in mine),
                     "epoch_s_all": [round(x["epoch_s"], 4) for x in mine]})
    base, default = rows[0]["epoch_s"], rows[1]["epoch_s"]
    steps_per_epoch = math.ceil(args.windows / args.batch_size)
    print(f"{args.config} {args.stage}, {args.windows} toy windows, batch {args.batch_size} ({steps_per_epoch} steps "
          f"an epoch), {args.epochs} timed epochs after 1 of warm-up, {available_cores()} cores, median of "
          f"{args.rounds} rounds; 1-minute load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after\n")
    print("| processes x torch threads | epoch s | speed-up vs 1 x 1 | vs 1 process on every core (the default) "
          "| whole run s (start-up included) |")
    print("|---|---|---|---|---|")
    for row in rows:
        row["speedup"], row["vs_default"] = base / row["epoch_s"], default / row["epoch_s"]
        print(f"| {row['nproc']} x {row['threads']} | {row['epoch_s']:.3f} | {row['speedup']:.2f} | "
              f"{row['vs_default']:.2f} | {row['whole_s']:.2f} |")
    if args.json:
        args.json.write_text(json.dumps({"config": args.config, "stage": args.stage, "windows": args.windows,
                                         "batch_size": args.batch_size, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
