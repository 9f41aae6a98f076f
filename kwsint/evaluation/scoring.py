"""The whole evaluation: every model over every stream of a manifest, its DET sweep and the report."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import math
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .. import cluster, default_model
from ..engine import reference
from ..engine.float_model import FloatModel, from_net
from ..engine.model import (DEFAULT_LOCKOUT_S, DEFAULT_SMOOTHING_S, DEFAULT_THRESHOLD, Model, load, lockout_steps,
                            model_names, smoothing_steps)
from ..errors import ShortInputWarning
from .bootstrap import interval, operating_point_replicates, resample_weights
from .breakdown import tag_breakdown
from .counting import Det, StreamCounts, SweepSettings, at_frr, count_streams, relative_fdr_pct
from .cluster_scores import ClusterScores
from .manifest import FRAME_SHIFT_S, LabelledStream, Selection, load_features, parse_selection, read_manifest, \
    select_streams
from .resume import ScoreStore

FLOAT_MODELS = ("M0",)
"""The shipped float checkpoints (``default:M0``: ``M0.pt``) that ``load_model`` runs on the float path."""


class StreamingScorer:
    """A streaming conv model on a stream of microfrontend features: a streaming graph (``GraphModel``, a kind-1
    blob: kwsint-export of a conv checkpoint, or kwsint-import of a microWakeWord model) run invoke by invoke in
    C, or a float conv checkpoint run on the same whole windows in PyTorch.

    Steps are the invokes: one every ``hop`` (the input tensor's frames) feature frames, from the stream's start,
    once the first ``window`` frames (the receptive field) are in; the posterior is the uint8 probability times
    256 (Q16). ESPHome's own detection rule (kwsint-run) is not used here: smoothing, lockout and thresholds are
    swept as for every model, so conv and dense models are counted alike (docs/evaluation.md).
    """

    def __init__(self, model, source: str) -> None:
        from ..engine.graph import receptive_field
        from ..engine.graph_model import GraphModel

        self.graph = model if isinstance(model, GraphModel) else None
        self.net = None if self.graph else model
        if self.graph:
            spec = self.graph.spec
            out = spec.tensors[spec.output]
            if (out.dtype, out.frames, out.channels) != ("uint8", 1, 1):
                raise ValueError(f"{source}: output: expected one uint8 probability per invoke (a wake word model), "
                                 f"got {out.frames} x {out.channels} {out.dtype}")
            self.hop, self.window = spec.tensors[spec.input].frames, receptive_field(spec)
            self.backend, features = self.graph.backend, spec.tensors[spec.input].channels
        else:
            self.hop, self.window, self.backend = model.config.stride, model.config.window_frames, "float32 (torch)"
            features = model.config.feature_dim
        self.window_shape = (self.window, features)

    def score(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(step_frames, posterior_q16) of one stream's float (T, features) microfrontend features."""
        from ..io.microfrontend import quantize_features

        n = len(features) // self.hop
        ends = np.arange(n) * self.hop + self.hop - 1  # each invoke's newest frame
        ready = ends >= self.window - 1
        if self.graph is not None:
            codes = quantize_features(features[: n * self.hop]).reshape(n, self.hop, features.shape[1])
            out = self.graph.stream().invoke_many(codes).reshape(n).astype(np.int32) if n else np.zeros(0, np.int32)
            return ends[ready].astype(np.int64), out[ready] * 256
        import torch

        windows = np.stack([features[e - self.window + 1: e + 1] for e in ends[ready]]) if ready.any() else \
            np.zeros((0, *self.window_shape), np.float32)
        with torch.no_grad():
            logits = np.concatenate([self.net(torch.from_numpy(windows[i: i + 4096])).numpy().astype(np.float64)
                                     for i in range(0, len(windows), 4096)] or [np.zeros(0)])
        with np.errstate(over="ignore"):
            p = 65536.0 / (1.0 + np.exp(-logits))
        return ends[ready].astype(np.int64), np.clip(np.floor(p + 0.5), 0, 65536).astype(np.int32)

    def describe(self) -> dict:
        if self.graph is None:
            return dict(weight_bits="f32", act_bits=32, size_bytes=4 * sum(p.numel() for p in self.net.parameters()))
        # a graph blob holds int8 codes, not the bits they were trained at: the width its widest code needs
        bits = max(int(np.abs(op.weights.astype(np.int64)).max()).bit_length() + 1
                   for op in self.graph.spec.ops if hasattr(op, "weights"))
        return dict(weight_bits=str(bits), act_bits=8, size_bytes=self.graph.blob_bytes)


def _model_file(ref: str) -> Path:
    """The file ``load_model`` reads for ``ref``."""
    name = ref.removeprefix(default_model.SHIPPED_PREFIX)
    if ref.startswith(default_model.SHIPPED_PREFIX):
        return default_model.path(f"{name}.pt") if name in FLOAT_MODELS else default_model.model_path(ref)
    return Path(ref)


def load_model(ref: str | Path, *, backend: str | None = None) -> Model | FloatModel | StreamingScorer:
    """A model to evaluate: a ``.kwsq`` blob or ``default:NAME`` (``kwsint.engine.model.load``), or a float-stage
    training checkpoint (``.pt``, ``kwsint.train.qat.checkpoint``; ``default:M0``, the shipped one), run in
    float32 on the C float path (``FloatModel``). Reading a checkpoint needs PyTorch.

    Raises ValueError (FormatError, CheckpointError) for a file that is refused, OSError for one not read.
    """
    ref = str(ref)
    name = ref.removeprefix(default_model.SHIPPED_PREFIX)
    if ref.startswith(default_model.SHIPPED_PREFIX) and name in FLOAT_MODELS:
        path = default_model.path(f"{name}.pt")
    elif Path(ref).suffix == ".pt":
        path = Path(ref)
    else:
        model = load(ref, backend=backend)
        return model if isinstance(model, Model) else StreamingScorer(model, ref)
    if importlib.util.find_spec("torch") is None:
        raise ValueError(f"{ref}: reading a float checkpoint needs PyTorch: pip install 'kwsint[train]'")
    from ..train.qat.checkpoint import load_checkpoint  # torch: only for checkpoints

    net = load_checkpoint(path).model
    if net.arch == "conv" and net.stage == "float":
        net.eval()
        return StreamingScorer(net, ref)
    if net.stage != "float":
        raise ValueError(f"{ref}: a {net.stage} checkpoint; the float path runs float-stage ones only (export this "
                         "one with kwsint-export and evaluate the .kwsq)")
    return FloatModel(from_net(net), backend=backend)


def float_posterior_q16(logits: np.ndarray) -> np.ndarray:
    """int32 Q16 wakeword posteriors of float (N, 2) (not-wakeword, wakeword) logits: the 2-way softmax's
    wakeword probability 1 / (1 + exp(l0 - l1)) in float64, rounded to nearest (halves up, as the integer path's
    table, docs/arithmetic.md 6) and within [0, 65536]."""
    diff = np.asarray(logits, dtype=np.float64)
    with np.errstate(over="ignore"):  # exp overflows to inf: the posterior is then 0, as it should be
        p = 65536.0 / (1.0 + np.exp(diff[:, 0] - diff[:, 1]))
    return np.clip(np.floor(p + 0.5), 0, 65536).astype(np.int32)


def score_stream(model: Model | FloatModel, frames: np.ndarray, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """Q16 wakeword posteriors of one stream.

    The model runs every ``hop`` frames once a full window is present: through
    the C streaming detector for an integer model, through
    ``FloatModel.infer_steps`` (the same steps) and ``float_posterior_q16`` for
    a float one. Returns ``step_frames`` (int64, the 0-based index of each
    step's newest frame) and ``posterior_q16`` (int32 in [0, 65536]), one entry
    per step. Smoothing and decisions are swept afterwards
    (``sweep_thresholds``), so the detector's own are not used here.
    """
    frames = np.ascontiguousarray(frames, dtype=np.float32)
    if isinstance(model, StreamingScorer):
        return model.score(frames)
    if isinstance(model, FloatModel):
        step_frames, logits = model.infer_steps(frames, hop)
        return step_frames, float_posterior_q16(logits)
    steps = model.detector(hop).push(frames)
    return steps.frame, steps.posterior_q16


def _describe(model: Model | FloatModel) -> dict:
    """The report's weight bits, activation bits and size in bytes: the blob's, or a float model's weights'."""
    if isinstance(model, StreamingScorer):
        return model.describe()
    info = model.info()
    if isinstance(model, FloatModel):
        return dict(weight_bits="f32", act_bits=32, size_bytes=info["weight_bytes_in_memory"])
    bits = [layer["weight_bits"] for layer in info["layers"] if layer["kind"] == "dense"]
    return dict(weight_bits=str(bits[0]) if len(set(bits)) == 1 else "/".join(map(str, bits)),
                act_bits=info["act_bits"], size_bytes=info["blob_bytes"])


Sweep = Callable[[SweepSettings, Callable | None, str], tuple[StreamCounts | None, int]]
"""A model's DET counts per stream and its steps in all (None and 0 when no stream has a step):
``sweep(settings, progress, name)``, with ``progress`` (or None) wrapping the streams as ``evaluate``'s does."""


def _sweep(scores: Callable[[int], tuple[np.ndarray, np.ndarray]], streams: Sequence[LabelledStream],
           settings: SweepSettings, progress: Callable | None, name: str) -> tuple[StreamCounts | None, int]:
    """A ``Sweep`` here, of the posteriors ``scores(j)`` gives for stream j: (step_frames, posterior_q16)."""
    items = range(len(streams))
    if progress is not None:
        items = progress(items, desc=name, total=len(streams))
    step_frames, smoothed = [], []
    for j in items:
        sf, posterior = scores(j)
        step_frames.append(sf)
        smoothed.append(reference.smooth_posteriors(posterior, settings.smoothing))
    steps = sum(len(sf) for sf in step_frames)
    if not steps:
        return None, 0
    thresholds = settings.thresholds(smoothed)
    return count_streams(streams, step_frames, smoothed, thresholds, settings.lockout, settings.tolerance_s), steps


def _evaluate_model(name: str, path: str, model: Model | FloatModel, sweep: Sweep, hours: float,
                    extra_threshold: int | None, *, hop: int, smoothing_s: float, lockout_s: float,
                    tolerance_s: float, max_thresholds: int,
                    progress: Callable | None) -> tuple[StreamCounts, Det, dict]:
    """One model's DET sweep (with ``extra_threshold`` among the thresholds, if given), per stream and in all,
    and its report entry."""
    smoothing, lockout = smoothing_steps(smoothing_s, hop), lockout_steps(lockout_s, hop)
    settings = SweepSettings(smoothing, lockout, max_thresholds, tolerance_s, extra_threshold)
    counts, steps = sweep(settings, progress, name)
    if not steps:
        raise ValueError(f"{path}: no stream is as long as one window ({model.window_shape[0]} frames): "
                         "nothing to evaluate")
    det = counts.total(hours)
    return counts, det, dict(
        name=name, path=path, **_describe(model), hop=hop, smoothing_steps=smoothing, lockout_steps=lockout,
        steps=int(steps),
        det=dict(threshold=(det.threshold_q16 / 65536.0).tolist(), threshold_q16=det.threshold_q16.tolist(),
                 frr=det.frr.tolist(), false_per_hour=det.false_per_hour.tolist(),
                 fdr=[None if math.isnan(x) else x for x in det.fdr.tolist()], hits=det.hits.tolist(),
                 false_detections=det.false_detections.tolist(), duplicates=det.duplicates.tolist()))


def _matched(det: Det, frr: float) -> int | None:
    """Index of the highest swept threshold whose FRR is at most ``frr``; None if there is none."""
    at_most = np.flatnonzero(det.frr <= frr + 1e-12)
    return int(at_most[-1]) if at_most.size else None


def evaluate(
    manifest: str | Path,
    model_paths: Sequence[str | Path],  # .kwsq files or default:NAME; float checkpoints (.pt) or default:M0
    *,
    smoothing_s: float = DEFAULT_SMOOTHING_S,
    lockout_s: float = DEFAULT_LOCKOUT_S,
    tolerance_s: float = 0.5,
    threshold: float | None = None,
    false_per_hour: float | None = None,
    hop: int | None = None,
    max_thresholds: int = 1000,
    select: Sequence[str | Selection] = (),
    bootstrap: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    backend: str | None = None,
    progress: Callable | None = None,
    workers: cluster.Workers | None = None,
    store: ScoreStore | None = None,
) -> dict:
    """Evaluate models on a labelled manifest; the first model is the baseline.

    Args:
        model_paths: what ``load_model`` takes: ``.kwsq`` blobs, ``default:NAME``, and float-stage
            checkpoints (``.pt``, ``default:M0``), which run on the float path.
        smoothing_s: moving-average window in seconds (>= 0), in whole steps of each model's hop
            (``kwsint.engine.model.smoothing_steps``); the default is ``Model.detector``'s and kwsint-run's.
        lockout_s: seconds after a detection in which none fires (>= 0; ``kwsint.engine.model.lockout_steps``).
        tolerance_s: seconds after a span's end that still count as a hit (>= 0).
        threshold, false_per_hour: the baseline's operating point, at most one of
            them: its threshold in [0, 1] (default ``DEFAULT_THRESHOLD``, 0.5), or its lowest swept
            threshold with at most this many false detections per hour (>= 0).
        hop: frames between steps (default: each model's frame stride).
        max_thresholds: thresholds per DET sweep (>= 2).
        select: stream selections, ``[positive:|negative:]KEY=V1[,V2...]`` (``parse_selection``): a
            stream is evaluated when every selection that applies to its kind keeps it (``select_streams``).
        bootstrap: replicates of the confidence intervals (>= 0; 0: none), drawn with ``seed``;
            ``confidence`` in (0, 1) is their coverage.
        progress: wraps the iterable of streams, called as
            ``progress(iterable, desc=model name, total=n)`` (tqdm's signature).
        workers: the streams are scored on a Dask cluster's workers (``kwsint.evaluation.cluster_scores``), long
            ones in pieces. The report is the same as without.
        store: keeps each finished (model, stream) score and uses those it already has (``ScoreStore``).

    A stream shorter than a model's window gives that model no step, so its
    spans count as missed: each such stream gets a ``ShortInputWarning``.

    Returns the report (JSON-ready): data totals, settings, the selections, the
    operating point, per model its bits, size, steps, figures at the operating
    point and DET sweep, and the breakdown by tag; with a bootstrap, ``ci``
    intervals beside the figures. Raises FormatError for a bad manifest or
    feature file, ValueError for bad arguments or a selection that leaves no
    positive stream, OSError for an unreadable model.
    """
    if threshold is not None and false_per_hour is not None:
        raise ValueError("give the operating point as a threshold or as false detections per hour, not both")
    if false_per_hour is None:
        threshold = DEFAULT_THRESHOLD if threshold is None else threshold
        op = reference.threshold_q16(threshold)
    else:
        op = None
    if (not tolerance_s >= 0 or (hop is not None and hop < 1) or max_thresholds < 2
            or (false_per_hour is not None and not false_per_hour >= 0) or bootstrap < 0 or not 0 < confidence < 1):
        raise ValueError("need tolerance >= 0, hop >= 1, max_thresholds >= 2, false_per_hour >= 0, bootstrap >= 0 "
                         "and 0 < confidence < 1")
    selections = [s if isinstance(s, Selection) else parse_selection(s) for s in select]
    all_streams = read_manifest(manifest)
    streams = select_streams(all_streams, selections)
    if not any(s.kind == "positive" for s in streams):
        raise ValueError(f"{manifest}: no positive stream left by the selection "
                         f"{' '.join(map(str, selections))}: the false rejection rate needs wakeword spans")
    paths = [str(p) for p in model_paths]  # str: "default:M4" names a shipped model
    if not paths:
        raise ValueError("no models to evaluate")
    models = [load_model(p, backend=backend) for p in paths]
    streaming = [isinstance(m, StreamingScorer) for m in models]
    if hop is not None and any(streaming):
        raise ValueError("hop: a streaming conv model steps once per invoke (its input frames); hop applies to the "
                         "dense models only")
    hops = [m.hop if s else hop or m.spec.frontend.frame_stride for m, s in zip(models, streaming)]
    for h in hops:  # ValueError before the long part
        smoothing_steps(smoothing_s, h)
        lockout_steps(lockout_s, h)
    dims = sorted({m.window_shape[1] for m, s in zip(models, streaming) if not s})
    if len(dims) > 1:
        raise ValueError(f"the models take different feature sizes: {dims}")
    # fbank features for the dense models, microfrontend features for the streaming ones (each loaded once)
    mf_dims = sorted({m.window_shape[1] for m, s in zip(models, streaming) if s})
    if len(mf_dims) > 1:
        raise ValueError(f"the streaming models take different feature sizes: {mf_dims}")
    feature_dims = {False: dims[0] if dims else 0, True: mf_dims[0] if mf_dims else 0}
    model_files = [_model_file(p) for p in paths]
    if workers is None:
        kinds = {s: [load_features(st, feature_dims[s], microfrontend=s) for st in streams] for s in set(streaming)}
        lengths = {s: [len(f) for f in features] for s, features in kinds.items()}
        remote = None
    else:
        remote = ClusterScores(workers, model_files, backend, models, streams, feature_dims, streaming, hops)
        lengths = remote.frames()
    frames = np.array(lengths[streaming[0]])  # the baseline's, which give the hours
    for s, model in zip(streaming, models):
        for st, n in zip(streams, lengths[s]):
            if n < model.window_shape[0]:
                warnings.warn(ShortInputWarning(f"{st.where}: features {st.features}", n, model.window_shape[0]),
                              stacklevel=2)
    pairs = [(i, j) for i in range(len(models)) for j in range(len(streams))]
    keys = {}
    if store is not None:
        shas = [hashlib.sha256(f.read_bytes()).hexdigest() for f in model_files]
        keys = {(i, j): store.key(shas[i], hops[i], streams[j].microfrontend if streaming[i] else streams[j].features)
                for i, j in pairs}
    found = {p: r for p in keys if (r := store.get(keys[p])) is not None}
    if remote is not None:
        remote.submit([p for p in pairs if p not in found])

    def sweeper(i: int) -> Sweep:
        """Model i's counts: on the workers, where the posteriors stay; here when they are kept (``store``)."""
        if remote is not None and store is None:
            return functools.partial(remote.sweep, i)
        return functools.partial(_sweep, scorer(i), streams)

    def scorer(i: int) -> Callable[[int], tuple[np.ndarray, np.ndarray]]:
        def score(j: int) -> tuple[np.ndarray, np.ndarray]:
            if (i, j) in found:
                return found.pop((i, j))
            if remote is not None:
                result = remote.result(i, j)
            else:
                result = score_stream(models[i], kinds[streaming[i]][j], hops[i])
            if store is not None:
                store.put(keys[i, j], *result)
            return result
        return score

    stream_hours = frames * FRAME_SHIFT_S / 3600.0
    hours = float(stream_hours.sum())
    options = dict(smoothing_s=smoothing_s, lockout_s=lockout_s, tolerance_s=tolerance_s,
                   max_thresholds=max_thresholds, progress=progress)
    names = model_names(paths)
    try:
        counts, dets, results = zip(*(_evaluate_model(name, path, model, sweeper(i), hours,
                                                      op if i == 0 else None, hop=h, **options)
                                      for i, (name, path, model, h) in enumerate(zip(names, paths, models, hops))))
    finally:
        if remote is not None:
            remote.cancel()
    base = dets[0]
    if op is None:
        op = int(base.threshold_q16[np.flatnonzero(base.false_per_hour <= false_per_hour)[0]])
    op_index = int(np.searchsorted(base.threshold_q16, op))
    op_frr = float(base.frr[op_index])
    base_point = at_frr(base, op_frr)
    base_fdr = base_point[0] if base_point else None
    matched = [op_index] + [_matched(det, op_frr) for det in dets[1:]]
    for result, det, k in zip(results, dets, matched):
        fdr, fph = at_frr(det, op_frr) or (None, None)
        result["at_operating_point"] = dict(
            fdr=fdr, false_per_hour=fph, relative_fdr_degradation_pct=relative_fdr_pct(fdr, base_fdr),
            matched_threshold_q16=None if k is None else int(det.threshold_q16[k]))
    operating_point = dict(model=results[0]["name"], threshold=op / 65536.0, threshold_q16=op, frr=op_frr,
                           false_per_hour=float(base.false_per_hour[op_index]),
                           chosen_by="threshold" if false_per_hour is None else "false_per_hour",
                           false_per_hour_target=false_per_hour)
    rng = np.random.default_rng(seed)
    if bootstrap:
        positive = np.array([s.kind == "positive" for s in streams])
        weights = resample_weights([np.flatnonzero(positive), np.flatnonzero(~positive)], len(streams), bootstrap,
                                   rng)
        replicates, per_model = operating_point_replicates(counts, stream_hours, op_index, weights)
        operating_point["ci"] = {k: interval(v, confidence) for k, v in replicates.items()}
        for result, values in zip(results, per_model):
            result["at_operating_point"]["ci"] = {k: interval(v, confidence) for k, v in values.items()}
    positives = sum(s.kind == "positive" for s in streams)
    return dict(
        manifest=str(manifest),
        selection=[str(s) for s in selections],
        data=dict(streams=len(streams), positive_streams=positives, negative_streams=len(streams) - positives,
                  spans=base.spans, hours=hours, manifest_streams=len(all_streams)),
        settings=dict(smoothing_s=smoothing_s, lockout_s=lockout_s, tolerance_s=tolerance_s,
                      max_thresholds=max_thresholds, bootstrap=bootstrap, seed=seed, confidence=confidence,
                      backend=models[0].backend),
        operating_point=operating_point,
        models=list(results),
        breakdown=tag_breakdown(streams, counts, names, matched, stream_hours, bootstrap=bootstrap,
                                confidence=confidence, rng=rng),
    )
