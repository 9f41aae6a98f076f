"""kwsint: bit-exact integer inference for streaming keyword-spotting models.

    model = kwsint.load("m.kwsq")
    result = model.infer(window)          # float (81, 20) LFBE window
    result.logits, result.posterior

``kwsint.reference`` is the arithmetic spec in numpy; ``kwsint.ops`` runs
single ops on the C backends listed by ``kwsint.backends()``.
"""

from . import default_model
from .engine import ops, reference
from .engine.backend import backends, compiled_backends
from .engine.blob import read_blob, save, write_blob
from .engine.metadata import ModelMetadata
from .engine.graph_model import GraphModel, GraphStream
from .engine.model import BatchInference, Detector, DetectorSteps, Inference, Model, Stream, load
from .engine.modelspec import Frontend, Layer, ModelSpec
from .errors import BackendError, FormatError

__version__ = "0.1.0"

__all__ = [
    "BackendError", "BatchInference", "Detector", "DetectorSteps", "FormatError", "Frontend", "GraphModel", "GraphStream",
    "Inference", "Layer",
    "Model", "ModelMetadata", "ModelSpec", "Stream",
    "backends", "compiled_backends", "default_model", "load", "ops", "read_blob", "reference", "save", "write_blob",
]
