"""The evaluation report as markdown and as a DET plot (PNG)."""

from __future__ import annotations

import io

import numpy as np


def _fmt(x: float | None, digits: int, scale: float = 1.0, ci: list[float] | None = None) -> str:
    """``x * scale`` with ``digits`` decimals, then `` [low, high]`` where an interval is given; n/a for None."""
    if x is None:
        return "n/a"
    text = f"{x * scale:.{digits}f}"
    return text if ci is None else f"{text} [{ci[0] * scale:.{digits}f}, {ci[1] * scale:.{digits}f}]"


def _ci(figures: dict, name: str) -> list[float] | None:
    return figures.get("ci", {}).get(name)


def markdown_report(report: dict) -> str:
    """The report as markdown: data, settings, operating point, one table row per model (the paper's Table 3)
    and one table per tag key; figures with a bootstrap interval read ``value [low, high]``."""
    d, s, op = report["data"], report["settings"], report["operating_point"]
    how = (f"threshold {op['threshold']:.4f}" if op["chosen_by"] == "threshold" else
           f"threshold {op['threshold']:.4f} (its lowest with at most {op['false_per_hour_target']:g} false "
           "detections per hour)")
    selection = (f", streams selected by {' '.join(f'`{x}`' for x in report['selection'])}: {d['streams']} of "
                 f"{d['manifest_streams']}" if report["selection"] else f": {d['streams']}")
    intervals = (f"Intervals: {100 * s['confidence']:g}% bootstrap percentile intervals over streams "
                 f"({s['bootstrap']} paired replicates, seed {s['seed']})." if s["bootstrap"] else "")
    lines = [
        "# kwsint-eval report", "",
        f"Manifest `{report['manifest']}`{selection} streams ({d['positive_streams']} positive "
        f"with {d['spans']} wakeword spans, {d['negative_streams']} negative), {d['hours']:.3f} h of audio.",
        f"Smoothing {s['smoothing_s']:g} s, lockout {s['lockout_s']:g} s, tolerance {s['tolerance_s']:g} s. "
        + intervals,
        f"Operating point: baseline `{op['model']}` at {how}, FRR {_fmt(op['frr'], 2, 100, _ci(op, 'frr'))}%, "
        f"{_fmt(op['false_per_hour'], 2, 1, _ci(op, 'false_per_hour'))} false detections per hour. "
        "FDR = false / (hits + false); relative FDR degradation = (FDR - FDR_baseline) / FDR_baseline "
        "at that FRR. Model size: the blob's bytes; a float model's float32 weights.", "",
        "| model | weight bits | act. bits | model size (bytes) | model size (KiB) | FDR (%) | false det. / h "
        "| rel. FDR degrad. (%) |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for m in report["models"]:
        p = m["at_operating_point"]
        lines.append(f"| {m['name']} | {m['weight_bits']} | {m['act_bits']} | {m['size_bytes']} | "
                     f"{m['size_bytes'] / 1024:.1f} | {_fmt(p['fdr'], 2, 100, _ci(p, 'fdr'))} | "
                     f"{_fmt(p['false_per_hour'], 2, 1, _ci(p, 'false_per_hour'))} | "
                     f"{_fmt(p['relative_fdr_degradation_pct'], 1, 1, _ci(p, 'relative_fdr_degradation_pct'))} |")
    for key, values in report["breakdown"].items():
        lines += ["", f"## By `{key}`", "",
                  "Positive streams: FRR; negative streams: false detections per hour; each model at its matched "
                  "threshold (the baseline's operating threshold; other models: their highest with at most the "
                  "operating FRR on all selected positives).", "",
                  f"| {key} | model | pos. streams | spans | FRR (%) | neg. streams | neg. hours | false det. / h |",
                  "|---|---|---:|---:|---:|---:|---:|---:|"]
        for v in values:
            for m in v["models"]:
                lines.append(f"| {v['value']} | {m['name']} | {v['positive_streams']} | {v['spans']} | "
                             f"{_fmt(m['frr'], 2, 100, _ci(m, 'frr'))} | {v['negative_streams']} | "
                             f"{v['negative_hours']:.3f} | "
                             f"{_fmt(m['false_per_hour'], 2, 1, _ci(m, 'false_per_hour'))} |")
    return "\n".join(lines) + "\n"


def _error_bar(value: float, ci: list[float] | None, scale: float = 1.0) -> list[list[float]] | None:
    """matplotlib's errorbar extent, [[below], [above]], of ``value`` with the interval ``ci`` (both times
    ``scale``); None without an interval."""
    if ci is None:
        return None
    return [[scale * max(value - ci[0], 0.0)], [scale * max(ci[1] - value, 0.0)]]  # percentiles may miss the value


def plot_det(report: dict) -> bytes:
    """PNG of the DET curves: FRR against false detections per hour and against FDR, one line per model.

    Points run in threshold order; the dots mark each model at the baseline's
    operating FRR, with the bootstrap intervals as error bars where the report
    has them (across: the operating FRR's; up and down: the model's figure's).
    Thresholds without detections are left out of the FDR panel.
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
        bits = "float32" if m["weight_bits"] == "f32" else f"w{m['weight_bits']}/a{m['act_bits']}"
        label = f"{m['name']} ({bits}, {m['size_bytes'] / 1024:.1f} KiB)"
        fph = np.asarray(det["false_per_hour"])
        line, = ax_fph.plot(frr, np.where(fph > 0, fph, np.nan) if log else fph, label=label)
        ax_fdr.plot(frr, 100 * np.array(det["fdr"], dtype=float), color=line.get_color(), label=label)  # None: NaN
        if p["fdr"] is not None:
            across = _error_bar(op["frr"], _ci(op, "frr"), 100)
            ax_fph.errorbar(100 * op["frr"], p["false_per_hour"], xerr=across, capsize=3, fmt="o",
                            yerr=_error_bar(p["false_per_hour"], _ci(p, "false_per_hour")), color=line.get_color())
            ax_fdr.errorbar(100 * op["frr"], 100 * p["fdr"], xerr=across, yerr=_error_bar(p["fdr"], _ci(p, "fdr"), 100),
                            fmt="o", capsize=3, color=line.get_color())
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
