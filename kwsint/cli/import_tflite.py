"""kwsint-import: a streaming TFLite model (microWakeWord's .tflite) -> a kwsint blob (.kwsq) the engine runs bit-exactly as TFLM.

    kwsint-import okay_nabu.tflite --settings okay_nabu.json -o okay_nabu.kwsq

The graph is mapped onto kwsint's streaming ops (kwsint.interop.tflite_import); anything else is refused with one
line naming the operator, its index and the tensor. --settings reads the model's microWakeWord JSON (probability
cutoff, sliding window, feature step, wake word) into the blob's metadata. The blob is loaded back by the C
engine before it is written, so a file kwsint cannot run is never written. Default output: the model's name with
.kwsq. Exit status 0, 2 for bad arguments, 1 when the model or settings are refused or the output cannot be
written or exists (without --force), 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kwsint.cli import common
from kwsint.engine.blob import write_blob
from kwsint.engine.graph_model import GraphModel
from kwsint.errors import FormatError
from kwsint.interop.tflite_import import read_tflite
from kwsint.io.atomic import write_atomic

PROG = "kwsint-import"


def _parser() -> argparse.ArgumentParser:
    ap = common.new_parser(PROG, __doc__)
    ap.add_argument("model", type=Path, help="a streaming TFLite model (.tflite)")
    ap.add_argument("--settings", type=Path, metavar="JSON", help="its microWakeWord settings (.json)")
    ap.add_argument("-o", "--output", type=Path, help="the blob to write (default: the model's name with .kwsq)")
    common.add_force(ap, "an existing output")
    return ap


def _main(argv: list[str] | None) -> int:
    args = _parser().parse_args(argv)
    out = args.output or args.model.with_suffix(".kwsq")
    if out.suffix != ".kwsq":
        common.error(PROG, f"{out}: expected a .kwsq output")
        return 2
    common.check_outputs([out], args.force)
    try:
        spec = read_tflite(args.model, settings=args.settings)
        blob = write_blob(spec)
        model = GraphModel(blob, source=str(out))  # the C loader accepts it, or nothing is written
    except FormatError as e:
        common.error(PROG, str(e))
        return 1
    write_atomic(out, blob)
    frames, channels = model.input_shape
    common.print_line(f"{out}: {len(spec.ops)} ops, {len(spec.states)} states ({model.state_bytes:,} bytes), "
                      f"{spec.macs:,} MACs per invoke, input {frames} x {channels} int8, output "
                      f"{model.output_shape[0]} x {model.output_shape[1]} {model.output_dtype.name}, "
                      f"{len(blob):,} bytes")
    return 0


def main(argv: list[str] | None = None) -> int:
    return common.run_command(PROG, lambda: _main(argv))


if __name__ == "__main__":
    sys.exit(main())
