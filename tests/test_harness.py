"""The checks that keep the suite honest, tested: no silent skips in CI, the right extension, .ci/run's status.

tests/conftest.py's hooks run on small suites with pytester.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from kwsint import _kwsint_c

from .conftest import EXPECT_EXTENSION, FORBID_SKIPS

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
CONFTEST = ROOT / "tests" / "conftest.py"

# Every way a test can fail to run: a mark, its body, a fixture, its module at collection, xfail and xpass.
HOLES = '''
import pytest

@pytest.fixture
def tool():
    pytest.skip("no tool")

def test_runs():
    pass

def test_skipped_in_body():
    pytest.skip("body")

@pytest.mark.skipif(True, reason="a mark")
def test_skip_mark():
    pass

def test_skipped_in_fixture(tool):
    pass

@pytest.mark.xfail(reason="known bug")
def test_xfail():
    assert False

@pytest.mark.xfail(reason="known bug")
def test_xpass():
    pass
'''


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A copy of tests/conftest.py over HOLES and a module that importorskips, with neither variable set."""
    monkeypatch.delenv(FORBID_SKIPS, raising=False)
    monkeypatch.delenv(EXPECT_EXTENSION, raising=False)
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makepyfile(test_holes=HOLES, test_missing='import pytest\npytest.importorskip("kwsint_no_such_module")\n')
    return pytester


def test_skips_pass_without_the_variable(suite):
    result = suite.runpytest()
    result.assert_outcomes(passed=1, skipped=4, xfailed=1, xpassed=1)
    assert result.ret == pytest.ExitCode.OK
    assert FORBID_SKIPS not in result.stdout.str()


def test_every_kind_of_skip_fails_under_the_variable(suite, monkeypatch):
    monkeypatch.setenv(FORBID_SKIPS, "1")
    result = suite.runpytest()
    result.assert_outcomes(passed=1, skipped=4, xfailed=1, xpassed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        f"*{FORBID_SKIPS}: 6 tests did not run*",
        "SKIPPED test_missing.py: Skipped: could not import 'kwsint_no_such_module'*",
        "SKIPPED test_holes.py::test_skipped_in_body: Skipped: body",
        "SKIPPED test_holes.py::test_skip_mark: Skipped: a mark",
        "SKIPPED test_holes.py::test_skipped_in_fixture: Skipped: no tool",
        "XFAIL test_holes.py::test_xfail: known bug",
        "XPASS test_holes.py::test_xpass: known bug",
    ], consecutive=True)


def test_allowed_skips_pass_under_the_variable(pytester, monkeypatch):
    monkeypatch.setenv(FORBID_SKIPS, "1")
    empty = "ALLOWED_SKIPS: dict[str, str] = {}"
    conftest = CONFTEST.read_text()
    assert conftest.count(empty) == 1, f"tests/conftest.py should define {empty!r} once"
    pytester.makeconftest(conftest.replace(empty, empty[:-2] + '{"test_one.py::test_skipped": "why"}'))
    pytester.makepyfile(test_one='import pytest\ndef test_skipped():\n    pytest.skip("allowed")\n')
    result = pytester.runpytest()
    result.assert_outcomes(skipped=1)
    assert result.ret == pytest.ExitCode.OK


def test_expected_extension_elsewhere_stops_the_run(suite, monkeypatch, tmp_path):
    monkeypatch.setenv(EXPECT_EXTENSION, str(tmp_path))
    result = suite.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {EXPECT_EXTENSION}: expected kwsint's extension under {tmp_path}, "
                                 f"imported {Path(_kwsint_c.__file__).resolve()}"])


def test_an_uninstrumented_extension_stops_the_run(suite, monkeypatch):
    """This process's extension is the plain build, with no sanitizer runtime loaded."""
    monkeypatch.setenv(EXPECT_EXTENSION, str(Path(_kwsint_c.__file__).parent))
    result = suite.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {EXPECT_EXTENSION}: expected * built with a sanitizer*"])


@pytest.mark.parametrize("status", [0, 1, 5])
def test_ci_runs_scripts_test_with_skips_forbidden_and_keeps_its_status(tmp_path, status):
    """.ci/run in a tree whose scripts/test reports what it was given and exits with ``status``."""
    (tmp_path / ".ci").mkdir()
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / ".ci" / "run", tmp_path / ".ci" / "run")
    fake = tmp_path / "scripts" / "test"
    fake.write_text(f'#!/bin/sh\necho "scripts/test $# $KWSINT_FORBID_SKIPS"\nexit {status}\n')
    fake.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != FORBID_SKIPS}
    r = subprocess.run(["bash", str(tmp_path / ".ci" / "run")], capture_output=True, text=True, env=env)
    assert r.returncode == status, r.stdout + r.stderr
    assert r.stdout == "scripts/test 0 1\n"  # no arguments: the whole suite
    assert ("collected no tests" in r.stderr) == (status == 5), r.stderr
