"""kwsint-run --scheduler: the inputs' work on a Dask cluster, replayed in input order as one process prints it.

A dense model's .npy and .wav inputs (LFBE with snip_edges) are split into pieces of frames (``kwsint.cluster``)
that workers run apart, each reading its own frames from the input's path or URL; the driver gathers each piece's
steps at or above the threshold (all its steps with --posteriors) and applies the lockout in stream order. Other
inputs (.ark and .scp files, a microWakeWord graph's inputs, whose front end and states carry from frame to
frame) run whole on a worker, as ``run_input`` runs them. Workers read the inputs from paths or URLs (fsspec's,
``kwsint.io.urls``) they can reach: nothing but the model's bytes (once per worker) and the results cross the scheduler.
"""

from __future__ import annotations

import contextlib
import functools
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import kwsint
from kwsint import cluster, reference
from kwsint.cli.run import STEP_FIELDS, Emit, Failed, Fired, GraphSettings, Settings, StreamResult, run_graph_input, \
    run_input
from kwsint.errors import FormatError
from kwsint.io import inputs as io_inputs
from kwsint.io.features import FbankOptions
from kwsint.io.microfrontend import MICROFRONTEND


@dataclass(frozen=True)
class Plan:
    """An input's split: its pieces, or None for an input run whole; or the message of a refused input."""

    pieces: list[cluster.Piece] | None = None
    failure: str | None = None


@dataclass(frozen=True)
class PieceResult:
    """A piece's frames and steps: its steps' smoothed posteriors at or above the threshold, and all its steps'
    values when asked (--posteriors)."""

    frames: int
    first_step: int
    steps: int
    peak_q16: int
    above_steps: np.ndarray  # int64 stream step indices, ascending
    above_q16: np.ndarray  # int32 smoothed posteriors there
    posterior_q16: np.ndarray | None
    smoothed_q16: np.ndarray | None
    backend: str


@dataclass(frozen=True)
class WholeResult:
    """An input run whole on a worker: its events as ``run_input`` told them, and its step values if asked."""

    events: list
    steps: dict[str, np.ndarray] | None
    backend: str


def _load(data: bytes, backend: str | None):
    return kwsint.load(data, backend=backend)


def _plan(path: str, feature_dim: int, fbank, piece_frames: int) -> Plan:
    try:
        return Plan(pieces=cluster.split(io_inputs.frames_bound(path, feature_dim, fbank), piece_frames))
    except FormatError as e:
        return Plan(failure=str(e))


@dataclass(frozen=True)
class FileFrames:
    """The frames of a ``splittable`` input file, read by ranges where the worker runs."""

    path: str
    feature_dim: int
    fbank: FbankOptions

    def read(self, start: int, stop: int) -> np.ndarray:
        """Frames ``start .. stop - 1`` (fewer where the input ends); FormatError for a refused file."""
        return io_inputs.read_frames(self.path, self.feature_dim, self.fbank, start, stop)


def run_piece(data: bytes, key: str, backend: str | None, source, piece: cluster.Piece, settings: Settings,
              all_steps: bool) -> PieceResult | Failed:
    """On a worker: one piece of a dense model's stream, whose frames ``source.read(start, stop)`` gives (a
    ``FileFrames``); the model is ``data``, loaded once per worker."""
    model = cluster.worker_model(key, data, backend, _load)
    window, hop, smoothing = model.spec.frontend.window_frames, settings.hop, settings.smoothing_steps
    first, _ = piece.steps(window, hop)
    context = max(0, first - (smoothing - 1))  # the steps the moving average of the first one spans
    try:
        frames = source.read(context * hop, piece.stop)
    except FormatError as e:
        return Failed(str(e))
    present = max(0, context * hop + len(frames) - piece.start)
    # A fresh detector from the context's first frame steps on the stream's step grid and, after the context
    # steps, smooths as the stream's detector does. Its own lockout does not know the steps before: unused.
    det = kwsint.Detector(model, hop, smoothing_steps=smoothing, threshold=settings.threshold, lockout_steps=0)
    steps = det.push(frames) if len(frames) else None
    smoothed = steps.smoothed_q16[first - context:] if steps is not None else np.zeros(0, np.int32)
    posterior = steps.posterior_q16[first - context:] if steps is not None else np.zeros(0, np.int32)
    above = np.flatnonzero(smoothed >= det.threshold_q16)
    return PieceResult(frames=present, first_step=first, steps=len(smoothed),
                       peak_q16=int(smoothed.max()) if len(smoothed) else 0,
                       above_steps=(first + above).astype(np.int64), above_q16=smoothed[above],
                       posterior_q16=posterior if all_steps else None, smoothed_q16=smoothed if all_steps else None,
                       backend=model.backend)


def _run_whole(data: bytes, key: str, backend: str | None, name: str, settings: Settings | GraphSettings,
               all_steps: bool) -> WholeResult:
    """On a worker: a whole input, as ``run_input`` (or ``run_graph_input``) runs it."""
    model = cluster.worker_model(key, data, backend, _load)
    events: list = []
    if isinstance(settings, GraphSettings):
        run_graph_input(model, settings, name, events.append)
        return WholeResult(events, None, model.backend)
    if not all_steps:
        run_input(model, settings, name, events.append)
        return WholeResult(events, None, model.backend)
    with tempfile.TemporaryDirectory() as tmp:
        prefix = str(Path(tmp) / "steps")
        run_input(model, settings, name, events.append, prefix)
        steps = {k: np.fromfile(f"{prefix}.{k}", dtype=dtype) for k, dtype in STEP_FIELDS.items()}
    return WholeResult(events, steps, model.backend)


def inputs_in_order(workers: cluster.Workers, model_data: bytes, backend: str | None, model,
                    settings: Settings | GraphSettings, names: Sequence[str], parts: Path | None,
                    backends: set[str]) -> Iterator[Callable[[Emit], None]]:
    """For each input in order, a function that gives its events to an emit function, as ``run_input`` would
    (``kwsint.cli.run._inputs_in_order``), from the work done by ``workers``. With ``parts``, each input's step
    values go to the raw files ``parts/I.FIELD``. The workers' backends are added to ``backends``."""
    client, piece_frames = workers.client, workers.piece_frames
    sent = cluster.send_model(client, model_data, backend)
    graph = isinstance(settings, GraphSettings)
    all_steps = parts is not None
    frame_s = (MICROFRONTEND if graph else model.spec.frontend.fbank).frame_shift_ms / 1000.0
    fbank = None if graph else model.spec.frontend.fbank
    plans = [client.submit(_plan, name, model.spec.frontend.feature_dim, fbank, piece_frames, pure=False)
             if not graph and io_inputs.splittable(name, fbank) else None for name in names]
    work = []
    for name, plan in zip(names, plans):
        try:
            plan = cluster.result(plan) if plan is not None else Plan()
        except cluster.WorkersLost as e:
            plan = Plan(failure=f"{name}: {e}")
        if plan.failure is not None:
            work.append(plan)
        elif plan.pieces is None:
            future = client.submit(_run_whole, sent.data, sent.key, backend, name, settings, all_steps, pure=False)
            if workers.bar is not None:
                future.add_done_callback(functools.partial(_count_whole, workers.bar, frame_s))
            work.append(future)
        else:
            source = FileFrames(name, model.spec.frontend.feature_dim, fbank)
            futures = [client.submit(run_piece, sent.data, sent.key, backend, source, p, settings, all_steps,
                                     pure=False) for p in plan.pieces]
            for f, p in zip(futures, plan.pieces):
                workers.count(f, (p.stop - p.start) * frame_s / 3600)
            work.append(futures)
    try:
        for i, (name, item) in enumerate(zip(names, work)):
            prefix = parts / str(i) if parts is not None else None
            if isinstance(item, Plan):
                yield functools.partial(_emit_all, [Failed(item.failure)])
            elif isinstance(item, list):
                yield functools.partial(_replay_pieces, name, item, model, settings, prefix, backends)
            else:
                yield functools.partial(_replay_whole, name, item, prefix, backends)
    finally:  # stopped early (a failed input, Ctrl-C): the work not gathered is dropped
        client.cancel([f for item in work if not isinstance(item, Plan)
                       for f in (item if isinstance(item, list) else [item])])


def _count_whole(bar: cluster.HoursBar, frame_s: float, future) -> None:
    if future.status == "finished":
        result = future.result()
        hours = sum(e.frames for e in result.events if isinstance(e, StreamResult)) * frame_s / 3600
        bar.add(hours)
        bar.done(hours)


def _emit_all(events: list, emit: Emit) -> None:
    for event in events:
        emit(event)


def _replay_whole(name: str, future, prefix: Path | None, backends: set[str], emit: Emit) -> None:
    try:
        result: WholeResult = cluster.result(future)
    except cluster.WorkersLost as e:
        emit(Failed(f"{name}: {e}"))
        return
    backends.add(result.backend)
    if prefix is not None and result.steps is not None:
        for k, values in result.steps.items():
            values.tofile(f"{prefix}.{k}")
    _emit_all(result.events, emit)


def _replay_pieces(name: str, futures: list, model, settings: Settings, prefix: Path | None, backends: set[str],
                   emit: Emit) -> None:
    """A split input's events: the lockout over its pieces' steps above the threshold, in order. A refused
    input tells nothing but its failure, as ``run_input`` (which checks a file before its first frame)."""
    results = []
    for f in futures:
        try:
            r = cluster.result(f)
        except cluster.WorkersLost as e:
            r = Failed(f"{name}: {e}")
        if isinstance(r, Failed):
            emit(r)
            return
        results.append(r)
    window, hop = model.spec.frontend.window_frames, settings.hop
    stream = StreamResult(name)
    above = np.concatenate([r.above_steps for r in results])
    smoothed_above = np.concatenate([r.above_q16 for r in results])
    fired = reference.lockout_filter(above, settings.lockout_steps)  # the lockout carries across pieces
    for step, smoothed in zip(fired.tolist(), smoothed_above[np.searchsorted(above, fired)].tolist()):
        frame = window - 1 + step * hop
        stream.detections.append((frame, smoothed / 65536))
        emit(Fired(name, frame, smoothed / 65536))
    for r in results:
        backends.add(r.backend)
        stream.frames += r.frames
        stream.steps += r.steps
        stream.peak_posterior = max(stream.peak_posterior, r.peak_q16 / 65536)
    if prefix is not None:
        with contextlib.ExitStack() as files:
            step_files = {k: files.enter_context(open(f"{prefix}.{k}", "wb")) for k in STEP_FIELDS}
            for r in results:
                steps = r.first_step + np.arange(r.steps, dtype=np.int64)
                values = {"frame": window - 1 + steps * hop, "posterior_q16": r.posterior_q16,
                          "smoothed_q16": r.smoothed_q16, "fired": np.isin(steps, fired)}
                for k, f in step_files.items():
                    values[k].astype(STEP_FIELDS[k], copy=False).tofile(f)
    emit(stream)
