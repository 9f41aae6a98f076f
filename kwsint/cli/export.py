"""kwsint-export: a training checkpoint -> a bit-exact integer model (.kwsq, .tflite or .onnx).

    kwsint-export m4.pt -o m4.kwsq
    kwsint-export m0.pt -o m0-int8.kwsq --weight-bits 8 --calibration train.npz
    kwsint-export m4.pt -o m4.tflite --format tflite --samples test.npz

Bits default to the checkpoint's; --weight-bits, --layer-bits, --act-bits and
--param-bits override them. Float and stage-1 checkpoints need --calibration
windows (post-training quantization of what they did not learn). The report
lists every layer and checks the engine against the checkpoint's integer
simulation on sample windows; --json prints it as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from kwsint.atomic import write_atomic
from kwsint.cli.bit_options import add_bit_options, apply_bit_options
from kwsint.dataset import load_windows_many
from kwsint.errors import FormatError
from kwsint.export import Export, export, format_report
from kwsint.qat.checkpoint import load_checkpoint
from kwsint.qat.model import paper_config

SUFFIXES = {"kwsq": ".kwsq", "tflite": ".tflite", "onnx": ".onnx"}


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="kwsint-export", description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", type=Path, help="a kwsint-train checkpoint (.pt)")
    ap.add_argument("-o", "--output", type=Path, help="output file (default: the checkpoint's name with the "
                                                       "format's suffix)")
    ap.add_argument("--format", choices=sorted(SUFFIXES), default="kwsq")
    add_bit_options(ap)
    ap.add_argument("--calibration", nargs="+", type=Path, metavar="NPZ",
                    help="windows to calibrate input and activation ranges (float and stage-1 checkpoints)")
    ap.add_argument("--samples", nargs="+", type=Path, metavar="NPZ",
                    help="windows for the agreement checks (default: the calibration windows, else synthetic)")
    ap.add_argument("--config", help="configuration of a bare state dict (M0..M6)")
    ap.add_argument("--backend", help="engine backend for the checks (default: the fastest)")
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    ap.add_argument("--force", action="store_true", help="overwrite an existing output")
    return ap


def _interop(fmt: str, result: Export) -> tuple[bytes, dict]:
    """The .tflite or .onnx file of the exported spec and how it agrees with the engine on the checked windows."""
    if fmt == "tflite":
        from kwsint import reference, tflite

        data = tflite.model_to_tflite(result.spec, float_input=True, normalize=True)
        got = tflite.run_tflm(data, reference.select_frames(result.spec.frontend, result.windows)).astype(np.int64)
        return data, {"windows": len(got), "bit_exact": int((got == result.logits).all(axis=1).sum()),
                      "int4_layers": [i for i, int4 in enumerate(tflite.int4_filters(result.spec)) if int4]}
    from kwsint import onnx_export

    return onnx_export.model_to_onnx(result.spec), onnx_export.agreement(result.spec, result.windows)


def run(args: argparse.Namespace) -> int:
    out = args.output or args.checkpoint.with_suffix(SUFFIXES[args.format])
    if out.exists() and not args.force:
        raise FileExistsError(f"{out}: exists; pass --force to overwrite it")
    ck = load_checkpoint(args.checkpoint, config=paper_config(args.config) if args.config else None)
    config = apply_bit_options(ck.model.config, args)
    calibration = load_windows_many(args.calibration).features if args.calibration else None
    labelled = load_windows_many(args.samples) if args.samples else None
    samples, labels = (labelled.features, labelled.labels) if labelled else (None, None)
    result = export(ck.model, config, calibration=calibration, samples=samples, labels=labels,
                    backend=args.backend, source=str(args.checkpoint))
    report = result.report | {"format": args.format, "output": str(out)}
    data = result.blob
    if args.format != "kwsq":
        data, check = _interop(args.format, result)
        report["tflm" if args.format == "tflite" else "onnxruntime"] = check
        report["output_bytes"] = len(data)
    write_atomic(out, data)
    print(json.dumps(report) if args.json else format_report(report))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return run(args)
    except (FormatError, ValueError, FileExistsError, OSError) as e:
        print(f"kwsint-export: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
