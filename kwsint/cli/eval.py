"""kwsint-eval: DET curves and relative FDR of models on labelled streams.

    kwsint-eval --manifest data.json --models base.kwsq m4.kwsq --out report/ [--threshold 0.5]
    kwsint-eval --manifest data.json --models default:M0 default:M4 --out report/ --false-per-hour 2 \
        --select positive:synthesizer=flite --select negative:category=speech,recorded
    kwsint-eval --manifest negatives.json --models default:M0 default:M4 --out report/ \
        --scheduler tcp://HOST:8786 --resume

The first model is the baseline; a float-stage training checkpoint (.pt, or
default:M0) runs in float32 (its reading needs PyTorch). Every model runs over
every selected stream of the manifest (docs/evaluation.md); the report
directory receives det.png (FRR against false detections per hour and against
FDR), report.md (one row per model: bits, size, FDR and false detections per
hour at the baseline's FRR, relative FDR degradation, with bootstrap intervals;
then the figures by stream tag) and report.json (the same, with every DET point).
The markdown is also printed. Without matplotlib the plot is skipped, with a
note. A stream shorter than one window gets a warning (its spans count as
missed). A manifest's ``features`` and ``microfrontend`` may be URLs (anything
with ``://``: ``file://``, ``https://``, ``s3://``... with fsspec and its
backend for the protocol, ``pip install 'kwsint[cluster]'``), kept as they are
(not joined with the manifest's folder) and read by byte ranges; the report
is the one of the same files given as paths. Exit status: 0 on
success, 2 for bad arguments, 1 when an input is refused (a URL that cannot be
opened, or whose protocol has no backend, is one line naming it) or the outputs
cannot be written or exist (without --force), 130 on Ctrl-C.

With --scheduler the streams are scored on a Dask cluster (``pip install 'kwsint[cluster]'``;
docs/cluster.md): a running scheduler's address, or local:N for N worker processes started here. Each model
goes to each worker once; the workers read the feature files from their paths or URLs, a dense model's long stream
in pieces of --piece-seconds; the bar counts hours of audio. The report is byte for byte one process's.
--resume keeps each model-stream score as it finishes (in OUT/.partial, removed with the report written),
so that the same command run again after an interruption scores only the rest.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from kwsint import cluster
from kwsint.cli import common
from kwsint.engine.model import DEFAULT_LOCKOUT_S, DEFAULT_SMOOTHING_S
from kwsint.evaluation import evaluate, markdown_report, parse_selection, plot_det
from kwsint.evaluation.manifest import FRAME_SHIFT_S
from kwsint.evaluation.resume import ScoreStore
from kwsint.io.atomic import write_atomic

PROG = "kwsint-eval"
OUTPUTS = {"png": "det.png", "markdown": "report.md", "json": "report.json"}
PARTIAL = ".partial"  # the finished model-stream scores of a run not yet whole, for --resume


def _number(kind, low: float, high: float = float("inf")):
    """An argparse type: a ``kind`` number in [low, high]."""
    def parse(text: str):
        value = kind(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text}: expected a value in [{low:g}, {high:g}]")
        return value
    parse.__name__ = kind.__name__
    return parse


def _confidence(text: str) -> float:
    """An argparse type: a float in (0, 1)."""
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text}: expected a value in (0, 1)")
    return value


def _selection(text: str):
    """An argparse type: parse_selection's, its ValueError as argparse's one-line error."""
    try:
        return parse_selection(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _parser() -> argparse.ArgumentParser:
    ap = common.new_parser(PROG, __doc__)
    ap.add_argument("--manifest", type=Path, required=True, help="labelled streams (.json or .jsonl)")
    ap.add_argument("--models", nargs="+", required=True,
                    help=".kwsq models or default:NAME for a shipped one, or float-stage checkpoints (.pt, "
                         "default:M0) run in float32; the first is the baseline")
    ap.add_argument("--out", type=Path, required=True, help="report directory (created if missing)")
    ap.add_argument("--smoothing", type=_number(float, 0), default=DEFAULT_SMOOTHING_S, metavar="SECONDS",
                    help="moving-average window in seconds, rounded to whole steps of each model's hop, at least "
                         f"one (default {DEFAULT_SMOOTHING_S}, as kwsint-run)")
    ap.add_argument("--lockout", type=_number(float, 0), default=DEFAULT_LOCKOUT_S, metavar="SECONDS",
                    help=f"seconds after a detection without another (default {DEFAULT_LOCKOUT_S:g})")
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
    ap.add_argument("--select", type=_selection, action="append", default=[],
                    metavar="SELECTION",
                    help="[positive:|negative:]KEY=V1[,V2...]: evaluate only the streams whose tag KEY has one of "
                         "the values; with a kind prefix, it filters only streams of that kind (repeatable: a stream "
                         "must pass every one that applies)")
    ap.add_argument("--bootstrap", type=_number(int, 0), default=1000, metavar="N",
                    help="replicates of the bootstrap confidence intervals over streams (default 1000; 0: none)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the bootstrap's draws (default 0)")
    ap.add_argument("--confidence", type=_confidence, default=0.95,
                    help="coverage of the confidence intervals, in (0, 1) (default 0.95)")
    ap.add_argument("--backend", help="engine backend (default: the fastest)")
    ap.add_argument("--scheduler", metavar="ADDRESS",
                    help="score the streams on a Dask cluster: tcp://HOST:PORT of a running scheduler, or local:N "
                         "for N worker processes here; the workers read the feature files from their paths or URLs "
                         "(pip install 'kwsint[cluster]')")
    ap.add_argument("--piece-seconds", type=_number(float, 1e-3), default=cluster.DEFAULT_PIECE_S, metavar="SECONDS",
                    help="with --scheduler: a longer stream is scored in pieces of this much audio that run apart "
                         f"(default {cluster.DEFAULT_PIECE_S:g})")
    ap.add_argument("--resume", action="store_true",
                    help=f"keep each model-stream score as it finishes (in OUT/{PARTIAL}, removed once the report is "
                         "written), and score only those not kept yet: the same command run again after an "
                         "interruption goes on where it stopped")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    common.add_force(ap, "existing report files")
    return ap


def main(argv: list[str] | None = None) -> int:
    progress = common.Progress("model-stream runs")
    return common.run_command(PROG, lambda: _main(argv, progress), progress)


def _counting(progress: common.Progress, models: int, bar: bool) -> Callable:
    """evaluate's ``progress`` over the streams of each of ``models`` models in turn: counts them in ``progress``
    (for Ctrl-C), with a progress bar if ``bar``."""
    def wrap(items: Iterable, desc: str, total: int) -> Iterable:
        progress.total = models * total
        counted = progress.counted(items)
        if not bar:
            return counted
        from tqdm import tqdm

        return tqdm(counted, desc=desc, total=total, unit="stream", dynamic_ncols=True)
    return wrap


def _main(argv: list[str] | None, progress: common.Progress) -> int:
    args = _parser().parse_args(argv)
    paths = {kind: args.out / name for kind, name in OUTPUTS.items()}
    common.check_outputs(paths.values(), args.force, create_folders=True)
    plot = importlib.util.find_spec("matplotlib") is not None
    workers = None
    try:
        if args.scheduler:
            cluster.local_workers(args.scheduler)  # a malformed address is a bad argument
    except ValueError as e:
        common.error(PROG, str(e))
        return 2
    try:
        store = ScoreStore(args.out / PARTIAL) if args.resume else None
        if args.scheduler:
            workers = cluster.Workers(cluster.connect(args.scheduler),
                                      max(1, round(args.piece_seconds / FRAME_SHIFT_S)),
                                      cluster.HoursBar(disable=args.no_progress or None))
        report = evaluate(args.manifest, args.models, smoothing_s=args.smoothing, lockout_s=args.lockout,
                          tolerance_s=args.tolerance, threshold=args.threshold, false_per_hour=args.false_per_hour,
                          hop=args.hop, max_thresholds=args.max_thresholds, select=args.select,
                          bootstrap=args.bootstrap, seed=args.seed, confidence=args.confidence, backend=args.backend,
                          progress=_counting(progress, len(args.models), not args.no_progress and workers is None),
                          workers=workers, store=store)
        markdown = markdown_report(report)
        args.out.mkdir(parents=True, exist_ok=True)
        if plot:
            write_atomic(paths["png"], plot_det(report))
        write_atomic(paths["markdown"], markdown.encode())
        write_atomic(paths["json"], (json.dumps(report, indent=1) + "\n").encode())
        if not plot:
            paths["png"].unlink(missing_ok=True)  # an old plot beside the new report would belong to another run
        if store is not None:
            store.remove()
    except (OSError, ValueError) as e:
        common.error(PROG, str(e))
        return 1
    finally:
        if workers is not None:
            cluster.disconnect(workers)
    if not plot:
        print(f"{PROG}: note: {paths['png']} not written: the plot needs matplotlib: pip install 'kwsint[eval]'",
              file=sys.stderr)
    print(markdown, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
