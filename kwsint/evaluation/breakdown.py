"""The operating point by tag (docs/evaluation.md, "Breakdown by tag"): per tag value, the FRR of the positive
streams with it and the false detections per hour of the negative streams with it, each model at its matched
threshold."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .bootstrap import interval, resample_weights
from .counting import StreamCounts
from .manifest import LabelledStream


def tag_breakdown(streams: Sequence[LabelledStream], counts: Sequence[StreamCounts], names: Sequence[str],
                  matched: Sequence[int | None], hours: np.ndarray, *, bootstrap: int, confidence: float,
                  rng: np.random.Generator) -> dict[str, list[dict]]:
    """Per tag key (sorted), per value (sorted): the streams with it and each model's figures.

    Args:
        counts, names: per model, its per-stream counts and name.
        matched: per model, the index of its matched threshold in its sweep (None: no threshold matches).
        hours: float64 (S,) hours of audio of each stream.
        bootstrap: replicates per group (0: no intervals), drawn from ``rng`` within the group's positive
            streams and within its negative ones, the same for every model.
        confidence: the intervals' confidence in (0, 1).

    Each value's entry: ``value``, ``positive_streams``, ``spans``, ``negative_streams``,
    ``negative_hours`` and ``models``, per model ``name``, ``frr`` (missed spans /
    spans of the positive streams; None without any), ``false_per_hour`` (false
    detections in the negative streams / their hours; None without any audio)
    and, with a bootstrap, ``ci``: ``[low, high]`` of each (None where undefined).
    """
    tags = sorted({(k, v) for s in streams for k, v in s.tags.items()})
    spans = counts[0].spans
    out: dict[str, list[dict]] = {}
    for key, value in tags:
        pos = np.array([i for i, s in enumerate(streams) if s.kind == "positive" and s.tags.get(key) == value], int)
        neg = np.array([i for i, s in enumerate(streams) if s.kind == "negative" and s.tags.get(key) == value], int)
        # draw counts of the group's streams, shared by every model (paired)
        w_pos = resample_weights([np.arange(pos.size)], pos.size, bootstrap, rng) if bootstrap and pos.size else None
        w_neg = resample_weights([np.arange(neg.size)], neg.size, bootstrap, rng) if bootstrap and neg.size else None
        neg_hours = float(hours[neg].sum())
        models = []
        for name, c, k in zip(names, counts, matched):
            frr = fph = None
            ci = dict(frr=None, false_per_hour=None)
            if k is not None and pos.size:
                missed = spans[pos] - c.hits[pos, k]
                frr = float(missed.sum() / spans[pos].sum())
                if w_pos is not None:
                    ci["frr"] = interval((w_pos @ missed) / (w_pos @ spans[pos]), confidence)
            if k is not None and neg_hours > 0:
                false = c.false_detections[neg, k]
                fph = float(false.sum() / neg_hours)
                if w_neg is not None:
                    with np.errstate(invalid="ignore", divide="ignore"):  # a replicate of empty streams: undefined
                        ci["false_per_hour"] = interval(np.where(w_neg @ hours[neg] > 0,
                                                                 (w_neg @ false) / (w_neg @ hours[neg]), np.nan),
                                                        confidence)
            models.append(dict(name=name, frr=frr, false_per_hour=fph, **(dict(ci=ci) if bootstrap else {})))
        out.setdefault(key, []).append(dict(value=value, positive_streams=int(pos.size), spans=int(spans[pos].sum()),
                                            negative_streams=int(neg.size), negative_hours=neg_hours, models=models))
    return out
