"""Labelled feature windows on disk: the ``.npz`` files the trainer reads.

An archive holds exactly these arrays (``np.savez``, compressed or not):

* ``features``: float32 (N, window_frames, feature_dim), N >= 1, finite. Raw
  LFBE values: natural-log mel filterbank energies as kaldi's fbank gives them
  (roughly -10..+10), 10 ms apart, oldest frame first, not normalised.
* ``labels``: int64 (N,), 1 = the window ends shortly after the wakeword, 0 = not.
* ``speakers`` (optional): int64 (N,), >= 0, the speaker (or generating
  variant) of each window, so that splits can keep speakers disjoint.

``load_windows`` checks every field and raises ``FormatError`` with a message
``"PATH: FIELD: expected ..., got ..."``; pickled objects are never loaded.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FormatError
from ..io.atomic import atomic_writer

REQUIRED_ARRAYS = ("features", "labels")
OPTIONAL_ARRAYS = ("speakers",)
_READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)


@dataclass(frozen=True)
class Windows:
    """N labelled feature windows (see the module docstring for dtypes and ranges).

    Attributes:
        features: float32 (N, window_frames, feature_dim), raw log-mel energies.
        labels: int64 (N,), 1 = wakeword, 0 = not.
        speakers: int64 (N,) speaker ids >= 0, or None when unknown.
    """

    features: np.ndarray
    labels: np.ndarray
    speakers: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)


def load_windows(path: str | Path) -> Windows:
    """Read and check one ``.npz`` of windows; raises FormatError naming the file and field."""
    path = Path(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except _READ_ERRORS as e:
        raise FormatError(f"{path}: file: expected a readable .npz archive, got {type(e).__name__}: {e}") from e
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise FormatError(f"{path}: file: expected an .npz archive, got a single .npy array")
    with archive:
        arrays = {}
        for name in archive.files:
            try:
                arrays[name] = archive[name]
            except _READ_ERRORS as e:
                raise FormatError(f"{path}: {name}: expected a readable array, got {type(e).__name__}: {e}") from e
    return _check(arrays, str(path))


def save_windows(path: str | Path, windows: Windows) -> None:
    """Write windows atomically (``kwsint.io.atomic.atomic_writer``).

    Raises FormatError, and writes nothing, for windows ``load_windows`` would reject.
    """
    path = Path(path)
    arrays = {"features": windows.features, "labels": windows.labels}
    if windows.speakers is not None:
        arrays["speakers"] = windows.speakers
    _check(arrays, str(path))
    with atomic_writer(path) as f:
        np.savez(f, **arrays)


def load_windows_many(paths: Sequence[str | Path]) -> Windows:
    """Load several files and concatenate them in order.

    Every file must have the first file's window shape, and either all carry
    speakers or none do. Speaker ids are kept as stored: files written with
    overlapping ids mean the same speakers.
    """
    if not paths:
        raise ValueError("load_windows_many: expected at least one path")
    parts = [load_windows(p) for p in paths]
    first = parts[0]
    for path, part in zip(paths[1:], parts[1:]):
        if part.features.shape[1:] != first.features.shape[1:]:
            raise FormatError(f"{path}: features: expected windows of shape {first.features.shape[1:]} "
                              f"as in {paths[0]}, got {part.features.shape[1:]}")
        if (part.speakers is None) != (first.speakers is None):
            want, got = ("an array", "none") if first.speakers is not None else ("none", "an array")
            raise FormatError(f"{path}: speakers: expected {want} as in {paths[0]}, got {got}")
    return Windows(
        features=np.concatenate([p.features for p in parts]),
        labels=np.concatenate([p.labels for p in parts]),
        speakers=None if first.speakers is None else np.concatenate([p.speakers for p in parts]),
    )


def batches(windows: Windows, batch_size: int, rng: np.random.Generator) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One pass over all windows in an order drawn from ``rng``.

    Yields (features, labels) pairs of ``batch_size`` windows; the last pair is
    smaller when ``batch_size`` does not divide N.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size: expected >= 1, got {batch_size}")
    order = rng.permutation(len(windows))
    for start in range(0, len(order), batch_size):
        chosen = order[start : start + batch_size]
        yield windows.features[chosen], windows.labels[chosen]


def _check(arrays: Mapping[str, np.ndarray], source: str) -> Windows:
    """Windows from named arrays, or FormatError naming ``source`` and the first bad field."""

    def fail(field: str, expected: str, got: str) -> FormatError:
        return FormatError(f"{source}: {field}: expected {expected}, got {got}")

    unknown = sorted(set(arrays) - set(REQUIRED_ARRAYS) - set(OPTIONAL_ARRAYS))
    if unknown:
        raise fail(unknown[0], f"only arrays {REQUIRED_ARRAYS + OPTIONAL_ARRAYS}", f"arrays {sorted(arrays)}")
    for name in REQUIRED_ARRAYS:
        if name not in arrays:
            raise fail(name, "an array of that name", f"arrays {sorted(arrays)}")

    features = arrays["features"]
    if features.dtype != np.float32 or features.ndim != 3:
        raise fail("features", "float32 of shape (N, window_frames, feature_dim)", f"{features.dtype} {features.shape}")
    if min(features.shape) < 1:
        raise fail("features", "at least one window of at least one frame and one feature", str(features.shape))
    finite = np.isfinite(features)
    if not finite.all():
        n, frame, feature = np.argwhere(~finite)[0]
        raise fail("features", "finite values", f"{features[n, frame, feature]} at [{n}, {frame}, {feature}]")
    count = len(features)

    labels = arrays["labels"]
    if labels.dtype != np.int64 or labels.shape != (count,):
        raise fail("labels", f"int64 of shape ({count},) like features", f"{labels.dtype} {labels.shape}")
    bad = (labels != 0) & (labels != 1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise fail("labels", "values in {0, 1}", f"{labels[i]} at [{i}]")

    speakers = arrays.get("speakers")
    if speakers is not None:
        if speakers.dtype != np.int64 or speakers.shape != (count,):
            raise fail("speakers", f"int64 of shape ({count},) like features", f"{speakers.dtype} {speakers.shape}")
        if (speakers < 0).any():
            i = int(np.flatnonzero(speakers < 0)[0])
            raise fail("speakers", "ids >= 0", f"{speakers[i]} at [{i}]")
    return Windows(features, labels, speakers)
