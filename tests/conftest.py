"""Shared fixtures, the hypothesis profiles, and two checks that keep the suite honest.

Profiles (select with HYPOTHESIS_PROFILE): "ci" (the default: 300 examples per
property, derandomized so a failure reproduces run to run), "dev" (quick), and
"deep" (10,000 randomized examples per property, for long runs).

KWSINT_FORBID_SKIPS=1 (set by .ci/run): a test that is skipped (by a mark, in
its body, in a fixture, or its whole module at collection), xfails or xpasses
makes the run fail, unless its node id is in ALLOWED_SKIPS. A missing tool
must fail CI, not quietly drop what it checks.

KWSINT_EXPECT_EXTENSION=<dir> (set by tests/test_c_sanitized.py): the run
must have imported kwsint's C extension from under <dir>, built with a
sanitizer; otherwise it stops before any test. The line it prints is what
that test looks for.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

import kwsint
from kwsint import _kwsint_c

_common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
               print_blob=True)
settings.register_profile("ci", max_examples=300, derandomize=True, **_common)
settings.register_profile("dev", max_examples=40, derandomize=True, **_common)
settings.register_profile("deep", max_examples=10_000, **_common)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

FORBID_SKIPS = "KWSINT_FORBID_SKIPS"
# Node ids that may skip, xfail or xpass even under KWSINT_FORBID_SKIPS, each with why. Empty: in CI every
# collected test runs.
ALLOWED_SKIPS: dict[str, str] = {}

EXPECT_EXTENSION = "KWSINT_EXPECT_EXTENSION"
# sanitizer -> (what its instrumentation makes the extension import, the runtime's init function).
SANITIZER_SYMBOLS = {
    "address": (b"__asan_report_", "__asan_init"),
    "undefined": (b"__ubsan_handle_", "__ubsan_handle_builtin_unreachable"),
    "thread": (b"__tsan_func_entry", "__tsan_init"),
}


def forbid_skips() -> bool:
    return os.environ.get(FORBID_SKIPS, "") not in ("", "0")


@pytest.fixture(params=kwsint.backends(), scope="session")
def backend(request) -> str:
    """Every backend this machine can run: a new backend is under the whole suite at once."""
    return request.param


class _SkipPolicy:
    """Collects every test or module that did not run as a test, and fails the session if there is one."""

    def __init__(self) -> None:
        self.holes: list[str] = []

    def _record(self, report: pytest.CollectReport | pytest.TestReport) -> None:
        if report.nodeid in ALLOWED_SKIPS:
            return
        if hasattr(report, "wasxfail"):  # an xfail mark: skipped means it failed as expected, passed an xpass
            self.holes.append(f"{'XFAIL' if report.skipped else 'XPASS'} {report.nodeid}: {report.wasxfail}")
        elif report.skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            self.holes.append(f"SKIPPED {report.nodeid}: {reason}")

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        self._record(report)  # a module-level pytest.skip / importorskip skips the whole module here

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self._record(report)  # setup (skips in fixtures, skipif marks), call (skips in the test body)

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.holes:
            terminalreporter.write_sep("=", f"{FORBID_SKIPS}: {len(self.holes)} tests did not run "
                                            "(allowed ones: tests/conftest.py ALLOWED_SKIPS)", red=True)
            for line in self.holes:
                terminalreporter.write_line(line)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.holes and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


# The files that take longest (minutes each: sanitizer builds and replays, qemu, valgrind, mutation builds,
# fuzzing, a fresh install), run first, so that with one worker per core (scripts/test) they do not start last.
LONGEST_FIRST = ("test_c_sanitized.py", "test_valgrind.py", "test_arm.py", "test_mutation.py", "test_fuzz.py",
                 "test_install.py", "test_tflm_oracle.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: file order kept otherwise


def pytest_configure(config: pytest.Config) -> None:
    if forbid_skips():
        config.pluginmanager.register(_SkipPolicy(), "kwsint-skip-policy")


def _instrumentation(extension: Path) -> list[str]:
    """The sanitizers the extension was compiled with and whose runtime this process has loaded."""
    data = extension.read_bytes()  # imported symbol names sit in the shared object's dynamic string table
    process = ctypes.CDLL(None)
    return [name for name, (imported, init) in SANITIZER_SYMBOLS.items()
            if imported in data and hasattr(process, init)]


def pytest_sessionstart(session: pytest.Session) -> None:
    """The KWSINT_EXPECT_EXTENSION check, before any test and at any verbosity (a report header is not)."""
    expected = os.environ.get(EXPECT_EXTENSION)
    if not expected:
        return
    extension = Path(_kwsint_c.__file__).resolve()
    if not extension.is_relative_to(Path(expected).resolve()):
        raise pytest.UsageError(f"{EXPECT_EXTENSION}: expected kwsint's extension under {expected}, "
                                f"imported {extension}")
    sanitizers = _instrumentation(extension)
    if not sanitizers:
        raise pytest.UsageError(f"{EXPECT_EXTENSION}: expected {extension} built with a sanitizer and its runtime "
                                f"loaded; found neither {' nor '.join(SANITIZER_SYMBOLS)}")
    session.config.pluginmanager.get_plugin("terminalreporter").write_line(
        f"kwsint extension: {extension} instrumented with {', '.join(sanitizers)}")
