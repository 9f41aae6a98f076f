"""The whole evaluation: every model over every stream of a manifest, its DET sweep and the report."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..engine import reference
from ..engine.model import (DEFAULT_LOCKOUT_S, DEFAULT_SMOOTHING_S, DEFAULT_THRESHOLD, Model, load, lockout_steps,
                            model_names, smoothing_steps)
from ..errors import ShortInputWarning
from .counting import Det, at_frr, count_detections, relative_fdr_pct, sweep_thresholds
from .manifest import FRAME_SHIFT_S, LabelledStream, load_features, read_manifest


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
            (``kwsint.engine.model.smoothing_steps``); the default is ``Model.detector``'s and kwsint-run's.
        lockout_s: seconds after a detection in which none fires (>= 0; ``kwsint.engine.model.lockout_steps``).
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
