"""kwsint-data: make labelled training windows for kwsint-train.

    kwsint-data toy OUT_DIR [--train N] [--val N] [--test N] [--seed S] [--force]
    kwsint-data synth OUT_DIR [--scale X] [--seed S] [--jobs N] [--splits LIST] [--force] [--no-progress]
    kwsint-data hold-out DATA_DIR SYNTHESIZER OUT_DIR [--force]

``toy`` writes OUT_DIR/train.npz, val.npz and test.npz (the format of
``kwsint.data.dataset``) of synthetic LFBE-like windows (``kwsint.data.toydata``), the
splits drawn from disjoint speakers. It prints one JSON line per split.

``synth`` renders a synthetic spoken corpus for the wake phrase "hey lumen"
with espeak-ng, flite and festival, rooms, channels, noise and recorded speech
(``kwsint.data.corpus``, docs/data.md): the same three splits of windows cut
from LFBE features, plus validation and test streams for detection metrics
(OUT_DIR/val/ with val-manifest.json, OUT_DIR/test/ with manifest.json, their
streams tagged by synthesizer and category). ``--splits test`` renders only the
test split, the same files a full run writes for it. It prints one JSON summary line
(corpus.json, the same with each split's voices and rooms listed).

``hold-out`` writes OUT_DIR/train.npz and val.npz (and train-mf.npz and
val-mf.npz, the microfrontend windows, where DATA_DIR has them): DATA_DIR's without the
windows of SYNTHESIZER's voices, to train a model that has never heard it
(leave-one-synthesizer-out); kwsint-eval then measures it on DATA_DIR's test
streams of that synthesizer (``--select positive:synthesizer=SYNTHESIZER``).
It prints one JSON line per split.

Exit status: 0 on success, 2 for bad arguments, 1 when the files cannot be
written (or exist and --force is not given) or a tool fails, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from kwsint.cli import common
from kwsint.data.augment import ToolError
from kwsint.data.corpus import (SPLITS, SYNTHESIZERS, TEST_ONLY, hold_out, make_corpus, microfrontend_name,
                                synthesizer_speakers)
from kwsint.data.dataset import load_windows, save_windows
from kwsint.data.toydata import make_toy_windows

PROG = "kwsint-data"

TOY_SPLIT_SPEAKERS = {"train": range(0, 32), "val": range(32, 40), "test": range(40, 48)}
"""Speaker ids of each toy split: disjoint, so val and test measure unseen speakers."""


def toy(args: argparse.Namespace, progress: common.Progress) -> int:
    counts = {"train": args.train, "val": args.val, "test": args.test}
    if min(counts.values()) < 1 or args.seed < 0:
        common.error(PROG, "--train, --val and --test must be >= 1 and --seed >= 0")
        return 2
    paths = {split: args.out_dir / f"{split}.npz" for split in counts}
    common.check_outputs(paths.values(), args.force, create_folders=True)
    try:
        args.out_dir.mkdir(parents=True, exist_ok=True)
        for split, count in counts.items():
            windows = make_toy_windows(count, seed=args.seed, speakers=TOY_SPLIT_SPEAKERS[split])
            save_windows(paths[split], windows)
            common.print_line(json.dumps(dict(split=split, file=str(paths[split]), windows=count,
                                              positive_fraction=round(float(windows.labels.mean()), 4),
                                              speakers=len(np.unique(windows.speakers)),
                                              speaker_ids=np.unique(windows.speakers).tolist(), seed=args.seed)))
    except OSError as e:
        common.error(PROG, str(e))
        return 1
    return 0


def synth(args: argparse.Namespace, progress: common.Progress) -> int:
    if not args.scale > 0 or args.seed < 0 or (args.jobs is not None and args.jobs < 1):
        common.error(PROG, "--scale must be > 0, --seed >= 0 and --jobs >= 1")
        return 2
    splits = args.splits.split(",")
    if not set(splits) <= set(SPLITS):
        common.error(PROG, f"--splits must be some of {','.join(SPLITS)}, got {args.splits}")
        return 2
    # OUT_DIR is checked here, before any work; make_corpus refuses existing outputs itself.
    common.check_outputs([args.out_dir / "corpus.json"], force=True, create_folders=True)
    progress.unit = "utterances"

    def counted(results, total):
        progress.total = total
        results = progress.counted(results)
        if args.no_progress:
            return results
        from tqdm import tqdm

        return tqdm(results, total=total, desc="synth", unit="utt", dynamic_ncols=True)

    start = time.perf_counter()
    try:
        summary = make_corpus(args.out_dir, seed=args.seed, scale=args.scale, jobs=args.jobs,
                              splits=splits, force=args.force, progress=counted)
    except (ToolError, OSError, ValueError) as e:
        common.error(PROG, str(e))
        return 1
    listed = ("voices", "rooms")  # hundreds of entries: corpus.json has them
    common.print_line(json.dumps({"out_dir": str(args.out_dir), **{k: v for k, v in summary.items() if k not in listed},
                                  "seconds": round(time.perf_counter() - start, 1)}))
    return 0


def leave_out(args: argparse.Namespace, progress: common.Progress) -> int:
    names = [name for split in ("train", "val") for name in (f"{split}.npz", microfrontend_name(split))
             if name.endswith(f"{split}.npz") or (args.data_dir / name).is_file()]
    paths = {name: args.out_dir / name for name in names}
    common.check_outputs(paths.values(), args.force, create_folders=True)
    summary_path = args.data_dir / "corpus.json"
    try:
        try:
            summary = json.loads(summary_path.read_text())
        except OSError as e:
            raise OSError(f"{summary_path}: expected the corpus.json of a kwsint-data synth corpus, got "
                          f"{e.strerror}") from e
        speakers = synthesizer_speakers(summary, args.synthesizer, str(summary_path))
        for name, path in paths.items():
            windows = load_windows(args.data_dir / name)
            kept = hold_out(windows, speakers)
            args.out_dir.mkdir(parents=True, exist_ok=True)
            save_windows(path, kept)
            split = name.split(".")[0].removesuffix("-mf")
            common.print_line(json.dumps(dict(split=split, file=str(path), held_out=args.synthesizer, windows=len(kept),
                                              positives=int(kept.labels.sum()), removed=len(windows) - len(kept))))
    except json.JSONDecodeError as e:
        common.error(PROG, f"{summary_path}: not JSON: {e}")
        return 1
    except (OSError, ValueError) as e:  # FormatError is a ValueError
        common.error(PROG, str(e))
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    progress = common.Progress()
    return common.run_command(PROG, lambda: _main(argv, progress), progress)


def _main(argv: list[str] | None, progress: common.Progress) -> int:
    ap = common.new_parser(PROG, __doc__)
    commands = ap.add_subparsers(dest="command", required=True)
    toy_ap = commands.add_parser("toy", help="synthetic LFBE-like windows, split by speaker")
    toy_ap.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="directory for train.npz, val.npz, test.npz")
    toy_ap.add_argument("--train", type=int, metavar="N", default=8000, help="training windows (default 8000)")
    toy_ap.add_argument("--val", type=int, metavar="N", default=1000, help="validation windows (default 1000)")
    toy_ap.add_argument("--test", type=int, metavar="N", default=1000, help="test windows (default 1000)")
    toy_ap.add_argument("--seed", type=int, metavar="S", default=0, help="data seed >= 0 (default 0)")
    toy_ap.add_argument("--force", action="store_true", help="overwrite existing split files")
    toy_ap.set_defaults(handler=toy)
    synth_ap = commands.add_parser("synth", help="synthesised and recorded speech of a wake phrase, augmented; "
                                                 "windows and validation and test streams")
    synth_ap.add_argument("out_dir", type=Path, metavar="OUT_DIR",
                          help="directory for train/val/test.npz, the val/ and test/ streams, their manifests and "
                               "corpus.json")
    synth_ap.add_argument("--scale", type=float, default=1.0,
                          help="corpus size relative to the default 2000 positive and 4000 negative utterances")
    synth_ap.add_argument("--seed", type=int, metavar="S", default=0, help="data seed >= 0 (default 0)")
    synth_ap.add_argument("--jobs", type=int, metavar="N", help="worker processes (default: one per CPU)")
    synth_ap.add_argument("--splits", default=",".join(SPLITS), metavar="LIST",
                          help="comma-separated splits to render (default train,val,test); a split's files are the "
                               "same whichever others are rendered")
    synth_ap.add_argument("--force", action="store_true", help="replace an existing corpus in OUT_DIR")
    synth_ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    synth_ap.set_defaults(handler=synth)
    hold_ap = commands.add_parser("hold-out", help="a corpus's training and validation windows without one "
                                                   "synthesizer's voices")
    hold_ap.add_argument("data_dir", type=Path, metavar="DATA_DIR", help="a kwsint-data synth corpus")
    trained = [s for s in SYNTHESIZERS if s not in TEST_ONLY]
    hold_ap.add_argument("synthesizer", choices=trained, metavar="SYNTHESIZER",
                         help=f"the synthesizer to leave out: {', '.join(trained)} (the others are heard in test only)")
    hold_ap.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="directory for train.npz and val.npz")
    hold_ap.add_argument("--force", action="store_true", help="overwrite existing files")
    hold_ap.set_defaults(handler=leave_out)
    args = ap.parse_args(argv)
    return args.handler(args, progress)


if __name__ == "__main__":
    sys.exit(main())
