"""The ``.kwsq`` model blob (docs/format.md): ``write_blob`` and ``BlobReader``.

All integers little-endian. A 16-byte header (magic, version, payload size,
payload CRC32) is followed by the payload: the model header, the front end's
feature settings (``FbankOptions``) and normalisation vectors, then one record
per layer with bit-packed weights.
The reader checks every field before it trusts it and raises ``FormatError``
naming the field; ``csrc/blob.c`` performs the same checks.
"""

from __future__ import annotations

import dataclasses
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from ..errors import FormatError
from ..io.atomic import write_atomic
from ..io.features import WINDOW_TYPES, FbankOptions
from .limits import (BIAS_LIMIT, MAX_DIM, MAX_GRAPH_OPS, MAX_GRAPH_STATES, MAX_GRAPH_TENSORS, MAX_LAYERS,
                     MAX_SHIFT, MAX_TENSOR_CODES)
from .metadata import MAX_METADATA_BYTES, ModelMetadata
from .graph import (Concat, Conv, DepthwiseConv, FullyConnected, GraphError, GraphSpec, Logistic, Quant, Quantize,
                    Slice, State, Tensor, Window)
from .modelspec import Frontend, Layer, ModelSpec
from .reference import (ACC16_MAX, ACC16_MAX_LOG2, ACC16_MIN_LOG2, ACC16_X_MAX, acc16_block_sums, dense_multipliers,
                        quantize_multiplier)

MAGIC = b"KWSQ"
FORMAT_VERSION = 5
"""Version 5 adds the model kind (header offset 6, reserved before) and kind 1, the streaming graph."""
DENSE_FORMAT_VERSION = 4
"""Dense window models (kind 0) are still written as version 4, byte for byte as before: a version 5 kind 0 blob
would differ only in its version field, and every blob already shipped keeps its bytes."""
# 3: no metadata record; 2: also the layer header's acc16_block byte was reserved (0)
READABLE_VERSIONS = (2, 3, 4, 5)
HEADER = struct.Struct("<4sHHII")  # magic, version, model_kind (reserved before 5), payload_bytes, payload_crc32
KIND_DENSE, KIND_GRAPH = 0, 1
MODEL_HEADER = struct.Struct("<BBHHHfiii")
# sample_rate, frame_length_ms, frame_shift_ms, low_freq, high_freq, preemph_coeff, num_mel_bins,
# window_type, remove_dc_offset, snip_edges, reserved
FBANK = struct.Struct("<IfffffHBBB3s")
LAYER_HEADER = struct.Struct("<BBBBHHffiiii")
KIND_CODES = {"dense": 1, "affine": 2}
KIND_NAMES = {v: k for k, v in KIND_CODES.items()}
POSTERIOR_MAX_SHIFT = 14


# --- bit packing -----------------------------------------------------------------


def pack_codes(codes: np.ndarray, bits: int) -> bytes:
    """Pack integer codes into an LSB-first bitstream of ``bits`` bits each.

    b >= 2: two's complement b-bit fields. b == 1: bit 1 is +1, bit 0 is -1.
    """
    c = np.asarray(codes, dtype=np.int64).reshape(-1)
    q = 1 if bits == 1 else (1 << (bits - 1)) - 1
    if c.size and (np.abs(c).max() > q or (bits == 1 and (c == 0).any())):
        raise ValueError(f"weight codes must lie on the {bits}-bit grid [-{q}, {q}]" + (" without 0" if bits == 1 else ""))
    fields = (c > 0).astype(np.uint8) if bits == 1 else (c & ((1 << bits) - 1)).astype(np.uint8)
    bit_matrix = (fields[:, None] >> np.arange(bits, dtype=np.uint8)) & 1
    return np.packbits(bit_matrix.reshape(-1), bitorder="little").tobytes()


def unpack_codes(data: bytes, count: int, bits: int) -> np.ndarray:
    """Inverse of ``pack_codes``; returns int8 codes (no range check)."""
    stream = np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")[: count * bits]
    fields = (stream.reshape(count, bits).astype(np.int64) << np.arange(bits)).sum(axis=1)
    if bits == 1:
        return np.where(fields == 1, 1, -1).astype(np.int8)
    return np.where(fields >= 1 << (bits - 1), fields - (1 << bits), fields).astype(np.int8)


def packed_bytes(count: int, bits: int) -> int:
    return (count * bits + 7) // 8


# --- writer ----------------------------------------------------------------------


def write_blob(spec: ModelSpec | GraphSpec) -> bytes:
    """Serialise a model; raises FormatError rather than write a blob no loader accepts.

    A ModelSpec becomes a version 4 blob, a GraphSpec a version 5 blob of kind 1. The result loads back
    (``BlobReader``) to an equal spec.
    """
    if isinstance(spec, GraphSpec):
        return _write_graph_blob(spec)
    fe = spec.frontend
    out = [
        MODEL_HEADER.pack(
            spec.act_bits,
            len(spec.layers),
            fe.window_frames,
            fe.feature_dim,
            fe.frame_stride,
            fe.input_scale,
            fe.input_zero_point,
            spec.posterior_multiplier,
            spec.posterior_shift,
        ),
        _pack_fbank(fe.fbank),
        np.asarray(fe.mean, dtype="<f4").tobytes(),
        np.asarray(fe.inv_std, dtype="<f4").tobytes(),
    ]
    bias_dtype = "<i4" if spec.act_bits == 8 else "<i8"
    for layer in spec.layers:
        out.append(
            LAYER_HEADER.pack(
                KIND_CODES[layer.kind],
                layer.weight_bits,
                int(layer.per_channel),
                layer.acc16_block,
                layer.in_size,
                layer.out_size,
                layer.input_scale,
                layer.output_scale,
                layer.input_zero_point,
                layer.output_zero_point,
                layer.act_min,
                layer.act_max,
            )
        )
        out.append(np.asarray(layer.weight_scale, dtype="<f4").tobytes())
        out.append(np.asarray(layer.multiplier, dtype="<i4").tobytes())
        out.append(np.asarray(layer.shift, dtype="<i4").tobytes())
        out.append(np.asarray(layer.bias, dtype=bias_dtype).tobytes())
        out.append(pack_codes(layer.weights, layer.weight_bits))
    metadata = spec.metadata.to_json()
    out.append(struct.pack("<I", len(metadata)) + metadata)
    payload = b"".join(out)
    blob = HEADER.pack(MAGIC, DENSE_FORMAT_VERSION, KIND_DENSE, len(payload), zlib.crc32(payload)) + payload
    read_blob(blob, "<model being written>")
    return blob


def _pack_fbank(o: FbankOptions) -> bytes:
    return FBANK.pack(o.sample_rate, o.frame_length_ms, o.frame_shift_ms, o.low_freq, o.high_freq, o.preemph_coeff,
                      o.num_mel_bins, WINDOW_TYPES.index(o.window_type) + 1, int(o.remove_dc_offset),
                      int(o.snip_edges), bytes(3))


def save(spec: ModelSpec | GraphSpec, path: str | Path) -> None:
    """Write a blob atomically: the file appears whole or not at all."""
    write_atomic(path, write_blob(spec))


# --- reader ----------------------------------------------------------------------


class BlobReader:
    """Parses and checks a blob. ``BlobReader(data).read()`` returns a ModelSpec.

    Every error is a ``FormatError`` whose message starts with the field name
    (``layers[3].shift[7]``) and says what was expected.
    """

    def __init__(self, data: bytes, source: str = "<bytes>"):
        self.data = bytes(data)
        self.source = source
        self.pos = 0

    def _fail(self, field: str, message: str) -> FormatError:
        return FormatError(f"{self.source}: {field}: {message}")

    def _take(self, n: int, field: str) -> bytes:
        if n > len(self.data) - self.pos:
            raise self._fail(field, f"truncated: needs {n} bytes at offset {self.pos}, "
                             f"{len(self.data) - self.pos} left")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def _array(self, n: int, dtype: str, field: str) -> np.ndarray:
        return np.frombuffer(self._take(n * np.dtype(dtype).itemsize, field), dtype=dtype)

    def read(self) -> ModelSpec | GraphSpec:
        magic, version, reserved, payload_bytes, crc = HEADER.unpack(self._take(HEADER.size, "header"))
        if magic != MAGIC:
            raise self._fail("magic", f"expected {MAGIC!r}, got {magic!r}: not a kwsint model")
        if version == 1:
            raise self._fail("version", f"expected {FORMAT_VERSION}, got 1: format 1 predates the feature settings "
                             "in the model; export the model again with this kwsint")
        if version not in READABLE_VERSIONS:
            raise self._fail("version", f"unknown format version {version}; this kwsint reads "
                             f"{' and '.join(map(str, READABLE_VERSIONS))}")
        self.version = version
        if version < 5 and reserved != 0:
            raise self._fail("reserved", f"expected 0, got {reserved}")
        if version >= 5 and reserved not in (KIND_DENSE, KIND_GRAPH):
            raise self._fail("model_kind", f"expected 0 (dense window model) or 1 (streaming graph), got {reserved}")
        self.kind = reserved if version >= 5 else KIND_DENSE
        left = len(self.data) - HEADER.size
        if payload_bytes > left:
            raise self._fail("payload_bytes", f"truncated: declares {payload_bytes} bytes, file has {left}")
        if payload_bytes < left:
            raise self._fail("payload_bytes", f"declares {payload_bytes} bytes but {left} follow the header")
        actual = zlib.crc32(self.data[HEADER.size :])
        if actual != crc:
            raise self._fail("payload_crc32", f"checksum mismatch (stored {crc:#010x}, computed {actual:#010x})")
        if self.kind == KIND_GRAPH:
            spec = GraphReader(self).read()
            spec_metadata = self._read_metadata()
            if self.pos != len(self.data):
                raise self._fail("payload", f"{len(self.data) - self.pos} unexpected bytes after the metadata")
            return dataclasses.replace(spec, metadata=spec_metadata)
        spec = self._read_payload()
        if version >= 4:
            spec = dataclasses.replace(spec, metadata=self._read_metadata())
        if self.pos != len(self.data):
            last = "the metadata" if version >= 4 else "the last layer"
            raise self._fail("payload", f"{len(self.data) - self.pos} unexpected bytes after {last}")
        return spec

    def _read_metadata(self) -> ModelMetadata:
        (size,) = struct.unpack("<I", self._take(4, "metadata_bytes"))
        _expect(self, "metadata_bytes", size <= MAX_METADATA_BYTES, f"at most {MAX_METADATA_BYTES}, got {size}")
        return ModelMetadata.from_json(self._take(size, "metadata"), self.source)

    def _read_payload(self) -> ModelSpec:
        (act_bits, num_layers, window_frames, feature_dim, frame_stride, input_scale, input_zp,
         post_mult, post_shift) = MODEL_HEADER.unpack(self._take(MODEL_HEADER.size, "model header"))
        _expect(self, "act_bits", act_bits in (8, 16), f"8 or 16, got {act_bits}")
        _expect(self, "num_layers", 1 <= num_layers <= MAX_LAYERS, f"1..{MAX_LAYERS}, got {num_layers}")
        _expect(self, "window_frames", 1 <= window_frames <= 4096, f"1..4096, got {window_frames}")
        _expect(self, "feature_dim", 1 <= feature_dim <= 1024, f"1..1024, got {feature_dim}")
        _expect(self, "frame_stride", 1 <= frame_stride <= window_frames,
                f"1..window_frames ({window_frames}), got {frame_stride}")
        input_size = ((window_frames - 1) // frame_stride + 1) * feature_dim
        _expect(self, "feature_dim", input_size <= MAX_DIM, f"input size <= {MAX_DIM}, got {input_size}")
        _expect(self, "input_scale", _scale_ok(input_scale), f"a finite positive float, got {input_scale}")
        qmin, qmax = _range(act_bits)
        _expect(self, "input_zero_point", _zp_ok(input_zp, act_bits), f"in [{qmin}, {qmax}] (0 for int16), got {input_zp}")
        fbank = self._read_fbank(feature_dim)
        mean = self._array(feature_dim, "<f4", "mean").astype(np.float32)
        inv_std = self._array(feature_dim, "<f4", "inv_std").astype(np.float32)
        _expect_all(self, "mean", ~np.isfinite(mean), "finite values")
        _expect_all(self, "inv_std", ~np.isfinite(inv_std), "finite values")
        frontend = Frontend(window_frames, feature_dim, frame_stride, mean, inv_std, float(input_scale), input_zp,
                            fbank)

        layers = []
        prev_scale, prev_zp, prev_size = np.float32(input_scale), input_zp, input_size
        for i in range(num_layers):
            layer = self._read_layer(f"layers[{i}]", act_bits, prev_scale, prev_zp, prev_size)
            layers.append(layer)
            prev_scale, prev_zp, prev_size = np.float32(layer.output_scale), layer.output_zero_point, layer.out_size
        last = layers[-1]
        _expect(self, f"layers[{num_layers - 1}].kind", last.kind == "dense", "the last layer to be dense")
        _expect(self, f"layers[{num_layers - 1}].out_size", last.out_size == 2,
                f"2 outputs from the last layer, got {last.out_size}")
        scale = float(np.float64(np.float32(last.output_scale)) * 4096.0)
        want = quantize_multiplier(scale)
        _expect(self, "posterior_multiplier", want[1] <= POSTERIOR_MAX_SHIFT,
                f"a last-layer output scale below {2 ** POSTERIOR_MAX_SHIFT / 4096} (posterior shift "
                f"<= {POSTERIOR_MAX_SHIFT}), got {last.output_scale}")
        _expect(self, "posterior_multiplier", post_mult == want[0],
                f"quantize_multiplier(output scale * 4096) = {want[0]}, got {post_mult}")
        _expect(self, "posterior_shift", post_shift == want[1], f"{want[1]}, got {post_shift}")
        return ModelSpec(act_bits, frontend, tuple(layers), post_mult, post_shift)

    def _read_fbank(self, feature_dim: int) -> FbankOptions:
        (rate, length_ms, shift_ms, low, high, preemph, mel_bins, window_code, remove_dc, snip,
         reserved) = FBANK.unpack(self._take(FBANK.size, "fbank"))
        _expect(self, "fbank.reserved", reserved == bytes(3), f"3 zero bytes, got {reserved.hex()}")
        _expect(self, "fbank.window_type", 1 <= window_code <= len(WINDOW_TYPES),
                f"1..{len(WINDOW_TYPES)} ({', '.join(WINDOW_TYPES)}), got {window_code}")
        try:
            fbank = FbankOptions(rate, length_ms, shift_ms, mel_bins, low, high, preemph, remove_dc,
                                 WINDOW_TYPES[window_code - 1], snip)
        except ValueError as e:  # "FIELD: expected ..., got ..."
            field, _, message = str(e).partition(": ")
            raise self._fail(f"fbank.{field}", message) from None
        _expect(self, "fbank.num_mel_bins", mel_bins == feature_dim, f"feature_dim ({feature_dim}), got {mel_bins}")
        return fbank

    def _read_layer(self, name: str, act_bits: int, prev_scale, prev_zp: int, prev_size: int) -> Layer:
        (kind_code, bits, per_channel, acc16, in_size, out_size, in_scale, out_scale, in_zp, out_zp,
         act_min, act_max) = LAYER_HEADER.unpack(self._take(LAYER_HEADER.size, f"{name} header"))
        _expect(self, f"{name}.kind", kind_code in KIND_NAMES, f"1 (dense) or 2 (affine), got {kind_code}")
        kind = KIND_NAMES[kind_code]
        _expect(self, f"{name}.weight_bits", 1 <= bits <= 8, f"1..8, got {bits}")
        _expect(self, f"{name}.per_channel", per_channel in (0, 1) and (kind == "dense" or per_channel == 1),
                f"0 or 1 (1 for affine), got {per_channel}")
        if self.version == 2:
            _expect(self, f"{name}.reserved", acc16 == 0, f"0, got {acc16}")
        _expect(self, f"{name}.acc16_block", acc16 == 0 or (
            kind == "dense" and act_bits == 8 and ACC16_MIN_LOG2 <= acc16 <= ACC16_MAX_LOG2),
            f"0, or {ACC16_MIN_LOG2}..{ACC16_MAX_LOG2} for a dense layer with int8 activations, got {acc16}")
        _expect(self, f"{name}.in_size", 1 <= in_size <= MAX_DIM, f"1..{MAX_DIM}, got {in_size}")
        _expect(self, f"{name}.out_size", 1 <= out_size <= MAX_DIM, f"1..{MAX_DIM}, got {out_size}")
        _expect(self, f"{name}.in_size", in_size == prev_size, f"{prev_size} (the previous output size), got {in_size}")
        _expect(self, f"{name}.out_size", kind == "dense" or out_size == in_size,
                f"affine out_size == in_size ({in_size}), got {out_size}")
        _expect(self, f"{name}.input_scale", np.float32(in_scale).tobytes() == np.float32(prev_scale).tobytes(),
                f"{prev_scale} (the previous output scale), got {in_scale}")
        _expect(self, f"{name}.output_scale", _scale_ok(out_scale), f"a finite positive float, got {out_scale}")
        _expect(self, f"{name}.input_zero_point", in_zp == prev_zp, f"{prev_zp} (the previous output zero point), got {in_zp}")
        qmin, qmax = _range(act_bits)
        _expect(self, f"{name}.output_zero_point", _zp_ok(out_zp, act_bits), f"in [{qmin}, {qmax}] (0 for int16), got {out_zp}")
        _expect(self, f"{name}.act_min", qmin <= act_min <= qmax, f"in [{qmin}, {qmax}], got {act_min}")
        _expect(self, f"{name}.act_max", act_min <= act_max <= qmax, f"in [act_min={act_min}, {qmax}], got {act_max}")

        n = out_size
        count = n * in_size if kind == "dense" else n
        weight_scale = self._array(n, "<f4", f"{name}.weight_scale").astype(np.float32)
        multiplier = self._array(n, "<i4", f"{name}.multiplier").astype(np.int32)
        shift = self._array(n, "<i4", f"{name}.shift").astype(np.int32)
        bias = self._array(n, "<i4" if act_bits == 8 else "<i8", f"{name}.bias")
        bias = bias.astype(np.int32 if act_bits == 8 else np.int64)
        packed = self._take(packed_bytes(count, bits), f"{name}.weights")

        bad = ~np.isfinite(weight_scale) | (weight_scale <= 0)
        if not per_channel:
            bad |= weight_scale.view(np.uint32) != weight_scale[:1].view(np.uint32)
        _expect_all(self, f"{name}.weight_scale", bad, "finite positive floats, all equal when per-tensor")
        want_mult, want_shift = dense_multipliers(in_scale, weight_scale, out_scale)
        max_shift = MAX_SHIFT[act_bits]
        _expect_all(self, f"{name}.multiplier", (multiplier != want_mult) | (want_shift > max_shift),
                    f"the multiplier derived from the scales, shift <= {max_shift}", want_mult)
        _expect_all(self, f"{name}.shift", shift != want_shift, "the shift derived from the scales", want_shift)
        limit = BIAS_LIMIT[act_bits]
        _expect_all(self, f"{name}.bias", (bias > limit) | (bias < -limit), f"|bias| <= {limit}")

        weights = unpack_codes(packed, count, bits)
        if bits >= 2:
            _expect_all(self, f"{name}.weights", weights == -(1 << (bits - 1)),
                        f"codes in [-{(1 << (bits - 1)) - 1}, {(1 << (bits - 1)) - 1}]")
        used = count * bits
        _expect(self, f"{name}.weights[{len(packed) - 1}]", used % 8 == 0 or packed[-1] >> (used % 8) == 0,
                "zero padding bits after the last code")
        if acc16:  # the claim is re-proven here, never trusted (docs/arithmetic.md 5.6)
            sums = acc16_block_sums(weights.reshape(n, in_size), acc16)
            row, block = np.unravel_index(int(sums.argmax()), sums.shape)
            _expect(self, f"{name}.acc16_block", ACC16_X_MAX * int(sums[row, block]) <= ACC16_MAX,
                    f"a block no int16 accumulator can overflow; claims {1 << acc16} products, but row {row}, "
                    f"products from {block << acc16} sum |w| = {int(sums[row, block])} and "
                    f"{ACC16_X_MAX} * {int(sums[row, block])} > {ACC16_MAX}")
        return Layer(
            kind=kind,
            weights=weights.reshape(n, in_size) if kind == "dense" else weights,
            weight_bits=bits,
            weight_scale=weight_scale,
            bias=bias,
            multiplier=multiplier,
            shift=shift,
            per_channel=bool(per_channel),
            input_scale=float(in_scale),
            output_scale=float(out_scale),
            input_zero_point=in_zp,
            output_zero_point=out_zp,
            act_min=act_min,
            act_max=act_max,
            acc16_block=acc16,
        )


def _expect(reader: BlobReader, field: str, ok: bool, expected: str) -> None:
    if not ok:
        raise reader._fail(field, f"expected {expected}")


def _expect_all(reader: BlobReader, field: str, bad: np.ndarray, expected: str, want=None) -> None:
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        hint = f" ({int(want[i])})" if want is not None else ""
        raise reader._fail(f"{field}[{i}]", f"expected {expected}{hint}")


def _range(act_bits: int) -> tuple[int, int]:
    return (-128, 127) if act_bits == 8 else (-32768, 32767)


def _zp_ok(zp: int, act_bits: int) -> bool:
    return -128 <= zp <= 127 if act_bits == 8 else zp == 0


def _scale_ok(s: float) -> bool:
    return math.isfinite(s) and s > 0


def read_blob(data: bytes, source: str = "<bytes>") -> ModelSpec | GraphSpec:
    """Parse and check blob bytes; raises FormatError."""
    return BlobReader(data, source).read()


# --- kind 1: the streaming graph (docs/format.md 10) --------------------------------


GRAPH_HEADER = struct.Struct("<HHHHHH")  # num_tensors, num_states, num_ops, input, output, reserved
GRAPH_TENSOR = struct.Struct("<HHfiB3s")  # frames, channels, scale, zero_point, dtype, reserved
GRAPH_STATE = struct.Struct("<HHfi")  # frames, channels, scale, zero_point; then frames x channels int8 init
OP_HEADER = struct.Struct("<BBH")  # op code, reserved, out
WINDOW_OP = struct.Struct("<HH")  # state, input
SLICE_OP = struct.Struct("<HHHH")  # input, frames, channel_start, channels
CONV_OP = struct.Struct("<HHHHBBbb")  # input, kernel, stride, dilation, padding, per_channel, act_min, act_max
FC_OP = struct.Struct("<HBbb")  # input, per_channel, act_min, act_max
UNARY_OP = struct.Struct("<H")  # input
TENSOR_DTYPES = {"int8": 1, "uint8": 2}
OP_CODES = {Window: 1, Slice: 2, Concat: 3, Conv: 4, DepthwiseConv: 5, FullyConnected: 6, Logistic: 7, Quantize: 8}
PADDING_CODES = {"valid": 0, "same": 1}


def _write_graph_blob(spec: GraphSpec) -> bytes:
    out = [GRAPH_HEADER.pack(len(spec.tensors), len(spec.states), len(spec.ops), spec.input, spec.output, 0)]
    for t in spec.tensors:
        out.append(GRAPH_TENSOR.pack(t.frames, t.channels, t.quant.scale, t.quant.zero_point,
                                     TENSOR_DTYPES[t.dtype], bytes(3)))
    for s in spec.states:
        out.append(GRAPH_STATE.pack(s.frames, s.channels, s.quant.scale, s.quant.zero_point))
        out.append(np.ascontiguousarray(s.init, dtype=np.int8).tobytes())
    for op in spec.ops:
        out.append(OP_HEADER.pack(OP_CODES[type(op)], 0, op.out))
        if isinstance(op, Window):
            out.append(WINDOW_OP.pack(op.state, op.input))
        elif isinstance(op, Slice):
            out.append(SLICE_OP.pack(op.input, op.frames, op.channel_start, op.channels))
        elif isinstance(op, Concat):
            out.append(struct.pack(f"<H{len(op.inputs)}H", len(op.inputs), *op.inputs))
        elif isinstance(op, (Conv, DepthwiseConv)):
            kernel = op.weights.shape[0] if isinstance(op, DepthwiseConv) else op.weights.shape[1]
            out.append(CONV_OP.pack(op.input, kernel, op.stride, op.dilation, PADDING_CODES[op.padding],
                                    int(op.weight_scale.shape != (1,)),
                                    op.act_min, op.act_max))
            out.extend(_linear_arrays(op))
        elif isinstance(op, FullyConnected):
            out.append(FC_OP.pack(op.input, int(op.weight_scale.shape != (1,)), op.act_min, op.act_max))
            out.extend(_linear_arrays(op))
        else:
            out.append(UNARY_OP.pack(op.input))
    metadata = spec.metadata.to_json()
    out.append(struct.pack("<I", len(metadata)) + metadata)
    payload = b"".join(out)
    blob = HEADER.pack(MAGIC, FORMAT_VERSION, KIND_GRAPH, len(payload), zlib.crc32(payload)) + payload
    read_blob(blob, "<model being written>")
    return blob


def _linear_arrays(op) -> list[bytes]:
    return [np.asarray(op.weight_scale, "<f4").tobytes(), np.asarray(op.bias, "<i4").tobytes(),
            np.ascontiguousarray(op.weights, dtype=np.int8).tobytes()]


class GraphReader:
    """The kind 1 payload up to the metadata record: a GraphSpec, checked by ``graph.validate`` (every rule of
    docs/arithmetic.md 11) and by the format's own rules (docs/format.md 10): sizes and counts within the engine's
    limits, reserved bytes zero, weight codes in [-127, 127] (docs/format.md 10)."""

    def __init__(self, blob: BlobReader):
        self.b = blob

    def _expect(self, field: str, ok: bool, expected: str) -> None:
        _expect(self.b, field, ok, expected)

    def read(self) -> GraphSpec:
        b = self.b
        n_t, n_s, n_o, inp, outp, reserved = GRAPH_HEADER.unpack(b._take(GRAPH_HEADER.size, "graph header"))
        self._expect("num_tensors", 2 <= n_t <= MAX_GRAPH_TENSORS, f"2..{MAX_GRAPH_TENSORS}, got {n_t}")
        self._expect("num_states", n_s <= MAX_GRAPH_STATES, f"0..{MAX_GRAPH_STATES}, got {n_s}")
        self._expect("num_ops", 1 <= n_o <= MAX_GRAPH_OPS, f"1..{MAX_GRAPH_OPS}, got {n_o}")
        self._expect("input", inp < n_t, f"a tensor index below {n_t}, got {inp}")
        self._expect("output", outp < n_t, f"a tensor index below {n_t}, got {outp}")
        self._expect("graph.reserved", reserved == 0, f"0, got {reserved}")
        tensors = []
        for i in range(n_t):
            frames, channels, scale, zp, dtype, res = GRAPH_TENSOR.unpack(b._take(GRAPH_TENSOR.size, f"tensors[{i}]"))
            self._expect(f"tensors[{i}].reserved", res == bytes(3), f"3 zero bytes, got {res.hex()}")
            self._expect(f"tensors[{i}].dtype", dtype in (1, 2), f"1 (int8) or 2 (uint8), got {dtype}")
            self._size(f"tensors[{i}]", frames, channels)
            tensors.append(Tensor(frames, channels, Quant(scale, zp), "int8" if dtype == 1 else "uint8"))
        states = []
        for i in range(n_s):
            frames, channels, scale, zp = GRAPH_STATE.unpack(b._take(GRAPH_STATE.size, f"states[{i}]"))
            self._size(f"states[{i}]", frames, channels)
            init = b._array(frames * channels, "<i1", f"states[{i}].init").astype(np.int8).reshape(frames, channels)
            states.append(State(frames, channels, Quant(scale, zp), init))
        ops = [self._op(k, tensors) for k in range(n_o)]
        try:
            return GraphSpec(tuple(tensors), tuple(states), tuple(ops), inp, outp)
        except GraphError as e:
            raise b._fail("graph", str(e)) from None

    def _size(self, where: str, frames: int, channels: int) -> None:
        self._expect(f"{where}.frames", 1 <= frames <= MAX_DIM, f"1..{MAX_DIM}, got {frames}")
        self._expect(f"{where}.channels", 1 <= channels <= MAX_DIM, f"1..{MAX_DIM}, got {channels}")
        self._expect(f"{where}.channels", frames * channels <= MAX_TENSOR_CODES,
                     f"frames x channels <= {MAX_TENSOR_CODES}, got {frames} x {channels}")

    def _tensor(self, where: str, i: int, tensors: list[Tensor]) -> Tensor:
        self._expect(where, i < len(tensors), f"a tensor index below {len(tensors)}, got {i}")
        return tensors[i]

    def _op(self, k: int, tensors: list[Tensor]):
        b = self.b
        name = f"ops[{k}]"
        code, reserved, out = OP_HEADER.unpack(b._take(OP_HEADER.size, f"{name} header"))
        self._expect(f"{name}.code", 1 <= code <= len(OP_CODES), f"1..{len(OP_CODES)}, got {code}")
        self._expect(f"{name}.reserved", reserved == 0, f"0, got {reserved}")
        t_out = self._tensor(f"{name}.out", out, tensors)
        if code == 1:
            state, x = WINDOW_OP.unpack(b._take(WINDOW_OP.size, name))
            return Window(state, x, out)
        if code == 2:
            return Slice(*SLICE_OP.unpack(b._take(SLICE_OP.size, name)), out)
        if code == 3:
            (count,) = struct.unpack("<H", b._take(2, f"{name}.count"))
            inputs = struct.unpack(f"<{count}H", b._take(2 * count, f"{name}.inputs"))
            return Concat(tuple(inputs), out)
        if code in (4, 5):
            x, kernel, stride, dilation, padding, per_channel, act_min, act_max = CONV_OP.unpack(
                b._take(CONV_OP.size, name))
            self._expect(f"{name}.padding", padding in (0, 1), f"0 (valid) or 1 (same), got {padding}")
            self._expect(f"{name}.kernel", kernel >= 1, f"at least 1, got {kernel}")
            cin = self._tensor(f"{name}.input", x, tensors).channels
            shape = (kernel, cin) if code == 5 else (t_out.channels, kernel, cin)
            ws, bias, w = self._linear(name, per_channel, t_out.channels, shape)
            cls = DepthwiseConv if code == 5 else Conv
            return cls(x, w, bias, ws, stride, dilation, ("valid", "same")[padding], act_min, act_max, out)
        if code == 6:
            x, per_channel, act_min, act_max = FC_OP.unpack(b._take(FC_OP.size, name))
            t_in = self._tensor(f"{name}.input", x, tensors)
            ws, bias, w = self._linear(name, per_channel, t_out.channels, (t_out.channels, t_in.frames * t_in.channels))
            return FullyConnected(x, w, bias, ws, act_min, act_max, out)
        (x,) = UNARY_OP.unpack(b._take(UNARY_OP.size, name))
        return (Logistic if code == 7 else Quantize)(x, out)

    def _linear(self, name: str, per_channel: int, n: int, shape: tuple[int, ...]):
        b = self.b
        self._expect(f"{name}.per_channel", per_channel in (0, 1), f"0 or 1, got {per_channel}")
        ws = b._array(n if per_channel else 1, "<f4", f"{name}.weight_scale").astype(np.float32)
        bias = b._array(n, "<i4", f"{name}.bias").astype(np.int32)
        count = int(np.prod(shape))
        self._expect(f"{name}.weights", count <= MAX_DIM * MAX_DIM, f"at most {MAX_DIM}^2 codes, got {count}")
        w = b._array(count, "<i1", f"{name}.weights").astype(np.int8).reshape(shape)
        _expect_all(b, f"{name}.weights", (w == -128).reshape(-1),
                    "codes in [-127, 127] (kwsint's kernels; TFLite allows -128, none of the known models uses it)")
        return ws, bias, w
