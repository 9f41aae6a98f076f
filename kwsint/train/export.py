"""Checkpoint -> integer model, with the report a user checks before shipping it.

``export`` turns a loaded checkpoint into the integer ``ModelSpec`` at the
requested bit widths and checks it: the C engine must give exactly the logits
of the checkpoint's own integer simulation (``KWSNet.integer_logits``) on every
sample window. How the integer model was obtained is reported plainly:

* stage-2 checkpoint: 2-stage QAT, every range learned in training;
* stage-1 checkpoint: QAT weights, input and activation ranges calibrated after training;
* float checkpoint: post-training quantization (PTQ), weights quantized linearly
  per channel, ranges calibrated.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch

from ..engine import blob
from ..engine.metadata import ModelMetadata, describe
from ..engine.model import Model
from ..engine.modelspec import ModelSpec
from .qat.conv import ConvConfig
from .qat.model import KWSNet, NetConfig

METHODS = {
    "stage2": "2-stage QAT (weights, biases, batch norm, input and activations trained on their grids)",
    "stage1": "stage-1 QAT weights; input and activation ranges calibrated post-training",
    "float": "post-training quantization (PTQ) of a float model, ranges calibrated",
}
#: Synthetic sample windows drawn when the user gives none.
SYNTHETIC_WINDOWS = 256


@dataclass
class Export:
    """An exported model: the spec, its blob, the report (JSON-ready), and the checked windows
    (float32 (N, window_frames, feature_dim)) with the engine's logits on them (int64 (N, 2))."""

    spec: ModelSpec
    blob: bytes
    report: dict
    windows: np.ndarray
    logits: np.ndarray


def prepare(model: KWSNet, config: NetConfig, calibration: np.ndarray | None) -> KWSNet:
    """The checkpoint's model at ``config``'s bit widths, with activation ranges.

    Stage-2 models keep their learned ranges; float and stage-1 models are
    calibrated on ``calibration`` windows (required for them).
    """
    out = KWSNet(config, model.stage)
    out.load_state_dict(model.state_dict())
    out.eval()
    if model.stage != "stage2":
        if calibration is None or len(calibration) == 0:
            raise ValueError(f"a {model.stage} checkpoint needs calibration windows (--calibration) "
                             "to set its input and activation ranges")
        out.calibrate(torch.from_numpy(np.ascontiguousarray(calibration, dtype=np.float32)))
    return out


def check_windows(windows: np.ndarray | None, config: NetConfig | ConvConfig, name: str) -> None:
    """ValueError naming ``name`` unless ``windows`` (if given) are (N, window_frames, feature_dim); a conv
    model reads the last window_frames frames of longer windows too."""
    want = (config.window_frames, config.feature_dim)
    if windows is None:
        return
    if isinstance(config, ConvConfig):
        if windows.ndim != 3 or windows.shape[1] < want[0] or windows.shape[2] != want[1]:
            raise ValueError(f"{name}: windows of at least {want[0]} frames of {want[1]} microfrontend features "
                             f"expected by the model, got {' x '.join(map(str, windows.shape[1:]))}")
        return
    if tuple(windows.shape[1:]) != want:
        raise ValueError(f"{name}: windows of {want[0]} x {want[1]} features expected by the model, "
                         f"got {' x '.join(map(str, windows.shape[1:]))}")


def synthetic_windows(model: KWSNet, n: int = SYNTHETIC_WINDOWS, seed: int = 0) -> np.ndarray:
    """Windows of independent normal features with the model's normalisation mean and std."""
    c = model.config
    rng = np.random.default_rng(seed)
    std = 1.0 / model.feature_inv_std.numpy().astype(np.float64)
    x = model.feature_mean.numpy() + std * rng.standard_normal((n, c.window_frames, c.feature_dim))
    return x.astype(np.float32)


def _entropy_bits(counts: np.ndarray) -> float:
    p = counts[counts > 0] / max(counts.sum(), 1)
    return max(0.0, float(-(p * np.log2(p)).sum()))


def layer_report(spec: ModelSpec) -> list[dict]:
    """Per layer: shape, bits, scales, multiplier/shift ranges, code histogram and entropy, bytes."""
    rows = []
    for i, layer in enumerate(spec.layers):
        b = layer.weight_bits
        levels = [-1, 1] if b == 1 else list(range(-(2 ** (b - 1) - 1), 2 ** (b - 1)))
        codes = layer.weights.astype(np.int64).reshape(-1)
        counts = np.array([(codes == v).sum() for v in levels])
        rows.append(dict(
            index=i, kind=layer.kind, in_size=layer.in_size, out_size=layer.out_size, weight_bits=b,
            weight_scale=[float(layer.weight_scale.min()), float(layer.weight_scale.max())],
            input_scale=layer.input_scale, input_zero_point=layer.input_zero_point,
            output_scale=layer.output_scale, output_zero_point=layer.output_zero_point,
            multiplier=[int(layer.multiplier.min()), int(layer.multiplier.max())],
            shift=[int(layer.shift.min()), int(layer.shift.max())],
            code_histogram={str(v): int(c) for v, c in zip(levels, counts)},
            entropy_bits=round(_entropy_bits(counts), 4), max_entropy_bits=round(math.log2(len(levels)), 4),
            weight_bytes=blob.packed_bytes(codes.size, b),
        ))
    return rows


def agreement(got: np.ndarray, want: np.ndarray, labels: np.ndarray | None = None) -> dict:
    """Engine logits ``got`` vs the checkpoint's integer simulation ``want`` (both (N, 2)): exact matches.

    With ``labels`` (0/1 per window) it adds the engine's accuracy: a window is
    called wakeword when logit[1] > logit[0].
    """
    out = dict(windows=len(got), bit_exact=int((got == want).all(axis=1).sum()),
               max_abs_logit_difference=int(np.abs(got - want).max()) if len(got) else 0)
    if labels is not None and len(got):
        out["accuracy"] = round(float(((got[:, 1] > got[:, 0]) == (labels == 1)).mean()), 6)
    return out


def export(model: KWSNet, config: NetConfig, *, calibration: np.ndarray | None = None,
           samples: np.ndarray | None = None, labels: np.ndarray | None = None, backend: str | None = None,
           source: str = "", metadata: ModelMetadata = ModelMetadata()) -> Export:
    """The integer model of a checkpoint's model at ``config``'s bits, checked against its simulation.

    Args:
        model: the checkpoint's model (any stage).
        config: the same shape with the bit widths to export (``NetConfig.with_bits``).
        calibration: float windows (N, window_frames, feature_dim) for float and stage-1 models.
        samples: windows for the agreement check; default the calibration
            windows, else ``SYNTHETIC_WINDOWS`` synthetic ones.
        labels: 0/1 labels of ``samples``, to report the integer model's accuracy.
        backend: the engine backend for the check (default: the fastest).
        metadata: what the blob tells its user (phrase, operating point, provenance).
    """
    for name, w in (("calibration", calibration), ("samples", samples)):
        check_windows(w, config, name)
    q = prepare(model, config, calibration)
    spec = dataclasses.replace(q.to_spec(), metadata=metadata)
    data = blob.write_blob(spec)
    if samples is not None:
        windows, kind = samples, "sample windows"
    elif calibration is not None:
        windows, kind = calibration, "calibration windows"
    else:
        windows, kind = synthetic_windows(q), "synthetic windows (normal features at the model's mean and std)"
    windows = np.ascontiguousarray(windows, dtype=np.float32)
    engine = Model(data, backend=backend)
    got = engine.infer_batch(windows).logits.astype(np.int64)
    with torch.no_grad():
        x = torch.from_numpy(windows)
        sim = q.integer_logits(x).numpy()
        # float and stage-1 models in eval mode run their float forward pass
        float_logits = q(x).numpy() if model.stage != "stage2" else None
    check = agreement(got, sim, labels if samples is not None else None)
    check |= {"backend": engine.backend, "windows_from": kind}
    if float_logits is not None:
        same = (float_logits.argmax(1) == sim.argmax(1)).mean() if len(sim) else 1.0
        check["decisions_equal_to_float_model"] = round(float(same), 6)
    trained = list(model.config.weight_bits)
    requantized = model.stage != "float" and trained != list(config.weight_bits)
    report = dict(
        source=source, stage=model.stage, method=METHODS[model.stage], config=config.to_dict(),
        trained_weight_bits=trained if requantized else None,
        layers=layer_report(spec), blob_bytes=len(data),
        weight_bytes=sum(blob.packed_bytes(l.weights.size, l.weight_bits) for l in spec.layers),
        macs=spec.macs, metadata=metadata.stated(), agreement=check,
    )
    return Export(spec, data, report, windows, got)


def format_report(report: dict) -> str:
    """The export report as text for a terminal."""
    c = report["config"]
    lines = [f"{report['source']}: {report['stage']} checkpoint -> {report.get('format', 'kwsq')}",
             f"method: {report['method']}",
             f"config: sizes {c['sizes']}, weight bits {c['weight_bits']}, act bits {c['act_bits']}, "
             f"param bits {c['param_bits']}"]
    if report.get("trained_weight_bits"):
        lines.append(f"note: trained with weight bits {report['trained_weight_bits']}, re-quantized at export")
    lines.append(f"{'layer':>5} {'kind':6} {'in':>5} {'out':>5} {'bits':>4} {'weight scale':>21} "
                 f"{'shift':>9} {'entropy/max':>11} {'bytes':>7}")
    for r in report["layers"]:
        lines.append(
            f"{r['index']:>5} {r['kind']:6} {r['in_size']:>5} {r['out_size']:>5} {r['weight_bits']:>4} "
            f"{r['weight_scale'][0]:>10.3g}..{r['weight_scale'][1]:<9.3g} {r['shift'][0]:>4}..{r['shift'][1]:<3} "
            f"{r['entropy_bits']:>5.2f}/{r['max_entropy_bits']:<5.2f} {r['weight_bytes']:>7}")
    lines.append(f"model: {report['blob_bytes']} bytes ({report['weight_bytes']} of weights), {report['macs']} MACs")
    lines.append("metadata: " + describe(report["metadata"]))
    a = report["agreement"]
    lines.append(f"engine ({a['backend']}) == checkpoint simulation: {a['bit_exact']}/{a['windows']} windows "
                 f"bit-exact ({a['windows_from']})")
    if "accuracy" in a:
        lines.append(f"integer model accuracy on the labelled samples: {100 * a['accuracy']:.2f}%")
    if "decisions_equal_to_float_model" in a:
        lines.append(f"integer vs float model: same decision on {100 * a['decisions_equal_to_float_model']:.2f}% "
                     "of those windows")
    if "tflm" in report:
        t = report["tflm"]
        lines.append(f"TFLM interpreter == engine: {t['bit_exact']}/{t['windows']} windows bit-exact; "
                     f"INT4 filters in layers {t['int4_layers'] or 'none'}")
    if "onnxruntime" in report:
        o = report["onnxruntime"]
        lines.append(f"onnxruntime vs engine (not bit-exact, see docs/onnx.md): logits equal on {o['logits_exact']}/"
                     f"{o['windows']} windows, same decision on {o['decisions_agree']}/{o['windows']}, "
                     f"max logit difference {o['max_abs_logit_diff']} codes")
    return "\n".join(lines)
