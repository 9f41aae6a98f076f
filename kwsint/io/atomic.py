"""Atomic file output: a file appears whole or not at all, with the mode a plain ``open`` gives it.

Work in progress lives beside the target in hidden files (and folders) named
``.NAME.RANDOM.tmp``: a process killed while writing leaves the target as it
was (or absent) and, at worst, such a hidden file.

kwsint's outputs follow one rule (``refuse_existing``): an existing output is
replaced only when asked to (``force``, ``--force`` on the command line).
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


class OutputExistsError(FileExistsError):
    """Outputs exist, and replacing them was not asked for."""


def refuse_existing(paths: Iterable[str | os.PathLike], force: bool) -> None:
    """Raises OutputExistsError naming those of ``paths`` that exist (files, folders, links), unless ``force``."""
    existing = [str(p) for p in paths if os.path.lexists(p)]
    if existing and not force:
        raise OutputExistsError(f"{', '.join(existing)}: {'exists' if len(existing) == 1 else 'exist'}; "
                                "use --force to overwrite")


def _affixes(path: Path) -> dict:
    return dict(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)


def temp_dir_beside(path: str | os.PathLike) -> Path:
    """A new empty folder beside ``path`` for work towards it: ``.NAME.RANDOM.tmp``; the caller removes it."""
    return Path(tempfile.mkdtemp(**_affixes(Path(path))))


def _new_temp_file(path: Path) -> tuple[int, Path]:
    """A new hidden file ``.NAME.RANDOM.tmp`` beside ``path``, open for writing: (descriptor, its path).

    Created with mode 0666 less the umask, as ``open`` creates files (tempfile.mkstemp's are 0600 whatever
    the umask). OSError names ``path``'s folder when it is missing or cannot be written.
    """
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), tmp
        except FileExistsError:
            continue  # a 1 in 2^32 clash with another writer's name: draw again
        except OSError as e:  # the message would name the hidden file; the folder is what is wrong
            raise OSError(e.errno, e.strerror, str(path.parent)) from None


@contextmanager
def atomic_writer(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary file for ``path``'s new content: a unique hidden temporary file beside ``path``, flushed to disk and
    renamed over ``path`` when the block ends; removed, leaving ``path`` as it was, when the block raises.
    The new file's mode is what ``open`` would give it (0666 less the umask)."""
    path = Path(path)
    fd, tmp = _new_temp_file(path)
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
