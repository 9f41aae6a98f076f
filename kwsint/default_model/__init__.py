"""The default model shipped with kwsint: the wake phrase "hey lumen".

``scripts/train-default-model`` as of commit fd25111 made every file here from
the synthetic corpus of that time (espeak-ng voices alone) and records how in
``card.json``. The script now makes a successor from the multi-synthesizer
corpus (docs/data.md), which is not shipped: at its operating point it misses
most test phrases, clean ones included ("The default model's successor" there).

    M0.pt, M2.pt, M4.pt          weights-only checkpoints: float M0; 2-stage QAT M2 (8-bit weights) and M4 (4-bit)
    M0-int8.kwsq, M2.kwsq, M4.kwsq   their exports; M0 by post-training quantization calibrated on calibration.npz
    calibration.npz              training windows (kwsint.data.dataset format) for M0's calibration
    card.json                    corpus and training settings, sizes, and per model its validation FRR and
                                 false detections per hour at threshold 0.5 and at 10 false detections per hour
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
