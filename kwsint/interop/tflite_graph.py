"""TFLite flatbuffers of streaming graphs, and TFLM running them invoke by invoke.

``graph_to_tflite(spec)`` writes a ``kwsint.engine.graph.GraphSpec`` as the kind of file microWakeWord ships:
a ``main`` subgraph and, when the graph has states, an init subgraph that ``CALL_ONCE`` runs on the first
invoke to assign each state's ``init`` (VAR_HANDLE + ASSIGN_VARIABLE of a constant). Each op becomes:

* ``Window``  -> READ_VARIABLE (at the top of ``main``, as in the shipped models) -> CONCATENATION on time ->
  STRIDED_SLICE of the last ``state.frames`` frames (begin [0, -R, 0, 0], begin_mask 13, end_mask 15) ->
  ASSIGN_VARIABLE;
* ``Slice``   -> STRIDED_SLICE, or SPLIT_V on channels (``channel_slices="split_v"``) and a STRIDED_SLICE of
  the last frames where fewer are kept;
* ``Concat``  -> CONCATENATION on channels;
* ``Conv`` / ``DepthwiseConv`` -> CONV_2D / DEPTHWISE_CONV_2D with a K x 1 filter, the clamp written as the
  fused activation that gives it (``kwsint.reference.activation_range``);
* ``FullyConnected`` -> FULLY_CONNECTED on the 4-D tensor (TFLM flattens it), or after a RESHAPE to [1, F*C]
  (``fc_reshape=True``, as hey_jarvis does; the FC's output and what follows it are then [1, N]). A per-tensor
  one fails TFLM's Prepare unless ``|s_in * s_w - s_bias| / s_out <= 0.02``; the bias scale written is
  float32(s_in * s_w), so effective scales s_in * s_w / s_out above about 2^18 can fail;
* ``Logistic`` / ``Quantize`` -> LOGISTIC / QUANTIZE.

Activations are [1, frames, 1, channels] (``input_rank3=True`` makes the graph input [1, frames, channels]
and RESHAPEs it, as the shipped models do). TFLM derives every multiplier, shift and clamp from the float
scales written here, so a model and a GraphSpec agree only if both follow the spec.

``TflmStream`` is the TFLM interpreter on such a model with ``ReferenceStream``'s interface, and
``tflm_arena_bytes`` the arena TFLM allocates for it. kwsint-export writes the streaming convolutional models with
``graph_to_tflite``, checks them with ``TflmStream`` and states the arena in their microWakeWord settings; the
importer's tests use both to make .tflite files whose GraphSpec is known. ``tflite_micro`` is imported when first
used.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from ..engine import reference
from ..engine.graph import (Concat, Conv, DepthwiseConv, FullyConnected, GraphSpec, Logistic, Quantize, Slice,
                            Window)
from .tflite import _fast_compiler, _tflm  # _fast_compiler packs constant buffers in one copy: weights build fast

__all__ = ["TflmStream", "fused_activation", "graph_to_tflite", "tflm_arena_bytes"]


me = S = runtime = None  # tflite_micro's model_editor, schema and runtime, imported on first use (_load)


def _load() -> None:
    global me, S, runtime
    if S is None:
        me, S, runtime = _tflm()


def fused_activation(act_min: int, act_max: int, output_scale: float, output_zero_point: int) -> str:
    """The fused activation whose TFLM clamp is [act_min, act_max] (tried in the order of
    ``reference.ACTIVATIONS``). Raises ValueError if none is."""
    for kind in reference.ACTIVATIONS:
        try:
            if reference.activation_range(kind, output_scale, output_zero_point) == (act_min, act_max):
                return kind
        except ValueError:
            continue
    raise ValueError(f"no fused activation clamps to [{act_min}, {act_max}] (scale {output_scale!r}, "
                     f"zero point {output_zero_point})")


def _quant(scales, zero_points, axis=None) -> me.Quantization:
    scales = [float(np.float32(s)) for s in np.atleast_1d(scales)]
    zps = [int(z) for z in np.atleast_1d(zero_points)]
    return me.Quantization(scales=scales, zero_points=zps * len(scales) if len(zps) == 1 else zps, axis=axis)


def _op(sg, opcode, inputs, outputs, options_type=None, options=None):
    op = sg.add_operator(opcode=opcode, inputs=list(inputs), outputs=list(outputs))
    if options is not None:
        op._fb.builtinOptionsType = options_type
        op._fb.builtinOptions = options
    return op


def _const(sg, array: np.ndarray, name: str, quantization=None):
    a = np.ascontiguousarray(array)
    ttype = {np.dtype(np.int8): S.TensorType.INT8, np.dtype(np.int32): S.TensorType.INT32}[a.dtype]
    return sg.add_tensor(shape=a.shape, dtype=ttype, data=a, quantization=quantization, name=name)


def _var_handle(sg, name: str):
    handle = sg.add_tensor(shape=(), dtype=S.TensorType.RESOURCE, name=f"{name}/handle")
    opts = S.VarHandleOptionsT()
    opts.container = ""
    opts.sharedName = name
    _op(sg, S.BuiltinOperator.VAR_HANDLE, [], [handle], S.BuiltinOptions.VarHandleOptions, opts)
    return handle


def _strided_slice(sg, x, out, begin, end, begin_mask: int, end_mask: int, name: str):
    begin, end, strides = (_const(sg, np.asarray(v, np.int32), f"{name}/{n}")
                           for v, n in ((begin, "begin"), (end, "end"), ([1] * len(begin), "strides")))
    opts = S.StridedSliceOptionsT()
    opts.beginMask, opts.endMask = begin_mask, end_mask
    _op(sg, S.BuiltinOperator.STRIDED_SLICE, [x, begin, end, strides], [out], S.BuiltinOptions.StridedSliceOptions,
        opts)


def _concatenation(sg, inputs, out, axis: int):
    opts = S.ConcatenationOptionsT()
    opts.axis = axis
    opts.fusedActivationFunction = S.ActivationFunctionType.NONE
    _op(sg, S.BuiltinOperator.CONCATENATION, inputs, [out], S.BuiltinOptions.ConcatenationOptions, opts)


def _reshape(sg, x, shape, name: str):
    y = sg.add_tensor(shape=tuple(shape), dtype=x.dtype, quantization=x.quantization, name=name)
    opts = S.ReshapeOptionsT()
    opts.newShape = list(shape)
    _op(sg, S.BuiltinOperator.RESHAPE, [x, _const(sg, np.asarray(shape, np.int32), f"{name}/shape")], [y],
        S.BuiltinOptions.ReshapeOptions, opts)
    return y


def _linear_inputs(sg, spec: GraphSpec, op, weights: np.ndarray, axis: int, name: str):
    """The filter and bias tensors of a Conv, DepthwiseConv or FullyConnected: per-channel scales on ``axis``
    (or one per tensor), bias scales s_in * s_w (TFLM checks them only for a per-tensor FULLY_CONNECTED)."""
    s_in = np.float32(spec.tensors[op.input].quant.scale)
    ws = np.asarray(op.weight_scale, np.float32)
    w = _const(sg, weights, f"{name}/weights", _quant(ws, 0, axis if ws.size > 1 else None))
    b = _const(sg, op.bias, f"{name}/bias", _quant([s_in * s for s in ws], 0, 0 if ws.size > 1 else None))
    return w, b


def graph_to_tflite(spec: GraphSpec, *, input_rank3: bool = False, fc_reshape: bool = False,
                    channel_slices: str = "strided_slice", tensor_indices: dict[int, int] | None = None) -> bytes:
    """The .tflite flatbuffer of ``spec`` (see the module's docstring for the mapping and the options).

    ``tensor_indices``, if given, receives the index in ``main`` of each spec tensor (for TFLM's
    ``GetTensor(index, 0)`` under ``kPreserveAllTensors``; the graph input's is its 4-D reshape's).

    Raises:
        ValueError: a clamp no fused activation gives, or (``fc_reshape``) a [1, N] FC output read by an op
            other than LOGISTIC, QUANTIZE or FULLY_CONNECTED.
    """
    _load()
    model = me.Model(description="kwsint streaming graph")
    main = model.add_subgraph(name="main")
    tensors: dict[int, object] = {}

    def tensor(i: int, shape=None):
        if i not in tensors:
            t = spec.tensors[i]
            tensors[i] = main.add_tensor(shape=shape or (1, t.frames, 1, t.channels),
                                         dtype=getattr(S.TensorType, t.dtype.upper()),
                                         quantization=_quant(t.quant.scale, t.quant.zero_point), name=f"t{i}")
        return tensors[i]

    def four_d(i: int):
        if len(tensor(i).shape) != 4:
            raise ValueError(f"tensors[{i}] is [1, N] after a reshaped FULLY_CONNECTED; this builder cannot "
                             "feed it to a data-movement op or a convolution")
        return tensor(i)

    x_in = spec.tensors[spec.input]
    if input_rank3:
        graph_input = tensor(spec.input, (1, x_in.frames, x_in.channels))
        tensors[spec.input] = _reshape(main, graph_input, (1, x_in.frames, 1, x_in.channels), "input/reshape")
    else:
        graph_input = tensor(spec.input)

    handles, reads = [], []
    if spec.states:
        init = model.add_subgraph(name="init")
        opts = S.CallOnceOptionsT()
        opts.initSubgraphIndex = 1
        _op(main, S.BuiltinOperator.CALL_ONCE, [], [], S.BuiltinOptions.CallOnceOptions, opts)
        for k, state in enumerate(spec.states):
            q = _quant(state.quant.scale, state.quant.zero_point)
            _op(init, S.BuiltinOperator.ASSIGN_VARIABLE,
                [_var_handle(init, f"state{k}"), _const(init, state.init.reshape(1, state.frames, 1, state.channels),
                                                        f"state{k}/init", q)], [])
        for k, state in enumerate(spec.states):
            handles.append(_var_handle(main, f"state{k}"))
            reads.append(main.add_tensor(shape=(1, state.frames, 1, state.channels), dtype=S.TensorType.INT8,
                                         quantization=_quant(state.quant.scale, state.quant.zero_point),
                                         name=f"state{k}/read"))
            _op(main, S.BuiltinOperator.READ_VARIABLE, [handles[k]], [reads[k]])

    for k, op in enumerate(spec.ops):
        name = f"op{k}"
        if isinstance(op, Window):
            state = spec.states[op.state]
            window = four_d(op.out)
            _concatenation(main, [reads[op.state], four_d(op.input)], window, axis=1)
            kept = main.add_tensor(shape=(1, state.frames, 1, state.channels), dtype=S.TensorType.INT8,
                                   quantization=window.quantization, name=f"{name}/kept")
            _strided_slice(main, window, kept, [0, -state.frames, 0, 0], [0, 0, 0, 0], 0b1101, 0b1111, name)
            _op(main, S.BuiltinOperator.ASSIGN_VARIABLE, [handles[op.state], kept], [])
        elif isinstance(op, Slice):
            x, t = spec.tensors[op.input], spec.tensors[op.out]
            if channel_slices == "split_v" and op.channels < x.channels:
                sizes = [n for n in (op.channel_start, op.channels, x.channels - op.channel_start - op.channels)
                         if n > 0]
                parts = [main.add_tensor(shape=(1, x.frames, 1, n), dtype=S.TensorType.INT8,
                                         quantization=four_d(op.input).quantization, name=f"{name}/part{j}")
                         for j, n in enumerate(sizes)]
                kept = parts[1 if op.channel_start > 0 else 0]
                if op.frames == x.frames:
                    parts[parts.index(kept)] = kept = four_d(op.out)
                opts = S.SplitVOptionsT()
                opts.numSplits = len(sizes)
                _op(main, S.BuiltinOperator.SPLIT_V, [four_d(op.input), _const(main, np.asarray(sizes, np.int32),
                    f"{name}/sizes"), _const(main, np.asarray(3, np.int32), f"{name}/axis")], parts,
                    S.BuiltinOptions.SplitVOptions, opts)
                if op.frames < x.frames:
                    _strided_slice(main, kept, four_d(op.out), [0, -op.frames, 0, 0], [0, 0, 0, 0], 0b1101,
                                   0b1111, name)
            else:
                _strided_slice(main, four_d(op.input), four_d(op.out), [0, -op.frames, 0, op.channel_start],
                               [0, 0, 0, op.channel_start + t.channels], 0b0101, 0b0111, name)
        elif isinstance(op, Concat):
            _concatenation(main, [four_d(i) for i in op.inputs], four_d(op.out), axis=3)
        elif isinstance(op, (Conv, DepthwiseConv)):
            out = spec.tensors[op.out]
            act = fused_activation(op.act_min, op.act_max, out.quant.scale, out.quant.zero_point)
            depthwise = isinstance(op, DepthwiseConv)
            weights = (op.weights.reshape(1, op.weights.shape[0], 1, op.weights.shape[1]) if depthwise else
                       op.weights.reshape(op.weights.shape[0], op.weights.shape[1], 1, op.weights.shape[2]))
            w, b = _linear_inputs(main, spec, op, weights, 3 if depthwise else 0, name)
            opts = S.DepthwiseConv2DOptionsT() if depthwise else S.Conv2DOptionsT()
            opts.padding = S.Padding.SAME if op.padding == "same" else S.Padding.VALID
            opts.strideH, opts.strideW = op.stride, 1
            opts.dilationHFactor, opts.dilationWFactor = op.dilation, 1
            opts.fusedActivationFunction = getattr(S.ActivationFunctionType, act.upper())
            if depthwise:
                opts.depthMultiplier = 1
            _op(main, S.BuiltinOperator.DEPTHWISE_CONV_2D if depthwise else S.BuiltinOperator.CONV_2D,
                [four_d(op.input), w, b], [four_d(op.out)],
                S.BuiltinOptions.DepthwiseConv2DOptions if depthwise else S.BuiltinOptions.Conv2DOptions, opts)
        elif isinstance(op, FullyConnected):
            x, out = spec.tensors[op.input], spec.tensors[op.out]
            act = fused_activation(op.act_min, op.act_max, out.quant.scale, out.quant.zero_point)
            w, b = _linear_inputs(main, spec, op, op.weights, 0, name)
            if fc_reshape:
                inp = _reshape(main, tensor(op.input), (1, x.frames * x.channels), f"{name}/flat") \
                    if len(tensor(op.input).shape) == 4 else tensor(op.input)
                y = tensor(op.out, (1, out.channels))
            else:
                inp, y = tensor(op.input), four_d(op.out)
            opts = S.FullyConnectedOptionsT()
            opts.fusedActivationFunction = getattr(S.ActivationFunctionType, act.upper())
            opts.keepNumDims = False
            _op(main, S.BuiltinOperator.FULLY_CONNECTED, [inp, w, b], [y], S.BuiltinOptions.FullyConnectedOptions,
                opts)
        elif isinstance(op, (Logistic, Quantize)):
            y = tensor(op.out, tuple(tensor(op.input).shape))
            _op(main, S.BuiltinOperator.LOGISTIC if isinstance(op, Logistic) else S.BuiltinOperator.QUANTIZE,
                [tensor(op.input)], [y])
        else:
            raise ValueError(f"ops[{k}]: {type(op).__name__} has no TFLite form here")

    main.inputs = [graph_input]
    main.outputs = [tensor(spec.output)]
    if tensor_indices is not None:
        tensor_indices.update({i: t.index for i, t in tensors.items()})
    return bytes(_fast_compiler(me._ModelCompiler)(model).compile())


class TflmStream:
    """The TFLM interpreter on a ``graph_to_tflite`` model, with ``ReferenceStream``'s interface."""

    def __init__(self, model: bytes, spec: GraphSpec, *, preserve_all_tensors: bool = False) -> None:
        """``preserve_all_tensors``: keep every tensor of ``main`` readable after an invoke (``tensor``)."""
        _load()
        self.spec = spec
        activation_bytes = sum(t.frames * t.channels for t in spec.tensors) + sum(
            s.frames * s.channels for s in spec.states)
        config = (runtime.InterpreterConfig.kPreserveAllTensors if preserve_all_tensors else
                  runtime.InterpreterConfig.kAllocationRecording)
        self.interpreter = runtime.Interpreter.from_bytes(
            bytes(model), arena_size=(1 << 16) + 4 * len(model) + 8 * activation_bytes,
            intrepreter_config=config)  # sic: the package's spelling
        self._input_shape = tuple(int(d) for d in self.interpreter.get_input_details(0)["shape"])

    def tensor(self, index: int) -> np.ndarray:
        """The codes of tensor ``index`` of ``main`` after the last invoke (``preserve_all_tensors`` only)."""
        return np.array(self.interpreter.GetTensor(index, 0)["tensor_data"])

    def invoke(self, x: np.ndarray) -> np.ndarray:
        """One invoke on int8 (frames, channels) input codes; the output's codes as (frames, channels)."""
        self.interpreter.set_input(np.ascontiguousarray(x, np.int8).reshape(self._input_shape), 0)
        self.interpreter.invoke()
        out = self.spec.tensors[self.spec.output]
        return np.array(self.interpreter.get_output(0)).reshape(out.frames, out.channels)

    def reset(self) -> None:
        """TFLM's ``reset()``: every resource variable := its zero point (the init subgraph does not run again)."""
        self.interpreter.reset()


_ARENA_SCRIPT = """
import sys
from tflite_micro.python.tflite_micro import runtime
runtime.Interpreter.from_bytes(open(sys.argv[1], "rb").read()).print_allocations()
"""


def tflm_arena_bytes(model: bytes) -> int:
    """The bytes of tensor arena TFLM allocates for ``model`` (its recording allocator's total: tensors, the
    resource variables, the ops' persistent buffers), with its reference kernels on this host.

    A device build's optimized kernels (ESP-NN on ESPHome's ESP32s) may need scratch space on top, and a 32-bit
    target's structures are smaller. TFLM prints the figure from C, so it runs in a child process whose output
    is read here. RuntimeError if TFLM does not load the model.
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.tflite"
        path.write_bytes(model)
        run = subprocess.run([sys.executable, "-c", _ARENA_SCRIPT, str(path)], capture_output=True, text=True,
                             timeout=120)
    found = re.search(r"Arena allocation total (\d+) bytes", run.stdout + run.stderr)
    if run.returncode != 0 or found is None:
        raise RuntimeError(f"TFLM did not report an arena for the model (exit {run.returncode}): "
                           f"{(run.stderr or run.stdout).strip()[-300:]}")
    return int(found.group(1))
