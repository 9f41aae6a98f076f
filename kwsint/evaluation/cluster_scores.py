"""kwsint-eval --scheduler: every model's posteriors over every stream, scored and counted on a Dask cluster.

Workers read the streams' feature files from their paths or URLs (by byte ranges), and each model's file is
sent once to each worker. A dense model's long stream is split into pieces of frames (``kwsint.cluster``), each
reading the window before its first step besides its own frames; a streaming graph's stream, whose states carry
from invoke to invoke, is scored whole. ``ClusterScores.sweep`` keeps the posteriors on the workers and brings
back each stream's distinct smoothed values and then its counts; ``ClusterScores.result`` brings back a
(model, stream)'s posteriors, the arrays one process computes (for ``--resume``, which keeps them).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .. import cluster
from ..engine import reference
from ..engine.float_model import FloatModel
from ..engine.model import Model
from ..errors import FormatError
from .counting import StreamCounts, SweepSettings, count_streams
from .manifest import FRAME_SHIFT_S, LabelledStream, load_features, stream_frames


def _load_blob(data: bytes, backend: str | None):
    from .scoring import StreamingScorer
    from ..engine.graph_model import GraphModel
    from ..engine.model import load

    model = load(data, backend=backend)
    return StreamingScorer(model, "<model>") if isinstance(model, GraphModel) else model


def _load_checkpoint(data: bytes, backend: str | None):
    from .scoring import load_model

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.pt"
        path.write_bytes(data)
        return load_model(path, backend=backend)


def _frames(stream: LabelledStream, feature_dim: int, microfrontend: bool) -> int | str:
    try:
        return stream_frames(stream, feature_dim, microfrontend)
    except FormatError as e:
        return str(e)


def _score_piece(data: bytes, key: str, backend: str | None, checkpoint: bool, stream: LabelledStream,
                 feature_dim: int, microfrontend: bool, hop: int, piece: cluster.Piece) -> tuple | str:
    """On a worker: (step_frames, posterior_q16) of a piece's steps, or a refused file's message."""
    from .scoring import score_stream

    model = cluster.worker_model(key, data, backend, _load_checkpoint if checkpoint else _load_blob)
    first, _ = piece.steps(model.window_shape[0], hop)
    start = first * hop if isinstance(model, (Model, FloatModel)) else 0  # the window before the first step
    try:
        frames = load_features(stream, feature_dim, microfrontend, start, piece.stop)
    except FormatError as e:
        return str(e)
    step_frames, posterior = score_stream(model, frames, hop)
    return step_frames + start, posterior


def _joined(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """A stream's pieces' (step_frames, posterior_q16) as one, as ``score_stream`` gives them."""
    return (np.concatenate([p[0] for p in parts]).astype(np.int64, copy=False),
            np.concatenate([p[1] for p in parts]).astype(np.int32, copy=False))


def _smoothed(parts: list, smoothing: int) -> tuple[np.ndarray, np.ndarray] | str:
    """On a worker: a stream's pieces joined, (step_frames, smoothed_q16), or a refused file's message."""
    bad = next((p for p in parts if isinstance(p, str)), None)
    if bad is not None:
        return bad
    step_frames, posterior = _joined(parts)
    return step_frames, reference.smooth_posteriors(posterior, smoothing)


def _distinct(stream: tuple | str) -> tuple[int, np.ndarray] | str:
    """On a worker: a smoothed stream's steps and distinct values (what ``sweep_thresholds`` reads)."""
    return stream if isinstance(stream, str) else (len(stream[1]), np.unique(stream[1]))


def _count(labelled: LabelledStream, stream: tuple, thresholds: np.ndarray, lockout: int,
           tolerance_s: float) -> StreamCounts:
    """On a worker: one stream's counts at each threshold (``count_streams`` counts streams apart)."""
    return count_streams([labelled], [stream[0]], [stream[1]], thresholds, lockout, tolerance_s)


class ClusterScores:
    """Models over streams on a cluster's workers: ``frames`` per stream for each kind of features, then
    ``submit`` the (model, stream) pairs to score, and per model either ``sweep`` (counts) or ``result`` for
    each stream in turn (posteriors)."""

    def __init__(self, workers: cluster.Workers, model_files: Sequence[Path], backend: str | None,
                 models: Sequence, streams: Sequence[LabelledStream], dims: dict[bool, int],
                 streaming: Sequence[bool], hops: Sequence[int]):
        self.workers, self.client, self.models, self.streams = workers, workers.client, models, streams
        self.dims, self.streaming, self.hops = dims, streaming, hops
        self.sent = [cluster.send_model(self.client, Path(f).read_bytes(), backend) for f in model_files]
        self.checkpoint = [Path(f).suffix == ".pt" for f in model_files]
        self._pending: dict[tuple[int, int], list] = {}
        self.lengths: dict[bool, list[int]] = {}

    def frames(self) -> dict[bool, list[int]]:
        """Per kind of features (microfrontend or not), each stream's frames; FormatError for the first stream
        refused, in stream order."""
        kinds = sorted(set(self.streaming))
        futures = {s: [self.client.submit(_frames, st, self.dims[s], s, pure=False) for st in self.streams]
                   for s in kinds}
        out = {}
        for s in kinds:
            try:
                out[s] = [cluster.result(f) for f in futures[s]]
            except cluster.WorkersLost as e:
                raise ValueError(f"reading the streams' lengths: {e}") from None
            bad = next((n for n in out[s] if isinstance(n, str)), None)
            if bad is not None:
                raise FormatError(bad)
        self.lengths = out
        return out

    def submit(self, pairs: Sequence[tuple[int, int]]) -> None:
        """Starts scoring these (model, stream) pairs, in this order."""
        for i, j in pairs:
            s, model = self.streaming[i], self.models[i]
            n = self.lengths[s][j]
            whole = not isinstance(model, (Model, FloatModel))
            pieces = [cluster.Piece(0, n)] if whole else cluster.split(n, self.workers.piece_frames)
            sent = self.sent[i]
            futures = [self.client.submit(_score_piece, sent.data, sent.key, sent.backend, self.checkpoint[i],
                                          self.streams[j], self.dims[s], s, self.hops[i], p, pure=False)
                       for p in pieces]
            for f, p in zip(futures, pieces):
                self.workers.count(f, (p.stop - p.start) * FRAME_SHIFT_S / 3600)
            self._pending[i, j] = futures

    def result(self, i: int, j: int) -> tuple[np.ndarray, np.ndarray]:
        """(step_frames, posterior_q16) of model i over stream j, as ``score_stream`` gives them; FormatError
        for a file refused."""
        return _joined([self._gathered(f, j) for f in self._pending.pop((i, j))])

    def sweep(self, i: int, settings: SweepSettings, progress: Callable | None,
              name: str) -> tuple[StreamCounts | None, int]:
        """``scoring.Sweep`` for model i, its posteriors kept on the workers: each stream's pieces are joined and
        smoothed on a worker, which sends back the distinct smoothed values only (at most 65,537); the
        thresholds chosen from them, each stream is counted where it lies. Only counts reach the driver."""
        streams = [self.client.submit(_smoothed, self._pending.pop((i, j)), settings.smoothing, pure=False)
                   for j in range(len(self.streams))]
        distinct = [self.client.submit(_distinct, s, pure=False) for s in streams]
        items = range(len(self.streams))
        if progress is not None:
            items = progress(items, desc=name, total=len(self.streams))
        values, steps = [], 0
        for j in items:
            n, v = self._gathered(distinct[j], j)
            steps += n
            values.append(v)
        if not steps:
            return None, 0
        thresholds = settings.thresholds(values)
        counts = [self.client.submit(_count, self.streams[j], streams[j], thresholds, settings.lockout,
                                     settings.tolerance_s, pure=False) for j in range(len(self.streams))]
        rows = [self._gathered(c, j) for j, c in enumerate(counts)]
        return StreamCounts(thresholds, *(np.concatenate([getattr(r, k) for r in rows])
                                          for k in ("hits", "false_detections", "duplicates", "spans"))), steps

    def _gathered(self, future, j: int):
        """A stream's task result; FormatError for its file refused, ValueError if its workers kept dying."""
        try:
            r = cluster.result(future)
        except cluster.WorkersLost as e:
            raise ValueError(f"{self.streams[j].where}: {e}") from None
        if isinstance(r, str):
            raise FormatError(r)
        return r

    def cancel(self) -> None:
        self.client.cancel([f for futures in self._pending.values() for f in futures])
        self._pending.clear()
