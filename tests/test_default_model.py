"""The shipped default model (kwsint/default_model): its files, its exports, and kwsint-run on its samples."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import kwsint
from kwsint import default_model
from kwsint.cli import export, run
from kwsint.evaluation import read_manifest

SAMPLES = default_model.path("samples")
STREAMS = read_manifest(SAMPLES / "manifest.json")
CARD = json.loads(default_model.path("card.json").read_text())
INPUTS = sorted(str(p) for p in SAMPLES.iterdir() if p.suffix in (".npy", ".wav"))
TOLERANCE_S = 0.5  # kwsint-eval's default: a detection up to this long after the phrase still hits it


def inputs_of(stream) -> list[str]:
    """The stream's feature file and, where shipped, the same audio as .wav."""
    wav = stream.features.with_suffix(".wav")
    return [str(stream.features)] + ([str(wav)] if wav.exists() else [])


def run_samples(capsys, config: str, *argv: str) -> list[dict]:
    capsys.readouterr()
    code = run.main([str(default_model.path(f"{config}.kwsq")), *INPUTS, "--no-progress", *argv])
    assert code == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_shipped_files_fit_in_a_few_megabytes():
    files = [p for p in default_model.path().rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc")]
    assert {p.name for p in files} >= {"M0.pt", "M2.pt", "M4.pt", "M0-int8.kwsq", "M2.kwsq", "M4.kwsq",
                                       "calibration.npz", "card.json", "manifest.json"}
    assert sum(p.stat().st_size for p in files) < 5 * 2**20


@pytest.mark.parametrize("config", default_model.CONFIGS)
def test_each_blob_is_the_export_of_its_checkpoint(config, tmp_path, capsys):
    checkpoint = default_model.path(config.removesuffix("-int8") + ".pt")
    ptq = ["--weight-bits", "8", "--calibration", str(default_model.path("calibration.npz"))]
    out = tmp_path / f"{config}.kwsq"
    assert export.main([str(checkpoint), "-o", str(out), *(ptq if config == "M0-int8" else [])]) == 0
    assert out.read_bytes() == default_model.path(f"{config}.kwsq").read_bytes()
    info = kwsint.load(f"default:{config}").info()
    assert info["layers"][0]["weight_bits"] == {"M0-int8": 8, "M2": 8, "M4": 4}[config]


@pytest.mark.parametrize("config", ["M2", "M4"])
def test_qat_export_does_not_depend_on_the_cpus_vector_math(config, tmp_path):
    """MKL picks its float32 tanh and sqrt for the CPU (they differ in the last bit on AVX-512 and AVX2);
    the stage-2 export computes both in float64 and rounds once, so it gives the shipped blob on every
    code path MKL_CBWR can force."""
    for path in ("AUTO", "COMPATIBLE", "AVX2"):
        out = tmp_path / f"{config}-{path}.kwsq"
        r = subprocess.run([sys.executable, "-m", "kwsint.cli.export", str(default_model.path(f"{config}.pt")), "-o",
                            str(out)], env={**os.environ, "MKL_CBWR": path}, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert out.read_bytes() == default_model.path(f"{config}.kwsq").read_bytes(), f"MKL_CBWR={path}"


@pytest.mark.parametrize("backend", kwsint.backends())
@pytest.mark.parametrize("config", default_model.CONFIGS)
def test_detects_the_phrase_in_the_positive_samples_only(config, backend, capsys):
    """Detections only inside a phrase's span, at most one each, none in the speech, and in the samples the card
    says the model detects at its operating point (build_default_model.py counted them)."""
    lines = run_samples(capsys, config, "--backend", backend)
    detections = [line for line in lines if "time" in line]
    expected = CARD["models"][config]["samples"]
    for stream in STREAMS:
        for name in inputs_of(stream):
            times = [d["time"] for d in detections if d["file"] == name]
            assert len(times) == expected[Path(name).name], (name, times)
            if stream.kind == "positive":
                [(start, end)] = stream.spans
                assert len(times) <= 1 and all(start <= t <= end + TOLERANCE_S for t in times), (name, times)
            else:
                assert times == [], name
    assert sum(expected.values()) >= 1


@pytest.mark.parametrize("config", default_model.CONFIGS)
def test_every_backend_and_worker_count_gives_the_same_output(config, capsys):
    want = run_samples(capsys, config, "--backend", "portable")
    assert want[-1]["summary"] and want[-1]["detections"] == sum(CARD["models"][config]["samples"].values())
    for backend in kwsint.backends():
        for workers in ("1", "2"):
            got = run_samples(capsys, config, "--backend", backend, "--workers", workers)
            assert [drop_backend(line) for line in got] == [drop_backend(line) for line in want], (backend, workers)


def drop_backend(line: dict) -> dict:
    return {k: v for k, v in line.items() if k != "backend"}


def test_load_and_path_name_what_is_wrong():
    with pytest.raises(ValueError, match="default:M9: no such shipped model; shipped: default:M0-int8, default:M2, "
                                         "default:M4"):
        kwsint.load("default:M9")
    with pytest.raises(FileNotFoundError, match="M9.kwsq: not shipped with kwsint"):
        default_model.path("M9.kwsq")
    assert kwsint.load("default:M2", backend="portable").backend == "portable"
