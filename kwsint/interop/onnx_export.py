"""ONNX QDQ models of kwsint models, run in onnxruntime, and how far they agree.

``model_to_onnx`` writes a whole ``ModelSpec`` as a standard-domain ONNX graph
(opset 21) in the QDQ form that quantization tools produce:

* input ``"input"``: float32 ``[batch, input_size]``, the *normalised* selected
  frames (``reference.normalize_window``); frame selection and normalisation
  stay outside, as in ``kwsint.interop.tflite``. Then QuantizeLinear with the
  frontend's scale and zero point (int8, or int16 for ``act_bits`` 16);
* dense: DequantizeLinear of the activation, of the int8 weights ``[N, K]``
  (per-channel on axis 0, or one scale when not ``per_channel``) and of the
  int32 bias (scale ``float32(s_in * s_w[c])``), then ``Gemm(transB=1)`` and
  QuantizeLinear to the output scale/zero point;
* affine: the same around a depthwise 1x1 ``Conv`` (``group = N``) on the
  activation reshaped to ``[batch, N, 1, 1]`` (TFLite's DEPTHWISE_CONV_2D);
* the clamp ``[act_min, act_max]``: int8, a ``Clip`` of the int8 codes after
  QuantizeLinear; int16, a float ``Clip`` before it (measured: onnxruntime has
  no int16 Clip kernel, and a float Clip between Gemm and QuantizeLinear keeps
  the int8 group from fusing). Both are exact: QuantizeLinear is monotonic, and
  ``(act_min - zp) * s`` quantizes back to ``act_min`` for every int16 code;
* output ``"logits"``: the last layer's int8/int16 codes ``[batch, 2]``.

Weight codes of every width (1..8 bits) are int8 initializers. INT4 weights
(opset 21) run in onnxruntime 1.32 with the same logits, but keep ``Gemm``
from fusing into ``QGemm`` (measured), so they are not written.

What onnxruntime 1.32 makes of it (CPUExecutionProvider, default
optimisations; ``onnxruntime_ops`` lists the optimised graph):

* int8 activations, x86-64 default: ORT fuses signed-int8 ``Conv`` groups only
  where ``QDQIsInt8Allowed`` (ARM builds), so the affines run as float ``Conv``;
  6 of the 7 dense layers become ``QGemm`` (integer); the first, whose input
  DequantizeLinear directly follows the input QuantizeLinear, stays ``Gemm``.
* int8 with ``int8_kernels=True`` (session option ``session.qdqisint8allowed``,
  ARM's default): every dense layer is a ``QGemm`` and every affine a
  ``QLinearConv``; the graph is integer after the input QuantizeLinear.
* int16 activations: ORT has no int16 kernels; DequantizeLinear -> float
  ``Gemm``/``Conv`` -> QuantizeLinear.
* The constant DequantizeLinear nodes carry explicit zero-point initializers:
  without them ORT fuses no ``Gemm`` (measured).

Why the integers differ from kwsint's (= TFLite Micro's), measured layer by
layer on the random M2 and M1 models (``tests/interop/test_onnx.py`` checks it):

* Both compute the same exact accumulator; ORT then rounds ``acc * M`` once
  (``QGemm``: float32 scale ``s_in * s_w / s_out``, round half to even; the
  float path: float32 Gemm then QuantizeLinear). Its result equals the
  correctly rounded exact value in >= 99.9 % of outputs.
* int8: TFLM rounds twice. SaturatingRoundingDoublingHighMul rounds
  ``acc * M`` to ``2^-right`` of a code (right = -shift, 6..11 here), which
  turns values just below a half into the half itself (76.4992 -> 76.5), and
  RoundingDivideByPOT rounds that tie away from zero (77; ORT: 76). Every int8
  mismatch measured has ``|acc * M|`` in ``[k + 0.5 - 2^-(right+1), k + 0.5 + 5e-5]``:
  the double-rounding band, plus float32 rounding of an unfused Gemm. Rate:
  0.04-0.7 % of a layer's outputs, never more than one code. The float32
  scale (error ~2^-24) and the tie rules contribute nothing measurable.
* int16: TFLM's 16x8 requantization reduces the multiplier to 16 bits
  (relative error up to 2^-15, up to one code at |y| ~ 32767); 2-5 % of a
  layer's outputs differ, by one code.
* Through a whole model the one-code differences enter the next layers'
  accumulators and spread: on the random M2 model (2000 windows) 4 % of the
  windows have equal logits, the largest difference is 27 codes (logit std
  53 codes), and 97 % of the decisions agree; disagreements only where the
  reference's logit difference is within 18 codes of 0. See ``docs/onnx.md``.

The input QuantizeLinear differs too: ONNX rounds ties to even, TFLite's
QUANTIZE away from zero, and float32 quotients ``y / s_in`` land exactly on a
half more often than one might think (measured: 7 of 1.08 million M2 input
values, 916 for M1's int16 scale); half of those (even floors) differ by one code.

``onnx`` and ``onnxruntime`` are imported lazily, so ``import kwsint`` never
needs them.
"""

from __future__ import annotations

import math

import numpy as np

from ..engine import reference
from ..engine.modelspec import Layer, ModelSpec

__all__ = ["OPSET", "model_to_onnx", "run_onnxruntime", "onnxruntime_ops", "agreement"]

#: The ONNX opset written: the first with int16 (and int4) QuantizeLinear and
#: DequantizeLinear in the standard domain.
OPSET = 21
_IR_VERSION = 10  # the IR of opset 21; onnxruntime >= 1.18 reads it


def _onnx():
    try:
        import onnx
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("kwsint.interop.onnx_export needs the 'onnx' package (pip install 'kwsint[interop]')") from e
    return onnx


def _ort():
    try:
        import onnxruntime
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("kwsint.interop.onnx_export needs the 'onnxruntime' package (pip install 'kwsint[interop]')") from e
    return onnxruntime


# --- checking a spec ------------------------------------------------------------------------


def _f32(x: float, name: str) -> np.float32:
    v = np.float32(x)
    if not (math.isfinite(float(v)) and v > 0):
        raise ValueError(f"{name} must be a positive finite float32, got {x!r}")
    return v


def _scales(values, n: int, name: str) -> np.ndarray:
    s = np.asarray(values, dtype=np.float32).reshape(-1)
    if s.size != n:
        raise ValueError(f"{name} needs {n} entries, got {s.size}")
    if not (np.all(np.isfinite(s)) and np.all(s > 0)):
        raise ValueError(f"{name} must be positive finite float32 values")
    return s


def _ints(values, shape, lo: int, hi: int, dtype, name: str) -> np.ndarray:
    a = np.asarray(values)
    if a.dtype.kind not in "iu":
        raise ValueError(f"{name}: expected integers, got dtype {a.dtype}")
    if a.shape != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {a.shape}")
    if a.size and (int(a.min()) < lo or int(a.max()) > hi):
        raise ValueError(f"{name}: values must lie in [{lo}, {hi}], got [{int(a.min())}, {int(a.max())}]")
    return a.astype(dtype)


# --- building -----------------------------------------------------------------------------


class _Graph:
    """Nodes and initializers of one graph under construction."""

    def __init__(self, act_bits: int) -> None:
        self.onnx = _onnx()
        self.act_dtype = np.int8 if act_bits == 8 else np.int16
        self.nodes: list = []
        self.initializers: list = []

    def const(self, name: str, value) -> str:
        self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attrs) -> str:
        """Appends a node named after its one output."""
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def quantize(self, x: str, scale, zero_point: int, name: str) -> str:
        s = self.const(f"{name}/scale", np.float32(scale))
        z = self.const(f"{name}/zero_point", self.act_dtype(zero_point))
        return self.node("QuantizeLinear", [x, s, z], name)

    def dequantize_activation(self, x: str, scale, zero_point: int, name: str) -> str:
        s = self.const(f"{name}/scale", np.float32(scale))
        z = self.const(f"{name}/zero_point", self.act_dtype(zero_point))
        return self.node("DequantizeLinear", [x, s, z], name)

    def dequantize_const(self, name: str, codes: np.ndarray, scales: np.ndarray) -> str:
        """A constant integer tensor times its per-channel (axis 0) or single scale; zero point 0.

        The zero point is written although 0 is the default: without it
        onnxruntime fuses no Gemm into QGemm (measured, 1.32).
        """
        per_channel = scales.size > 1
        q = self.const(f"{name}/codes", codes)
        s = self.const(f"{name}/scale", scales if per_channel else scales[0])
        z = self.const(f"{name}/zero_point", np.zeros(scales.size if per_channel else (), codes.dtype))
        return self.node("DequantizeLinear", [q, s, z], name, **({"axis": 0} if per_channel else {}))


def _layer(g: _Graph, layer: Layer, h: str, name: str, act_bits: int, prev_size: int) -> str:
    """Appends one layer to ``g``: its int8/int16 input codes ``h`` -> its output codes."""
    if layer.kind not in ("dense", "affine"):
        raise ValueError(f"{name}: kind must be 'dense' or 'affine', got {layer.kind!r}")
    qmin, qmax = (-128, 127) if act_bits == 8 else (-32768, 32767)
    n = layer.out_size
    if layer.in_size != prev_size:
        raise ValueError(f"{name}: in_size {layer.in_size} differs from the previous output size {prev_size}")
    dense = layer.kind == "dense"
    w = _ints(layer.weights, (n, prev_size) if dense else (n,), -128, 127, np.int8, f"{name}: weights")
    ws = _scales(layer.weight_scale, n, f"{name}: weight_scale")
    if dense and not layer.per_channel:
        if not np.all(ws == ws[0]):
            raise ValueError(f"{name}: weight_scale: a per-tensor layer needs equal scales")
        ws = ws[:1]
    s_in = _f32(layer.input_scale, f"{name}: input_scale")
    s_out = _f32(layer.output_scale, f"{name}: output_scale")
    zp_lo, zp_hi = (qmin, qmax) if act_bits == 8 else (0, 0)
    zi = int(_ints(layer.input_zero_point, (), zp_lo, zp_hi, np.int64, f"{name}: input_zero_point"))
    zo = int(_ints(layer.output_zero_point, (), zp_lo, zp_hi, np.int64, f"{name}: output_zero_point"))
    # DequantizeLinear takes int32 but not int64: a 16x8 bias must fit int32.
    bias = _ints(layer.bias, (n,), -(2**31), 2**31 - 1, np.int32, f"{name}: bias")
    if not qmin <= layer.act_min <= layer.act_max <= qmax:
        raise ValueError(f"{name}: act_min/act_max must satisfy {qmin} <= act_min <= act_max <= {qmax}, "
                         f"got [{layer.act_min}, {layer.act_max}]")
    clamp = (layer.act_min, layer.act_max) != (qmin, qmax)

    if not dense:  # depthwise 1x1 Conv works on [batch, N, 1, 1]; reshaping codes moves no value
        h = g.node("Reshape", [h, g.const(f"{name}/shape4d", np.array([-1, n, 1, 1], np.int64))], f"{name}/input4d")
        w = w.reshape(n, 1, 1, 1)
    x = g.dequantize_activation(h, s_in, zi, f"{name}/input")
    wf = g.dequantize_const(f"{name}/weights", w, ws)
    bf = g.dequantize_const(f"{name}/bias", bias, (s_in * ws).astype(np.float32))
    if dense:
        y = g.node("Gemm", [x, wf, bf], f"{name}/real", transB=1)
    else:
        y = g.node("Conv", [x, wf, bf], f"{name}/real", group=n, kernel_shape=[1, 1])
    if clamp and act_bits == 16:
        # (k * s) / s rounds back to k for |k| < 2^16 (relative error <= 2^-23), so
        # this clamps the output codes to exactly [act_min, act_max].
        lo = g.const(f"{name}/clip_min", np.float32(np.float32(layer.act_min - zo) * s_out))
        hi = g.const(f"{name}/clip_max", np.float32(np.float32(layer.act_max - zo) * s_out))
        y = g.node("Clip", [y, lo, hi], f"{name}/clipped")
    q = g.quantize(y, s_out, zo, f"{name}/output")
    if clamp and act_bits == 8:
        lo = g.const(f"{name}/clip_min", np.int8(layer.act_min))
        hi = g.const(f"{name}/clip_max", np.int8(layer.act_max))
        q = g.node("Clip", [q, lo, hi], f"{name}/output_clipped")
    if not dense:
        q = g.node("Reshape", [q, g.const(f"{name}/shape2d", np.array([-1, n], np.int64))], f"{name}/output2d")
    return q


def model_to_onnx(spec: ModelSpec, *, batch: int | None = None) -> bytes:
    """The whole integer model as an ONNX QDQ model (opset ``OPSET``), serialised.

    Args:
        spec: the model. Every layer's weights are int8 codes; 16x8 biases
            must fit int32 (ONNX DequantizeLinear has no int64).
        batch: rows of the input and output, or None for a symbolic
            ``"batch"`` dimension.

    Returns:
        The ``.onnx`` bytes, passed through ``onnx.checker.check_model``. Input
        ``"input"``: float32 ``[batch, input_size]``, normalised selected frames
        (``reference.normalize_window``). Output ``"logits"``: int8 or int16
        ``[batch, 2]`` codes, real value ``(code - zp_out) * s_out`` of the
        last layer.

    Raises:
        ValueError: naming the layer and field, when the spec cannot be written:
            an unknown layer kind, sizes that do not chain, weights outside
            int8, unequal scales on a per-tensor layer, non-positive scales,
            zero points outside the activation type (non-zero for int16), a
            bias outside int32, or a clamp outside the activation range.
    """
    onnx = _onnx()
    helper = onnx.helper
    if spec.act_bits not in (8, 16):
        raise ValueError(f"act_bits must be 8 or 16, got {spec.act_bits!r}")
    if not spec.layers:
        raise ValueError("spec has no layers")
    if batch is not None and int(batch) < 1:
        raise ValueError(f"batch must be >= 1 or None, got {batch!r}")
    fe = spec.frontend
    g = _Graph(spec.act_bits)
    zp_lo, zp_hi = (-128, 127) if spec.act_bits == 8 else (0, 0)
    zp = int(_ints(fe.input_zero_point, (), zp_lo, zp_hi, np.int64, "frontend: input_zero_point"))
    h = g.quantize("input", _f32(fe.input_scale, "frontend: input_scale"), zp, "input_codes")
    size = fe.input_size
    for i, layer in enumerate(spec.layers):
        h = _layer(g, layer, h, f"layer{i}_{layer.kind}", spec.act_bits, size)
        size = layer.out_size
    rows = "batch" if batch is None else int(batch)
    act_type = onnx.TensorProto.INT8 if spec.act_bits == 8 else onnx.TensorProto.INT16
    g.nodes[-1].output[0] = "logits"  # the last layer's output node writes the graph output
    graph = helper.make_graph(
        g.nodes, spec.name or "kwsint",
        [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, [rows, fe.input_size])],
        [helper.make_tensor_value_info("logits", act_type, [rows, size])],
        g.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=_IR_VERSION,
                              producer_name="kwsint", doc_string="kwsint integer model, QDQ form (kwsint.interop.onnx_export)")
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


# --- running ----------------------------------------------------------------------------------


def _session(model: bytes, int8_kernels: bool | None, optimized_path: str | None = None):
    ort = _ort()
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1  # one thread: the same summation order on every run
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    if int8_kernels is not None:
        so.add_session_config_entry("session.qdqisint8allowed", "1" if int8_kernels else "0")
    if optimized_path is not None:
        so.optimized_model_filepath = optimized_path
    return ort.InferenceSession(bytes(model), so, providers=["CPUExecutionProvider"])


def run_onnxruntime(model: bytes, x: np.ndarray, *, int8_kernels: bool | None = None) -> np.ndarray:
    """Integer logits from onnxruntime's CPUExecutionProvider, one thread, default optimisations.

    Args:
        model: ``model_to_onnx`` bytes.
        x: normalised input rows, float (converted to float32), shape
            ``(input_size,)`` or ``(..., input_size)``.
        int8_kernels: None keeps onnxruntime's default QDQ fusion for this
            CPU (on x86-64 signed int8 groups mostly stay float); True or False
            sets ``session.qdqisint8allowed`` (True is what ARM gets).

    Returns:
        The ``"logits"`` codes (int8 or int16), shape ``x.shape[:-1] + (2,)``.
        A fixed-batch model runs rows in one call when the count matches, one
        by one when its batch is 1.

    Raises:
        ValueError: wrong row size, or rows that do not fit a fixed batch.
    """
    sess = _session(model, int8_kernels)
    inp = sess.get_inputs()[0]
    rows_dim, feat = inp.shape
    a = np.asarray(x, dtype=np.float32)
    if a.ndim == 0 or a.shape[-1] != feat:
        raise ValueError(f"x: rows of {feat} values expected, got shape {a.shape}")
    rows = a.reshape(-1, feat)
    if isinstance(rows_dim, str) or rows_dim == rows.shape[0]:
        out = sess.run(None, {inp.name: rows})[0]
    elif rows_dim == 1:
        out = np.concatenate([sess.run(None, {inp.name: r[None]})[0] for r in rows])
    else:
        raise ValueError(f"x: {rows.shape[0]} rows do not fit the model's batch of {rows_dim}")
    return out.reshape(a.shape[:-1] + out.shape[-1:])


def onnxruntime_ops(model: bytes, *, int8_kernels: bool | None = None) -> dict[str, int]:
    """Operator counts of the graph onnxruntime runs, after its optimisations (QDQ fusion).

    ``int8_kernels`` as in ``run_onnxruntime``. E.g. ``{"QGemm": 7, ...}``.
    """
    import os
    import tempfile

    onnx = _onnx()
    with tempfile.TemporaryDirectory(prefix="kwsint-onnx-") as d:
        path = os.path.join(d, "optimized.onnx")
        _session(model, int8_kernels, path)
        graph = onnx.load(path).graph
    counts: dict[str, int] = {}
    for node in graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def agreement(spec: ModelSpec, windows: np.ndarray, *, int8_kernels: bool | None = None) -> dict:
    """How closely onnxruntime running ``model_to_onnx(spec)`` follows kwsint's integers.

    ``kwsint.reference.forward`` runs the raw windows; onnxruntime runs
    ``reference.normalize_window`` of the same windows.

    Args:
        spec: the model.
        windows: float windows ``(W, window_frames, feature_dim)`` (finite values).
        int8_kernels: as in ``run_onnxruntime``.

    Returns:
        ``windows`` (W); ``logits_exact`` (windows whose two logits are equal)
        and ``logits_exact_rate`` (in [0, 1]); ``max_abs_logit_diff`` and
        ``mean_abs_logit_diff`` (output codes, over all logits);
        ``decisions_agree`` and ``decision_agreement_rate``: windows where both
        pick the same class (wakeword iff logit[1] > logit[0], i.e. argmax with
        ties to class 0, i.e. the sign of the logit difference).
    """
    w = np.asarray(windows, dtype=np.float32)
    fe = spec.frontend
    if w.ndim != 3 or w.shape[1:] != (fe.window_frames, fe.feature_dim):
        raise ValueError(f"windows: expected shape (W, {fe.window_frames}, {fe.feature_dim}), got {w.shape}")
    ref = reference.forward(spec, w)[0].astype(np.int64)
    got = run_onnxruntime(model_to_onnx(spec), reference.normalize_window(fe, w),
                          int8_kernels=int8_kernels).astype(np.int64)
    diff = np.abs(got - ref)
    exact = int(np.sum(np.all(diff == 0, axis=-1)))
    agree = int(np.sum((ref[:, 1] > ref[:, 0]) == (got[:, 1] > got[:, 0])))
    count = int(w.shape[0])
    return {
        "windows": count,
        "logits_exact": exact,
        "logits_exact_rate": exact / count if count else 1.0,
        "max_abs_logit_diff": int(diff.max()) if diff.size else 0,
        "mean_abs_logit_diff": float(diff.mean()) if diff.size else 0.0,
        "decisions_agree": agree,
        "decision_agreement_rate": agree / count if count else 1.0,
    }
