"""kwsint-make-model and kwsint-run, end to end through their main() functions."""

import json
import re

import numpy as np
import pytest

import kwsint
from kwsint.cli import make_model, run


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = tmp_path_factory.mktemp("demo")
    assert make_model.main(["--config", "M4", "-o", str(d / "m.kwsq"), "--features", str(d / "f"), "--count", "2",
                            "--seconds", "1.5"]) == 0
    return d


def _lines(capsys):
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_run_verifies_every_step_and_writes_posteriors(demo, capsys):
    capsys.readouterr()
    out = demo / "post.npz"
    files = sorted(str(p) for p in (demo / "f").glob("*.npy"))
    assert run.main([str(demo / "m.kwsq"), *files, "--verify", "--posteriors", str(out)]) == 0
    lines = _lines(capsys)
    assert [l["file"] for l in lines[:-1]] == files
    assert all(l["reference_mismatches"] == 0 and l["steps"] == (150 - 81) // 3 + 1 for l in lines[:-1])
    assert lines[-1]["summary"] and lines[-1]["reference_mismatches"] == 0
    saved = np.load(out)
    model = kwsint.load(demo / "m.kwsq")
    frames = np.load(files[0])
    np.testing.assert_array_equal(saved["logits_0"][0], model.infer(frames[:81]).logits)
    np.testing.assert_array_equal(saved["logits_0"][1], model.infer(frames[3:84]).logits)


def test_rising_edges():
    p = np.array([0.1, 0.6, 0.7, 0.2, 0.9, 0.9, 0.1])
    np.testing.assert_array_equal(run.rising_edges(p, 0.5), [1, 4])


@pytest.mark.parametrize("array, message", [
    (np.zeros((100, 19), np.float32), r"expected float features of shape \(T, 20\)"),
    (np.full((100, 20), np.nan, np.float32), "NaN or Inf"),
    (np.zeros((50, 20), np.float32), "fewer than one window"),
    (np.zeros((100, 20), np.int16), "expected float features"),
])
def test_run_names_the_bad_file(demo, tmp_path, capsys, array, message):
    bad = tmp_path / "bad.npy"
    np.save(bad, array)
    assert run.main([str(demo / "m.kwsq"), str(bad)]) == 1
    err = capsys.readouterr().err
    assert str(bad) in err and re.search(message, err)


def test_run_refuses_a_broken_model_and_unreadable_input(demo, tmp_path, capsys):
    broken = tmp_path / "broken.kwsq"
    broken.write_bytes((demo / "m.kwsq").read_bytes()[:100])
    assert run.main([str(broken), str(next((demo / "f").glob("*.npy")))]) == 2
    assert "broken.kwsq" in capsys.readouterr().err
    text = tmp_path / "notes.npy"
    text.write_text("not numpy")
    assert run.main([str(demo / "m.kwsq"), str(text)]) == 1
    assert "notes.npy: cannot read" in capsys.readouterr().err
