"""Streaming graphs in the C engine (csrc/graph.c): every compiled backend equals ReferenceStream, code for code,
invoke by invoke, through resets; and the blob of kind 1 (docs/format.md 10) round-trips and is refused alike by the
Python and the C loader.

ReferenceStream equals TFLM (tests/engine/test_graph.py, tests/interop/test_microwakeword.py), so equal to it
here means equal to TFLM."""

from __future__ import annotations

import dataclasses
import gc
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given

import kwsint
from kwsint import FormatError, GraphModel, reference
from kwsint._kwsint_c import ffi, lib
from kwsint.engine._invoke import StreamInvoke
from kwsint.engine.backend import MEMORY
from kwsint.engine.blob import HEADER, read_blob, write_blob
from kwsint.engine.graph import (Concat, Conv, DepthwiseConv, FullyConnected, GraphSpec, Quant, ReferenceStream, Slice,
                                 State, Tensor, Window)
from kwsint.engine.graph_model import _INVOKE_ADDRESS, _raise_invoke_status

from .test_format import c_load, refresh_crc
from .test_graph import (_all_codes, _bias, _calibrated_weight_scales, _examples, _logistic_cases, _logistic_graph,
                         _single_op_graph, _streaming_graph, conv_cases, fully_connected_cases, quantize_cases)

BACKENDS = kwsint.backends()  # those this CPU runs


def _narrow(spec: GraphSpec) -> GraphSpec:
    """The graph with weight code -128 replaced by -127: kwsint's kernels refuse -128 (docs/format.md 10)."""
    ops = []
    for op in spec.ops:
        if isinstance(op, (Conv, DepthwiseConv, FullyConnected)):
            op = dataclasses.replace(op, weights=np.maximum(op.weights, -127).astype(np.int8))
        ops.append(op)
    return dataclasses.replace(spec, ops=tuple(ops))


def _equal_on_every_backend(spec: GraphSpec, inputs: list[np.ndarray], resets=()) -> None:
    """Every backend's stream equals the reference's. Each backend loads the model one of the ways
    (kwsint.engine.backend.MEMORY), which one turning with the number of inputs: across a test's examples every
    backend runs models copied, in an arena and in place."""
    blob = write_blob(spec)
    ref = ReferenceStream(spec)
    want = []
    for k, x in enumerate(inputs):
        if k in resets:
            ref.reset()
        want.append(ref.invoke(x))
    for i, be in enumerate(BACKENDS):
        stream = GraphModel(blob, backend=be, memory=MEMORY[(i + len(inputs)) % len(MEMORY)]).stream()
        for k, x in enumerate(inputs):
            if k in resets:
                stream.reset()
            got = stream.invoke(x)
            assert got.dtype == want[k].dtype
            np.testing.assert_array_equal(got, want[k], err_msg=f"{be}, invoke {k}")


@_examples(60)
@given(conv_cases(depthwise=False))
def test_conv_on_every_backend(case):
    spec, inputs = case
    _equal_on_every_backend(_narrow(spec), inputs)


@_examples(60)
@given(conv_cases(depthwise=True))
def test_depthwise_conv_on_every_backend(case):
    spec, inputs = case
    _equal_on_every_backend(_narrow(spec), inputs)


# Channel counts around the SIMD kernels' blocks (8 on sse4.1, 16 on avx2 and NEON: a last block that overlaps the
# one before it, and a scalar path below one block) and tap counts odd and even (taps go in pairs).
DEPTHWISE_CHANNELS = (1, 2, 7, 8, 9, 15, 16, 17, 23, 24, 31, 32, 33, 47, 48, 63, 64, 65, 100)
DEPTHWISE_TAPS = (1, 2, 3, 4, 5, 8, 13, 21, 25)


def _depthwise_graph(rng: np.random.Generator, channels: int, taps: int, dilation: int, zp_in: int,
                     extreme: bool) -> GraphSpec:
    """A VALID DepthwiseConv with 3 output frames, per-channel scales calibrated to spread the outputs; extreme:
    weights -127 and 127 only."""
    frames = (taps - 1) * dilation + 3
    weights = (rng.choice(np.array([-127, 127]), (taps, channels)) if extreme else
               rng.integers(-127, 128, (taps, channels))).astype(np.int8)
    windows = np.concatenate([reference.conv_windows(rng.integers(-128, 128, (frames, channels)), taps, 1, dilation,
                                                     "valid", zp_in) for _ in range(4)])
    sums = ((windows.astype(np.int64) - zp_in) * weights.astype(np.int64)).sum(axis=1)
    bias = _bias(rng, "centre", sums)
    s_in, s_out, zp_out = 2.0**-4, 2.0**-3 * 0.75, int(rng.integers(-20, 21))
    ws = _calibrated_weight_scales(rng, sums + bias, s_in, s_out, zp_out, -128, 127, True, False)
    op = DepthwiseConv(input=0, weights=weights, bias=bias, weight_scale=ws, stride=1, dilation=dilation,
                       padding="valid", act_min=-128, act_max=127, out=1)
    return _single_op_graph(Tensor(frames, channels, Quant(s_in, zp_in)), Tensor(3, channels, Quant(s_out, zp_out)),
                            op)


@pytest.mark.parametrize("channels", DEPTHWISE_CHANNELS)
def test_depthwise_conv_at_the_kernels_channel_and_tap_boundaries_on_every_backend(channels):
    rng = np.random.default_rng(channels)
    for taps in DEPTHWISE_TAPS:
        for dilation, zp_in, extreme in ((1, -128, True), (1, 127, False), (2, int(rng.integers(-128, 128)), False)):
            spec = _depthwise_graph(rng, channels, taps, dilation, zp_in, extreme)
            shape = (spec.tensors[0].frames, channels)
            inputs = [np.full(shape, -128, np.int8), np.full(shape, 127, np.int8),
                      rng.choice(np.array([-128, 127], np.int8), shape), rng.integers(-128, 128, shape).astype(np.int8)]
            _equal_on_every_backend(spec, inputs)


def depthwise_bound_graph(rng: np.random.Generator, channels: int, taps: int, past: bool) -> GraphSpec:
    """A depthwise graph whose every channel has 128 * sum |w| = 32640, one sign per channel (the most int16
    sums allow, docs/arithmetic.md 11.4); ``past``: one unit more in channel 0, whose weights are negative.
    taps >= 3."""
    spec = _depthwise_graph(rng, channels, taps, 1, int(rng.integers(-128, 128)), False)
    magnitudes = np.zeros((taps, channels), np.int64)
    magnitudes[0], magnitudes[1], magnitudes[2] = 127, 127, 1
    magnitudes = magnitudes[rng.permuted(np.tile(np.arange(taps)[:, None], (1, channels)), axis=0),
                            np.arange(channels)]
    signs = rng.choice([-1, 1], channels)
    if past:  # channel 0 negative: against x = -128 its sum, +32768, leaves int16
        magnitudes[np.flatnonzero(magnitudes[:, 0] == 1)[0], 0] = 2
        signs[0] = -1
    weights = (magnitudes * signs).astype(np.int8)
    return dataclasses.replace(spec, ops=(dataclasses.replace(spec.ops[0], weights=weights),))


@pytest.mark.parametrize("channels", (16, 17, 33, 64))
@pytest.mark.parametrize("past", [False, True])
def test_depthwise_int16_sums_at_the_bound_on_every_backend(channels, past):
    """At the bound the int16 kernel runs where a backend has one; one unit past it, the int32 kernel. Both
    equal the reference, inputs -128 and 127 included."""
    rng = np.random.default_rng(channels + past)
    for taps in (3, 5, 9, 21):
        spec = depthwise_bound_graph(rng, channels, taps, past)
        shape = (spec.tensors[0].frames, channels)
        inputs = [np.full(shape, -128, np.int8), np.full(shape, 127, np.int8),
                  rng.choice(np.array([-128, 127], np.int8), shape), rng.integers(-128, 128, shape).astype(np.int8)]
        _equal_on_every_backend(spec, inputs)
        for be in BACKENDS:
            has_kernel = be.startswith(("avx2", "avx512", "avxvnni", "neon"))
            assert GraphModel(write_blob(spec), backend=be).acc16_ops == int(has_kernel and not past), be


@_examples(60)
@given(fully_connected_cases())
def test_fully_connected_on_every_backend(case):
    spec, inputs, _ = case
    _equal_on_every_backend(_narrow(spec), inputs)


@_examples(30)
@given(quantize_cases())
def test_quantize_on_every_backend(spec):
    _equal_on_every_backend(spec, [_all_codes()])


def test_logistic_table_built_in_c_equals_the_reference_on_every_input():
    for scale, zp in _logistic_cases():
        spec = _logistic_graph(scale, zp)
        got = GraphModel(write_blob(spec), backend="portable").stream().invoke(_all_codes())
        np.testing.assert_array_equal(got[0], reference.logistic_table(scale, zp), err_msg=f"scale {scale!r}, zp {zp}")


@pytest.mark.parametrize("seed", [1, 2])
def test_streaming_graph_on_every_backend_from_init_and_through_resets(seed):
    spec = _streaming_graph(seed)
    rng = np.random.default_rng(seed)
    inputs = [(rng.integers(-128, 128, (3, 8)) if k % 50 < 40 else np.full((3, 8), 127 if k % 2 else -128))
              .astype(np.int8) for k in range(200)]
    _equal_on_every_backend(spec, inputs, resets=(60, 61, 150))


def _views_graph(rng: np.random.Generator) -> GraphSpec:
    """The run-time layouts of csrc/graph.c (docs/arithmetic.md 11.9) with their edge cases: slices that are views
    (a slice of a slice, the last frames of a channel range) read by DepthwiseConv with SAME padding, dilation
    and both the gathered and the in-place windows; a slice of a view that is copied (read by Concat); a Window
    with fewer new frames than state frames and one with more (its region fills every few invokes), a view on
    it sliced again; a DepthwiseConv on the graph input (read in the caller's buffer); a Conv on a Window."""
    qa, qd, qe = Quant(0.125, 3), Quant(0.1875, -5), Quant(0.375, 11)

    def linear(n: int, shape: tuple[int, ...]) -> dict:
        return dict(weights=rng.integers(-127, 128, shape).astype(np.int8),
                    bias=rng.integers(-3000, 3000, n).astype(np.int32),
                    weight_scale=(2.0 ** rng.uniform(-8, -6, n)).astype(np.float32))

    def dw(x: int, c: int, k: int, dilation: int, padding: str, out: int) -> DepthwiseConv:
        return DepthwiseConv(input=x, **linear(c, (k, c)), stride=1, dilation=dilation, padding=padding,
                             act_min=-128, act_max=127, out=out)

    tensors = (Tensor(2, 6, qa), Tensor(7, 6, qa), Tensor(7, 5, qa), Tensor(6, 3, qa), Tensor(6, 3, qd),
               Tensor(4, 5, qd), Tensor(2, 5, qa), Tensor(2, 5, qa), Tensor(7, 3, qd), Tensor(3, 2, qd),
               Tensor(1, 2, qe), Tensor(2, 6, qd), Tensor(3, 4, qe))
    states = (State(5, 6, qa, rng.integers(-128, 128, (5, 6)).astype(np.int8)),
              State(1, 3, qd, rng.integers(-128, 128, (1, 3)).astype(np.int8)))
    ops = (
        Window(state=0, input=0, out=1),                              # 2 new frames, 5 kept
        Slice(input=1, frames=7, channel_start=1, channels=5, out=2),
        Slice(input=2, frames=6, channel_start=1, channels=3, out=3),  # a slice of a slice
        dw(3, 3, 3, 2, "same", 4),
        dw(2, 5, 2, 3, "valid", 5),
        Slice(input=2, frames=2, channel_start=0, channels=5, out=6),  # read by Concat: copied
        Concat(inputs=(6,), out=7),
        Window(state=1, input=4, out=8),                              # 6 new frames, 1 kept
        Slice(input=8, frames=3, channel_start=1, channels=2, out=9),
        dw(9, 2, 3, 1, "valid", 10),
        dw(0, 6, 2, 1, "same", 11),
        Conv(input=8, **linear(4, (4, 3, 3)), stride=2, dilation=1, padding="valid", act_min=-128, act_max=127,
             out=12),
    )
    return GraphSpec(tensors=tensors, states=states, ops=ops, input=0, output=12)


def test_slice_views_and_window_regions_equal_the_reference_whichever_tensor_is_the_output():
    """Each tensor in turn is the graph's output: a slice that is the output is copied, not a view, and the
    ops before it run as with any other output."""
    rng = np.random.default_rng(18)
    spec = _views_graph(rng)
    inputs = [rng.integers(-128, 128, (2, 6)).astype(np.int8) for _ in range(120)]
    for out in range(1, len(spec.tensors)):
        _equal_on_every_backend(dataclasses.replace(spec, output=out), inputs, resets=(40, 41, 97))


# --- the four microWakeWord models ---------------------------------------------------------------------------

pymicro_wakeword = pytest.importorskip("pymicro_wakeword")
MODELS = Path(pymicro_wakeword.__file__).parent / "models"
NAMES = ("okay_nabu", "hey_jarvis", "alexa", "hey_mycroft")
INVOKES = 2000


def _model_inputs(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 3, 40) int8: a clipped random walk (speech-like, the outputs move), uniform codes, silence, full
    scale and alternating extremes, in blocks of n / 5."""
    m = n // 5
    shape = (m, 3, 40)
    walk = np.clip(np.cumsum(rng.integers(-6, 7, shape), axis=0) - 60, -128, 127)
    extremes = np.where(rng.random(shape) < 0.5, -128, 127)
    parts = [walk, rng.integers(-128, 128, shape), np.full(shape, -128), np.full(shape, 127), extremes]
    return np.concatenate(parts).astype(np.int8)


def _prefix(spec: GraphSpec, last: int) -> GraphSpec:
    """The graph up to ops[last], whose output becomes the graph's: the tensors and states it does not use
    dropped, the rest renumbered."""
    ops = spec.ops[:last + 1]
    kept = sorted({spec.input} | {op.out for op in ops})
    t = {old: new for new, old in enumerate(kept)}
    windows = [op.state for op in ops if isinstance(op, Window)]
    s = {old: new for new, old in enumerate(sorted(windows))}

    def renumber(op):
        changes = {"out": t[op.out]}
        if isinstance(op, Concat):
            changes["inputs"] = tuple(t[i] for i in op.inputs)
        else:
            changes["input"] = t[op.input]
        if isinstance(op, Window):
            changes["state"] = s[op.state]
        return dataclasses.replace(op, **changes)

    return GraphSpec(tuple(spec.tensors[i] for i in kept), tuple(spec.states[i] for i in sorted(windows)),
                     tuple(renumber(op) for op in ops), t[spec.input], t[ops[-1].out])


@pytest.mark.parametrize("name", NAMES)
def test_microwakeword_models_on_every_backend(name):
    """The model's uint8 output, and its int8 logit (the FULLY_CONNECTED's output, which moves far more on these
    streams), invoke by invoke through resets."""
    path = MODELS / f"{name}.tflite"
    from kwsint.interop.tflite_import import load_tflite, read_tflite
    spec = read_tflite(path)
    fc = max(k for k, op in enumerate(spec.ops) if isinstance(op, FullyConnected))
    logit = _prefix(spec, fc)
    xs = _model_inputs(np.random.default_rng(sum(map(ord, name))), INVOKES)
    resets = set(range(INVOKES // 10, INVOKES, INVOKES // 5))  # once in each block
    refs = ReferenceStream(spec), ReferenceStream(logit)
    want = ([], [])
    for k, x in enumerate(xs):
        for ref, w in zip(refs, want):
            if k in resets:
                ref.reset()
            w.append(ref.invoke(x))
    want = tuple(np.stack(w) for w in want)
    assert len(np.unique(want[1])) > 50  # the streams drive the logit
    for be in BACKENDS:
        models = load_tflite(path, backend=be), GraphModel(write_blob(logit), backend=be)  # imported in memory
        assert isinstance(models[0], GraphModel) and models[0].output_dtype == np.uint8
        for model, w, what in zip(models, want, ("output", "logit")):
            stream = model.stream()
            got = []
            for k, x in enumerate(xs):
                if k in resets:
                    stream.reset()
                got.append(stream.invoke(x))
            mismatches = int((np.stack(got) != w).sum())
            assert mismatches == 0, f"{name} on {be}: {mismatches} {what} mismatches in {INVOKES} invokes"


# --- the blob of kind 1 -----------------------------------------------------------------------------------------



def _py_ok(blob: bytes) -> bool:
    try:
        read_blob(blob)
        return True
    except FormatError:
        return False


def test_round_trip_of_the_streaming_graph_and_the_models():
    from kwsint.interop.tflite_import import read_tflite
    for spec in [_streaming_graph(1)] + [read_tflite(MODELS / f"{n}.tflite") for n in NAMES]:
        blob = write_blob(spec)
        assert struct.unpack_from("<HH", blob, 4) == (5, 1)
        back = read_blob(blob)
        assert write_blob(back) == blob
        assert back.metadata == spec.metadata
        for a, b in zip(spec.states, back.states):
            np.testing.assert_array_equal(a.init, b.init)
        assert c_load(blob) == lib.KWS_OK


def test_the_c_and_python_loaders_refuse_the_same_single_byte_changes():
    """Every byte of the graph payload changed (the CRC made right again, so the field checks are what refuse):
    the Python and C loaders agree on accept or refuse, and neither crashes."""
    spec = _streaming_graph(1)
    blob = write_blob(spec)
    json_at = len(blob) - len(spec.metadata.to_json())  # the JSON is Python's to read (tools); C only frames it
    accepted = 0
    for i in range(4, json_at):
        if 8 <= i < 16:
            continue  # payload_bytes and the CRC themselves
        for value in {blob[i] ^ 0x01, blob[i] ^ 0x80, 0xFF, 0}:
            if value == blob[i]:
                continue
            bad = refresh_crc(blob[:i] + bytes([value]) + blob[i + 1:])
            py, c = _py_ok(bad), c_load(bad) == lib.KWS_OK
            assert py == c, f"byte {i} := {value:#04x}: Python {'accepts' if py else 'refuses'}, C the opposite"
            accepted += py
    assert accepted > 0  # weights, biases and init codes may change freely


def test_every_truncation_is_refused_by_both_loaders():
    """The payload cut anywhere, its size and CRC made right again: the records' own lengths refuse it."""
    blob = write_blob(_streaming_graph(1))
    for n in range(HEADER.size, len(blob)):
        payload = blob[HEADER.size:n]
        bad = blob[:8] + struct.pack("<II", len(payload), zlib.crc32(payload)) + payload
        assert not _py_ok(bad), n
        assert c_load(bad) != lib.KWS_OK, n


def test_weight_code_minus_128_is_refused_with_a_clear_error():
    spec = _streaming_graph(1)
    conv = spec.ops[1]
    w = conv.weights.copy()
    w[0, 0, 0] = -128
    bad = dataclasses.replace(spec, ops=(spec.ops[0], dataclasses.replace(conv, weights=w)) + spec.ops[2:])
    with pytest.raises(FormatError, match=r"ops\[1\]\.weights\[0\]: expected codes in \[-127, 127\]"):
        write_blob(bad)


def test_a_version_5_blob_of_kind_0_is_a_dense_model():
    from .test_format import tiny_spec
    v4 = write_blob(tiny_spec())
    v5 = v4[:4] + struct.pack("<H", 5) + v4[6:]
    assert write_blob(read_blob(v5)) == v4  # the same model; written back as version 4
    assert c_load(v5) == lib.KWS_OK
    bad_kind = v4[:4] + struct.pack("<HH", 5, 2) + v4[8:]
    with pytest.raises(FormatError, match="model_kind"):
        read_blob(bad_kind)
    assert c_load(bad_kind) == lib.KWS_ERR_FIELD
    with pytest.raises(FormatError, match="reserved"):  # before version 5 the field is reserved
        read_blob(v4[:6] + struct.pack("<H", 1) + v4[8:])


def test_dense_calls_refuse_a_graph_model_and_invoke_refuses_wrong_sizes():
    model = GraphModel(write_blob(_streaming_graph(1)))
    stream = model.stream()
    frames = np.zeros((3, 8), np.float32)
    assert lib.kws_stream_push(stream._ptr, ffi.cast("float *", ffi.from_buffer(frames)), 1) == lib.KWS_ERR_ARGUMENT
    x = np.zeros(24, np.int8)
    out = np.zeros(4, np.uint8)
    invoke = lib.kws_stream_invoke
    assert invoke(stream._ptr, ffi.from_buffer("int8_t[]", x), 23, ffi.from_buffer(out), 4) == lib.KWS_ERR_ARGUMENT
    assert invoke(stream._ptr, ffi.from_buffer("int8_t[]", x), 24, ffi.from_buffer(out), 5) == lib.KWS_ERR_ARGUMENT
    assert lib.kws_model_kind(model._ptr) == lib.KWS_MODEL_GRAPH
    with pytest.raises(ValueError, match="int8"):
        stream.invoke(np.zeros((3, 8), np.int16))
    with pytest.raises(ValueError, match=r"\(3, 8\)"):
        stream.invoke(np.zeros((8, 3), np.int8))
    # A non-contiguous view is copied first: the same result as its contiguous copy.
    view = np.arange(24, dtype=np.int8).reshape(8, 3).T
    assert not view.flags.c_contiguous
    a, b = model.stream(), model.stream()
    np.testing.assert_array_equal(a.invoke(view), b.invoke(np.ascontiguousarray(view)))


def test_invoke_is_a_c_callable_that_keeps_its_stream_alive_and_returns_new_arrays():
    """GraphStream.invoke (kwsint/engine/_invoke.c): its argument rules, its outputs, its lifetime, and the path
    of a status other than KWS_OK."""
    spec = _streaming_graph(2)
    x = np.arange(24, dtype=np.int8).reshape(3, 8)
    ref = ReferenceStream(spec)
    invoke = GraphModel(write_blob(spec)).stream().invoke  # the stream and the model are dropped
    gc.collect()
    first, second = invoke(x), invoke(np.asfortranarray(x))  # another layout is copied first
    np.testing.assert_array_equal(first, ref.invoke(x))
    np.testing.assert_array_equal(second, ref.invoke(x))
    assert first is not second and not np.shares_memory(first, second) and first.dtype == np.uint8
    with pytest.raises(TypeError, match="one positional argument"):
        invoke(x, x)
    with pytest.raises(TypeError, match="one positional argument"):
        invoke(x=x)
    with pytest.raises(ValueError, match=r"int8 \(3, 8\) expected, got int8 \(4, 8\)"):
        invoke(np.zeros((4, 8), np.int8))
    with pytest.raises(ValueError, match="expected, got float64"):
        invoke(np.zeros((3, 8)))
    with pytest.raises(ValueError, match="expected, got int64"):  # no silent cast of a list of ints
        invoke(x.tolist())
    with pytest.raises(TypeError, match="not initialised"):
        StreamInvoke.__new__(StreamInvoke)(x)
    # A C status goes through raise_status: here an input shape the graph does not have (KWS_ERR_ARGUMENT).
    stream = GraphModel(write_blob(spec)).stream()
    wrong = StreamInvoke(_INVOKE_ADDRESS, int(ffi.cast("uintptr_t", stream._ptr)), stream._ptr, (2, 8), (1, 4),
                         np.dtype(np.uint8).num, np.asarray, _raise_invoke_status)
    with pytest.raises(ValueError, match="kws_stream_invoke"):
        wrong(np.zeros((2, 8), np.int8))


def test_streams_of_one_model_are_independent():
    spec = _streaming_graph(2)
    model = GraphModel(write_blob(spec))
    a, b = model.stream(), model.stream()
    ref = ReferenceStream(spec)
    rng = np.random.default_rng(0)
    for _ in range(20):
        x = rng.integers(-128, 128, (3, 8)).astype(np.int8)
        want = ref.invoke(x)
        np.testing.assert_array_equal(a.invoke(x), want)
    fresh = ReferenceStream(spec)
    x = np.zeros((3, 8), np.int8)
    np.testing.assert_array_equal(b.invoke(x), fresh.invoke(x))


def test_kwsint_load_runs_a_graph_blob_and_imports_a_tflite_file(tmp_path):
    spec = _streaming_graph(1)
    path = tmp_path / "g.kwsq"
    kwsint.save(spec, path)
    model = kwsint.load(path)
    assert isinstance(model, GraphModel) and model.input_shape == (3, 8) and model.output_shape == (1, 4)
    x = np.arange(24, dtype=np.int8).reshape(3, 8)
    np.testing.assert_array_equal(model.stream().invoke(x), ReferenceStream(spec).invoke(x))

    # A .tflite goes through the importer, with the settings of the same name beside it (pymicro-wakeword's layout).
    from kwsint.interop.tflite_import import read_tflite
    tflite = (MODELS / "hey_jarvis.tflite").read_bytes()
    want = read_tflite(MODELS / "hey_jarvis.tflite", settings=MODELS / "hey_jarvis.json")
    from_file = kwsint.load(MODELS / "hey_jarvis.tflite")
    assert write_blob(from_file.spec) == write_blob(want) and from_file.metadata.probability_cutoff == 0.97
    (tmp_path / "m.tflite").write_bytes(tflite)
    from_bytes, alone = kwsint.load(tflite), kwsint.load(tmp_path / "m.tflite")
    without_settings = write_blob(dataclasses.replace(want, metadata=from_bytes.spec.metadata))
    assert write_blob(from_bytes.spec) == write_blob(alone.spec) == without_settings
    assert from_bytes.metadata.probability_cutoff is None
    xs = np.random.default_rng(3).integers(-128, 128, (50, 3, 40)).astype(np.int8)
    streams = from_file.stream(), from_bytes.stream()
    for x in xs:
        np.testing.assert_array_equal(*(s.invoke(x) for s in streams))

    # The engine layer alone refuses it, naming the way to load it.
    with pytest.raises(FormatError, match="a TFLite flatbuffer, not a kwsint blob: load it with kwsint.load()"):
        kwsint.engine.model.load(tflite)


def test_threads_share_one_model_each_with_its_own_stream():
    from concurrent.futures import ThreadPoolExecutor
    spec = _streaming_graph(1)
    model = GraphModel(write_blob(spec))
    rng = np.random.default_rng(5)
    inputs = [rng.integers(-128, 128, (300, 3, 8)).astype(np.int8) for _ in range(4)]
    want = []
    for xs in inputs:
        ref = ReferenceStream(spec)
        want.append(np.stack([ref.invoke(x) for x in xs]))

    def run(xs):
        stream = model.stream()
        return np.stack([stream.invoke(x) for x in xs])

    with ThreadPoolExecutor(4) as pool:
        for got, w in zip(pool.map(run, inputs), want):
            np.testing.assert_array_equal(got, w)


def test_time_invoke_runs_the_invokes_in_c():
    """time_invoke(x, n) is n + 1 invokes of x (one untimed, which checks the arguments): the state moves on."""
    spec = _streaming_graph(1)
    stream = GraphModel(write_blob(spec)).stream()
    ref = ReferenceStream(spec)
    x = np.arange(24, dtype=np.int8).reshape(3, 8)
    assert stream.time_invoke(x, 5) >= 0
    for _ in range(6):
        ref.invoke(x)
    y = np.full((3, 8), -7, np.int8)
    np.testing.assert_array_equal(stream.invoke(y), ref.invoke(y))
    with pytest.raises(ValueError, match="repeats"):
        stream.time_invoke(x, -1)


def test_invoke_many_equals_single_invokes_and_refuses_wrong_lengths():
    spec = _streaming_graph(2)
    blob = write_blob(spec)
    rng = np.random.default_rng(5)
    x = rng.integers(-128, 128, (40, 3, 8)).astype(np.int8)
    for be in BACKENDS:
        model = GraphModel(blob, backend=be)
        one, many = model.stream(), model.stream()
        want = np.stack([one.invoke(xi) for xi in x])
        got = np.concatenate([many.invoke_many(x[:1]), many.invoke_many(x[1:1]), many.invoke_many(x[1:])])
        assert got.dtype == want.dtype and got.shape == (40,) + model.output_shape
        np.testing.assert_array_equal(got, want, err_msg=be)
    stream = GraphModel(blob).stream()
    with pytest.raises(ValueError, match=r"int8 \(n, 3, 8\)"):
        stream.invoke_many(x[0])
    with pytest.raises(ValueError, match=r"int8 \(n, 3, 8\)"):
        stream.invoke_many(x.astype(np.int16))
    flat, out = x.reshape(-1), np.zeros(2 * 4, np.uint8)  # two invokes' worth of output (1 x 4 codes each)
    many = lib.kws_stream_invoke_many
    for in_len, out_len in ((47, 8), (48, 7), (48, 12), (72, 8), (24, 0)):
        assert many(stream._ptr, ffi.from_buffer("int8_t[]", flat), in_len, ffi.from_buffer(out),
                    out_len) == lib.KWS_ERR_ARGUMENT, (in_len, out_len)
    assert many(stream._ptr, ffi.from_buffer("int8_t[]", flat), 48, ffi.from_buffer(out), 8) == lib.KWS_OK
