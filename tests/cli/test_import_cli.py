"""kwsint-import: a microWakeWord .tflite (with its JSON settings) -> a kind 1 blob that runs as the importer's
graph does; refusals end in one line."""

from pathlib import Path

import numpy as np
import pytest

import kwsint
from kwsint.cli import import_tflite
from kwsint.engine.graph import ReferenceStream
from kwsint.interop.tflite_import import read_tflite

pymicro_wakeword = pytest.importorskip("pymicro_wakeword")
MODELS = Path(pymicro_wakeword.__file__).parent / "models"


def _run(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    code = import_tflite.main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_import_writes_a_blob_with_the_settings(tmp_path, capsys):
    out = tmp_path / "jarvis.kwsq"
    code, stdout, err = _run(capsys, MODELS / "hey_jarvis.tflite", "--settings", MODELS / "hey_jarvis.json",
                             "-o", out)
    assert code == 0 and err == "" and stdout.startswith(f"{out}: 18 ops, 6 states (2,840 bytes), 21,630 MACs")
    model = kwsint.load(out)
    spec = read_tflite(MODELS / "hey_jarvis.tflite", settings=MODELS / "hey_jarvis.json")
    assert model.metadata == spec.metadata and model.metadata.stated()
    ref, stream = ReferenceStream(spec), model.stream()
    rng = np.random.default_rng(0)
    for _ in range(50):
        x = np.clip(rng.integers(-128, 128, (3, 40)), -128, 127).astype(np.int8)
        np.testing.assert_array_equal(stream.invoke(x), ref.invoke(x))
    code, _, err = _run(capsys, MODELS / "hey_jarvis.tflite", "-o", out)  # exists
    assert code == 1 and err.startswith("kwsint-import: error: ") and "--force" in err
    assert _run(capsys, MODELS / "hey_jarvis.tflite", "-o", out, "--force")[0] == 0


def test_import_refuses_a_file_that_is_not_a_model(tmp_path, capsys):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a flatbuffer at all")
    code, stdout, err = _run(capsys, bad, "-o", tmp_path / "bad.kwsq")
    assert code == 1 and stdout == "" and err.startswith(f"kwsint-import: error: {bad}") and err.count("\n") == 1
    assert not (tmp_path / "bad.kwsq").exists()
    assert _run(capsys, bad, "-o", tmp_path / "bad.bin")[0] == 2


def test_info_describes_a_graph_and_run_names_a_missing_input_in_one_line(tmp_path, capsys):
    from kwsint.cli import info, run
    out = tmp_path / "nabu.kwsq"
    assert _run(capsys, MODELS / "okay_nabu.tflite", "--settings", MODELS / "okay_nabu.json", "-o", out)[0] == 0
    code = info.main([str(out)])
    text = capsys.readouterr().out
    assert code == 0 and "format 5, streaming graph" in text and "36,480 per invoke" in text
    assert "3 frames x 40 int8" in text and "1 x 1 uint8" in text
    missing = tmp_path / "missing.wav"
    code = run.main([str(out), str(missing), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith(f"kwsint-run: error: {missing}: file: ") and err.count("\n") == 1
