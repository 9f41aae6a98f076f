"""Atomic file output: a file appears whole or not at all.

Work in progress lives beside the target in hidden files (and folders) named
``.NAME.RANDOM.tmp``: a process killed while writing leaves the target as it
was (or absent) and, at worst, such a hidden file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


def _affixes(path: Path) -> dict:
    return dict(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)


def temp_dir_beside(path: str | os.PathLike) -> Path:
    """A new empty folder beside ``path`` for work towards it: ``.NAME.RANDOM.tmp``; the caller removes it."""
    return Path(tempfile.mkdtemp(**_affixes(Path(path))))


@contextmanager
def atomic_writer(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary file for ``path``'s new content: a unique hidden temporary file beside ``path``, flushed to disk and
    renamed over ``path`` when the block ends; removed, leaving ``path`` as it was, when the block raises."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(**_affixes(path))
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to a unique temporary file beside ``path``, flush it to disk, then rename it over ``path``."""
    with atomic_writer(path) as f:
        f.write(data)
