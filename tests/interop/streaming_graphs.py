"""Small streaming TFLite graphs built with tflite-micro's model_editor, for tests/interop/test_tflite_import.py and
the seeds of tests/fuzz/fuzz_tflite.py.

``streaming_graph()`` holds every operator and pattern ``kwsint.interop.tflite_import`` maps, microWakeWord-style
but tiny (a TFLM interpreter runs it): input int8 [1, 2, 4] -> RESHAPE [1, 2, 1, 4] -> a state of 3 frames
(CALL_ONCE's init subgraph, READ_VARIABLE -> CONCATENATION -> STRIDED_SLICE -> ASSIGN_VARIABLE) -> CONV_2D 3 x 1
stride 2 (RELU, per-channel) -> SPLIT_V 2 | 4 channels -> a STRIDED_SLICE crop of the last frame of the first part
and a DEPTHWISE_CONV_2D 2 x 1 of the second -> CONCATENATION of channels -> RESHAPE [1, 6] -> FULLY_CONNECTED
(per tensor) -> LOGISTIC -> QUANTIZE uint8.

``edit`` receives the parts by name (tensors, operators and the ``main_ops`` / ``init_ops`` lists, in order) and
may change anything before the model is built: the tests make bad graphs that way.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from tflite_micro.tensorflow.lite.micro.compression import model_editor as me
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as S

T, OP = S.TensorType, S.BuiltinOperator


def options(kind: str, **fields):
    """A builtin options object of schema type ``kind`` (e.g. "Conv2DOptions") with ``fields`` set."""
    value = getattr(S, kind + "T")()
    for key, v in fields.items():
        setattr(value, key, v)
    return value


def op(code: int, inputs: list, outputs: list, opts=None) -> me.Operator:
    o = me.Operator(opcode=code, inputs=inputs, outputs=outputs)
    if opts is not None:
        o._fb.builtinOptionsType = getattr(S.BuiltinOptions, type(opts).__name__[:-1])
        o._fb.builtinOptions = opts
    return o


def q(scale, zero_point, axis=None) -> me.Quantization:
    return me.Quantization(scales=scale, zero_points=zero_point, axis=axis)


def const(name: str, values, dtype=np.int32, quantization=None) -> me.Tensor:
    a = np.asarray(values, dtype)
    tt = {np.int32: T.INT32, np.int8: T.INT8}[dtype]
    return me.Tensor(shape=a.shape, dtype=tt, data=a, quantization=quantization, name=name)


def act(name: str, shape: tuple, quantization, dtype=T.INT8) -> me.Tensor:
    return me.Tensor(shape=shape, dtype=dtype, quantization=quantization, name=name)


def parts(seed: int = 0) -> dict:
    """The tensors and operators of ``streaming_graph``, by name."""
    rng = np.random.default_rng(seed)
    p: dict = {}
    a = q(0.5, -10)  # the input, the state and the window share one quantization: data movement keeps it
    p["in"] = act("in", (1, 2, 4), a)
    p["frames"] = act("frames", (1, 2, 1, 4), a)
    p["handle"] = me.Tensor(shape=(), dtype=T.RESOURCE, name="handle")
    p["read"] = act("read", (1, 3, 1, 4), a)
    p["window"] = act("window", (1, 5, 1, 4), a)
    p["update"] = act("update", (1, 3, 1, 4), a)
    w_scales = [float(np.float32(s)) for s in rng.uniform(0.01, 0.03, 6)]
    p["conv_w"] = const("conv_w", rng.integers(-127, 128, (6, 3, 1, 4)), np.int8, q(w_scales, [0] * 6, 0))
    p["conv_b"] = const("conv_b", rng.integers(-300, 300, 6), np.int32, q([0.5 * s for s in w_scales], [0] * 6))
    p["conv"] = act("conv", (1, 2, 1, 6), q(0.05, -128))
    p["part_a"] = act("part_a", (1, 2, 1, 2), q(0.05, -128))
    p["part_b"] = act("part_b", (1, 2, 1, 4), q(0.05, -128))
    p["crop"] = act("crop", (1, 1, 1, 2), q(0.05, -128))
    dw_scales = [float(np.float32(s)) for s in rng.uniform(0.01, 0.03, 4)]
    p["dw_w"] = const("dw_w", rng.integers(-127, 128, (1, 2, 1, 4)), np.int8, q(dw_scales, [0] * 4, 3))
    p["dw_b"] = const("dw_b", rng.integers(-300, 300, 4), np.int32, q([0.05 * s for s in dw_scales], [0] * 4))
    p["dw"] = act("dw", (1, 1, 1, 4), q(0.05, -128))
    p["joined"] = act("joined", (1, 1, 1, 6), q(0.05, -128))
    p["flat"] = act("flat", (1, 6), q(0.05, -128))
    p["fc_w"] = const("fc_w", rng.integers(-127, 128, (1, 6)), np.int8, q(0.02, 0))
    p["fc_b"] = const("fc_b", [100], np.int32, q(float(np.float32(0.05 * 0.02)), 0))
    p["fc"] = act("fc", (1, 1), q(0.1, 3))
    p["sigmoid"] = act("sigmoid", (1, 1), q(1 / 256, -128))
    p["out"] = act("out", (1, 1), q(1 / 256, 0), T.UINT8)

    begin = lambda *v: const("begin", v)  # noqa: E731
    p["call_once"] = op(OP.CALL_ONCE, [], [], options("CallOnceOptions", initSubgraphIndex=1))
    p["var_handle"] = op(OP.VAR_HANDLE, [], [p["handle"]], options("VarHandleOptions", container="",
                                                                         sharedName="state"))
    p["reshape"] = op(OP.RESHAPE, [p["in"], const("shape", [1, 2, 1, 4])], [p["frames"]])
    p["read_variable"] = op(OP.READ_VARIABLE, [p["handle"]], [p["read"]])
    p["concat_time"] = op(OP.CONCATENATION, [p["read"], p["frames"]], [p["window"]],
                          options("ConcatenationOptions", axis=1))
    strides = const("strides", [1, 1, 1, 1])
    p["keep_last"] = op(OP.STRIDED_SLICE, [p["window"], begin(0, -3, 0, 0), const("end", [0, 0, 0, 0]), strides],
                        [p["update"]], options("StridedSliceOptions", beginMask=13, endMask=15))
    p["assign"] = op(OP.ASSIGN_VARIABLE, [p["handle"], p["update"]], [])
    p["conv_2d"] = op(OP.CONV_2D, [p["window"], p["conv_w"], p["conv_b"]], [p["conv"]],
                      options("Conv2DOptions", padding=S.Padding.VALID, strideH=2, strideW=1,
                              fusedActivationFunction=S.ActivationFunctionType.RELU))
    p["split_v"] = op(OP.SPLIT_V, [p["conv"], const("sizes", [2, 4]), const("axis", -1)], [p["part_a"], p["part_b"]],
                      options("SplitVOptions", numSplits=2))
    p["crop_last"] = op(OP.STRIDED_SLICE, [p["part_a"], begin(0, -1, 0, 0), const("end", [0, 0, 0, 0]), strides],
                        [p["crop"]], options("StridedSliceOptions", beginMask=13, endMask=15))
    p["depthwise"] = op(OP.DEPTHWISE_CONV_2D, [p["part_b"], p["dw_w"], p["dw_b"]], [p["dw"]],
                        options("DepthwiseConv2DOptions", padding=S.Padding.VALID, strideH=1, strideW=1,
                                depthMultiplier=1))
    p["concat_channels"] = op(OP.CONCATENATION, [p["crop"], p["dw"]], [p["joined"]],
                              options("ConcatenationOptions", axis=-1))
    p["flatten"] = op(OP.RESHAPE, [p["joined"], const("flat_shape", [1, 6])], [p["flat"]])
    p["fully_connected"] = op(OP.FULLY_CONNECTED, [p["flat"], p["fc_w"], p["fc_b"]], [p["fc"]],
                              options("FullyConnectedOptions"))
    p["logistic"] = op(OP.LOGISTIC, [p["fc"]], [p["sigmoid"]])
    p["quantize"] = op(OP.QUANTIZE, [p["sigmoid"]], [p["out"]])
    p["main_ops"] = [p[k] for k in ("call_once", "var_handle", "reshape", "read_variable", "concat_time", "keep_last",
                                    "assign", "conv_2d", "split_v", "crop_last", "depthwise", "concat_channels",
                                    "flatten", "fully_connected", "logistic", "quantize")]

    p["init_handle"] = me.Tensor(shape=(), dtype=T.RESOURCE, name="init_handle")
    p["init_value"] = const("init_value", rng.integers(-128, 128, (1, 3, 1, 4)), np.int8, q(0.5, -10))
    p["init_var_handle"] = op(OP.VAR_HANDLE, [], [p["init_handle"]],
                              options("VarHandleOptions", container="", sharedName="state"))
    p["init_assign"] = op(OP.ASSIGN_VARIABLE, [p["init_handle"], p["init_value"]], [])
    p["init_ops"] = [p["init_var_handle"], p["init_assign"]]
    p["inputs"], p["outputs"] = [p["in"]], [p["out"]]
    return p


def build(p: dict) -> bytes:
    main = me.Subgraph(operators=p["main_ops"], inputs=p["inputs"], outputs=p["outputs"], name="main")
    subgraphs = [main] + ([me.Subgraph(operators=p["init_ops"], name="init")] if p["init_ops"] is not None else [])
    return bytes(me.Model(subgraphs=subgraphs).build())


def streaming_graph(edit: Callable[[dict], None] | None = None, seed: int = 0) -> bytes:
    """The flatbuffer of the graph above, after ``edit(parts)``."""
    p = parts(seed)
    if edit is not None:
        edit(p)
    return build(p)


def logistic_graph(scale: float = 0.1, zero_point: int = 3, frames: int = 2) -> bytes:
    """input int8 [1, frames, 4] -> LOGISTIC -> QUANTIZE uint8: a graph without state."""
    x = act("x", (1, frames, 4), q(scale, zero_point))
    y = act("y", (1, frames, 4), q(1 / 256, -128))
    z = act("z", (1, frames, 4), q(1 / 256, 0), T.UINT8)
    main = me.Subgraph(operators=[op(OP.LOGISTIC, [x], [y]), op(OP.QUANTIZE, [y], [z])], inputs=[x], outputs=[z],
                       name="main")
    return bytes(me.Model(subgraphs=[main]).build())
