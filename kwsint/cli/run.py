"""kwsint-run: run a model over feature files and print JSON lines.

    kwsint-run model.kwsq features/*.npy [--hop 3] [--threshold 0.5] [--posteriors out.npz] [--verify]

Each input is a float32 .npy array of shape (T, feature_dim) (LFBE frames,
10 ms apart). The model runs on the newest window every ``hop`` frames; one
JSON line per file gives the steps, the peak posterior and the times (seconds,
end of the window) where the posterior rises through the threshold.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

import kwsint
from kwsint import reference

FRAME_SHIFT_S = 0.010


def read_features(path: Path, feature_dim: int) -> np.ndarray:
    """A (T, feature_dim) float32 array from a .npy file; ValueError naming the file otherwise."""
    if path.suffix != ".npy":
        raise ValueError(f"{path}: unsupported input type {path.suffix!r} (expected .npy features)")
    try:
        a = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: cannot read as .npy: {e}") from e
    if a.ndim != 2 or a.shape[1] != feature_dim or a.dtype.kind != "f":
        raise ValueError(f"{path}: expected float features of shape (T, {feature_dim}), got {a.dtype} {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{path}: features contain NaN or Inf")
    return a.astype(np.float32, copy=False)


def run_file(model: kwsint.Model, frames: np.ndarray, hop: int, verify: bool):
    """Streams frames through the model; returns (end frame index, posterior_q16, logits) per step
    and the number of steps whose logits differ from the numpy reference (if verify)."""
    window = model.window_shape[0]
    stream = model.stream()
    ends, posts, logits = [], [], []
    mismatches = 0
    stream.push(frames[:window])
    end = window
    while end <= len(frames):
        r = stream.infer()
        ends.append(end)
        posts.append(r.posterior_q16)
        logits.append(r.logits)
        if verify:
            want_logits, want_post = reference.forward(model.spec, frames[end - window : end])
            mismatches += int(not (np.array_equal(want_logits, r.logits) and want_post == r.posterior_q16))
        stream.push(frames[end : end + hop])
        end += hop
    return np.array(ends), np.array(posts, dtype=np.int32), np.array(logits, dtype=np.int32).reshape(-1, 2), mismatches


def rising_edges(posterior: np.ndarray, threshold: float) -> np.ndarray:
    above = posterior >= threshold
    return np.flatnonzero(above & ~np.concatenate([[False], above[:-1]]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="kwsint-run", description=__doc__.split("\n\n")[0])
    ap.add_argument("model", type=Path, help="a .kwsq model blob")
    ap.add_argument("inputs", type=Path, nargs="+", help=".npy feature files, (T, feature_dim) float32")
    ap.add_argument("--hop", type=int, default=None, help="frames between inferences (default: the frame stride)")
    ap.add_argument("--threshold", type=float, default=0.5, help="posterior threshold in [0, 1] (default 0.5)")
    ap.add_argument("--backend", default=None, help=f"one of {kwsint.backends()} (default: fastest)")
    ap.add_argument("--posteriors", type=Path, help="write per-step posteriors and logits to this .npz")
    ap.add_argument("--verify", action="store_true", help="check every step against the numpy reference")
    args = ap.parse_args(argv)

    try:
        model = kwsint.load(args.model, backend=args.backend)
    except (OSError, ValueError) as e:
        print(f"kwsint-run: {e}", file=sys.stderr)
        return 2
    hop = args.hop or model.spec.frontend.frame_stride
    if hop < 1 or not 0.0 <= args.threshold <= 1.0:
        print("kwsint-run: --hop must be >= 1 and --threshold in [0, 1]", file=sys.stderr)
        return 2

    arrays: dict[str, np.ndarray] = {}
    total_steps = total_mismatches = 0
    for i, path in enumerate(args.inputs):
        try:
            frames = read_features(path, model.window_shape[1])
        except ValueError as e:
            print(f"kwsint-run: {e}", file=sys.stderr)
            return 1
        if len(frames) < model.window_shape[0]:
            print(f"kwsint-run: {path}: {len(frames)} frames, fewer than one window ({model.window_shape[0]})",
                  file=sys.stderr)
            return 1
        ends, post_q16, logits, mismatches = run_file(model, frames, hop, args.verify)
        post = post_q16 / 65536.0
        peak = int(np.argmax(post))
        record = dict(file=str(path), frames=len(frames), steps=len(ends), peak_posterior=round(float(post[peak]), 6),
                      peak_time_s=round(ends[peak] * FRAME_SHIFT_S, 3),
                      detections_s=[round(ends[j] * FRAME_SHIFT_S, 3) for j in rising_edges(post, args.threshold)])
        if args.verify:
            record["reference_mismatches"] = mismatches
        print(json.dumps(record), flush=True)
        total_steps += len(ends)
        total_mismatches += mismatches
        arrays[f"posterior_{i}"] = post.astype(np.float32)
        arrays[f"logits_{i}"] = logits
    summary = dict(summary=True, files=len(args.inputs), steps=total_steps, backend=model.backend)
    if args.verify:
        summary["reference_mismatches"] = total_mismatches
    print(json.dumps(summary))
    if args.posteriors:
        tmp = args.posteriors.with_name(args.posteriors.name + ".tmp.npz")
        np.savez(tmp, files=np.array([str(p) for p in args.inputs]), **arrays)
        tmp.replace(args.posteriors)
    return 1 if total_mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
