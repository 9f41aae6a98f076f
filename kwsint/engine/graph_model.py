"""``GraphModel`` and ``GraphStream``: a streaming graph (blob kind 1, or a ``.tflite`` file imported in memory)
on a C backend, invoke by invoke, as TFLM runs it."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Callable

import numpy as np

from .._kwsint_c import ffi, lib
from ..errors import FormatError
from . import backend as _backend
from ._invoke import StreamInvoke
from .blob import read_blob
from .graph import GraphSpec

if TYPE_CHECKING:
    from .listener import GraphListener


_INT8 = np.dtype(np.int8)
# GraphStream.invoke calls kws_stream_invoke at this address (kwsint/engine/_invoke.c).
_INVOKE_ADDRESS = int(ffi.cast("uintptr_t", ffi.addressof(lib, "kws_stream_invoke")))


def _as_input(shape: tuple[int, int], x) -> np.ndarray:
    """``x`` as invoke's input: an int8 C-contiguous array of ``shape``, or a ValueError."""
    a = np.asarray(x)
    if a.dtype != _INT8 or a.shape != shape:
        raise ValueError(f"x: int8 {shape} expected, got {a.dtype} {a.shape}")
    return np.ascontiguousarray(a)


def _raise_invoke_status(status: int) -> None:
    _backend.check(status, "kws_stream_invoke")


class GraphModel:
    """A loaded streaming graph: immutable, safe to share between threads; each thread runs its own
    ``stream()``."""

    def __init__(self, data: bytes, *, backend: str | None = None, source: str = "<bytes>", memory: str = "copy"):
        spec = read_blob(data, source)
        if not isinstance(spec, GraphSpec):
            raise FormatError(f"{source}: model_kind: expected 1 (a streaming graph), got a dense window model")
        self.spec: GraphSpec = spec
        self.blob_bytes = len(data)
        be = _backend.resolve(backend)
        self._ptr, self.arena_bytes = _backend.load_model(data, be, source, lib.KWS_WEIGHTS_INT8, memory)
        self.memory = memory
        self.backend: str = _backend.name_of(be)
        info = ffi.new("kws_graph_info *")
        lib.kws_model_graph_info(self._ptr, info)
        self.input_shape = (int(info.input_frames), int(info.input_channels))
        self.output_shape = (int(info.output_frames), int(info.output_channels))
        self.output_dtype = np.dtype(np.uint8 if info.output_uint8 else np.int8)
        self.state_bytes = int(info.state_bytes)
        sizes = ffi.new("kws_model_info *")
        lib.kws_model_get_info(self._ptr, sizes)
        self.model_bytes = int(sizes.model_bytes)
        """Bytes the loaded model takes (in place: without the weights and states read from the blob)."""
        self.stream_bytes = int(lib.kws_stream_bytes(self._ptr))
        """Bytes each stream over it takes: its states, its tensors and what an invoke gathers."""
        self.acc16_ops = int(info.acc16_ops)
        """Convolutions and FULLY_CONNECTEDs that sum in int16 on this backend (docs/arithmetic.md 11.4)."""

    @property
    def metadata(self):
        return self.spec.metadata

    @property
    def macs(self) -> int:
        """Multiply-accumulates per invoke."""
        return self.spec.macs

    def stream(self) -> GraphStream:
        """A new stream over this model, its states at their init codes."""
        return GraphStream(self)

    def listener(self, threshold: float | None = None) -> GraphListener:
        """A new detector on raw audio pushed as it arrives (``kwsint.engine.listener.GraphListener``): 16 kHz
        16-bit mono PCM in, detections by ESPHome's rule with the model's settings out, ``threshold`` (in [0, 1])
        replacing its probability cutoff. ValueError for metadata that does not say how to detect."""
        from .listener import GraphListener  # it imports this module

        return GraphListener(self, threshold=threshold)


class GraphStream:
    """One stream: the graph's states between invokes. Not thread-safe: one per thread."""

    def __init__(self, model: GraphModel):
        ptr = ffi.new("kws_stream **")
        _backend.check(lib.kws_stream_create(model._ptr, ptr), "kws_stream_create")
        self.model = model
        self._ptr = ffi.gc(ptr[0], lib.kws_stream_free)
        self._in_shape = model.input_shape
        self._in_len = model.input_shape[0] * model.input_shape[1]
        self._out_shape, self._out_dtype = model.output_shape, model.output_dtype
        self._out_len = model.output_shape[0] * model.output_shape[1]
        # The C callable holds the stream and the model (the stream uses the model's weights), not this
        # object, so no reference cycle keeps a stream alive.
        self.invoke = StreamInvoke(_INVOKE_ADDRESS, int(ffi.cast("uintptr_t", self._ptr)), (self._ptr, model),
                                   self._in_shape, self._out_shape, self._out_dtype.num,
                                   partial(_as_input, self._in_shape), _raise_invoke_status)

    invoke: Callable[[np.ndarray], np.ndarray]
    """``invoke(x)``: runs the graph once on the new frames ``x`` (int8, the input shape (frames, channels));
    returns a new array of the output codes, (frames, channels), uint8 or int8 as the graph's output. A C
    callable (``kwsint.engine._invoke.StreamInvoke``): around an invoke of a few microseconds, a Python method
    would cost as much again. Another array-like is converted, or refused with a ValueError."""

    def invoke_many(self, x: np.ndarray) -> np.ndarray:
        """``invoke`` on ``x[0]``, ``x[1]``, ... in turn, in one call into C: ``x`` is int8 (n, frames, channels),
        n inputs (a feature array of n * frames frames: ``features.reshape(n, frames, channels)``).

        Returns:
            A new array (n, output frames, output channels) of the n outputs, uint8 or int8 as the graph's output.
        """
        a = np.ascontiguousarray(x)
        if a.dtype != _INT8 or a.ndim != 3 or a.shape[1:] != self._in_shape:
            raise ValueError(f"x: int8 (n, {self._in_shape[0]}, {self._in_shape[1]}) expected, got {a.dtype} {a.shape}")
        n = a.shape[0]
        out = np.empty((n,) + self._out_shape, self._out_dtype)
        _backend.check(lib.kws_stream_invoke_many(self._ptr, ffi.from_buffer("int8_t[]", a), n * self._in_len,
                                                  ffi.from_buffer(out), n * self._out_len), "kws_stream_invoke_many")
        return out

    def time_invoke(self, x: np.ndarray, repeats: int = 1000) -> int:
        """Counter ticks (``kws_cycle_counter``) of ``repeats`` invokes on ``x`` in C, after one untimed invoke;
        the stream's state moves on as it would. For benchmarks: no Python in the loop."""
        a = _as_input(self._in_shape, x)
        if not (isinstance(repeats, int) and 0 <= repeats < 2**32):
            raise ValueError(f"repeats: an integer in [0, 2^32) expected, got {repeats!r}")
        out = np.empty(self._out_shape, self._out_dtype)
        ticks = ffi.new("uint64_t *")
        _backend.check(lib.kws_stream_time_invoke(self._ptr, ffi.from_buffer("int8_t[]", a), self._in_len,
                                                  ffi.from_buffer(out), self._out_len, repeats, ticks),
                       "kws_stream_time_invoke")
        return int(ticks[0])

    def reset(self) -> None:
        """Every state code := its zero point, as TFLM's ``reset()`` (the init codes are not restored)."""
        lib.kws_stream_reset(self._ptr)
