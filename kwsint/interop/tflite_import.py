"""Import of int8 streaming TFLite models (microWakeWord's) as a ``kwsint.engine.graph.GraphSpec``.

``read_tflite(model)`` reads a ``.tflite`` flatbuffer and maps it onto kwsint's streaming graph, or refuses it
with one ``FormatError`` line naming the file, the operator (its index and builtin name), the tensor (its index
and name) and what was expected. ``read_micro_settings(json)`` reads the microWakeWord settings file that comes
with such a model into ``ModelMetadata``.

What is accepted (docs/arithmetic.md, the streaming graph part, says what each op computes):

* the main subgraph's input, int8 [1, n, C] (or [1, n, 1, C]); RESHAPE that keeps frames x channels is a view,
  and RESHAPE to [1, frames * channels] may feed a FULLY_CONNECTED;
* state: READ_VARIABLE(v) -> CONCATENATION(axis 1, [state ; new]) -> STRIDED_SLICE(the last R frames) ->
  ASSIGN_VARIABLE(v) becomes a ``State`` of R frames and a ``Window``; its initial content is the constant that
  the init subgraph (run by CALL_ONCE, the first operator to touch a variable) assigns with VAR_HANDLE +
  ASSIGN_VARIABLE and nothing else;
* STRIDED_SLICE that keeps the last K frames (stride 1) and a channel range, and SPLIT_V on channels: ``Slice``;
  CONCATENATION on channels: ``Concat``;
* CONV_2D with K x 1 kernels, DEPTHWISE_CONV_2D (multiplier 1, K x 1), FULLY_CONNECTED, LOGISTIC and QUANTIZE,
  int8 (QUANTIZE may write uint8, then only as the graph output), one to one; the fused activation becomes the
  clamp TFLM derives (``CalculateActivationRangeQuantized``, ``kwsint.interop.tflite.activation_range``).

What TFLM's Prepare refuses is refused too, so kwsint never runs a graph TFLM would not: different quantization
across CONCATENATION (kwsint also requires it across STRIDED_SLICE, SPLIT_V, RESHAPE and the variables: data
movement never requantizes), LOGISTIC output other than (1/256, -128), the per-tensor FULLY_CONNECTED
bias-scale rule, filter zero points other than 0, biases other than int32, output shapes other than the ones
the op computes. kwsint refuses more: weight code -128 (kwsint's weight grid is symmetric, -127..127),
LOGISTIC input scales for which TFLM's own arithmetic is undefined, and every operator, type and attribute
outside the list above (2-D kernels, depth multipliers other than 1, float or int16 tensors, ...).

Reader: a small bounds-checked reader of the few flatbuffer tables needed (``_File``, ``_Table``, ``_parse``:
about 200 lines), rather than the ``tflite`` package (or the schema module inside ``tflite-micro``). Those
generated readers do not validate: on corrupt files they raise struct.error, TypeError, IndexError or ValueError
from deep inside, or return garbage, and a corrupt vector length makes a loop over it run for billions of steps.
Wrapping them would need a try/except around every access *and* our own bound on every vector length, i.e. the
same checks as reading the bytes directly, plus a dependency (whose ``OperatorCode.BuiltinCode()`` moreover
answers 0 for codes below 127 in files that leave out ``deprecated_builtin_code``, as model_editor's do). Here
every offset and length is checked against the file before it is followed, and the vector elements read in all
are bounded by a budget proportional to the file size, so any input ends in a GraphSpec or a FormatError in time
linear in its size; reading a ``.tflite`` needs no extra package. tests/interop/test_tflite_import.py checks
this reader against the ``tflite`` package on the four models.
"""

from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NoReturn

import numpy as np

from ..engine import reference
from ..engine.graph import (Concat, Conv, DepthwiseConv, FullyConnected, GraphError, GraphSpec, Logistic, Op, Quant,
                            Quantize, Slice, State, Tensor, Window)
from ..engine.limits import MAX_DIM
from ..engine.metadata import ModelMetadata, value_problem
from ..errors import FormatError
from .tflite import activation_range

__all__ = ["read_tflite", "read_micro_settings", "BUILTIN_NAMES", "MAX_TFLITE_BYTES"]

#: flatbuffers address 32-bit offsets: no valid .tflite flatbuffer is larger.
MAX_TFLITE_BYTES = 2**31 - 1
MAX_SETTINGS_BYTES = 65536
# The detection settings of a microWakeWord model (its JSON's "micro" object) that its metadata keeps.
MICRO_SETTINGS = ("probability_cutoff", "sliding_window_size", "feature_step_size")
SCHEMA_VERSION = 3  # TFLM refuses any other Model.version

#: TFLite's BuiltinOperator names, by code (schema of TensorFlow 2.18).
BUILTIN_NAMES = tuple("""
    ADD AVERAGE_POOL_2D CONCATENATION CONV_2D DEPTHWISE_CONV_2D DEPTH_TO_SPACE DEQUANTIZE EMBEDDING_LOOKUP FLOOR
    FULLY_CONNECTED HASHTABLE_LOOKUP L2_NORMALIZATION L2_POOL_2D LOCAL_RESPONSE_NORMALIZATION LOGISTIC
    LSH_PROJECTION LSTM MAX_POOL_2D MUL RELU RELU_N1_TO_1 RELU6 RESHAPE RESIZE_BILINEAR RNN SOFTMAX
    SPACE_TO_DEPTH SVDF TANH CONCAT_EMBEDDINGS SKIP_GRAM CALL CUSTOM EMBEDDING_LOOKUP_SPARSE PAD
    UNIDIRECTIONAL_SEQUENCE_RNN GATHER BATCH_TO_SPACE_ND SPACE_TO_BATCH_ND TRANSPOSE MEAN SUB DIV SQUEEZE
    UNIDIRECTIONAL_SEQUENCE_LSTM STRIDED_SLICE BIDIRECTIONAL_SEQUENCE_RNN EXP TOPK_V2 SPLIT LOG_SOFTMAX DELEGATE
    BIDIRECTIONAL_SEQUENCE_LSTM CAST PRELU MAXIMUM ARG_MAX MINIMUM LESS NEG PADV2 GREATER GREATER_EQUAL
    LESS_EQUAL SELECT SLICE SIN TRANSPOSE_CONV SPARSE_TO_DENSE TILE EXPAND_DIMS EQUAL NOT_EQUAL LOG SUM SQRT
    RSQRT SHAPE POW ARG_MIN FAKE_QUANT REDUCE_PROD REDUCE_MAX PACK LOGICAL_OR ONE_HOT LOGICAL_AND LOGICAL_NOT
    UNPACK REDUCE_MIN FLOOR_DIV REDUCE_ANY SQUARE ZEROS_LIKE FILL FLOOR_MOD RANGE RESIZE_NEAREST_NEIGHBOR
    LEAKY_RELU SQUARED_DIFFERENCE MIRROR_PAD ABS SPLIT_V UNIQUE CEIL REVERSE_V2 ADD_N GATHER_ND COS WHERE RANK
    ELU REVERSE_SEQUENCE MATRIX_DIAG QUANTIZE MATRIX_SET_DIAG ROUND HARD_SWISH IF WHILE NON_MAX_SUPPRESSION_V4
    NON_MAX_SUPPRESSION_V5 SCATTER_ND SELECT_V2 DENSIFY SEGMENT_SUM BATCH_MATMUL
    PLACEHOLDER_FOR_GREATER_OP_CODES CUMSUM CALL_ONCE BROADCAST_TO RFFT2D CONV_3D IMAG REAL COMPLEX_ABS
    HASHTABLE HASHTABLE_FIND HASHTABLE_IMPORT HASHTABLE_SIZE REDUCE_ALL CONV_3D_TRANSPOSE VAR_HANDLE
    READ_VARIABLE ASSIGN_VARIABLE BROADCAST_ARGS RANDOM_STANDARD_NORMAL BUCKETIZE RANDOM_UNIFORM MULTINOMIAL
    GELU DYNAMIC_UPDATE_SLICE RELU_0_TO_1 UNSORTED_SEGMENT_PROD UNSORTED_SEGMENT_MAX UNSORTED_SEGMENT_SUM ATAN2
    UNSORTED_SEGMENT_MIN SIGN BITCAST BITWISE_XOR RIGHT_SHIFT STABLEHLO_LOGISTIC STABLEHLO_ADD STABLEHLO_DIVIDE
    STABLEHLO_MULTIPLY STABLEHLO_MAXIMUM STABLEHLO_RESHAPE STABLEHLO_CLAMP STABLEHLO_CONCATENATE
    STABLEHLO_BROADCAST_IN_DIM STABLEHLO_CONVOLUTION STABLEHLO_SLICE STABLEHLO_CUSTOM_CALL STABLEHLO_REDUCE
    STABLEHLO_ABS STABLEHLO_AND STABLEHLO_COSINE STABLEHLO_EXPONENTIAL STABLEHLO_FLOOR STABLEHLO_LOG
    STABLEHLO_MINIMUM STABLEHLO_NEGATE STABLEHLO_OR STABLEHLO_POWER STABLEHLO_REMAINDER STABLEHLO_RSQRT
    STABLEHLO_SELECT STABLEHLO_SUBTRACT STABLEHLO_TANH STABLEHLO_SCATTER STABLEHLO_COMPARE STABLEHLO_CONVERT
    STABLEHLO_DYNAMIC_SLICE STABLEHLO_DYNAMIC_UPDATE_SLICE STABLEHLO_PAD STABLEHLO_IOTA STABLEHLO_DOT_GENERAL
    STABLEHLO_REDUCE_WINDOW STABLEHLO_SORT STABLEHLO_WHILE STABLEHLO_GATHER STABLEHLO_TRANSPOSE DILATE
    STABLEHLO_RNG_BIT_GENERATOR REDUCE_WINDOW STABLEHLO_COMPOSITE STABLEHLO_SHIFT_LEFT STABLEHLO_CBRT
""".split())

# The builtin operators kwsint maps (their schema codes).
CONCATENATION, CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, LOGISTIC, RESHAPE = 2, 3, 4, 9, 14, 22
CUSTOM, STRIDED_SLICE, SPLIT_V, QUANTIZE, CALL_ONCE = 32, 45, 102, 114, 129
VAR_HANDLE, READ_VARIABLE, ASSIGN_VARIABLE = 142, 143, 144

# BuiltinOptions union types of those operators' options tables.
OPTIONS_TYPES = {CONV_2D: 1, DEPTHWISE_CONV_2D: 2, FULLY_CONNECTED: 8, CONCATENATION: 10, STRIDED_SLICE: 32,
                 SPLIT_V: 79, CALL_ONCE: 103, VAR_HANDLE: 111}

TENSOR_TYPES = ("FLOAT32 FLOAT16 INT32 UINT8 INT64 STRING BOOL INT16 COMPLEX64 INT8 FLOAT64 COMPLEX128 UINT64 "
                "RESOURCE VARIANT UINT32 UINT16 INT4 BFLOAT16").split()
INT32, UINT8, INT8, RESOURCE = 2, 3, 9, 13
DTYPES = {INT32: np.dtype("<i4"), UINT8: np.dtype("u1"), INT8: np.dtype("i1")}
CODE_RANGES = {INT8: reference.CODE_RANGES["int8"], UINT8: reference.CODE_RANGES["uint8"]}
ACTIVATIONS = ("NONE", "RELU", "RELU_N1_TO_1", "RELU6", "TANH", "SIGN_BIT")
PADDING_BY_CODE = ("same", "valid")  # the schema's Padding enum: SAME = 0, VALID = 1


# --- the flatbuffer reader -------------------------------------------------------------------------------------

_STRUCTS = {fmt: struct.Struct(fmt) for fmt in ("<b", "<B", "<H", "<i", "<I", "<Q")}


class _File:
    """Bounds-checked reads of one flatbuffer; every failure is a FormatError naming ``where`` and a field path."""

    def __init__(self, data: bytes, where: str):
        self.data = data
        self.where = where
        # Vector elements that may still be read: four per byte of the file and some slack. A valid file reads
        # each vector once; a corrupt one whose offsets point many times at one long vector runs out.
        self.budget = 4 * len(data) + 4096

    def fail(self, path: str, expected: str) -> NoReturn:
        raise FormatError(f"{self.where}: {path}: {expected}")

    def need(self, pos: int, size: int, path: str) -> None:
        """Refuse unless bytes [pos, pos + size) lie inside the file."""
        if pos < 0 or pos + size > len(self.data):
            self.fail(path, f"expected {size} bytes at offset {pos}, outside the file of {len(self.data)} bytes "
                            "(truncated or corrupt)")

    def unpack(self, fmt: str, pos: int, path: str):
        layout = _STRUCTS[fmt]
        self.need(pos, layout.size, path)
        return layout.unpack_from(self.data, pos)[0]

    def root(self) -> _Table:
        if len(self.data) < 8:
            self.fail("header", f"expected a TFLite flatbuffer (8 bytes or more), got {len(self.data)} bytes")
        if self.data[4:8] != b"TFL3":
            self.fail("header", f"expected the file identifier b'TFL3' at offset 4, got {bytes(self.data[4:8])!r}")
        return _Table(self, self.unpack("<I", 0, "root offset"), "model")


class _Table:
    """One flatbuffer table: fields by their schema slot (the order of the schema's fields, from 0)."""

    def __init__(self, file: _File, pos: int, path: str):
        self.file, self.pos, self.path = file, pos, path
        vtable = pos - file.unpack("<i", pos, path)
        self.vtable = vtable
        self.vtable_size = file.unpack("<H", vtable, f"{path} (vtable)")
        self.table_size = file.unpack("<H", vtable + 2, f"{path} (vtable)")
        if self.vtable_size < 4 or self.vtable_size % 2:
            file.fail(f"{path} (vtable)", f"expected an even vtable size >= 4, got {self.vtable_size}")
        if self.table_size < 4:
            file.fail(f"{path} (vtable)", f"expected a table size >= 4, got {self.table_size}")
        file.need(vtable, self.vtable_size, f"{path} (vtable)")
        file.need(pos, self.table_size, path)

    def _field(self, slot: int, size: int, name: str) -> int | None:
        """The field's position in the file, or None when the field is absent (its default applies)."""
        if 4 + 2 * slot + 2 > self.vtable_size:
            return None
        offset = self.file.unpack("<H", self.vtable + 4 + 2 * slot, f"{self.path}.{name}")
        if offset == 0:
            return None
        if offset + size > self.table_size:
            self.file.fail(f"{self.path}.{name}", f"expected the field inside its table of {self.table_size} bytes, "
                                                  f"got {size} bytes at {offset}")
        return self.pos + offset

    def scalar(self, slot: int, fmt: str, default, name: str):
        pos = self._field(slot, _STRUCTS[fmt].size, name)
        return default if pos is None else self.file.unpack(fmt, pos, f"{self.path}.{name}")

    def _target(self, slot: int, name: str) -> int | None:
        pos = self._field(slot, 4, name)
        return None if pos is None else pos + self.file.unpack("<I", pos, f"{self.path}.{name}")

    def table(self, slot: int, name: str) -> _Table | None:
        pos = self._target(slot, name)
        return None if pos is None else _Table(self.file, pos, f"{self.path}.{name}")

    def _vector(self, slot: int, itemsize: int, name: str) -> tuple[int, int] | None:
        """(position of the first element, length) of a vector field, both checked against the file."""
        pos = self._target(slot, name)
        if pos is None:
            return None
        path = f"{self.path}.{name}"
        n = self.file.unpack("<I", pos, path)
        if pos + 4 + n * itemsize > len(self.file.data):
            self.file.fail(path, f"expected {n} elements of {itemsize} bytes at offset {pos + 4}, past the end of the "
                                 f"file of {len(self.file.data)} bytes (truncated or corrupt)")
        self.file.budget -= n
        if self.file.budget < 0:
            self.file.fail(path, "expected each vector to be read once, got offsets that point at the same data "
                                 "over and over (a corrupt file)")
        return pos + 4, n

    def array(self, slot: int, dtype: str, name: str) -> np.ndarray | None:
        """A vector of scalars (read-only)."""
        dt = np.dtype(dtype)
        found = self._vector(slot, dt.itemsize, name)
        return None if found is None else np.frombuffer(self.file.data, dt, found[1], found[0])

    def ints(self, slot: int, name: str) -> tuple[int, ...]:
        """A vector of int32 as a tuple (empty when absent)."""
        a = self.array(slot, "<i4", name)
        return () if a is None else tuple(int(v) for v in a)

    def string(self, slot: int, name: str) -> str | None:
        a = self.array(slot, "u1", name)
        return None if a is None else a.tobytes().decode("utf-8", "replace")

    def tables(self, slot: int, name: str) -> list[_Table]:
        found = self._vector(slot, 4, name)
        if found is None:
            return []
        start, n = found
        return [_Table(self.file, start + 4 * i + self.file.unpack("<I", start + 4 * i, f"{self.path}.{name}[{i}]"),
                       f"{self.path}.{name}[{i}]") for i in range(n)]


# --- the parts of the model that kwsint reads ----------------------------------------------------------------


@dataclass(frozen=True)
class _TensorInfo:
    index: int
    name: str
    dtype: int
    shape: tuple[int, ...]
    buffer: int
    scales: np.ndarray | None  # float32
    zero_points: np.ndarray | None  # int64
    axis: int
    custom_quantization: bool
    is_variable: bool
    sparse: bool


@dataclass(frozen=True)
class _OpInfo:
    index: int
    code: int
    name: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options_type: int
    options: _Table | None


@dataclass(frozen=True)
class _Subgraph:
    index: int
    tensors: list[_TensorInfo]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    ops: list[_OpInfo]


def _clean(name: str | None, limit: int = 80) -> str:
    """A tensor or operator name fit for a one-line message: printable, at most ``limit`` characters."""
    text = "".join(c if c.isprintable() else "?" for c in (name or ""))
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _parse(data: bytes, where: str) -> tuple[list[_Subgraph], list[bytes | None]]:
    """The subgraphs (tensors, operators) and the buffers (constant bytes; None: external data) of a .tflite."""
    file = _File(data, where)
    model = file.root()
    version = model.scalar(0, "<I", 0, "version")
    if version != SCHEMA_VERSION:
        file.fail("model.version", f"expected TFLite schema version {SCHEMA_VERSION} (as TFLM), got {version}")
    opcodes = []
    for code in model.tables(1, "operator_codes"):
        deprecated = code.scalar(0, "<b", 0, "deprecated_builtin_code")
        builtin = code.scalar(3, "<i", 0, "builtin_code")
        number = max(deprecated, builtin)  # TFLite's GetBuiltinCode: the larger of the two fields
        if number == CUSTOM:
            name = f"CUSTOM {_clean(code.string(1, 'custom_code'), 40)!r}"
        else:
            name = BUILTIN_NAMES[number] if 0 <= number < len(BUILTIN_NAMES) else f"builtin code {number}"
        opcodes.append((number, name))
    buffers: list[bytes | None] = []
    for buffer in model.tables(4, "buffers"):
        content = buffer.array(0, "u1", "data")
        external = buffer.scalar(1, "<Q", 0, "offset") > 1  # data stored after the flatbuffer (models > 2 GB)
        buffers.append(None if external else b"" if content is None else content.tobytes())
    subgraphs = []
    for s, sg in enumerate(model.tables(2, "subgraphs")):
        tensors = []
        for i, t in enumerate(sg.tables(0, "tensors")):
            q = t.table(4, "quantization")
            scales = zero_points = None
            axis, custom = 0, False
            if q is not None:
                scales = q.array(2, "<f4", "scale")
                zero_points = q.array(3, "<i8", "zero_point")
                custom = q.scalar(4, "<B", 0, "details_type") != 0
                axis = q.scalar(6, "<i", 0, "quantized_dimension")
            tensors.append(_TensorInfo(
                index=i, name=_clean(t.string(3, "name")), dtype=t.scalar(1, "<b", 0, "type"),
                shape=t.ints(0, "shape"), buffer=t.scalar(2, "<I", 0, "buffer"), scales=scales,
                zero_points=zero_points, axis=axis, custom_quantization=custom,
                is_variable=bool(t.scalar(5, "<B", 0, "is_variable")), sparse=t.table(6, "sparsity") is not None))
        ops = []
        for i, o in enumerate(sg.tables(3, "operators")):
            opcode = o.scalar(0, "<I", 0, "opcode_index")
            if opcode >= len(opcodes):
                file.fail(f"subgraph {s} operator {i}", f"expected an opcode_index below {len(opcodes)}, got {opcode}")
            code, name = opcodes[opcode]
            options_type = o.scalar(3, "<B", 0, "builtin_options_type")
            ops.append(_OpInfo(index=i, code=code, name=name, inputs=o.ints(1, "inputs"), outputs=o.ints(2, "outputs"),
                               options_type=options_type, options=o.table(4, "builtin_options")))
        subgraphs.append(_Subgraph(s, tensors, sg.ints(1, "inputs"), sg.ints(2, "outputs"), ops))
    if not subgraphs:
        file.fail("model.subgraphs", "expected at least one subgraph, got none")
    return subgraphs, buffers


# --- mapping onto a GraphSpec ----------------------------------------------------------------------------------


def _var(key: tuple[str, str]) -> str:
    """A resource variable (container, shared_name) as messages name it."""
    return f"'{_clean(key[1], 40)}'"


def _view(shape: tuple[int, ...]) -> tuple[int, int] | None:
    """(frames, channels) of an activation shape [1, F, 1, C], [1, F, C] or [1, C]; None for any other shape."""
    if len(shape) == 4 and shape[0] == 1 and shape[2] == 1:
        return shape[1], shape[3]
    if len(shape) == 3 and shape[0] == 1:
        return shape[1], shape[2]
    if len(shape) == 2 and shape[0] == 1:
        return 1, shape[1]
    return None


def _f32(x: float) -> float:
    return float(np.float32(x))


class _Importer:
    """Maps the main subgraph (and its init subgraph) onto a GraphSpec, op by op in execution order."""

    def __init__(self, subgraphs: list[_Subgraph], buffers: list[bytes | None], where: str):
        self.subgraphs, self.buffers, self.where = subgraphs, buffers, where
        self.sg = subgraphs[0]
        self.tensors: list[Tensor] = []
        self.ops: list[Op] = []
        self.sources: list[_OpInfo] = []  # the TFLite operator each of ops came from
        self.states: list[State] = []
        self.graph_id: dict[int, int] = {}  # TFLite tensor -> GraphSpec tensor (views share one)
        self.flat: set[int] = set()  # TFLite tensors that are [1, F*C] views (F > 1): FULLY_CONNECTED inputs only
        self.handles: dict[int, tuple[str, str]] = {}  # resource tensor -> variable (container, shared_name)
        self.reads: dict[int, tuple[str, str]] = {}  # READ_VARIABLE output -> its variable
        self.windows: dict[int, tuple[str, str]] = {}  # Window output -> its variable
        self.updates: dict[int, tuple[str, str]] = {}  # the state update (last R frames of a window) -> variable
        self.state_of: dict[tuple[str, str], int] = {}
        self.assigned: set[tuple[str, str]] = set()
        self.init: dict[tuple[str, str], tuple[_TensorInfo, np.ndarray]] = {}
        self.init_ran = False
        self.consumers: dict[int, list[_OpInfo]] = {}

    # -- messages --

    def fail(self, op: _OpInfo | None, expected: str, slot: str | None = None, tensor: int | None = None,
             sg: _Subgraph | None = None) -> NoReturn:
        """Raise the FormatError naming the operator, the tensor (by the op's ``slot``) and the expectation."""
        sg = sg or self.sg
        parts = [self.where]
        if op is not None:
            parts.append(("" if sg.index == 0 else f"subgraph {sg.index} ") + f"operator {op.index} {op.name}")
        if tensor is not None:
            t = f"tensor {tensor}"
            if 0 <= tensor < len(sg.tensors):
                t += f" '{sg.tensors[tensor].name}'"
            parts.append(f"{slot} ({t})" if slot else t)
        elif slot:
            parts.append(slot)
        raise FormatError(": ".join(parts + [expected]))

    # -- tensors --

    def _tensor(self, op: _OpInfo | None, slot: str, index: int, sg: _Subgraph | None = None) -> _TensorInfo:
        sg = sg or self.sg
        if not 0 <= index < len(sg.tensors):
            self.fail(op, f"expected a tensor index below {len(sg.tensors)}, got {index}", slot, sg=sg)
        return sg.tensors[index]

    def _input(self, op: _OpInfo, k: int) -> _TensorInfo:
        if k >= len(op.inputs):
            self.fail(op, f"expected at least {k + 1} inputs, got {len(op.inputs)}")
        return self._tensor(op, f"input {k}", op.inputs[k])

    def _counts(self, op: _OpInfo, inputs: tuple[int, ...], outputs: tuple[int, ...]) -> None:
        if len(op.inputs) not in inputs or len(op.outputs) not in outputs:
            want = lambda n: " or ".join(map(str, n))  # noqa: E731
            self.fail(op, f"expected {want(inputs)} inputs and {want(outputs)} outputs, "
                          f"got {len(op.inputs)} and {len(op.outputs)}")

    def _has_data(self, t: _TensorInfo) -> bool:
        """Whether the tensor is a constant: its buffer holds data (or lies outside the flatbuffer, or its index is
        out of range: neither an activation nor a readable constant)."""
        if not 0 <= t.buffer < len(self.buffers):
            return True
        data = self.buffers[t.buffer]
        return data is None or len(data) > 0

    def _quant(self, op: _OpInfo, slot: str, t: _TensorInfo, sg: _Subgraph | None = None,
               channels: tuple[int, int] | None = None, zero: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Check a tensor's affine quantization: per tensor, or per channel with ``channels`` = (axis, count);
        finite positive scales, zero points in the type's range (0 when ``zero``). Returns (scales, zps)."""
        def bad(expected: str) -> NoReturn:
            self.fail(op, expected, slot, t.index, sg)

        if t.scales is None or t.zero_points is None or len(t.scales) == 0:
            bad("expected affine quantization (scale and zero_point), got none")
        if t.custom_quantization:
            bad("expected affine quantization, got custom quantization details")
        n = len(t.scales)
        if len(t.zero_points) != n:
            bad(f"expected as many zero points as scales ({n}), got {len(t.zero_points)}")
        if n != 1:
            if channels is None:
                bad(f"expected per-tensor quantization (1 scale), got {n} scales")
            axis, count = channels
            if t.axis != axis or n != count:
                bad(f"expected 1 scale, or {count} scales on quantized_dimension {axis}, got {n} on {t.axis}")
        if not np.all(np.isfinite(t.scales) & (t.scales > 0)):
            bad(f"expected finite positive scales, got {t.scales[~(np.isfinite(t.scales) & (t.scales > 0))][0]!r}")
        lo, hi = (0, 0) if zero else CODE_RANGES.get(t.dtype, (-(2**31), 2**31 - 1))
        if np.any((t.zero_points < lo) | (t.zero_points > hi)):
            z = t.zero_points[(t.zero_points < lo) | (t.zero_points > hi)][0]
            bad(f"expected zero points {'0' if zero else f'in {lo}..{hi}'}, got {int(z)}")
        return t.scales, t.zero_points

    def _activation_quant(self, op: _OpInfo | None, slot: str, t: _TensorInfo, sg: _Subgraph | None = None) -> Quant:
        scales, zps = self._quant(op, slot, t, sg)
        return Quant(_f32(scales[0]), int(zps[0]))

    def _view_of(self, op: _OpInfo, slot: str, t: _TensorInfo, sg: _Subgraph | None = None) -> tuple[int, int]:
        v = _view(t.shape)
        if v is None or min(t.shape) < 1:
            self.fail(op, f"expected an activation of shape [1, frames, 1, channels], [1, frames, channels] or "
                          f"[1, channels], got {list(t.shape)}", slot, t.index, sg)
        if max(v) > MAX_DIM:
            self.fail(op, f"expected at most {MAX_DIM} frames and channels (kwsint's limit), got {list(t.shape)}",
                      slot, t.index, sg)
        return v

    def _read(self, op: _OpInfo, k: int, flat_ok: bool = False) -> tuple[_TensorInfo, int]:
        """Input k of op, an int8 activation some earlier op wrote (or the graph input): (info, GraphSpec id)."""
        t = self._input(op, k)
        slot = f"input {k}"
        if t.index in self.reads or t.index in self.updates:
            self.fail(op, "expected an activation; a variable's value can only go through CONCATENATION (axis 1) "
                          "and its update, the last frames, only to ASSIGN_VARIABLE", slot, t.index)
        if t.index not in self.graph_id:
            self.fail(op, "expected an activation written by an earlier operator (or the graph input)", slot, t.index)
        if t.index in self.flat and not flat_ok:
            self.fail(op, "expected a [1, frames, 1, channels] activation; a RESHAPE to [1, frames * channels] can "
                          "only feed FULLY_CONNECTED", slot, t.index)
        if t.dtype != INT8:
            self.fail(op, f"expected INT8, got {self._type(t)}", slot, t.index)
        return t, self.graph_id[t.index]

    def _write(self, op: _OpInfo, k: int, dtypes: tuple[int, ...] = (INT8,)) -> tuple[_TensorInfo, Tensor]:
        """Output k of op, a new activation: its info and the GraphSpec Tensor describing it (not yet added)."""
        if k >= len(op.outputs):
            self.fail(op, f"expected at least {k + 1} outputs, got {len(op.outputs)}")
        slot = f"output {k}"
        t = self._tensor(op, slot, op.outputs[k])
        if t.dtype not in dtypes:
            self.fail(op, f"expected {' or '.join(TENSOR_TYPES[d] for d in dtypes)}, got {self._type(t)}", slot,
                      t.index)
        self._plain(op, slot, t)
        if t.index in self.graph_id or t.index in self.reads or t.index in self.updates:
            self.fail(op, "expected a tensor no other operator writes", slot, t.index)
        frames, channels = self._view_of(op, slot, t)
        dtype = "uint8" if t.dtype == UINT8 else "int8"
        return t, Tensor(frames, channels, self._activation_quant(op, slot, t), dtype)

    def _plain(self, op: _OpInfo, slot: str, t: _TensorInfo, sg: _Subgraph | None = None) -> None:
        """An activation: no constant data, not an old-style variable tensor, dense."""
        if self._has_data(t):
            self.fail(op, "expected an activation, got a constant", slot, t.index, sg)
        if t.is_variable or t.sparse:
            self.fail(op, "expected a plain activation, got a variable or sparse tensor", slot, t.index, sg)

    def _add(self, t: _TensorInfo, tensor: Tensor) -> int:
        self.tensors.append(tensor)
        self.graph_id[t.index] = len(self.tensors) - 1
        return len(self.tensors) - 1

    def _type(self, t: _TensorInfo) -> str:
        return TENSOR_TYPES[t.dtype] if 0 <= t.dtype < len(TENSOR_TYPES) else f"type {t.dtype}"

    def _const(self, op: _OpInfo, k: int, dtype: int, sg: _Subgraph | None = None) -> tuple[_TensorInfo, np.ndarray]:
        """Input k of op as a constant of ``dtype``, shaped as declared."""
        sg = sg or self.sg
        slot = f"input {k}"
        if k >= len(op.inputs):
            self.fail(op, f"expected at least {k + 1} inputs, got {len(op.inputs)}", sg=sg)
        t = self._tensor(op, slot, op.inputs[k], sg)
        if t.dtype != dtype:
            self.fail(op, f"expected a constant of type {TENSOR_TYPES[dtype]}, got {self._type(t)}", slot, t.index, sg)
        if not 0 <= t.buffer < len(self.buffers):
            self.fail(op, f"expected a buffer index below {len(self.buffers)}, got {t.buffer}", slot, t.index, sg)
        data = self.buffers[t.buffer]
        if data is None:
            self.fail(op, "expected the constant's data inside the flatbuffer, got external data", slot, t.index, sg)
        if not data:
            self.fail(op, "expected a constant (a tensor with data)", slot, t.index, sg)
        if t.sparse or any(d < 0 for d in t.shape):
            self.fail(op, f"expected a dense constant of shape >= 0, got {list(t.shape)}", slot, t.index, sg)
        count = math.prod(t.shape)
        size = DTYPES[dtype].itemsize
        if len(data) != count * size:
            self.fail(op, f"expected {count * size} bytes of data for shape {list(t.shape)}, got {len(data)}", slot,
                      t.index, sg)
        return t, np.frombuffer(data, DTYPES[dtype]).reshape(t.shape)

    def _options(self, op: _OpInfo) -> _Table:
        want = OPTIONS_TYPES[op.code]
        if op.options_type != want or op.options is None:
            self.fail(op, f"expected builtin options of union type {want}, got type {op.options_type}")
        return op.options

    def _same_quant(self, op: _OpInfo, slot: str, t: _TensorInfo, want: Quant, what: str) -> None:
        got = self._activation_quant(op, slot, t)
        if got != want:
            self.fail(op, f"expected the quantization of {what} (scale {want.scale:.9g}, zero point "
                          f"{want.zero_point}), got scale {got.scale:.9g}, zero point {got.zero_point}", slot, t.index)

    # -- the graph --

    def run(self) -> GraphSpec:
        sg = self.sg
        if len(self.subgraphs) > 2:
            self.fail(None, f"expected the main subgraph and at most one init subgraph, got {len(self.subgraphs)} "
                            "subgraphs")
        if len(sg.inputs) != 1 or len(sg.outputs) != 1:
            self.fail(None, f"expected one input and one output, got {len(sg.inputs)} and {len(sg.outputs)}",
                      "main subgraph")
        t = self._tensor(None, "main subgraph input", sg.inputs[0])
        if t.dtype != INT8:
            self.fail(None, f"expected INT8, got {self._type(t)}", "main subgraph input", t.index)
        self._plain(None, "main subgraph input", t)
        frames, channels = self._view_of(None, "main subgraph input", t)
        graph_input = self._add(t, Tensor(frames, channels, self._activation_quant(None, "main subgraph input", t)))
        for op in sg.ops:
            for i in op.inputs:
                self.consumers.setdefault(i, []).append(op)
        for op in sg.ops:
            handler = self.HANDLERS.get(op.code)
            if handler is None:
                self.fail(op, "expected one of the operators kwsint imports (" + ", ".join(
                    BUILTIN_NAMES[c] for c in sorted(self.HANDLERS)) + ")")
            handler(self, op)
        for key in self.state_of:
            if key not in self.assigned:
                self.fail(None, f"expected every variable read by main to be assigned its last frames, got "
                                f"{_var(key)} never assigned")
        if set(self.init) != set(self.state_of):
            unused = sorted(_clean(k[1], 40) for k in set(self.init) - set(self.state_of))
            self.fail(None, f"expected every variable the init subgraph assigns to be read by main, got {unused[:4]} "
                            "unread")
        out = self._tensor(None, "main subgraph output", sg.outputs[0])
        if out.index not in self.graph_id or out.index in self.flat or self.graph_id[out.index] == graph_input:
            self.fail(None, "expected an activation written by an operator", "main subgraph output", out.index)
        try:
            return GraphSpec(tuple(self.tensors), tuple(self.states), tuple(self.ops), graph_input,
                             self.graph_id[out.index])
        except GraphError as e:  # kwsint's own limits (docs/arithmetic.md 11), beyond TFLM's checks
            self.fail(None if e.op is None else self.sources[e.op], f"beyond kwsint's limits: {e}")

    def _emit(self, op: _OpInfo, graph_op: Op) -> None:
        """Append ``graph_op``, made from the TFLite operator ``op`` (named if the graph's checks refuse it)."""
        self.ops.append(graph_op)
        self.sources.append(op)

    # -- state --

    def _call_once(self, op: _OpInfo) -> None:
        self._counts(op, (0,), (0,))
        index = self._options(op).scalar(0, "<i", 0, "init_subgraph_index")
        if self.init_ran or index != 1 or len(self.subgraphs) != 2:
            self.fail(op, f"expected one CALL_ONCE of subgraph 1 (of {len(self.subgraphs)}), got subgraph {index}")
        self.init_ran = True
        init = self.subgraphs[1]
        if init.inputs or init.outputs:
            self.fail(None, "expected an init subgraph without inputs and outputs", f"subgraph {init.index}")
        handles: dict[int, tuple[str, str]] = {}
        for o in init.ops:
            if o.code == VAR_HANDLE:
                self._counts(o, (0,), (1,))
                h = self._tensor(o, "output 0", o.outputs[0], init)
                handles[h.index] = self._variable(o, init)
            elif o.code == ASSIGN_VARIABLE:
                self._counts(o, (2,), (0,))
                h = self._tensor(o, "input 0", o.inputs[0], init)
                if h.index not in handles:
                    self.fail(o, "expected a VAR_HANDLE output", "input 0", h.index, init)
                value, codes = self._const(o, 1, INT8, init)
                key = handles[h.index]
                if key in self.init:
                    self.fail(o, f"expected one initial value per variable, got a second for {_var(key)}", "input 1",
                              value.index, init)
                self._quant(o, "input 1", value, init)
                self.init[key] = (value, codes)
            else:
                self.fail(o, "expected only VAR_HANDLE and ASSIGN_VARIABLE of constants in the init subgraph", sg=init)

    def _variable(self, op: _OpInfo, sg: _Subgraph) -> tuple[str, str]:
        options = self._options(op)
        key = (options.string(0, "container") or "", options.string(1, "shared_name") or "")
        t = self._tensor(op, "output 0", op.outputs[0], sg)
        if t.dtype != RESOURCE:
            self.fail(op, f"expected RESOURCE, got {self._type(t)}", "output 0", t.index, sg)
        return key

    def _var_handle(self, op: _OpInfo) -> None:
        self._counts(op, (0,), (1,))
        key = self._variable(op, self.sg)
        if op.outputs[0] in self.handles:
            self.fail(op, "expected a tensor no other operator writes", "output 0", op.outputs[0])
        self.handles[op.outputs[0]] = key

    def _handle(self, op: _OpInfo) -> tuple[str, str]:
        h = self._input(op, 0)
        if h.index not in self.handles:
            self.fail(op, "expected a VAR_HANDLE output", "input 0", h.index)
        return self.handles[h.index]

    def _read_variable(self, op: _OpInfo) -> None:
        self._counts(op, (1,), (1,))
        key = self._handle(op)
        if key not in self.init:
            self.fail(op, f"expected a variable initialised by the init subgraph (CALL_ONCE first), got {_var(key)}",
                      "input 0", op.inputs[0])
        if key in self.state_of:
            self.fail(op, f"expected each variable read once, got a second read of {_var(key)}", "input 0",
                      op.inputs[0])
        t, tensor = self._write(op, 0)
        init_tensor, codes = self.init[key]
        if tuple(init_tensor.shape) != tuple(t.shape):
            self.fail(op, f"expected the shape of the variable's initial value {list(init_tensor.shape)}, "
                          f"got {list(t.shape)}", "output 0", t.index)
        self._same_quant(op, "output 0", t, self._activation_quant(None, "", init_tensor, self.subgraphs[1]),
                         "the variable's initial value")
        consumers = self.consumers.get(t.index, [])
        if len(consumers) != 1 or consumers[0].code != CONCATENATION:
            self.fail(op, "expected the value read to feed exactly one CONCATENATION (axis 1)", "output 0", t.index)
        self.state_of[key] = len(self.states)
        init = np.array(codes, dtype=np.int8).reshape(tensor.frames, tensor.channels)
        self.states.append(State(tensor.frames, tensor.channels, tensor.quant, init))
        self.reads[t.index] = key

    def _assign_variable(self, op: _OpInfo) -> None:
        self._counts(op, (2,), (0,))
        key = self._handle(op)
        value = self._input(op, 1)
        if self.updates.get(value.index) != key:
            self.fail(op, f"expected the last frames of the window of {_var(key)} (READ_VARIABLE -> CONCATENATION -> "
                          "STRIDED_SLICE)", "input 1", value.index)
        self.assigned.add(key)

    # -- data movement --

    def _concatenation(self, op: _OpInfo) -> None:
        if not op.inputs or len(op.outputs) != 1:
            self.fail(op, f"expected 1 or more inputs and 1 output, got {len(op.inputs)} and {len(op.outputs)}")
        options = self._options(op)
        activation = options.scalar(1, "<b", 0, "fused_activation_function")
        if activation != 0:
            self.fail(op, f"expected fused activation NONE (as TFLM), got {self._activation(activation)}")
        axis = options.scalar(0, "<i", 0, "axis")
        if op.inputs[0] in self.reads:
            self._window(op, axis)
            return
        out, tensor = self._write(op, 0)
        rank = len(out.shape)
        if axis not in (rank - 1, -1):
            self.fail(op, f"expected axis -1 (channels) or a [variable ; new frames] window on axis 1, got {axis}",
                      "output 0", out.index)
        ids, channels = [], 0
        for k in range(len(op.inputs)):
            t, gid = self._read(op, k)
            if len(t.shape) != rank or self.tensors[gid].frames != tensor.frames:
                self.fail(op, f"expected {tensor.frames} frames of rank {rank}, got {list(t.shape)}", f"input {k}",
                          t.index)
            self._same_quant(op, f"input {k}", t, tensor.quant, "the output")
            channels += self.tensors[gid].channels
            ids.append(gid)
        if channels != tensor.channels:
            self.fail(op, f"expected {channels} channels (the inputs'), got {tensor.channels}", "output 0", out.index)
        self._emit(op, Concat(tuple(ids), self._add(out, tensor)))

    def _window(self, op: _OpInfo, axis: int) -> None:
        self._counts(op, (2,), (1,))
        key = self.reads.pop(op.inputs[0])
        state = self.states[self.state_of[key]]
        out, tensor = self._write(op, 0)
        read = self._tensor(op, "input 0", op.inputs[0])
        new, gid = self._read(op, 1)
        if axis not in (1, -3) or len(read.shape) != 4 or len(new.shape) != 4 or len(out.shape) != 4:
            self.fail(op, f"expected [variable ; new frames] of rank 4 on axis 1, got axis {axis}", "input 1",
                      new.index)
        frames = state.frames + self.tensors[gid].frames
        if (tensor.frames, tensor.channels) != (frames, state.channels) or self.tensors[gid].channels != state.channels:
            self.fail(op, f"expected {state.frames} + {self.tensors[gid].frames} frames of {state.channels} channels, "
                          f"got inputs {list(read.shape)}, {list(new.shape)} and output {list(out.shape)}", "output 0",
                      out.index)
        self._same_quant(op, "input 1", new, state.quant, "the variable")
        self._same_quant(op, "output 0", out, state.quant, "the variable")
        self._emit(op, Window(self.state_of[key], gid, self._add(out, tensor)))
        self.windows[out.index] = key

    def _strided_slice(self, op: _OpInfo) -> None:
        self._counts(op, (4,), (1,))
        options = self._options(op)
        masks = [options.scalar(k, "<i", 0, n) for k, n in enumerate(("begin_mask", "end_mask", "ellipsis_mask",
                                                                         "new_axis_mask", "shrink_axis_mask"))]
        if any(masks[2:]) or options.scalar(5, "<B", 0, "offset"):
            self.fail(op, f"expected ellipsis, new_axis and shrink_axis masks 0 and offset false, got masks "
                          f"{masks[2:]}")
        t, gid = self._read(op, 0)
        rank = len(t.shape)
        begin, end, strides = (self._const(op, k, INT32)[1].reshape(-1) for k in (1, 2, 3))
        if not len(begin) == len(end) == len(strides) == rank or np.any(strides != 1):
            self.fail(op, f"expected begin, end and strides of {rank} values, strides 1, got strides "
                          f"{strides.tolist()}", "input 3", op.inputs[3])
        ranges = []
        for axis, dim in enumerate(t.shape):  # StartForAxis / StopForAxis of TFLite's strided_slice_logic.h
            start = 0 if masks[0] >> axis & 1 else int(begin[axis]) + (dim if begin[axis] < 0 else 0)
            stop = dim if masks[1] >> axis & 1 else int(end[axis]) + (dim if end[axis] < 0 else 0)
            ranges.append((min(max(start, 0), dim), min(max(stop, 0), dim)))
        shape = [max(stop - start, 0) for start, stop in ranges]
        out, tensor = self._write(op, 0)
        time, chan = 1, rank - 1
        src = self.tensors[gid]
        if rank == 2 or ranges[time][1] != src.frames or any(
                ranges[a] != (0, t.shape[a]) for a in range(rank) if a not in (time, chan)):
            self.fail(op, f"expected the last frames (and a channel range) of a [1, frames, 1, channels] tensor, got "
                          f"[start, stop) per axis {ranges}", "input 0", t.index)
        if list(out.shape) != shape or min(shape) < 1:
            self.fail(op, f"expected output shape {shape}", "output 0", out.index)
        self._same_quant(op, "output 0", out, src.quant, "the input")
        frames = shape[time]
        if t.index in self.windows and self._is_update(op):  # READ -> CONCATENATION -> here -> ASSIGN_VARIABLE
            key = self.windows[t.index]
            state = self.states[self.state_of[key]]
            if (frames, shape[chan]) != (state.frames, state.channels):
                self.fail(op, f"expected the last {state.frames} frames of all {state.channels} channels for the "
                              f"variable {_var(key)}, got {frames} frames of {shape[chan]}", "output 0", out.index)
            self.updates[out.index] = key  # not a GraphSpec tensor: the Window op keeps the state's last frames
            return
        self._emit(op, Slice(gid, frames, ranges[chan][0], shape[chan], self._add(out, tensor)))

    def _is_update(self, op: _OpInfo) -> bool:
        consumers = self.consumers.get(op.outputs[0], [])
        return len(consumers) == 1 and consumers[0].code == ASSIGN_VARIABLE

    def _split_v(self, op: _OpInfo) -> None:
        if len(op.inputs) != 3 or not op.outputs:
            self.fail(op, f"expected 3 inputs and 1 or more outputs, got {len(op.inputs)} and {len(op.outputs)}")
        num_splits = self._options(op).scalar(0, "<i", 0, "num_splits")
        t, gid = self._read(op, 0)
        sizes = self._const(op, 1, INT32)[1].reshape(-1)
        axis = self._const(op, 2, INT32)[1].reshape(-1)
        rank = len(t.shape)
        if len(axis) != 1 or int(axis[0]) not in (-1, rank - 1) or rank == 2:
            self.fail(op, f"expected the channel axis (-1 or {rank - 1}) of a [1, frames, 1, channels] tensor, got "
                          f"{axis.tolist()}", "input 2", op.inputs[2])
        src = self.tensors[gid]
        if num_splits != len(op.outputs) or len(sizes) != len(op.outputs):
            self.fail(op, f"expected num_splits and size_splits for {len(op.outputs)} outputs, got {num_splits} and "
                          f"{sizes.tolist()}", "input 1", op.inputs[1])
        start = 0
        for k in range(len(op.outputs)):
            out, tensor = self._write(op, k)
            if out.shape[:-1] != t.shape[:-1] or len(out.shape) != rank or sizes[k] not in (-1, out.shape[-1]):
                self.fail(op, f"expected {list(t.shape[:-1]) + [int(sizes[k])]}", f"output {k}", out.index)
            self._same_quant(op, f"output {k}", out, src.quant, "the input")
            self._emit(op, Slice(gid, src.frames, start, tensor.channels, self._add(out, tensor)))
            start += tensor.channels
        if start != src.channels or list(sizes).count(-1) > 1:
            self.fail(op, f"expected splits that add up to the input's {src.channels} channels, got size_splits "
                          f"{sizes.tolist()}", "input 1", op.inputs[1])

    def _reshape(self, op: _OpInfo) -> None:
        self._counts(op, (1, 2), (1,))
        t, gid = self._read(op, 0)
        out = self._tensor(op, "output 0", op.outputs[0])
        if out.dtype != INT8:
            self.fail(op, f"expected INT8, got {self._type(out)}", "output 0", out.index)
        self._plain(op, "output 0", out)
        if out.index in self.graph_id or out.index in self.reads or out.index in self.updates:
            self.fail(op, "expected a tensor no other operator writes", "output 0", out.index)
        src = self.tensors[gid]
        view = self._view_of(op, "output 0", out)
        flat = len(out.shape) == 2 and out.shape[1] == src.frames * src.channels
        if view != (src.frames, src.channels) and not flat:
            self.fail(op, f"expected the same {src.frames} frames x {src.channels} channels, or [1, "
                          f"{src.frames * src.channels}] for FULLY_CONNECTED, got {list(out.shape)}", "output 0",
                      out.index)
        self._same_quant(op, "output 0", out, src.quant, "the input")
        self.graph_id[out.index] = gid  # a view: the same GraphSpec tensor
        if flat and src.frames > 1:
            self.flat.add(out.index)

    # -- arithmetic --

    def _activation(self, code: int) -> str:
        return ACTIVATIONS[code] if 0 <= code < len(ACTIVATIONS) else f"activation {code}"

    def _clamp(self, op: _OpInfo, code: int, out: Tensor) -> tuple[int, int]:
        name = self._activation(code)
        if name not in ("NONE", "RELU", "RELU_N1_TO_1", "RELU6"):
            self.fail(op, f"expected fused activation NONE, RELU, RELU_N1_TO_1 or RELU6, got {name}")
        try:
            return activation_range(name, output_scale=out.quant.scale, output_zero_point=out.quant.zero_point,
                                    act_bits=8)
        except ValueError as e:
            self.fail(op, f"expected a fused activation TFLM can prepare, got {e}", "output 0", op.outputs[0])

    def _weights(self, op: _OpInfo, channels: tuple[int, int], bias_count: int
                 ) -> tuple[_TensorInfo, np.ndarray, np.ndarray, _TensorInfo, np.ndarray]:
        """The filter (int8, zero points 0, no -128), its scales (per channel on ``channels`` = (axis, count), or
        per tensor) and the int32 bias of ``bias_count`` values."""
        if len(op.inputs) != 3:
            self.fail(op, f"expected 3 inputs (input, filter, bias), got {len(op.inputs)}")
        f, w = self._const(op, 1, INT8)
        scales, _ = self._quant(op, "input 1", f, channels=channels, zero=True)
        if w.size and w.min() == -128:
            self.fail(op, "expected weight codes in -127..127 (kwsint's symmetric weight grid), got -128", "input 1",
                      f.index)
        if op.inputs[2] == -1:
            self.fail(op, "expected a bias tensor, got none (-1)", "input 2")
        b, bias = self._const(op, 2, INT32)
        if bias.size != bias_count or len(b.shape) != 1:
            self.fail(op, f"expected a bias of shape [{bias_count}], got {list(b.shape)}", "input 2", b.index)
        return f, w, np.array(scales, np.float32), b, np.array(bias, np.int32)

    def _conv_shape(self, op: _OpInfo, options: _Table, kernel: int, src: Tensor, depthwise: bool
                    ) -> tuple[int, int, str, int]:
        """(stride, dilation, padding, output frames) of a K x 1 convolution, checked as TFLM computes them."""
        slots = (0, 1, 2, 5, 6) if depthwise else (0, 1, 2, 4, 5)
        padding, stride_w, stride_h, dilation_w, dilation_h = (
            options.scalar(slot, fmt, default, name) for slot, fmt, default, name in zip(
                slots, ("<b", "<i", "<i", "<i", "<i"), (0, 0, 0, 1, 1),
                ("padding", "stride_w", "stride_h", "dilation_w_factor", "dilation_h_factor")))
        if padding not in (0, 1) or stride_w != 1 or dilation_w != 1 or not 1 <= stride_h <= MAX_DIM \
                or not 1 <= dilation_h <= MAX_DIM:
            self.fail(op, f"expected padding SAME or VALID, strides and dilations >= 1 in time and 1 across, got "
                          f"padding {padding}, stride {stride_h} x {stride_w}, dilation {dilation_h} x {dilation_w}")
        span = (kernel - 1) * dilation_h + 1
        frames = (src.frames + stride_h - 1) // stride_h if padding == 0 else (src.frames - span + stride_h) // stride_h
        if frames < 1:
            self.fail(op, f"expected an input of at least {span} frames for the kernel, got {src.frames}", "input 0",
                      op.inputs[0])
        return stride_h, dilation_h, PADDING_BY_CODE[padding], frames

    def _conv_2d(self, op: _OpInfo) -> None:
        self._counts(op, (2, 3), (1,))
        options = self._options(op)
        t, gid = self._read(op, 0)
        src = self.tensors[gid]
        f = self._input(op, 1)
        if len(f.shape) != 4 or f.shape[2] != 1 or f.shape[3] != src.channels or min(f.shape) < 1 \
                or len(t.shape) != 4:
            self.fail(op, f"expected a [Cout, K, 1, {src.channels}] filter over a [1, frames, 1, channels] input "
                          "(K x 1 kernels)", "input 1", f.index)
        cout, kernel = f.shape[0], f.shape[1]
        _, w, scales, _, bias = self._weights(op, (0, cout), cout)
        if options.scalar(6, "<b", 0, "quantized_bias_type") not in (0, INT32):
            self.fail(op, "expected quantized_bias_type INT32")
        stride, dilation, padding, frames = self._conv_shape(op, options, kernel, src, depthwise=False)
        out, tensor = self._write(op, 0)
        if list(out.shape) != [1, frames, 1, cout]:
            self.fail(op, f"expected output shape {[1, frames, 1, cout]}", "output 0", out.index)
        lo, hi = self._clamp(op, options.scalar(3, "<b", 0, "fused_activation_function"), tensor)
        self._emit(op, Conv(gid, np.array(w[:, :, 0, :], np.int8), bias, scales, stride, dilation, padding, lo, hi,
                             self._add(out, tensor)))

    def _depthwise_conv_2d(self, op: _OpInfo) -> None:
        self._counts(op, (2, 3), (1,))
        options = self._options(op)
        t, gid = self._read(op, 0)
        src = self.tensors[gid]
        multiplier = options.scalar(3, "<i", 0, "depth_multiplier")
        if multiplier != 1:
            self.fail(op, f"expected depth_multiplier 1, got {multiplier}")
        f = self._input(op, 1)
        if len(f.shape) != 4 or f.shape[0] != 1 or f.shape[2] != 1 or f.shape[3] != src.channels or f.shape[1] < 1 \
                or len(t.shape) != 4:
            self.fail(op, f"expected a [1, K, 1, {src.channels}] filter over a [1, frames, 1, channels] input "
                          "(K x 1 kernels)", "input 1", f.index)
        kernel = f.shape[1]
        _, w, scales, _, bias = self._weights(op, (3, src.channels), src.channels)
        stride, dilation, padding, frames = self._conv_shape(op, options, kernel, src, depthwise=True)
        out, tensor = self._write(op, 0)
        if list(out.shape) != [1, frames, 1, src.channels]:
            self.fail(op, f"expected output shape {[1, frames, 1, src.channels]}", "output 0", out.index)
        lo, hi = self._clamp(op, options.scalar(4, "<b", 0, "fused_activation_function"), tensor)
        self._emit(op, DepthwiseConv(gid, np.array(w[0, :, 0, :], np.int8), bias, scales, stride, dilation, padding,
                                      lo, hi, self._add(out, tensor)))

    def _fully_connected(self, op: _OpInfo) -> None:
        self._counts(op, (2, 3), (1,))
        options = self._options(op)
        code, weights_format, keep_dims, asymmetric, bias_type = (
            options.scalar(k, fmt, 0, name) for k, fmt, name in zip(
                range(5), ("<b", "<b", "<B", "<B", "<b"), ("fused_activation_function", "weights_format",
                                                        "keep_num_dims", "asymmetric_quantize_inputs",
                                                        "quantized_bias_type")))
        if weights_format != 0 or keep_dims or asymmetric or bias_type not in (0, INT32):
            self.fail(op, f"expected weights_format DEFAULT, keep_num_dims and asymmetric_quantize_inputs false, "
                          f"quantized_bias_type INT32, got {weights_format}, {keep_dims}, {asymmetric}, {bias_type}")
        t, gid = self._read(op, 0, flat_ok=True)
        src = self.tensors[gid]
        f = self._input(op, 1)
        depth = src.frames * src.channels
        if len(f.shape) != 2 or f.shape[1] != depth or f.shape[0] < 1:
            self.fail(op, f"expected a [N, {depth}] filter (the input's frames x channels)", "input 1", f.index)
        n = f.shape[0]
        f, w, scales, b, bias = self._weights(op, (0, n), n)
        out, tensor = self._write(op, 0)
        if list(out.shape) != [1, n]:
            self.fail(op, f"expected output shape {[1, n]}", "output 0", out.index)
        if len(scales) == 1:  # TFLM's GetQuantizedConvolutionMultipler: the bias scale must match s_in * s_w
            bias_scale = float(b.scales[0]) if b.scales is not None and len(b.scales) else 0.0
            product = float(src.quant.scale) * float(scales[0])
            if not abs(product - bias_scale) / float(tensor.quant.scale) <= 0.02:
                self.fail(op, f"expected a bias scale within 0.02 output steps of input scale x filter scale "
                              f"({product:.9g}), as TFLM's Prepare requires, got {bias_scale:.9g}", "input 2", b.index)
        lo, hi = self._clamp(op, code, tensor)
        self._emit(op, FullyConnected(gid, np.array(w, np.int8), bias, scales, lo, hi, self._add(out, tensor)))

    def _logistic(self, op: _OpInfo) -> None:
        self._counts(op, (1,), (1,))
        t, gid = self._read(op, 0)
        out, tensor = self._write(op, 0)
        self._same_shape(op, t, out)
        if tensor.quant != Quant(1 / 256, -128):
            self.fail(op, f"expected output scale 1/256 and zero point -128 (TFLM's int8 LOGISTIC), got scale "
                          f"{tensor.quant.scale:.9g}, zero point {tensor.quant.zero_point}", "output 0", out.index)
        scale = self.tensors[gid].quant.scale
        # TFLM's input_multiplier is round(q * 2^31), q = frexp(scale * 2^27); it must fit in int32 (q * 2^31 is an
        # integer here: a float32 scale has 24 significant bits, so no tie to round).
        q, _ = math.frexp(scale * 2.0**27)
        if scale < 2.0**-28 or round(q * 2**31) == 2**31:
            self.fail(op, f"expected an input scale >= 2^-28 whose multiplier fits in int32 (TFLM's arithmetic is "
                          f"undefined otherwise), got {scale:.9g}", "input 0", t.index)
        self._emit(op, Logistic(gid, self._add(out, tensor)))

    def _quantize(self, op: _OpInfo) -> None:
        self._counts(op, (1,), (1,))
        t, gid = self._read(op, 0)
        out, tensor = self._write(op, 0, dtypes=(INT8, UINT8))
        self._same_shape(op, t, out)
        self._emit(op, Quantize(gid, self._add(out, tensor)))

    def _same_shape(self, op: _OpInfo, t: _TensorInfo, out: _TensorInfo) -> None:
        if tuple(out.shape) != tuple(t.shape):
            self.fail(op, f"expected the input's shape {list(t.shape)}, got {list(out.shape)}", "output 0", out.index)

    HANDLERS = {CALL_ONCE: _call_once, VAR_HANDLE: _var_handle, READ_VARIABLE: _read_variable,
                ASSIGN_VARIABLE: _assign_variable, CONCATENATION: _concatenation, STRIDED_SLICE: _strided_slice,
                SPLIT_V: _split_v, RESHAPE: _reshape, CONV_2D: _conv_2d, DEPTHWISE_CONV_2D: _depthwise_conv_2d,
                FULLY_CONNECTED: _fully_connected, LOGISTIC: _logistic, QUANTIZE: _quantize}


# --- public functions ------------------------------------------------------------------------------------------


def _load(source: str | os.PathLike | bytes | bytearray | memoryview, name: str | None, limit: int,
          what: str) -> tuple[bytes, str]:
    """(bytes, the name for messages) of a path or bytes, refusing more than ``limit`` bytes before reading."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        where = name or "<bytes>"
    else:
        path = Path(source)
        where = name or str(path)
        size = path.stat().st_size
        if size > limit:
            raise FormatError(f"{where}: expected {what} of at most {limit} bytes, got {size}")
        data = path.read_bytes()
    if len(data) > limit:
        raise FormatError(f"{where}: expected {what} of at most {limit} bytes, got {len(data)}")
    return data, where


def read_tflite(model: str | os.PathLike | bytes, *, name: str | None = None,
                settings: str | os.PathLike | bytes | None = None) -> GraphSpec:
    """Read a ``.tflite`` streaming model (path or bytes) as a GraphSpec.

    Args:
        model: the flatbuffer, or its path.
        name: how messages name the model (default: the path, or ``<bytes>``).
        settings: the microWakeWord settings (JSON, path or bytes) whose ``read_micro_settings`` become the
            GraphSpec's metadata; none by default.

    Raises:
        FormatError: one line naming the file, the operator and tensor, and what was expected, for anything
            kwsint (or TFLM) does not run. OSError when a path cannot be read.
    """
    data, where = _load(model, name, MAX_TFLITE_BYTES, "a flatbuffer")
    subgraphs, buffers = _parse(data, where)
    graph = _Importer(subgraphs, buffers, where).run()
    return graph if settings is None else replace(graph, metadata=read_micro_settings(settings))


def load_tflite(model: str | os.PathLike | bytes, *, settings: str | os.PathLike | bytes | None = None,
                backend: str | None = None, name: str | None = None, memory: str = "copy"):
    """``read_tflite`` then the C loader: a ``kwsint.GraphModel`` of the ``.tflite`` file, imported in memory
    (the blob ``kwsint-import`` would write, never written to disk).

    Raises:
        FormatError: as ``read_tflite``, or a graph kwsint's kernels refuse (weight code -128: docs/format.md 10).
    """
    from ..engine.blob import write_blob
    from ..engine.graph_model import GraphModel
    spec = read_tflite(model, name=name, settings=settings)
    source = name or (str(model) if not isinstance(model, (bytes, bytearray, memoryview)) else "<bytes>")
    return GraphModel(write_blob(spec), backend=backend, source=source, memory=memory)


def read_micro_settings(settings: str | os.PathLike | bytes, *, name: str | None = None) -> ModelMetadata:
    """The blob metadata of a microWakeWord model's JSON settings (format version 2, ESPHome's ``micro``).

    ``wake_word`` becomes ``phrase``; ``micro.probability_cutoff``, ``micro.sliding_window_size`` and
    ``micro.feature_step_size`` (ms) keep their names; ``trained_languages`` too; ``author``, ``website`` and
    ``model`` go into ``provenance``. ``tensor_arena_size`` and ``minimum_esphome_version`` concern TFLM on
    ESPHome devices and are not kept; other keys are ignored.

    Raises:
        FormatError: naming the file and the key, for a file that is not such a JSON object or a value out of
            range. OSError when a path cannot be read.
    """
    data, where = _load(settings, name, MAX_SETTINGS_BYTES, "a JSON settings file")
    try:
        obj = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise FormatError(f"{where}: expected a UTF-8 JSON object: {e}") from None

    def need(ok: bool, key: str, expected: str, value) -> None:
        if not ok:
            raise FormatError(f"{where}: {key}: expected {expected}, got {_short(value)}")

    need(isinstance(obj, dict), "settings", "a JSON object", obj)
    need(obj.get("type") == "micro", "type", '"micro" (a microWakeWord model)', obj.get("type"))
    need(obj.get("version") == 2 and not isinstance(obj.get("version"), bool), "version",
         "2 (the settings format of ESPHome 2024.7 and later)", obj.get("version"))
    micro = obj.get("micro")
    need(isinstance(micro, dict), "micro", "an object of the model's settings", micro)
    stated: dict = {}
    for json_key, value, field in (("wake_word", obj.get("wake_word"), "phrase"),
                                   ("trained_languages", obj.get("trained_languages"), "trained_languages"),
                                   *((f"micro.{k}", micro.get(k), k) for k in MICRO_SETTINGS)):
        need(value is not None or not json_key.startswith("micro."), json_key, "a value", None)
        problem = value_problem(field, value)
        if problem:
            raise FormatError(f"{where}: {json_key}: {problem}")
        stated[field] = value
    origin = [f"{k} {_short(obj[k], 200)}" for k in ("model", "author", "website") if isinstance(obj.get(k), str)]
    if origin:
        stated["provenance"] = "microWakeWord model; " + "; ".join(origin)
    return ModelMetadata(**stated)


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a number")


def _short(value, limit: int = 60) -> str:
    text = _clean(repr(value) if not isinstance(value, str) else value, limit)
    return text
