"""kwsint-run: streaming wake word detection over feature files, audio files or live audio, as JSON lines.

    kwsint-run model.kwsq INPUTS... [--threshold 0.5] [--smoothing 0.15] [--lockout 1.0]
               [--posteriors out.csv|out.npz [--force]] [--workers N] [--keep-going] [--verify]
    arecord -f S16_LE -r 16000 -c 1 -t raw | kwsint-run model.kwsq -
    kwsint-run model.kwsq --mic
    kwsint-run okay_nabu.kwsq INPUTS... [--threshold 0.85]      # a microWakeWord model (or its .tflite)
    kwsint-run model.kwsq INPUTS... --scheduler tcp://HOST:8786|local:N [--piece-seconds 600]

INPUTS are .npy feature arrays (T x feature_dim float32, 10 ms frames), Kaldi
.ark/.scp feature files (one stream per utterance) or 16-bit mono .wav audio
(LFBE computed with the model's feature settings). A .npy or .wav INPUT may
also be a URL (anything with ``://``: ``file://``, ``memory://``, and
``https://``, ``s3://``, ``gs://``... with fsspec's backend for it, such as
aiohttp or s3fs), read through fsspec (``pip install 'kwsint[cluster]'``) by
byte ranges, never whole in memory; its suffix is that of the URL's path, the
query string aside. It gives the output of the same file as a path, but for
the name. A URL that cannot be opened, or whose protocol has no backend, is
one line naming it; .ark and .scp files are read from paths only. With
--scheduler, the workers open the paths and URLs themselves: no input's bytes
cross the scheduler.

Each stream runs through the C streaming detector in chunks, in constant
memory: the model runs every ``--hop`` frames, the posterior is smoothed over
``--smoothing`` seconds, thresholded, and a detection locks out further ones
for ``--lockout`` seconds (the defaults are ``Model.detector``'s). An input
shorter than one window gets a warning on stderr: the detector runs no step on
it.

Live audio: ``-``, at most once among the INPUTS, is raw little-endian 16-bit
mono PCM at the model's sample rate on standard input, read as it arrives
until it ends; ``--mic``, instead of INPUTS, records from the default input
device (the optional sounddevice package, ``pip install 'kwsint[live]'``, and
PortAudio; a missing one, or no input device, is one line and exit status 1).
Live audio goes through the listener's front end (``kwsint.engine.listener.PcmFrames``)
into the same detector loop as files, so it gives the lines a .wav of the same
audio gives. Every option applies: with --workers the files run in threads and
the live stream in the main thread, the output still in input order.

With --posteriors, each worker appends every step's values to raw files in a
hidden folder beside the output (``.NAME.RANDOM.tmp``) as the stream runs, and
the output is written from them at the end, through a temporary file renamed
over it: memory stays constant however long the input, and the output is
whole or absent (or as it was), even if the process is killed. An existing
output is refused without --force.

microWakeWord models (a kind 1 blob from kwsint-import, or the .tflite file
itself, with the JSON settings of the same name beside it) detect as ESPHome
does, with the model's own settings: features from pymicro-features (the
optional extra ``kwsint[microfrontend]``) quantized by ESPHome's formula
(``kwsint.io.microfrontend``), one invoke per input-tensor's frames, and
ESPHome's sliding-window rule (``kwsint.engine.graph_detector``): the sum of the
last sliding_window_size outputs above int(cutoff * 255) times that size,
after a second of cool-off. --threshold replaces the model's
probability_cutoff; --hop, --smoothing, --lockout and --posteriors do not apply
and are refused. Feature files hold float frames of 40 features as
pymicro-features gives them (uint16 values / 25.6); --verify runs every invoke
on the numpy reference too (about 4 ms each).

Output: one JSON line per detection ({"file", "time", "posterior"}: the time
in seconds at the end of the window's newest frame, the smoothed posterior),
printed and flushed as soon as the step that fired runs; one per stream
(frames, steps, detections, peak posterior) as it ends, and a summary line.
The stream of ``-`` is named "-", that of --mic "mic". Exit status 0, 1 if an
input failed (or --verify found a mismatch), the --posteriors file cannot be
written or exists (without --force), or --mic cannot record, 2 for bad
arguments or an unloadable model. Ctrl-C prints the summary of the streams
done and exits 130; in a file it writes no --posteriors, while in a live
stream it is that stream's end: its stream line comes first, and --posteriors
is written. Results do not depend on --workers.

With --scheduler the inputs run on a Dask cluster (``pip install 'kwsint[cluster]'``; docs/cluster.md): a
running scheduler's address, or local:N for N worker processes started here. The model goes to each worker
once, and the workers read the inputs from their paths. A dense model's .npy and .wav streams are cut into
pieces of --piece-seconds that run apart, each reading the frames before it that its steps need; other
inputs run whole on a worker. The output is byte for byte one process's, each input's lines printed once its
work is done; the progress bar counts hours of audio. A worker that dies loses nothing (its pieces run
again elsewhere). --verify, --workers and live inputs do not go with it. A scheduler that does not answer
within 10 s is one line and exit status 1.
"""

from __future__ import annotations

import argparse
import csv
import functools
import io
import json
import shutil
import sys
import threading
import warnings
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np

import kwsint
from kwsint import cluster, reference
from kwsint.cli import common
from kwsint.engine.graph_detector import DetectionSettings, GraphDetector, detection_settings, quantized_cutoff
from kwsint.engine.graph_model import GraphModel
from kwsint.engine.listener import MicrophoneError, PcmFrames, microphone
from kwsint.engine.model import lockout_steps, smoothing_steps
from kwsint.errors import FormatError, ShortInputWarning
from kwsint.io.atomic import atomic_writer, temp_dir_beside
from kwsint.io.inputs import DEFAULT_CHUNK_FRAMES, iter_streams
from kwsint.io.microfrontend import MICROFRONTEND, microfrontend_chunks, quantize_features, require_pymicro_features

if TYPE_CHECKING:
    from concurrent.futures import Future
    from queue import Queue

PROG = "kwsint-run"
T = TypeVar("T")


@dataclass(frozen=True)
class Settings:
    """How every worker processes its inputs, alike."""

    hop: int
    smoothing_steps: int
    threshold: float
    lockout_steps: int
    verify: bool
    chunk_frames: int

    def summary(self) -> dict:
        """The settings in the summary line."""
        return {"hop": self.hop, "smoothing_steps": self.smoothing_steps, "lockout_steps": self.lockout_steps,
                "threshold_q16": reference.threshold_q16(self.threshold)}


@dataclass(frozen=True)
class GraphSettings:
    """How every worker runs a microWakeWord streaming graph's inputs: ESPHome's rule with these settings."""

    detection: DetectionSettings
    verify: bool
    chunk_frames: int

    def summary(self) -> dict:
        """The settings in the summary line."""
        cutoff = self.detection.probability_cutoff
        return {"probability_cutoff": cutoff, "quantized_cutoff": quantized_cutoff(cutoff),
                "sliding_window_size": self.detection.sliding_window_size}


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
    peak_posterior: float = 0.0
    detections: list = field(default_factory=list)  # (frame, posterior)
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


STDIN = "-"  # the input that reads raw PCM from standard input
MIC = "mic"  # the stream name of --mic
_READ_BYTES = 65536  # at most this much of standard input at a time: what one read finds, not waiting for more


@dataclass(frozen=True)
class Fired:
    """A detection, reported as soon as its step runs: the newest frame of its window, the smoothed posterior (for
    a streaming graph, the mean of the outputs its rule summed, in [0, 1])."""

    stream: str
    frame: int
    posterior: float


@dataclass(frozen=True)
class Failed:
    """The input failed here (after the events before it): the one-line message."""

    message: str


@dataclass(frozen=True)
class Interrupted:
    """Ctrl-C ended a live stream: its audio ended there, and its StreamResult came before this."""


Event = Fired | StreamResult | Failed | Interrupted
Emit = Callable[[Event], None]  # what is told each event of an input as it happens


def _live_frames(pcm: Iterable[bytes | np.ndarray], fbank) -> Iterator[np.ndarray]:
    """The feature frames of raw audio as it arrives, each piece's as soon as it is read (a live input)."""
    frames = PcmFrames(fbank)
    for piece in pcm:
        if len(chunk := frames.push(piece)):
            yield chunk
    if len(chunk := frames.finish()):
        yield chunk


def stdin_pcm() -> Iterator[bytes]:
    """Standard input's bytes as they arrive (each read returns what the pipe holds, up to _READ_BYTES), to EOF."""
    return iter(lambda: sys.stdin.buffer.read1(_READ_BYTES), b"")


class _InputError(Exception):
    """An input that cannot be read further (a bad file, a failed read of standard input): the one-line message."""


def _reading(items: Iterable[T]) -> Iterator[T]:
    """``items``, a failure to read them raised as _InputError: apart from the command's own errors (writing to
    stdout, say), which are no input's fault."""
    try:
        yield from items
    except (FormatError, ValueError, OSError) as e:
        raise _InputError(str(e)) from None


def run_input(model: kwsint.Model, settings: Settings, name: str, emit: Emit,
              steps_prefix: str | None = None, pcm: Iterable[bytes | np.ndarray] | None = None) -> None:
    """Runs one input through ``model`` (shared by the worker threads: a Model is read-only), telling ``emit``
    what happens as it happens: a Fired per detection as its step runs, a StreamResult per stream as it ends,
    and a last Failed for a bad file.

    ``name`` is a file's path, or with ``pcm`` a live stream's name and its raw 16-bit mono PCM as it arrives
    (bytes split anywhere, or int16 arrays). Ctrl-C in a live stream, ``emit`` included, ends its audio: its
    StreamResult, then Interrupted.

    With ``steps_prefix``, every step's values are appended to the raw files ``PREFIX.FIELD`` (one per field of
    STEP_FIELDS, in its type), stream after stream, in the order of the StreamResults.
    """
    spec = model.spec
    w = spec.frontend.window_frames
    live = pcm is not None
    step_files = {k: open(f"{steps_prefix}.{k}", "wb") for k in STEP_FIELDS} if steps_prefix else {}
    try:
        streams = ([(name, _live_frames(pcm, spec.frontend.fbank))] if live else
                   iter_streams(name, spec.frontend.feature_dim, spec.frontend.fbank, settings.chunk_frames))
        for stream, chunks in _reading(streams):
            det = kwsint.Detector(model, settings.hop, smoothing_steps=settings.smoothing_steps,
                                  threshold=settings.threshold, lockout_steps=settings.lockout_steps)
            r = StreamResult(stream)
            history = np.zeros((0, spec.frontend.feature_dim), dtype=np.float32)
            posts: list[np.ndarray] = []
            interrupted = False
            try:
                for chunk in _reading(chunks):
                    if _cancelled.is_set():
                        return
                    steps = det.push(chunk)
                    if settings.verify:
                        r.mismatches += _verify_chunk(spec, history, chunk, r.frames, steps)
                        history = np.concatenate([history, chunk])[-(w - 1) :] if w > 1 else history
                        posts.append(steps.posterior_q16)
                    r.frames += len(chunk)
                    r.steps += len(steps.frame)
                    if len(steps.frame):
                        r.peak_posterior = max(r.peak_posterior, int(steps.smoothed_q16.max()) / 65536)
                    for k, f in step_files.items():
                        getattr(steps, k).astype(STEP_FIELDS[k], copy=False).tofile(f)
                    fired = steps.fired
                    for f, s in zip(steps.frame[fired], steps.smoothed_q16[fired]):
                        r.detections.append((int(f), int(s) / 65536))
                        emit(Fired(stream, int(f), int(s) / 65536))
            except KeyboardInterrupt:
                if not live:
                    raise
                interrupted = True  # the end of a live stream: what it has is a whole stream
            if settings.verify and posts:  # smoothing and decisions against the reference, on the whole stream
                p = np.concatenate(posts)
                s = reference.smooth_posteriors(p, settings.smoothing_steps)
                want = reference.detect(s, reference.threshold_q16(settings.threshold), settings.lockout_steps)
                got = [f for f, _ in r.detections]
                first = w - 1
                r.mismatches += int(list(first + want * settings.hop) != got)
            emit(r)
            if interrupted:
                emit(Interrupted())
                return
    except _InputError as e:
        emit(Failed(str(e)))
    finally:
        for f in step_files.values():
            f.close()


def run_graph_input(model: GraphModel, settings: GraphSettings, name: str, emit: Emit,
                    pcm: Iterable[bytes | np.ndarray] | None = None) -> None:
    """``run_input`` for a microWakeWord streaming graph: the input's microfrontend features (a .wav file or live
    ``pcm``) or feature files, quantized as ESPHome does, through a ``GraphDetector`` per stream; the Fired
    events carry the mean of the outputs the rule summed."""
    cutoff, n = settings.detection.probability_cutoff, settings.detection.sliding_window_size
    live = pcm is not None
    try:
        streams = ([(name, microfrontend_chunks(pcm))] if live else
                   iter_streams(name, model.input_shape[1], MICROFRONTEND, settings.chunk_frames))
        for stream, chunks in _reading(streams):
            det = GraphDetector(model, cutoff, n, verify=settings.verify)
            r = StreamResult(stream)
            interrupted = False
            try:
                for chunk in _reading(chunks):
                    if _cancelled.is_set():
                        return
                    steps = det.push(quantize_features(chunk))
                    r.frames += len(chunk)
                    r.steps += len(steps.frame)
                    if len(steps.frame):
                        r.peak_posterior = max(r.peak_posterior, int(steps.window_sum.max()) / (255 * n))
                    for frame, total in steps.detections:
                        r.detections.append((frame, total / (255 * n)))
                        emit(Fired(stream, frame, total / (255 * n)))
            except KeyboardInterrupt:
                if not live:
                    raise
                interrupted = True  # the end of a live stream: what it has is a whole stream
            r.mismatches = det.mismatches
            emit(r)
            if interrupted:
                emit(Interrupted())
                return
    except _InputError as e:
        emit(Failed(str(e)))


_END = object()  # after a worker's last event in its queue


def _inputs_in_order(run_one: Callable[[int, Emit], None], live: list[bool], workers: int
                     ) -> Iterator[Callable[[Emit], None]]:
    """For each input in order, a function that gives its events to an emit function: ``run_one(i, emit)``, or
    with ``workers`` > 1 for a file, a replay of the events a worker thread queued as it ran the file ahead. A
    live input runs when its turn comes, in this thread, where Ctrl-C lands."""
    files = [i for i, is_live in enumerate(live) if not is_live]
    if workers == 1 or not files:
        yield from (functools.partial(run_one, i) for i in range(len(live)))
        return
    from concurrent.futures import ThreadPoolExecutor  # here: a run of one worker does without it
    from queue import Queue

    def work(i: int, queue: Queue) -> None:
        try:
            run_one(i, queue.put)
        finally:
            queue.put(_END)

    def replay(queue: Queue, future: Future, emit: Emit) -> None:
        for event in iter(queue.get, _END):
            emit(event)
        future.result()  # a worker's unexpected exception is raised here

    with ThreadPoolExecutor(min(workers, len(files))) as pool:
        try:
            queues = {i: Queue() for i in files}
            futures = {i: pool.submit(work, i, queues[i]) for i in files}  # started in input order
            for i in range(len(live)):
                yield (functools.partial(replay, queues[i], futures[i]) if i in queues else
                       functools.partial(run_one, i))
        finally:  # stopped early (a failed input, Ctrl-C): workers still on an input stop at their next chunk
            _cancelled.set()
            pool.shutdown(wait=True, cancel_futures=True)


class _NoBar:
    """The progress bar where none is drawn."""

    def update(self) -> None:
        pass

    def close(self) -> None:
        pass


def _file_bar(total: int, disable: bool):
    """tqdm's bar of inputs done on stderr, unless ``disable`` or stderr is not a terminal (tqdm's own rule for
    disable=None); then a _NoBar, and tqdm is not imported: its import is a share of a run's start-up."""
    if disable or not (hasattr(sys.stderr, "isatty") and sys.stderr.isatty()):
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, unit="file", file=sys.stderr)


class _Printer:
    """Prints one input's events as they come, each line flushed: a line per detection, one per stream; and
    keeps its streams, its failure's message and whether Ctrl-C ended it (a live stream)."""

    def __init__(self, verify: bool, window: int, frame_s: float):
        self.verify, self.window, self.frame_s = verify, window, frame_s
        self.streams: list[StreamResult] = []
        self.failure: str | None = None
        self.interrupted = False

    def __call__(self, event: Event) -> None:
        if isinstance(event, Fired):
            common.print_line(json.dumps({"file": event.stream, "time": round((event.frame + 1) * self.frame_s, 3),
                                          "posterior": round(event.posterior, 6)}))
        elif isinstance(event, StreamResult):
            r = event
            if r.frames < self.window:
                warnings.warn(ShortInputWarning(r.name, r.frames, self.window))
            record = {"stream": r.name, "frames": r.frames, "steps": r.steps, "detections": len(r.detections),
                      "peak_posterior": round(r.peak_posterior, 6)}
            if self.verify:
                record["reference_mismatches"] = r.mismatches
            common.print_line(json.dumps(record))
            self.streams.append(r)
        elif isinstance(event, Failed):
            self.failure = event.message
        elif isinstance(event, Interrupted):
            self.interrupted = True
        else:
            raise TypeError(f"not an event: {event!r}")


def _parser() -> argparse.ArgumentParser:
    ap = common.new_parser(PROG, __doc__)
    ap.add_argument("model", help="a .kwsq model blob, default:NAME for a shipped one (default:M4), or a microWakeWord "
                                  ".tflite file (its settings from the .json of the same name beside it)")
    ap.add_argument("inputs", nargs="*", metavar="INPUT",
                    help=".npy, .ark, .scp or .wav files (.npy and .wav also as URLs, read through fsspec); - reads "
                         "raw 16-bit mono PCM at the model's sample rate from standard input, to its end or Ctrl-C")
    ap.add_argument("--mic", action="store_true",
                    help="record from the default input device until Ctrl-C, instead of INPUTs (needs the "
                         "sounddevice package: pip install 'kwsint[live]')")
    common.add_operating_point(ap)
    ap.add_argument("--hop", type=int, default=None, help="frames between inferences (default: the frame stride)")
    ap.add_argument("--posteriors", type=Path, help="write per-step values to a .csv or .npz file")
    common.add_force(ap, "an existing --posteriors file")
    ap.add_argument("--workers", type=int, default=1,
                    help="threads working on different inputs over the one model (1); the C work runs in parallel")
    ap.add_argument("--keep-going", action="store_true", help="after a bad input, go on with the others")
    ap.add_argument("--verify", action="store_true", help="check every step against the numpy reference")
    ap.add_argument("--backend", default=None, help=f"one of {kwsint.backends()} (default: the fastest)")
    ap.add_argument("--chunk-frames", type=int, default=DEFAULT_CHUNK_FRAMES, help=argparse.SUPPRESS)
    ap.add_argument("--scheduler", metavar="ADDRESS",
                    help="run the inputs on a Dask cluster: tcp://HOST:PORT of a running scheduler, or local:N for N "
                         "worker processes here; the workers read the inputs from their paths or URLs (pip install "
                         "'kwsint[cluster]')")
    ap.add_argument("--piece-seconds", type=float, default=cluster.DEFAULT_PIECE_S, metavar="SECONDS",
                    help=f"with --scheduler: a longer .npy or .wav stream is split into pieces of this much audio "
                         f"that run apart (default {cluster.DEFAULT_PIECE_S:g})")
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


def _graph_settings(args: argparse.Namespace, model: GraphModel) -> GraphSettings:
    """ESPHome's settings from the model's metadata (``detection_settings``), --threshold replacing the cutoff;
    ValueError naming the option or the field for what does not apply or is missing."""
    for option in ("hop", "smoothing", "lockout", "posteriors"):
        if getattr(args, option) is not None:
            raise ValueError(f"--{option}: a microWakeWord model detects by ESPHome's rule (its probability cutoff "
                             f"over a sliding window of outputs); expected no --{option}")
    if args.workers < 1:
        raise ValueError(f"--workers: expected >= 1, got {args.workers}")
    try:
        detection = detection_settings(model, args.threshold)
    except ValueError as e:  # "threshold: ..." is the option's, anything else the model's
        raise ValueError(f"--{e}" if str(e).startswith("threshold:") else f"{args.model}: {e}") from None
    return GraphSettings(detection=detection, verify=args.verify, chunk_frames=args.chunk_frames)


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


def _check_inputs(args: argparse.Namespace) -> list[str]:
    """The inputs in order, STDIN and MIC included; ValueError naming the argument for a combination refused."""
    if args.mic:
        if args.inputs:
            raise ValueError(f"--mic: records alone until Ctrl-C; expected no INPUTS, got {len(args.inputs)}")
        return [MIC]
    if not args.inputs:
        raise ValueError("inputs: expected at least one file, - for standard input, or --mic")
    if args.inputs.count(STDIN) > 1:
        raise ValueError(f"inputs: expected - (standard input) at most once, got it {args.inputs.count(STDIN)} times")
    return args.inputs


def _check_scheduler(args: argparse.Namespace, inputs: list[str]) -> None:
    """ValueError naming the argument that --scheduler cannot go with."""
    if args.scheduler is None:
        return
    cluster.local_workers(args.scheduler)
    if any(name in (STDIN, MIC) for name in inputs):
        raise ValueError("--scheduler: runs files; expected no live input (- or --mic)")
    for option, wrong in (("workers", args.workers != 1), ("verify", args.verify)):
        if wrong:
            raise ValueError(f"--scheduler: the cluster's workers run the inputs; expected no --{option}")
    if not args.piece_seconds > 0:
        raise ValueError(f"--piece-seconds: expected seconds > 0, got {args.piece_seconds:g}")


def _main(argv: list[str] | None, progress: common.Progress) -> int:
    args = _parser().parse_intermixed_args(argv)  # INPUTs after options too: "MODEL --hop 3 clip.wav"
    if args.posteriors:
        common.check_outputs([args.posteriors], args.force)
    try:
        inputs = _check_inputs(args)
        _check_scheduler(args, inputs)
        model = kwsint.load(args.model, backend=args.backend)
        graph = isinstance(model, GraphModel)
        settings = _graph_settings(args, model) if graph else _settings(args, model)
    except (OSError, ValueError) as e:
        common.error(PROG, str(e))
        return 2
    if graph:
        frame_s = MICROFRONTEND.frame_shift_ms / 1000.0
        window = model.input_shape[0]  # frames per invoke: a shorter input runs none
        sample_rate = MICROFRONTEND.sample_rate
        if any(name in (STDIN, MIC) or name.lower().endswith(".wav") for name in inputs):  # checked before any work
            try:
                require_pymicro_features()
            except ImportError as e:
                common.error(PROG, str(e))
                return 1
    else:
        frame_s = model.spec.frontend.fbank.frame_shift_ms / 1000.0
        window = model.spec.frontend.window_frames
        sample_rate = model.spec.frontend.fbank.sample_rate
    live_pcm = {STDIN: stdin_pcm()}  # the live inputs' audio; each is given at most once
    if args.mic:  # checked before any work
        try:
            live_pcm[MIC] = microphone(sample_rate)
        except MicrophoneError as e:
            common.error(PROG, f"--mic: {e}")
            return 1
    workers = None
    if args.scheduler:
        try:
            model_data = cluster.model_bytes(args.model)
            workers = cluster.Workers(cluster.connect(args.scheduler), max(1, round(args.piece_seconds / frame_s)),
                                      cluster.HoursBar(disable=args.no_progress or None))
        except (OSError, ValueError) as e:  # ConnectionError: an OSError
            common.error(PROG, str(e))
            return 1
    parts = temp_dir_beside(args.posteriors) if args.posteriors else None
    progress.total = len(inputs)
    live = [name in live_pcm for name in inputs]

    def run_one(i: int, emit: Emit) -> None:
        if graph:
            run_graph_input(model, settings, inputs[i], emit, live_pcm.get(inputs[i]))
        else:
            run_input(model, settings, inputs[i], emit, str(parts / str(i)) if parts else None,
                      live_pcm.get(inputs[i]))

    _cancelled.clear()
    streams: list[StreamResult] = []
    by_input: list[tuple[int, list[StreamResult]]] = []
    failed = 0
    interrupted = live_ended = False
    # No bar with a live input: it would sit among the detection lines as they come.
    backends = set()  # the cluster workers' backends
    if workers is None:
        bar = _file_bar(len(inputs), args.no_progress or any(live))
        in_order = _inputs_in_order(run_one, live, args.workers)
    else:
        from kwsint.cli import run_cluster

        bar = workers.bar
        in_order = run_cluster.inputs_in_order(workers, model_data, args.backend, model, settings, inputs, parts,
                                               backends)
    try:
        try:
            with closing(in_order):  # closing: workers stop
                for i, run_this in enumerate(in_order):
                    printer = _Printer(args.verify, window, frame_s)
                    run_this(printer)
                    streams += printer.streams
                    by_input.append((i, printer.streams))
                    if printer.interrupted:
                        live_ended = True
                        break
                    progress.done = i + 1
                    if workers is None:
                        bar.update()
                    if printer.failure is not None:
                        failed += 1
                        common.error(PROG, printer.failure)
                        if not args.keep_going:
                            break
        except KeyboardInterrupt:  # in a file: the summary of the streams done
            interrupted = True
        finally:
            bar.close()
        mismatches = sum(r.mismatches for r in streams)
        summary = {"summary": True, "inputs": len(inputs), "failed": failed, "streams": len(streams),
                   "steps": sum(r.steps for r in streams), "detections": sum(len(r.detections) for r in streams),
                   "hours": round(sum(r.frames for r in streams) * frame_s / 3600, 6),
                   "backend": ", ".join(sorted(backends)) or model.backend, **settings.summary()}
        if args.verify:
            summary["reference_mismatches"] = mismatches
        common.print_line(json.dumps(summary))
        # Ctrl-C in a file cuts it short: nothing is written. In a live stream it is that stream's end.
        if parts and not interrupted and (args.keep_going or not failed):
            with atomic_writer(args.posteriors) as f:
                _write_posteriors(f, args.posteriors, parts, by_input, frame_s)
    finally:
        if parts:
            shutil.rmtree(parts)
        if workers is not None:
            cluster.disconnect(workers)
    if interrupted or live_ended:
        raise KeyboardInterrupt  # common.run_command: "interrupted after N of M inputs", exit 130
    return 1 if failed or mismatches else 0


if __name__ == "__main__":
    from kwsint.cli import run  # not this __main__ copy: the events run_cluster tells are that module's types

    sys.exit(run.main())
