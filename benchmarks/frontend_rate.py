"""The LFBE front end's speed in x real time per core, on each route to kaldi-native-fbank, and kwsint-run's.

    python benchmarks/frontend_rate.py [--minutes 10] [--rounds 5] [--dir DIR]

It writes a 16 kHz 16-bit mono wav of ``--minutes`` minutes (Gaussian noise, sd 800, under a tone gliding
between 100 and 500 Hz, every fifth half second 40 dB quieter), then, ``--rounds`` times, runs these child
processes from this tree, one after another (so each round's figures meet the same machine noise):

* ``knf C++``: kaldi-native-fbank's C++ alone, the floor: the wav read into memory as float32, then its
  AcceptWaveform called on it a second at a time through kwsint.io._knf_direct, the frames computed and
  popped unread (needs the direct route);
* ``binding``: the LFBE front end on kaldi-native-fbank's Python binding (``KWSINT_FBANK_ROUTE=binding``, the
  route of every kwsint before the direct one): the wav through ``kwsint.io.inputs.iter_streams`` with the
  shipped model M4's feature settings (the wav reader, int16 to float, 20 log mel energies per 10 ms,
  kwsint-run's chunks), timed in the child with ``time.process_time`` around the loop (imports not counted);
* ``direct``: the same on the direct route (``kwsint.io.features.fbank_route``);
* ``kwsint-run binding``, ``kwsint-run direct``: ``kwsint-run default:M4 long.wav --no-progress``, the whole
  process (start-up, model load, front end, detector, output), its user + sys CPU seconds from
  ``getrusage(RUSAGE_CHILDREN)``, on each route.

Before the rounds it byte-compiles this tree's kwsint (``compileall``), as ``pip install`` does: in a shell with
PYTHONDONTWRITEBYTECODE set, each kwsint-run would otherwise compile kwsint's sources anew (about 45 ms of CPU
a process on the 2-core EPYC of benchmarks/README.md), which no installed kwsint does.

Each figure is audio seconds / CPU seconds: x real time on one core. The last lines give each figure's median
over the rounds and the median of the per-round ratios direct / binding.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RATE = 16000

FRONT_END = r"""
import sys, time
wav, kind = sys.argv[1], sys.argv[2]
import kwsint
from kwsint.io import features
from kwsint.io.inputs import iter_streams
fe = kwsint.load("default:M4").spec.frontend
route = features.fbank_route()
if kind == "knf":
    if route.name != "direct":
        sys.exit(f"the direct route is not taken: {route.detail}")
    import wave, numpy as np, kaldi_native_fbank as knf
    from kwsint.io import _knf_direct
    with wave.open(wav) as w:
        x = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32)
    fbank, done = knf.OnlineFbank(fe.fbank.knf_options()), 0
    start = time.process_time()
    for i in range(0, len(x), 16000):
        _knf_direct.accept(fbank, 16000.0, x[i : i + 16000])
        fbank.pop(fbank.num_frames_ready - done)
        done = fbank.num_frames_ready
else:
    if route.name != kind:
        sys.exit(f"expected the {kind} route, got {route}")
    start = time.process_time()
    done = sum(len(chunk) for _, chunks in iter_streams(wav, fe.feature_dim, fe.fbank) for chunk in chunks)
print(done, time.process_time() - start)
"""


def write_wav(path: Path, seconds: float, seed: int = 0) -> float:
    """The test signal, a minute at a time; returns its length in seconds."""
    rng = np.random.default_rng(seed)
    total = round(seconds * RATE)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        for start in range(0, total, 60 * RATE):
            t = np.arange(start, min(total, start + 60 * RATE)) / RATE
            x = 3000 * np.sin(2 * np.pi * (300 + 200 * np.sin(t / 7)) * t) + rng.normal(0, 800, len(t))
            x[(np.rint(t * RATE).astype(np.int64) // (RATE // 2)) % 5 == 0] *= 0.01
            w.writeframesraw(np.clip(np.rint(x), -32768, 32767).astype("<i2").tobytes())
    return total / RATE


def _env(route: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("KWSINT_FBANK_ROUTE", None)
    if route == "binding":
        env["KWSINT_FBANK_ROUTE"] = "binding"
    return env


def _run(cmd: list[str], route: str) -> str:
    done = subprocess.run(cmd, cwd=ROOT, env=_env(route), capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"frontend_rate: {' '.join(cmd[:3])} ...: exit status {done.returncode}: "
                         f"{done.stderr.strip()[-2000:]}")
    return done.stdout


def front_end(wav: Path, kind: str) -> tuple[int, float]:
    """(frames, CPU seconds) of one front-end child."""
    out = _run([sys.executable, "-c", FRONT_END, str(wav), kind], "binding" if kind == "binding" else "")
    frames, cpu = out.split()
    return int(frames), float(cpu)


def kwsint_run(wav: Path, route: str) -> tuple[dict, float]:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    before = usage.ru_utime + usage.ru_stime
    out = _run([sys.executable, "-m", "kwsint.cli.run", "default:M4", str(wav), "--no-progress"], route)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return json.loads(out.strip().splitlines()[-1]), usage.ru_utime + usage.ru_stime - before


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="length of the wav (10)")
    ap.add_argument("--rounds", type=int, default=5, help="rounds (5)")
    ap.add_argument("--dir", type=Path, help="where to write the wav (default: a temporary directory)")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from kwsint.io.features import fbank_route

    print(f"route: {fbank_route()}")
    if not compileall.compile_dir(ROOT / "kwsint", quiet=1):
        raise SystemExit("frontend_rate: compileall failed on kwsint")
    names = ["knf C++", "binding", "direct", "kwsint-run binding", "kwsint-run direct"]
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        wav = Path(tmp) / "long.wav"
        seconds = write_wav(wav, 60 * args.minutes)
        print(f"{seconds / 60:g} minutes of 16 kHz audio; x real time = audio seconds / CPU seconds; "
              f"{os.cpu_count()} CPUs")
        rates: dict[str, list[float]] = {name: [] for name in names}
        for r in range(args.rounds):
            row = []
            for name, kind in zip(names[:3], ["knf", "binding", "direct"]):
                frames, cpu = front_end(wav, kind)
                rates[name].append(seconds / cpu)
                row.append(f"{name} {seconds / cpu:5.0f}x ({frames} frames)")
            for route in ("binding", "direct"):
                summary, cpu = kwsint_run(wav, route)
                rates[f"kwsint-run {route}"].append(seconds / cpu)
                row.append(f"kwsint-run {route} {seconds / cpu:4.0f}x ({summary['detections']} detections)")
            print(f"round {r + 1}: " + ", ".join(row), flush=True)
    print()
    for name in names:
        print(f"{name:18s} median {statistics.median(rates[name]):5.0f}x real time per core")
    for before, after in (("binding", "direct"), ("kwsint-run binding", "kwsint-run direct")):
        ratio = statistics.median(b / a for a, b in zip(rates[before], rates[after]))
        print(f"{after} / {before}: median per-round ratio {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
