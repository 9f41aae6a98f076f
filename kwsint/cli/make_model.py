"""kwsint-make-model: write a random, calibrated model of one of the paper's shapes.

    kwsint-make-model --config M2 -o m2.kwsq [--seed 0] [--features DIR] [--force]

The weights are random codes (no training): such a model exercises the engine
with the exact shapes, bits and arithmetic of the paper's configurations, and
its outputs mean nothing. Optionally writes synthetic LFBE-like feature files
(DIR/synthetic_0.npy, ...; DIR is created if missing). Existing files are
refused without --force. Exit status 0, 1 when an output cannot be written or
exists, 2 for bad arguments.
"""

from __future__ import annotations

import io
import json
import math
import sys
from pathlib import Path

import numpy as np

import kwsint
from kwsint.cli import common
from kwsint.io.atomic import write_atomic
from kwsint.train.generate import CONFIGS, paper_model

PROG = "kwsint-make-model"


def main(argv: list[str] | None = None) -> int:
    return common.run_command(PROG, lambda: _main(argv))


def _main(argv: list[str] | None) -> int:
    ap = common.new_parser(PROG, __doc__)
    ap.add_argument("--config", default="M2", choices=sorted(CONFIGS), help="paper configuration (default M2)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-o", "--output", type=Path, required=True, help="the .kwsq file to write")
    ap.add_argument("--features", type=Path, metavar="DIR",
                    help="also write synthetic feature files into this directory (created if missing)")
    ap.add_argument("--count", type=int, default=3, help="number of feature files (default 3)")
    ap.add_argument("--seconds", type=float, default=5.0, help="length of each feature file (default 5 s)")
    common.add_force(ap)
    args = ap.parse_args(argv)
    if args.seed < 0 or args.count < 1 or not (math.isfinite(args.seconds) and args.seconds > 0):
        ap.error("--seed must be >= 0, --count >= 1 and --seconds > 0")
    features = [args.features / f"synthetic_{i}.npy" for i in range(args.count)] if args.features else []
    common.check_outputs([args.output], args.force)
    common.check_outputs(features, args.force, create_folders=True)

    spec = paper_model(args.config, seed=args.seed)
    kwsint.save(spec, args.output)
    info = kwsint.load(args.output).info()
    common.print_line(json.dumps(dict(model=str(args.output), config=args.config, seed=args.seed,
                                      blob_bytes=info["blob_bytes"], macs=info["macs"], random_weights=True)))
    if args.features:
        args.features.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(args.seed)
        fe = spec.frontend
        frames = int(args.seconds * 100)
        for path in features:
            # LFBE-like: per-band level plus slow drift plus noise, around the model's normalisation mean.
            drift = np.cumsum(rng.normal(0, 0.3, (frames, 1)), axis=0)
            x = fe.mean + drift + rng.normal(0, 1.5, (frames, fe.feature_dim))
            buf = io.BytesIO()
            np.save(buf, x.astype(np.float32))
            write_atomic(path, buf.getvalue())
        common.print_line(json.dumps(dict(features=str(args.features), files=args.count, frames_per_file=frames)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
