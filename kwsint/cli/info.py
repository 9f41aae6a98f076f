"""kwsint-info: what a model is, what it needs and what it recommends.

    kwsint-info model.kwsq [--json] [--backend B] [--weights auto|int8|packed]
    kwsint-info default:M4

Shows the wake phrase, the recommended operating point, the window and the
front end, every layer (bits, MACs, the kernel it runs on here), the MACs per
inference, the memory the loaded model and one stream take, and the blob's size.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import kwsint
from kwsint.cli import common
from kwsint.engine.graph_model import GraphModel
from kwsint.engine.model import Model
from kwsint.errors import BackendError, FormatError


def describe(model: Model, source: str) -> dict:
    """Everything kwsint-info shows, as JSON-ready data."""
    spec, info = model.spec, model.info()
    fe, fb = spec.frontend, spec.frontend.fbank
    audio_ms = (fe.window_frames - 1) * fb.frame_shift_ms + fb.frame_length_ms
    return dict(
        model=source,
        blob_bytes=info["blob_bytes"],
        format_version=model.format_version,
        metadata=spec.metadata.stated(),
        window=dict(frames=fe.window_frames, feature_dim=fe.feature_dim, frame_stride=fe.frame_stride,
                    input_size=fe.input_size, audio_seconds=round(audio_ms / 1000, 6)),
        front_end=dict(kind="LFBE", sample_rate=fb.sample_rate, frame_length_ms=fb.frame_length_ms,
                       frame_shift_ms=fb.frame_shift_ms, num_mel_bins=fb.num_mel_bins, low_freq=fb.low_freq,
                       high_freq=fb.high_freq, preemph_coeff=round(fb.preemph_coeff, 6),
                       window_type=fb.window_type, remove_dc_offset=fb.remove_dc_offset, snip_edges=fb.snip_edges),
        act_bits=spec.act_bits,
        layers=[dict(kind=l["kind"], in_size=l["in_size"], out_size=l["out_size"], weight_bits=l["weight_bits"],
                     macs=l["macs"], kernel=l["plan"]["kernel"], fused=l["plan"]["fused"]) for l in info["layers"]],
        macs=info["macs"],
        backend=info["backend"],
        weights=info["weights"],
        weight_bytes_in_memory=info["weight_bytes_in_memory"],
        model_bytes_in_memory=info["model_bytes_in_memory"],
        stream_bytes=info["stream_bytes"],
    )


def describe_graph(model: GraphModel, source: str) -> dict:
    """What kwsint-info shows of a streaming graph (blob kind 1)."""
    spec = model.spec
    ops: dict[str, int] = {}
    for op in spec.ops:
        ops[type(op).__name__] = ops.get(type(op).__name__, 0) + 1
    return dict(model=source, blob_bytes=model.blob_bytes, format_version=5, kind="streaming graph",
                metadata=spec.metadata.stated(), input=list(model.input_shape), output=list(model.output_shape),
                output_dtype=model.output_dtype.name, ops=ops, states=len(spec.states),
                state_bytes=model.state_bytes, macs=spec.macs, backend=model.backend, acc16_ops=model.acc16_ops)


def graph_as_text(d: dict) -> str:
    meta = d["metadata"]
    lines = [
        f"model        {d['model']} ({d['blob_bytes']:,} bytes, format {d['format_version']}, {d['kind']})",
        f"phrase       {meta.get('phrase', 'not stated')}",
        f"input        {d['input'][0]} frames x {d['input'][1]} int8 codes per invoke",
        f"output       {d['output'][0]} x {d['output'][1]} {d['output_dtype']}",
        f"ops          {', '.join(f'{n} {k}' for k, n in d['ops'].items())}",
        f"state        {d['states']} states, {d['state_bytes']:,} B",
        f"MACs         {d['macs']:,} per invoke (backend {d['backend']}; {d['acc16_ops']} of the linear ops "
        "sum in int16)",
    ]
    return "\n".join(lines)


def _operating_point(meta: dict) -> str:
    parts = [f"threshold {meta['threshold']:g}" if "threshold" in meta else None,
             f"smoothing {meta['smoothing_s']:g} s" if "smoothing_s" in meta else None,
             f"lockout {meta['lockout_s']:g} s" if "lockout_s" in meta else None]
    stated = [p for p in parts if p]
    return ", ".join(stated) if stated else "not stated (kwsint-run's defaults apply)"


def as_text(d: dict) -> str:
    """The human-readable form of ``describe``'s data."""
    meta, w, fe = d["metadata"], d["window"], d["front_end"]
    top = fe["high_freq"] if fe["high_freq"] > 0 else fe["sample_rate"] / 2 + fe["high_freq"]
    lines = [
        f"model        {d['model']} ({d['blob_bytes']:,} bytes, format {d['format_version']})",
        f"phrase       {meta.get('phrase', 'not stated')}",
        f"operating    {_operating_point(meta)}",
    ]
    if "provenance" in meta:
        first, *rest = meta["provenance"].splitlines() or [""]
        lines.append(f"provenance   {first}")
        lines += [f"             {line}" for line in rest]
    if "model_version" in meta:
        lines.append(f"version      {meta['model_version']}")
    lines += [
        f"window       {w['frames']} frames x {w['feature_dim']} features ({w['audio_seconds']:g} s of audio); "
        f"{w['input_size'] // w['feature_dim']} frames used (stride {w['frame_stride']}): {w['input_size']} inputs",
        f"front end    {fe['kind']}, {fe['sample_rate']} Hz, {fe['frame_length_ms']:g} ms frames every "
        f"{fe['frame_shift_ms']:g} ms, {fe['num_mel_bins']} mel bins {fe['low_freq']:g}..{top:g} Hz, "
        f"{fe['window_type']} window",
        f"activations int{d['act_bits']}",
        f"layers       {'#':>2}  {'kind':<6} {'in':>5} -> {'out':<5} {'bits':>4} {'MACs':>9}  kernel ({d['backend']})",
    ]
    for i, l in enumerate(d["layers"]):
        kernel = "fused into the previous layer" if l["fused"] == "previous" else l["kernel"]
        lines.append(f"             {i:>2}  {l['kind']:<6} {l['in_size']:>5} -> {l['out_size']:<5} "
                     f"{l['weight_bits']:>4} {l['macs']:>9,}  {kernel}")
    lines += [
        f"MACs         {d['macs']:,} per inference",
        f"memory       weights {d['weight_bytes_in_memory']:,} B, model {d['model_bytes_in_memory']:,} B, "
        f"one stream {d['stream_bytes']:,} B (backend {d['backend']}, weights {d['weights']})",
    ]
    return "\n".join(lines)


PROG = "kwsint-info"


def main(argv: list[str] | None = None) -> int:
    return common.run_command(PROG, lambda: _main(argv))


def _main(argv: list[str] | None) -> int:
    ap = common.new_parser(PROG, __doc__)
    ap.add_argument("model", help="a .kwsq file, or default:NAME for a shipped model (default:M4)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    ap.add_argument("--backend", help="the backend whose kernels and memory to show (default: the fastest)")
    ap.add_argument("--weights", choices=("auto", "int8", "packed"), default="auto",
                    help="how the weights are held (default auto)")
    args = ap.parse_args(argv)
    try:
        model = kwsint.load(args.model, backend=args.backend, weights=args.weights)
    except OSError as e:
        common.error(PROG, f"{args.model}: {e.strerror or e}")
        return 1
    except (FormatError, BackendError, ValueError) as e:
        common.error(PROG, str(e))
        return 1
    source = args.model if args.model.startswith("default:") else str(Path(args.model))
    if isinstance(model, GraphModel):
        d = describe_graph(model, source)
        common.print_line(json.dumps(d) if args.json else graph_as_text(d))
        return 0
    d = describe(model, source)
    common.print_line(json.dumps(d) if args.json else as_text(d))
    return 0


if __name__ == "__main__":
    sys.exit(main())
