"""kwsint.interop.tflite_import: the four microWakeWord models (pymicro-wakeword's, read from the installed package)
import with the structure the research measured; every other graph is refused in one line naming the operator,
the tensor and what was expected; corrupt files end in FormatError, in bounded time; the microWakeWord settings
become metadata.

The graphs' arithmetic (the GraphSpec against TFLM, invoke by invoke) is checked where the reference runs them.
"""

from __future__ import annotations

import json
import struct
import time
from collections import Counter
from pathlib import Path

import flatbuffers
import numpy as np
import pymicro_wakeword
import pytest
import tflite
from tflite_micro import runtime
from tflite_micro.tensorflow.lite.micro.compression import model_editor as me

from kwsint.engine.graph import (Concat, Conv, DepthwiseConv, FullyConnected, GraphSpec, Logistic, Quant, Quantize,
                                 Slice, Tensor, Window)
from kwsint.errors import FormatError
from kwsint.interop import tflite_import as ti
from kwsint.interop.tflite_import import read_micro_settings, read_tflite

from .streaming_graphs import OP, S, T, act, const, logistic_graph, op, options, q, streaming_graph

MODELS = Path(pymicro_wakeword.__file__).parent / "models"

# Per model (docs: /work/notes/issue18-plan.md section 1): MACs per invoke, the states (frames, channels) in the
# order main reads them, the first conv's output channels, the FC's width, and the op counts.
EXPECTED = {
    "okay_nabu": (36480, [(14, 64), (16, 64), (2, 40), (2, 64), (8, 64), (12, 64)], 64, 64,
                  {Window: 6, Conv: 6, DepthwiseConv: 8, Slice: 12, Concat: 3, FullyConnected: 1, Logistic: 1,
                   Quantize: 1}),
    "hey_jarvis": (21630, [(4, 30), (8, 60), (12, 60), (20, 60), (4, 60), (2, 40)], 30, 300,
                   {Window: 6, Conv: 5, DepthwiseConv: 4, FullyConnected: 1, Logistic: 1, Quantize: 1}),
    "alexa": (23968, [(20, 64), (4, 64), (2, 40), (4, 32), (8, 64), (12, 64)], 32, 320,
              {Window: 6, Conv: 5, DepthwiseConv: 4, FullyConnected: 1, Logistic: 1, Quantize: 1}),
    "hey_mycroft": (24608, [(20, 64), (14, 64), (2, 40), (4, 32), (8, 64), (12, 64)], 32, 960,
                    {Window: 6, Conv: 5, DepthwiseConv: 4, FullyConnected: 1, Logistic: 1, Quantize: 1}),
}
CUTOFFS = {"okay_nabu": 0.85, "hey_jarvis": 0.97, "alexa": 0.9, "hey_mycroft": 0.95}


@pytest.fixture(scope="module")
def mini() -> bytes:
    return streaming_graph()


def refused(data: bytes, *fragments: str, name: str = "m.tflite") -> str:
    """The one-line FormatError that reading ``data`` raises, which names ``name`` and holds every fragment."""
    with pytest.raises(FormatError) as e:
        read_tflite(data, name=name)
    message = str(e.value)
    assert message.startswith(f"{name}: ") and "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


# --- the four models ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", sorted(EXPECTED))
def test_the_four_models_import(model):
    macs, states, first_channels, fc_width, counts = EXPECTED[model]
    g = read_tflite(MODELS / f"{model}.tflite", settings=MODELS / f"{model}.json")
    assert g.macs == macs
    assert [(s.frames, s.channels) for s in g.states] == states
    assert all((s.init == -128).all() and s.quant.zero_point == -128 for s in g.states)  # init = the zero point
    assert sum(s.init.size for s in g.states) == sum(f * c for f, c in states)
    assert Counter(type(o) for o in g.ops) == counts
    assert g.tensors[g.input] == Tensor(3, 40, Quant(float(np.float32(26 / 255)), -128))  # ESPHome: 26 / 255
    assert g.tensors[g.output] == Tensor(1, 1, Quant(1 / 256, 0), "uint8")
    first = g.ops[1]  # the input's Window, then the 5 x 1 stride-3 conv: one frame per invoke
    assert isinstance(g.ops[0], Window) and g.ops[0].input == g.input
    assert isinstance(first, Conv) and first.weights.shape == (first_channels, 5, 40) and first.stride == 3
    assert first.padding == "valid" and (first.act_min, first.act_max) == (-128, 127)  # RELU at zero point -128
    assert first.weight_scale.shape == (first_channels,) and first.weight_scale.dtype == np.float32
    fc, logistic, quantize = g.ops[-3:]
    assert isinstance(fc, FullyConnected) and fc.weights.shape == (1, fc_width) and fc.weight_scale.shape == (1,)
    assert isinstance(logistic, Logistic) and isinstance(quantize, Quantize) and quantize.out == g.output
    for o in g.ops:
        if isinstance(o, (Conv, DepthwiseConv, FullyConnected)):
            assert o.weights.min() >= -127 and o.bias.dtype == np.int32 and g.tensors[o.out].frames == 1
    m = g.metadata
    assert (m.probability_cutoff, m.sliding_window_size, m.feature_step_size) == (CUTOFFS[model], 5, 10)
    assert m.phrase == json.loads((MODELS / f"{model}.json").read_text())["wake_word"]


def test_okay_nabu_mixconv_blocks_are_channel_slices():
    g = read_tflite(MODELS / "okay_nabu.tflite")
    split_halves = [(o.channel_start, o.channels) for o in g.ops if isinstance(o, Slice) and o.channels == 32
                    and o.frames == g.tensors[o.input].frames]
    assert split_halves.count((0, 32)) >= 3 and split_halves.count((32, 32)) >= 3
    assert sorted(o.weights.shape[0] for o in g.ops if isinstance(o, DepthwiseConv)) == [3, 5, 7, 9, 9, 13, 15, 17]


def _builtin_code(code) -> int:
    """TFLite's GetBuiltinCode: the larger of builtin_code and deprecated_builtin_code. (The package's own
    ``BuiltinCode()`` returns deprecated_builtin_code for codes below 127, 0 in files that leave it out, as
    model_editor's do: the field is read here directly.)"""
    field = code._tab.Offset(10)
    builtin = code._tab.Get(flatbuffers.number_types.Int32Flags, field + code._tab.Pos) if field else 0
    return max(builtin, code.DeprecatedBuiltinCode())


def _values(obj, field: str) -> list:
    """A vector field of a ``tflite`` package object as a list ([] when absent)."""
    return getattr(obj, field + "AsNumpy")().tolist() if getattr(obj, field + "Length")() else []


def _package_view(data: bytes) -> list:
    """What the ``tflite`` package's generated reader sees: per subgraph, tensors and operators as plain values."""
    m = tflite.Model.GetRootAsModel(data, 0)
    codes = [_builtin_code(m.OperatorCodes(i)) for i in range(m.OperatorCodesLength())]
    out = []
    for s in range(m.SubgraphsLength()):
        sg = m.Subgraphs(s)
        tensors = []
        for i in range(sg.TensorsLength()):
            t = sg.Tensors(i)
            qp = t.Quantization()
            quant = ([], [], 0) if qp is None else (_values(qp, "Scale"), _values(qp, "ZeroPoint"),
                                                    qp.QuantizedDimension())
            tensors.append((ti._clean(t.Name().decode()), t.Type(), tuple(_values(t, "Shape")), *quant,
                            bytes(_values(m.Buffers(t.Buffer()), "Data"))))
        ops = [(codes[o.OpcodeIndex()], tuple(_values(o, "Inputs")), tuple(_values(o, "Outputs")),
                o.BuiltinOptionsType()) for o in map(sg.Operators, range(sg.OperatorsLength()))]
        out.append((tensors, ops))
    return out


def _own_view(data: bytes) -> list:
    subgraphs, buffers = ti._parse(data, "x")
    out = []
    for sg in subgraphs:
        tensors = [(t.name, t.dtype, t.shape, [] if t.scales is None else t.scales.tolist(),
                    [] if t.zero_points is None else t.zero_points.tolist(), t.axis, buffers[t.buffer])
                   for t in sg.tensors]
        out.append((tensors, [(o.code, o.inputs, o.outputs, o.options_type) for o in sg.ops]))
    return out


@pytest.mark.parametrize("model", sorted(EXPECTED) + ["mini"])
def test_the_reader_agrees_with_the_tflite_package(model, mini):
    data = mini if model == "mini" else (MODELS / f"{model}.tflite").read_bytes()
    assert _own_view(data) == _package_view(data)


def test_the_schema_constants_are_the_schemas():
    names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    assert ti.BUILTIN_NAMES == tuple(names[i] for i in range(len(names)))
    for code in ti.OPTIONS_TYPES:
        assert getattr(ti, names[code]) == code
    options_names = {v: k for k, v in vars(tflite.BuiltinOptions).items() if not k.startswith("_")}
    assert {names[c]: options_names[t] for c, t in ti.OPTIONS_TYPES.items()} == {
        "CONV_2D": "Conv2DOptions", "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions",
        "FULLY_CONNECTED": "FullyConnectedOptions", "CONCATENATION": "ConcatenationOptions",
        "STRIDED_SLICE": "StridedSliceOptions", "SPLIT_V": "SplitVOptions", "CALL_ONCE": "CallOnceOptions",
        "VAR_HANDLE": "VarHandleOptions"}
    types = {v: k for k, v in vars(tflite.TensorType).items() if not k.startswith("_")}
    assert ti.TENSOR_TYPES == [types[i] for i in range(len(types))]


# --- the small graph: every op, and TFLM runs it --------------------------------------------------------------


def test_the_small_graph_maps_every_op_and_tflm_runs_it(mini):
    g = read_tflite(mini)
    assert [type(o) for o in g.ops] == [Window, Conv, Slice, Slice, Slice, DepthwiseConv, Concat, FullyConnected,
                                        Logistic, Quantize]
    window, conv, part_a, part_b, crop, dw, concat, fc = g.ops[:8]
    assert (g.states[0].frames, g.states[0].channels) == (3, 4) and g.tensors[window.out].frames == 5
    assert (conv.stride, conv.dilation, conv.padding, conv.weights.shape) == (2, 1, "valid", (6, 3, 4))
    assert g.tensors[conv.out].frames == 2 and (conv.act_min, conv.act_max) == (-128, 127)
    assert (part_a.channel_start, part_a.channels, part_b.channel_start, part_b.channels) == (0, 2, 2, 4)
    assert (crop.input, crop.frames, crop.channel_start, crop.channels) == (part_a.out, 1, 0, 2)
    assert dw.weights.shape == (2, 4) and concat.inputs == (crop.out, dw.out) and fc.input == concat.out
    p = streaming_graph.__globals__["parts"](0)
    assert (g.states[0].init == np.array(p["init_value"].array).reshape(3, 4)).all()  # not the zero point
    interpreter = runtime.Interpreter.from_bytes(mini, arena_size=1 << 16)  # a graph TFLM prepares and runs
    interpreter.set_input(np.zeros((1, 2, 4), np.int8), 0)
    interpreter.invoke()
    assert interpreter.get_output(0).dtype == np.uint8


def test_a_graph_without_state_imports():
    g = read_tflite(logistic_graph())
    assert g.states == () and [type(o) for o in g.ops] == [Logistic, Quantize]


def test_a_path_is_read_and_named(tmp_path, mini):
    (tmp_path / "m.tflite").write_bytes(mini[:100])
    with pytest.raises(FormatError, match=r"^.*m\.tflite: "):
        read_tflite(tmp_path / "m.tflite")


# --- corrupt files ---------------------------------------------------------------------------------------------


def _outcome(data: bytes) -> str:
    """Read ``data``: "ok" (a GraphSpec) or "refused" (FormatError); anything else fails the test."""
    try:
        g = read_tflite(data)
    except FormatError as e:
        assert "\n" not in str(e)
        return "refused"
    assert isinstance(g, GraphSpec)
    return "ok"


def test_truncated_files_are_refused(mini):
    lengths = sorted(set(range(0, 64)) | set(range(64, len(mini), 37)) | {len(mini) - 1})
    for n in lengths:
        assert _outcome(mini[:n]) == "refused", n
    jarvis = (MODELS / "hey_jarvis.tflite").read_bytes()
    for n in np.random.default_rng(0).integers(0, len(jarvis), 20):
        assert _outcome(jarvis[:n]) == "refused", n


def test_mutated_files_give_a_graph_or_one_formaterror(mini):
    """Single-byte changes and 32-bit overwrites (lengths and offsets) at random places, from a fixed seed."""
    rng = np.random.default_rng(18)
    outcomes = Counter()
    slowest = 0.0
    for i in range(400):
        data = bytearray(mini)
        pos = int(rng.integers(0, len(data) - 4))
        if i % 2:
            data[pos] = int(rng.integers(0, 256))
        else:
            data[pos:pos + 4] = struct.pack("<I", int(rng.choice([0xFFFFFFFF, 0x7FFFFFFF, 0x10000, 1, 0])))
        start = time.perf_counter()
        outcomes[_outcome(bytes(data))] += 1
        slowest = max(slowest, time.perf_counter() - start)
    assert outcomes["refused"] > 100 and slowest < 1.0, (outcomes, slowest)


def _flatbuffer(buffers: int, data_bytes: int) -> bytes:
    """A hand-made Model (version 3) whose ``buffers`` vector holds ``buffers`` offsets, all to one Buffer table
    whose data vector declares ``data_bytes`` bytes (present only when small)."""
    model_vtable = struct.pack("<HHHHHHH", 14, 12, 4, 0, 0, 0, 8) + b"\0\0"  # version, buffers
    vector = 36
    buffer_vtable = vector + 4 + 4 * buffers
    table = buffer_vtable + 8
    data = table + 8
    out = struct.pack("<I4s", 24, b"TFL3") + model_vtable + struct.pack("<iII", 24 - 8, 3, vector - 32)
    out += struct.pack("<I", buffers) + b"".join(struct.pack("<I", table - (vector + 4 + 4 * i))
                                                 for i in range(buffers))
    out += struct.pack("<HHHH", 6, 8, 4, 0) + struct.pack("<iI", table - buffer_vtable, data - (table + 4))
    return out + struct.pack("<I", data_bytes) + bytes(min(data_bytes, 1 << 16))


def test_a_huge_vector_length_is_refused_before_reading():
    refused(_flatbuffer(1, 0xFFFFFFF0), "model.buffers[0].data: expected 4294967280 elements of 1 bytes",
            "past the end of the file")


def test_offsets_that_reread_one_vector_run_out_of_budget():
    """2000 buffers that are one 64 KiB vector: 128 MB of reads from a 72 KB file, refused early."""
    start = time.perf_counter()
    refused(_flatbuffer(2000, 1 << 16), "expected each vector to be read once")
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("data, fragment", [
    (b"", "header: expected a TFLite flatbuffer (8 bytes or more), got 0 bytes"),
    (b"\x10\0\0\0TFL2" + bytes(16), "header: expected the file identifier b'TFL3' at offset 4, got b'TFL2'"),
    (b"\xff\0\0\0TFL3", "model: expected 4 bytes at offset 255, outside the file of 8 bytes"),
])
def test_not_a_tflite_file(data, fragment):
    refused(data, fragment)


def test_schema_version_other_than_3_is_refused(mini):
    m = me.read(mini)
    m._fb.version = 2
    refused(bytes(m.build()), "model.version: expected TFLite schema version 3 (as TFLM), got 2")


# --- graphs kwsint does not run: each refusal names the operator, the tensor and the expectation --------------


def _set(name: str, attribute: str, value):
    def edit(p):
        setattr(p[name]._fb.builtinOptions, attribute, value)
    return edit


def _tensor(name: str, **fields):
    def edit(p):
        for key, value in fields.items():
            setattr(p[name], key, value)
    return edit


def _replace_op(name: str, new):
    def edit(p):
        p["main_ops"][p["main_ops"].index(p[name])] = new(p)
    return edit


def _weights(name: str, change):
    def edit(p):
        a = np.array(p[name].array)
        change(a)
        p[name].buffer = me.Buffer(data=a.tobytes())
    return edit


def _drop(*names: str):
    def edit(p):
        for name in names:
            p["main_ops"].remove(p[name])
    return edit


CASES = {
    "unknown op": (_replace_op("logistic", lambda p: op(OP.TANH, [p["fc"]], [p["sigmoid"]])),
                   "operator 14 TANH: expected one of the operators kwsint imports (CONCATENATION, CONV_2D"),
    "custom op": (_replace_op("logistic", lambda p: me.Operator(opcode=OP.CUSTOM, custom_code="MySigmoid",
                                                                inputs=[p["fc"]], outputs=[p["sigmoid"]])),
                  "operator 14 CUSTOM 'MySigmoid': expected one of the operators kwsint imports"),
    "float input": (_tensor("in", dtype=T.FLOAT32),
                    "main subgraph input (tensor 1 'in'): expected INT8, got FLOAT32"),
    "int16 activations": (_tensor("conv", dtype=T.INT16), "operator 7 CONV_2D: output 0 (tensor",
                          "expected INT8, got INT16"),
    "int16 filter": (_tensor("conv_w", dtype=T.INT16),
                     "operator 7 CONV_2D: input 1 (tensor", "'conv_w'): expected a constant of type INT8, got INT16"),
    "int64 bias": (_tensor("fc_b", dtype=T.INT64),
                   "operator 13 FULLY_CONNECTED: input 2 (tensor", "'fc_b'): expected a constant of type INT32"),
    "no bias": (lambda p: p["depthwise"].inputs.__setitem__(2, None),
                "operator 10 DEPTHWISE_CONV_2D: input 2: expected a bias tensor, got none (-1)"),
    "bias of the wrong size": (lambda p: setattr(p["conv_b"], "buffer", me.Buffer(data=bytes(20))),
                               "operator 7 CONV_2D: input 2 (tensor", "expected 24 bytes of data for shape [6], "
                               "got 20"),
    "conv output shape": (_tensor("conv", shape=(1, 3, 1, 6)),
                          "operator 7 CONV_2D: output 0 (tensor", "'conv'): expected output shape [1, 2, 1, 6]"),
    "2-D kernel": (_tensor("conv_w", shape=(6, 3, 2, 2)),
                   "operator 7 CONV_2D: input 1 (tensor", "expected a [Cout, K, 1, 4] filter"),
    "stride across": (_set("conv_2d", "strideW", 2), "operator 7 CONV_2D: expected padding SAME or VALID",
                      "stride 2 x 2"),
    "dilation across": (_set("depthwise", "dilationWFactor", 2), "operator 10 DEPTHWISE_CONV_2D: expected padding",
                        "dilation 1 x 2"),
    "depth multiplier": (_set("depthwise", "depthMultiplier", 2),
                         "operator 10 DEPTHWISE_CONV_2D: expected depth_multiplier 1, got 2"),
    "tanh activation": (_set("conv_2d", "fusedActivationFunction", S.ActivationFunctionType.TANH),
                        "operator 7 CONV_2D: expected fused activation NONE, RELU, RELU_N1_TO_1 or RELU6, got TANH"),
    "weight code -128": (_weights("conv_w", lambda a: a.__setitem__((0, 0, 0, 0), -128)),
                         "operator 7 CONV_2D: input 1 (tensor", "expected weight codes in -127..127 (kwsint's "
                         "symmetric weight grid), got -128"),
    "filter zero point": (_tensor("fc_w", quantization=q(0.02, 1)),
                          "operator 13 FULLY_CONNECTED: input 1 (tensor", "expected zero points 0, got 1"),
    "per-channel axis": (_tensor("dw_w", quantization=q([0.02] * 4, [0] * 4, 0)),
                         "operator 10 DEPTHWISE_CONV_2D: input 1 (tensor",
                         "expected 1 scale, or 4 scales on quantized_dimension 3, got 4 on 0"),
    "negative scale": (_tensor("crop", quantization=q(-0.05, -128)),
                       "operator 9 STRIDED_SLICE: output 0 (tensor", "expected finite positive scales, got"),
    "infinite scale": (_tensor("fc", quantization=q(float("inf"), 3)),
                       "operator 13 FULLY_CONNECTED: output 0 (tensor", "expected finite positive scales, got"),
    "zero point out of range": (_tensor("dw", quantization=q(0.05, 200)),
                                "operator 10 DEPTHWISE_CONV_2D: output 0 (tensor",
                                "expected zero points in -128..127, got 200"),
    "per-channel activation": (_tensor("dw", quantization=q([0.05] * 4, [0] * 4, 3)),
                               "expected per-tensor quantization (1 scale), got 4 scales"),
    "concatenation requantizes": (_tensor("crop", quantization=q(0.06, -128)),
                                  "operator 9 STRIDED_SLICE: output 0 (tensor",
                                  "expected the quantization of the input (scale 0.0500000007, zero point -128)"),
    "channel concatenation requantizes": (_tensor("joined", quantization=q(0.06, -128)),
                                          "operator 11 CONCATENATION: input 0 (tensor", "'crop'): expected the "
                                          "quantization of the output"),
    "logistic output": (_tensor("sigmoid", quantization=q(1 / 256, -127)),
                        "operator 14 LOGISTIC: output 0 (tensor", "expected output scale 1/256 and zero point -128"),
    "fc bias scale": (_tensor("fc_b", quantization=q(0.5, 0)),
                      "operator 13 FULLY_CONNECTED: input 2 (tensor", "expected a bias scale within 0.02 output steps"),
    "fc width": (_tensor("fc_w", shape=(2, 3)), "operator 13 FULLY_CONNECTED: input 1 (tensor",
                 "expected a [N, 6] filter"),
    "fc keep_num_dims": (_set("fully_connected", "keepNumDims", True),
                         "operator 13 FULLY_CONNECTED: expected weights_format DEFAULT, keep_num_dims"),
    "quantize to int16": (_tensor("out", dtype=T.INT16), "operator 15 QUANTIZE: output 0 (tensor",
                          "expected INT8 or UINT8, got INT16"),
    "uint8 fed on": (_tensor("sigmoid", dtype=T.UINT8), "operator 14 LOGISTIC: output 0 (tensor",
                     "expected INT8, got UINT8"),
    "reshape regroups": (_tensor("frames", shape=(1, 4, 1, 2)), "operator 2 RESHAPE: output 0 (tensor",
                         "expected the same 2 frames x 4 channels, or [1, 8] for FULLY_CONNECTED, got [1, 4, 1, 2]"),
    "flattened input to a conv": (_tensor("frames", shape=(1, 8)), "operator 4 CONCATENATION: input 1 (tensor",
                                  "a RESHAPE to [1, frames * channels] can only feed FULLY_CONNECTED"),
    "slice with stride 2": (lambda p: p["crop_last"].inputs.__setitem__(3, const("two", [1, 2, 1, 1])),
                            "operator 9 STRIDED_SLICE: input 3 (tensor", "strides 1, got strides [1, 2, 1, 1]"),
    "slice keeps the first frame": (lambda p: (p["crop_last"].inputs.__setitem__(1, const("b", [0, 0, 0, 0])),
                                               setattr(p["crop_last"]._fb.builtinOptions, "endMask", 13),
                                               p["crop_last"].inputs.__setitem__(2, const("e", [0, 1, 0, 0]))),
                                    "operator 9 STRIDED_SLICE: input 0 (tensor", "expected the last frames"),
    "shrink axis": (_set("crop_last", "shrinkAxisMask", 2), "operator 9 STRIDED_SLICE: expected ellipsis, new_axis "
                    "and shrink_axis masks 0"),
    "split sizes": (lambda p: p["split_v"].inputs.__setitem__(1, const("sizes", [3, 3])),
                    "operator 8 SPLIT_V: output 0 (tensor", "expected [1, 2, 1, 3]"),
    "split on time": (lambda p: p["split_v"].inputs.__setitem__(2, const("axis", 1)),
                      "operator 8 SPLIT_V: input 2 (tensor", "expected the channel axis (-1 or 3)"),
    "no CALL_ONCE": (_drop("call_once"), "operator 2 READ_VARIABLE: input 0 (tensor",
                     "expected a variable initialised by the init subgraph (CALL_ONCE first), got 'state'"),
    "state never assigned": (_drop("assign"), "expected every variable read by main to be assigned its last "
                             "frames, got 'state' never assigned"),
    "state update keeps the wrong frames": (
        lambda p: p["keep_last"].inputs.__setitem__(1, const("b", [0, -2, 0, 0])),
        "operator 5 STRIDED_SLICE: output 0 (tensor", "expected output shape [1, 2, 1, 4]"),
    "state assigned something else": (lambda p: p["assign"].inputs.__setitem__(1, p["frames"]),
                                      "operator 6 ASSIGN_VARIABLE: input 1 (tensor",
                                      "expected the last frames of the window of 'state'"),
    "state after the new frames": (lambda p: setattr(p["concat_time"], "inputs", [p["frames"], p["read"]]),
                                   "operator 4 CONCATENATION: output 0 (tensor", "expected axis -1 (channels) "
                                   "or a [variable ; new frames] window on axis 1, got 1"),
    "window on channels": (_set("concat_time", "axis", 3), "operator 4 CONCATENATION: input 1 (tensor",
                           "expected [variable ; new frames] of rank 4 on axis 1, got axis 3"),
    "state quantization": (_tensor("init_value", quantization=q(0.25, -10)),
                           "operator 3 READ_VARIABLE: output 0 (tensor",
                           "expected the quantization of the variable's initial value (scale 0.25"),
    "state shape": (_tensor("init_value", shape=(1, 2, 1, 6)),
                    "operator 3 READ_VARIABLE: output 0 (tensor", "expected the shape of the variable's initial "
                    "value [1, 2, 1, 6], got [1, 3, 1, 4]"),
    "variable read twice": (lambda p: p["main_ops"].insert(4, op(OP.READ_VARIABLE, [p["handle"]],
                                                                 [act("again", (1, 3, 1, 4), q(0.5, -10))])),
                            "operator 4 READ_VARIABLE: input 0 (tensor 0 'handle'): expected each variable read once, "
                            "got a second read of 'state'"),
    "variable never read": (lambda p: p["init_ops"].extend([
        op(OP.VAR_HANDLE, [], [h := me.Tensor(shape=(), dtype=T.RESOURCE, name="h2")],
           options("VarHandleOptions", container="", sharedName="other")),
        op(OP.ASSIGN_VARIABLE, [h, const("v2", [[1, 2]], np.int8, q(0.5, 0))], [])]),
        "m.tflite: expected every variable the init subgraph assigns to be read by main, got ['other'] unread"),
    "init computes": (lambda p: p["init_ops"].append(op(OP.LOGISTIC, [p["init_value"]], [act("y", (1, 3, 1, 4),
                                                                                               q(1 / 256, -128))])),
                      "subgraph 1 operator 2 LOGISTIC: expected only VAR_HANDLE and ASSIGN_VARIABLE of constants"),
    "init assigns an activation": (lambda p: p["init_assign"].inputs.__setitem__(1, act("v", (1, 3, 1, 4),
                                                                                         q(0.5, -10))),
                                   "subgraph 1 operator 1 ASSIGN_VARIABLE: input 1 (tensor",
                                   "expected a constant (a tensor with data)"),
    "read before written": (lambda p: p["main_ops"].insert(2, p["main_ops"].pop(p["main_ops"].index(p["conv_2d"]))),
                            "operator 2 CONV_2D: input 0 (tensor", "expected an activation written by an earlier "
                            "operator (or the graph input)"),
    "two outputs": (lambda p: p["outputs"].append(p["fc"]), "main subgraph: expected one input and one output, "
                    "got 1 and 2"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_refusals_name_the_operator_and_the_tensor(case):
    edit, *fragments = CASES[case]
    refused(streaming_graph(edit), *fragments)


@pytest.mark.parametrize("scale", [2.0**-29, float(np.float32(2.0**-28 * (1 - 2.0**-24)))])
def test_logistic_input_scales_where_tflm_is_undefined_are_refused(scale):
    refused(logistic_graph(scale=scale), "operator 0 LOGISTIC: input 0 (tensor 0 'x'): expected an input scale >= "
                                         "2^-28 whose multiplier fits in int32")
    read_tflite(logistic_graph(scale=2.0**-28))


def test_a_real_models_conv_with_a_2d_kernel_is_refused():
    """An edit of hey_jarvis: its first conv's filter read as 5 x 2 (of 20 channels)."""
    m = me.read((MODELS / "hey_jarvis.tflite").read_bytes())
    conv = m.subgraphs[0].operators[17]
    conv.inputs[1].shape = (30, 5, 2, 20)
    refused(bytes(m.build()), "operator 17 CONV_2D: input 1 (tensor 31 'model/stream/conv2d/Conv2D'): expected a "
                              "[Cout, K, 1, 40] filter")


# --- microWakeWord settings --------------------------------------------------------------------------------------


def test_settings_become_metadata():
    m = read_micro_settings(MODELS / "okay_nabu.json")
    assert (m.phrase, m.probability_cutoff, m.sliding_window_size, m.feature_step_size) == ("Okay Nabu", 0.85, 5, 10)
    assert m.trained_languages == ("en", "nl", "fr", "de", "it", "es", "sv")
    assert "okay_nabu.tflite" in m.provenance and "Kevin Ahrendt" in m.provenance
    assert m.threshold is None and m.smoothing_s is None  # ESPHome's rule is not kwsint's detector


GOOD = {"type": "micro", "wake_word": "Hey", "version": 2,
        "micro": {"probability_cutoff": 0.5, "sliding_window_size": 5, "feature_step_size": 10}}


@pytest.mark.parametrize("change, message", [
    (None, "s.json: expected a UTF-8 JSON object"),
    ({"type": "openWakeWord"}, "s.json: type: expected \"micro\" (a microWakeWord model), got openWakeWord"),
    ({"version": 1}, "s.json: version: expected 2 (the settings format of ESPHome 2024.7 and later), got 1"),
    ({"micro": []}, "s.json: micro: expected an object of the model's settings, got []"),
    ({"micro": {"probability_cutoff": 1.5, "sliding_window_size": 5, "feature_step_size": 10}},
     "s.json: micro.probability_cutoff: expected a number in [0, 1], got 1.5"),
    ({"micro": {"probability_cutoff": 0.5, "feature_step_size": 10}},
     "s.json: micro.sliding_window_size: expected a value, got None"),
    ({"micro": {"probability_cutoff": 0.5, "sliding_window_size": True, "feature_step_size": 10}},
     "s.json: micro.sliding_window_size: expected an integer in 1..1024, got True"),
    ({"wake_word": ""}, "s.json: wake_word: expected 1..200 characters, got 0"),
    ({"trained_languages": ["en", 3]}, "s.json: trained_languages: expected language tags of 1..35 printable"),
])
def test_bad_settings_are_named(change, message):
    data = b"{not json" if change is None else json.dumps({**GOOD, **change}).encode()
    with pytest.raises(FormatError) as e:
        read_micro_settings(data, name="s.json")
    assert str(e.value).startswith(message), str(e.value)
