"""The evaluation report as markdown and as a DET plot (PNG)."""

from __future__ import annotations

import io

import numpy as np


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
