"""The compiled C backends: which exist, which this CPU runs, and which to use."""

from __future__ import annotations

import os

from .._kwsint_c import ffi, lib
from ..errors import BackendError, FormatError

ENV_VAR = "KWSINT_BACKEND"

STATUS_NAMES = {
    lib.KWS_ERR_ARGUMENT: "argument out of range",
    lib.KWS_ERR_TRUNCATED: "truncated",
    lib.KWS_ERR_MAGIC: "bad magic",
    lib.KWS_ERR_VERSION: "unknown version",
    lib.KWS_ERR_CHECKSUM: "checksum mismatch",
    lib.KWS_ERR_FIELD: "field out of range",
    lib.KWS_ERR_SIZE: "sizes do not add up",
    lib.KWS_ERR_NOMEM: "out of memory",
    lib.KWS_ERR_BACKEND: "unusable backend",
}


# The loader's refusals of a blob's bytes (kws_load_error names the field).
_FORMAT_STATUSES = {lib.KWS_ERR_TRUNCATED, lib.KWS_ERR_MAGIC, lib.KWS_ERR_VERSION, lib.KWS_ERR_CHECKSUM,
                    lib.KWS_ERR_FIELD, lib.KWS_ERR_SIZE}


def check(status: int, what: str) -> None:
    """Raise the exception a C status other than KWS_OK stands for, the message starting with ``what``:
    ValueError for an argument out of range, MemoryError, BackendError, FormatError for a refused blob."""
    if status == lib.KWS_OK:
        return
    message = f"{what}: {STATUS_NAMES.get(status, f'status {status}')}"
    if status == lib.KWS_ERR_ARGUMENT:
        raise ValueError(message)
    if status == lib.KWS_ERR_NOMEM:
        raise MemoryError(message)
    if status == lib.KWS_ERR_BACKEND:
        raise BackendError(message)
    if status in _FORMAT_STATUSES:
        raise FormatError(message)
    raise RuntimeError(message)


MEMORY = ("copy", "arena", "in_place")
"""How a model is loaded (Model.memory): "copy", kws_model_load, which copies what the model needs into memory of
its own; "arena", kws_model_load_into an arena of kws_model_arena_bytes (allocated here); "in_place", the same
with KWS_LOAD_IN_PLACE: weights are read where they lie in the blob wherever a kernel reads them as stored."""


def load_model(data: bytes, be, source: str, storage: int, memory: str = "copy"):
    """The C model of blob ``data`` (``kws_model *``, freed with the returned handle, which keeps the arena and
    ``data`` alive) and the bytes of its arena (None for "copy"), or FormatError naming ``source``, the field the
    C loader refused and its offset."""
    if memory not in MEMORY:
        raise ValueError(f"memory: expected one of {', '.join(MEMORY)}, got {memory!r}")
    out = ffi.new("kws_model **")
    err = ffi.new("kws_load_error *")
    blob = ffi.from_buffer(data)
    if memory == "copy":
        status = lib.kws_model_load_with(blob, len(data), be, storage, out, err)
    else:
        flags = lib.KWS_LOAD_IN_PLACE if memory == "in_place" else 0
        need = ffi.new("size_t *")
        status = lib.kws_model_arena_bytes(blob, len(data), be, storage, flags, need, err)
        if status == lib.KWS_OK:
            arena = ffi.new("uint64_t[]", (need[0] + 7) // 8)  # 8-byte aligned
            status = lib.kws_model_load_into(blob, len(data), be, storage, flags, arena, need[0], out, err)
    if status in _FORMAT_STATUSES:
        field = ffi.string(err.field).decode() if err.field != ffi.NULL else "?"
        raise FormatError(f"{source}: {field}: {STATUS_NAMES[status]} (C loader, offset {err.offset})")
    check(status, f"{source}: C loader")
    if memory == "copy":
        return ffi.gc(out[0], lib.kws_model_free), None
    return ffi.gc(out[0], lambda _model, keep=(arena, blob, data): None), need[0]  # the arena and blob outlive it


def _compiled() -> dict[str, object]:
    out = {}
    for i in range(lib.kws_backend_count()):
        be = lib.kws_backend_at(i)
        out[ffi.string(lib.kws_backend_name(be)).decode()] = be
    return out


_COMPILED = _compiled()


def compiled_backends() -> list[str]:
    """Every backend compiled into this build, fastest first."""
    return list(_COMPILED)


def backends() -> list[str]:
    """The compiled backends this CPU can run, fastest first (``"portable"`` always)."""
    return [name for name, be in _COMPILED.items() if lib.kws_backend_usable(be)]


def resolve(name: str | None = None):
    """The C backend handle for ``name``; None means ``$KWSINT_BACKEND`` or the fastest usable."""
    if name is None:
        name = os.environ.get(ENV_VAR) or None
    if name is None:
        return _COMPILED[backends()[0]]
    be = _COMPILED.get(name)
    if be is None:
        raise BackendError(f"unknown backend {name!r}; compiled: {', '.join(_COMPILED)}")
    if not lib.kws_backend_usable(be):
        raise BackendError(f"backend {name!r} is compiled but this CPU cannot run it; usable: {', '.join(backends())}")
    return be


def name_of(be) -> str:
    return ffi.string(lib.kws_backend_name(be)).decode()
