"""What a model blob tells its user besides the integers (docs/format.md section 3.6).

The wake phrase, the recommended operating point (threshold, smoothing and
lockout, chosen on validation streams), where the training data came from, and
a version string. The engine never reads them; the tools do: ``kwsint-run``
uses the operating point unless told otherwise, ``kwsint-info`` shows them.
Stored as one UTF-8 JSON object with the keys below, every key optional.

A microWakeWord model imported from TFLite (``kwsint.interop.tflite_import``)
states its own detection settings instead of an operating point: ESPHome's rule
(the sum of the last ``sliding_window_size`` uint8 outputs against
``int(probability_cutoff * 255)`` times that size, ``kwsint.engine.graph_detector``)
is not kwsint's detector, so they keep microWakeWord's names and meaning rather
than being squeezed into ``threshold`` and ``smoothing_s``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

from ..errors import FormatError

MAX_METADATA_BYTES = 16384
MAX_SMOOTHING_S = 60.0
MAX_LOCKOUT_S = 3600.0
_TEXT_LIMITS = {"phrase": 200, "provenance": 4096, "model_version": 100}
_NUMBER_LIMITS = {"threshold": 1.0, "smoothing_s": MAX_SMOOTHING_S, "lockout_s": MAX_LOCKOUT_S,
                  "probability_cutoff": 1.0}
_INTEGER_LIMITS = {"sliding_window_size": 1024, "feature_step_size": 1000}
MAX_LANGUAGES = 64


@dataclass(frozen=True)
class ModelMetadata:
    """A model's description; ``None`` means "not stated".

    Attributes:
        phrase: the wake phrase, e.g. ``"hey lumen"`` (1..200 characters).
        threshold: recommended posterior threshold, in [0, 1].
        smoothing_s: recommended posterior smoothing window, seconds, in [0, 60].
        lockout_s: recommended time after a detection that cannot fire, seconds, in [0, 3600].
        provenance: free text on the training data and recipe (up to 4096 characters).
        model_version: the model's own version string (up to 100 characters).
        probability_cutoff: microWakeWord's detection cutoff on the model's output probability, in [0, 1].
        sliding_window_size: microWakeWord's number of recent outputs averaged for detection, 1..1024.
        feature_step_size: microWakeWord's feature step in milliseconds, 1..1000.
        trained_languages: the languages the model was trained on (up to 64 tags of 1..35 printable
            characters), as microWakeWord states them.
    """

    phrase: str | None = None
    threshold: float | None = None
    smoothing_s: float | None = None
    lockout_s: float | None = None
    provenance: str | None = None
    model_version: str | None = None
    probability_cutoff: float | None = None
    sliding_window_size: int | None = None
    feature_step_size: int | None = None
    trained_languages: tuple[str, ...] | None = None

    def __post_init__(self):
        if isinstance(self.trained_languages, list):  # JSON gives a list; keep the dataclass hashable
            object.__setattr__(self, "trained_languages", tuple(self.trained_languages))
        for key, value in asdict(self).items():
            problem = value_problem(key, value)
            if problem:
                raise ValueError(f"metadata {key}: {problem}")

    def to_json(self) -> bytes:
        """The stored form: compact UTF-8 JSON of the stated keys, sorted (b"{}" when none is stated)."""
        stated = {k: v for k, v in asdict(self).items() if v is not None}
        data = json.dumps(stated, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        return data.encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes, where: str) -> ModelMetadata:
        """Parse and check the stored form; ``where`` names the blob in the ``FormatError``."""
        try:
            obj = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
        except (UnicodeDecodeError, ValueError) as e:
            raise FormatError(f"{where}: metadata: expected a UTF-8 JSON object: {e}") from None
        return cls.from_dict(obj, where, FormatError)

    @classmethod
    def from_dict(cls, obj, where: str, error: type[Exception] = ValueError) -> ModelMetadata:
        """Check a dict of stated keys (as ``stated`` gives, or a checkpoint holds); ``error`` names ``where``."""
        if not isinstance(obj, dict):
            raise error(f"{where}: metadata: expected a JSON object, got {type(obj).__name__}")
        known = tuple(cls.__dataclass_fields__)
        for key, value in obj.items():
            if key not in known:
                raise error(f"{where}: metadata: unknown key {key!r}; known: {', '.join(known)}")
            problem = value_problem(key, value)
            if problem:
                raise error(f"{where}: metadata.{key}: {problem}")
        return cls(**obj)

    def stated(self) -> dict:
        """The stated keys and their values."""
        return {k: v for k, v in asdict(self).items() if v is not None}


def describe(stated: dict) -> str:
    """One line of stated metadata (``ModelMetadata.stated()`` or its JSON form) for a report; provenance, free
    text of any length, only as "(and provenance)"."""
    def value(v) -> str:
        if isinstance(v, str):
            return repr(v)
        return ",".join(v) if isinstance(v, (list, tuple)) else f"{v:g}"

    text = ", ".join(f"{k} {value(v)}" for k, v in stated.items() if k != "provenance") or "none stated"
    return text + (" (and provenance)" if "provenance" in stated else "")


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a number")


def value_problem(key: str, value) -> str | None:
    """Why ``value`` cannot be metadata ``key``, or None."""
    if value is None:
        return None
    if key in _TEXT_LIMITS:
        if not isinstance(value, str):
            return f"expected a string, got {type(value).__name__}"
        if not 1 <= len(value) <= _TEXT_LIMITS[key]:
            return f"expected 1..{_TEXT_LIMITS[key]} characters, got {len(value)}"
        if key != "provenance" and any(not c.isprintable() for c in value):
            return "expected printable characters (no newlines or control characters)"
        return None
    if key == "trained_languages":
        if not isinstance(value, (list, tuple)) or not 1 <= len(value) <= MAX_LANGUAGES:
            return f"expected a list of 1..{MAX_LANGUAGES} language tags, got {str(value)[:80]}"
        for tag in value:
            if not isinstance(tag, str) or not 1 <= len(tag) <= 35 or any(not c.isprintable() for c in tag):
                return f"expected language tags of 1..35 printable characters, got {str(tag)[:80]!r}"
        return None
    if key in _INTEGER_LIMITS:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _INTEGER_LIMITS[key]:
            return f"expected an integer in 1..{_INTEGER_LIMITS[key]}, got {value!r}"
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return f"expected a finite number, got {value!r}"
    top = _NUMBER_LIMITS[key]
    if not 0 <= value <= top:
        return f"expected a number in [0, {top:g}], got {value!r}"
    return None
