"""kwsint-eval: DET curves and relative FDR of models on labelled streams.

    kwsint-eval --manifest data.json --models base.kwsq m4.kwsq --out report/ [--threshold 0.5]

The first model is the baseline. Every model runs over every stream of the
manifest (docs/evaluation.md); the report directory receives det.png (FRR
against false detections per hour and against FDR), report.md (one row per
model: bits, size, FDR and false detections per hour at the baseline's FRR,
relative FDR degradation) and report.json (the same, with every DET point).
The markdown is also printed. Exit status: 0 on success, 2 for bad arguments,
1 when an input is refused or the outputs exist (without --force).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from functools import partial
from pathlib import Path

from kwsint.atomic import write_atomic
from kwsint.evaluation import evaluate, markdown_report, plot_det

OUTPUTS = {"png": "det.png", "markdown": "report.md", "json": "report.json"}


def _number(kind, low: float, high: float = float("inf")):
    """An argparse type: a ``kind`` number in [low, high]."""
    def parse(text: str):
        value = kind(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text}: expected a value in [{low:g}, {high:g}]")
        return value
    parse.__name__ = kind.__name__
    return parse


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="kwsint-eval", description=__doc__.split("\n\n")[0])
    ap.add_argument("--manifest", type=Path, required=True, help="labelled streams (.json or .jsonl)")
    ap.add_argument("--models", type=Path, nargs="+", required=True, help=".kwsq models; the first is the baseline")
    ap.add_argument("--out", type=Path, required=True, help="report directory (created if missing)")
    ap.add_argument("--smoothing", type=_number(int, 1), default=5, help="WMA window in steps (default 5)")
    ap.add_argument("--lockout", type=_number(float, 0), default=1.0,
                    help="seconds after a detection without another (default 1)")
    ap.add_argument("--tolerance", type=_number(float, 0), default=0.5,
                    help="seconds after a wakeword's end in which a detection still hits it (default 0.5)")
    op = ap.add_mutually_exclusive_group()
    op.add_argument("--threshold", type=_number(float, 0, 1),
                    help="the baseline's operating threshold in [0, 1] (default 0.5)")
    op.add_argument("--false-per-hour", type=_number(float, 0),
                    help="operating point: the baseline's lowest threshold with at most this many false detections "
                         "per hour")
    ap.add_argument("--hop", type=_number(int, 1),
                    help="frames between inferences (default: each model's frame stride)")
    ap.add_argument("--max-thresholds", type=_number(int, 2), default=1000,
                    help="thresholds per DET sweep (default 1000)")
    ap.add_argument("--backend", help="engine backend (default: the fastest)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    ap.add_argument("--force", action="store_true", help="overwrite existing report files")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    paths = {kind: args.out / name for kind, name in OUTPUTS.items()}
    existing = [str(p) for p in paths.values() if p.exists()]
    if existing and not args.force:
        print(f"kwsint-eval: {', '.join(existing)} exist; use --force to overwrite", file=sys.stderr)
        return 1
    if importlib.util.find_spec("matplotlib") is None:  # checked before the long part
        print("kwsint-eval: the plot needs matplotlib: pip install 'kwsint[eval]'", file=sys.stderr)
        return 1
    progress = None
    if not args.no_progress:
        from tqdm import tqdm

        progress = partial(tqdm, unit="stream", dynamic_ncols=True)
    try:
        report = evaluate(args.manifest, args.models, smoothing=args.smoothing, lockout_s=args.lockout,
                          tolerance_s=args.tolerance, threshold=args.threshold, false_per_hour=args.false_per_hour,
                          hop=args.hop, max_thresholds=args.max_thresholds, backend=args.backend, progress=progress)
        markdown = markdown_report(report)
        args.out.mkdir(parents=True, exist_ok=True)
        write_atomic(paths["png"], plot_det(report))
        write_atomic(paths["markdown"], markdown.encode())
        write_atomic(paths["json"], (json.dumps(report, indent=1) + "\n").encode())
    except (OSError, ValueError) as e:
        print(f"kwsint-eval: {e}", file=sys.stderr)
        return 1
    print(markdown, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
