"""Labelled evaluation of streaming wakeword models: DET curves and relative FDR.

``docs/evaluation.md`` is the specification: the manifest format, the event
counting rules and the metrics. In short: every model runs over every stream of
a manifest (``score_stream``), its Q16 posteriors are smoothed and thresholded
exactly as ``kwsint.reference.smooth_posteriors`` and ``detect`` specify, and
each detection is a hit for a wakeword span, a duplicate in a span already hit,
or a false detection (``count_streams``, per stream; ``StreamCounts.total``
sums them). A threshold sweep gives the DET curves (FRR against false detections per hour and against FDR), and each model's
FDR is compared with the baseline's at the baseline's FRR (``evaluate``), with bootstrap confidence
intervals over streams (``bootstrap``) and a breakdown by stream tag (``breakdown``).
"""

from .bootstrap import interval, operating_point_replicates, resample_weights
from .breakdown import tag_breakdown
from .counting import (Det, StreamCounts, at_frr, count_streams, curve_at_frr, relative_fdr_pct,
                       span_labels, step_time_s, sweep_thresholds)
from .manifest import (FRAME_SHIFT_S, KINDS, LabelledStream, Selection, load_features, parse_selection, read_manifest,
                       select_streams)
from .report import markdown_report, plot_det
from .scoring import evaluate, float_posterior_q16, load_model, score_stream

__all__ = ["FRAME_SHIFT_S", "KINDS", "Det", "LabelledStream", "Selection", "StreamCounts", "at_frr",
           "count_streams", "curve_at_frr", "evaluate", "float_posterior_q16", "interval",
           "load_features", "load_model", "markdown_report", "operating_point_replicates", "parse_selection",
           "plot_det", "read_manifest", "relative_fdr_pct", "resample_weights", "score_stream", "select_streams",
           "span_labels", "step_time_s", "sweep_thresholds", "tag_breakdown"]
