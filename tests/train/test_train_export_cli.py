"""kwsint-train and kwsint-export end to end through their main() functions, on toy data."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

import kwsint
from kwsint.cli import export as export_cli, train as train_cli
from kwsint.data.dataset import save_windows
from kwsint.data.toydata import make_toy_windows
from kwsint.engine.metadata import ModelMetadata
from kwsint.train.qat.checkpoint import load_checkpoint, save_checkpoint

SIZES = "16,24"
TRAIN = ["--sizes", SIZES, "--batch-size", "64", "--eval-every", "5", "--checkpoint-every", "5", "--no-progress"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Toy data and a float, a stage-1 (4-bit) and a stage-2 checkpoint, trained for a few steps."""
    d = tmp_path_factory.mktemp("qat")
    save_windows(d / "train.npz", make_toy_windows(256, seed=1, speakers=range(8)))
    save_windows(d / "test.npz", make_toy_windows(64, seed=2, speakers=range(8, 10)))
    data = ["--train", str(d / "train.npz"), "--val", str(d / "test.npz")]
    assert train_cli.main(["--stage", "float", *data, "-o", str(d / "f.pt"), "--steps", "10", *TRAIN]) == 0
    assert train_cli.main(["--stage", "stage1", *data, "-o", str(d / "s1.pt"), "--steps", "10",
                           "--weight-bits", "4", *TRAIN]) == 0
    assert train_cli.main(["--stage", "stage2", "--init", str(d / "s1.pt"), *data, "-o", str(d / "s2.pt"),
                           "--steps", "5", "--batch-size", "64", "--no-progress"]) == 0
    return d


def _export(capsys, *argv) -> dict:
    capsys.readouterr()
    assert export_cli.main([*map(str, argv), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _error(capsys, main, *argv) -> str:
    capsys.readouterr()
    assert main([*map(str, argv)]) == 1
    return capsys.readouterr().err


def test_stages_are_recorded(trained):
    assert load_checkpoint(trained / "f.pt").model.stage == "float"
    s2 = load_checkpoint(trained / "s2.pt")
    assert s2.model.stage == "stage2" and s2.model.config.weight_bits == (4, 4, 4)
    assert s2.train["step"] == 5 and s2.train["history"][-1]["step"] == 5


@pytest.mark.parametrize("bits", [8, 5, 4, 1])
def test_export_is_bit_exact_with_the_simulation(trained, capsys, tmp_path, bits):
    out = tmp_path / f"m{bits}.kwsq"
    r = _export(capsys, trained / "s2.pt", "-o", out, "--weight-bits", bits, "--samples", trained / "test.npz")
    a = r["agreement"]
    assert a["windows"] == 64 and a["bit_exact"] == 64
    assert 0.0 <= a["accuracy"] <= 1.0
    assert [l["weight_bits"] for l in r["layers"] if l["kind"] == "dense"] == [bits] * 3
    assert r["blob_bytes"] == out.stat().st_size
    model = kwsint.load(out)
    assert model.spec.layers[0].weight_bits == bits


def test_four_bit_weights_take_half_the_bytes(trained, capsys, tmp_path):
    sizes = {}
    for bits in (8, 4):
        r = _export(capsys, trained / "s2.pt", "-o", tmp_path / f"m{bits}.kwsq", "--weight-bits", bits)
        sizes[bits] = sum(l["weight_bytes"] for l in r["layers"] if l["kind"] == "dense"), r["blob_bytes"]
    assert sizes[4][0] * 2 == sizes[8][0]
    assert sizes[8][1] - sizes[4][1] == sizes[8][0] - sizes[4][0]  # the files differ by exactly that


def test_float_checkpoint_gets_post_training_quantization(trained, capsys, tmp_path):
    err = _error(capsys, export_cli.main, trained / "f.pt", "-o", tmp_path / "f.kwsq")
    assert "needs calibration windows (--calibration)" in err and not (tmp_path / "f.kwsq").exists()
    r = _export(capsys, trained / "f.pt", "-o", tmp_path / "f.kwsq", "--calibration", trained / "train.npz",
                "--samples", trained / "test.npz", "--act-bits", "16")
    assert r["method"].startswith("post-training quantization")
    assert r["agreement"]["bit_exact"] == 64
    assert 0.0 <= r["agreement"]["decisions_equal_to_float_model"] <= 1.0
    assert kwsint.load(tmp_path / "f.kwsq").spec.act_bits == 16


def test_tflite_export_equals_the_engine_in_tflm(trained, capsys, tmp_path):
    out = tmp_path / "m.tflite"
    r = _export(capsys, trained / "s2.pt", "-o", out, "--samples", trained / "test.npz")  # the suffix's format
    assert r["format"] == "tflite" and r["tflm"]["windows"] == 64 and r["tflm"]["bit_exact"] == 64
    assert r["agreement"]["bit_exact"] == 64
    assert out.read_bytes()[4:8] == b"TFL3"
    # Per-channel FULLY_CONNECTED stays int8 in TFLite (TFLM takes INT4 only per-tensor); the affines are INT4-able
    # only at <= 4 bits, and they are 8-bit here.
    assert r["tflm"]["int4_layers"] == []


def test_per_tensor_model_gets_int4_filters_in_tflite(trained, capsys, tmp_path):
    data = ["--train", str(trained / "train.npz")]
    s1, s2 = tmp_path / "s1.pt", tmp_path / "s2.pt"
    assert train_cli.main(["--stage", "stage1", *data, "-o", str(s1), "--steps", "5", "--weight-bits", "4",
                           "--per-tensor", *TRAIN]) == 0
    assert train_cli.main(["--stage", "stage2", "--init", str(s1), *data, "-o", str(s2), "--steps", "3",
                           "--batch-size", "64", "--no-progress"]) == 0
    sizes = {}
    for bits in (8, 4):
        out = tmp_path / f"m{bits}.tflite"
        r = _export(capsys, s2, "-o", out, "--format", "tflite", "--weight-bits", bits, "--param-bits", bits,
                    "--samples", trained / "test.npz")
        assert r["tflm"]["bit_exact"] == r["agreement"]["bit_exact"] == 64
        sizes[bits] = out.stat().st_size
        assert r["tflm"]["int4_layers"] == ([0, 1, 2, 3, 4] if bits == 4 else [])
    dense_weights = (540 * 16 + 16 * 24 + 24 * 2) + (16 + 24)  # dense and affine weights of SIZES
    assert sizes[8] - sizes[4] >= dense_weights // 2 - 64


def test_onnx_export_reports_agreement(trained, capsys, tmp_path):
    r = _export(capsys, trained / "s2.pt", "-o", tmp_path / "m.onnx", "--samples", trained / "test.npz")
    assert r["format"] == "onnx"
    o = r["onnxruntime"]
    assert o["windows"] == 64 and 0 <= o["logits_exact"] <= o["decisions_agree"] <= 64


def test_suffix_and_format_must_agree(trained, capsys, tmp_path):
    """The output's suffix names the format; a contradicting --format, or a suffix naming none without
    --format, is a one-line usage error (exit 2) before any work."""
    def usage_error(*argv) -> str:
        capsys.readouterr()
        assert export_cli.main([str(trained / "s2.pt"), *map(str, argv)]) == 2
        return capsys.readouterr().err

    assert usage_error("-o", tmp_path / "m.tflite", "--format", "kwsq") == (
        f"kwsint-export: error: -o {tmp_path / 'm.tflite'}: the suffix names format tflite, --format kwsq; use .kwsq "
        "or leave out --format\n")
    assert usage_error("-o", tmp_path / "m.bin") == (
        f"kwsint-export: error: -o {tmp_path / 'm.bin'}: the suffix names no format; expected .kwsq, .tflite or "
        ".onnx, or give --format\n")
    assert not list(tmp_path.iterdir())
    assert _export(capsys, trained / "s2.pt", "-o", tmp_path / "m.bin", "--format", "kwsq")["format"] == "kwsq"
    assert _export(capsys, trained / "s2.pt", "-o", tmp_path / "M.KWSQ")["format"] == "kwsq"  # any case
    assert kwsint.load(tmp_path / "m.bin").blob_bytes > 0
    assert (tmp_path / "m.bin").read_bytes() == (tmp_path / "M.KWSQ").read_bytes()


def test_text_report(trained, capsys, tmp_path):
    capsys.readouterr()
    assert export_cli.main([str(trained / "s2.pt"), "-o", str(tmp_path / "m.kwsq")]) == 0
    text = capsys.readouterr().out
    assert "2-stage QAT" in text and "entropy/max" in text
    assert "== checkpoint simulation: 256/256 windows bit-exact (synthetic windows" in text


def test_existing_output_needs_force(trained, capsys, tmp_path):
    out = tmp_path / "m.kwsq"
    out.write_bytes(b"keep me")
    err = _error(capsys, export_cli.main, trained / "s2.pt", "-o", out)
    assert err == f"kwsint-export: error: {out}: exists; use --force to overwrite\n" and out.read_bytes() == b"keep me"
    assert export_cli.main([str(trained / "s2.pt"), "-o", str(out), "--force", "--json"]) == 0
    assert kwsint.load(out).spec.layers


def test_the_blob_carries_the_checkpoints_metadata_and_the_options_replace_it(trained, capsys, tmp_path):
    ck = load_checkpoint(trained / "s2.pt")
    meta = ModelMetadata(phrase="hey toy", threshold=0.7, smoothing_s=0.2, lockout_s=1.5, provenance="toy windows")
    save_checkpoint(tmp_path / "m.pt", ck.model, metadata=meta)
    report = _export(capsys, tmp_path / "m.pt", "-o", tmp_path / "a.kwsq")
    assert report["metadata"] == meta.stated() and kwsint.load(tmp_path / "a.kwsq").spec.metadata == meta
    _export(capsys, tmp_path / "m.pt", "-o", tmp_path / "b.kwsq", "--phrase", "hey other", "--threshold", "0.8",
            "--model-version", "2")
    assert kwsint.load(tmp_path / "b.kwsq").spec.metadata == dataclasses.replace(
        meta, phrase="hey other", threshold=0.8, model_version="2")
    err = _error(capsys, export_cli.main, tmp_path / "m.pt", "-o", tmp_path / "c.kwsq", "--smoothing", "-1")
    assert err == "kwsint-export: error: --smoothing: expected a number in [0, 60], got -1.0\n"
    assert not (tmp_path / "c.kwsq").exists()


def test_bad_checkpoint_and_options_are_named(trained, capsys, tmp_path):
    bad = tmp_path / "bad.pt"
    data = torch.load(trained / "s2.pt", weights_only=True)
    data["model"]["dense.1.weight"][0, 0] = float("nan")
    torch.save(data, bad)
    err = _error(capsys, export_cli.main, bad, "-o", tmp_path / "x.kwsq")
    assert "bad.pt: model.dense.1.weight: expected finite values" in err
    err = _error(capsys, export_cli.main, trained / "s2.pt", "-o", tmp_path / "x.kwsq", "--layer-bits", "7=4")
    assert "--layer-bits: layer 7 does not exist" in err
    err = _error(capsys, export_cli.main, trained / "s2.pt", "-o", tmp_path / "x.kwsq", "--weight-bits", "9")
    assert "weight_bits: expected 1..8" in err
    assert not (tmp_path / "x.kwsq").exists()


def test_train_refuses_overwrite_and_resumes(trained, capsys, tmp_path):
    data = ["--train", str(trained / "train.npz")]
    out = tmp_path / "r.pt"
    assert train_cli.main(["--stage", "float", *data, "-o", str(out), "--steps", "5", *TRAIN]) == 0
    err = _error(capsys, train_cli.main, "--stage", "float", *data, "-o", out, "--steps", "10", *TRAIN)
    assert err == f"kwsint-train: error: {out}: exists; use --force to overwrite, or --resume to continue it\n"
    assert train_cli.main(["--stage", "float", *data, "-o", str(out), "--steps", "10", "--resume", *TRAIN]) == 0
    assert load_checkpoint(out).train["step"] == 10
    err = _error(capsys, train_cli.main, "--stage", "stage2", *data, "-o", tmp_path / "x.pt")
    assert "needs --init" in err
    err = _error(capsys, train_cli.main, "--stage", "stage2", "--init", trained / "f.pt", *data,
                 "-o", tmp_path / "x.pt")
    assert "starts from a stage-1 checkpoint" in err


def test_m5_mixed_bits_by_layer(trained, capsys, tmp_path):
    r = _export(capsys, trained / "s2.pt", "-o", tmp_path / "m.kwsq", "--weight-bits", "1", "--layer-bits", "0=5,2=5")
    assert [l["weight_bits"] for l in r["layers"] if l["kind"] == "dense"] == [5, 1, 5]
    assert r["agreement"]["bit_exact"] == r["agreement"]["windows"]


def test_windows_of_the_wrong_shape_are_refused(trained, capsys, tmp_path):
    small = tmp_path / "small.npz"
    w = make_toy_windows(8, seed=3, speakers=range(2))
    save_windows(small, type(w)(w.features[:, :50], w.labels, w.speakers))
    err = _error(capsys, export_cli.main, trained / "s2.pt", "-o", tmp_path / "x.kwsq", "--samples", small)
    assert "samples: windows of 81 x 20 features expected by the model, got 50 x 20" in err
    err = _error(capsys, export_cli.main, trained / "f.pt", "-o", tmp_path / "x.kwsq", "--calibration", small)
    assert "calibration: windows of 81 x 20" in err
    err = _error(capsys, train_cli.main, "--stage", "float", "--train", small, "-o", tmp_path / "x.pt", *TRAIN)
    assert "--train: windows of 81 x 20" in err
    err = _error(capsys, train_cli.main, "--stage", "stage2", "--init", trained / "s1.pt", "--train", small,
                 "-o", tmp_path / "x.pt")
    assert "--train: windows of 81 x 20" in err
    assert not (tmp_path / "x.kwsq").exists() and not (tmp_path / "x.pt").exists()
