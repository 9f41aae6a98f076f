"""kwsint: bit-exact integer inference for streaming keyword-spotting models.

    model = kwsint.load("m.kwsq")
    result = model.infer(window)          # float (81, 20) LFBE window
    result.logits, result.posterior

``kwsint.reference`` is the arithmetic spec in numpy; ``kwsint.ops`` runs
single ops on the C backends listed by ``kwsint.backends()``.
"""

import os
from pathlib import Path

from . import default_model
from .engine import ops, reference
from .engine.backend import backends, compiled_backends
from .engine.blob import read_blob, save, write_blob
from .engine.metadata import ModelMetadata
from .engine.graph_model import GraphModel, GraphStream
from .engine.model import BatchInference, Detector, DetectorSteps, Inference, Model, Stream
from .engine.model import load as _engine_load
from .engine.modelspec import Frontend, Layer, ModelSpec
from .errors import BackendError, FormatError

__version__ = "0.1.0"


def load(path_or_bytes: str | os.PathLike | bytes, *, backend: str | None = None,
         weights: str = "auto", memory: str = "copy") -> Model | GraphModel:
    """Load a model: a ``.kwsq`` blob (a path, ``"default:NAME"`` or bytes; see ``kwsint.engine.model.load``), or
    a TFLite flatbuffer such as microWakeWord's ``.tflite``, imported in memory as ``kwsint-import`` would, with
    the JSON settings of the same name beside it (``okay_nabu.json`` for ``okay_nabu.tflite``) when there are some.

    Raises:
        FormatError: naming the file and what is wrong with it; OSError when a path cannot be read.
    """
    tflite = _tflite_source(path_or_bytes)
    if tflite is None:
        return _engine_load(path_or_bytes, backend=backend, weights=weights, memory=memory)
    from .interop.tflite_import import load_tflite  # interop is optional at run time (tests/test_layout.py)
    model, settings = tflite
    return load_tflite(model, settings=settings, backend=backend, memory=memory)


def _tflite_source(path_or_bytes: str | os.PathLike | bytes) -> tuple[Path | bytes, Path | None] | None:
    """(the model, its settings file or None) if path_or_bytes is a TFLite flatbuffer ("TFL3" at offset 4)."""
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        data = bytes(path_or_bytes)
        return (data, None) if data[4:8] == b"TFL3" else None
    if isinstance(path_or_bytes, str) and path_or_bytes.startswith(default_model.SHIPPED_PREFIX):
        return None
    path = Path(path_or_bytes)
    with open(path, "rb") as f:
        if f.read(8)[4:8] != b"TFL3":
            return None
    settings = path.with_suffix(".json")
    return path, settings if settings.is_file() else None


__all__ = [
    "BackendError", "BatchInference", "Detector", "DetectorSteps", "FormatError", "Frontend", "GraphModel", "GraphStream",
    "Inference", "Layer",
    "Model", "ModelMetadata", "ModelSpec", "Stream",
    "backends", "compiled_backends", "default_model", "load", "ops", "read_blob", "reference", "save", "write_blob",
]
