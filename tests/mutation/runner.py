"""Runs mutations: each in a built copy of the tree, against the tests that must kill it.

A verdict is "killed" (its tests failed, or crashed the interpreter), "survived" (they passed) or "error"
(the mutation did not apply, the copy did not build, the tests timed out, pytest could not run them, or
the tests did not provably import the copy's kwsint and extension). An error is never a kill.
"""

from __future__ import annotations

import dataclasses
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from . import build
from .mutations import Mutation

KILLED, SURVIVED, ERROR = "killed", "survived", "error"
PRISTINE = ".pristine"  # the copy's pristine objects and extension, restored after each mutation


@dataclass(frozen=True)
class Result:
    """What running one mutation's tests (or the baseline's) came to."""

    name: str
    verdict: str
    seconds: float
    detail: str = ""


class MutationError(ValueError):
    """A mutation's original text does not occur exactly once in its file."""


def mutated(text: str, mutation: Mutation) -> str:
    """``text`` with the mutation applied; raises MutationError unless its original occurs exactly once."""
    count = text.count(mutation.original)
    if count != 1:
        raise MutationError(f"{mutation.id}: the original text occurs {count} times in {mutation.file}, not once")
    return text.replace(mutation.original, mutation.replacement)


def selected_tests(mutations: Iterable[Mutation]) -> list[str]:
    """The union of the mutations' pytest node ids, in a fixed order: what the baseline runs."""
    return sorted({t for m in mutations for t in m.tests})


class Workspace:
    """A copy of the tree with its extension built, in which mutations are applied one at a time."""

    def __init__(self, tree: Path):
        self.tree = build.copy_tree(tree)
        build.build(self.tree)
        backup = self.tree / PRISTINE
        for path in build.object_files(self.tree) + build.extension_files(self.tree):
            target = backup / path.relative_to(self.tree)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)

    def baseline(self, args: list[str], timeout: float) -> Result:
        """The pristine copy's tests: they must pass, or no kill means anything."""
        start = time.monotonic()
        verdict, detail = self._run_tests(args, timeout)
        ok = verdict == SURVIVED
        return Result("baseline", "passed" if ok else "failed", time.monotonic() - start, "" if ok else detail)

    def run(self, mutation: Mutation, timeout: float) -> Result:
        """Applies the mutation, rebuilds what it touches, runs its tests, and restores the pristine copy."""
        start = time.monotonic()
        source = self.tree / mutation.file
        original = source.read_text()
        try:
            source.write_text(mutated(original, mutation))
            build.rebuild(self.tree, Path(mutation.file), timeout)
            verdict, detail = self._run_tests(list(mutation.tests), timeout)
        except MutationError as e:
            verdict, detail = ERROR, str(e)
        except build.BuildError as e:
            verdict, detail = ERROR, f"build failed: {e}"
        finally:
            source.write_text(original)
            self._restore()
        return Result(mutation.id, verdict, time.monotonic() - start, detail)

    def _restore(self) -> None:
        backup = self.tree / PRISTINE
        for saved in backup.rglob("*"):
            if saved.is_file():
                shutil.copy2(saved, self.tree / saved.relative_to(backup))

    def _run_tests(self, args: list[str], timeout: float) -> tuple[str, str]:
        """(verdict, detail) of ``pytest -x`` on ``args`` in the copy, with proof of which kwsint ran."""
        proof = self.tree / "proof.json"
        proof.unlink(missing_ok=True)
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "KWSINT_MUTATION_PROOF": str(proof)}
        where = self._imported_from(env, [sys.executable, "-c", "import json, kwsint, kwsint._kwsint_c; print("
                                          "json.dumps({'kwsint': kwsint.__file__, 'extension': kwsint._kwsint_c.__file__}))"])
        if where:
            return ERROR, where
        cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-p", "tests.mutation.proof", *args]
        try:
            r = subprocess.run(cmd, cwd=self.tree, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return ERROR, f"tests timed out after {timeout:.0f} s"
        if r.returncode < 0:  # the tests crashed the interpreter (a segfault, an abort): the bug showed
            return KILLED, f"crashed by signal {-r.returncode}"
        if r.returncode not in (0, 1):
            return ERROR, f"pytest exit status {r.returncode}: {_tail(r.stdout + r.stderr)}"
        where = self._check(json.loads(proof.read_text())) if proof.exists() else "the proof plugin wrote nothing"
        if where:
            return ERROR, where
        if r.returncode == 0:
            return SURVIVED, ""
        failed = [ln for ln in r.stdout.splitlines() if ln.startswith(("FAILED", "ERROR"))]
        return KILLED, failed[0] if failed else _tail(r.stdout)

    def _imported_from(self, env: dict, cmd: list[str]) -> str:
        """'' if ``cmd`` (printing the import locations as JSON) shows the copy's kwsint, else why not."""
        r = subprocess.run(cmd, cwd=self.tree, env=env, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            return f"importing kwsint in the copy failed: {_tail(r.stderr)}"
        return self._check(json.loads(r.stdout))

    def _check(self, where: dict) -> str:
        outside = [f"{what} from {path}" for what, path in where.items()
                   if not Path(path).resolve().is_relative_to(self.tree.resolve())]
        return f"not the copy's build: {', '.join(outside)}" if outside else ""


def _tail(text: str, lines: int = 3) -> str:
    return " | ".join(text.strip().splitlines()[-lines:])


def run_mutations(mutations: list[Mutation], *, jobs: int = 1, timeout: float = 900, workdir: Path | None = None,
                  report: Callable[[Result], None] = lambda r: None) -> tuple[Result, list[Result]]:
    """The baseline, then every mutation, over ``jobs`` copies in parallel.

    Returns (baseline result, results in the order of ``mutations``); if the baseline fails, no mutation
    is run. ``report`` is called with each result as it comes. Copies are made under ``workdir`` (kept),
    or in a temporary folder (removed).
    """
    with tempfile.TemporaryDirectory(prefix="kwsint-mutate-") as tmp:
        root = Path(workdir or tmp)
        root.mkdir(parents=True, exist_ok=True)
        start = time.monotonic()
        first = Workspace(Path(tempfile.mkdtemp(dir=root, prefix="copy-")))
        report(Result("build", "done", time.monotonic() - start))
        base = first.baseline(selected_tests(mutations), timeout)
        report(base)
        if base.verdict != "passed":
            return base, []
        spaces: queue.Queue[Workspace] = queue.Queue()
        spaces.put(first)
        results: dict[str, Result] = {}
        todo: queue.Queue[Mutation] = queue.Queue()
        for m in mutations:
            todo.put(m)

        def work() -> None:
            try:
                space = spaces.get_nowait()
            except queue.Empty:
                space = Workspace(Path(tempfile.mkdtemp(dir=root, prefix="copy-")))
            while True:
                try:
                    m = todo.get_nowait()
                except queue.Empty:
                    return
                results[m.id] = space.run(m, timeout)
                report(results[m.id])

        threads = [threading.Thread(target=work) for _ in range(max(1, min(jobs, len(mutations))))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        missing = Result("", ERROR, 0.0, "not run: no copy could be built for it")
        return base, [results.get(m.id, dataclasses.replace(missing, name=m.id)) for m in mutations]
