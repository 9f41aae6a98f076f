"""``GraphModel`` and ``GraphStream``: a streaming graph (blob kind 1, or a ``.tflite`` file imported in memory)
on a C backend, invoke by invoke, as TFLM runs it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .._kwsint_c import ffi, lib
from ..errors import FormatError
from . import backend as _backend
from .blob import read_blob
from .graph import GraphSpec

if TYPE_CHECKING:
    from .listener import GraphListener


# What GraphStream.invoke uses, looked up once: at a few microseconds per invoke, Python's lookups count.
_INT8 = np.dtype(np.int8)
_ndarray = np.ndarray
_empty = np.empty
_from_buffer = ffi.from_buffer
_invoke = lib.kws_stream_invoke
_OK = lib.KWS_OK


class GraphModel:
    """A loaded streaming graph: immutable, safe to share between threads; each thread runs its own
    ``stream()``."""

    def __init__(self, data: bytes, *, backend: str | None = None, source: str = "<bytes>"):
        spec = read_blob(data, source)
        if not isinstance(spec, GraphSpec):
            raise FormatError(f"{source}: model_kind: expected 1 (a streaming graph), got a dense window model")
        self.spec: GraphSpec = spec
        self.blob_bytes = len(data)
        be = _backend.resolve(backend)
        self._ptr = _backend.load_model(data, be, source, lib.KWS_WEIGHTS_INT8)
        self.backend: str = _backend.name_of(be)
        info = ffi.new("kws_graph_info *")
        lib.kws_model_graph_info(self._ptr, info)
        self.input_shape = (int(info.input_frames), int(info.input_channels))
        self.output_shape = (int(info.output_frames), int(info.output_channels))
        self.output_dtype = np.dtype(np.uint8 if info.output_uint8 else np.int8)
        self.state_bytes = int(info.state_bytes)

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
        self._y = np.empty(self._out_shape, self._out_dtype)  # invoke's output, copied out
        self._y_c = _from_buffer(self._y)

    def invoke(self, x: np.ndarray) -> np.ndarray:
        """Run the graph once on the new frames ``x`` (int8, the input shape (frames, channels)).

        Returns:
            A new array of the output codes, (frames, channels), uint8 or int8 as the graph's output.
        """
        # As few Python operations as the checks allow: each costs more right after an invoke, whose
        # working set has pushed Python's out of the cache. ffi.from_buffer refuses a non-contiguous array.
        if type(x) is not _ndarray or x.dtype is not _INT8 or x.shape != self._in_shape:
            x = self._input(x)
        try:
            xp = _from_buffer("int8_t[]", x)
        except ValueError:
            xp = _from_buffer("int8_t[]", np.ascontiguousarray(x))
        status = _invoke(self._ptr, xp, self._in_len, self._y_c, self._out_len)
        if status != _OK:  # the shapes were checked above
            _backend.check(status, "kws_stream_invoke")
        return self._y.copy()

    def _input(self, x) -> np.ndarray:
        a = np.asarray(x)
        if a.dtype != _INT8 or a.shape != self._in_shape:
            raise ValueError(f"x: int8 {self._in_shape} expected, got {a.dtype} {a.shape}")
        return a

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
        out = _empty((n,) + self._out_shape, self._out_dtype)
        status = lib.kws_stream_invoke_many(self._ptr, _from_buffer("int8_t[]", a), n * self._in_len,
                                            _from_buffer(out), n * self._out_len)
        if status != _OK:  # the shapes were checked above
            raise RuntimeError(f"kws_stream_invoke_many: status {status}")
        return out

    def time_invoke(self, x: np.ndarray, repeats: int = 1000) -> int:
        """Counter ticks (``kws_cycle_counter``) of ``repeats`` invokes on ``x`` in C, after one untimed invoke;
        the stream's state moves on as it would. For benchmarks: no Python in the loop."""
        a = np.ascontiguousarray(x)
        if a.dtype != _INT8 or a.shape != self._in_shape:
            raise ValueError(f"x: int8 {self._in_shape} expected, got {a.dtype} {a.shape}")
        if not (isinstance(repeats, int) and 0 <= repeats < 2**32):
            raise ValueError(f"repeats: an integer in [0, 2^32) expected, got {repeats!r}")
        out = _empty(self._out_shape, self._out_dtype)
        ticks = ffi.new("uint64_t *")
        status = lib.kws_stream_time_invoke(self._ptr, _from_buffer("int8_t[]", a), self._in_len, _from_buffer(out),
                                            self._out_len, repeats, ticks)
        _backend.check(status, "kws_stream_time_invoke")
        return int(ticks[0])

    def reset(self) -> None:
        """Every state code := its zero point, as TFLM's ``reset()`` (the init codes are not restored)."""
        lib.kws_stream_reset(self._ptr)
