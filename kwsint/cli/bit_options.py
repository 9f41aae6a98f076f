"""Command-line options for bit widths, shared by kwsint-train and kwsint-export."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # PyTorch code: the CLIs load without it, to say that it is missing
    from kwsint.train.qat.model import NetConfig


def _layer_bits(text: str) -> dict[int, int]:
    out = {}
    for item in text.split(","):
        try:
            layer, bits = item.split("=")
            out[int(layer)] = int(bits)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected LAYER=BITS[,LAYER=BITS...], got {text!r}") from None
    return out


def add_bit_options(ap: argparse.ArgumentParser) -> None:
    g = ap.add_argument_group("bit widths (default: the configuration's or the checkpoint's)")
    g.add_argument("--weight-bits", type=int, metavar="1..8", help="weight bits of every dense layer")
    g.add_argument("--layer-bits", type=_layer_bits, metavar="I=B,...",
                   help="weight bits per dense layer index (0 = first), after --weight-bits, e.g. 0=5,1=5,6=5")
    g.add_argument("--act-bits", type=int, choices=(8, 16), help="activation and input bits")
    g.add_argument("--param-bits", type=int, metavar="2..8", help="bits of the batch-norm affine weights")


def apply_bit_options(config: NetConfig, args: argparse.Namespace) -> NetConfig:
    """``config`` with the bit options given on the command line; ValueError names a bad one."""
    bits = list(config.weight_bits)
    if args.weight_bits is not None:
        bits = [args.weight_bits] * len(bits)
    for layer, b in (args.layer_bits or {}).items():
        if not 0 <= layer < len(bits):
            raise ValueError(f"--layer-bits: layer {layer} does not exist (dense layers 0..{len(bits) - 1})")
        bits[layer] = b
    return config.with_bits(weight_bits=bits, act_bits=args.act_bits, param_bits=args.param_bits)
