"""Each model's FRR at fixed false detections per hour, read from kwsint-eval reports (report.json): the DET
curves of docs/qat.md's conv tables as numbers.

    python scripts/det_summary.py out/conv-models/eval/report.json [more reports ...]

For each report: per model, the lowest FRR among its swept thresholds with at most N false detections per hour
of the report's negatives, for each N of LEVELS; then the relative FDR degradation at the baseline's operating
point, with its interval where the report has one.
"""

from __future__ import annotations

import json
import sys

import numpy as np

LEVELS = (0.5, 1, 2, 5, 10, 20)


def summary(report: dict) -> str:
    op = report["operating_point"]
    lines = [f"{report['manifest']}: {report['data']['hours']:.2f} h, operating point {op['model']} at "
             f"{op['false_per_hour']:.2f} false/h",
             f"{'model':<22} " + " ".join(f"{f'FRR@{n:g}/h':>9}" for n in LEVELS) + f" {'rel. FDR (%)':>24}"]
    for m in report["models"]:
        fph, frr = np.array(m["det"]["false_per_hour"]), np.array(m["det"]["frr"])
        cells = []
        for n in LEVELS:
            ok = np.flatnonzero(fph <= n)
            cells.append(f"{100 * frr[ok].min():9.1f}" if ok.size else f"{'-':>9}")
        at = m["at_operating_point"]
        rel = at["relative_fdr_degradation_pct"]
        ci = at.get("ci", {}).get("relative_fdr_degradation_pct")
        text = "-" if rel is None else f"{rel:+.1f}" + (f" [{ci[0]:+.1f}, {ci[1]:+.1f}]" if ci else "")
        lines.append(f"{m['name']:<22} " + " ".join(cells) + f" {text:>24}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    for path in argv:
        with open(path) as f:
            print(summary(json.load(f)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
