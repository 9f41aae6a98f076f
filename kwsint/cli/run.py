"""kwsint-run: streaming wake word detection over feature or audio files, as JSON lines.

    kwsint-run model.kwsq INPUTS... [--threshold 0.5] [--smoothing 0.15] [--lockout 1.0]
               [--posteriors out.csv|out.npz [--force]] [--workers N] [--keep-going] [--verify]

INPUTS are .npy feature arrays (T x feature_dim float32, 10 ms frames), Kaldi
.ark/.scp feature files (one stream per utterance) or 16-bit mono .wav audio
(LFBE computed with the model's feature settings). Each stream runs through
the C streaming detector in chunks, in constant memory: the model runs every
``--hop`` frames, the posterior is smoothed over ``--smoothing`` seconds,
thresholded, and a detection locks out further ones for ``--lockout`` seconds
(the defaults are ``Model.detector``'s). An input shorter than one window gets
a warning on stderr: the detector runs no step on it.

With --posteriors, each worker appends every step's values to raw files in a
hidden folder beside the output (``.NAME.RANDOM.tmp``) as the stream runs, and
the output is written from them at the end, through a temporary file renamed
over it: memory stays constant however long the input, and the output is
whole or absent (or as it was), even if the process is killed. An existing
output is refused without --force.

Output: one JSON line per detection ({"file", "time", "posterior"}: the time
in seconds at the end of the window's newest frame, the smoothed posterior),
one per stream (frames, steps, detections, peak posterior) and a summary
line. Exit status 0, 1 if an input failed (or --verify found a mismatch) or
the --posteriors file cannot be written or exists (without --force), 2 for bad
arguments or an unloadable model, 130 on Ctrl-C. Results do not depend on
--workers.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import shutil
import sys
import threading
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import kwsint
from kwsint import reference
from kwsint.atomic import atomic_writer, temp_dir_beside
from kwsint.cli import common
from kwsint.errors import FormatError, ShortInputWarning
from kwsint.inputs import DEFAULT_CHUNK_FRAMES, iter_streams
from kwsint.model import DEFAULT_LOCKOUT_S, DEFAULT_SMOOTHING_S, DEFAULT_THRESHOLD, lockout_steps, smoothing_steps

PROG = "kwsint-run"


@dataclass(frozen=True)
class Settings:
    """How every worker processes its inputs, alike."""

    hop: int
    smoothing_steps: int
    threshold: float
    lockout_steps: int
    verify: bool
    chunk_frames: int


# The per-step values --posteriors writes, and their types: one raw file of each per input while it runs.
STEP_FIELDS = {"frame": np.dtype(np.int64), "posterior_q16": np.dtype(np.int32), "smoothed_q16": np.dtype(np.int32),
               "fired": np.dtype(np.bool_)}
_BLOCK_STEPS = 65536  # steps read back at a time when writing the output: 1.1 MiB of values


@dataclass
class StreamResult:
    """One stream's detections and summary."""

    name: str
    frames: int = 0
    steps: int = 0
    peak_q16: int = 0
    detections: list = field(default_factory=list)  # (frame, smoothed_q16)
    mismatches: int = 0


# Set when main stops early (a failed input, an interrupt): worker threads still on an input give up.
_cancelled = threading.Event()


def _verify_chunk(spec, history: np.ndarray, chunk: np.ndarray, first_frame: int, steps) -> int:
    """Steps of this chunk whose logits or posterior differ from the numpy reference."""
    if not len(steps.frame):
        return 0
    frames = np.concatenate([history, chunk])  # frame index first_frame - len(history) is row 0
    w = spec.frontend.window_frames
    rows = steps.frame - (first_frame - len(history))
    windows = np.stack([frames[r - w + 1 : r + 1] for r in rows])
    logits, post = reference.forward(spec, windows)
    return int(np.sum(np.any(logits != steps.logits, axis=1) | (post != steps.posterior_q16)))


def process_input(model: kwsint.Model, settings: Settings, path: str, steps_prefix: str | None = None
                  ) -> tuple[list[StreamResult], str | None]:
    """All streams of one input file through ``model`` (shared by the worker threads: a Model is read-only); on a
    bad file, the streams done so far and the error message.

    With ``steps_prefix``, every step's values are appended to the raw files ``PREFIX.FIELD`` (one per field of
    STEP_FIELDS, in its type), stream after stream: the streams returned come first in them.
    """
    spec = model.spec
    w = spec.frontend.window_frames
    results: list[StreamResult] = []
    step_files = {k: open(f"{steps_prefix}.{k}", "wb") for k in STEP_FIELDS} if steps_prefix else {}
    try:
        for name, chunks in iter_streams(path, spec.frontend.feature_dim, spec.frontend.fbank, settings.chunk_frames):
            det = kwsint.Detector(model, settings.hop, smoothing_steps=settings.smoothing_steps,
                                  threshold=settings.threshold, lockout_steps=settings.lockout_steps)
            r = StreamResult(name)
            history = np.zeros((0, spec.frontend.feature_dim), dtype=np.float32)
            posts: list[np.ndarray] = []
            for chunk in chunks:
                if _cancelled.is_set():
                    return results, "cancelled"
                steps = det.push(chunk)
                if settings.verify:
                    r.mismatches += _verify_chunk(spec, history, chunk, r.frames, steps)
                    history = np.concatenate([history, chunk])[-(w - 1) :] if w > 1 else history
                    posts.append(steps.posterior_q16)
                r.frames += len(chunk)
                r.steps += len(steps.frame)
                if len(steps.frame):
                    r.peak_q16 = max(r.peak_q16, int(steps.smoothed_q16.max()))
                fired = steps.fired
                r.detections += [(int(f), int(s)) for f, s in zip(steps.frame[fired], steps.smoothed_q16[fired])]
                for k, f in step_files.items():
                    getattr(steps, k).astype(STEP_FIELDS[k], copy=False).tofile(f)
            if settings.verify and posts:  # smoothing and decisions against the reference, on the whole stream
                p = np.concatenate(posts)
                s = reference.smooth_posteriors(p, settings.smoothing_steps)
                want = reference.detect(s, reference.threshold_q16(settings.threshold), settings.lockout_steps)
                got = [f for f, _ in r.detections]
                first = w - 1
                r.mismatches += int(list(first + want * settings.hop) != got)
            results.append(r)
    except (FormatError, ValueError, OSError) as e:
        return results, str(e)
    finally:
        for f in step_files.values():
            f.close()
    return results, None


def _parser() -> argparse.ArgumentParser:
    ap = common.new_parser(PROG, __doc__)
    ap.add_argument("model", help="a .kwsq model blob, or default:NAME for a shipped one (default:M4)")
    ap.add_argument("inputs", nargs="+", help=".npy, .ark, .scp or .wav files")
    ap.add_argument("--threshold", type=float,
                    help=f"smoothed posterior threshold in [0, 1] (default: the model's recommended, else "
                         f"{DEFAULT_THRESHOLD})")
    ap.add_argument("--smoothing", type=float, metavar="SECONDS",
                    help=f"moving-average window in seconds, rounded to whole steps, at least one (default: the "
                         f"model's recommended, else {DEFAULT_SMOOTHING_S}: 5 steps at the usual hop of 3 frames)")
    ap.add_argument("--lockout", type=float, metavar="SECONDS",
                    help=f"seconds after a detection without another (default: the model's recommended, else "
                         f"{DEFAULT_LOCKOUT_S})")
    ap.add_argument("--hop", type=int, default=None, help="frames between inferences (default: the frame stride)")
    ap.add_argument("--posteriors", type=Path, help="write per-step values to a .csv or .npz file")
    common.add_force(ap, "an existing --posteriors file")
    ap.add_argument("--workers", type=int, default=1,
                    help="threads working on different inputs over the one model (1); the C work runs in parallel")
    ap.add_argument("--keep-going", action="store_true", help="after a bad input, go on with the others")
    ap.add_argument("--verify", action="store_true", help="check every step against the numpy reference")
    ap.add_argument("--backend", default=None, help=f"one of {kwsint.backends()} (default: the fastest)")
    ap.add_argument("--chunk-frames", type=int, default=DEFAULT_CHUNK_FRAMES, help=argparse.SUPPRESS)
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    return ap


def _settings(args: argparse.Namespace, model: kwsint.Model) -> Settings:
    fe = model.spec.frontend
    hop = fe.frame_stride if args.hop is None else args.hop
    if hop < 1:
        raise ValueError(f"--hop: expected >= 1 frames, got {hop}")
    if args.workers < 1:
        raise ValueError(f"--workers: expected >= 1, got {args.workers}")
    if args.posteriors and args.posteriors.suffix not in (".csv", ".npz"):
        raise ValueError(f"--posteriors: expected a .csv or .npz file, got {args.posteriors}")
    recommended = model.operating_point()
    threshold = recommended[0] if args.threshold is None else args.threshold
    reference.threshold_q16(threshold)  # ValueError outside [0, 1]
    frame_shift_s = fe.fbank.frame_shift_ms / 1000.0
    try:
        smoothing = smoothing_steps(recommended[1] if args.smoothing is None else args.smoothing, hop, frame_shift_s)
        lockout = lockout_steps(recommended[2] if args.lockout is None else args.lockout, hop, frame_shift_s)
    except ValueError as e:
        raise ValueError(f"--{e}") from None  # "--smoothing: ...", "--lockout: ...": the options' names
    return Settings(hop=hop, smoothing_steps=smoothing, threshold=threshold, lockout_steps=lockout,
                    verify=args.verify, chunk_frames=args.chunk_frames)


def _step_blocks(prefix: Path, start: int, steps: int, fields=STEP_FIELDS):
    """Steps ``start .. start + steps - 1`` of the raw files ``PREFIX.FIELD``: dicts field -> array, up to
    _BLOCK_STEPS steps each."""
    for first in range(start, start + steps, _BLOCK_STEPS):
        n = min(_BLOCK_STEPS, start + steps - first)
        yield {k: np.fromfile(f"{prefix}.{k}", dtype=STEP_FIELDS[k], count=n, offset=first * STEP_FIELDS[k].itemsize)
               for k in fields}


def _stream_steps(parts: Path, done: list[tuple[int, list[StreamResult]]]):
    """(stream, raw files' prefix, first step in them) for every stream, in output order."""
    for i, streams in done:
        start = 0
        for r in streams:
            yield r, parts / str(i), start
            start += r.steps


def _write_posteriors(f, path: Path, parts: Path, done: list[tuple[int, list[StreamResult]]], frame_s: float):
    """Writes the --posteriors file ``path`` (.csv or .npz) to ``f`` from the raw step files in ``parts`` of
    ``done``: (input index, its streams)."""
    if path.suffix == ".csv":
        text = io.TextIOWrapper(f, encoding="utf-8", newline="")
        w = csv.writer(text, lineterminator="\n")
        w.writerow(["file", "frame", "time", "posterior", "smoothed", "fired"])
        for r, prefix, start in _stream_steps(parts, done):
            for b in _step_blocks(prefix, start, r.steps):
                for f_, p, s, d in zip(b["frame"], b["posterior_q16"], b["smoothed_q16"], b["fired"]):
                    w.writerow([r.name, int(f_), f"{(f_ + 1) * frame_s:.3f}", f"{p / 65536:.6f}", f"{s / 65536:.6f}",
                                int(d)])
        text.flush()
        text.detach()
        return
    # As np.savez writes it (files, then frame_i, posterior_q16_i, smoothed_q16_i, fired_i per stream), one block of
    # one array at a time.
    with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as z:
        with z.open("files.npy", "w", force_zip64=True) as m:
            np.lib.format.write_array(m, np.array([r.name for r, _, _ in _stream_steps(parts, done)]),
                                      allow_pickle=False)
        for i, (r, prefix, start) in enumerate(_stream_steps(parts, done)):
            for k, dtype in STEP_FIELDS.items():
                with z.open(f"{k}_{i}.npy", "w", force_zip64=True) as m:
                    np.lib.format.write_array_header_1_0(m, {"descr": np.lib.format.dtype_to_descr(dtype),
                                                             "fortran_order": False, "shape": (r.steps,)})
                    for b in _step_blocks(prefix, start, r.steps, fields=[k]):
                        m.write(b[k].tobytes())


def main(argv: list[str] | None = None) -> int:
    progress = common.Progress("inputs")
    return common.run_command(PROG, lambda: _main(argv, progress), progress)


def _main(argv: list[str] | None, progress: common.Progress) -> int:
    args = _parser().parse_args(argv)
    if args.posteriors:
        common.check_outputs([args.posteriors], args.force)
    try:
        model = kwsint.load(args.model, backend=args.backend)
        settings = _settings(args, model)
    except (OSError, ValueError) as e:
        common.error(PROG, str(e))
        return 2
    frame_s = model.spec.frontend.fbank.frame_shift_ms / 1000.0
    window = model.spec.frontend.window_frames
    from tqdm import tqdm

    parts = temp_dir_beside(args.posteriors) if args.posteriors else None
    progress.total = len(args.inputs)
    jobs = [(path, str(parts / str(i)) if parts else None) for i, path in enumerate(args.inputs)]

    def process(job: tuple[str, str | None]) -> tuple[list[StreamResult], str | None]:
        return process_input(model, settings, *job)

    _cancelled.clear()
    if args.workers > 1:
        pool = ThreadPoolExecutor(min(args.workers, len(jobs)))
        results = pool.map(process, jobs)  # in input order: output identical to one worker
    else:
        pool, results = None, map(process, jobs)
    streams: list[StreamResult] = []
    by_input: list[tuple[int, list[StreamResult]]] = []
    failed = mismatches = 0
    try:
        for i, (done, failure) in enumerate(tqdm(results, total=len(jobs), unit="file",
                                                 disable=args.no_progress or None, file=sys.stderr)):
            for r in done:
                if r.frames < window:
                    warnings.warn(ShortInputWarning(r.name, r.frames, window))
                for frame, smoothed in r.detections:
                    print(json.dumps({"file": r.name, "time": round((frame + 1) * frame_s, 3),
                                      "posterior": round(smoothed / 65536, 6)}))
                record = {"stream": r.name, "frames": r.frames, "steps": r.steps, "detections": len(r.detections),
                          "peak_posterior": round(r.peak_q16 / 65536, 6)}
                if args.verify:
                    record["reference_mismatches"] = r.mismatches
                print(json.dumps(record), flush=True)
                mismatches += r.mismatches
            streams += done
            by_input.append((i, done))
            progress.done = i + 1
            if failure is not None:
                failed += 1
                common.error(PROG, failure)
                if not args.keep_going:
                    break
        summary = {"summary": True, "inputs": len(args.inputs), "failed": failed, "streams": len(streams),
                   "steps": sum(r.steps for r in streams), "detections": sum(len(r.detections) for r in streams),
                   "hours": round(sum(r.frames for r in streams) * frame_s / 3600, 6), "backend": model.backend,
                   "hop": settings.hop, "smoothing_steps": settings.smoothing_steps,
                   "lockout_steps": settings.lockout_steps,
                   "threshold_q16": reference.threshold_q16(settings.threshold)}
        if args.verify:
            summary["reference_mismatches"] = mismatches
        print(json.dumps(summary), flush=True)
        if parts and (args.keep_going or not failed):
            with atomic_writer(args.posteriors) as f:
                _write_posteriors(f, args.posteriors, parts, by_input, frame_s)
    finally:
        if pool is not None:  # workers still on an input stop at their next chunk
            _cancelled.set()
            pool.shutdown(wait=True, cancel_futures=True)
        if parts:
            shutil.rmtree(parts)
    return 1 if failed or mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
