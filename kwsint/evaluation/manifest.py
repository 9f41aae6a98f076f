"""The evaluation manifest (docs/evaluation.md): labelled streams of feature files, read and checked."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np

from ..errors import FormatError
from ..io.urls import UrlArray, is_url, open_npy

FRAME_SHIFT_S = 0.010
"""Seconds between feature frames."""
TIME_EPS_S = 1e-6
"""Times closer than this (seconds) compare equal: a detection exactly on a span boundary is inside it."""
KINDS = ("positive", "negative")
_STREAM_FIELDS = {"features", "microfrontend", "kind", "spans", "tags"}
_NAME = re.compile(r"[A-Za-z0-9_.+-]+")
"""A tag's key or value: letters, digits and ``_.+-`` (what a --select argument can spell)."""

# --- manifest ----------------------------------------------------------------------


@dataclass(frozen=True)
class LabelledStream:
    """One stream of a manifest.

    Attributes:
        features: path of a float32 (T, feature_dim) ``.npy`` file, frames 10 ms apart; or its URL (a ``str``
            with ``://``, read through fsspec by byte ranges: ``kwsint.io.urls``).
        kind: ``"positive"`` or ``"negative"``.
        spans: wakeword (start, end) times in seconds from the stream's first frame,
            0 <= start < end, sorted and non-overlapping; empty for negatives.
        where: the manifest entry, for messages (``data.json: streams[3]``).
        tags: names to values (read-only), e.g. ``{"synthesizer": "flite", "category": "near-miss"}``,
            for ``select_streams`` and the report's breakdown; empty when the manifest gives none.
        microfrontend: path of the same audio's float32 (T', 40) microfrontend features (pymicro-features'
            values), which streaming graphs read, a path or a URL; None when the manifest gives none.
    """

    features: Path | str
    kind: str
    spans: tuple[tuple[float, float], ...]
    where: str
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    microfrontend: Path | str | None = None


def _number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise FormatError(f"{where}: expected a finite number of seconds, got {value!r}")
    return float(value)


def _parse_stream(entry, where: str, base: Path) -> LabelledStream:
    if not isinstance(entry, dict):
        raise FormatError(f"{where}: expected an object with 'features' and 'kind', got {type(entry).__name__}")
    unknown = sorted(set(entry) - _STREAM_FIELDS)
    if unknown:
        raise FormatError(f"{where}: unknown field {unknown[0]!r} (fields: {', '.join(sorted(_STREAM_FIELDS))})")
    features = entry.get("features")
    if not isinstance(features, str) or not features:
        raise FormatError(f"{where}: features: expected the path or URL of a .npy file, got {features!r}")
    kind = entry.get("kind")
    if kind not in KINDS:
        raise FormatError(f"{where}: kind: expected 'positive' or 'negative', got {kind!r}")
    raw = entry.get("spans")
    if kind == "negative":
        if raw not in (None, []):
            raise FormatError(f"{where}: spans: a negative stream has no wakeword spans")
        raw = []
    elif not isinstance(raw, list) or not raw:
        raise FormatError(f"{where}: spans: a positive stream needs a non-empty list of [start, end] seconds")
    spans = []
    for i, span in enumerate(raw):
        at = f"{where}: spans[{i}]"
        if not isinstance(span, list) or len(span) != 2:
            raise FormatError(f"{at}: expected [start, end] in seconds, got {span!r}")
        start, end = _number(span[0], at), _number(span[1], at)
        if not 0.0 <= start < end:
            raise FormatError(f"{at}: expected 0 <= start < end, got [{start}, {end}]")
        if spans and start < spans[-1][1]:
            raise FormatError(f"{at}: starts at {start} s, before the previous span ends ({spans[-1][1]} s); "
                              "spans must be sorted and must not overlap")
        spans.append((start, end))
    mf = entry.get("microfrontend")
    if mf is not None and (not isinstance(mf, str) or not mf):
        raise FormatError(f"{where}: microfrontend: expected the path or URL of a .npy file, got {mf!r}")

    def resolve(p: str) -> Path | str:
        if is_url(p):  # kept as it is: joined with the folder, or made a Path, it would not be one
            return p
        return Path(p) if Path(p).is_absolute() else base / p

    return LabelledStream(resolve(features), kind, tuple(spans), where, _parse_tags(entry.get("tags", {}), where),
                          None if mf is None else resolve(mf))


def _parse_tags(raw, where: str) -> Mapping[str, str]:
    if not isinstance(raw, dict):
        raise FormatError(f"{where}: tags: expected an object of names to values, got {type(raw).__name__}")
    for key, value in raw.items():
        if not _NAME.fullmatch(key):
            raise FormatError(f"{where}: tags: name {key!r}: expected letters, digits and _.+- (at least one)")
        if not isinstance(value, str) or not _NAME.fullmatch(value):
            raise FormatError(f"{where}: tags.{key}: expected a string of letters, digits and _.+- (at least one), "
                              f"got {value!r}")
    return MappingProxyType(dict(raw))


def read_manifest(path: str | Path) -> list[LabelledStream]:
    """Streams of a manifest: JSON ``{"streams": [...]}`` or JSON lines (``.jsonl``, one stream a line).

    Relative feature paths are relative to the manifest's directory; URLs (``SCHEME://...``) are kept as they
    are. Raises
    FormatError naming the file, the entry and the field.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise FormatError(f"{path}: cannot read the manifest: {e}") from e
    if path.suffix == ".jsonl":
        entries = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    entries.append((json.loads(line), f"{path}:{lineno}"))
                except json.JSONDecodeError as e:
                    raise FormatError(f"{path}:{lineno}: not JSON: {e}") from e
    else:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise FormatError(f"{path}: not JSON: {e}") from e
        if not isinstance(doc, dict) or not set(doc) <= {"streams", "frame_shift"} \
                or not isinstance(doc.get("streams"), list):
            raise FormatError(f"{path}: expected an object with 'streams', a list of streams, "
                              "and optionally 'frame_shift'")
        if doc.get("frame_shift", FRAME_SHIFT_S) != FRAME_SHIFT_S:
            raise FormatError(f"{path}: frame_shift: expected {FRAME_SHIFT_S} (seconds), got {doc['frame_shift']!r}")
        entries = [(entry, f"{path}: streams[{i}]") for i, entry in enumerate(doc["streams"])]
    streams = [_parse_stream(entry, where, path.parent) for entry, where in entries]
    if not any(s.kind == "positive" for s in streams):
        raise FormatError(f"{path}: no positive stream: the false rejection rate needs wakeword spans")
    return streams


# --- selecting streams by tag -------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """Keep the streams whose tag ``key`` has one of ``values``; only those of ``kind`` are filtered, or all
    streams when ``kind`` is None. ``str()`` gives the ``[KIND:]KEY=V1[,V2...]`` form it was parsed from."""

    kind: str | None
    key: str
    values: tuple[str, ...]

    def applies_to(self, stream: LabelledStream) -> bool:
        return self.kind is None or self.kind == stream.kind

    def keeps(self, stream: LabelledStream) -> bool:
        return stream.tags.get(self.key) in self.values

    def __str__(self) -> str:
        return f"{self.kind + ':' if self.kind else ''}{self.key}={','.join(self.values)}"


_SELECTION = re.compile(rf"(?:({'|'.join(KINDS)}):)?({_NAME.pattern})=({_NAME.pattern}(?:,{_NAME.pattern})*)")


def parse_selection(text: str) -> Selection:
    """``[positive:|negative:]KEY=V1[,V2...]`` as a Selection; ValueError, one line, otherwise."""
    m = _SELECTION.fullmatch(text)
    if not m:
        raise ValueError(f"{text!r}: expected [positive:|negative:]KEY=VALUE[,VALUE...], names and values of "
                         "letters, digits and _.+-")
    return Selection(m[1], m[2], tuple(m[3].split(",")))


def select_streams(streams: Sequence[LabelledStream], selections: Sequence[Selection]) -> list[LabelledStream]:
    """The streams every selection that applies to them keeps (all of them when there is no selection)."""
    return [s for s in streams if all(sel.keeps(s) for sel in selections if sel.applies_to(s))]


def load_features(stream: LabelledStream, feature_dim: int, microfrontend: bool = False, start: int = 0,
                  stop: int | None = None) -> np.ndarray:
    """The stream's (T, feature_dim) float32 frames (``microfrontend``: those of its microfrontend file), or
    frames ``start .. stop - 1`` of them; FormatError naming the entry and the file otherwise.

    Also checks that every span ends within the stream (T frames last T * 10 ms).
    """
    a, where = _mapped_features(stream, feature_dim, microfrontend)
    rows = np.array(a[start:stop])
    if not np.isfinite(rows).all():
        raise FormatError(f"{where}: frames contain NaN or Inf")
    return rows.astype(np.float32, copy=False)


def stream_frames(stream: LabelledStream, feature_dim: int, microfrontend: bool = False) -> int:
    """The stream's frames, checked as ``load_features`` checks them, except their values (read later, by
    ranges)."""
    return len(_mapped_features(stream, feature_dim, microfrontend)[0])


def _mapped_features(stream: LabelledStream, feature_dim: int, microfrontend: bool
                     ) -> tuple[np.ndarray | UrlArray, str]:
    """The stream's features file through a read-only memory map (at a URL: read by byte ranges of rows), its
    shape and spans checked; and the name of the file in messages."""
    if microfrontend and stream.microfrontend is None:
        raise FormatError(f"{stream.where}: microfrontend: missing; a streaming graph reads microfrontend features "
                          "(kwsint-data synth writes them)")
    path = stream.microfrontend if microfrontend else stream.features
    where = f"{stream.where}: {'microfrontend' if microfrontend else 'features'} {path}"
    if is_url(path):
        a = open_npy(path, where)
    else:
        try:
            a = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as e:
            raise FormatError(f"{where}: cannot read as .npy: {e}") from e
    if not isinstance(a, (np.ndarray, UrlArray)):
        raise FormatError(f"{where}: cannot read as .npy: expected one array, got {type(a).__name__}")
    if a.ndim != 2 or a.shape[1] != feature_dim or a.dtype.kind != "f":
        raise FormatError(f"{where}: expected float frames of shape (T, {feature_dim}), got {a.dtype} {a.shape}")
    duration = len(a) * FRAME_SHIFT_S
    for i, (_, end) in enumerate(stream.spans):
        if end > duration + TIME_EPS_S:
            raise FormatError(f"{stream.where}: spans[{i}]: ends at {end} s, after the stream "
                              f"({len(a)} frames = {duration:.2f} s)")
    return a, where
