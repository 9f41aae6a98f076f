"""kwsint-make-model: write a random, calibrated model of one of the paper's shapes.

    kwsint-make-model --config M2 -o m2.kwsq [--seed 0]

The weights are random codes (no training): such a model exercises the engine
with the exact shapes, bits and arithmetic of the paper's configurations, and
its outputs mean nothing. Optionally writes synthetic LFBE-like feature files.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np

import kwsint
from kwsint.atomic import write_atomic
from kwsint.generate import CONFIGS, paper_model


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="kwsint-make-model", description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="M2", choices=sorted(CONFIGS), help="paper configuration (default M2)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-o", "--output", type=Path, required=True, help="the .kwsq file to write")
    ap.add_argument("--features", type=Path, help="also write synthetic feature files into this directory")
    ap.add_argument("--count", type=int, default=3, help="number of feature files (default 3)")
    ap.add_argument("--seconds", type=float, default=5.0, help="length of each feature file (default 5 s)")
    args = ap.parse_args(argv)

    spec = paper_model(args.config, seed=args.seed)
    kwsint.save(spec, args.output)
    info = kwsint.load(args.output).info()
    print(json.dumps(dict(model=str(args.output), config=args.config, seed=args.seed, blob_bytes=info["blob_bytes"],
                          macs=info["macs"], random_weights=True)))
    if args.features:
        args.features.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(args.seed)
        fe = spec.frontend
        frames = int(args.seconds * 100)
        for i in range(args.count):
            # LFBE-like: per-band level plus slow drift plus noise, around the model's normalisation mean.
            drift = np.cumsum(rng.normal(0, 0.3, (frames, 1)), axis=0)
            x = fe.mean + drift + rng.normal(0, 1.5, (frames, fe.feature_dim))
            buf = io.BytesIO()
            np.save(buf, x.astype(np.float32))
            write_atomic(args.features / f"synthetic_{i}.npy", buf.getvalue())
        print(json.dumps(dict(features=str(args.features), files=args.count, frames_per_file=frames)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
