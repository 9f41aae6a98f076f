"""Labelled evaluation of streaming wakeword models: DET curves and relative FDR.

``docs/evaluation.md`` is the specification: the manifest format, the event
counting rules and the metrics. In short: every model runs over every stream of
a manifest (``score_stream``), its Q16 posteriors are smoothed and thresholded
exactly as ``kwsint.reference.smooth_posteriors`` and ``detect`` specify, and
each detection is a hit for a wakeword span, a duplicate in a span already hit,
or a false detection (``count_detections``). A threshold sweep gives the DET
curves (FRR against false detections per hour and against FDR), and each model's
FDR is compared with the baseline's at the baseline's FRR (``evaluate``).
"""

from __future__ import annotations

import io
import json
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import reference
from .errors import FormatError, ShortInputWarning
from .model import (DEFAULT_LOCKOUT_S, DEFAULT_SMOOTHING_S, DEFAULT_THRESHOLD, Model, load, model_names,
                    lockout_steps, smoothing_steps)

FRAME_SHIFT_S = 0.010
"""Seconds between feature frames."""
TIME_EPS_S = 1e-6
"""Times closer than this (seconds) compare equal: a detection exactly on a span boundary is inside it."""
KINDS = ("positive", "negative")
_STREAM_FIELDS = {"features", "kind", "spans"}


# --- manifest ----------------------------------------------------------------------


@dataclass(frozen=True)
class LabelledStream:
    """One stream of a manifest.

    Attributes:
        features: path of a float32 (T, feature_dim) ``.npy`` file, frames 10 ms apart.
        kind: ``"positive"`` or ``"negative"``.
        spans: wakeword (start, end) times in seconds from the stream's first frame,
            0 <= start < end, sorted and non-overlapping; empty for negatives.
        where: the manifest entry, for messages (``data.json: streams[3]``).
    """

    features: Path
    kind: str
    spans: tuple[tuple[float, float], ...]
    where: str


def _number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise FormatError(f"{where}: expected a finite number of seconds, got {value!r}")
    return float(value)


def _parse_stream(entry, where: str, base: Path) -> LabelledStream:
    if not isinstance(entry, dict):
        raise FormatError(f"{where}: expected an object with 'features' and 'kind', got {type(entry).__name__}")
    unknown = sorted(set(entry) - _STREAM_FIELDS)
    if unknown:
        raise FormatError(f"{where}: unknown field {unknown[0]!r} (fields: {', '.join(sorted(_STREAM_FIELDS))})")
    features = entry.get("features")
    if not isinstance(features, str) or not features:
        raise FormatError(f"{where}: features: expected the path of a .npy file, got {features!r}")
    kind = entry.get("kind")
    if kind not in KINDS:
        raise FormatError(f"{where}: kind: expected 'positive' or 'negative', got {kind!r}")
    raw = entry.get("spans")
    if kind == "negative":
        if raw not in (None, []):
            raise FormatError(f"{where}: spans: a negative stream has no wakeword spans")
        raw = []
    elif not isinstance(raw, list) or not raw:
        raise FormatError(f"{where}: spans: a positive stream needs a non-empty list of [start, end] seconds")
    spans = []
    for i, span in enumerate(raw):
        at = f"{where}: spans[{i}]"
        if not isinstance(span, list) or len(span) != 2:
            raise FormatError(f"{at}: expected [start, end] in seconds, got {span!r}")
        start, end = _number(span[0], at), _number(span[1], at)
        if not 0.0 <= start < end:
            raise FormatError(f"{at}: expected 0 <= start < end, got [{start}, {end}]")
        if spans and start < spans[-1][1]:
            raise FormatError(f"{at}: starts at {start} s, before the previous span ends ({spans[-1][1]} s); "
                              "spans must be sorted and must not overlap")
        spans.append((start, end))
    path = Path(features)
    return LabelledStream(path if path.is_absolute() else base / path, kind, tuple(spans), where)


def read_manifest(path: str | Path) -> list[LabelledStream]:
    """Streams of a manifest: JSON ``{"streams": [...]}`` or JSON lines (``.jsonl``, one stream a line).

    Relative feature paths are relative to the manifest's directory. Raises
    FormatError naming the file, the entry and the field.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise FormatError(f"{path}: cannot read the manifest: {e}") from e
    if path.suffix == ".jsonl":
        entries = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    entries.append((json.loads(line), f"{path}:{lineno}"))
                except json.JSONDecodeError as e:
                    raise FormatError(f"{path}:{lineno}: not JSON: {e}") from e
    else:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise FormatError(f"{path}: not JSON: {e}") from e
        if not isinstance(doc, dict) or not set(doc) <= {"streams", "frame_shift"} \
                or not isinstance(doc.get("streams"), list):
            raise FormatError(f"{path}: expected an object with 'streams', a list of streams, "
                              "and optionally 'frame_shift'")
        if doc.get("frame_shift", FRAME_SHIFT_S) != FRAME_SHIFT_S:
            raise FormatError(f"{path}: frame_shift: expected {FRAME_SHIFT_S} (seconds), got {doc['frame_shift']!r}")
        entries = [(entry, f"{path}: streams[{i}]") for i, entry in enumerate(doc["streams"])]
    streams = [_parse_stream(entry, where, path.parent) for entry, where in entries]
    if not any(s.kind == "positive" for s in streams):
        raise FormatError(f"{path}: no positive stream: the false rejection rate needs wakeword spans")
    return streams


def load_features(stream: LabelledStream, feature_dim: int) -> np.ndarray:
    """The stream's (T, feature_dim) float32 frames; FormatError naming the entry and the file otherwise.

    Also checks that every span ends within the stream (T frames last T * 10 ms).
    """
    where = f"{stream.where}: features {stream.features}"
    try:
        a = np.load(stream.features, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise FormatError(f"{where}: cannot read as .npy: {e}") from e
    if a.ndim != 2 or a.shape[1] != feature_dim or a.dtype.kind != "f":
        raise FormatError(f"{where}: expected float frames of shape (T, {feature_dim}), got {a.dtype} {a.shape}")
    if not np.isfinite(a).all():
        raise FormatError(f"{where}: frames contain NaN or Inf")
    duration = len(a) * FRAME_SHIFT_S
    for i, (_, end) in enumerate(stream.spans):
        if end > duration + TIME_EPS_S:
            raise FormatError(f"{stream.where}: spans[{i}]: ends at {end} s, after the stream "
                              f"({len(a)} frames = {duration:.2f} s)")
    return a.astype(np.float32, copy=False)


# --- scoring -----------------------------------------------------------------------


def step_time_s(step_frames: np.ndarray) -> np.ndarray:
    """Time of each step in seconds: the end of its newest frame, (frame index + 1) * 10 ms."""
    return (np.asarray(step_frames, dtype=np.float64) + 1.0) * FRAME_SHIFT_S


def score_stream(model: Model, frames: np.ndarray, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """Q16 wakeword posteriors of one stream, through the C streaming detector.

    The model runs every ``hop`` frames once a full window is present. Returns
    ``step_frames`` (int64, the 0-based index of each step's newest frame) and
    ``posterior_q16`` (int32 in [0, 65536]), one entry per step. Smoothing and
    decisions are swept afterwards (``sweep_thresholds``), so the detector's own
    are not used here.
    """
    steps = model.detector(hop).push(np.ascontiguousarray(frames, dtype=np.float32))
    return steps.frame, steps.posterior_q16


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


def count_detections(
    streams: Sequence[LabelledStream],
    step_frames: Sequence[np.ndarray],
    smoothed_q16: Sequence[np.ndarray],
    thresholds_q16: Sequence[int],
    lockout: int,
    tolerance_s: float,
    hours: float,
) -> Det:
    """Hits, false detections and duplicates at each threshold (docs/evaluation.md, "Counting").

    Args:
        streams: the labelled streams.
        step_frames, smoothed_q16: per stream, the newest frame index of each step
            and its smoothed Q16 posterior (``reference.smooth_posteriors``).
        thresholds_q16: Q16 thresholds, ascending.
        lockout: steps, as in ``reference.detect`` (>= 0).
        tolerance_s: seconds after a span's end in which a detection still hits it.
        hours: audio of all streams, in hours.

    Detections are exactly ``reference.detect(smoothed, T, lockout)`` per
    stream; all streams are processed at once, placed far enough apart that no
    lockout reaches from one into the next.
    """
    labels, positions = [], []
    first_span = offset = 0
    dtype = np.int32 if sum(len(sf) for sf in step_frames) + len(streams) * (lockout + 1) < 2**31 else np.int64
    for stream, sf in zip(streams, step_frames):
        lab = span_labels(stream.spans, step_time_s(sf), tolerance_s)
        labels.append(np.where(lab >= 0, lab + first_span, -1))
        positions.append(np.arange(offset, offset + len(sf), dtype=dtype))
        first_span += len(stream.spans)
        offset += len(sf) + lockout + 1
    label = np.concatenate(labels)
    position = np.concatenate(positions)
    smoothed = np.concatenate([np.asarray(s, dtype=np.int32) for s in smoothed_q16])
    thresholds = np.asarray(thresholds_q16, dtype=np.int64)
    hits, false, dups = (np.zeros(thresholds.size, dtype=np.int64) for _ in range(3))
    for k, threshold in enumerate(thresholds):
        above = np.flatnonzero(smoothed >= threshold)
        fired = label[above[_lockout_chain(position[above], lockout + 1)]]
        true = fired[fired >= 0]
        hits[k] = np.unique(true).size
        false[k] = fired.size - true.size
        dups[k] = true.size - hits[k]
    return Det(thresholds, hits, false, dups, spans=first_span, hours=hours)


def sweep_thresholds(smoothed_q16: Sequence[np.ndarray], max_thresholds: int) -> np.ndarray:
    """Q16 thresholds of a DET sweep, ascending: every distinct smoothed value when there are fewer than
    ``max_thresholds``, else ``max_thresholds - 1`` of them evenly spaced in rank; then one above the largest
    value (no detections)."""
    values = np.unique(np.concatenate([np.asarray(s, dtype=np.int64) for s in smoothed_q16]))
    if values.size >= max_thresholds:
        values = values[np.unique(np.linspace(0, values.size - 1, max_thresholds - 1).round().astype(np.int64))]
    return np.append(values, values[-1] + 1)


# --- operating point and relative FDR ---------------------------------------------


def at_frr(det: Det, frr: float) -> tuple[float, float] | None:
    """(FDR, false detections per hour) of a DET curve at the false rejection rate ``frr`` in [0, 1].

    Of the points with equal FRR (equal hits), the one with the fewest false
    detections counts; between those, both are linear in FRR. Points without
    detections have no FDR and are left out. None outside the FRR range of the rest.
    """
    detected = det.hits + det.false_detections > 0
    hits, inverse = np.unique(det.hits[detected], return_inverse=True)
    fewest = np.full(hits.size, np.iinfo(np.int64).max)
    np.minimum.at(fewest, inverse, det.false_detections[detected])
    hits, fewest = hits[::-1], fewest[::-1]  # ascending FRR
    levels = (det.spans - hits) / det.spans
    if hits.size == 0 or not levels[0] - 1e-12 <= frr <= levels[-1] + 1e-12:
        return None
    return (float(np.interp(frr, levels, fewest / (hits + fewest))),
            float(np.interp(frr, levels, fewest / det.hours)))


def relative_fdr_pct(fdr: float | None, base_fdr: float | None) -> float | None:
    """(FDR - baseline FDR) / baseline FDR in percent; None when either is unknown or the baseline's is 0."""
    if fdr is None or not base_fdr:
        return None
    return 100.0 * (fdr - base_fdr) / base_fdr


# --- the whole evaluation ----------------------------------------------------------


def _dense_bits(info: dict) -> str:
    bits = [layer["weight_bits"] for layer in info["layers"] if layer["kind"] == "dense"]
    return str(bits[0]) if len(set(bits)) == 1 else "/".join(map(str, bits))


def _evaluate_model(name: str, path: str, model: Model, streams: Sequence[LabelledStream],
                    features: Sequence[np.ndarray], hours: float, extra_threshold: int | None, *, hop: int,
                    smoothing_s: float, lockout_s: float, tolerance_s: float, max_thresholds: int,
                    progress: Callable | None) -> tuple[Det, dict]:
    """One model's DET sweep (with ``extra_threshold`` among the thresholds, if given) and its report entry."""
    smoothing, lockout = smoothing_steps(smoothing_s, hop), lockout_steps(lockout_s, hop)
    items = zip(streams, features)
    if progress is not None:
        items = progress(items, desc=name, total=len(streams))
    step_frames, smoothed = [], []
    for _, frames in items:
        sf, posterior = score_stream(model, frames, hop)
        step_frames.append(sf)
        smoothed.append(reference.smooth_posteriors(posterior, smoothing))
    if not any(len(sf) for sf in step_frames):
        raise ValueError(f"{path}: no stream is as long as one window ({model.window_shape[0]} frames): "
                         "nothing to evaluate")
    thresholds = sweep_thresholds(smoothed, max_thresholds)
    if extra_threshold is not None:
        thresholds = np.union1d(thresholds, [extra_threshold])
    det = count_detections(streams, step_frames, smoothed, thresholds, lockout, tolerance_s, hours)
    info = model.info()
    return det, dict(
        name=name, path=path, weight_bits=_dense_bits(info), act_bits=info["act_bits"],
        blob_bytes=info["blob_bytes"], hop=hop, smoothing_steps=smoothing, lockout_steps=lockout,
        steps=int(sum(len(s) for s in step_frames)),
        det=dict(threshold=(det.threshold_q16 / 65536.0).tolist(), threshold_q16=det.threshold_q16.tolist(),
                 frr=det.frr.tolist(), false_per_hour=det.false_per_hour.tolist(),
                 fdr=[None if math.isnan(x) else x for x in det.fdr.tolist()], hits=det.hits.tolist(),
                 false_detections=det.false_detections.tolist(), duplicates=det.duplicates.tolist()))


def evaluate(
    manifest: str | Path,
    model_paths: Sequence[str | Path],  # .kwsq files, or default:NAME
    *,
    smoothing_s: float = DEFAULT_SMOOTHING_S,
    lockout_s: float = DEFAULT_LOCKOUT_S,
    tolerance_s: float = 0.5,
    threshold: float | None = None,
    false_per_hour: float | None = None,
    hop: int | None = None,
    max_thresholds: int = 1000,
    backend: str | None = None,
    progress: Callable | None = None,
) -> dict:
    """Evaluate models on a labelled manifest; the first model is the baseline.

    Args:
        smoothing_s: moving-average window in seconds (>= 0), in whole steps of each model's hop
            (``kwsint.model.smoothing_steps``); the default is ``Model.detector``'s and kwsint-run's.
        lockout_s: seconds after a detection in which none fires (>= 0; ``kwsint.model.lockout_steps``).
        tolerance_s: seconds after a span's end that still count as a hit (>= 0).
        threshold, false_per_hour: the baseline's operating point, at most one of
            them: its threshold in [0, 1] (default ``DEFAULT_THRESHOLD``, 0.5), or its lowest swept
            threshold with at most this many false detections per hour (>= 0).
        hop: frames between steps (default: each model's frame stride).
        max_thresholds: thresholds per DET sweep (>= 2).
        progress: wraps the iterable of streams, called as
            ``progress(iterable, desc=model name, total=n)`` (tqdm's signature).

    A stream shorter than a model's window gives that model no step, so its
    spans count as missed: each such stream gets a ``ShortInputWarning``.

    Returns the report (JSON-ready): data totals, settings, the operating point
    and per model its bits, size, steps, FDR at the operating point and the DET sweep.
    Raises FormatError for a bad manifest or feature file, ValueError for bad
    arguments, OSError for an unreadable model.
    """
    if threshold is not None and false_per_hour is not None:
        raise ValueError("give the operating point as a threshold or as false detections per hour, not both")
    if false_per_hour is None:
        threshold = DEFAULT_THRESHOLD if threshold is None else threshold
        op = reference.threshold_q16(threshold)
    else:
        op = None
    if (not tolerance_s >= 0 or (hop is not None and hop < 1) or max_thresholds < 2
            or (false_per_hour is not None and not false_per_hour >= 0)):
        raise ValueError("need tolerance >= 0, hop >= 1, max_thresholds >= 2 and false_per_hour >= 0")
    streams = read_manifest(manifest)
    paths = [str(p) for p in model_paths]  # str: "default:M4" names a shipped model
    if not paths:
        raise ValueError("no models to evaluate")
    models = [load(p, backend=backend) for p in paths]
    hops = [hop or m.spec.frontend.frame_stride for m in models]
    for h in hops:  # ValueError before the long part
        smoothing_steps(smoothing_s, h)
        lockout_steps(lockout_s, h)
    dims = sorted({m.window_shape[1] for m in models})
    if len(dims) != 1:
        raise ValueError(f"the models take different feature sizes: {dims}")
    features = [load_features(s, dims[0]) for s in streams]
    frames = [len(f) for f in features]
    window = max(m.window_shape[0] for m in models)
    for s, n in zip(streams, frames):
        if n < window:
            warnings.warn(ShortInputWarning(f"{s.where}: features {s.features}", n, window), stacklevel=2)

    hours = sum(frames) * FRAME_SHIFT_S / 3600.0
    options = dict(smoothing_s=smoothing_s, lockout_s=lockout_s, tolerance_s=tolerance_s,
                   max_thresholds=max_thresholds, progress=progress)
    dets, results = zip(*(_evaluate_model(name, path, model, streams, features, hours, op if i == 0 else None,
                                          hop=h, **options)
                          for i, (name, path, model, h) in enumerate(zip(model_names(paths), paths, models, hops))))
    base = dets[0]
    if op is None:
        op = int(base.threshold_q16[np.flatnonzero(base.false_per_hour <= false_per_hour)[0]])
    op_frr = float(base.frr[np.searchsorted(base.threshold_q16, op)])
    base_point = at_frr(base, op_frr)
    base_fdr = base_point[0] if base_point else None
    for result, det in zip(results, dets):
        fdr, fph = at_frr(det, op_frr) or (None, None)
        result["at_operating_point"] = dict(fdr=fdr, false_per_hour=fph,
                                            relative_fdr_degradation_pct=relative_fdr_pct(fdr, base_fdr))
    positives = sum(s.kind == "positive" for s in streams)
    return dict(
        manifest=str(manifest),
        data=dict(streams=len(streams), positive_streams=positives, negative_streams=len(streams) - positives,
                  spans=base.spans, hours=hours),
        settings=dict(smoothing_s=smoothing_s, lockout_s=lockout_s, tolerance_s=tolerance_s,
                      max_thresholds=max_thresholds, backend=models[0].backend),
        operating_point=dict(model=results[0]["name"], threshold=op / 65536.0, threshold_q16=op, frr=op_frr,
                             chosen_by="threshold" if false_per_hour is None else "false_per_hour",
                             false_per_hour_target=false_per_hour),
        models=list(results),
    )


# --- outputs -----------------------------------------------------------------------


def _fmt(x: float | None, digits: int) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def markdown_report(report: dict) -> str:
    """The report as markdown: data, settings, operating point and one table row per model (the paper's Table 3)."""
    d, s, op = report["data"], report["settings"], report["operating_point"]
    how = (f"threshold {op['threshold']:.4f}" if op["chosen_by"] == "threshold" else
           f"threshold {op['threshold']:.4f} (its lowest with at most {op['false_per_hour_target']:g} false "
           "detections per hour)")
    lines = [
        "# kwsint-eval report", "",
        f"Manifest `{report['manifest']}`: {d['streams']} streams ({d['positive_streams']} positive with "
        f"{d['spans']} wakeword spans, {d['negative_streams']} negative), {d['hours']:.3f} h of audio.",
        f"Smoothing {s['smoothing_s']:g} s, lockout {s['lockout_s']:g} s, tolerance {s['tolerance_s']:g} s.",
        f"Operating point: baseline `{op['model']}` at {how}, FRR {100 * op['frr']:.2f}%. "
        "FDR = false / (hits + false); relative FDR degradation = (FDR - FDR_baseline) / FDR_baseline "
        "at that FRR.", "",
        "| model | weight bits | act. bits | model size (bytes) | model size (KiB) | FDR (%) | false det. / h "
        "| rel. FDR degrad. (%) |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for m in report["models"]:
        p = m["at_operating_point"]
        fdr = None if p["fdr"] is None else 100 * p["fdr"]
        lines.append(f"| {m['name']} | {m['weight_bits']} | {m['act_bits']} | {m['blob_bytes']} | "
                     f"{m['blob_bytes'] / 1024:.1f} | {_fmt(fdr, 2)} | {_fmt(p['false_per_hour'], 2)} | "
                     f"{_fmt(p['relative_fdr_degradation_pct'], 1)} |")
    return "\n".join(lines) + "\n"


def plot_det(report: dict) -> bytes:
    """PNG of the DET curves: FRR against false detections per hour and against FDR, one line per model.

    Points run in threshold order; the dots mark each model at the baseline's
    operating FRR. Thresholds without detections are left out of the FDR panel.
    """
    from matplotlib.figure import Figure  # no pyplot: the Agg canvas, no global state

    fig = Figure(figsize=(12, 5), dpi=110, layout="constrained")
    ax_fph, ax_fdr = fig.subplots(1, 2)
    op = report["operating_point"]
    positive = np.concatenate([np.asarray(m["det"]["false_per_hour"]) for m in report["models"]])
    positive = positive[positive > 0]
    log = positive.size > 0 and positive.max() > 10 * positive.min()
    if log:
        ax_fph.set_yscale("log")
    for m in report["models"]:
        det, p = m["det"], m["at_operating_point"]
        frr = 100 * np.asarray(det["frr"])
        label = f"{m['name']} (w{m['weight_bits']}/a{m['act_bits']}, {m['blob_bytes'] / 1024:.1f} KiB)"
        fph = np.asarray(det["false_per_hour"])
        line, = ax_fph.plot(frr, np.where(fph > 0, fph, np.nan) if log else fph, label=label)
        ax_fdr.plot(frr, 100 * np.array(det["fdr"], dtype=float), color=line.get_color(), label=label)  # None: NaN
        if p["fdr"] is not None:
            ax_fph.plot(100 * op["frr"], p["false_per_hour"], "o", color=line.get_color())
            ax_fdr.plot(100 * op["frr"], 100 * p["fdr"], "o", color=line.get_color())
    for ax, ylabel in ((ax_fph, "false detections per hour"), (ax_fdr, "FDR (%): false / (hits + false)")):
        ax.axvline(100 * op["frr"], color="0.6", linestyle="--", linewidth=1, label="operating point (baseline FRR)")
        ax.set_xlabel("FRR (%): missed wakewords / wakewords")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
    ax_fdr.legend(fontsize="small")
    s = report["settings"]
    note = "; zero false detections not shown on the log axis" if log else ""
    fig.suptitle(f"DET curves: {report['data']['spans']} wakewords, {report['data']['hours']:.2f} h audio; "
                 f"smoothing {s['smoothing_s']:g} s, lockout {s['lockout_s']:g} s, "
                 f"tolerance {s['tolerance_s']:g} s{note}")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
