"""Turn scripts/train-default-model's work folder into the shipped files of kwsint/default_model/.

    python scripts/build_default_model.py WORK_DIR DEST_DIR

WORK_DIR holds the corpus (corpus/) and the trained checkpoints (M0.pt, M2.pt,
M4.pt, with their .train.json). Writes to DEST_DIR:

* M0.pt, M2.pt, M4.pt: the checkpoints without their optimizer state (a third the size), with METADATA
  (the phrase, the operating point the card's "default" validation figures are measured at, provenance),
  which kwsint-export puts in every blob made of them;
* calibration.npz: CALIBRATION_WINDOWS training windows, drawn from the seed, for M0's PTQ;
* M0-int8.kwsq, M2.kwsq, M4.kwsq: kwsint-export of those checkpoints;
* samples/: the first SAMPLE_POSITIVES clean positive test clips (SNR >= SAMPLE_MIN_SNR_DB, no
  reverberation; features, and the first as .wav) and the first clean ordinary-speech test utterances
  joined to NEGATIVE_SECONDS (features; the first NEGATIVE_WAV_SECONDS as .wav), with manifest.json.
  Chosen by these rules, not by what the models do; the near misses and the noisy, reverberant clips
  are left to kwsint-eval on the test streams;
* card.json: corpus and training settings, sizes, and validation results: per model FRR and false
  detections per hour at threshold 0.5 (kwsint-run's default), and the lowest threshold with at most
  TARGET_FALSE_PER_HOUR false detections per hour on the validation streams.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import wave
from pathlib import Path

import numpy as np

from kwsint.cli import export as export_cli
from kwsint.data import corpus
from kwsint.data.dataset import Windows, load_windows, save_windows
from kwsint.engine.metadata import ModelMetadata
from kwsint.engine.model import DEFAULT_LOCKOUT_S, DEFAULT_SMOOTHING_S, DEFAULT_THRESHOLD
from kwsint.evaluation import evaluate
from kwsint.io.features import compute_fbank
from kwsint.train.qat.checkpoint import load_checkpoint, save_checkpoint

CONFIGS = {"M0": "M0-int8", "M2": "M2", "M4": "M4"}
CALIBRATION_WINDOWS = 64
SAMPLE_POSITIVES = 3
SAMPLE_MIN_SNR_DB = 20.0
NEGATIVE_SECONDS = 20
NEGATIVE_WAV_SECONDS = 10
TARGET_FALSE_PER_HOUR = 10.0
FRAME_SHIFT_S = 0.01
METADATA = ModelMetadata(
    phrase="hey lumen", threshold=DEFAULT_THRESHOLD, smoothing_s=DEFAULT_SMOOTHING_S, lockout_s=DEFAULT_LOCKOUT_S,
    provenance="kwsint's synthetic corpus (kwsint-data synth --scale 4, seed 0: espeak-ng voices, sox noise and "
               "reverberation; docs/data.md), trained by scripts/train-default-model; the operating point is the "
               "one card.json's validation figures are measured at",
    model_version="2026.12")


def export(checkpoint: Path, out: Path, calibration: Path, samples: Path) -> None:
    argv = [str(checkpoint), "-o", str(out), "--samples", str(samples), "--force"]
    if checkpoint.stem == "M0":
        argv += ["--weight-bits", "8", "--calibration", str(calibration)]
    with contextlib.redirect_stdout(io.StringIO()):
        if export_cli.main(argv) != 0:
            raise SystemExit(f"kwsint-export {' '.join(argv)} failed")


def write_wav(path: Path, audio: np.ndarray) -> None:
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(corpus.SAMPLE_RATE)
        f.writeframes(audio.astype("<i2").tobytes())


def clean(utt: corpus.Utterance) -> bool:
    return utt.snr_db >= SAMPLE_MIN_SNR_DB and utt.reverb is None


def write_samples(data: Path, dest: Path) -> None:
    summary = json.loads((data / "corpus.json").read_text())
    plan = [u for u in corpus.plan_corpus(summary["seed"], summary["scale"]) if u.split == "test" and clean(u)]
    bank = corpus.noise_bank()
    streams = []
    for i, utt in enumerate([u for u in plan if u.kind == "positive"][:SAMPLE_POSITIVES], 1):
        clip = corpus.render(utt, bank)
        np.save(dest / f"positive_{i}.npy", compute_fbank(clip.audio))
        if i == 1:
            write_wav(dest / "positive_1.wav", clip.audio)
        streams.append({"features": f"positive_{i}.npy", "kind": "positive",
                        "spans": [[round(clip.span[0], 4), round(clip.span[1], 4)]]})
    audio = []
    for utt in (u for u in plan if u.kind == "speech"):
        audio.append(corpus.render(utt, bank).audio)
        if sum(map(len, audio)) >= NEGATIVE_SECONDS * corpus.SAMPLE_RATE:
            break
    audio = np.concatenate(audio)
    np.save(dest / "negative_1.npy", compute_fbank(audio))
    write_wav(dest / "negative_1.wav", audio[: NEGATIVE_WAV_SECONDS * corpus.SAMPLE_RATE])
    streams.append({"features": "negative_1.npy", "kind": "negative"})
    lines = ",\n".join(" " + json.dumps(s) for s in streams)
    (dest / "manifest.json").write_text(f'{{"streams": [\n{lines}\n], "frame_shift": {FRAME_SHIFT_S}}}\n')


def validation(data: Path, dest: Path) -> dict:
    """Per model on the validation streams: FRR and false detections per hour at kwsint-run's default
    threshold (0.5), and the lowest threshold with at most TARGET_FALSE_PER_HOUR false detections per hour."""
    out = {}
    for name in CONFIGS.values():
        point = {}
        for key, how in (("default", {"threshold": 0.5}), ("strict", {"false_per_hour": TARGET_FALSE_PER_HOUR})):
            report = evaluate(data / "val-manifest.json", [dest / f"{name}.kwsq"], **how)
            op, model = report["operating_point"], report["models"][0]
            point[key] = {"threshold": round(op["threshold"], 4), "frr": round(op["frr"], 4),
                          "false_per_hour": round(model["at_operating_point"]["false_per_hour"], 2)}
        out[name] = point
    return out


def main(work: Path, dest: Path) -> None:
    corpus = work / "corpus"
    (dest / "samples").mkdir(parents=True, exist_ok=True)
    train = load_windows(corpus / "train.npz")
    pick = np.sort(np.random.default_rng(0).choice(len(train.labels), CALIBRATION_WINDOWS, replace=False))
    save_windows(dest / "calibration.npz", Windows(train.features[pick], train.labels[pick], train.speakers[pick]))
    card = {"phrase": "hey lumen", "corpus": json.loads((corpus / "corpus.json").read_text()), "models": {}}
    for config, name in CONFIGS.items():
        save_checkpoint(dest / f"{config}.pt", load_checkpoint(work / f"{config}.pt").model, metadata=METADATA)
        export(dest / f"{config}.pt", dest / f"{name}.kwsq", dest / "calibration.npz", corpus / "test.npz")
        runs = [json.loads(line) for f in sorted(work.glob(f"{config}*.train.json")) for line in f.open()]
        card["models"][name] = {"checkpoint": f"{config}.pt", "blob_bytes": (dest / f"{name}.kwsq").stat().st_size,
                                "training": runs}
    write_samples(corpus, dest / "samples")
    for name, result in validation(corpus, dest).items():
        card["models"][name]["validation"] = result
    (dest / "card.json").write_text(json.dumps(card, indent=1) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
