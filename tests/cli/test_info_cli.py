"""kwsint-info, and shipped models by name (default:NAME) wherever a model path is taken."""

import dataclasses
import json

import pytest

import kwsint
from kwsint.cli import info
from kwsint.engine.metadata import ModelMetadata
from kwsint.train.generate import random_model


def _info(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    code = info.main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_shipped_models_load_by_name():
    assert kwsint.load("default:M4").blob_bytes == kwsint.default_model.path("M4.kwsq").stat().st_size
    with pytest.raises(ValueError, match="default:M9: no such shipped model; shipped: default:M0-int8, default:M2"):
        kwsint.load("default:M9")


def test_info_shows_metadata_layers_and_memory(tmp_path, capsys):
    meta = ModelMetadata(phrase="hey lumen", threshold=0.7, smoothing_s=0.2, lockout_s=1.5,
                         provenance="espeak-ng voices\nseed 0", model_version="1.2")
    path = tmp_path / "m.kwsq"
    kwsint.save(dataclasses.replace(random_model((5, 7), weight_bits=[8, 4, 1]), metadata=meta), path)
    code, out, err = _info(capsys, path, "--backend", "portable")
    assert code == 0 and err == ""
    assert "phrase       hey lumen\n" in out
    assert "operating    threshold 0.7, smoothing 0.2 s, lockout 1.5 s\n" in out
    assert "provenance   espeak-ng voices\n             seed 0\n" in out
    assert "version      1.2\n" in out
    model = kwsint.load(path, backend="portable")
    assert f"MACs         {model.info()['macs']:,} per inference" in out
    assert f"one stream {model.info()['stream_bytes']:,} B" in out
    assert out.count("fused into the previous layer") == 2

    code, out, _ = _info(capsys, path, "--json", "--backend", "portable", "--weights", "packed")
    d = json.loads(out)
    assert code == 0 and d["metadata"] == meta.stated() and d["format_version"] == 4
    assert [l["weight_bits"] for l in d["layers"]] == [8, 8, 4, 8, 1]
    assert d["layers"][2]["kernel"] == "portable 4-bit nibble rows"
    assert d["blob_bytes"] == path.stat().st_size and d["weights"] == "packed"


def test_info_says_what_a_model_does_not_state(tmp_path, capsys):
    path = tmp_path / "m.kwsq"
    kwsint.save(random_model((5,)), path)
    code, out, _ = _info(capsys, path)
    assert code == 0 and "phrase       not stated\n" in out
    assert "operating    not stated (kwsint-run's defaults apply)\n" in out and "provenance" not in out


def test_the_shipped_models_state_their_phrase_and_operating_point(capsys):
    """The operating point build_default_model.py chose and recorded in the card, as its metadata states it."""
    code, out, _ = _info(capsys, "default:M4")
    threshold = json.loads(kwsint.default_model.path("card.json").read_text())["models"]["M4"]["test"]["threshold"]
    stated = f"phrase       hey lumen\noperating    threshold {threshold:g}, smoothing 0.15 s, lockout 1 s\n"
    assert code == 0 and stated in out


@pytest.mark.parametrize("arg, message", [
    ("missing.kwsq", "kwsint-info: error: missing.kwsq: No such file or directory"),
    (".", "kwsint-info: error: .: Is a directory"),
    ("README.md", "kwsint-info: error: README.md: magic: expected b'KWSQ'"),
    ("default:M7", "kwsint-info: error: default:M7: no such shipped model"),
])
def test_info_refuses_bad_models_in_one_line(capsys, monkeypatch, arg, message):
    monkeypatch.chdir(kwsint.default_model.path().parent.parent)
    code, out, err = _info(capsys, arg)
    assert code == 1 and out == "" and err.startswith(message) and err.count("\n") == 1
