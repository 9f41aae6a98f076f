"""kwsint-data: make labelled training windows for kwsint-train.

    kwsint-data toy OUT_DIR [--train N] [--val N] [--test N] [--seed S] [--force]

``toy`` writes OUT_DIR/train.npz, val.npz and test.npz (the format of
``kwsint.dataset``) of synthetic LFBE-like windows (``kwsint.toydata``), the
splits drawn from disjoint speakers. It prints one JSON line per split. Exit
status: 0 on success, 2 for bad arguments, 1 when the files cannot be written
(or exist and --force is not given).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from kwsint.dataset import save_windows
from kwsint.toydata import make_toy_windows

TOY_SPLIT_SPEAKERS = {"train": range(0, 32), "val": range(32, 40), "test": range(40, 48)}
"""Speaker ids of each toy split: disjoint, so val and test measure unseen speakers."""


def toy(args: argparse.Namespace) -> int:
    counts = {"train": args.train, "val": args.val, "test": args.test}
    if min(counts.values()) < 1 or args.seed < 0:
        print("kwsint-data: --train, --val and --test must be >= 1 and --seed >= 0", file=sys.stderr)
        return 2
    paths = {split: args.out_dir / f"{split}.npz" for split in counts}
    existing = [str(p) for p in paths.values() if p.exists()]
    if existing and not args.force:
        print(f"kwsint-data: {', '.join(existing)} exist; use --force to overwrite", file=sys.stderr)
        return 1
    try:
        args.out_dir.mkdir(parents=True, exist_ok=True)
        for split, count in counts.items():
            windows = make_toy_windows(count, seed=args.seed, speakers=TOY_SPLIT_SPEAKERS[split])
            save_windows(paths[split], windows)
            print(json.dumps(dict(split=split, file=str(paths[split]), windows=count,
                                  positive_fraction=round(float(windows.labels.mean()), 4),
                                  speakers=len(np.unique(windows.speakers)),
                                  speaker_ids=np.unique(windows.speakers).tolist(), seed=args.seed)), flush=True)
    except OSError as e:
        print(f"kwsint-data: {e}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="kwsint-data", description=__doc__.split("\n\n")[0])
    commands = ap.add_subparsers(dest="command", required=True)
    toy_ap = commands.add_parser("toy", help="synthetic LFBE-like windows, split by speaker")
    toy_ap.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="directory for train.npz, val.npz, test.npz")
    toy_ap.add_argument("--train", type=int, metavar="N", default=8000, help="training windows (default 8000)")
    toy_ap.add_argument("--val", type=int, metavar="N", default=1000, help="validation windows (default 1000)")
    toy_ap.add_argument("--test", type=int, metavar="N", default=1000, help="test windows (default 1000)")
    toy_ap.add_argument("--seed", type=int, metavar="S", default=0, help="data seed >= 0 (default 0)")
    toy_ap.add_argument("--force", action="store_true", help="overwrite existing split files")
    toy_ap.set_defaults(handler=toy)
    args = ap.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
