"""Event counting (docs/evaluation.md): detections against wakeword spans over a threshold sweep, DET counts,
the operating point and the relative FDR."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .manifest import FRAME_SHIFT_S, TIME_EPS_S, LabelledStream


def step_time_s(step_frames: np.ndarray) -> np.ndarray:
    """Time of each step in seconds: the end of its newest frame, (frame index + 1) * 10 ms."""
    return (np.asarray(step_frames, dtype=np.float64) + 1.0) * FRAME_SHIFT_S


# --- event counting ----------------------------------------------------------------


def span_labels(spans: Sequence[tuple[float, float]], times_s: np.ndarray, tolerance_s: float) -> np.ndarray:
    """For each time (seconds), the index of the span it would hit, or -1.

    A time belongs to the latest span that starts at or before it, and hits it
    when it is at most ``end + tolerance_s``: inside ``[start, end + tolerance_s]``,
    boundaries included. Returns int64 indices into ``spans``.
    """
    times = np.asarray(times_s, dtype=np.float64)
    if not len(spans):
        return np.full(times.shape, -1, dtype=np.int64)
    starts, ends = (np.array(x, dtype=np.float64) for x in zip(*spans))
    j = np.searchsorted(starts - TIME_EPS_S, times, side="right") - 1
    inside = (j >= 0) & (times <= ends[np.maximum(j, 0)] + tolerance_s + TIME_EPS_S)
    return np.where(inside, j, -1).astype(np.int64)


def _lockout_chain(positions: np.ndarray, gap: int) -> np.ndarray:
    """Indices into sorted ``positions`` of the ones that fire: the first, then each first one at least ``gap``
    after the last that fired (``reference.detect`` with lockout ``gap - 1``).

    Pointer doubling: ``jump[i]`` is the index that fires after ``i`` fired. Each
    round appends the next ``len(chain)`` detections and squares ``jump``, so
    there are about log2(detections) rounds of numpy work, in the dtype of ``positions``.
    """
    n = positions.size
    chain = np.zeros(min(n, 1), dtype=positions.dtype)
    jump = np.append(np.searchsorted(positions, positions + gap), n).astype(positions.dtype)  # jump[n] == n: none
    while True:
        new = jump[chain]
        new = new[new < n]
        if new.size == 0:
            return chain
        chain = np.concatenate([chain, new])
        jump = jump[jump]


@dataclass(frozen=True)
class Det:
    """Detection counts of one model over a threshold sweep.

    Attributes:
        threshold_q16: int64 (K,) Q16 thresholds, ascending (65536 == 1.0; one
            above the largest smoothed value gives no detection).
        hits: int64 (K,) wakeword spans with at least one detection.
        false_detections: int64 (K,) detections outside every span's window.
        duplicates: int64 (K,) further detections in spans already hit.
        spans: wakeword spans in the data (> 0).
        hours: audio of all streams, in hours.
    """

    threshold_q16: np.ndarray
    hits: np.ndarray
    false_detections: np.ndarray
    duplicates: np.ndarray
    spans: int
    hours: float

    @property
    def frr(self) -> np.ndarray:
        """False rejection rate in [0, 1]: missed spans / spans."""
        return (self.spans - self.hits) / self.spans

    @property
    def false_per_hour(self) -> np.ndarray:
        """False detections per hour of audio (all streams)."""
        return self.false_detections / self.hours

    @property
    def fdr(self) -> np.ndarray:
        """False discovery rate in [0, 1]: false / (hits + false); NaN where nothing is detected."""
        detections = self.hits + self.false_detections
        return np.where(detections > 0, self.false_detections / np.maximum(detections, 1), np.nan)


@dataclass(frozen=True)
class StreamCounts:
    """Detection counts of one model over a threshold sweep, per stream: detections never cross streams, so the
    counts of any set of streams (or a weighted resample of them) are sums of rows.

    Attributes:
        threshold_q16: int64 (K,) Q16 thresholds, ascending.
        hits, false_detections, duplicates: int32 (S, K), per stream and threshold (as in ``Det``).
        spans: int64 (S,) wakeword spans of each stream.
    """

    threshold_q16: np.ndarray
    hits: np.ndarray
    false_detections: np.ndarray
    duplicates: np.ndarray
    spans: np.ndarray

    def total(self, hours: float) -> Det:
        """The counts of all streams, with ``hours`` of audio in them."""
        return Det(self.threshold_q16, self.hits.sum(0, dtype=np.int64), self.false_detections.sum(0, dtype=np.int64),
                   self.duplicates.sum(0, dtype=np.int64), spans=int(self.spans.sum()), hours=hours)


def count_streams(
    streams: Sequence[LabelledStream],
    step_frames: Sequence[np.ndarray],
    smoothed_q16: Sequence[np.ndarray],
    thresholds_q16: Sequence[int],
    lockout: int,
    tolerance_s: float,
) -> StreamCounts:
    """Hits, false detections and duplicates of each stream at each threshold (docs/evaluation.md, "Counting").

    Args:
        streams: the labelled streams.
        step_frames, smoothed_q16: per stream, the newest frame index of each step
            and its smoothed Q16 posterior (``reference.smooth_posteriors``).
        thresholds_q16: Q16 thresholds, ascending.
        lockout: steps, as in ``reference.detect`` (>= 0).
        tolerance_s: seconds after a span's end in which a detection still hits it.

    Detections are exactly ``reference.detect(smoothed, T, lockout)`` per
    stream; all streams are processed at once, placed far enough apart that no
    lockout reaches from one into the next.
    """
    labels, positions, owners = [], [], []
    first_span = offset = 0
    dtype = np.int32 if sum(len(sf) for sf in step_frames) + len(streams) * (lockout + 1) < 2**31 else np.int64
    for i, (stream, sf) in enumerate(zip(streams, step_frames)):
        lab = span_labels(stream.spans, step_time_s(sf), tolerance_s)
        labels.append(np.where(lab >= 0, lab + first_span, -1))
        positions.append(np.arange(offset, offset + len(sf), dtype=dtype))
        owners.append(np.full(len(sf), i, dtype=np.int64))
        first_span += len(stream.spans)
        offset += len(sf) + lockout + 1
    label = np.concatenate(labels)
    position = np.concatenate(positions)
    owner = np.concatenate(owners)  # each step's stream
    spans = np.array([len(s.spans) for s in streams], dtype=np.int64)
    span_owner = np.repeat(np.arange(len(streams)), spans)
    smoothed = np.concatenate([np.asarray(s, dtype=np.int32) for s in smoothed_q16])
    thresholds = np.asarray(thresholds_q16, dtype=np.int64)
    n = len(streams)
    hits, false, dups = (np.zeros((n, thresholds.size), dtype=np.int32) for _ in range(3))
    for k, threshold in enumerate(thresholds):
        above = np.flatnonzero(smoothed >= threshold)
        fired = above[_lockout_chain(position[above], lockout + 1)]
        true = label[fired] >= 0
        hits[:, k] = np.bincount(span_owner[np.unique(label[fired[true]])], minlength=n)
        false[:, k] = np.bincount(owner[fired[~true]], minlength=n)
        dups[:, k] = np.bincount(owner[fired[true]], minlength=n) - hits[:, k]
    return StreamCounts(thresholds, hits, false, dups, spans)


def sweep_thresholds(smoothed_q16: Sequence[np.ndarray], max_thresholds: int) -> np.ndarray:
    """Q16 thresholds of a DET sweep, ascending: every distinct smoothed value when there are fewer than
    ``max_thresholds``, else ``max_thresholds - 1`` of them evenly spaced in rank; then one above the largest
    value (no detections)."""
    values = np.unique(np.concatenate([np.asarray(s, dtype=np.int64) for s in smoothed_q16]))
    if values.size >= max_thresholds:
        values = values[np.unique(np.linspace(0, values.size - 1, max_thresholds - 1).round().astype(np.int64))]
    return np.append(values, values[-1] + 1)


@dataclass(frozen=True)
class SweepSettings:
    """How one model's posteriors become DET counts: smoothed over ``smoothing`` steps and locked out for
    ``lockout`` steps (``reference.detect``), at most ``max_thresholds`` swept thresholds (``sweep_thresholds``)
    with ``extra_threshold`` (Q16) among them if given, and a detection up to ``tolerance_s`` seconds after a
    span's end still its hit."""

    smoothing: int
    lockout: int
    max_thresholds: int
    tolerance_s: float
    extra_threshold: int | None = None

    def thresholds(self, smoothed_q16: Sequence[np.ndarray]) -> np.ndarray:
        """The Q16 thresholds swept over these smoothed posteriors (or their distinct values), ascending."""
        thresholds = sweep_thresholds(smoothed_q16, self.max_thresholds)
        if self.extra_threshold is not None:
            thresholds = np.union1d(thresholds, [self.extra_threshold])
        return thresholds


# --- operating point and relative FDR ---------------------------------------------


def at_frr(det: Det, frr: float) -> tuple[float, float] | None:
    """(FDR, false detections per hour) of a DET curve at the false rejection rate ``frr`` in [0, 1].

    Of the points with equal FRR (equal hits), the one with the fewest false
    detections counts; between those, both are linear in FRR. Points without
    detections have no FDR and are left out. None outside the FRR range of the rest.
    """
    return curve_at_frr(det.hits, det.false_detections, det.spans, det.hours, frr)


def curve_at_frr(hits: np.ndarray, false: np.ndarray, spans: float, hours: float,
                 frr: float) -> tuple[float, float] | None:
    """``at_frr`` of a curve given as counts: int64 (K,) hits and false detections of ``spans`` wakeword spans in
    ``hours`` of audio (a bootstrap replicate's are weighted sums, so ``spans`` and ``hours`` are plain numbers)."""
    detected = hits + false > 0
    levels_hits, inverse = np.unique(hits[detected], return_inverse=True)
    fewest = np.full(levels_hits.size, np.iinfo(np.int64).max)
    np.minimum.at(fewest, inverse, false[detected])
    levels_hits, fewest = levels_hits[::-1], fewest[::-1]  # ascending FRR
    levels = (spans - levels_hits) / spans
    if levels_hits.size == 0 or not levels[0] - 1e-12 <= frr <= levels[-1] + 1e-12:
        return None
    return (float(np.interp(frr, levels, fewest / (levels_hits + fewest))),
            float(np.interp(frr, levels, fewest / hours)))


def relative_fdr_pct(fdr: float | None, base_fdr: float | None) -> float | None:
    """(FDR - baseline FDR) / baseline FDR in percent; None when either is unknown or the baseline's is 0."""
    if fdr is None or not base_fdr:
        return None
    return 100.0 * (fdr - base_fdr) / base_fdr
