"""Conv checkpoint -> streaming graph (.kwsq, .tflite), with the report a user checks before shipping it.

``export_graph`` turns a ``ConvNet`` into its ``GraphSpec`` at the requested weight bits and checks the
checkpoint's integer simulation (``ConvNet.integer_outputs``: the whole window at once) against kwsint's C engine
run invoke by invoke (``GraphModel``), each window a stream from its start; kwsint-export adds the TFLM
interpreter on the .tflite file (``kwsint.interop.tflite_graph``) the same way, with ``stream_outputs``.

A window is fed from ``window_frames`` before its end, preceded by as many frames of code -128 (the states'
zero point, silence) as make a whole number of invokes; its last invoke's output is compared.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from ..engine import blob
from ..engine.graph import Conv, DepthwiseConv, FullyConnected, GraphSpec, acc16_proven, op_multipliers
from ..engine.graph_model import GraphModel
from ..engine.metadata import ModelMetadata, describe
from .export import SYNTHETIC_WINDOWS, check_windows
from .qat.conv import ConvConfig, ConvNet

CONV_METHODS = {
    "stage2": "fixed-point QAT (weights, biases, input and every activation trained on their grids)",
    "stage1": "stage-1 QAT weights; activation ranges calibrated post-training",
    "float": "post-training quantization (PTQ) of a float model, ranges calibrated",
}
#: The microfrontend's features reach about 26 (ESPHome's input range); synthetic windows are uniform up to it.
SYNTHETIC_FEATURE_MAX = 26.0


@dataclass
class GraphExport:
    """An exported conv model: the graph, its blob, the report (JSON-ready), the checked windows' input codes
    (int8 (N, frames, features)) and the engine's uint8 outputs on them (N,)."""

    spec: GraphSpec
    blob: bytes
    report: dict
    codes: np.ndarray
    outputs: np.ndarray


#: ESPHome's detection rule averages this many outputs unless the model's settings say otherwise (microWakeWord's
#: published models all state 5).
SLIDING_WINDOW_SIZE = 5


def graph_metadata(metadata: ModelMetadata) -> ModelMetadata:
    """A conv model's metadata in microWakeWord's terms (``kwsint.engine.metadata``): a stated threshold becomes
    the probability cutoff, the sliding window defaults to SLIDING_WINDOW_SIZE outputs, the feature step is the
    microfrontend's 10 ms. ValueError for a smoothing or lockout, which ESPHome's rule does not have."""
    stated = metadata.stated()
    for key, option in (("smoothing_s", "smoothing"), ("lockout_s", "lockout")):
        if key in stated:
            raise ValueError(f"--{option}: a conv model detects by ESPHome's rule (the mean of the last "
                             f"sliding_window_size outputs against the cutoff), which has no {option}")
    if "threshold" in stated:
        stated["probability_cutoff"] = stated.pop("threshold")
    stated.setdefault("sliding_window_size", SLIDING_WINDOW_SIZE)
    stated.setdefault("feature_step_size", 10)
    return ModelMetadata(**stated)


MINIMUM_ESPHOME_VERSION = "2024.7.0"
"""The first ESPHome that reads version 2 settings (the shipped models state it too)."""


def micro_settings(metadata: ModelMetadata, model_file: str, author: str,
                   arena_bytes: int) -> tuple[dict | None, list[str]]:
    """microWakeWord's settings file (version 2, the fields ESPHome's schema requires) for a .tflite named
    ``model_file``, or None and the metadata items it lacks (phrase, threshold, languages).

    ``arena_bytes`` becomes ``tensor_arena_size``: what TFLM allocates on this host
    (``tflite_graph.tflm_arena_bytes``); ESPHome's ESP-NN kernels may need scratch space on top.
    """
    needs = {"phrase": metadata.phrase, "threshold": metadata.probability_cutoff,
             "languages": metadata.trained_languages}
    missing = [k for k, v in needs.items() if v is None]
    if missing:
        return None, missing
    return {"type": "micro", "wake_word": metadata.phrase, "author": author, "model": model_file,
            "trained_languages": list(metadata.trained_languages), "version": 2,
            "micro": {"probability_cutoff": metadata.probability_cutoff,
                      "feature_step_size": metadata.feature_step_size,
                      "sliding_window_size": metadata.sliding_window_size, "tensor_arena_size": arena_bytes,
                      "minimum_esphome_version": MINIMUM_ESPHOME_VERSION}}, []


def prepare(model: ConvNet, config: ConvConfig, calibration: np.ndarray | None) -> ConvNet:
    """The checkpoint's model at ``config``'s bits, with activation ranges (calibrated unless stage 2)."""
    out = ConvNet(config, model.stage)
    out.load_state_dict(model.state_dict())
    out.eval()
    if model.stage != "stage2":
        if calibration is None or len(calibration) == 0:
            raise ValueError(f"a {model.stage} checkpoint needs calibration windows (--calibration) "
                             "to set its activation ranges")
        out.calibrate(torch.from_numpy(np.ascontiguousarray(calibration, dtype=np.float32)))
    return out


def stream_inputs(spec: GraphSpec, codes: np.ndarray) -> np.ndarray:
    """The invokes that run one window of input codes (frames, features) as a stream from its start:
    int8 (n, input frames, features), the window padded in front with code -128 to whole invokes."""
    step = spec.tensors[spec.input].frames
    pad = -len(codes) % step
    x = np.concatenate([np.full((pad, codes.shape[1]), -128, np.int8), codes])
    return x.reshape(-1, step, codes.shape[1])


def stream_outputs(stream_factory, spec: GraphSpec, codes: np.ndarray) -> np.ndarray:
    """The last output of each window (N, frames, features) run as a fresh stream: (N,) codes."""
    out = np.empty(len(codes), np.int64)
    for i, window in enumerate(codes):
        stream = stream_factory()
        invokes = stream_inputs(spec, window)
        if hasattr(stream, "invoke_many"):
            out[i] = int(stream.invoke_many(invokes)[-1].reshape(-1)[0])
        else:
            for x in invokes:
                y = stream.invoke(x)
            out[i] = int(y.reshape(-1)[0])
    return out


def op_report(spec: GraphSpec, config: ConvConfig) -> list[dict]:
    """Per linear op of the graph: the config's op index (``weight_bits``' order: a MixConv block's groups share
    theirs), kind, kernel, channels, bits, weight scales, requantization shifts, and whether int16 accumulation is
    proven safe for it (``acc16_proven``)."""
    rows = []
    linear = [op for op in spec.ops if isinstance(op, (Conv, DepthwiseConv, FullyConnected))]
    if len(linear) != len(config.graph_ops):
        raise ValueError(f"graph: {len(linear)} linear ops, the config has {len(config.graph_ops)}")
    for i, op in zip(config.graph_ops, linear):
        b = config.weight_bits[i]
        x, out = spec.tensors[op.input], spec.tensors[op.out]
        kind = {Conv: "conv", DepthwiseConv: "dw", FullyConnected: "dense"}[type(op)]
        kernel = op.weights.shape[1] if isinstance(op, Conv) else op.weights.shape[0] if kind == "dw" else x.frames
        if kind == "conv" and kernel == 1:
            kind = "1x1"
        _, shift = op_multipliers(spec, op)
        rows.append(dict(index=i, kind=kind, kernel=int(kernel), in_channels=x.channels, out_channels=out.channels,
                         weight_bits=b, weight_scale=[float(op.weight_scale.min()), float(op.weight_scale.max())],
                         shift=[int(shift.min()), int(shift.max())], weights=int(op.weights.size),
                         acc16=acc16_proven(op)))
    return rows


def export_graph(model: ConvNet, config: ConvConfig, *, calibration: np.ndarray | None = None,
                 samples: np.ndarray | None = None, labels: np.ndarray | None = None, backend: str | None = None,
                 source: str = "", metadata: ModelMetadata = ModelMetadata()) -> GraphExport:
    """The streaming graph of a conv checkpoint at ``config``'s bits, checked as the module docstring says.

    Args:
        model: the checkpoint's ConvNet (any stage).
        config: the same shape with the weight bits to export (``ConvConfig.with_bits``).
        calibration: float microfrontend windows (N, >= window_frames, features) for float and stage-1 models.
        samples: windows for the checks; default the calibration windows, else ``SYNTHETIC_WINDOWS`` synthetic.
        labels: 0/1 labels of ``samples``, to report the integer model's accuracy (output >= 128 is wakeword).
        backend: the engine backend (default: the fastest).
    """
    for name, w in (("calibration", calibration), ("samples", samples)):
        check_windows(w, config, name)
    q = prepare(model, config, calibration)
    metadata = graph_metadata(metadata)
    spec = dataclasses.replace(q.to_graph(), metadata=metadata)
    data = blob.write_blob(spec)
    if samples is not None:
        windows, kind = samples, "sample windows"
    elif calibration is not None:
        windows, kind = calibration, "calibration windows"
    else:
        rng = np.random.default_rng(0)
        windows = rng.uniform(0, SYNTHETIC_FEATURE_MAX, (SYNTHETIC_WINDOWS, config.window_frames, config.feature_dim))
        kind = f"synthetic windows (features uniform in [0, {SYNTHETIC_FEATURE_MAX:g}])"
    x = torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32))
    codes = q.input_codes(x).numpy().astype(np.int8)
    sim = q.integer_outputs(x, spec)[spec.output][:, -1, 0].astype(np.int64)
    engine = GraphModel(data, backend=backend)
    got = stream_outputs(engine.stream, spec, codes)
    check = dict(windows=len(got), engine_equal_simulation=int((got == sim).sum()), backend=engine.backend,
                 windows_from=kind)
    if labels is not None and samples is not None and len(got):
        check["accuracy"] = round(float(((got >= 128) == (np.asarray(labels) == 1)).mean()), 6)
    if model.stage != "stage2" and len(got):
        with torch.no_grad():
            float_logits = q(x).numpy()
        check["decisions_equal_to_float_model"] = round(float(((float_logits > 0) == (sim >= 128)).mean()), 6)
    trained = list(model.config.weight_bits)
    layers = op_report(spec, config)
    report = dict(source=source, arch="conv", stage=model.stage, method=CONV_METHODS[model.stage],
                  config=config.to_dict(), trained_weight_bits=trained if model.stage != "float" and
                  trained != list(config.weight_bits) else None,
                  layers=layers, blob_bytes=len(data), weight_bytes=sum(r["weights"] for r in layers), macs=spec.macs,
                  window_frames=config.window_frames, state_bytes=sum(s.frames * s.channels for s in spec.states),
                  metadata=metadata.stated(), agreement=check)
    return GraphExport(spec, data, report, codes, got)


def format_report(report: dict) -> str:
    """The export report of a conv model as text for a terminal."""
    c = report["config"]
    lines = [f"{report['source']}: {report['stage']} conv checkpoint -> {report.get('format', 'kwsq')}",
             f"method: {report['method']}",
             f"config: {c['name'] or 'custom'}, first conv {c['first_channels']} x {c['first_kernel']} / stride "
             f"{c['stride']}, blocks {[tuple(b) for b in c['blocks']]}, head {c['head_frames']} frame(s), "
             f"weight bits {c['weight_bits']}"]
    if report.get("trained_weight_bits"):
        lines.append(f"note: trained with weight bits {report['trained_weight_bits']}, re-quantized at export")
    lines.append(f"{'op':>3} {'kind':5} {'kernel':>6} {'in':>5} {'out':>5} {'bits':>4} {'weight scale':>21} "
                 f"{'shift':>9} {'weights':>8} {'int16 acc':>9}")
    for r in report["layers"]:
        lines.append(f"{r['index']:>3} {r['kind']:5} {r['kernel']:>6} {r['in_channels']:>5} {r['out_channels']:>5} "
                     f"{r['weight_bits']:>4} {r['weight_scale'][0]:>10.3g}..{r['weight_scale'][1]:<9.3g} "
                     f"{r['shift'][0]:>4}..{r['shift'][1]:<3} {r['weights']:>8} "
                     f"{'proven' if r['acc16'] else '-':>9}")
    lines.append(f"model: {report['blob_bytes']} bytes ({report['weight_bytes']} weights), {report['macs']} MACs "
                 f"per invoke, {report['state_bytes']} bytes of state, reads {report['window_frames']} frames "
                 f"({report['window_frames'] / 100:g} s)")
    lines.append("metadata: " + describe(report["metadata"]))
    a = report["agreement"]
    lines.append(f"engine ({a['backend']}, streamed) == checkpoint simulation: {a['engine_equal_simulation']}/"
                 f"{a['windows']} windows ({a['windows_from']})")
    if "tflm" in report:
        t = report["tflm"]
        lines.append(f"TFLM interpreter (streamed) == engine: {t['bit_exact']}/{t['windows']} windows")
    if "settings" in report and "output" in report["settings"]:
        lines.append(f"settings: {report['settings']['output']} (microWakeWord's JSON, read by ESPHome and "
                     f"kwsint-run): tensor_arena_size {report['settings']['tensor_arena_size']} bytes, what TFLM's "
                     "reference kernels allocate on this host; ESPHome's ESP-NN kernels may need more")
    elif "settings" in report:
        lines.append("note: no settings file written beside the .tflite (kwsint-run and ESPHome read the detection "
                     "settings from it): it needs " + ", ".join(f"--{k}" for k in report["settings"]["missing"]))
    if "accuracy" in a:
        lines.append(f"integer model accuracy on the labelled samples: {100 * a['accuracy']:.2f}%")
    if "decisions_equal_to_float_model" in a:
        lines.append(f"integer vs float model: same decision on {100 * a['decisions_equal_to_float_model']:.2f}% "
                     "of those windows")
    return "\n".join(lines)


__all__ = ["GraphExport", "export_graph", "format_report", "graph_metadata", "prepare", "stream_inputs",
           "stream_outputs"]
