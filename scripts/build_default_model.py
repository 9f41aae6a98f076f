"""Turn scripts/train-default-model's work folder into the shipped files of kwsint/default_model/.

    python scripts/build_default_model.py WORK_DIR DEST_DIR

WORK_DIR holds the corpus (corpus/), the trained checkpoints (M0.pt, M2.pt, M4.pt, with their .train.json) and,
for each synthesizer S, a float M0 trained without it (without-S/M0.pt). Writes to DEST_DIR:

* M0.pt, M2.pt, M4.pt: the checkpoints without their optimizer state (a third the size), with metadata: the
  phrase, provenance, and the model's recommended operating point: smoothing and lockout as kwsint-run's,
  and the lowest threshold with at most TARGET_FALSE_PER_HOUR false detections per hour of ordinary speech
  (ORDINARY: synthesised sentences and recorded people) on the validation streams; kwsint-export puts it
  in every blob made of them;
* calibration.npz: CALIBRATION_WINDOWS training windows, drawn from the seed, for M0's PTQ;
* M0-int8.kwsq, M2.kwsq, M4.kwsq: kwsint-export of those checkpoints;
* samples/: the first SAMPLE_POSITIVES clean positive test clips (SNR >= SAMPLE_MIN_SNR_DB, dry, no channel;
  features, and the first as .wav) and the first clean ordinary-speech test utterances joined to
  NEGATIVE_SECONDS (features; the first NEGATIVE_WAV_SECONDS as .wav), with manifest.json. Chosen by these
  rules, not by what the models do; card.json records each model's detections in them;
* card.json and card.md: corpus and training settings, sizes; validation figures at each model's operating
  point; on the test streams, the paper's comparison against the float M0 at its operating point (relative
  FDR with bootstrap intervals, and the breakdown by synthesizer and category), and the held-out-synthesizer
  table: per synthesizer, the FRR of the M0 that never heard it and of the M0 that did, on that
  synthesizer's test phrases, at TARGET_FALSE_PER_HOUR false detections per hour of ordinary speech.
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
from kwsint.cli import run as run_cli
from kwsint.data import corpus
from kwsint.data.dataset import Windows, load_windows, save_windows
from kwsint.engine.metadata import ModelMetadata
from kwsint.engine.model import DEFAULT_LOCKOUT_S, DEFAULT_SMOOTHING_S, DEFAULT_THRESHOLD
from kwsint.evaluation import evaluate, markdown_report
from kwsint.io.features import compute_fbank
from kwsint.train.qat.checkpoint import load_checkpoint, save_checkpoint

CONFIGS = {"M0": "M0-int8", "M2": "M2", "M4": "M4"}
CALIBRATION_WINDOWS = 64
SAMPLE_POSITIVES = 3
SAMPLE_MIN_SNR_DB = 20.0
NEGATIVE_SECONDS = 20
NEGATIVE_WAV_SECONDS = 10
TARGET_FALSE_PER_HOUR = 2.0
ORDINARY = "negative:category=speech,recorded"
FRAME_SHIFT_S = 0.01
PROVENANCE = ("kwsint's synthetic corpus (kwsint-data synth --scale 4, seed 0: espeak-ng, flite and festival voices, "
              "each utterance with its own pitch and vocal-tract speed, generated rooms, channels and codecs, "
              "noise and babble, recorded speech as negatives; docs/data.md), trained with VTLP and SpecAugment "
              "by scripts/train-default-model; the threshold is the lowest with at most 2 false detections per "
              "hour of ordinary speech on the validation streams (card.json)")
MODEL_VERSION = "2026.12.4"


def export(checkpoint: Path, out: Path, calibration: Path, samples: Path) -> None:
    argv = [str(checkpoint), "-o", str(out), "--samples", str(samples), "--force"]
    if checkpoint.stem == "M0":
        argv += ["--weight-bits", "8", "--calibration", str(calibration)]
    with contextlib.redirect_stdout(io.StringIO()):
        if export_cli.main(argv) != 0:
            raise SystemExit(f"kwsint-export {' '.join(argv)} failed")


def sample_detections(samples: Path, blob: Path) -> dict[str, int]:
    """Per sample file, the detections kwsint-run makes in it with ``blob`` at its recommended operating point."""
    inputs = sorted(str(p) for p in samples.iterdir() if p.suffix in (".npy", ".wav"))
    with contextlib.redirect_stdout(io.StringIO()) as out:
        if run_cli.main([str(blob), *inputs, "--no-progress"]) != 0:
            raise SystemExit(f"kwsint-run {blob} on {samples} failed")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    return {Path(line["stream"]).name: line["detections"] for line in lines if "stream" in line}


def write_wav(path: Path, audio: np.ndarray) -> None:
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(corpus.SAMPLE_RATE)
        f.writeframes(audio.astype("<i2").tobytes())


def clean(utt: corpus.Utterance) -> bool:
    return utt.snr_db >= SAMPLE_MIN_SNR_DB and utt.room == "none" and utt.channel == "none"


def write_samples(data: Path, dest: Path) -> None:
    summary = json.loads((data / "corpus.json").read_text())
    plan = [u for u in corpus.plan_corpus(summary["seed"], summary["scale"], ["test"]) if clean(u)]
    banks = corpus.make_banks(summary["seed"], ["test"])
    streams = []
    for i, utt in enumerate([u for u in plan if u.kind == "positive"][:SAMPLE_POSITIVES], 1):
        clip = corpus.render(utt, banks)
        np.save(dest / f"positive_{i}.npy", compute_fbank(clip.audio))
        if i == 1:
            write_wav(dest / "positive_1.wav", clip.audio)
        streams.append({"features": f"positive_{i}.npy", "kind": "positive",
                        "spans": [[round(clip.span[0], 4), round(clip.span[1], 4)]]})
    audio = []
    for utt in (u for u in plan if u.kind == "speech"):
        audio.append(corpus.render(utt, banks).audio)
        if sum(map(len, audio)) >= NEGATIVE_SECONDS * corpus.SAMPLE_RATE:
            break
    audio = np.concatenate(audio)
    np.save(dest / "negative_1.npy", compute_fbank(audio))
    write_wav(dest / "negative_1.wav", audio[: NEGATIVE_WAV_SECONDS * corpus.SAMPLE_RATE])
    streams.append({"features": "negative_1.npy", "kind": "negative"})
    lines = ",\n".join(" " + json.dumps(s) for s in streams)
    (dest / "manifest.json").write_text(f'{{"streams": [\n{lines}\n], "frame_shift": {FRAME_SHIFT_S}}}\n')


def rounded(x, digits: int = 4):
    """``x`` (a number, list or dict of them, None) rounded for the card."""
    if isinstance(x, float):
        return round(x, digits)
    if isinstance(x, list):
        return [rounded(v, digits) for v in x]
    if isinstance(x, dict):
        return {k: rounded(v, digits) for k, v in x.items()}
    return x


def operating_threshold(manifest: Path, model: Path) -> float:
    """The lowest threshold with at most TARGET_FALSE_PER_HOUR false detections per hour of ordinary speech."""
    report = evaluate(manifest, [model], false_per_hour=TARGET_FALSE_PER_HOUR, select=[ORDINARY], bootstrap=0)
    return report["operating_point"]["threshold"]


def at_threshold(manifest: Path, model: Path, threshold: float, bootstrap: int) -> dict:
    """FRR, and false detections per hour of each negative category, of one model at ``threshold``."""
    report = evaluate(manifest, [model], threshold=threshold, bootstrap=bootstrap)
    op = report["operating_point"]
    out = {"threshold": round(threshold, 4), "frr": rounded(op["frr"]), "frr_ci": rounded(op.get("ci", {}).get("frr")),
           "false_per_hour": {}}
    for row in report["breakdown"]["category"]:
        if row["negative_streams"]:
            m = row["models"][0]
            out["false_per_hour"][row["value"]] = {"value": rounded(m["false_per_hour"], 2), "hours": round(
                row["negative_hours"], 3), "ci": rounded(m.get("ci", {}).get("false_per_hour"), 2)}
    return out


def held_out_synthesizers(work: Path, manifest: Path) -> list[dict]:
    """Per synthesizer: the FRR on its test phrases of the M0 trained without it and of the one trained on all,
    each at its TARGET_FALSE_PER_HOUR false detections per hour of ordinary speech (all synthesizers' and the
    recorded people's), with intervals. No model hears a corpus.TEST_ONLY synthesizer: its held-out figure is
    the M0 trained on all, and it has no seen one."""
    rows = []
    for synthesizer in corpus.SYNTHESIZERS:
        row = {"synthesizer": synthesizer, "seen": None}
        models = ((("held_out", work / "M0.pt"),) if synthesizer in corpus.TEST_ONLY else
                  (("held_out", work / f"without-{synthesizer}" / "M0.pt"), ("seen", work / "M0.pt")))
        for key, model in models:
            report = evaluate(manifest, [model], false_per_hour=TARGET_FALSE_PER_HOUR,
                              select=[f"positive:synthesizer={synthesizer}", ORDINARY])
            op = report["operating_point"]
            row[key] = {"frr": rounded(op["frr"]), "frr_ci": rounded(op["ci"]["frr"]),
                        "false_per_hour": rounded(op["false_per_hour"], 2), "threshold": rounded(op["threshold"])}
            row["phrases"] = report["data"]["spans"]
        rows.append(row)
    return rows


def comparison(manifest: Path, dest: Path, threshold: float) -> dict:
    """The paper's comparison on the test streams: the float M0 at ``threshold`` (its operating point) against the
    shipped blobs, relative FDR with intervals, and the breakdown by tag."""
    models = [dest / "M0.pt"] + [dest / f"{name}.kwsq" for name in CONFIGS.values()]
    report = evaluate(manifest, models, threshold=threshold)
    return {"operating_point": rounded(report["operating_point"]), "data": rounded(report["data"]),
            "models": [{k: rounded(m[k]) for k in ("name", "weight_bits", "act_bits", "size_bytes",
                                                    "at_operating_point")} for m in report["models"]],
            "breakdown": rounded(report["breakdown"]), "markdown": markdown_report(report)}


def save_lean(work: Path, dest: Path, config: str, threshold: float) -> None:
    metadata = ModelMetadata(phrase="hey lumen", threshold=round(threshold, 4), smoothing_s=DEFAULT_SMOOTHING_S,
                             lockout_s=DEFAULT_LOCKOUT_S, provenance=PROVENANCE, model_version=MODEL_VERSION)
    save_checkpoint(dest / f"{config}.pt", load_checkpoint(work / f"{config}.pt").model, metadata=metadata)


def main(work: Path, dest: Path) -> None:
    data = work / "corpus"
    (dest / "samples").mkdir(parents=True, exist_ok=True)
    train = load_windows(data / "train.npz")
    pick = np.sort(np.random.default_rng(0).choice(len(train.labels), CALIBRATION_WINDOWS, replace=False))
    save_windows(dest / "calibration.npz", Windows(train.features[pick], train.labels[pick], train.speakers[pick]))
    card = {"phrase": "hey lumen", "corpus": json.loads((data / "corpus.json").read_text()),
            "operating_point_rule": f"the lowest threshold with at most {TARGET_FALSE_PER_HOUR:g} false detections "
                                    "per hour of ordinary speech (synthesised and recorded) on the validation "
                                    "streams; smoothing and lockout as kwsint-run's defaults",
            "models": {}}
    val, test = data / "val-manifest.json", data / "manifest.json"
    for config, name in CONFIGS.items():
        blob = dest / f"{name}.kwsq"
        save_lean(work, dest, config, DEFAULT_THRESHOLD)  # the threshold is chosen on this export's scores
        export(dest / f"{config}.pt", blob, dest / "calibration.npz", data / "test.npz")
        threshold = operating_threshold(val, blob)
        save_lean(work, dest, config, threshold)
        export(dest / f"{config}.pt", blob, dest / "calibration.npz", data / "test.npz")
        runs = [json.loads(line) for f in sorted(work.glob(f"{config}*.train.json")) for line in f.open()]
        card["models"][name] = {"checkpoint": f"{config}.pt", "blob_bytes": blob.stat().st_size, "training": runs,
                                "validation": at_threshold(val, blob, threshold, 0),
                                "test": at_threshold(test, blob, threshold, 1000)}
    float_threshold = operating_threshold(val, dest / "M0.pt")
    card["float_M0"] = {"checkpoint": "M0.pt", "validation": at_threshold(val, dest / "M0.pt", float_threshold, 0),
                        "test": at_threshold(test, dest / "M0.pt", float_threshold, 1000)}
    card["test_comparison"] = comparison(test, dest, float_threshold)
    card["held_out_synthesizers"] = held_out_synthesizers(work, test)
    write_samples(data, dest / "samples")
    for name in CONFIGS.values():
        card["models"][name]["samples"] = sample_detections(dest / "samples", dest / f"{name}.kwsq")
    markdown = card["test_comparison"].pop("markdown").replace(f"{work}/", "WORK_DIR/")
    (dest / "card.json").write_text(json.dumps(card, indent=1) + "\n")
    (dest / "card.md").write_text(card_markdown(card, markdown))


def _pct(x, ci=None) -> str:
    text = "n/a" if x is None else f"{100 * x:.1f}"
    return text if not ci else f"{text} [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def _num(x, ci=None) -> str:
    text = "n/a" if x is None else f"{x:.2f}"
    return text if not ci else f"{text} [{ci[0]:.2f}, {ci[1]:.2f}]"


def card_markdown(card: dict, comparison_markdown: str) -> str:
    """The model card: what the default model was trained on and how well it does, from card.json."""
    c = card["corpus"]
    lines = ["# The default model: \"hey lumen\"", "",
             "Made by `scripts/train-default-model` (`scripts/build_default_model.py` wrote this card from "
             "card.json). Corpus: `kwsint-data synth --scale 4 --seed 0` (docs/data.md): "
             f"{sum(v for v in c['utterances'].values() if isinstance(v, int))} synthesised utterances by "
             "espeak-ng, flite and festival voices (and, in the test split only, piper's neural voice), and "
             "recorded people as negatives. Splits by voice: no test voice is in training. Every model was trained "
             "with `kwsint-train --augment`.", "",
             f"Operating point: {card['operating_point_rule']}. FRR = missed phrases / phrases; false detections "
             "per hour by kind of negative audio; 95% bootstrap intervals over streams in brackets.", "",
             "## Each model at its own operating point, on the test streams", "",
             "| model | threshold | FRR (%) | false/h ordinary speech (synthesised) | false/h recorded people | "
             "false/h near misses | false/h noise |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, m in [("M0 (float)", card["float_M0"])] + list(card["models"].items()):
        t = m["test"]
        fph = t["false_per_hour"]
        cell = [_num(fph[k]["value"], fph[k]["ci"]) if k in fph else "n/a"
                for k in ("speech", "recorded", "near-miss", "noise")]
        lines.append(f"| {name} | {t['threshold']:.4f} | {_pct(t['frr'], t['frr_ci'])} | " + " | ".join(cell) + " |")
    samples = [m["samples"] for m in card["models"].values()]
    positives = sorted(k for k in samples[0] if k.startswith("positive"))
    lines += ["", "## The shipped samples", "",
              "Detections by `kwsint-run` at each model's operating point in samples/ (clean test clips, chosen "
              "by a rule, not by what the models do: build_default_model.py).", "",
              "| model | " + " | ".join(positives) + " | speech (negative_1.npy) |",
              "|---|" + "---:|" * (len(positives) + 1)]
    for name, m in card["models"].items():
        lines.append(f"| {name} | " + " | ".join(str(m["samples"][k]) for k in positives)
                     + f" | {m['samples']['negative_1.npy']} |")
    lines += ["", "## Synthesizers held out of training", "",
              f"FRR on each synthesizer's test phrases at {TARGET_FALSE_PER_HOUR:g} false detections per hour of "
              "ordinary speech, for a float M0 trained without that synthesizer (held out) and for the one "
              "trained on all (seen).", "",
              "| synthesizer | phrases | FRR held out (%) | FRR seen (%) |", "|---|---:|---:|---:|"]
    for row in card["held_out_synthesizers"]:
        lines.append(f"| {row['synthesizer']} | {row['phrases']} | "
                     f"{_pct(row['held_out']['frr'], row['held_out']['frr_ci'])} | "
                     + ("heard in test only |" if row["seen"] is None else
                        f"{_pct(row['seen']['frr'], row['seen']['frr_ci'])} |"))
    lines += ["", "## The paper's comparison against the float M0, on the test streams", "",
              comparison_markdown.replace("# kwsint-eval report", "").strip(), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
