"""Long streams through kwsint-run: peak RSS and wall time of the child process against the stream's length.

    python benchmarks/long_run.py --hours 1 10 [--model M4.kwsq] [--backend avx2] [--formats npy ark ark-1min]
                                  [--posteriors csv npz] [--dir DIR] [--json]

For each length it writes a synthetic LFBE-like feature stream (float32, 20
features, 10 ms frames: 360,000 frames an hour, 28.8 MB an hour), generated
and written in 10-minute blocks so this script stays small, and runs
``kwsint-run MODEL FILE --no-progress`` in a child process (``kwsint.cli.run.main``
under ``python -c``), which reports its own peak resident set size as it exits:
VmHWM in /proc/self/status. That counts the file pages the child maps and
touches, so a reader that memory-maps a file shows up here, unlike in
tracemalloc. (Not ``ru_maxrss`` from ``wait4``: on Linux a child's ru_maxrss
starts at its parent's resident size at the fork, so it would measure this
script.)

Formats: ``npy`` is one .npy array; ``ark`` one Kaldi binary archive holding
the whole stream as one utterance; ``ark-1min`` a Kaldi archive of the same
frames as one-minute utterances. ``--posteriors csv npz`` adds runs that also
write the per-step values (``--posteriors out.csv`` / ``out.npz``).

Prints a table (hours, input MiB, steps, peak RSS MiB, wall s, steps/s) or,
with --json, one JSON object per run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FRAMES_PER_HOUR = 360_000  # 10 ms frames
BLOCK_FRAMES = 60_000  # 10 minutes per generated block: 4.8 MB at 20 features
FEATURES = 20
SHIPPED_M4 = Path(__file__).resolve().parent.parent / "kwsint" / "default_model" / "M4.kwsq"


def _blocks(hours: float, seed: int = 0):
    """The stream's frames in blocks of BLOCK_FRAMES (float32, (n, FEATURES)): a per-band level near a typical
    LFBE mean (dB-like units), a level that changes once a second, and frame noise. Deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    band = np.linspace(13.0, 17.0, FEATURES, dtype=np.float32)
    left = round(hours * FRAMES_PER_HOUR)
    while left:
        n = min(left, BLOCK_FRAMES)
        seconds = -(-n // 100)
        level = np.repeat(rng.normal(0.0, 2.0, (seconds, 1)), 100, axis=0)[:n]
        yield (band + level + rng.normal(0.0, 1.5, (n, FEATURES))).astype(np.float32)
        left -= n


def write_npy(path: Path, hours: float) -> int:
    """A (frames, FEATURES) float32 .npy of ``hours`` of frames, written block by block; returns the frame count."""
    frames = round(hours * FRAMES_PER_HOUR)
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False,
                                                 "shape": (frames, FEATURES)})
        for block in _blocks(hours):
            block.tofile(f)
    return frames


def _ark_header(key: str, rows: int) -> bytes:
    """A Kaldi binary float matrix entry's key and header: 'KEY \\0BFM ', then int32 rows and cols, each after a
    size byte of 4."""
    return (key.encode() + b" \0BFM " + b"\4" + np.int32(rows).tobytes() + b"\4" + np.int32(FEATURES).tobytes())


def write_ark(path: Path, hours: float, utterance_frames: int | None) -> int:
    """A Kaldi binary archive of the same frames as write_npy: one utterance (``utterance_frames`` None) or
    utterances of ``utterance_frames`` frames each (the last one shorter); returns the frame count."""
    frames = round(hours * FRAMES_PER_HOUR)
    size = utterance_frames or frames
    assert utterance_frames is None or BLOCK_FRAMES % utterance_frames == 0
    with open(path, "wb") as f:
        start = 0
        for block in _blocks(hours):
            if utterance_frames is None:
                if start == 0:
                    f.write(_ark_header("stream", frames))
                block.astype("<f4").tofile(f)
            else:
                for i in range(0, len(block), size):
                    part = block[i : i + size]
                    f.write(_ark_header(f"utt{(start + i) // size:06d}", len(part)))
                    part.astype("<f4").tofile(f)
            start += len(block)
    return frames


# kwsint-run's main, then the process's peak resident set size (VmHWM, KiB) as the last line of stderr.
RUN_REPORTING_PEAK = """import sys
from kwsint.cli.run import main
code = main(sys.argv[1:])
with open("/proc/self/status") as f:
    hwm = next(line.split()[1] for line in f if line.startswith("VmHWM:"))
print("VmHWM_KiB", hwm, file=sys.stderr, flush=True)
sys.exit(code)
"""


def kwsint_run_command(args: list[str]) -> list[str]:
    """A command running ``kwsint-run ARGS`` that prints its peak RSS as the last stderr line (see peak_rss_kib)."""
    return [sys.executable, "-c", RUN_REPORTING_PEAK, *args]


def peak_rss_kib(stderr: str) -> int:
    """The peak RSS in KiB that a kwsint_run_command child printed last on stderr."""
    last = stderr.strip().splitlines()[-1].split()
    if len(last) != 2 or last[0] != "VmHWM_KiB":
        raise ValueError(f"stderr: last line: expected 'VmHWM_KiB N', got {' '.join(last)!r}")
    return int(last[1])


def run_child(cmd: list[str], **options) -> tuple[int, float, str, str]:
    """Runs ``cmd`` (``options`` such as cwd and env go to subprocess.run); returns (exit status, wall seconds,
    stdout, stderr)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        code = subprocess.run(cmd, stdout=out, stderr=err, **options).returncode
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        return code, wall, out.read().decode(), err.read().decode()


def measure(model: Path, inp: Path, backend: str | None, posteriors: Path | None) -> dict:
    """One kwsint-run child over ``inp``: its summary line's steps and hours, peak RSS (MiB) and wall time (s)."""
    args = [str(model), str(inp), "--no-progress"]
    if backend:
        args += ["--backend", backend]
    if posteriors:
        args += ["--posteriors", str(posteriors)]
    code, wall, out, err = run_child(kwsint_run_command(args))
    if code != 0:
        raise SystemExit(f"long_run: kwsint-run {' '.join(args)}: exit status {code}: {err.strip()[-2000:]}")
    rss = peak_rss_kib(err) / 1024
    summary = json.loads(out.strip().splitlines()[-1])
    return {"input": inp.suffix[1:], "input_bytes": inp.stat().st_size, "steps": summary["steps"],
            "hours": summary["hours"], "streams": summary["streams"], "backend": summary["backend"],
            "posteriors": posteriors.suffix[1:] if posteriors else None,
            "posteriors_bytes": posteriors.stat().st_size if posteriors else None,
            "peak_rss_mib": round(rss, 1), "wall_s": round(wall, 2), "steps_per_s": round(summary["steps"] / wall)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hours", type=float, nargs="+", default=[1.0, 10.0], help="stream lengths in hours (1 10)")
    ap.add_argument("--model", type=Path, default=SHIPPED_M4, help="a .kwsq blob (the shipped M4)")
    ap.add_argument("--backend", help="kwsint-run --backend (default: its fastest)")
    ap.add_argument("--formats", nargs="+", choices=["npy", "ark", "ark-1min"], default=["npy"],
                    help="input formats (npy)")
    ap.add_argument("--posteriors", nargs="*", choices=["csv", "npz"], default=[],
                    help="also run with --posteriors out.csv / out.npz on the .npy input")
    ap.add_argument("--dir", type=Path, help="where to write the streams (default: a temporary directory)")
    ap.add_argument("--json", action="store_true", help="one JSON object per run instead of the table")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        rows = []
        for hours in args.hours:
            for fmt in args.formats:
                inp = Path(tmp) / f"{hours:g}h-{fmt}.{'npy' if fmt == 'npy' else 'ark'}"
                if fmt == "npy":
                    write_npy(inp, hours)
                else:
                    write_ark(inp, hours, 6000 if fmt == "ark-1min" else None)
                runs = [None] + ([Path(tmp) / f"out.{s}" for s in args.posteriors] if fmt == "npy" else [])
                for post in runs:
                    row = measure(args.model, inp, args.backend, post) | {"format": fmt}
                    rows.append(row)
                    if post:
                        post.unlink()
                    if args.json:
                        print(json.dumps(row), flush=True)
                inp.unlink()
    if not args.json:
        print(f"{'hours':>6} {'input':>9} {'posteriors':>10} {'input MiB':>9} {'streams':>7} {'steps':>9} "
              f"{'peak RSS MiB':>12} {'wall s':>7} {'steps/s':>8}")
        for r in rows:
            print(f"{r['hours']:>6g} {r['format']:>9} {r['posteriors'] or '-':>10} {r['input_bytes'] / 2**20:>9.1f} "
                  f"{r['streams']:>7} {r['steps']:>9} {r['peak_rss_mib']:>12.1f} {r['wall_s']:>7.1f} "
                  f"{r['steps_per_s']:>8}")
        print(f"model {args.model}, backend {rows[0]['backend'] if rows else '-'}; peak RSS: the child's VmHWM")
    return 0


if __name__ == "__main__":
    sys.exit(main())
