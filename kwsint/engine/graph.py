"""A streaming graph as data: the models TFLite Micro runs invoke by invoke (microWakeWord's), in kwsint's terms.

Every activation is an int8 tensor of ``frames`` x ``channels`` (TFLite's [1, frames, 1, channels]); the graph
output may be uint8. A graph has one input tensor (the new feature frames of one invoke), a list of states (shift
registers that persist between invokes), and a list of ops in execution order, each writing one new tensor:

* ``Window``   -- [state ; input] along time: the state's frames followed by the input's. The state then keeps
  the last ``state.frames`` frames of the result. TFLite's READ_VARIABLE -> CONCATENATION -> STRIDED_SLICE ->
  ASSIGN_VARIABLE.
* ``Slice``    -- the last ``frames`` frames and the channels [channel_start, channel_start + channels) of a
  tensor: STRIDED_SLICE (stride 1) and SPLIT_V.
* ``Concat``   -- tensors side by side along channels (CONCATENATION on the last axis).
* ``Conv``     -- CONV_2D with a K x 1 kernel in time (stride, dilation, VALID or SAME padding).
* ``DepthwiseConv`` -- DEPTHWISE_CONV_2D, K x 1, depth multiplier 1.
* ``FullyConnected`` -- FULLY_CONNECTED on the tensor flattened frame by frame; its output has 1 frame.
* ``Logistic`` -- LOGISTIC int8 -> int8 (output scale 1/256, zero point -128).
* ``Quantize`` -- QUANTIZE int8 -> int8 or uint8 (a requantization).

``docs/arithmetic.md`` (part 11, "Streaming graphs") is the normative description of every field; the integers
derived from the float scales (multipliers, shifts, LOGISTIC's table) are not stored here but derived by
``kwsint.reference`` exactly as TFLM derives them (``op_multipliers``).

``validate`` (run by ``GraphSpec`` itself) checks every structural rule, and ``ReferenceStream`` runs a graph invoke
by invoke with ``kwsint.reference``: the executable spec of a stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NoReturn, get_args

import numpy as np

from . import reference
from .limits import BIAS_LIMIT, MAX_DIM, MAX_SHIFT
from .metadata import ModelMetadata
from .reference import PADDINGS

__all__ = [
    "Concat", "Conv", "DepthwiseConv", "FullyConnected", "GraphSpec", "Logistic", "Op", "PADDINGS", "Quant",
    "Quantize", "ReferenceStream", "Slice", "State", "Tensor", "Window", "op_multipliers", "receptive_field",
    "acc16_proven", "run_windows", "validate",
]


@dataclass(frozen=True)
class Quant:
    """An activation's quantization: real = scale * (code - zero_point). ``scale`` is a float32 value."""

    scale: float
    zero_point: int


@dataclass(frozen=True)
class Tensor:
    """An activation tensor: ``frames`` x ``channels`` codes of ``dtype`` ("int8", or "uint8" for the output)."""

    frames: int
    channels: int
    quant: Quant
    dtype: str = "int8"


@dataclass(frozen=True)
class State:
    """A shift register of ``frames`` x ``channels`` int8 codes kept between invokes.

    ``init`` (int8, (frames, channels)) is its content when a stream starts; ``reset`` sets every code to
    ``quant.zero_point`` instead, as TFLM's ``reset()`` does (which does not re-run the init subgraph).
    """

    frames: int
    channels: int
    quant: Quant
    init: np.ndarray


@dataclass(frozen=True)
class Window:
    """tensors[out] = [states[state] ; tensors[input]] along time; then the state keeps the last frames."""

    state: int
    input: int
    out: int


@dataclass(frozen=True)
class Slice:
    """tensors[out] = the last ``frames`` frames, channels [channel_start, channel_start + channels), of input."""

    input: int
    frames: int
    channel_start: int
    channels: int
    out: int


@dataclass(frozen=True)
class Concat:
    """tensors[out] = the inputs side by side along channels (all with the output's frames and quantization)."""

    inputs: tuple[int, ...]
    out: int


@dataclass(frozen=True)
class Conv:
    """CONV_2D, K x 1 in time: weights int8 (Cout, K, Cin); bias int32 (Cout,); weight_scale float32 (Cout,)
    per channel, or (1,) per tensor; the output clamp [act_min, act_max] in output codes (the fused activation)."""

    input: int
    weights: np.ndarray
    bias: np.ndarray
    weight_scale: np.ndarray
    stride: int
    dilation: int
    padding: str
    act_min: int
    act_max: int
    out: int


@dataclass(frozen=True)
class DepthwiseConv:
    """DEPTHWISE_CONV_2D, K x 1 in time, depth multiplier 1: weights int8 (K, C); bias int32 (C,); weight_scale
    float32 (C,) or (1,)."""

    input: int
    weights: np.ndarray
    bias: np.ndarray
    weight_scale: np.ndarray
    stride: int
    dilation: int
    padding: str
    act_min: int
    act_max: int
    out: int


@dataclass(frozen=True)
class FullyConnected:
    """FULLY_CONNECTED on the input flattened frame by frame (frames * channels values): weights int8 (N, frames *
    channels); bias int32 (N,); weight_scale float32 (N,) or (1,). The output is 1 frame of N channels."""

    input: int
    weights: np.ndarray
    bias: np.ndarray
    weight_scale: np.ndarray
    act_min: int
    act_max: int
    out: int


@dataclass(frozen=True)
class Logistic:
    """LOGISTIC int8 -> int8; the output's quantization is (1/256, -128)."""

    input: int
    out: int


@dataclass(frozen=True)
class Quantize:
    """QUANTIZE: requantize the input's codes to the output's quantization and dtype."""

    input: int
    out: int


Op = Window | Slice | Concat | Conv | DepthwiseConv | FullyConnected | Logistic | Quantize


@dataclass(frozen=True)
class GraphSpec:
    """A streaming graph. ``tensors[input]`` holds one invoke's new frames, ``tensors[output]`` its result; every
    other tensor is written by exactly one op, before any op reads it."""

    tensors: tuple[Tensor, ...]
    states: tuple[State, ...]
    ops: tuple[Op, ...]
    input: int
    output: int
    metadata: ModelMetadata = field(default_factory=ModelMetadata)

    def __post_init__(self) -> None:
        validate(self)

    @property
    def macs(self) -> int:
        """Multiply-accumulates per invoke."""
        total = 0
        for op in self.ops:
            if isinstance(op, (Conv, DepthwiseConv)):
                frames = self.tensors[op.out].frames
                total += frames * op.weights.size
            elif isinstance(op, FullyConnected):
                total += op.weights.size
        return total


# --- validation ----------------------------------------------------------------------------------------------


class GraphError(ValueError):
    """A broken rule of a GraphSpec; ``op`` is the index of the op it was found in, if any (an importer names
    the operator it came from)."""

    def __init__(self, message: str, op: int | None = None) -> None:
        super().__init__(message)
        self.op = op


def _fail(where: str, message: str) -> NoReturn:
    raise GraphError(f"{where}: {message}")


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _check_quant(where: str, quant, dtype: str) -> None:
    if not isinstance(quant, Quant):
        _fail(where, f"a Quant expected, got {type(quant).__name__}")
    scale = quant.scale
    if not (isinstance(scale, (float, np.floating)) and np.isfinite(scale) and scale > 0
            and float(np.float32(scale)) == float(scale)):
        _fail(f"{where}.scale", f"a positive finite float32 value expected, got {scale!r}")
    lo, hi = reference.CODE_RANGES[dtype]
    if not (_is_int(quant.zero_point) and lo <= quant.zero_point <= hi):
        _fail(f"{where}.zero_point", f"an integer in [{lo}, {hi}] ({dtype}) expected, got {quant.zero_point!r}")


def _check_size(where: str, value, lo: int, hi: int) -> None:
    if not (_is_int(value) and lo <= value <= hi):
        _fail(where, f"an integer in [{lo}, {hi}] expected, got {value!r}")


def _check_array(where: str, a, dtype, shape: tuple[int, ...]) -> None:
    if not isinstance(a, np.ndarray) or a.dtype != dtype:
        _fail(where, f"a numpy {np.dtype(dtype).name} array expected, got "
                     f"{a.dtype if isinstance(a, np.ndarray) else type(a).__name__}")
    if a.shape != shape:
        _fail(where, f"shape {shape} expected, got {a.shape}")


def _check_linear(where: str, op, spec: GraphSpec, weight_shape: tuple[int, ...], depth: int) -> None:
    """The weights, bias, scales and clamp of a Conv, DepthwiseConv or FullyConnected, and the limits that
    keep its int32 accumulator exact (docs/arithmetic.md 5.2 and 11)."""
    out = spec.tensors[op.out]
    _check_array(f"{where}.weights", op.weights, np.int8, weight_shape)
    if depth > MAX_DIM:
        _fail(f"{where}.weights", f"{depth} products per output exceed the engine's {MAX_DIM} (the int32 "
                                  "accumulator bound)")
    _check_array(f"{where}.bias", op.bias, np.int32, (out.channels,))
    if np.abs(op.bias.astype(np.int64)).max() > BIAS_LIMIT[8]:
        _fail(f"{where}.bias", f"|bias| exceeds {BIAS_LIMIT[8]}")
    ws = op.weight_scale
    if not isinstance(ws, np.ndarray) or ws.dtype != np.float32 or ws.shape not in ((out.channels,), (1,)):
        _fail(f"{where}.weight_scale", f"float32 ({out.channels},) or (1,) expected, got "
                                       f"{ws.dtype if isinstance(ws, np.ndarray) else type(ws).__name__} "
                                       f"{getattr(ws, 'shape', '')}")
    if not np.all(np.isfinite(ws) & (ws > 0)):
        _fail(f"{where}.weight_scale", "every scale must be positive and finite")
    _check_size(f"{where}.act_min", op.act_min, -128, 127)
    _check_size(f"{where}.act_max", op.act_max, op.act_min, 127)
    _check_shifts(f"{where}.weight_scale", op_multipliers(spec, op)[1])


def _check_shifts(where: str, shift: np.ndarray) -> None:
    if shift.max() > MAX_SHIFT[8]:
        _fail(where, f"the scales need a requantization shift of {int(shift.max())}, more than the "
                     f"{MAX_SHIFT[8]} of int8 activations (docs/arithmetic.md 2)")


def _check_conv(where: str, op, spec: GraphSpec, depthwise: bool) -> None:
    x, out = spec.tensors[op.input], spec.tensors[op.out]
    _check_size(f"{where}.stride", op.stride, 1, MAX_DIM)
    _check_size(f"{where}.dilation", op.dilation, 1, MAX_DIM)
    if op.padding not in PADDINGS:
        _fail(f"{where}.padding", f"one of {PADDINGS} expected, got {op.padding!r}")
    w = op.weights
    if not isinstance(w, np.ndarray) or w.ndim != (2 if depthwise else 3):
        _fail(f"{where}.weights", "(K, C) codes expected" if depthwise else "(Cout, K, Cin) codes expected")
    kernel = w.shape[0] if depthwise else w.shape[1]
    if kernel < 1:
        _fail(f"{where}.weights", "a kernel of at least 1 frame expected")
    if depthwise:
        if out.channels != x.channels:
            _fail(f"{where}.out", f"{x.channels} channels (depth multiplier 1) expected, got {out.channels}")
        _check_linear(where, op, spec, (kernel, x.channels), kernel)
    else:
        _check_linear(where, op, spec, (out.channels, kernel, x.channels), kernel * x.channels)
    try:
        frames, _ = reference.conv_output_frames(x.frames, kernel, op.stride, op.dilation, op.padding)
    except ValueError as e:
        _fail(f"{where}.input", str(e))
    if out.frames != frames:
        _fail(f"{where}.out", f"{frames} frames expected from {x.frames} input frames, kernel {kernel}, stride "
                              f"{op.stride}, dilation {op.dilation}, {op.padding} padding; got {out.frames}")


def _check_op(where: str, op, spec: GraphSpec) -> None:
    """The rules of one op whose tensor ids are in range (docs/arithmetic.md 11)."""
    t = spec.tensors
    inputs = op.inputs if isinstance(op, Concat) else (op.input,)
    for i in inputs:
        if t[i].dtype != "int8":
            _fail(f"{where}.input", f"tensors[{i}] is {t[i].dtype}; ops read int8 tensors")
    out = t[op.out]
    if out.dtype != "int8" and not isinstance(op, Quantize):
        _fail(f"{where}.out", f"tensors[{op.out}] is {out.dtype}; only a Quantize writes uint8")
    if isinstance(op, Window):
        _check_size(f"{where}.state", op.state, 0, len(spec.states) - 1)
        state, x = spec.states[op.state], t[op.input]
        if x.channels != state.channels or out.channels != state.channels:
            _fail(f"{where}.out", f"state, input and output channels differ: {state.channels}, {x.channels}, "
                                  f"{out.channels}")
        if out.frames != state.frames + x.frames:
            _fail(f"{where}.out", f"{state.frames} state + {x.frames} input = {state.frames + x.frames} frames "
                                  f"expected, got {out.frames}")
        if not x.quant == state.quant == out.quant:
            _fail(f"{where}.out", f"state, input and output quantization differ: {state.quant}, {x.quant}, "
                                  f"{out.quant} (a window copies codes)")
    elif isinstance(op, Slice):
        x = t[op.input]
        _check_size(f"{where}.frames", op.frames, 1, x.frames)
        _check_size(f"{where}.channel_start", op.channel_start, 0, x.channels - 1)
        _check_size(f"{where}.channels", op.channels, 1, x.channels - op.channel_start)
        if (out.frames, out.channels) != (op.frames, op.channels):
            _fail(f"{where}.out", f"{op.frames} x {op.channels} expected, got {out.frames} x {out.channels}")
        if out.quant != x.quant:
            _fail(f"{where}.out", f"quantization {out.quant} differs from the input's {x.quant} (a slice copies "
                                  "codes)")
    elif isinstance(op, Concat):
        if not op.inputs:
            _fail(f"{where}.inputs", "at least one input expected")
        for i in op.inputs:
            if t[i].frames != out.frames or t[i].quant != out.quant:
                _fail(f"{where}.inputs", f"tensors[{i}] has {t[i].frames} frames and {t[i].quant}; the output "
                                         f"has {out.frames} and {out.quant} (CONCATENATION copies codes)")
        if sum(t[i].channels for i in op.inputs) != out.channels:
            _fail(f"{where}.out", f"{sum(t[i].channels for i in op.inputs)} channels expected, got {out.channels}")
    elif isinstance(op, Conv):
        _check_conv(where, op, spec, depthwise=False)
    elif isinstance(op, DepthwiseConv):
        _check_conv(where, op, spec, depthwise=True)
    elif isinstance(op, FullyConnected):
        x = t[op.input]
        if out.frames != 1:
            _fail(f"{where}.out", f"1 frame expected, got {out.frames}")
        _check_linear(where, op, spec, (out.channels, x.frames * x.channels), x.frames * x.channels)
    elif isinstance(op, Logistic):
        x = t[op.input]
        if (out.frames, out.channels) != (x.frames, x.channels):
            _fail(f"{where}.out", f"the input's {x.frames} x {x.channels} expected, got {out.frames} x {out.channels}")
        want = Quant(reference.LOGISTIC_OUTPUT_SCALE, reference.LOGISTIC_OUTPUT_ZERO_POINT)
        if out.quant != want:
            _fail(f"{where}.out", f"quantization {want} expected (the kernel's fixed output), got {out.quant}")
        try:
            reference.logistic_parameters(x.quant.scale)
        except ValueError as e:
            _fail(f"{where}.input", str(e))
    elif isinstance(op, Quantize):
        x = t[op.input]
        if (out.frames, out.channels) != (x.frames, x.channels):
            _fail(f"{where}.out", f"the input's {x.frames} x {x.channels} expected, got {out.frames} x {out.channels}")
        _check_shifts(f"{where}.out", op_multipliers(spec, op)[1])


def validate(spec: GraphSpec) -> None:
    """Check every structural rule of a streaming graph (docs/arithmetic.md 11.1); ``GraphSpec`` calls it.

    Raises:
        GraphError (a ValueError): naming the first broken rule's place (``ops[3] (Conv).weights``,
            ``tensors[2].quant.scale``, ``states[0].init``, ...) and what was expected.
    """
    for i, t in enumerate(spec.tensors):
        where = f"tensors[{i}]"
        if not isinstance(t, Tensor):
            _fail(where, f"a Tensor expected, got {type(t).__name__}")
        _check_size(f"{where}.frames", t.frames, 1, MAX_DIM)
        _check_size(f"{where}.channels", t.channels, 1, MAX_DIM)
        if t.dtype not in ("int8", "uint8"):
            _fail(f"{where}.dtype", f"'int8' or 'uint8' expected, got {t.dtype!r}")
        _check_quant(f"{where}.quant", t.quant, t.dtype)
    for i, s in enumerate(spec.states):
        where = f"states[{i}]"
        if not isinstance(s, State):
            _fail(where, f"a State expected, got {type(s).__name__}")
        _check_size(f"{where}.frames", s.frames, 1, MAX_DIM)
        _check_size(f"{where}.channels", s.channels, 1, MAX_DIM)
        _check_quant(f"{where}.quant", s.quant, "int8")
        _check_array(f"{where}.init", s.init, np.int8, (s.frames, s.channels))
    n = len(spec.tensors)
    _check_size("input", spec.input, 0, n - 1)
    _check_size("output", spec.output, 0, n - 1)
    if spec.tensors[spec.input].dtype != "int8":
        _fail("input", f"tensors[{spec.input}] must be int8")
    if spec.output == spec.input:
        _fail("output", "the output must be written by an op, not be the input")
    written = {spec.input: "the graph input"}
    windows = {}  # state -> the op that reads it
    for k, op in enumerate(spec.ops):
        where = f"ops[{k}] ({type(op).__name__})"
        if not isinstance(op, Op):
            _fail(f"ops[{k}]", f"an op ({', '.join(c.__name__ for c in get_args(Op))}) expected, "
                               f"got {type(op).__name__}")
        fields = ("inputs",) if isinstance(op, Concat) else ("input",)
        ids = tuple(op.inputs) if isinstance(op, Concat) else (op.input,)
        for i in ids:
            _check_size(f"{where}.{fields[0]}", i, 0, n - 1)
            if i not in written:
                _fail(f"{where}.{fields[0]}", f"tensors[{i}] is read before any op writes it")
        _check_size(f"{where}.out", op.out, 0, n - 1)
        if op.out in written:
            _fail(f"{where}.out", f"tensors[{op.out}] is already written by {written[op.out]}")
        written[op.out] = f"ops[{k}]"
        if isinstance(op, Window):
            if _is_int(op.state) and op.state in windows:
                _fail(f"{where}.state", f"states[{op.state}] is already the window of {windows[op.state]}; each "
                                        "state belongs to one Window")
            windows[op.state] = f"ops[{k}]"
        try:
            _check_op(where, op, spec)
        except GraphError as e:
            raise GraphError(str(e), op=k) from None
    for i in range(n):
        if i not in written:
            _fail(f"tensors[{i}]", "no op writes it")
    for i in range(len(spec.states)):
        if i not in windows:
            _fail(f"states[{i}]", "no Window reads it")


# --- the integers derived from the scales ---------------------------------------------------------------------


def op_multipliers(spec: GraphSpec, op: Op) -> tuple[np.ndarray, np.ndarray]:
    """(multiplier, shift) of a Conv, DepthwiseConv or FullyConnected per output channel (int32 arrays,
    ``reference.dense_multipliers`` of the float32 scales, a per-tensor weight scale applying to every
    channel), or of a Quantize (arrays of one: ``reference.requantize_multiplier``)."""
    x, out = spec.tensors[op.input], spec.tensors[op.out]
    if isinstance(op, Quantize):
        m, s = reference.requantize_multiplier(x.quant.scale, out.quant.scale)
        return np.array([m], np.int32), np.array([s], np.int32)
    ws = np.broadcast_to(np.asarray(op.weight_scale, np.float32).reshape(-1), (out.channels,))
    return reference.dense_multipliers(x.quant.scale, ws, out.quant.scale)


# --- the reference stream -------------------------------------------------------------------------------------


class ReferenceStream:
    """One stream of a GraphSpec run with ``kwsint.reference``, invoke by invoke: the executable spec that the C
    engine and TFLM must equal.

    It starts from each state's ``init`` (TFLM's CALL_ONCE init subgraph on the first invoke); ``reset()`` sets
    every state code to its zero point, as TFLM's ``reset()`` does.
    """

    def __init__(self, spec: GraphSpec) -> None:
        self.spec = spec
        # What TFLM's Prepare derives once: multipliers of the linear ops and QUANTIZE, LOGISTIC's table.
        self._derived: dict[int, object] = {}
        for k, op in enumerate(spec.ops):
            if isinstance(op, (Conv, DepthwiseConv, FullyConnected, Quantize)):
                self._derived[k] = op_multipliers(spec, op)
            elif isinstance(op, Logistic):
                q = spec.tensors[op.input].quant
                self._derived[k] = reference.logistic_table(q.scale, q.zero_point)
        self._states = [s.init.copy() for s in spec.states]

    def reset(self) -> None:
        """Every state code := the state's zero point (TFLM ``MicroResourceVariables::ResetAll``; the init
        values are not restored)."""
        self._states = [np.full((s.frames, s.channels), s.quant.zero_point, np.int8) for s in self.spec.states]

    def states(self) -> list[np.ndarray]:
        """Copies of the states' codes, int8 (frames, channels) each."""
        return [s.copy() for s in self._states]

    def invoke(self, x: np.ndarray) -> np.ndarray:
        """Run the ops once on the new frames ``x`` (int8, the input tensor's (frames, channels)).

        Returns:
            The output tensor's codes, (frames, channels), int8 or uint8.
        """
        return self.trace(x)[self.spec.output].copy()

    def trace(self, x: np.ndarray) -> dict[int, np.ndarray]:
        """``invoke``, returning the codes of every tensor of this invoke by tensor id (read-only views)."""
        spec = self.spec
        inp = spec.tensors[spec.input]
        x = np.asarray(x)
        if x.dtype != np.int8 or x.shape != (inp.frames, inp.channels):
            raise ValueError(f"x: int8 ({inp.frames}, {inp.channels}) expected, got {x.dtype} {x.shape}")
        values = {spec.input: x.copy()}
        for k, op in enumerate(spec.ops):
            values[op.out] = self._run(k, op, values)
        for v in values.values():
            v.flags.writeable = False
        return values

    def _run(self, k: int, op: Op, values: dict[int, np.ndarray]) -> np.ndarray:
        tensors = self.spec.tensors
        if isinstance(op, Window):
            window = np.concatenate([self._states[op.state], values[op.input]])
            # The state keeps the newest frames (STRIDED_SLICE + ASSIGN_VARIABLE); no other op reads it.
            self._states[op.state] = window[window.shape[0] - self.spec.states[op.state].frames:].copy()
            return window
        if isinstance(op, Slice):
            x = values[op.input]
            return x[x.shape[0] - op.frames:, op.channel_start:op.channel_start + op.channels]
        if isinstance(op, Concat):
            return np.concatenate([values[i] for i in op.inputs], axis=1)
        if isinstance(op, Logistic):
            return self._derived[k][values[op.input].astype(np.int64) + 128]
        x_q, out = tensors[op.input].quant, tensors[op.out]
        if isinstance(op, Quantize):
            (m,), (s,) = self._derived[k]
            return reference.requantize_codes(values[op.input], input_zero_point=x_q.zero_point,
                                              output_zero_point=out.quant.zero_point, multiplier=int(m),
                                              shift=int(s), dtype=out.dtype)
        mult, shift = self._derived[k]
        common = dict(input_zero_point=x_q.zero_point, output_zero_point=out.quant.zero_point, multiplier=mult,
                      shift=shift, act_min=op.act_min, act_max=op.act_max)
        if isinstance(op, Conv):
            return reference.temporal_conv(values[op.input], op.weights, op.bias, stride=op.stride,
                                           dilation=op.dilation, padding=op.padding, **common)
        if isinstance(op, DepthwiseConv):
            return reference.depthwise_temporal_conv(values[op.input], op.weights, op.bias, stride=op.stride,
                                                     dilation=op.dilation, padding=op.padding, **common)
        # FullyConnected: the input flattened frame by frame is one row of frames * channels codes.
        return reference.fully_connected(values[op.input].reshape(1, -1), op.weights, op.bias, **common)


# --- int16 accumulation ---------------------------------------------------------------------------------------


def acc16_proven(op: Conv | DepthwiseConv | FullyConnected) -> bool:
    """Whether every partial sum of an op's products w * x, over any of its rows, stays inside int16 for every
    int8 input x (zero point folded into the bias, |x| <= 128): ``128 * sum |w| <= 32767`` for every output
    channel's weights (docs/arithmetic.md 5.6 with the whole row as one block)."""
    w = np.abs(op.weights.astype(np.int64))
    rows = w.sum(axis=0) if isinstance(op, DepthwiseConv) else w.reshape(len(w), -1).sum(axis=1)
    return bool(reference.ACC16_X_MAX * rows.max() <= reference.ACC16_MAX)


# --- whole windows at once ------------------------------------------------------------------------------------


def receptive_field(spec: GraphSpec) -> int:
    """Input frames that one invoke's output depends on, once every state holds frames computed from real input
    (``run_windows``). ValueError for a "same" convolution, whose padded edge has no streaming meaning here."""
    need = {spec.output: spec.tensors[spec.output].frames}
    for op in reversed(spec.ops):
        if op.out not in need:
            continue
        n = need[op.out]
        if isinstance(op, (Conv, DepthwiseConv)):
            if op.padding != "valid":
                raise ValueError(f"{type(op).__name__} with {op.padding!r} padding: only 'valid' convolutions "
                                 "stream as whole windows")
            kernel = op.weights.shape[0] if isinstance(op, DepthwiseConv) else op.weights.shape[1]
            n = (n - 1) * op.stride + (kernel - 1) * op.dilation + 1
        elif isinstance(op, FullyConnected):
            n = spec.tensors[op.input].frames
        for i in (op.inputs if isinstance(op, Concat) else (op.input,)):
            need[i] = max(need.get(i, 0), n)
    return need[spec.input]


def _exact_dot(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(..., K) int64 times (N, K) int8 -> (..., N) int64, through float64 BLAS: every product is at most
    255 * 128 and K at most MAX_DIM, so every partial sum is an integer below 2^53, which float64 holds
    exactly."""
    return (x.astype(np.float64) @ weights.astype(np.float64).T).astype(np.int64)


def run_windows(spec: GraphSpec, codes: np.ndarray) -> dict[int, np.ndarray]:
    """The graph on whole windows of input frames, all at once: what a stream's invoke computes once its states
    hold frames computed from real input (the stream's newest input frame being the window's last).

    Each tensor is computed over the whole window instead of invoke by invoke: a ``Window`` passes its input on
    (the frames its state would hold are the window's earlier frames), a ``Slice`` keeps its channels, a strided
    convolution aligns its output frames with the window's end, and a ``FullyConnected`` reads the last frames
    its input tensor holds. The integers are ``kwsint.reference``'s: the same as ``ReferenceStream`` (tested).

    Args:
        codes: int8 (B, frames, channels) windows of input codes, frames >= ``receptive_field(spec)``.

    Returns:
        The codes of every tensor by id: (B, frames, channels) arrays, the output's with the output tensor's
        frames.
    """
    inp = spec.tensors[spec.input]
    codes = np.asarray(codes)
    rf = receptive_field(spec)
    if codes.dtype != np.int8 or codes.ndim != 3 or codes.shape[2] != inp.channels or codes.shape[1] < rf:
        raise ValueError(f"codes: int8 (windows, >= {rf} frames, {inp.channels}) expected, got {codes.dtype} "
                         f"{codes.shape}")
    values = {spec.input: codes}
    for op in spec.ops:
        values[op.out] = _run_whole(spec, op, values)
    out = spec.tensors[spec.output].frames
    values[spec.output] = values[spec.output][:, -out:]
    return values


def _run_whole(spec: GraphSpec, op: Op, values: dict[int, np.ndarray]) -> np.ndarray:
    tensors = spec.tensors
    if isinstance(op, Window):
        return values[op.input]
    if isinstance(op, Slice):
        return values[op.input][:, :, op.channel_start:op.channel_start + op.channels]
    if isinstance(op, Concat):
        frames = min(values[i].shape[1] for i in op.inputs)
        return np.concatenate([values[i][:, values[i].shape[1] - frames:] for i in op.inputs], axis=2)
    x = values[op.input]
    if isinstance(op, Logistic):
        q = tensors[op.input].quant
        return reference.logistic_table(q.scale, q.zero_point)[x.astype(np.int64) + 128]
    x_q, out = tensors[op.input].quant, tensors[op.out]
    if isinstance(op, Quantize):
        m, s = reference.requantize_multiplier(x_q.scale, out.quant.scale)
        return reference.requantize_codes(x, input_zero_point=x_q.zero_point, output_zero_point=out.quant.zero_point,
                                          multiplier=m, shift=s, dtype=out.dtype)
    mult, shift = op_multipliers(spec, op)
    xs = x.astype(np.int64) - x_q.zero_point
    if isinstance(op, FullyConnected):
        frames = tensors[op.input].frames
        acc = _exact_dot(xs[:, -frames:].reshape(len(x), 1, -1), op.weights)
    else:
        kernel = op.weights.shape[0] if isinstance(op, DepthwiseConv) else op.weights.shape[1]
        span = (kernel - 1) * op.dilation + 1
        xs = xs[:, (xs.shape[1] - span) % op.stride:]  # the last output frame ends at the window's last frame
        starts = np.arange(0, xs.shape[1] - span + 1, op.stride)
        taps = xs[:, starts[:, None] + op.dilation * np.arange(kernel)[None, :]]  # (B, frames, K, C)
        if isinstance(op, DepthwiseConv):
            acc = np.einsum("btkc,kc->btc", taps.astype(np.float64), op.weights.astype(np.float64)).astype(np.int64)
        else:
            acc = _exact_dot(taps.reshape(*taps.shape[:2], -1), op.weights.reshape(len(op.weights), -1))
    return reference._finish(acc + op.bias.astype(np.int64), np.dtype(np.int8), mult, shift, out.quant.zero_point,
                             op.act_min, op.act_max)
