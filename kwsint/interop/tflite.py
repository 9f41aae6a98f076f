"""TFLite flatbuffers of kwsint models, run in the real TensorFlow Lite Micro interpreter.

The ``tflite-micro`` package on PyPI ships a TFLM interpreter (no TensorFlow
needed) and ``model_editor``, which writes flatbuffers. This module uses both
to make TFLM an *external oracle*: every kwsint op is one TFLite builtin, so
TFLM must compute the same integers as ``kwsint.reference`` and the C engine.

Only builtin ops are emitted:

* dense   -> FULLY_CONNECTED (int8 x int8 -> int8, int32 bias; or 16x8:
  int16 x int8 -> int16, int64 bias), per-tensor or per-channel weights
  (``quantized_dimension`` 0);
* affine  -> RESHAPE [B, N] -> [B, 1, 1, N], DEPTHWISE_CONV_2D 1x1 (depth
  multiplier 1, per-channel weights on ``quantized_dimension`` 3), RESHAPE back;
* filters of layers with ``weight_bits <= 4`` -> INT4 (``pack_int4``) where
  TFLM reads them, INT8 elsewhere;
* float input -> QUANTIZE (float32 -> int8/int16), optionally preceded by the
  frontend normalisation as float32 SUB (mean) and MUL (inv_std);
* the clamp ``[act_min, act_max]`` -> the op's fused activation function.

TFLM does not read kwsint's integer multipliers: it derives them from the float
scales in the file (``kwsint.reference.dense_multipliers`` is that derivation), and the clamp from the fused
activation and the output quantization (see ``activation_range``).
``model_to_tflite`` checks that both reproduce the ModelSpec's integers and
raises ValueError when a spec cannot be expressed.

What this package version of TFLM does (measured with the interpreter;
TFLM's double-rounding build, i.e. no TFLITE_SINGLE_ROUNDING):

* multipliers: ``QuantizeMultiplier(double(s_in) * double(s_w[c]) /
  double(s_out))`` for FULLY_CONNECTED per-tensor *and* per-channel and for
  DEPTHWISE_CONV_2D, all scales being the float32 values in the file;
* int16 activations: FULLY_CONNECTED applies input and output zero points,
  DEPTHWISE_CONV_2D silently ignores them, so the builders here require 0;
* float inputs with ``|x / scale| >= 2^31`` (and NaN, inf) hit a float ->
  int32 conversion that is undefined behaviour in C++ (INT32_MIN on x86);
  compare only finite inputs inside that range;
* per-tensor FULLY_CONNECTED fails to prepare unless
  ``|s_in * s_w - s_bias| / s_out <= 0.02`` (the bias scale is written as
  float32(s_in * s_w[c]) here); per-channel and DW conv do not check;
* DEPTHWISE_CONV_2D with an absent (-1) bias input crashes the interpreter, so
  a bias-less affine is written with two inputs;
* the interpreter's default arena (10x the file size) is too small for
  constant-free models with wide tensors; ``run_tflm`` sizes it;
* INT4 filters are unpacked by ``UnpackDenseInt4IntoInt8`` (element ``2i`` in
  the low nibble of byte ``i``) into an arena scratch buffer of the unpacked
  size; int8 FULLY_CONNECTED takes them per-tensor only (per-channel fails
  Prepare), int8 DEPTHWISE_CONV_2D per-channel, and 16x8 ops not at all;
* float32 SUB and MUL with fused activation NONE clamp to
  ``[lowest, max]``: a result that overflows to +-inf becomes +-FLT_MAX, so a
  SUB overflow followed by a MUL by less than 1 gives a finite value where
  numpy gives inf. Otherwise they equal numpy's float32 bit for bit
  (broadcast over the batch, subnormals included).

``tflite_micro`` is imported lazily, so ``import kwsint`` never needs it.
"""

from __future__ import annotations

import math

import numpy as np

from ..engine.modelspec import Frontend, Layer, ModelSpec
from ..engine.reference import activation_range as reference_activation_range, dense_multipliers

__all__ = [
    "FUSED_ACTIVATIONS",
    "activation_range",
    "fused_activation_for",
    "fully_connected_model",
    "affine_model",
    "quantize_model",
    "model_to_tflite",
    "int4_filters",
    "run_tflm",
    "align_flatbuffer",
    "pack_int4",
]

#: Fused activation functions TFLM applies to integer FULLY_CONNECTED and
#: DEPTHWISE_CONV_2D outputs, by their schema names.
FUSED_ACTIVATIONS = ("NONE", "RELU", "RELU_N1_TO_1", "RELU6")


# --- lazy imports ------------------------------------------------------------------


def _tflm():
    """(model_editor, schema, runtime) modules of the tflite_micro package."""
    try:
        from tflite_micro import runtime
        from tflite_micro.tensorflow.lite.micro.compression import model_editor
        from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "kwsint.interop.tflite needs the 'tflite-micro' package (pip install 'kwsint[interop]': the validated build)"
        ) from e
    return model_editor, schema, runtime


# --- integer ranges, activations and multipliers ------------------------------------


def _qrange(act_bits: int) -> tuple[int, int]:
    if act_bits == 8:
        return -128, 127
    if act_bits == 16:
        return -32768, 32767
    raise ValueError(f"act_bits must be 8 or 16, got {act_bits!r}")


def _f32(x: float, name: str) -> float:
    """x as the float32 value a flatbuffer stores, checked positive and finite."""
    v = float(np.float32(x))
    if not (math.isfinite(v) and v > 0.0):
        raise ValueError(f"{name} must be a positive finite float32, got {x!r}")
    return v


def activation_range(
    fused_activation: str, *, output_scale: float, output_zero_point: int, act_bits: int
) -> tuple[int, int]:
    """The output clamp TFLM derives from a fused activation (``CalculateActivationRangeQuantized``):
    ``kwsint.reference.activation_range`` under the schema's names.

    * ``NONE``         -> ``[qmin, qmax]``
    * ``RELU``         -> ``[max(qmin, q(0)), qmax]`` = ``[max(qmin, zp), qmax]``
    * ``RELU6``        -> ``[max(qmin, q(0)), min(qmax, q(6))]``
    * ``RELU_N1_TO_1`` -> ``[max(qmin, q(-1)), min(qmax, q(1))]``

    with ``q(f) = output_zero_point + round_half_away(float32(f) / float32(output_scale))``.

    Args:
        fused_activation: one of ``FUSED_ACTIVATIONS``.
        output_scale: real value of one output step (float32).
        output_zero_point: output zero point.
        act_bits: 8 or 16.

    Returns:
        (act_min, act_max) in output codes.

    Raises:
        ValueError: unknown activation, or a bound that overflows int32 (TFLM
            then fails to prepare the op).
    """
    _qrange(act_bits)
    if fused_activation not in FUSED_ACTIVATIONS:
        raise ValueError(f"fused_activation must be one of {FUSED_ACTIVATIONS}, got {fused_activation!r}")
    _f32(output_scale, "output_scale")
    return reference_activation_range(fused_activation.lower(), output_scale, output_zero_point,
                                      "int8" if act_bits == 8 else "int16")


def fused_activation_for(
    act_min: int, act_max: int, *, output_scale: float, output_zero_point: int, act_bits: int
) -> str:
    """The fused activation whose TFLM clamp is exactly ``[act_min, act_max]``.

    Candidates are tried in the order NONE, RELU, RELU6, RELU_N1_TO_1 (see
    ``activation_range`` for the clamp of each).

    Raises:
        ValueError: no fused activation reproduces the clamp.
    """
    want = (int(act_min), int(act_max))
    for name in ("NONE", "RELU", "RELU6", "RELU_N1_TO_1"):
        try:
            got = activation_range(name, output_scale=output_scale, output_zero_point=output_zero_point,
                                   act_bits=act_bits)
        except ValueError:
            continue
        if got == want:
            return name
    raise ValueError(
        f"clamp [{act_min}, {act_max}] is not expressible as a TFLite fused activation for int{act_bits} "
        f"output (scale {output_scale!r}, zero point {output_zero_point}): NONE gives the dtype range, "
        f"RELU [max(qmin, zp), qmax], RELU6 and RELU_N1_TO_1 the quantized [0, 6] and [-1, 1]"
    )


# --- flatbuffer building ---------------------------------------------------------------


class _Builder:
    """A one-subgraph TFLite model under construction."""

    def __init__(self) -> None:
        self.me, self.schema, _ = _tflm()
        self.model = self.me.Model(description="kwsint")
        self.sg = self.model.add_subgraph(name="main")

    def _quant(self, scales, zero_points, axis=None):
        scales = [float(np.float32(s)) for s in np.atleast_1d(scales)]
        zps = [int(z) for z in np.atleast_1d(zero_points)]
        if len(zps) == 1 and len(scales) > 1:
            zps = zps * len(scales)
        return self.me.Quantization(scales=scales, zero_points=zps, axis=axis)

    def activation(self, shape, act_bits: int, scale: float, zero_point: int, name: str):
        tt = self.schema.TensorType
        return self.sg.add_tensor(shape=tuple(int(d) for d in shape), dtype=tt.INT8 if act_bits == 8 else tt.INT16,
                                  quantization=self._quant(scale, zero_point), name=name)

    def float_tensor(self, shape, name: str):
        return self.sg.add_tensor(shape=tuple(int(d) for d in shape), dtype=self.schema.TensorType.FLOAT32, name=name)

    def const(self, array: np.ndarray, tflite_type: int, name: str, quantization=None):
        a = np.ascontiguousarray(array)
        return self.sg.add_tensor(shape=a.shape, dtype=tflite_type, data=a, quantization=quantization, name=name)

    def _op(self, opcode, inputs, outputs, options_type=None, options=None):
        op = self.sg.add_operator(opcode=opcode, inputs=list(inputs), outputs=list(outputs))
        if options is not None:
            op._fb.builtinOptionsType = options_type
            op._fb.builtinOptions = options
        return op

    def _activation_code(self, fused_activation: str) -> int:
        if fused_activation not in FUSED_ACTIVATIONS:
            raise ValueError(f"fused_activation must be one of {FUSED_ACTIVATIONS}, got {fused_activation!r}")
        return getattr(self.schema.ActivationFunctionType, fused_activation)

    def _bias(self, bias, n: int, act_bits: int, bias_scales, name: str):
        if bias is None:
            return None
        tt = self.schema.TensorType
        dtype, ttype = (np.int32, tt.INT32) if act_bits == 8 else (np.int64, tt.INT64)
        b = _int_values(bias, "bias", (n,), np.iinfo(dtype).min, np.iinfo(dtype).max).astype(dtype)
        return self.const(b, ttype, name, self._quant(bias_scales, 0, 0))

    def weights(self, codes: np.ndarray, int4: bool, name: str, quantization):
        """A constant filter: INT4 (packed by ``pack_int4``) or INT8, of ``codes``' shape."""
        tt = self.schema.TensorType
        if int4:
            return self.sg.add_tensor(shape=codes.shape, dtype=tt.INT4, data=pack_int4(codes),
                                      quantization=quantization, name=name)
        return self.const(codes.astype(np.int8), tt.INT8, name, quantization)

    def fully_connected(self, x, weights, bias, weight_scales, y, act_bits, fused_activation, name, int4=False):
        n = weights.shape[0]
        tt = self.schema.TensorType
        si = np.float32(x.quantization.scales[0])
        w = self.weights(weights, int4, f"{name}/weights", self._quant(weight_scales, 0, 0))
        b = self._bias(bias, n, act_bits, [np.float32(si * np.float32(s)) for s in weight_scales], f"{name}/bias")
        opts = self.schema.FullyConnectedOptionsT()
        opts.fusedActivationFunction = self._activation_code(fused_activation)
        opts.keepNumDims = False
        if act_bits == 16:
            opts.quantizedBiasType = tt.INT64
        self._op(self.schema.BuiltinOperator.FULLY_CONNECTED, [x, w, b], [y],
                 self.schema.BuiltinOptions.FullyConnectedOptions, opts)
        return y

    def depthwise_1x1(self, x, weights, bias, weight_scales, y, act_bits, fused_activation, name, int4=False):
        n = weights.shape[0]
        si = np.float32(x.quantization.scales[0])
        w = self.weights(weights.reshape(1, 1, 1, n), int4, f"{name}/weights", self._quant(weight_scales, 0, 3))
        b = self._bias(bias, n, act_bits, [np.float32(si * np.float32(s)) for s in weight_scales], f"{name}/bias")
        opts = self.schema.DepthwiseConv2DOptionsT()
        opts.padding = self.schema.Padding.VALID
        opts.strideW = opts.strideH = 1
        opts.dilationWFactor = opts.dilationHFactor = 1
        opts.depthMultiplier = 1
        opts.fusedActivationFunction = self._activation_code(fused_activation)
        # No bias: two inputs. An absent (-1) third input crashes TFLM's DEPTHWISE_CONV_2D.
        self._op(self.schema.BuiltinOperator.DEPTHWISE_CONV_2D, [x, w] if b is None else [x, w, b], [y],
                 self.schema.BuiltinOptions.DepthwiseConv2DOptions, opts)
        return y

    def reshape(self, x, shape, name):
        q = x.quantization
        y = self.sg.add_tensor(shape=tuple(int(d) for d in shape), dtype=x.dtype,
                               quantization=self.me.Quantization(scales=list(q.scales), zero_points=list(q.zero_points)),
                               name=name)
        s = self.const(np.asarray(shape, dtype=np.int32), self.schema.TensorType.INT32, f"{name}/shape")
        opts = self.schema.ReshapeOptionsT()
        opts.newShape = [int(d) for d in shape]
        self._op(self.schema.BuiltinOperator.RESHAPE, [x, s], [y], self.schema.BuiltinOptions.ReshapeOptions, opts)
        return y

    def quantize(self, x, y):
        self._op(self.schema.BuiltinOperator.QUANTIZE, [x], [y])
        return y

    def float_binary(self, op: str, x, constant: np.ndarray, name: str):
        """float32 ``x op constant`` (SUB or MUL, fused activation NONE); ``constant`` is one row.

        The constant is ``[1, F]`` and broadcasts over the batch rows of ``x``.
        """
        schema = self.schema
        c = self.const(np.asarray(constant, dtype=np.float32).reshape(1, -1), schema.TensorType.FLOAT32,
                       f"{name}/const")
        y = self.float_tensor(x.shape, name)
        opts = schema.SubOptionsT() if op == "SUB" else schema.MulOptionsT()
        opts.fusedActivationFunction = schema.ActivationFunctionType.NONE
        options_type = schema.BuiltinOptions.SubOptions if op == "SUB" else schema.BuiltinOptions.MulOptions
        self._op(getattr(schema.BuiltinOperator, op), [x, c], [y], options_type, opts)
        return y

    def build(self, inputs, outputs) -> bytes:
        self.sg.inputs = list(inputs)
        self.sg.outputs = list(outputs)
        compiler = getattr(self.me, "_ModelCompiler", None)
        if compiler is None:  # pragma: no cover - other tflite_micro versions
            return bytes(self.model.build())
        return bytes(_fast_compiler(compiler)(self.model).compile())


def _fast_compiler(base):
    """model_editor's compiler, packing constant buffers as numpy vectors.

    The generated flatbuffer code packs a list buffer one byte per Python call
    (seconds for a 250K-weight model) but a numpy array in one copy; the bytes
    written are the same.
    """

    class FastCompiler(base):
        def _compile_tensor(self, tensor):
            t = super()._compile_tensor(tensor)
            if tensor.buffer is not None and tensor.buffer.data:
                self._buffers[t.buffer].data = np.frombuffer(bytes(tensor.buffer.data), dtype=np.uint8)
            return t

    return FastCompiler


# --- argument checking -------------------------------------------------------------------


def _int_values(value, name: str, shape, lo: int, hi: int) -> np.ndarray:
    a = np.asarray(value)
    if a.dtype.kind not in "iu":
        raise ValueError(f"{name}: expected integers, got dtype {a.dtype}")
    if a.shape != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {a.shape}")
    if a.size and (int(a.min()) < lo or int(a.max()) > hi):
        raise ValueError(f"{name}: values must lie in [{lo}, {hi}]")
    return a.astype(np.int64)


def _weight_scales(weight_scale, n: int, per_channel_only: bool) -> list[np.float32]:
    ws = np.atleast_1d(np.asarray(weight_scale, dtype=np.float64)).reshape(-1)
    if ws.size == 1 and per_channel_only:
        ws = np.repeat(ws, n)
    if ws.size not in ((n,) if per_channel_only else (1, n)):
        raise ValueError(f"weight_scale: expected a scalar or {n} per-channel scales, got {ws.size}")
    return [np.float32(_f32(s, "weight_scale")) for s in ws]


def _zero_point(zp, name: str, act_bits: int) -> int:
    qmin, qmax = _qrange(act_bits)
    z = int(zp)
    if act_bits == 16 and z != 0:
        raise ValueError(f"{name}: int16 activations need zero point 0 (TFLM's DEPTHWISE_CONV_2D ignores it), got {z}")
    if not qmin <= z <= qmax:
        raise ValueError(f"{name}: must lie in [{qmin}, {qmax}], got {z}")
    return z


def _batch(batch) -> int:
    b = int(batch)
    if b < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    return b


def _weight_codes(weights, ndim: int, int4: bool, act_bits: int, name: str = "weights") -> np.ndarray:
    """Filter codes as int8, checked against the container: [-128, 127], or [-8, 7] for INT4."""
    w = np.asarray(weights)
    if w.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions, got shape {w.shape}")
    if int4 and act_bits != 8:
        raise ValueError(f"{name}: INT4 filters need int8 activations (TFLM refuses them for 16x8), "
                         f"act_bits is {act_bits}")
    lo, hi = (-8, 7) if int4 else (-128, 127)
    return _int_values(w, name, w.shape, lo, hi).astype(np.int8)


def pack_int4(codes: np.ndarray) -> bytes:
    """Codes in [-8, 7] as a TFLite INT4 buffer: two per byte, the first in the low nibble.

    Elements are taken in C (row-major) order; element ``2i`` is the low
    nibble and ``2i + 1`` the high nibble of byte ``i`` (4-bit two's
    complement); an odd count leaves the high nibble of the last byte 0.
    This is what TFLM's ``UnpackDenseInt4IntoInt8`` reads (and what
    ``tests/interop/test_tflm_oracle.py`` measures), so the buffer has
    ``ceil(size / 2)`` bytes.
    """
    nibbles = (np.asarray(codes).reshape(-1).astype(np.int64) & 0x0F).astype(np.uint8)
    if nibbles.size % 2:
        nibbles = np.append(nibbles, np.uint8(0))
    return (nibbles[0::2] | (nibbles[1::2] << 4)).tobytes()


# --- single-op models -------------------------------------------------------------------


def fully_connected_model(
    weights: np.ndarray,
    bias: np.ndarray | None,
    *,
    input_scale: float,
    input_zero_point: int,
    weight_scale: float | np.ndarray,
    output_scale: float,
    output_zero_point: int,
    act_bits: int,
    fused_activation: str = "NONE",
    batch: int = 1,
    int4_weights: bool = False,
) -> bytes:
    """A model of one FULLY_CONNECTED op.

    Input ``[batch, K]`` and output ``[batch, N]`` are int8 (``act_bits`` 8,
    int32 bias) or int16 (``act_bits`` 16, 16x8 with int64 bias, zero points 0).

    Args:
        weights: int8 codes (N, K), symmetric (zero point 0).
        bias: (N,) integers in units of ``input_scale * weight_scale[c]``, or None.
        input_scale, output_scale: real value of one activation step (stored as float32).
        input_zero_point, output_zero_point: activation zero points (0 for int16).
        weight_scale: a scalar (per-tensor) or (N,) array (per-channel,
            quantized_dimension 0; an (N,) array with N == 1 is per-tensor to TFLM).
        act_bits: 8 or 16.
        fused_activation: one of ``FUSED_ACTIVATIONS``; see ``activation_range``.
        batch: rows of the input tensor (``run_tflm`` also loops over rows).
        int4_weights: write the filter as INT4 (``pack_int4``): codes in
            [-8, 7], int8 activations and a per-tensor ``weight_scale`` only
            (TFLM refuses other INT4 FULLY_CONNECTED ops at Prepare).

    Returns:
        The .tflite flatbuffer.
    """
    w = _weight_codes(weights, 2, int4_weights, act_bits)
    n, k = w.shape
    batch = _batch(batch)
    zi = _zero_point(input_zero_point, "input_zero_point", act_bits)
    zo = _zero_point(output_zero_point, "output_zero_point", act_bits)
    ws = _weight_scales(weight_scale, n, per_channel_only=False)
    if int4_weights and len(ws) > 1:
        raise ValueError("weight_scale: INT4 FULLY_CONNECTED filters must be per-tensor (one scale); "
                         "TFLM refuses per-channel ones")
    bld = _Builder()
    x = bld.activation((batch, k), act_bits, _f32(input_scale, "input_scale"), zi, "input")
    y = bld.activation((batch, n), act_bits, _f32(output_scale, "output_scale"), zo, "output")
    bld.fully_connected(x, w, bias, ws, y, act_bits, fused_activation, "fc", int4_weights)
    return bld.build([x], [y])


def affine_model(
    weights: np.ndarray,
    bias: np.ndarray | None,
    *,
    input_scale: float,
    input_zero_point: int,
    weight_scale: float | np.ndarray,
    output_scale: float,
    output_zero_point: int,
    act_bits: int,
    fused_activation: str = "NONE",
    batch: int = 1,
    int4_weights: bool = False,
) -> bytes:
    """A model of one DEPTHWISE_CONV_2D 1x1 (depth multiplier 1) on ``[batch, 1, 1, N]``.

    Computes ``y[c] = requant(w[c] * (x[c] - zp_in) + bias[c])`` per channel:
    kwsint's affine layer. The filter ``[1, 1, 1, N]`` is int8 (or INT4) with
    per-channel scales on quantized_dimension 3; bias is int32 (int8
    activations) or int64 (int16 activations, zero points 0).

    Args:
        weights: int8 codes (N,).
        bias: (N,) integers in units of ``input_scale * weight_scale[c]``, or None.
        weight_scale: (N,) per-channel scales, or a scalar repeated N times.
        int4_weights: write the filter as INT4 (``pack_int4``): codes in
            [-8, 7], int8 activations only.
        Others: as ``fully_connected_model``.

    Returns:
        The .tflite flatbuffer; its input and output are ``[batch, 1, 1, N]``
        (``run_tflm`` accepts (N,) or (B, N) inputs for it).
    """
    w = _weight_codes(weights, 1, int4_weights, act_bits)
    n = w.shape[0]
    batch = _batch(batch)
    zi = _zero_point(input_zero_point, "input_zero_point", act_bits)
    zo = _zero_point(output_zero_point, "output_zero_point", act_bits)
    ws = _weight_scales(weight_scale, n, per_channel_only=True)
    bld = _Builder()
    x = bld.activation((batch, 1, 1, n), act_bits, _f32(input_scale, "input_scale"), zi, "input")
    y = bld.activation((batch, 1, 1, n), act_bits, _f32(output_scale, "output_scale"), zo, "output")
    bld.depthwise_1x1(x, w, bias, ws, y, act_bits, fused_activation, "affine", int4_weights)
    return bld.build([x], [y])


def quantize_model(n: int, *, scale: float, zero_point: int, act_bits: int, batch: int = 1) -> bytes:
    """A model of one QUANTIZE op: float32 ``[batch, n]`` -> int8/int16 ``[batch, n]``.

    TFLM computes ``clamp(zero_point + (int32)round_half_away(float32(x) / float32(scale)))``
    with a float32 division; quotients outside the int32 range (and NaN, inf)
    are undefined behaviour in TFLM.

    Args:
        n: elements per row.
        scale: real value of one output step (float32).
        zero_point: output zero point (0 for int16).
        act_bits: 8 or 16.
        batch: rows.
    """
    if int(n) < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    batch = _batch(batch)
    zp = _zero_point(zero_point, "zero_point", act_bits)
    bld = _Builder()
    x = bld.float_tensor((batch, n), "input")
    y = bld.activation((batch, n), act_bits, _f32(scale, "scale"), zp, "output")
    bld.quantize(x, y)
    return bld.build([x], [y])


# --- whole models ---------------------------------------------------------------------------


def _same_f32(a: float, b: float) -> bool:
    return np.float32(a) == np.float32(b)


def _layer_fused_activation(layer: Layer, act_bits: int, name: str) -> str:
    try:
        return fused_activation_for(layer.act_min, layer.act_max, output_scale=layer.output_scale,
                                    output_zero_point=layer.output_zero_point, act_bits=act_bits)
    except ValueError as e:
        raise ValueError(f"{name}: {e}") from None


def _check_layer_multipliers(layer: Layer, ws: list[np.float32], name: str) -> None:
    mult, shift = dense_multipliers(layer.input_scale, np.asarray(ws, dtype=np.float32), layer.output_scale)
    n = layer.out_size
    want_m = np.broadcast_to(np.asarray(layer.multiplier, dtype=np.int64), (n,))
    want_s = np.broadcast_to(np.asarray(layer.shift, dtype=np.int64), (n,))
    got_m = np.broadcast_to(mult.astype(np.int64), (n,))
    got_s = np.broadcast_to(shift.astype(np.int64), (n,))
    bad = np.nonzero((want_m != got_m) | (want_s != got_s))[0]
    if bad.size:
        c = int(bad[0])
        raise ValueError(
            f"{name}: TFLM derives multiplier/shift {int(got_m[c])}/{int(got_s[c])} for channel {c} from the "
            f"float scales, the spec has {int(want_m[c])}/{int(want_s[c])} ({bad.size} channels differ); "
            "a .tflite file cannot carry other multipliers"
        )


def _layer_int4(layer: Layer, act_bits: int, per_channel_filter: bool, int4_weights: bool | None,
                name: str) -> bool:
    """Whether a layer's filter is written as INT4 (see ``model_to_tflite``)."""
    if int4_weights is False or layer.weight_bits > 4:
        return False
    if act_bits != 8:
        why = "act_bits is 16 and TFLM has no INT4 filters for 16x8 FULLY_CONNECTED or DEPTHWISE_CONV_2D"
    elif layer.kind == "dense" and per_channel_filter:
        why = "the layer is per-channel and TFLM's FULLY_CONNECTED takes INT4 filters only per-tensor"
    else:
        return True
    if int4_weights:
        raise ValueError(f"{name}: weight_bits {layer.weight_bits} asks for an INT4 filter, but {why}")
    return False


def int4_filters(spec: ModelSpec) -> list[bool]:
    """Which layers ``model_to_tflite(spec)`` (automatic ``int4_weights``) writes with INT4 filters."""
    return [_layer_int4(layer, spec.act_bits, layer.per_channel and layer.out_size > 1, None, f"layer{i}")
            for i, layer in enumerate(spec.layers)]


def _frontend_row(values, fe: Frontend, field: str) -> np.ndarray:
    """A per-feature float32 frontend vector tiled over the selected frames: (input_size,)."""
    v = np.asarray(values, dtype=np.float32)
    if v.shape != (fe.feature_dim,):
        raise ValueError(f"frontend {field}: expected shape ({fe.feature_dim},), got {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"frontend {field}: values must be finite")
    return np.tile(v, fe.selected_frames)


def model_to_tflite(
    spec: ModelSpec,
    *,
    float_input: bool,
    normalize: bool = False,
    int4_weights: bool | None = None,
    batch: int = 1,
    check_multipliers: bool = True,
    align: bool = True,
) -> bytes:
    """The whole integer model as a .tflite flatbuffer of builtin ops.

    Input, ``[batch, input_size]``, one of:

    * ``float_input=False``: the quantized int8/int16 vector;
    * ``float_input=True``: the normalised float32 vector, then QUANTIZE;
    * ``float_input=True, normalize=True``: the *selected raw frames* in
      float32 (``reference.select_frames``: frames ``offset::stride``
      flattened frame-major), then SUB (``mean`` tiled per frame), MUL
      (``inv_std`` tiled), both float32 with fused activation NONE, then
      QUANTIZE: TFLM computes ``reference.quantize_window`` exactly as long as
      neither float op overflows (TFLM then gives +-FLT_MAX where numpy gives
      +-inf; see the module notes).

    Frame selection always stays outside the model. Dense layers become
    FULLY_CONNECTED, affine layers RESHAPE -> DEPTHWISE_CONV_2D 1x1 -> RESHAPE
    (RESHAPE moves no integers). Output: the final FULLY_CONNECTED's
    ``[batch, 2]`` integer logits.

    Filters are INT8, or INT4 (``pack_int4``: two codes per byte, low nibble
    first, so half the bytes) for layers with ``weight_bits <= 4`` where TFLM
    reads INT4: int8 activations, and for dense layers per-tensor weights.
    TFLM's FULLY_CONNECTED refuses per-channel INT4 filters, and its 16x8
    FULLY_CONNECTED and DEPTHWISE_CONV_2D refuse INT4 altogether, at Prepare;
    those layers keep INT8.

    Args:
        spec: the model.
        float_input: whether the model starts from float32 (QUANTIZE).
        normalize: put the frontend normalisation in the model (needs
            ``float_input``).
        int4_weights: None (automatic): INT4 for every layer with
            ``weight_bits <= 4`` that TFLM can run with an INT4 filter, INT8
            otherwise. True: the same, but raise ValueError where a layer with
            ``weight_bits <= 4`` cannot be INT4 (16-bit activations, or a
            per-channel dense layer) or no layer has ``weight_bits <= 4``.
            False: INT8 filters throughout.
        batch: rows of the input tensor (>= 1).
        check_multipliers: raise if TFLM would derive multipliers/shifts from
            the scales (``dense_multipliers``) other than the spec's.
        align: pass the file through ``align_flatbuffer`` (16-byte aligned
            constant buffers, as devices need; the integers are unchanged).

    Raises:
        ValueError: the spec cannot be expressed exactly in TFLite (each
            message names the layer and field): a clamp no fused activation
            gives, a layer whose input quantization differs from the previous
            output's, per-tensor layers with unequal weight scales, int16 zero
            points other than 0, (with ``check_multipliers``) multipliers TFLM
            would not derive, INT4 demanded where impossible, ``normalize``
            without ``float_input``, or a non-finite frontend mean/inv_std.
    """
    act_bits = spec.act_bits
    batch = _batch(batch)
    if not spec.layers:
        raise ValueError("spec has no layers")
    if normalize and not float_input:
        raise ValueError("normalize=True needs float_input=True: the normalisation is float32 arithmetic")
    if int4_weights and not any(layer.weight_bits <= 4 for layer in spec.layers):
        raise ValueError("int4_weights=True, but no layer has weight_bits <= 4")
    fe = spec.frontend
    bld = _Builder()
    first = spec.layers[0]
    if first.in_size != fe.input_size:
        raise ValueError(f"layer 0 expects {first.in_size} inputs, the frontend gives {fe.input_size}")
    if float_input and not (_same_f32(first.input_scale, fe.input_scale)
                            and first.input_zero_point == fe.input_zero_point):
        raise ValueError("layer 0's input quantization differs from the frontend's QUANTIZE parameters")
    h = bld.activation((batch, first.in_size), act_bits, _f32(first.input_scale, "layer 0 input_scale"),
                       _zero_point(first.input_zero_point, "layer 0 input_zero_point", act_bits), "input_q")
    inputs = [h]
    if float_input:
        xf = bld.float_tensor((batch, fe.input_size), "input")
        inputs = [xf]
        if normalize:
            xf = bld.float_binary("SUB", xf, _frontend_row(fe.mean, fe, "mean"), "centered")
            xf = bld.float_binary("MUL", xf, _frontend_row(fe.inv_std, fe, "inv_std"), "normalized")
        bld.quantize(xf, h)
    prev_scale, prev_zp, prev_size = first.input_scale, first.input_zero_point, first.in_size
    for i, layer in enumerate(spec.layers):
        name = f"layer{i}_{layer.kind}"
        if layer.kind not in ("dense", "affine"):
            raise ValueError(f"{name}: unknown layer kind {layer.kind!r}")
        if layer.in_size != prev_size:
            raise ValueError(f"{name}: expects {layer.in_size} inputs, previous layer gives {prev_size}")
        if not (_same_f32(layer.input_scale, prev_scale) and layer.input_zero_point == prev_zp):
            raise ValueError(f"{name}: input scale/zero point differ from the previous output's; "
                             "one TFLite tensor has one quantization")
        n = layer.out_size
        ws = np.asarray(layer.weight_scale, dtype=np.float32).reshape(-1)
        if ws.size == 1:
            ws = np.repeat(ws, n)
        if ws.size != n:
            raise ValueError(f"{name}: weight_scale needs {n} entries, got {ws.size}")
        if layer.kind == "dense" and not layer.per_channel:
            if not np.all(ws == ws[0]):
                raise ValueError(f"{name}: per-tensor layer with unequal weight scales")
            scales = [np.float32(ws[0])]
        else:
            scales = [np.float32(s) for s in ws]
        if check_multipliers:
            _check_layer_multipliers(layer, scales, name)
        act = _layer_fused_activation(layer, act_bits, name)
        zo = _zero_point(layer.output_zero_point, f"{name} output_zero_point", act_bits)
        so = _f32(layer.output_scale, f"{name} output_scale")
        int4 = _layer_int4(layer, act_bits, len(scales) > 1, int4_weights, name)
        w = _weight_codes(layer.weights, 2 if layer.kind == "dense" else 1, int4, act_bits, f"{name} weights")
        if layer.kind == "dense":
            y = bld.activation((batch, n), act_bits, so, zo, name)
            h = bld.fully_connected(h, w, layer.bias, scales, y, act_bits, act, name, int4)
        else:
            h4 = bld.reshape(h, (batch, 1, 1, n), f"{name}/in4d")
            y4 = bld.activation((batch, 1, 1, n), act_bits, so, zo, f"{name}/out4d")
            bld.depthwise_1x1(h4, w, layer.bias, scales, y4, act_bits, act, name, int4)
            h = bld.reshape(y4, (batch, n), name)
        prev_scale, prev_zp, prev_size = layer.output_scale, layer.output_zero_point, n
    out = bld.build(inputs, [h])
    return align_flatbuffer(out) if align else out


def align_flatbuffer(model: bytes) -> bytes:
    """Re-pack a .tflite file with its constant buffers 16-byte aligned.

    ``model_editor`` (through the flatbuffers Python API) aligns buffers only
    to their element size; TFLM on a device reads int32/int64 biases and
    weights in place, so deployable files go through TFLM's own
    ``tflite_flatbuffer_align`` tool (shipped in the tflite-micro package).
    """
    import os
    import tempfile

    _tflm()
    from tflite_micro.tensorflow.lite.micro.tools import tflite_flatbuffer_align_wrapper as wrapper

    with tempfile.TemporaryDirectory(prefix="kwsint-tflite-") as d:
        src, dst = os.path.join(d, "in.tflite"), os.path.join(d, "out.tflite")
        with open(src, "wb") as f:
            f.write(bytes(model))
        wrapper.align_tflite_model(src, dst)
        with open(dst, "rb") as f:
            return f.read()


# --- running ----------------------------------------------------------------------------


def run_tflm(model: bytes, x: np.ndarray, *, arena_size: int | None = None) -> np.ndarray:
    """Run a one-input, one-output model in the TFLM interpreter.

    ``x`` holds one or more rows of the model input's per-row size (the
    product of its dimensions after the first). If the model's batch dimension
    equals the number of rows, one invocation runs them all; if it is 1, the
    rows run one invocation each on one interpreter.

    Args:
        model: a .tflite flatbuffer.
        x: the input values: shape (F,) for one row or (..., F) for several,
            F the per-row size. Must have the input's dtype (int8/int16);
            float32 inputs accept any float array, converted to float32.
        arena_size: TFLM tensor arena in bytes; default
            ``1 MiB + len(model) + 64 * x.size``.

    Returns:
        The output values, shape ``x.shape[:-1] + (G,)`` with G the output's
        per-row size, in the output's dtype.

    Raises:
        ValueError: wrong dtype or size.
        RuntimeError: the interpreter refused the model (message on stderr).
    """
    _, _, runtime = _tflm()
    a = np.asarray(x)
    if arena_size is None:
        arena_size = (1 << 20) + len(model) + 64 * max(int(a.size), 1)
    interp = runtime.Interpreter.from_bytes(bytes(model), arena_size=int(arena_size))
    din = interp.get_input_details(0)
    in_shape = tuple(int(d) for d in din["shape"])
    in_dtype = np.dtype(din["dtype"])
    feat = int(np.prod(in_shape[1:])) if len(in_shape) > 1 else 1
    if in_dtype == np.float32 and a.dtype.kind == "f":
        a = a.astype(np.float32)
    if a.dtype != in_dtype:
        raise ValueError(f"x: the model's input is {in_dtype.name}, got {a.dtype}")
    if a.ndim == 0 or a.shape[-1] != feat:
        raise ValueError(f"x: rows of {feat} values expected (model input {in_shape}), got shape {a.shape}")
    lead = a.shape[:-1]
    rows = np.ascontiguousarray(a.reshape(-1, feat))
    nrows = rows.shape[0]
    if in_shape[0] == nrows:
        interp.set_input(rows.reshape(in_shape), 0)
        interp.invoke()
        out = np.array(interp.get_output(0), copy=True).reshape(nrows, -1)
    elif in_shape[0] == 1:
        outs = []
        for r in rows:
            interp.set_input(r.reshape(in_shape), 0)
            interp.invoke()
            outs.append(np.array(interp.get_output(0), copy=True).reshape(-1))
        out = np.stack(outs) if outs else np.empty((0, 0))
    else:
        raise ValueError(f"x: {nrows} rows do not fit the model's batch of {in_shape[0]}")
    return out.reshape(lead + (out.shape[-1],))
