"""benchmarks/report.py: the paper-style table, its JSON and its plot, from one command."""

import importlib.util
import json
from pathlib import Path

import pytest

import kwsint
from kwsint.train.generate import paper_model

REPORT = Path(__file__).resolve().parent.parent / "benchmarks" / "report.py"


@pytest.fixture(scope="module")
def report():
    spec = importlib.util.spec_from_file_location("kws_report", REPORT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _table(md: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in md.splitlines() if line.startswith("| ")]


def test_paper_configurations(report, tmp_path):
    # portable: weights held exactly as the blob's codes (packing backends pad them)
    assert report.main(["--out", str(tmp_path), "--repeats", "2", "--rounds", "1", "--backend", "portable"]) == 0
    rows = _table((tmp_path / "report.md").read_text())
    header, body = rows[0], rows[1:]
    assert [r[0] for r in body] == ["M0 (float32)", "M1", "M2", "M3", "M4", "M5", "M6"]
    col = {name: i for i, name in enumerate(header)}
    m2 = body[2]
    assert m2[col["weights in memory (B)"]] == "223241"
    assert body[0][col["weights in memory (B)"]] == str(4 * 223241)  # float32: 4 bytes per weight
    assert m2[header.index("x float", col["weights in memory (B)"])] == "0.250"
    assert m2[col["model size (B)"]] == str(len(kwsint.write_blob(paper_model("M2"))))
    assert int(m2[col["A53 cycles (proj.)"]]) > 0 and body[0][col["A53 cycles (proj.)"]] == "n/a"
    data = json.loads((tmp_path / "report.json").read_text())
    assert [len(r["layer_ticks"]) for r in data["rows"]] == [13] * 7
    assert (tmp_path / "cycles.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluated_models_get_their_relative_fdr(report, tmp_path):
    blob = tmp_path / "M4.kwsq"
    blob.write_bytes(kwsint.write_blob(paper_model("M4")))
    ev = tmp_path / "eval.json"
    ev.write_text(json.dumps({"models": [{"name": "M0", "path": "default:M0", "weight_bits": "f32", "act_bits": 32},
                                         {"name": "M4", "path": str(blob), "weight_bits": "4", "act_bits": 8,
                                          "at_operating_point": {"relative_fdr_degradation_pct": 54.1}}]}))
    out = tmp_path / "out"
    assert report.main(["--out", str(out), "--eval", str(ev), "--repeats", "2", "--rounds", "1"]) == 0
    body = _table((out / "report.md").read_text())[1:]
    assert [r[:4] for r in body] == [["M0 (float32)", "32", "32", "n/a"], ["M4", "4", "8", "54.1"]]
