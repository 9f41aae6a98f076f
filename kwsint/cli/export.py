"""kwsint-export: a training checkpoint -> a bit-exact integer model (.kwsq, .tflite or .onnx).

    kwsint-export m4.pt -o m4.kwsq
    kwsint-export m0.pt -o m0-int8.kwsq --weight-bits 8 --calibration train.npz
    kwsint-export m4.pt -o m4.tflite --samples test.npz
    kwsint-export conv4.pt -o conv4.tflite --samples test-mf.npz

The format follows the output's suffix (.kwsq, .tflite or .onnx); --format
names it where the suffix does not (or with no -o: the checkpoint's name with
the format's suffix, .kwsq by default). A suffix that names another format than
--format is refused. Bits default to the checkpoint's; --weight-bits, --layer-bits, --act-bits and
--param-bits override them. The blob carries the checkpoint's metadata (the
wake phrase, the recommended operating point, provenance, a version), each item
replaced by its option where one is given (--phrase, --threshold, --smoothing,
--lockout, --provenance, --model-version). Float and stage-1 checkpoints need --calibration
windows (post-training quantization of what they did not learn). The report
lists every layer and checks the engine against the checkpoint's integer
simulation on sample windows; --json prints it as JSON. A conv checkpoint
(kwsint-train --arch conv) becomes a streaming graph (.kwsq or .tflite, as
microWakeWord's models), and the report counts the windows on which the
engine's stream, the checkpoint's simulation and the TFLM interpreter's stream
give the same output. Needs PyTorch.
Exit status 0, 2 for bad arguments, 1 when the checkpoint or windows are
refused or the output cannot be written or exists (without --force), 130 on
Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kwsint.cli import common
from kwsint.cli.bit_options import add_bit_options, apply_bit_options
from kwsint.data.dataset import load_windows_many
from kwsint.engine.metadata import ModelMetadata
from kwsint.errors import FormatError
from kwsint.io.atomic import write_atomic

if TYPE_CHECKING:
    from kwsint.train.export import Export

PROG = "kwsint-export"
SUFFIXES = {"kwsq": ".kwsq", "tflite": ".tflite", "onnx": ".onnx"}


def _parser() -> argparse.ArgumentParser:
    ap = common.new_parser(PROG, __doc__)
    ap.add_argument("checkpoint", type=Path, help="a kwsint-train checkpoint (.pt)")
    ap.add_argument("-o", "--output", type=Path, help="output file, its suffix the format's (default: the "
                                                       "checkpoint's name with the format's suffix)")
    ap.add_argument("--format", choices=sorted(SUFFIXES),
                    help="kwsq, tflite or onnx (default: the output's suffix's, else kwsq)")
    add_bit_options(ap)
    ap.add_argument("--calibration", nargs="+", type=Path, metavar="NPZ",
                    help="windows to calibrate input and activation ranges (float and stage-1 checkpoints)")
    ap.add_argument("--samples", nargs="+", type=Path, metavar="NPZ",
                    help="windows for the agreement checks (default: the calibration windows, else synthetic)")
    ap.add_argument("--config", help="configuration of a bare state dict (M0..M6)")
    ap.add_argument("--backend", help="engine backend for the checks (default: the fastest)")
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    common.add_force(ap, "an existing output")
    meta = ap.add_argument_group("metadata", "what the blob tells its user (default: the checkpoint's)")
    meta.add_argument("--phrase", help="the wake phrase")
    meta.add_argument("--threshold", type=float, help="recommended posterior threshold, 0..1")
    meta.add_argument("--smoothing", type=float, metavar="SECONDS", help="recommended smoothing window")
    meta.add_argument("--lockout", type=float, metavar="SECONDS", help="recommended lockout after a detection")
    meta.add_argument("--provenance", help="training data and recipe, free text")
    meta.add_argument("--model-version", help="the model's version string")
    meta.add_argument("--languages", type=_languages, metavar="TAG,...",
                      help="languages the model was trained on, e.g. en (microWakeWord's trained_languages)")
    meta.add_argument("--author", default="",
                      help="conv .tflite: the author in the microWakeWord settings file beside it")
    return ap


def _languages(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(","))


def _metadata(args: argparse.Namespace, stated: ModelMetadata) -> ModelMetadata:
    """The checkpoint's metadata with each item given on the command line replaced; ValueError names the option."""
    given = {"phrase": args.phrase, "threshold": args.threshold, "smoothing_s": args.smoothing,
             "lockout_s": args.lockout, "provenance": args.provenance, "model_version": args.model_version,
             "trained_languages": args.languages}
    option = {"smoothing_s": "smoothing", "lockout_s": "lockout", "model_version": "model-version",
              "trained_languages": "languages"}
    merged = stated.stated()
    for key, value in given.items():
        if value is not None:
            try:
                ModelMetadata(**{key: value})
            except ValueError as e:
                raise ValueError(f"--{option.get(key, key)}: {str(e).split(': ', 1)[1]}") from None
            merged[key] = value
    return ModelMetadata(**merged)


def _format_and_output(args: argparse.Namespace) -> tuple[str, Path]:
    """The format and output file the options ask for; ValueError where the suffix and --format disagree, or
    the suffix names no format and --format is not given."""
    if args.output is None:
        fmt = args.format or "kwsq"
        return fmt, args.checkpoint.with_suffix(SUFFIXES[fmt])
    named = {suffix: fmt for fmt, suffix in SUFFIXES.items()}.get(args.output.suffix.lower())
    if named is None and args.format is None:
        raise ValueError(f"-o {args.output}: the suffix names no format; expected .kwsq, .tflite or .onnx, "
                         "or give --format")
    if named is not None and args.format not in (None, named):
        raise ValueError(f"-o {args.output}: the suffix names format {named}, --format {args.format}; use "
                         f"{SUFFIXES[args.format]} or leave out --format")
    return named or args.format, args.output


def _interop(fmt: str, result: Export) -> tuple[bytes, dict]:
    """The .tflite or .onnx file of the exported spec and how it agrees with the engine on the checked windows."""
    if fmt == "tflite":
        from kwsint import reference
        from kwsint.interop import tflite

        data = tflite.model_to_tflite(result.spec, float_input=True, normalize=True)
        got = tflite.run_tflm(data, reference.select_frames(result.spec.frontend, result.windows)).astype(np.int64)
        return data, {"windows": len(got), "bit_exact": int((got == result.logits).all(axis=1).sum()),
                      "int4_layers": [i for i, int4 in enumerate(tflite.int4_filters(result.spec)) if int4]}
    from kwsint.interop import onnx_export

    return onnx_export.model_to_onnx(result.spec), onnx_export.agreement(result.spec, result.windows)


def run(args: argparse.Namespace, fmt: str, out: Path) -> int:
    # PyTorch's modules, imported here: this module loads without it, to say in one line that it is missing.
    from kwsint.train.export import export, format_report
    from kwsint.train.qat.checkpoint import load_checkpoint
    from kwsint.train.qat.model import paper_config

    ck = load_checkpoint(args.checkpoint, config=paper_config(args.config) if args.config else None)
    config = apply_bit_options(ck.model.config, args)
    calibration = load_windows_many(args.calibration).features if args.calibration else None
    labelled = load_windows_many(args.samples) if args.samples else None
    samples, labels = (labelled.features, labelled.labels) if labelled else (None, None)
    metadata = _metadata(args, ck.metadata)
    if args.author and not (ck.model.arch == "conv" and fmt == "tflite"):
        raise ValueError("--author: only a conv model's .tflite has a settings file (microWakeWord's JSON) to hold it")
    if ck.model.arch == "conv":
        return _run_conv(args, fmt, out, ck.model, config, calibration, samples, labels, metadata)
    result = export(ck.model, config, calibration=calibration, samples=samples, labels=labels,
                    backend=args.backend, source=str(args.checkpoint), metadata=metadata)
    report = result.report | {"format": fmt, "output": str(out)}
    data = result.blob
    if fmt != "kwsq":
        data, check = _interop(fmt, result)
        report["tflm" if fmt == "tflite" else "onnxruntime"] = check
        report["output_bytes"] = len(data)
    write_atomic(out, data)
    common.print_line(json.dumps(report) if args.json else format_report(report))
    return 0


def _run_conv(args, fmt, out, model, config, calibration, samples, labels, metadata) -> int:
    """``run`` for a conv checkpoint: its streaming graph as .kwsq or .tflite, checked against TFLM."""
    from kwsint.interop.tflite_graph import TflmStream, graph_to_tflite, tflm_arena_bytes
    from kwsint.train.graph_export import export_graph, format_report, micro_settings, stream_outputs

    if fmt == "onnx":
        raise ValueError(f"{args.checkpoint}: a conv model exports as .kwsq or .tflite (a streaming graph), not .onnx")
    result = export_graph(model, config, calibration=calibration, samples=samples, labels=labels,
                          backend=args.backend, source=str(args.checkpoint), metadata=metadata)
    report = result.report | {"format": fmt, "output": str(out)}
    tflite = graph_to_tflite(result.spec, input_rank3=True, fc_reshape=True)  # the shipped models' form
    interpreter = TflmStream(tflite, result.spec)

    def fresh_stream() -> TflmStream:
        interpreter.reset()
        return interpreter

    tflm = stream_outputs(fresh_stream, result.spec, result.codes)
    report["tflm"] = {"windows": len(tflm), "bit_exact": int((tflm == result.outputs).sum())}
    data = tflite if fmt == "tflite" else result.blob
    report["output_bytes"] = len(data)
    settings = None
    if fmt == "tflite":
        settings, missing = micro_settings(result.spec.metadata, out.name, args.author, tflm_arena_bytes(tflite))
        report["settings"] = ({"output": str(out.with_suffix(".json")), "tensor_arena_size":
                               settings["micro"]["tensor_arena_size"]} if settings else {"missing": missing})
        if settings:
            common.check_outputs([out.with_suffix(".json")], args.force)
    write_atomic(out, data)
    if settings:
        write_atomic(out.with_suffix(".json"), (json.dumps(settings, indent=2) + "\n").encode())
    common.print_line(json.dumps(report) if args.json else format_report(report))
    return 0


def main(argv: list[str] | None = None) -> int:
    return common.run_command(PROG, lambda: _main(argv), needs_torch=True)


def _main(argv: list[str] | None) -> int:
    args = _parser().parse_args(argv)
    try:
        fmt, out = _format_and_output(args)
    except ValueError as e:
        common.error(PROG, str(e))
        return 2
    common.check_outputs([out], args.force)
    try:
        return run(args, fmt, out)
    except (FormatError, ValueError, OSError) as e:
        common.error(PROG, str(e))
        return 1


if __name__ == "__main__":
    sys.exit(main())
