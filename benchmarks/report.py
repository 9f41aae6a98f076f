"""The paper's Table 3 for kwsint models: bits, accuracy, CPU, memory and size, as markdown and a plot.

    .venv/bin/python benchmarks/report.py --out out/report
    .venv/bin/python benchmarks/report.py --out out/report --eval out/demo/eval/report.json \\
        --float-checkpoint kwsint/default_model/M0.pt

Without ``--eval`` the rows are the paper's shapes with random calibrated
weights (``kwsint.train.generate.paper_model``), M1..M6, and a float32 M0 with
PyTorch's initial weights: CPU, memory and size do not depend on the values.
With ``--eval`` (a ``kwsint-eval`` report.json) the rows are the evaluated
models, with their relative FDR degradation at the baseline's FRR.
``--float-checkpoint`` gives the float32 baseline row its trained weights.

Measured here: counter ticks per inference on the default backend, from the
raw float window (front end included) to the logits, timed in C, median of
alternating rounds. Projected: Cortex-A53 cycles per inference from
``benchmarks/mca/project.py`` (llvm-mca's scheduling model, not hardware).
Writes report.md, report.json and cycles.png into ``--out``.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import sys
import time
from pathlib import Path

import numpy as np

import kwsint
from kwsint.engine.float_model import FloatModel, from_net
from kwsint.io.atomic import write_atomic
from kwsint.train.generate import CONFIGS, paper_model

HERE = Path(__file__).resolve().parent
RATES_HZ = {"10ms": 100.0, "30ms": 1000.0 / 30.0}
PROJECTED_CPU = "cortex-a53"


def _projector():
    spec = importlib.util.spec_from_file_location("kws_mca_project", HERE / "mca" / "project.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def float_row(checkpoint: str | None, backend: str | None) -> dict:
    """The float32 M0 row: a float checkpoint's weights, or PyTorch's initial ones (needs torch)."""
    from kwsint.train.qat.checkpoint import load_checkpoint
    from kwsint.train.qat.model import KWSNet, paper_config

    net = load_checkpoint(checkpoint).model if checkpoint else KWSNet(paper_config("M0"), "float")
    net.eval()
    return dict(name="M0 (float32)", model=FloatModel(from_net(net), backend=backend), weight_bits="32",
                act_bits=32, blob_bytes=None, rel_fdr=None)


def paper_rows(float_checkpoint: str | None = None, backend: str | None = None) -> list[dict]:
    """The float32 M0 and the paper's M1..M6 shapes with random calibrated weights (no accuracy)."""
    rows = [float_row(float_checkpoint, backend)]
    for c in CONFIGS:
        model = kwsint.load(kwsint.write_blob(paper_model(c)), backend=backend)
        bits = sorted({layer["weight_bits"] for layer in model.info()["layers"]}, reverse=True)
        rows.append(dict(name=c, model=model, weight_bits="/".join(map(str, bits)), act_bits=model.spec.act_bits,
                         blob_bytes=model.blob_bytes, rel_fdr=None))
    return rows


def eval_rows(eval_path: str, float_checkpoint: str | None = None, backend: str | None = None) -> list[dict]:
    """The float32 M0 and the models of a kwsint-eval report.json, with their relative FDR."""
    rows = [float_row(float_checkpoint, backend)]
    report = json.loads(Path(eval_path).read_text())
    for m in report["models"]:
        if m["weight_bits"] == "f32":  # a float baseline: the float32 M0 row above measures it
            continue
        model = kwsint.load(m["path"], backend=backend)
        rows.append(dict(name=m["name"], model=model, weight_bits=m["weight_bits"], act_bits=m["act_bits"],
                         blob_bytes=model.blob_bytes, rel_fdr=m["at_operating_point"]["relative_fdr_degradation_pct"]))
    return rows


def measure(rows: list[dict], window: np.ndarray, repeats: int, rounds: int) -> None:
    """Median ticks per inference of every row, timed in alternating rounds so machine noise hits all alike."""
    ticks, seconds = [[] for _ in rows], [[] for _ in rows]
    for row in rows:
        row["model"].time_inference(window, repeats)  # warm up
    for _ in range(rounds):
        for i, row in enumerate(rows):
            t0 = time.perf_counter()
            ticks[i].append(row["model"].time_inference(window, repeats) / repeats)
            seconds[i].append((time.perf_counter() - t0) / repeats)
    for row, t, s in zip(rows, ticks, seconds):
        row["ticks"] = float(np.median(t))
        row["us_per_inference"] = float(np.median(s)) * 1e6
        # two counter reads around each layer: their sum exceeds the whole inference's ticks a little
        row["layer_ticks"] = [round(x / repeats) for x in row["model"].time_layers(window, repeats)]


def describe(rows: list[dict], project) -> None:
    """Memory, MACs and the projected Cortex-A53 cycles of every row."""
    for row in rows:
        model = row["model"]
        info = model.info()
        row["macs"] = info["macs"]
        row["macs_per_tick"] = info["macs"] / row["ticks"]
        row["mticks_per_s"] = {name: row["ticks"] * hz / 1e6 for name, hz in RATES_HZ.items()}
        row["weight_bytes"] = info["weight_bytes_in_memory"]
        row["model_bytes"] = info["model_bytes_in_memory"]
        # the integer engine streams (ring of frames + arena); the float path has an arena only
        row["state_bytes"] = info.get("stream_bytes", info["scratch_bytes"])
        row["projected_a53_cycles"] = None
        if isinstance(model, kwsint.Model):
            try:
                r = project.project(info["layers"], act_bits=model.spec.act_bits, cpus=(PROJECTED_CPU,),
                                    backends=("neon",), weights=info["weights"])
                row["projected_a53_cycles"] = r[0]["cycles"]
                row["projected_a53_mcps"] = r[0]["mcps"]
            except project.ExtractionError as e:
                row["projection_note"] = str(e).split(" (")[0]


def json_rows(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "model"} for r in rows]


def _fmt(v, spec: str) -> str:
    return "n/a" if v is None else format(v, spec)


def markdown(rows: list[dict], backend: str, eval_path: str | None) -> str:
    base = rows[0]
    lines = [
        f"Measured on this machine, backend `{backend}`: counter ticks per inference (x86: rdtsc, a constant-rate "
        "counter, not core cycles), raw window to logits. Projected: Cortex-A53 cycles per inference from "
        "llvm-mca's scheduling model (`benchmarks/mca/project.py`), not measured on hardware.",
        "",
        "| model | weight bits | act. bits | rel. FDR degr. (%) | us / inference | ticks / inference | x float | "
        "Mticks/s @ 1 per 10 ms | A53 cycles (proj.) | A53 MCPS @ 10 ms (proj.) | weights in memory (B) | "
        "x float | model in memory (B) | state (B) | model size (B) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        a53 = r["projected_a53_cycles"]
        lines.append(
            f"| {r['name']} | {r['weight_bits']} | {r['act_bits']} | {_fmt(r['rel_fdr'], '.1f')} | "
            f"{r['us_per_inference']:.2f} | {r['ticks']:.0f} | "
            f"{r['ticks'] / base['ticks']:.2f} | {r['ticks'] * RATES_HZ['10ms'] / 1e6:.2f} | {_fmt(a53, 'd')} | "
            f"{_fmt(None if a53 is None else a53 * RATES_HZ['10ms'] / 1e6, '.2f')} | {r['weight_bytes']} | "
            f"{r['weight_bytes'] / base['weight_bytes']:.3f} | {r['model_bytes']} | {r['state_bytes']} | "
            f"{_fmt(r['blob_bytes'], 'd')} |")
    notes = ["", "* Weights in memory: int8 containers for every integer model (sub-8-bit weights are unpacked "
             "at load; backends that pack them for their kernel pad rows to a multiple of 8), float32 for the "
             "float model. Model in memory: everything the loaded model allocates (weights, biases, "
             "multipliers and shifts, normalisation).",
             "* State: one stream's allocation for integer models (arena, ring of quantized frames, input "
             "vector); the float model's arena (it has no stream).",
             "* Model size: the .kwsq blob; the float model has no blob format."]
    notes += [f"* {r['name']} not projected: {r['projection_note']}" for r in rows if "projection_note" in r]
    if eval_path:
        notes.append(f"* Relative FDR degradation: from `{eval_path}` (kwsint-eval), at its baseline's FRR.")
    return "\n".join(lines + notes) + "\n"


def plot(rows: list[dict], backend: str) -> bytes:
    """PNG: measured ticks and projected Cortex-A53 cycles per inference, one bar pair per model."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 4.5), dpi=110, layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(rows))
    measured = [r["ticks"] for r in rows]
    projected = [r["projected_a53_cycles"] for r in rows]
    bars = ax.bar(x - 0.2, measured, 0.4, label=f"measured here ({backend}), counter ticks")
    ax.bar_label(bars, fmt="%.0f", fontsize="x-small")
    have = [i for i, v in enumerate(projected) if v is not None]
    bars = ax.bar(x[have] + 0.2, [projected[i] for i in have], 0.4, label="Cortex-A53 cycles, projected (llvm-mca)")
    ax.bar_label(bars, fmt="%.0f", fontsize="x-small")
    bottom = 0.5 * min(measured + [projected[i] for i in have])
    for i in set(range(len(rows))) - set(have):
        ax.text(x[i] + 0.2, bottom * 1.1, "not\nprojected", ha="center", va="bottom", fontsize="x-small")
    ax.set_xticks(x, [r["name"] for r in rows])
    ax.set_yscale("log")
    ax.set_ylim(bottom=bottom)
    ax.set_ylabel("per inference (log scale)")
    ax.set_title("Cycles per inference by configuration")
    ax.grid(True, axis="y", which="both", alpha=0.3)
    ax.legend(fontsize="small", loc="upper left")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="directory for report.md, report.json and cycles.png")
    p.add_argument("--eval", help="a kwsint-eval report.json: report its models, with relative FDR")
    p.add_argument("--float-checkpoint", help="float checkpoint (.pt) for the float32 baseline row")
    p.add_argument("--backend", help="engine backend (default: the fastest)")
    p.add_argument("--repeats", type=int, default=200, help="inferences per timed round (default 200)")
    p.add_argument("--rounds", type=int, default=15, help="alternating rounds (default 15)")
    args = p.parse_args(argv)
    rows = (eval_rows(args.eval, args.float_checkpoint, args.backend) if args.eval
            else paper_rows(args.float_checkpoint, args.backend))
    window = np.random.default_rng(0).normal(-5.0, 2.5, rows[0]["model"].window_shape).astype(np.float32)
    measure(rows, window, args.repeats, args.rounds)
    describe(rows, _projector())
    backend = rows[1]["model"].backend if len(rows) > 1 else rows[0]["model"].backend
    text = markdown(rows, backend, args.eval)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "report.md", text.encode())
    write_atomic(out / "report.json", json.dumps(
        dict(backend=backend, repeats=args.repeats, rounds=args.rounds, rows=json_rows(rows)), indent=1).encode())
    write_atomic(out / "cycles.png", plot(rows, backend))
    print(text, end="")
    print(f"wrote {out / 'report.md'}, {out / 'report.json'}, {out / 'cycles.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
