"""The package layout is the architecture (README, "Layout"): every import points down the layers, and
the runtime engine loads and runs with the training, data, evaluation, interop and CLI code absent."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "kwsint"

# What each part of kwsint may import besides itself (and the standard library and its dependencies).
ALLOWED = {
    "errors": set(),
    "_kwsint_c": set(),
    "default_model": set(),
    "io": {"errors"},
    "engine": {"errors", "_kwsint_c", "default_model", "io"},
    "data": {"errors", "io"},
    "train": {"errors", "io", "engine", "__init__"},
    "interop": {"errors", "io", "engine", "__init__"},
    "evaluation": {"errors", "io", "engine", "default_model", "train", "__init__"},  # train: reading float .pt
    "cli": {"errors", "io", "engine", "default_model", "data", "train", "interop", "evaluation", "__init__"},
    # interop: kwsint.load of a .tflite, lazily; io: kwsint.cluster's install hint (kwsint.io.urls)
    "__init__": {"errors", "engine", "default_model", "interop", "io"},
}
NOT_RUNTIME = ("kwsint.train", "kwsint.data", "kwsint.evaluation", "kwsint.interop", "kwsint.cli")


def _part(module: str) -> str:
    """The part of kwsint a dotted name belongs to: "kwsint.engine.model" -> "engine"; "kwsint" and the names
    it exports ("kwsint.load", "kwsint.__version__") -> "__init__"."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ALLOWED else "__init__"


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every kwsint import in the file, relative ones resolved, function-local ones
    included."""
    module, found = _module(path), []
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "kwsint"]
        elif isinstance(node, ast.ImportFrom):
            base = (package[: len(package) - node.level + 1] + ([node.module] if node.module else []) if node.level
                    else [node.module or ""])
            target = ".".join(base)
            if target.split(".")[0] != "kwsint":
                continue
            # "from kwsint import engine" or "from . import reference": the names may be modules themselves
            found += [(node.lineno, f"{target}.{a.name}" if target == "kwsint" else target) for a in node.names]
    return found


def test_every_import_points_down_the_layers():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        part = _part(_module(path))
        if part == "_build_ffi":
            continue
        for line, target in _imports(path):
            to = _part(target)
            if to != part and to in ALLOWED and to not in ALLOWED[part]:
                wrong.append(f"{path.relative_to(ROOT)}:{line}: {part} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_the_layer_check_sees_a_wrong_import(tmp_path, monkeypatch):
    """The check above is live: an engine module importing training code is reported."""
    bad = tmp_path / "kwsint" / "engine" / "bad.py"
    bad.parent.mkdir(parents=True)
    bad.write_text("from ..train.export import Export\nimport kwsint.cli.run\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert _imports(bad) == [(1, "kwsint.train.export"), (2, "kwsint.cli.run")]
    assert {_part(t) for _, t in _imports(bad)} - ALLOWED["engine"] == {"train", "cli"}


def test_every_package_folder_is_installed():
    """pyproject.toml lists the packages setuptools installs: a folder left out would be missing after pip install."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {_module(init) for init in PACKAGE.rglob("__init__.py")}
    assert folders <= listed, f"not in pyproject.toml's packages: {sorted(folders - listed)}"


RUNTIME_ONLY = """import sys
for name in {blocked!r}:
    sys.modules[name] = None  # "import name" now fails, as if the folder were absent
import numpy as np
import kwsint
from kwsint.io.inputs import iter_streams
model = kwsint.load("default:M4")
samples = kwsint.default_model.path("samples")
streams = [name for path in ("positive_1.wav", "negative_1.npy") for name, _ in iter_streams(samples / path, 20)]
pcm = np.frombuffer((samples / "positive_1.wav").read_bytes()[44:], dtype="<i2")
print(len(list(model.listener().push(pcm))), kwsint.ops.fully_connected is not None, len(streams))
print(sorted(m for m, v in sys.modules.items() if v is not None and m.startswith({not_runtime!r})))
"""


def test_the_runtime_runs_without_training_data_or_cli_code():
    code = RUNTIME_ONLY.format(blocked=NOT_RUNTIME, not_runtime=NOT_RUNTIME)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-4000:]
    assert r.stdout.splitlines() == ["1 True 2", "[]"]
