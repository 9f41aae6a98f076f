"""Regenerates the seed inputs of tests/fuzz/corpus/<target>/ (files named seed-*).

Deterministic.

    python tests/fuzz/make_seeds.py

Seeds are small valid files of each format: blobs of small random models
(1..8-bit weights, int8 and int16 activations, per-tensor scales, an int16
accumulation block, a format-2 blob), .npy/.ark/.scp/.wav feature files,
checkpoints of a tiny network, what Wyoming clients send the wake word
service (valid sessions, and two mistakes, named bad-*), and small streaming
.tflite graphs with microWakeWord settings files. Inputs the fuzzers added
(named by their SHA-1) are left alone.

    python tests/fuzz/make_seeds.py tflite    # only the named targets
"""

from __future__ import annotations

import io
import json
import struct
import sys
import wave
from pathlib import Path

import numpy as np
import torch
from kaldiio.matio import write_array
from wyoming.audio import AudioChunk, AudioChunkConverter, AudioStart, AudioStop
from wyoming.event import Event, write_event
from wyoming.info import Describe
from wyoming.ping import Ping
from wyoming.wake import Detect

import kwsint
from kwsint.train.generate import random_model

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.interop.streaming_graphs import S, logistic_graph, streaming_graph  # noqa: E402
from kwsint.train.qat.checkpoint import save_checkpoint
from kwsint.train.qat.model import KWSNet

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fuzz_checkpoint import CONFIG  # noqa: E402
from fuzz_features import FBANK, FEATURE_DIM, SEED_OFFSETS  # noqa: E402

CORPUS = Path(__file__).resolve().parent / "corpus"
SMALL = dict(window_frames=3, feature_dim=2, frame_stride=1)


def blob_seeds() -> dict[str, bytes]:
    seeds = {
        "w8-a8": random_model((3,), weight_bits=8, seed=1, **SMALL),
        "w4-a8-per-tensor": random_model((4,), weight_bits=4, per_channel=False, seed=2, **SMALL),
        "w1-a8": random_model((5,), weight_bits=1, seed=3, **SMALL),
        "w2-w3-w5-a8": random_model((3, 4), weight_bits=(2, 3, 5), param_bits=3, seed=4, **SMALL),
        "w8-a16": random_model((3,), weight_bits=8, act_bits=16, seed=5, **SMALL),
        "w2-a8-acc16": random_model((16,), weight_bits=2, seed=6, window_frames=4, feature_dim=4, frame_stride=1),
        "w3-a8-stride": random_model((3,), weight_bits=3, seed=7, window_frames=5, feature_dim=2, frame_stride=2),
    }
    assert any(layer.acc16_block for layer in seeds["w2-a8-acc16"].layers), "the acc16 seed claims no block"
    blobs = {name: kwsint.write_blob(spec) for name, spec in seeds.items()}
    # Format 2: the same bytes with version 2 (its acc16_block byte is reserved: int16 activations claim no block).
    v2 = bytearray(blobs["w8-a16"])
    v2[4:6] = struct.pack("<H", 2)
    kwsint.read_blob(bytes(v2))
    blobs["w8-a16-format2"] = bytes(v2)
    # Kind 1 (format 5): streaming graphs, imported from the small TFLite graphs of the tflite seeds.
    from kwsint.interop.tflite_import import read_tflite
    blobs["graph-streaming"] = kwsint.write_blob(read_tflite(streaming_graph()))
    blobs["graph-logistic"] = kwsint.write_blob(read_tflite(logistic_graph()))
    assert all(len(b) < 2048 for b in blobs.values()), {k: len(b) for k, b in blobs.items()}
    return {f"{name}.kwsq": b for name, b in blobs.items()}


def _npy(a: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, a, allow_pickle=False)
    return out.getvalue()


def _ark(mats: dict[str, np.ndarray], text: bool = False, compression: int | None = None) -> bytes:
    out = io.BytesIO()
    for key, mat in mats.items():
        out.write(key.encode() + b" ")
        if text:
            rows = "\n".join("  " + " ".join(f"{v:g}" for v in row) for row in mat)
            out.write(f" [\n{rows} ]\n".encode())
        else:
            write_array(out, mat, compression_method=compression)
    return out.getvalue()


def _wav(samples: np.ndarray, rate: int) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())
    return out.getvalue()


def feature_seeds() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    frames = rng.normal(size=(6, FEATURE_DIM))
    mats = {"a": frames[:2].astype(np.float32), "b": frames.astype(np.float32)}
    tone = (3000 * np.sin(np.arange(480) * 0.3)).astype(np.int16)  # 60 ms at 8 kHz: 4 frames
    return {
        "f32.npy": _npy(frames.astype(np.float32)),
        "f16.npy": _npy(frames.astype(np.float16)),
        "f64-fortran.npy": _npy(np.asfortranarray(frames)),
        "binary.ark": _ark(mats),
        "text.ark": _ark(mats, text=True),
        "compressed.ark": _ark(mats, compression=2),
        "double.ark": _ark({"d": frames}),
        "offsets.scp": "".join(f"{k} seed.ark:{off}\n" for k, off in SEED_OFFSETS.items()).encode(),
        "one-line-crlf.scp": f"u2\t./seed.ark:{SEED_OFFSETS['u2']}\r\n".encode(),
        "tone.wav": _wav(tone, FBANK.sample_rate),
    }


def checkpoint_seeds(folder: Path) -> dict[str, bytes]:
    windows = np.random.default_rng(0).normal(0, 1, (32, CONFIG.window_frames, CONFIG.feature_dim))
    windows = torch.from_numpy(windows.astype(np.float32))
    float_model = KWSNet(CONFIG, "float")
    stage2 = KWSNet(CONFIG, "stage1")
    stage2.set_normalization(windows.numpy())
    stage2.stage = "stage2"
    stage2.calibrate(windows)
    seeds = {}
    stage1 = KWSNet(CONFIG, "stage1")
    stage1.set_normalization(windows.numpy())
    for name, model, train in (("float", float_model, {"step": 3}), ("stage1", stage1, None),
                               ("stage2", stage2, None)):
        path = folder / f"{name}.pt"
        save_checkpoint(path, model, train)
        seeds[f"{name}.pt"] = path.read_bytes()
    bare = folder / "bare.pt"
    torch.save(float_model.state_dict(), bare)
    seeds["bare-state-dict.pt"] = bare.read_bytes()
    return seeds


def _wyoming(*events) -> bytes:
    """Events (Eventables or Events) as a client sends them."""
    out = io.BytesIO()
    for event in events:
        write_event(event if isinstance(event, Event) else event.event(), out)
    return out.getvalue()


def wyoming_seeds() -> dict[str, bytes]:
    tone = (3000 * np.sin(np.arange(320) * 0.3)).astype("<i2").tobytes()  # 20 ms at 16 kHz

    def stream(audio_format: tuple[int, int, int], chunks: int = 2) -> list:
        audio = AudioChunkConverter(*audio_format).convert(AudioChunk(16000, 2, 1, tone)).audio
        return [AudioStart(*audio_format), *[AudioChunk(*audio_format, audio)] * chunks, AudioStop()]

    seeds = {
        "describe-ping": _wyoming(Describe(), Ping(text="x")),
        "detect-m4-16k": _wyoming(Detect(names=["M4"]), *stream((16000, 2, 1)), Ping()),
        "detect-all-48k-32bit-stereo": _wyoming(Detect(), *stream((48000, 4, 2))),
        "8k-8bit-restarted": _wyoming(*stream((8000, 1, 1))[:2], *stream((8000, 1, 1), chunks=1)),
        # An older client's data inline in the header; our program selected.
        "header-data-select-program": (b'{"type": "select-program", "data": {"name": "kwsint"}}\n'
                                       b'{"type": "detect", "data": {"names": ["M2", "M4"]}}\n'
                                       + _wyoming(*stream((22050, 2, 1), chunks=1))),
        "bad-chunk-before-start": _wyoming(AudioChunk(16000, 2, 1, tone), AudioStop()),
        "bad-unknown-event-then-describe": _wyoming(Event("transcribe", {"language": "en"}), Describe()),
    }
    assert sum(map(len, seeds.values())) < 32768, {k: len(v) for k, v in seeds.items()}
    return {f"{name}.wyo": data for name, data in seeds.items()}


def tflite_seeds() -> dict[str, bytes]:
    def relu6(p):
        p["conv_2d"]._fb.builtinOptions.fusedActivationFunction = S.ActivationFunctionType.RELU6

    settings = {"type": "micro", "wake_word": "Hey Toy", "author": "kwsint", "model": "toy.tflite",
                "trained_languages": ["en"], "version": 2,
                "micro": {"probability_cutoff": 0.8, "sliding_window_size": 5, "feature_step_size": 10,
                          "tensor_arena_size": 20000, "minimum_esphome_version": "2024.7.0"}}
    seeds = {
        "streaming.tflite": streaming_graph(),
        "streaming-relu6.tflite": streaming_graph(relu6, seed=1),
        "logistic.tflite": logistic_graph(),
        "settings.json": json.dumps(settings).encode(),
        "settings-minimal.json": json.dumps({k: settings[k] for k in ("type", "version", "micro")}).encode(),
    }
    assert sum(map(len, seeds.values())) < 16384, {k: len(v) for k, v in seeds.items()}
    return seeds


def write(target: str, seeds: dict[str, bytes]) -> None:
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("seed-*"):
        old.unlink()
    for name, data in seeds.items():
        (folder / f"seed-{name}").write_bytes(data)
    print(f"{folder}: {len(seeds)} seeds, {sum(map(len, seeds.values()))} bytes")


def main(targets: list[str]) -> None:
    import tempfile

    torch.manual_seed(0)
    targets = targets or ["blob", "features", "wyoming", "checkpoint", "tflite"]
    for target in targets:
        if target == "checkpoint":
            with tempfile.TemporaryDirectory() as d:
                write("checkpoint", checkpoint_seeds(Path(d)))
        else:
            write(target, {"blob": blob_seeds, "features": feature_seeds, "wyoming": wyoming_seeds,
                           "tflite": tflite_seeds}[target]())


if __name__ == "__main__":
    main(sys.argv[1:])
