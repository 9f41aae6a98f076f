"""What every kwsint command shares: ``-V``/``--version``, the output checks, and one-line endings.

Each CLI's ``main`` runs its work through ``run_command``, so that in every command

- Ctrl-C exits 130 with ``PROG: interrupted`` (``after N of M inputs`` where the command
  counts its inputs in a ``Progress``), not a traceback;
- a reader of stdout that goes away (``kwsint-run ... | head``) ends it quietly with
  status 141, as SIGPIPE ends other tools;
- a command that needs PyTorch says so in one line when it is missing, ``--help`` included;
- an output refused by ``check_outputs``, or any other OSError the command leaves
  to it (a full disk), is one line and exit status 1;
- a warning (``kwsint.errors.ShortInputWarning``) is one line, ``PROG: warning: ...``.

Outputs follow one rule: an existing one is refused without ``--force``, and one
whose folder is missing, not a folder or not writable is refused before any work.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from kwsint import __version__
from kwsint.errors import ShortInputWarning
from kwsint.io.atomic import refuse_existing

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a command that Ctrl-C ended
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE
NEEDS_TORCH = "needs PyTorch: pip install 'kwsint[train]'"

T = TypeVar("T")


def new_parser(prog: str, doc: str) -> argparse.ArgumentParser:
    """An ArgumentParser for ``prog`` with the first paragraph of ``doc`` as its description, and ``-V``."""
    ap = argparse.ArgumentParser(prog=prog, description=doc.split("\n\n")[0])
    ap.add_argument("-V", "--version", action="version", version=f"kwsint {__version__}")
    return ap


def add_operating_point(ap: argparse.ArgumentParser, whose: str = "the model's") -> None:
    """``--threshold``, ``--smoothing`` and ``--lockout`` (seconds), each defaulting to ``whose`` recommended
    value from the blob's metadata, else Model.detector's default (None here: the model decides)."""
    from kwsint.engine.model import DEFAULT_LOCKOUT_S, DEFAULT_SMOOTHING_S, DEFAULT_THRESHOLD

    ap.add_argument("--threshold", type=float, help=f"smoothed posterior threshold in [0, 1] (default: {whose} "
                                                    f"recommended, else {DEFAULT_THRESHOLD})")
    ap.add_argument("--smoothing", type=float, metavar="SECONDS",
                    help=f"moving-average window in seconds, rounded to whole steps, at least one (default: "
                         f"{whose} recommended, else {DEFAULT_SMOOTHING_S})")
    ap.add_argument("--lockout", type=float, metavar="SECONDS",
                    help=f"seconds after a detection without another (default: {whose} recommended, else "
                         f"{DEFAULT_LOCKOUT_S})")


def add_force(ap: argparse.ArgumentParser, what: str = "existing outputs") -> None:
    """The ``--force`` option of a command that writes files."""
    ap.add_argument("--force", action="store_true", help=f"overwrite {what}")


def print_line(text: str) -> None:
    """Write ``text`` and a newline to stdout in one write, then flush: Ctrl-C lands before or after the line,
    never inside it. ``print`` writes the text and the newline apart, and an interrupt between the two glued
    the next line (the summary after Ctrl-C) to a detection."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def error(prog: str, message: str) -> None:
    """Print ``PROG: error: MESSAGE`` to stderr, as argparse words its errors."""
    print(f"{prog}: error: {message}", file=sys.stderr)


class OutputError(OSError):
    """An output the command cannot write: its folder is missing, not a folder or not writable, or it is a
    folder itself."""


def _writable_folder(folder: Path, output: Path, create: bool) -> None:
    """OutputError unless ``folder`` (or, with ``create``, its nearest existing ancestor) is a writable folder."""
    existing = folder
    while create and not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.exists():
        raise OutputError(f"{output}: folder {folder} does not exist")
    if not existing.is_dir():
        raise OutputError(f"{output}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"{output}: cannot write in {existing} (permission denied)")


def check_outputs(paths: Iterable[Path], force: bool, *, create_folders: bool = False) -> None:
    """Refuse, before any work, files the command would write to ``paths``.

    Each path's folder must exist (or, with ``create_folders``, be creatable: its
    nearest existing ancestor a folder) and be writable, the path must not be a
    folder, and existing files need ``force``. Raises OutputError or
    OutputExistsError with a one-line message naming the path.
    """
    paths = [Path(p) for p in paths]
    for path in paths:
        _writable_folder(path.parent, path, create_folders)
        if path.is_dir():
            raise OutputError(f"{path}: is a folder; expected a file name")
    refuse_existing(paths, force)


@dataclass
class Progress:
    """How far a command is through its inputs: ``done`` of ``total`` ``unit``, for the line after Ctrl-C."""

    unit: str = "inputs"
    total: int | None = None
    done: int = 0

    def counted(self, items: Iterable[T]) -> Iterator[T]:
        """``items``, each counted done when the next is asked for."""
        for item in items:
            yield item
            self.done += 1

    def interrupted(self) -> str:
        """The line after Ctrl-C, without the command's name."""
        return "interrupted" if self.total is None else f"interrupted after {self.done} of {self.total} {self.unit}"


def _one_line_warning(prog: str, message, category, filename, lineno, file=None, line=None) -> None:
    print(f"{prog}: warning: {message}", file=sys.stderr)


def _stdout_to_devnull() -> None:
    """Point stdout's descriptor at /dev/null, so that the interpreter's last flush does not fail again."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):  # no descriptor (a replaced stdout): nothing goes to the pipe
        pass


def run_command(prog: str, command: Callable[[], int], progress: Progress | None = None, *,
                needs_torch: bool = False) -> int:
    """Run a CLI's ``command`` (parsing included) and return its exit status, ending in one line where Python
    would print a traceback (the module docstring lists how)."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", ShortInputWarning)  # every input that is short, not the first only
        warnings.showwarning = lambda *args, **kwargs: _one_line_warning(prog, *args, **kwargs)
        try:
            if needs_torch:
                try:  # before parsing: the options themselves come from PyTorch code
                    importlib.import_module("torch")
                except ImportError:
                    error(prog, NEEDS_TORCH)
                    return 1
            return command()
        except KeyboardInterrupt:
            print(f"{prog}: {(progress or Progress()).interrupted()}", file=sys.stderr)
            return EXIT_INTERRUPTED
        except BrokenPipeError:
            _stdout_to_devnull()
            return EXIT_BROKEN_PIPE
        except OSError as e:  # refused outputs (OutputError, OutputExistsError), a full disk, ...
            error(prog, str(e))
            return 1
