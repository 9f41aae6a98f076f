"""What a user installs (README, "Install"): the runtime works without any extra, and ``pip install .`` in a
fresh venv, as an unprivileged user, gives a working kwsint-run with the user build's backends."""

from __future__ import annotations

import json
import os
import platform
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from kwsint import _build_ffi, default_model

from .test_default_model import TOLERANCE_S

ROOT = Path(__file__).resolve().parent.parent

# The import names of the packages the extras add (pyproject.toml's optional dependencies): the runtime
# (kwsint.load, kwsint-run on features and audio) must work with none of them.
EXTRA_MODULES = ("torch", "matplotlib", "tflite_micro", "onnx", "onnxruntime", "ai_edge_litert", "sounddevice",
                 "wyoming", "pymicro_features")

RUNTIME_ONLY = """import sys
for name in {blocked!r}:
    sys.modules[name] = None  # "import name" now fails as if it were not installed
import numpy as np
import kwsint
from kwsint.cli import run
model = kwsint.load(sys.argv[1])
window = np.load(sys.argv[2])[: model.spec.frontend.window_frames]
assert 0.0 <= model.infer(window).posterior <= 1.0
sys.exit(run.main([*sys.argv[1:], "--no-progress"]))
"""

# What the installed package says about itself, as JSON.
FACTS = """import importlib.metadata as md, importlib.util, json
import kwsint
shipped = kwsint.default_model.path
print(json.dumps({{"file": kwsint.__file__, "compiled": kwsint.compiled_backends(),
                  "model": str(shipped("M4.kwsq")), "samples": str(shipped("samples")),
                  "extras": [name for name in {extras!r} if importlib.util.find_spec(name)],
                  "license": md.metadata("kwsint")["License-Expression"],
                  "files": [str(f) for f in md.files("kwsint")]}}))
"""

# A new account's PATH: the system's python3, as a user without a project venv has it.
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


def test_the_runtime_needs_no_extra():
    """kwsint.load, inference and kwsint-run on .npy features and .wav audio, with every extra's import failing."""
    samples = default_model.path("samples")
    code = RUNTIME_ONLY.format(blocked=EXTRA_MODULES)
    r = subprocess.run([sys.executable, "-c", code, str(default_model.path("M4.kwsq")), str(samples / "positive_1.npy"),
                        str(samples / "positive_1.wav"), str(samples / "negative_1.wav")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    streams = {Path(line["stream"]).name: line for line in map(json.loads, r.stdout.splitlines()) if "stream" in line}
    assert {name: s["detections"] for name, s in streams.items()} == {
        "positive_1.npy": 1, "positive_1.wav": 1, "negative_1.wav": 0}


def test_a_test_build_without_simde_says_what_to_install(monkeypatch):
    """KWSINT_TEST_BACKENDS=1 on a machine without SIMDe fails the build, naming the package, instead of
    quietly leaving the neon-simde backends out."""
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(_build_ffi, "SIMDE_HEADER", Path("/nonexistent/simde/arm/neon.h"))
    with pytest.raises(RuntimeError, match=r"KWSINT_TEST_BACKENDS=1 .*SIMDe.*libsimde-dev"):
        _build_ffi.make_ffibuilder(test_backends=True)
    _build_ffi.make_ffibuilder(test_backends=False)  # a user build needs no SIMDe


def _checkout_files() -> list[str]:
    """The checkout's files as a clone of it has them: tracked, or untracked and not ignored (no .venv, no
    build output)."""
    r = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                       capture_output=True)
    assert r.returncode == 0, f"the install test copies the checkout with git ls-files, which failed: {r.stderr!r}"
    return [name for name in os.fsdecode(r.stdout).split("\0") if name and (ROOT / name).is_file()]


def _as_user() -> tuple[list[str], int, int]:
    """The command prefix that runs as an unprivileged user, and its uid and gid: nobody when the tests run
    as root (CI), else the user running them."""
    if os.geteuid() != 0:
        return [], os.geteuid(), os.getegid()
    setpriv = shutil.which("setpriv")
    assert setpriv, "run as root, the install test installs as nobody through setpriv (Debian util-linux)"
    nobody = pwd.getpwnam("nobody")
    return ([setpriv, f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups"],
            nobody.pw_uid, nobody.pw_gid)


@pytest.mark.install
def test_pip_install_in_a_fresh_venv_as_a_user():
    """README's install: the system's python3 -m venv, then pip install . from a copy of the checkout, as an
    unprivileged user with an empty home; then import kwsint and kwsint-run on shipped samples."""
    prefix, uid, gid = _as_user()
    python = shutil.which("python3", path=SYSTEM_PATH)
    assert python, f"no python3 on {SYSTEM_PATH}: a user installs with the system's Python (Debian python3)"
    with tempfile.TemporaryDirectory(prefix="kwsint-install-") as tmp:
        work = Path(tmp)
        src, home, venv = work / "kwsint", work / "home", work / "venv"
        for name in _checkout_files():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
        (home / "tmp").mkdir(parents=True)
        for path in [work, *work.rglob("*")]:
            os.chown(path, uid, gid, follow_symlinks=False)
        # Nothing of this session's environment (KWSINT_TEST_BACKENDS, PIP_*): the machine's pip configuration
        # (/etc/pip.conf) applies, as to any account.
        env = {"PATH": SYSTEM_PATH, "HOME": str(home), "TMPDIR": str(home / "tmp"), "LANG": "C.UTF-8"}

        def user(*argv: str | Path, cwd: Path = home) -> str:
            r = subprocess.run([*prefix, *map(str, argv)], cwd=cwd, env=env, capture_output=True, text=True,
                               timeout=900)
            command = " ".join(map(str, argv))
            assert r.returncode == 0, f"{command}: status {r.returncode}\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
            return r.stdout

        assert user("id", "-u").strip() == str(uid)  # the prefix really switches users
        user(python, "-m", "venv", venv)
        user(venv / "bin/python", "-m", "pip", "install", "--quiet", ".", cwd=src)

        facts = json.loads(user(venv / "bin/python", "-c", FACTS.format(extras=EXTRA_MODULES)))
        assert Path(facts["file"]).is_relative_to(venv), facts["file"]
        assert not [b for b in facts["compiled"] if b.endswith("-simde")], facts["compiled"]  # test-only
        assert facts["extras"] == []  # pip install . is the runtime alone
        assert facts["license"] == "Apache-2.0"
        assert "kwsint/py.typed" in facts["files"]
        assert [f for f in facts["files"] if f.endswith(".dist-info/licenses/LICENSE")], facts["files"]

        samples = Path(facts["samples"])
        out = user(venv / "bin/kwsint-run", facts["model"], samples / "positive_1.wav", samples / "negative_1.npy",
                   "--no-progress")
        lines = [json.loads(line) for line in out.splitlines()]
        manifest = json.loads((samples / "manifest.json").read_text())
        spans = {stream["features"]: stream.get("spans", []) for stream in manifest["streams"]}
        streams = {Path(line["stream"]).name: line["detections"] for line in lines if "stream" in line}
        assert streams == {"positive_1.wav": 1, "negative_1.npy": 0}, out
        [hit] = [line["time"] for line in lines if "file" in line]
        [(start, end)] = spans["positive_1.npy"]
        assert start <= hit <= end + TOLERANCE_S, (hit, start, end)
