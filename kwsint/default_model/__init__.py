"""The default model shipped with kwsint: the wake phrase "hey lumen".

``scripts/train-default-model`` made every file here from the synthetic corpus
of docs/data.md (espeak-ng, flite and festival voices, each utterance with its
own pitch and vocal-tract speed, rooms, channels, noise, recorded people) and
records how in ``card.json``; ``card.md`` states its figures, those on
synthesizers held out of training included (docs/data.md, "What models learn
from it").

    M0.pt, M2.pt, M4.pt          weights-only checkpoints: float M0; 2-stage QAT M2 (8-bit weights) and M4 (4-bit)
    M0-int8.kwsq, M2.kwsq, M4.kwsq   their exports; M0 by post-training quantization calibrated on calibration.npz
    calibration.npz              training windows (kwsint.data.dataset format) for M0's calibration
    card.json, card.md           corpus and training settings, sizes; per model its operating point (also in
                                 its metadata), its validation and test figures there with intervals, and its
                                 detections in the samples; the held-out-synthesizer table
    samples/                     clean test clips of speakers the models never saw: three with the phrase, and
                                 ordinary speech; LFBE features (.npy), audio (.wav), and manifest.json with
                                 the phrase's time spans (kwsint-eval's format)

    model = kwsint.load("default:M4")
    kwsint.default_model.path("samples")
"""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

CONFIGS = ("M0-int8", "M2", "M4")
"""The shipped .kwsq models."""

SHIPPED_PREFIX = "default:"
"""kwsint.load("default:M4"), and every command's model argument: a model shipped here."""


def path(name: str = "") -> Path:
    """The path of a shipped file (``"M4.kwsq"``, ``"samples/manifest.json"``), or of the folder for ``""``."""
    p = Path(str(files(__name__))) / name
    if not p.exists():
        raise FileNotFoundError(f"{p}: not shipped with kwsint")
    return p


def model_path(ref: str) -> Path:
    """The file of ``"default:NAME"``, NAME one of CONFIGS: what every model path argument accepts."""
    name = ref.removeprefix(SHIPPED_PREFIX)
    if name not in CONFIGS:
        raise ValueError(f"{ref}: no such shipped model; shipped: {', '.join(SHIPPED_PREFIX + c for c in CONFIGS)}")
    return path(f"{name}.kwsq")


def card() -> dict:
    """card.json: how the shipped models were made and what they measured."""
    return json.loads(path("card.json").read_text())
