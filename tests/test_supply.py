"""What kwsint trusts (SECURITY.md): pinned dependencies, no network, data loaded as data only."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from kwsint import default_model

ROOT = Path(__file__).resolve().parent.parent

# Run a kwsint CLI module (argv[1], arguments after it) with every way of opening a network connection failing.
NO_NETWORK = """import runpy, socket, sys
def refuse(*args, **kwargs):
    raise AssertionError(f"network access attempted: {args!r}")
class NoSocket(socket.socket):
    def __init__(self, family=-1, *args, **kwargs):
        if family in (socket.AF_INET, socket.AF_INET6):
            refuse(family)
        super().__init__(family, *args, **kwargs)
socket.socket = NoSocket
socket.create_connection = socket.getaddrinfo = socket.gethostbyname = refuse
sys.argv = sys.argv[1:]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""


def _requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    return [Requirement(r) for r in reqs if not r.startswith("kwsint[")]


def test_every_dependency_has_a_floor_and_a_ceiling():
    for req in _requirements():
        ops = {spec.operator for spec in req.specifier}
        assert ops & {">=", "==", "~="} and ops & {"<", "==", "~="}, f"{req}: pin it to a range, as SECURITY.md says"


def test_torch_is_pinned_to_its_cpu_build():
    """scripts/setup and the README's hint name one torch, 2.13.0's CPU build: a plain torch==2.13.0 is PyPI's
    CUDA build on Linux x86-64."""
    cpu_index = "https://download.pytorch.org/whl/cpu"
    setup = (ROOT / "scripts" / "setup").read_text()
    assert 'torch_pin="torch==2.13.0+cpu"' in setup and f"--extra-index-url {cpu_index}" in setup
    assert f"pip install torch==2.13.0 --index-url {cpu_index}" in (ROOT / "README.md").read_text()


def _calls(name: str) -> list[tuple[Path, ast.Call]]:
    """Every call of ``*.name(...)`` in the kwsint package."""
    found = []
    for path in sorted((ROOT / "kwsint").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == name:
                found.append((path, node))
    return found


def _keyword(call: ast.Call, name: str):
    return next((k.value.value for k in call.keywords if k.arg == name and isinstance(k.value, ast.Constant)), None)


def test_torch_load_is_only_called_with_weights_only():
    calls = _calls("load")
    torch_calls = [(p, c) for p, c in calls if isinstance(c.func.value, ast.Name) and c.func.value.id == "torch"]
    assert torch_calls, "kwsint reads checkpoints with torch.load somewhere"
    for path, call in torch_calls:
        assert _keyword(call, "weights_only") is True, f"{path}:{call.lineno}: torch.load without weights_only=True"


def test_numpy_never_unpickles():
    calls = [(p, c) for p, c in _calls("load") if isinstance(c.func.value, ast.Name) and c.func.value.id == "np"]
    assert calls
    for path, call in calls:
        assert _keyword(call, "allow_pickle") is False, f"{path}:{call.lineno}: np.load without allow_pickle=False"


# The network-facing parts (SECURITY.md): the Wyoming service, which listens only when kwsint-wyoming runs it; the
# Dask client of --scheduler; URL inputs through fsspec; kwsint-train --nproc's rendezvous on 127.0.0.1.
NETWORK_MODULES = {ROOT / "kwsint" / "interop" / "wyoming_service.py", ROOT / "kwsint" / "cli" / "wyoming.py",
                   ROOT / "kwsint" / "cluster.py", ROOT / "kwsint" / "io" / "urls.py",
                   ROOT / "kwsint" / "train" / "qat" / "parallel.py"}


def test_no_module_imports_a_network_library():
    banned = {"socket", "urllib", "http", "requests", "ftplib", "smtplib", "xmlrpc", "ssl", "asyncio", "wyoming",
              "distributed", "dask", "fsspec", "aiohttp"}
    for path in sorted(set((ROOT / "kwsint").rglob("*.py")) - NETWORK_MODULES):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            assert not {n.split(".")[0] for n in names} & banned, f"{path}:{node.lineno} imports {names}"


@pytest.mark.parametrize("module, args", [
    ("kwsint.cli.export", ["{d}/M4.pt", "-o", "{out}/m.kwsq"]),
    ("kwsint.cli.run", ["{d}/M4.kwsq", "{d}/samples/positive_1.npy", "{d}/samples/negative_1.wav", "--no-progress"]),
    ("kwsint.cli.eval", ["--manifest", "{d}/samples/manifest.json", "--models", "{d}/M0-int8.kwsq", "{d}/M4.kwsq",
                         "--out", "{out}/eval", "--no-progress"]),
], ids=["export", "run", "eval"])
def test_the_main_commands_run_with_the_network_refused(tmp_path, module, args):
    """The demo's commands (export, run, eval), run with every socket call failing: they never reach for one."""
    argv = [a.format(d=default_model.path(), out=tmp_path) for a in args]
    r = subprocess.run([sys.executable, "-c", NO_NETWORK, module, *argv], capture_output=True, text=True,
                       cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert "network access attempted" not in r.stderr


@pytest.mark.parametrize("probe", ["socket.create_connection(('127.0.0.1', 9))",
                                   "socket.socket(socket.AF_INET, socket.SOCK_STREAM)",
                                   "socket.getaddrinfo('localhost', 80)"])
def test_the_network_guard_itself_refuses(tmp_path, probe):
    """The guard above is live: a module that reaches for the network fails under it."""
    (tmp_path / "probe_net.py").write_text(f"import socket\n{probe}\n")
    r = subprocess.run([sys.executable, "-c", NO_NETWORK, "probe_net"], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode != 0 and "network access attempted" in r.stderr, r.stderr
