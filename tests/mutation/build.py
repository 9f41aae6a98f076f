"""Copies of the source tree with their own extension, built once whole and then rebuilt per mutation.

A full build is kwsint/_build_ffi.py's own compile of the test build (with the SIMDe backends, which the
mutations' tests name), so every flag comes from there. While it runs, the compiler commands it issues are
recorded (``build-commands.json`` in the copy) and run in parallel; a mutated copy then reruns only the
recorded commands of the translation units that include the mutated file, and the link. Run in a copy as
``python -m tests.mutation.build``: the full build.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COPIED = ("kwsint", "csrc", "tests")
COMMANDS = "build-commands.json"
EXTENSION = "kwsint/_kwsint_c"


@dataclass(frozen=True)
class CompileCommand:
    """One translation unit: its source, its object file and the compiler command line, all as recorded."""

    source: str
    obj: str
    argv: list[str]


def copy_tree(tree: Path) -> Path:
    """The package, its C sources, the tests and pyproject.toml (pytest's settings) copied into ``tree``."""
    skip = shutil.ignore_patterns("__pycache__", "*.so", ".hypothesis")
    for part in COPIED:
        shutil.copytree(ROOT / part, tree / part, ignore=skip)
    shutil.copy(ROOT / "pyproject.toml", tree)
    return tree


def build(tree: Path, timeout: float = 900) -> None:
    """The whole extension of ``tree``, built in ``tree`` by a fresh interpreter (raises BuildError)."""
    _run([sys.executable, "-m", "tests.mutation.build"], tree, timeout)


def rebuild(tree: Path, changed: Path, timeout: float = 900) -> list[str]:
    """Recompiles the objects whose translation unit includes ``changed`` and relinks the extension.

    Returns the recompiled sources ([] for a file no C source includes, such as a Python module: then
    nothing is relinked). Raises BuildError.
    """
    recorded = json.loads((tree / COMMANDS).read_text())
    commands = [CompileCommand(**c) for c in recorded["compile"]]
    target = (tree / changed).resolve()
    stale = [c for c in commands if target in _includes(tree / c.source, _include_dirs(c.argv))]
    if not stale:
        return []
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        for done in [pool.submit(_run, c.argv, tree, timeout) for c in stale]:
            done.result()
    _run(recorded["link"], tree, timeout)
    return [c.source for c in stale]


def extension_files(tree: Path) -> list[Path]:
    """The built extension module(s) of ``tree``."""
    return sorted((tree / "kwsint").glob("_kwsint_c*.so"))


def object_files(tree: Path) -> list[Path]:
    """The object files the recorded commands of ``tree`` write."""
    return [tree / c["obj"] for c in json.loads((tree / COMMANDS).read_text())["compile"]]


class BuildError(RuntimeError):
    """A compiler or linker command failed, or the build timed out."""


def _run(argv: list[str], cwd: Path, timeout: float) -> None:
    try:
        r = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise BuildError(f"timed out after {timeout:.0f} s: {' '.join(argv)}") from e
    if r.returncode != 0:
        raise BuildError(f"{' '.join(argv)} failed ({r.returncode}):\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}")


def _include_dirs(argv: list[str]) -> list[Path]:
    return [Path(a[2:]) for a in argv if a.startswith("-I") and len(a) > 2]


def _includes(source: Path, include_dirs: list[Path]) -> set[Path]:
    """``source`` and every file it includes with #include "...", transitively (system headers aside)."""
    seen: set[Path] = set()
    todo = [source.resolve()]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in re.findall(r'^\s*#\s*include\s*"([^"]+)"', path.read_text(), flags=re.M):
            for where in (path.parent, *include_dirs):
                if (where / name).is_file():
                    todo.append((where / name).resolve())
                    break
    return seen


def _full_build() -> None:
    """In the copy (the working directory): the test build's compile, its compiler commands recorded and run
    in parallel. distutils compiles one source after another through subprocess.check_call and then links,
    so compile commands are queued here and the link waits for them."""
    import runpy

    real_check_call = subprocess.check_call
    pool = ThreadPoolExecutor(os.cpu_count() or 1)
    pending: list[Future] = []
    recorded: dict = {"compile": [], "link": None}

    def check_call(argv, **kwargs):
        argv = [os.fspath(a) for a in argv]
        if "-c" in argv:
            obj = argv[argv.index("-o") + 1]
            recorded["compile"].append(vars(CompileCommand(argv[argv.index("-o") - 1], obj, argv)))
            pending.append(pool.submit(real_check_call, argv, **kwargs))
            return 0
        for job in pending:
            job.result()
        recorded["link"] = argv
        return real_check_call(argv, **kwargs)

    subprocess.check_call = check_call
    try:
        runpy.run_path("kwsint/_build_ffi.py")["make_ffibuilder"](test_backends=True).compile(tmpdir=".")
    finally:
        subprocess.check_call = real_check_call
        pool.shutdown()
    if recorded["link"] is None or not recorded["compile"]:
        raise BuildError("the build ran no compile or link command through subprocess.check_call")
    Path(COMMANDS).write_text(json.dumps(recorded, indent=1))
    # GraphStream.invoke's C callable: no mutation touches it, so it is built once, not recorded.
    runpy.run_path("kwsint/_build_ffi.py")["build_invoke_extension"]()


if __name__ == "__main__":
    _full_build()
