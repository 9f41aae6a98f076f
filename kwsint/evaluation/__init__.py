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

from .counting import Det, at_frr, count_detections, relative_fdr_pct, span_labels, step_time_s, sweep_thresholds
from .manifest import FRAME_SHIFT_S, KINDS, LabelledStream, load_features, read_manifest
from .report import markdown_report, plot_det
from .scoring import evaluate, score_stream

__all__ = ["FRAME_SHIFT_S", "KINDS", "Det", "LabelledStream", "at_frr", "count_detections", "evaluate", "load_features",
           "markdown_report", "plot_det", "read_manifest", "relative_fdr_pct", "score_stream", "span_labels",
           "step_time_s", "sweep_thresholds"]
