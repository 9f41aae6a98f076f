"""A long wav through kwsint-run with a microWakeWord model: hours of audio per CPU second, front end included.

    python benchmarks/microwakeword_long_run.py [--hours 10] [--model okay_nabu.tflite] [--source DIR ...]
                                                [--repeats 1] [--profile-minutes 10] [--dir DIR]

It writes a 16 kHz 16-bit mono wav of ``--hours`` hours: one segment of about a minute of espeak-ng speech (the
four wake phrases, okay nabu in three voices, other sentences, silences; tests/microwakeword_speech.py renders
it) repeated, with fresh Gaussian noise (sd 200) on every repetition, streamed to disk one repetition at a time.
Then, for each kwsint source tree ``--source`` (a directory holding ``kwsint/``; default: the one this script
is in), in turn, ``--repeats`` times, it runs ``kwsint-run MODEL long.wav --no-progress`` in a child process
(``kwsint.cli.run.main`` under ``python -c``, run from that tree) and prints the hours of audio, the child's CPU
seconds (user + sys, from ``getrusage(RUSAGE_CHILDREN)`` before and after), hours per CPU second, wall seconds,
detections and the child's peak RSS (VmHWM, as benchmarks/long_run.py reads it). Several trees alternate, so
that a before and an after meet the same machine noise; the last lines give each tree's median CPU seconds.

With ``--profile-minutes M`` (> 0) it first runs each tree's kwsint-run under cProfile on the first M minutes
of the same audio and prints where the time goes: the wav reader, the front end (``MicroFrontendStream.push``,
of which pymicro-features' C call), ESPHome's quantizer, the detector (``GraphDetector.push``, of which the
invokes: kwsint's C call and its Python wrapper), and the rest (start-up, output), in seconds, shares and
microseconds per 10 ms of audio. cProfile slows Python function calls most, so the Python shares are overstated
against the CPU seconds above.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import resource
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

from long_run import kwsint_run_command, peak_rss_kib, run_child

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests/microwakeword_speech.py renders the speech
from tests.microwakeword_speech import OTHER, PHRASES, SAMPLE_RATE, VOICES, silence, speak  # noqa: E402

NOISE_SD = 200  # int16 units: a quiet room's hiss under the speech


def segment() -> np.ndarray:
    """About a minute of int16 speech: okay nabu in each voice, the other wake phrases and sentences, silences."""
    parts = [silence(1.0)]
    for voice, rate in VOICES:
        parts += [speak(PHRASES["okay_nabu"], voice, rate), silence(1.5)]
    for text in (*PHRASES.values(), *OTHER):
        parts += [speak(text), silence(1.0)]
    return np.concatenate(parts)


def write_wav(path: Path, seconds: float, seed: int = 0) -> int:
    """``segment()`` repeated over ``seconds`` seconds with fresh noise on each repetition, written one
    repetition at a time; returns the sample count."""
    rng = np.random.default_rng(seed)
    speech = segment().astype(np.int32)
    left = total = round(seconds * SAMPLE_RATE)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        while left:
            n = min(left, len(speech))
            noisy = speech[:n] + np.rint(rng.normal(0, NOISE_SD, n)).astype(np.int32)
            w.writeframesraw(np.clip(noisy, -32768, 32767).astype("<i2").tobytes())
            left -= n
    return total


def _child_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _env(source: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(source)}


def measure(source: Path, model: Path, wav: Path) -> dict:
    """One kwsint-run child, run from ``source``, over ``wav``: hours, CPU s, wall s, detections, peak RSS."""
    args = [str(model), str(wav), "--no-progress"]
    before = _child_cpu_s()
    code, wall, out, err = run_child(kwsint_run_command(args), cwd=source, env=_env(source))
    cpu = _child_cpu_s() - before
    if code != 0:
        raise SystemExit(f"microwakeword_long_run: kwsint-run {' '.join(args)}: exit status {code}: "
                         f"{err.strip()[-2000:]}")
    summary = json.loads(out.strip().splitlines()[-1])
    return {"source": str(source), "hours": summary["hours"], "cpu_s": round(cpu, 2),
            "hours_per_cpu_s": round(summary["hours"] / cpu, 4), "wall_s": round(wall, 2),
            "detections": summary["detections"], "peak_rss_mib": round(peak_rss_kib(err) / 1024, 1),
            "backend": summary["backend"]}


# (label, file name ending, function name): cumulative seconds of the functions where the time is spent
PARTS = (
    ("wav reader", "kwsint/io/inputs.py", "_samples"),
    ("front end (MicroFrontendStream.push)", "kwsint/io/microfrontend.py", "push"),
    ("  of which pymicro-features' C call", "~", "<built-in method micro_features_cpp.process_samples>"),
    ("quantizer (quantize_features)", "kwsint/io/microfrontend.py", "quantize_features"),
    ("detector (GraphDetector.push)", "kwsint/engine/graph_detector.py", "push"),
    ("  of which invokes (GraphStream.invoke*)", "kwsint/engine/graph_model.py", "invoke"),
    ("  of which invokes (GraphStream.invoke*)", "kwsint/engine/graph_model.py", "invoke_many"),
    ("    of which kwsint's C call", "~", "<built-in method kwsint._kwsint_c.kws_stream_invoke>"),
    ("    of which kwsint's C call", "~", "<built-in method kwsint._kwsint_c.kws_stream_invoke_many>"),
)


def profile(source: Path, model: Path, wav: Path, out: Path) -> tuple[list[tuple[str, float]], int]:
    """kwsint-run from ``source`` on ``wav`` under cProfile: (part, seconds) for PARTS and the total, and the
    calls into pymicro-features (one per 10 ms of audio)."""
    cmd = [sys.executable, "-m", "cProfile", "-o", str(out), "-m", "kwsint.cli.run", str(model), str(wav),
           "--no-progress"]
    code, _, _, err = run_child(cmd, cwd=source, env=_env(source))
    if code != 0:
        raise SystemExit(f"microwakeword_long_run: profile: exit status {code}: {err.strip()[-2000:]}")
    stats = pstats.Stats(str(out)).stats
    seconds = dict.fromkeys([label for label, _, _ in PARTS], 0.0)
    steps = 0
    for (file, _, name), (_, calls, _, cumulative, _) in stats.items():
        for label, ending, function in PARTS:
            if file.endswith(ending) and name == function:
                seconds[label] += cumulative
        if name == PARTS[2][2]:
            steps = calls
    total = max(cumulative for _, _, _, cumulative, _ in stats.values())
    rest = total - sum(s for label, s in seconds.items() if not label.startswith(" "))
    return [*seconds.items(), ("the rest (start-up, output)", rest), ("total (the profiled run)", total)], steps


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hours", type=float, default=10.0, help="length of the wav (10)")
    ap.add_argument("--model", type=Path, help="a microWakeWord .tflite with its .json beside it (pymicro-wakeword's "
                                              "okay_nabu)")
    ap.add_argument("--source", type=Path, nargs="+", default=[ROOT],
                    help="kwsint source trees to run, alternating (the one this script is in)")
    ap.add_argument("--repeats", type=int, default=1, help="runs of each tree over the long wav (1)")
    ap.add_argument("--profile-minutes", type=float, default=10.0,
                    help="minutes of audio for each tree's cProfile run; 0: none (10)")
    ap.add_argument("--dir", type=Path, help="where to write the wav (default: a temporary directory)")
    args = ap.parse_args(argv)
    if args.model is None:
        import pymicro_wakeword
        args.model = Path(pymicro_wakeword.__file__).parent / "models" / "okay_nabu.tflite"
    sources = [s.resolve() for s in args.source]
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        if args.profile_minutes > 0:
            short = Path(tmp) / "short.wav"
            write_wav(short, args.profile_minutes * 60)
            for source in sources:
                print(f"cProfile of kwsint-run {args.model.name}, {args.profile_minutes:g} minutes, from {source}:")
                rows, steps = profile(source, args.model, short, Path(tmp) / "profile.out")
                total = rows[-1][1]
                for label, s in rows:
                    print(f"  {label:<42} {s:8.2f} s {100 * s / total:5.1f}% {1e6 * s / steps:7.2f} us/10 ms")
            short.unlink()
        wav = Path(tmp) / "long.wav"
        start = time.perf_counter()
        samples = write_wav(wav, args.hours * 3600)
        print(f"wrote {samples / SAMPLE_RATE / 3600:g} hours ({wav.stat().st_size / 2**30:.2f} GiB) in "
              f"{time.perf_counter() - start:.0f} s", flush=True)
        rows = []
        for _ in range(args.repeats):
            for source in sources:
                rows.append(measure(source, args.model, wav))
                print(json.dumps(rows[-1]), flush=True)
    print(f"{'hours':>6} {'CPU s':>8} {'hours/CPU s':>11} {'wall s':>7} {'detections':>10} {'peak RSS MiB':>12}  source")
    for r in rows:
        print(f"{r['hours']:>6g} {r['cpu_s']:>8.1f} {r['hours_per_cpu_s']:>11.4f} {r['wall_s']:>7.1f} "
              f"{r['detections']:>10} {r['peak_rss_mib']:>12.1f}  {r['source']}")
    if args.repeats > 1 or len(sources) > 1:
        first = None
        for source in sources:
            cpu = float(np.median([r["cpu_s"] for r in rows if r["source"] == str(source)]))
            first = first or cpu
            print(f"median of {args.repeats}: {cpu:.1f} CPU s, {rows[0]['hours'] / cpu:.4f} hours/CPU s, "
                  f"{first / cpu:.2f}x the first tree's: {source}")
    print(f"model {args.model}, backend {rows[0]['backend'] if rows else '-'}; CPU s: the child's user + sys; "
          "peak RSS: the child's VmHWM")
    return 0


if __name__ == "__main__":
    sys.exit(main())
