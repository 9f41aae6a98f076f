"""Training checkpoints: written atomically, read as data only.

A checkpoint is a ``torch.save`` of a dict of tensors and plain containers::

    {"kwsint_checkpoint": 1, "stage": "float" | "stage1" | "stage2",
     "arch": "conv",            # only for a ConvNet; absent for the dense family (KWSNet)
     "config": NetConfig.to_dict() or ConvConfig.to_dict(), "model": the model's state_dict(),
     "train": {...},            # optional: step, optimizer state, history
     "metadata": {...}}         # optional: ModelMetadata.stated(), what kwsint-export puts in the blob

It is loaded with ``torch.load(weights_only=True)`` only, so a file that would
run code while unpickling is refused, and only in the zip format (PyTorch 1.6
and later), whose records are checked against their sizes before anything is
allocated. A bare ``state_dict`` of a ``KWSNet``
(saved by a user's own training loop) is accepted too when the caller supplies
its ``NetConfig``; it is taken as a float-stage model. Everything is checked
before use: each problem raises ``CheckpointError`` naming the file and field.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from dataclasses import dataclass

import torch

from ...engine.metadata import ModelMetadata
from ...errors import CheckpointError
from ...io.atomic import atomic_writer
from .conv import ConvConfig, ConvNet
from .model import STAGES, KWSNet, NetConfig

CHECKPOINT_VERSION = 1


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model (on the CPU) and, if saved, its training state."""

    model: KWSNet | ConvNet
    train: dict | None
    source: str
    metadata: ModelMetadata = ModelMetadata()


def save_checkpoint(path: str | os.PathLike, model: KWSNet | ConvNet, train: dict | None = None,
                    metadata: ModelMetadata | None = None) -> None:
    """Write a checkpoint atomically: a temporary file in the same folder, then a rename. ``metadata`` (the wake
    phrase, the recommended operating point, ...) goes into every blob kwsint-export makes of it."""
    data = {"kwsint_checkpoint": CHECKPOINT_VERSION, "stage": model.stage, "config": model.config.to_dict(),
            "model": model.state_dict()}
    if model.arch != "dense":
        data["arch"] = model.arch
    if train is not None:
        data["train"] = train
    if metadata is not None and metadata.stated():
        data["metadata"] = metadata.stated()
    with atomic_writer(path) as f:
        torch.save(data, f)


def _fail(source: str, field: str, message: str) -> CheckpointError:
    return CheckpointError(f"{source}: {field}: {message}")


def _read(path: str | os.PathLike, source: str):
    try:
        with open(path, "rb") as f:
            is_zip = zipfile.is_zipfile(f)
    except zipfile.BadZipFile:  # on a file object it raises for some malformed ends (a multi-disk archive)
        is_zip = False
    except FileNotFoundError:
        raise CheckpointError(f"{source}: file not found") from None
    except OSError as e:
        raise CheckpointError(f"{source}: not a readable file ({e.strerror or e})") from None
    if not is_zip:
        # The legacy (pre-1.6) format allocates each storage at the size its pickle declares before reading the
        # data: a few bytes could ask for GiBs. The zip format checks each record's size first.
        raise CheckpointError(f"{source}: not a readable PyTorch checkpoint (expected the zip format that torch.save "
                              "writes since PyTorch 1.6; the legacy format is refused)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's message is long; keep its line naming the refused global or the bad opcode.
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        detail = next((line for line in lines if "GLOBAL" in line or "Unsupported" in line), lines[-1] if lines else "")
        if "GLOBAL" in detail:
            raise CheckpointError(
                f"{source}: refused: the file holds Python objects that loading as data (weights_only=True) "
                f"does not allow, and kwsint never runs code from a checkpoint ({detail})") from None
        raise CheckpointError(f"{source}: not a readable PyTorch checkpoint (malformed pickle: {detail})") from None
    except MemoryError:
        raise
    except Exception as e:
        # torch.load parses untrusted bytes and lets its parsers' own errors out: KeyError for a memo index the
        # pickle never stored, and others (found by tests/fuzz/fuzz_checkpoint.py). Each one means a malformed file.
        raise CheckpointError(f"{source}: not a readable PyTorch checkpoint ({type(e).__name__}: {e})") from None


def _config(source: str, raw, kind: type = NetConfig) -> NetConfig | ConvConfig:
    if not isinstance(raw, dict):
        raise _fail(source, "config", f"expected a dict, got {type(raw).__name__}")
    want = set(kind.__dataclass_fields__)
    missing, extra = sorted(want - set(raw)), sorted(set(raw) - want)
    if missing or extra:
        raise _fail(source, "config", f"expected the fields {sorted(want)}; missing {missing}, unexpected {extra}")
    try:
        return kind.from_dict(raw)
    except (TypeError, ValueError) as e:
        raise _fail(source, "config", str(e)) from None


# Dense weights a configuration may declare beyond the values its file holds (4 MiB of float32): small models
# are built and then checked tensor by tensor, larger ones only when the file holds as many values.
_UNHELD_WEIGHTS = 1 << 20


def _check_size(source: str, state, cfg: NetConfig | ConvConfig) -> None:
    """Refuses, before the model is built, a configuration whose dense weights the file does not hold: a few
    bytes of configuration can declare GiBs of weights, and a tensor saved as a view (stride 0) can declare
    billions of values over a 4-byte storage."""
    if not isinstance(state, dict):
        raise _fail(source, "model", f"expected a state dict, got {type(state).__name__}")
    held = 0
    for k, t in state.items():
        if isinstance(t, torch.Tensor):
            if t.numel() * t.element_size() > t.untyped_storage().nbytes():
                raise _fail(source, f"model.{k}", f"expected a tensor that holds its {t.numel()} values, got a view "
                                                  f"of {t.untyped_storage().nbytes()} bytes")
            held += t.numel()
    if isinstance(cfg, ConvConfig):
        declared = cfg.macs  # each weight is used once per invoke
    else:
        sizes = (cfg.input_size, *cfg.sizes, 2)
        declared = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    if declared > max(held, _UNHELD_WEIGHTS):
        raise _fail(source, "model", f"expected the {declared} dense weights of the configuration, got tensors of "
                                     f"{held} values in all")


def _check_state(source: str, state, model: KWSNet | ConvNet) -> None:
    if not isinstance(state, dict):
        raise _fail(source, "model", f"expected a state dict, got {type(state).__name__}")
    want = model.state_dict()
    missing = [k for k in want if k not in state]
    if missing:
        raise _fail(source, f"model.{missing[0]}",
                    f"missing ({len(missing)} tensors missing: {', '.join(missing[:5])})")
    extra = [k for k in state if k not in want]
    if extra:
        raise _fail(source, f"model.{extra[0]}", f"not a tensor of this model ({len(extra)} unexpected)")
    for k, ref in want.items():
        t = state[k]
        if not isinstance(t, torch.Tensor):
            raise _fail(source, f"model.{k}", f"expected a tensor, got {type(t).__name__}")
        if tuple(t.shape) != tuple(ref.shape):
            raise _fail(source, f"model.{k}", f"expected shape {tuple(ref.shape)}, got {tuple(t.shape)}")
        if ref.is_floating_point():
            if not t.is_floating_point():
                raise _fail(source, f"model.{k}", f"expected a floating-point tensor, got {t.dtype}")
            bad = ~torch.isfinite(t)
            if bad.any():
                raise _fail(source, f"model.{k}", f"expected finite values, got {int(bad.sum())} NaN/Inf")
        elif t.dtype != ref.dtype:
            raise _fail(source, f"model.{k}", f"expected {ref.dtype}, got {t.dtype}")
    if isinstance(model, ConvNet):
        return
    for i in range(len(model.norms)):
        if (state[f"norms.{i}.running_var"] < 0).any():
            raise _fail(source, f"model.norms.{i}.running_var", "expected variances >= 0")
    if (state["feature_inv_std"] <= 0).any():
        raise _fail(source, "model.feature_inv_std", "expected positive values")


def _check_ranges(source: str, model: KWSNet | ConvNet) -> None:
    if isinstance(model, ConvNet) and not model.calibrated:
        raise _fail(source, "model.logit_range", "expected low < high in a stage-2 checkpoint (the calibrated range)")
    if isinstance(model, KWSNet) and not model.calibrated:
        raise _fail(source, "model.input_clip", "expected > 0 in a stage-2 checkpoint (the calibrated input clip)")
    for name in ("dw_range", "logit_range") if isinstance(model, ConvNet) else ("bn_range", "logit_range"):
        r = getattr(model, name).reshape(-1, 2)
        if (r[:, 0] > r[:, 1]).any():
            raise _fail(source, f"model.{name}", "expected low <= high for every range")


def load_checkpoint(path: str | os.PathLike, *, config: NetConfig | None = None) -> Checkpoint:
    """Load and check a checkpoint.

    Args:
        path: a file written by ``save_checkpoint`` (or ``kwsint-train``), of either family (its ``arch``), or
            a bare ``KWSNet.state_dict()`` when ``config`` is given.
        config: the configuration of a bare state dict (ignored otherwise).

    Raises:
        CheckpointError: unsafe pickle, unreadable file, unknown version or
            stage, bad config, missing/unexpected/misshapen tensors, NaN/Inf.
    """
    source = str(path)
    data = _read(path, source)
    if not isinstance(data, dict):
        raise _fail(source, "top level", f"expected a dict, got {type(data).__name__}")
    if "kwsint_checkpoint" in data:
        if data["kwsint_checkpoint"] != CHECKPOINT_VERSION:
            raise _fail(source, "kwsint_checkpoint", f"expected version {CHECKPOINT_VERSION}, "
                                                     f"got {data['kwsint_checkpoint']!r}")
        for key in ("stage", "config", "model"):
            if key not in data:
                raise _fail(source, key, "missing")
        stage = data["stage"]
        if stage not in STAGES:
            raise _fail(source, "stage", f"expected one of {', '.join(STAGES)}, got {stage!r}")
        arch = data.get("arch", "dense")
        if arch not in ("dense", "conv"):
            raise _fail(source, "arch", f"expected dense or conv, got {arch!r}")
        cfg = _config(source, data["config"], ConvConfig if arch == "conv" else NetConfig)
        state, train = data["model"], data.get("train")
        metadata = ModelMetadata.from_dict(data.get("metadata", {}), source, CheckpointError)
    elif config is not None:
        stage, cfg, state, train, metadata = "float", config, data, None, ModelMetadata()
    else:
        raise _fail(source, "kwsint_checkpoint", "missing: not a kwsint checkpoint (a bare state dict needs "
                                                 "its configuration, e.g. --config M2)")
    _check_size(source, state, cfg)
    model = ConvNet(cfg, stage) if isinstance(cfg, ConvConfig) else KWSNet(cfg, stage)
    _check_state(source, state, model)
    model.load_state_dict(state)
    if stage == "stage2":
        _check_ranges(source, model)
    if train is not None and not isinstance(train, dict):
        raise _fail(source, "train", f"expected a dict, got {type(train).__name__}")
    return Checkpoint(model, train, source, metadata)
