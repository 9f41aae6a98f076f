"""Bootstrap confidence intervals over streams (docs/evaluation.md, "Confidence intervals").

Each replicate draws streams with replacement, positive and negative streams
apart (as many of each as the data has), and the same replicates serve every
model (paired). A replicate's counts are its draw counts times the per-stream
counts (``StreamCounts``): a (B, S) weights matrix times an (S, K) one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .counting import StreamCounts, curve_at_frr, relative_fdr_pct


def resample_weights(groups: Sequence[np.ndarray], n: int, replicates: int, rng: np.random.Generator) -> np.ndarray:
    """(replicates, n) float64: how often each of ``n`` streams is drawn in each replicate.

    Each group (int indices of streams) is drawn apart, with replacement, as
    many times as it has streams (multinomial counts); streams in no group weigh 0.
    """
    weights = np.zeros((replicates, n))
    for group in groups:
        if len(group):
            weights[:, group] = rng.multinomial(len(group), np.full(len(group), 1.0 / len(group)), size=replicates)
    return weights


def interval(values: np.ndarray, confidence: float) -> list[float] | None:
    """The percentile interval [low, high] holding ``confidence`` (in (0, 1)) of the replicates' values, those
    where the value is defined (not NaN); None when it is defined in none."""
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return None
    tail = 50.0 * (1.0 - confidence)
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return [float(low), float(high)]


def _nan(x: float | None) -> float:
    return np.nan if x is None else x


def operating_point_replicates(counts: Sequence[StreamCounts], hours: np.ndarray, op: int,
                               weights: np.ndarray) -> tuple[dict[str, np.ndarray], list[dict[str, np.ndarray]]]:
    """The operating point's figures in each replicate (NaN where undefined).

    Args:
        counts: per model, its per-stream counts; the first is the baseline.
        hours: float64 (S,) hours of audio of each stream.
        op: the index of the operating threshold in the baseline's sweep (chosen on the full data).
        weights: (B, S) draw counts (``resample_weights``).

    Returns the baseline's ``frr`` and ``false_per_hour`` at the operating
    threshold, (B,) each, and per model its ``fdr``, ``false_per_hour`` and
    ``relative_fdr_degradation_pct`` at each replicate's baseline FRR (``at_frr``).
    """
    base = counts[0]
    spans = weights @ base.spans
    audio = weights @ hours
    frr = (spans - weights @ base.hits[:, op]) / spans
    operating = dict(frr=frr, false_per_hour=(weights @ base.false_detections[:, op]) / audio)
    points = []
    for c in counts:
        hits = np.rint(weights @ c.hits).astype(np.int64)  # whole numbers: sums of counts
        false = np.rint(weights @ c.false_detections).astype(np.int64)
        points.append([curve_at_frr(hits[b], false[b], spans[b], audio[b], frr[b]) or (None, None)
                       for b in range(len(weights))])
    models = []
    for p in points:
        models.append(dict(fdr=np.array([_nan(fdr) for fdr, _ in p]),
                           false_per_hour=np.array([_nan(fph) for _, fph in p]),
                           relative_fdr_degradation_pct=np.array(
                               [_nan(relative_fdr_pct(fdr, base_fdr))
                                for (fdr, _), (base_fdr, _) in zip(p, points[0])])))
    return operating, models
