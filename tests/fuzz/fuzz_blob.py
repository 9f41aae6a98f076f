"""Coverage-guided fuzzing of the ``.kwsq`` blob loaders: ``kwsint.engine.blob.read_blob`` and the C loader.

Each input is checked as given and, when it is at least a header long, with
payload_bytes and the payload CRC32 rewritten to agree with the bytes (so that
mutations reach the field checks instead of stopping at the checksum). For
each:

* ``read_blob`` accepts it or raises ``FormatError``;
* the C loader (``kws_model_load_with`` through cffi, on every usable backend,
  int8 and packed weight storage) accepts exactly when ``read_blob`` does, and
  a refusal names a field (a metadata JSON that ``read_blob`` refuses is the
  exception: the C loader frames the record and does not read it, rule 45c);
* ``kwsint.load`` accepts it or raises ``FormatError`` (what it documents);
* a model that loads runs a zero window, a stream and a detector, with the
  same logits and posterior as ``kwsint.reference`` computes from the spec;
  a streaming graph (kind 1) invokes as ``ReferenceStream`` does.

Run (atheris, libFuzzer flags; new inputs go to the first corpus folder)::

    python tests/fuzz/fuzz_blob.py -max_total_time=300 -rss_limit_mb=2048 -timeout=10 \\
        /tmp/blob-corpus tests/fuzz/corpus/blob

``check(data)`` is the target; tests/test_fuzz.py replays the checked-in
corpus and tests/fuzz/regressions/blob through it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import struct
import sys
import zlib


def _instrumented():
    """Python coverage of kwsint guides the fuzzer when run as a script; a plain import is not instrumented."""
    if __name__ != "__main__":
        return contextlib.nullcontext()
    import atheris

    return atheris.instrument_imports(include=["kwsint"])


with _instrumented():
    import numpy as np

    import kwsint
    from kwsint import reference
    from kwsint._kwsint_c import ffi, lib
    from kwsint.engine import backend as _backend
    from kwsint.engine.blob import HEADER, read_blob
    from kwsint.engine.graph import GraphSpec, ReferenceStream
    from kwsint.engine.graph_model import GraphModel
    from kwsint.engine.model import WEIGHT_STORAGE
    from kwsint.errors import FormatError

# What the C loader may answer for a malformed blob: a format error, never an argument, backend or memory failure.
C_FORMAT_ERRORS = {lib.KWS_ERR_TRUNCATED, lib.KWS_ERR_MAGIC, lib.KWS_ERR_VERSION, lib.KWS_ERR_CHECKSUM,
                   lib.KWS_ERR_FIELD, lib.KWS_ERR_SIZE}


def consistent_header(data: bytes) -> bytes:
    """``data`` with payload_bytes and payload_crc32 rewritten to describe the bytes after the header."""
    payload = data[HEADER.size:]
    return data[:8] + struct.pack("<II", len(payload), zlib.crc32(payload)) + payload


def c_status(data: bytes, backend: str, weights: str) -> tuple[int, str | None]:
    """The C loader's status for the blob and the field its refusal names (None when it loads)."""
    out = ffi.new("kws_model **")
    err = ffi.new("kws_load_error *")
    status = lib.kws_model_load_with(ffi.from_buffer(data), len(data), _backend.resolve(backend),
                                     WEIGHT_STORAGE[weights], out, err)
    if status == lib.KWS_OK:
        lib.kws_model_free(out[0])
        return status, None
    assert out[0] == ffi.NULL and err.field != ffi.NULL, "C loader: a refusal must name the field, with no model"
    return status, ffi.string(err.field).decode()


def c_loads(data: bytes, backend: str, weights: str) -> bool:
    """Whether the C loader accepts the blob; a refusal must be a format error (C_FORMAT_ERRORS)."""
    status, _ = c_status(data, backend, weights)
    assert status == lib.KWS_OK or status in C_FORMAT_ERRORS, (
        f"C loader: status {_backend.STATUS_NAMES.get(status, status)} for a blob")
    return status == lib.KWS_OK


def exercise(data: bytes, spec, weights: str) -> None:
    """Load through kwsint.load and run a zero window, a stream and a detector against the reference."""
    model = kwsint.load(data, weights=weights)
    window = np.zeros(model.window_shape, dtype=np.float32)
    logits, posterior = reference.forward(spec, window)
    r = model.infer(window)
    assert np.array_equal(r.logits, logits) and r.posterior_q16 == int(posterior), (r, logits, posterior)
    stream = model.stream()
    stream.push(window)
    s = stream.infer()
    assert np.array_equal(s.logits, logits) and s.posterior_q16 == int(posterior)
    frames = np.zeros((model.window_shape[0] + 3, model.window_shape[1]), dtype=np.float32)
    steps = model.detector(hop=1).push(frames)
    assert len(steps.frame) == 4, steps.frame  # one step at the first full window, then one per frame
    assert (steps.posterior_q16 == int(posterior)).all() and (steps.logits == logits).all()


def exercise_graph(data: bytes, spec) -> None:
    """A streaming graph (kind 1): kwsint.load's GraphModel invokes as ReferenceStream does, from the init
    codes and after a reset."""
    model = kwsint.load(data)
    assert isinstance(model, GraphModel)
    stream, ref = model.stream(), ReferenceStream(spec)
    x = np.zeros(model.input_shape, dtype=np.int8)
    assert np.array_equal(stream.invoke(x), ref.invoke(x))
    stream.reset()
    ref.reset()
    x = np.full(model.input_shape, 127, dtype=np.int8)
    assert np.array_equal(stream.invoke(x), ref.invoke(x))


def check_one(data: bytes) -> None:
    metadata_only = False  # refused only for its metadata JSON, which the C loader frames and does not read
    try:
        spec = read_blob(data)
    except FormatError as e:
        spec = None
        metadata_only = bool(re.search(r": metadata(\.\w+)?: (?!truncated)", str(e)))
    for backend in kwsint.backends():
        for weights in WEIGHT_STORAGE:
            loaded = c_loads(data, backend, weights)
            if metadata_only:  # C accepts, or refuses what follows the record (Python stopped at the JSON)
                assert loaded or c_status(data, backend, weights)[1] == "payload", (
                    f"read_blob refuses only the metadata JSON, the C loader ({backend}, {weights}) refuses "
                    f"{c_status(data, backend, weights)[1]}")
                continue
            assert loaded == (spec is not None), (
                f"loaders disagree: read_blob {'accepts' if spec else 'refuses'}, the C loader "
                f"({backend}, {weights}) {'accepts' if loaded else 'refuses'}")
    if spec is None:
        try:
            kwsint.load(data)
        except FormatError:
            return
        raise AssertionError("kwsint.load accepted a blob read_blob refuses")
    if isinstance(spec, GraphSpec):
        exercise_graph(data, spec)
        return
    for weights in WEIGHT_STORAGE:
        exercise(data, spec, weights)


def check(data: bytes) -> None:
    """The fuzz target: raises AssertionError (or an undocumented exception) on a bug."""
    data = bytes(data)
    check_one(data)
    if len(data) >= HEADER.size:
        fixed = consistent_header(data)
        if fixed != data:
            check_one(fixed)


def main(argv: list[str]) -> None:
    import atheris

    # libFuzzer runs argv[0] through the shell for -merge=1 and -minimize_crash=1: make it this interpreter and
    # this script (the script itself is not executable).
    command = f"{shlex.quote(sys.executable)} {shlex.quote(os.path.abspath(__file__))}"
    atheris.Setup([command, *argv[1:]], check)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
