"""kwsint-train: train the float baseline, QAT stage 1 or stage 2 on labelled windows.

    kwsint-train --stage float  --config M0 --train train.npz --val val.npz -o m0.pt
    kwsint-train --stage stage1 --config M4 --train train.npz --val val.npz -o m4-s1.pt
    kwsint-train --stage stage2 --init m4-s1.pt --train train.npz --val val.npz -o m4.pt
    kwsint-train --arch conv --stage stage1 --config conv-s --weight-bits 4 --lambda-cos 0.1 \
        --train train-mf.npz -o conv4-s1.pt

Stage 1 quantizes the weights as q_z(tanh(W)); stage 2 starts from a
stage-1 checkpoint, calibrates the input and activation ranges on the training
windows and fine-tunes with every tensor on its integer grid. --arch dense (the
default) trains the 2022 paper's feed-forward models (M0..M6) on kwsint's
features; --arch conv the streaming temporal-conv models (conv-s, conv-m, conv-mix or
any shape: --blocks, or --config FILE.json) on
microfrontend features, as microWakeWord deploys them. Training data:
``.npz`` files of labelled windows (``kwsint-data``). ``--resume`` continues an
interrupted run from its checkpoint, exactly. ``--nproc N`` trains in N
processes, one per core, each on its share of every batch (the batch size is
the global one; gradients summed by torch.distributed's gloo backend): for a
fixed N and seed the checkpoint is the same bit for bit, and --resume continues
it with the same N. Needs PyTorch. Exit status 0, 2
for bad arguments, 1 when an input is refused, a worker of --nproc fails, or the checkpoint cannot be
written or exists (without --force or --resume), 130 on Ctrl-C.
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
from kwsint.errors import FormatError
from kwsint.io.atomic import OutputExistsError, refuse_existing

if TYPE_CHECKING:
    from kwsint.train.qat.conv import ConvConfig, ConvNet
    from kwsint.train.qat.model import KWSNet

PROG = "kwsint-train"

#: Adam learning rate per stage. Stage 1's weights live at the scale of sigma_t (0.85), about ten times the
#: float model's, so it needs a larger step; stage 2 fine-tunes. Measured on kwsint-data toy (docs/qat.md).
DEFAULT_LR = {"float": 1e-3, "stage1": 1e-2, "stage2": 1e-4}


def _sizes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated layer sizes, got {text!r}") from None


def _ops(text: str) -> tuple[int, ...] | str:
    if text == "all":
        return text
    try:
        return tuple(int(s) for s in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'all' or comma-separated op indices, got {text!r}") from None


def _blocks(text: str) -> tuple[tuple[int | tuple[int, ...], int], ...]:
    try:
        blocks = []
        for block in text.split(","):
            kernels, channels = block.split(":")
            ks = tuple(int(k) for k in kernels.split("+"))
            blocks.append((ks[0] if len(ks) == 1 else ks, int(channels)))
        return tuple(blocks)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated KERNEL:CHANNELS blocks (KERNEL may be K1+K2 for "
                                         f"a MixConv block), e.g. 5:32,7+11:48, got {text!r}") from None


def _conv_base(config: str) -> ConvConfig:
    """A conv preset by name, or a ConvConfig JSON file (its fields; ``weight_bits`` defaults to 8 everywhere)."""
    from kwsint.train.qat.conv import ConvConfig, conv_config

    if not config.endswith(".json"):
        return conv_config(config)
    try:
        d = json.loads(Path(config).read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"--config {config}: cannot read a JSON ConvConfig ({e})") from None
    fields = set(ConvConfig.__dataclass_fields__)
    if not isinstance(d, dict) or "blocks" not in d:
        raise ValueError(f"--config {config}: expected a JSON object with 'blocks' (and any other ConvConfig field)")
    if set(d) - fields:
        raise ValueError(f"--config {config}: unknown field(s) {', '.join(sorted(set(d) - fields))}; expected "
                         f"{', '.join(sorted(fields))}")
    blocks = d["blocks"]
    d.setdefault("weight_bits", [8] * (2 + 2 * len(blocks)) if isinstance(blocks, list) else [])
    d.setdefault("name", Path(config).stem)
    try:
        return ConvConfig.from_dict(d)
    except (TypeError, ValueError) as e:
        raise ValueError(f"--config {config}: {e}") from None


def _nproc(text: str) -> int:
    from kwsint.train.qat.parallel import available_cores

    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of processes, got {text!r}") from None
    cores = available_cores()
    if not 1 <= n <= cores:
        raise argparse.ArgumentTypeError(f"expected 1..{cores} (the cores this process may use), got {n}")
    return n


def _parser() -> argparse.ArgumentParser:
    from kwsint.train.qat.train import TrainOptions  # PyTorch code, imported here: see _main

    ap = common.new_parser(PROG, __doc__)
    ap.add_argument("--stage", required=True, choices=("float", "stage1", "stage2"))
    ap.add_argument("--train", nargs="+", required=True, type=Path, metavar="NPZ", help="training windows")
    ap.add_argument("--val", nargs="+", type=Path, metavar="NPZ", help="validation windows")
    ap.add_argument("-o", "--output", required=True, type=Path, help="checkpoint to write (.pt)")
    ap.add_argument("--arch", choices=("dense", "conv"), help="model family (default dense; stage 2: the --init's)")
    ap.add_argument("--config", default=None,
                    help="dense: paper configuration M0..M6 (default M2); conv: conv-s, conv-m, conv-mix (default "
                         "conv-s) or a JSON file of ConvConfig's fields; stage 2: the --init's")
    ap.add_argument("--sizes", type=_sizes, help="dense: custom hidden layer sizes, e.g. 64,128,64")
    ap.add_argument("--blocks", type=_blocks, metavar="K:C,...",
                    help="conv: custom blocks, depthwise kernel (frames) : 1x1 channels each, K1+K2 for a MixConv "
                         "block, e.g. 5:32,7+11:48,9+15:64")
    ap.add_argument("--relu-clip", type=float, help="clipped-ReLU ceiling (default 6)")
    ap.add_argument("--pow2-scales", action="store_true",
                    help="conv: every scale a power of two, requantization by shifts (pure Q-format)")
    ap.add_argument("--acc16-ops", type=_ops, metavar="all|I,J,...",
                    help="conv: linear ops (0 = first conv) trained under the accumulator bound that makes int16 "
                         "accumulation provably exact (sum |w| <= 255 per row)")
    ap.add_argument("--per-tensor", action="store_true",
                    help="one weight grid and gain per dense layer instead of per channel (TFLite INT4 needs it)")
    add_bit_options(ap)
    ap.add_argument("--init", type=Path, help="stage 2: the stage-1 checkpoint to start from")
    ap.add_argument("--resume", action="store_true", help="continue the run saved in --output")
    common.add_force(ap, "an existing --output")
    t = ap.add_argument_group("optimisation")
    d = TrainOptions()
    t.add_argument("--steps", type=int, default=d.steps, help=f"updates (default {d.steps})")
    t.add_argument("--batch-size", type=int, default=d.batch_size)
    t.add_argument("--lr", type=float, default=None,
                   help="Adam learning rate (default: float 1e-3, stage1 1e-2, stage2 1e-4)")
    t.add_argument("--lr-final", type=float, help="learning rate for the last --final-fraction of the steps")
    t.add_argument("--final-fraction", type=float, default=d.final_fraction)
    t.add_argument("--lambda-sigma", type=float, default=d.lambda_sigma, help="weight-spread regulariser weight")
    t.add_argument("--lambda-mu", type=float, default=d.lambda_mu, help="weight-mean regulariser weight")
    t.add_argument("--lambda-cos", type=float, default=d.lambda_cos,
                   help="absolute cosine regulariser weight, pulls tanh(W) onto its grid (stages 1 and 2)")
    t.add_argument("--seed", type=int, default=d.seed)
    t.add_argument("--augment", action="store_true",
                   help="warp the mel axis (VTLP) and mask a band and a span of each training window (SpecAugment)")
    t.add_argument("--eval-every", type=int, default=d.eval_every)
    t.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every)
    ap.add_argument("--threads", type=int, help="torch CPU threads (with --nproc: of each process, default 1)")
    ap.add_argument("--nproc", type=_nproc, default=1, metavar="N",
                    help="data-parallel training in N processes, one per core, each on its share of every batch "
                         "(default 1: in this process)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    return ap


def _new_model(args: argparse.Namespace, train_features: np.ndarray) -> KWSNet | ConvNet:
    import torch

    from kwsint.train.export import check_windows
    from kwsint.train.qat.checkpoint import load_checkpoint
    from kwsint.train.qat.conv import ConvConfig, ConvNet
    from kwsint.train.qat.model import KWSNet, NetConfig, paper_config
    from kwsint.train.qat.train import start_stage2

    if args.stage == "stage2":
        if args.init is None:
            raise ValueError("--stage stage2 needs --init STAGE1.pt")
        if (args.config or args.sizes or args.blocks or args.relu_clip is not None or args.per_tensor
                or args.pow2_scales or args.acc16_ops):
            raise ValueError("--stage stage2 takes its shape from --init; --config, --sizes, --blocks, --relu-clip, "
                             "--per-tensor, --pow2-scales and --acc16-ops do not apply")
        ck = load_checkpoint(args.init)
        if ck.model.stage != "stage1":
            raise ValueError(f"{args.init}: stage 2 starts from a stage-1 checkpoint, this one is {ck.model.stage}")
        if args.arch not in (None, ck.model.arch):
            raise ValueError(f"--arch {args.arch}: {args.init} is a {ck.model.arch} model")
        model = type(ck.model)(apply_bit_options(ck.model.config, args), "stage1")
        model.load_state_dict(ck.model.state_dict())
        check_windows(train_features, model.config, "--train")
        start_stage2(model, train_features)
        return model
    if args.init is not None:
        raise ValueError("--init applies to --stage stage2 only")
    if args.arch == "conv":
        if args.sizes or args.per_tensor:
            raise ValueError("--sizes and --per-tensor apply to --arch dense; conv shapes: --config, --blocks")
        base = _conv_base(args.config or "conv-s")
        changes = {"pow2_scales": args.pow2_scales}
        if args.blocks:
            changes |= {"blocks": args.blocks, "weight_bits": [base.weight_bits[0]] * (2 + 2 * len(args.blocks)),
                        "name": "custom"}
        if args.relu_clip is not None:
            changes["relu_clip"] = args.relu_clip
        if args.acc16_ops:
            changes["acc16_ops"] = range(len(base.weight_bits)) if args.acc16_ops == "all" else args.acc16_ops
        base = ConvConfig.from_dict(base.to_dict() | changes)
        config = apply_bit_options(base, args)
        model = ConvNet(config, args.stage)
    else:
        if args.pow2_scales or args.acc16_ops or args.blocks:
            raise ValueError("--pow2-scales, --acc16-ops and --blocks apply to --arch conv")
        base = paper_config(args.config or "M2")
        if args.sizes:
            base = NetConfig(args.sizes, (base.weight_bits[0],) * (len(args.sizes) + 1), base.act_bits, name="custom")
        if args.relu_clip is not None or args.per_tensor:
            d = base.to_dict()
            d["relu_clip"] = base.relu_clip if args.relu_clip is None else args.relu_clip
            d["per_channel"] = not args.per_tensor
            base = NetConfig.from_dict(d)
        config = apply_bit_options(base, args)
        model = KWSNet(config, args.stage)
    check_windows(train_features, config, "--train")
    model.reset_weights(torch.Generator().manual_seed(args.seed))
    model.set_normalization(train_features)
    return model


def run(args: argparse.Namespace, steps: common.Progress | None = None) -> int:
    """Train as ``args`` say; ``steps`` counts the steps done, for the line after Ctrl-C."""
    steps = steps or common.Progress()
    import torch

    from kwsint.train.export import check_windows
    from kwsint.train.qat.checkpoint import load_checkpoint
    from kwsint.train.qat.train import TrainOptions, train

    if args.threads and args.nproc == 1:
        torch.set_num_threads(args.threads)
    data = load_windows_many(args.train)
    val = load_windows_many(args.val) if args.val else None
    lr = args.lr if args.lr is not None else DEFAULT_LR[args.stage]
    options = TrainOptions(steps=args.steps, batch_size=args.batch_size, lr=lr, lr_final=args.lr_final,
                           final_fraction=args.final_fraction, lambda_sigma=args.lambda_sigma,
                           lambda_mu=args.lambda_mu, lambda_cos=args.lambda_cos, seed=args.seed,
                           eval_every=args.eval_every,
                           checkpoint_every=args.checkpoint_every, augment=args.augment)
    resume = None
    if args.resume:
        ck = load_checkpoint(args.output)
        if ck.train is None:
            raise ValueError(f"{args.output}: holds no training state to resume")
        if ck.model.stage != args.stage:
            raise ValueError(f"{args.output}: is a {ck.model.stage} checkpoint, not {args.stage}")
        model, resume = ck.model, ck.train
    else:
        model = _new_model(args, data.features)

    check_windows(data.features, model.config, "--train")
    check_windows(val.features if val else None, model.config, "--val")
    def progress(total: int, initial: int) -> _CountedSteps:
        steps.total, steps.done = total, initial
        if args.no_progress:
            return _CountedSteps(steps, None)
        from tqdm import tqdm

        return _CountedSteps(steps, tqdm(total=total, initial=initial, desc=f"{args.stage} {model.config.name}",
                                         unit="step", dynamic_ncols=True))

    val = (val.features, val.labels) if val else None
    if args.nproc == 1:
        history = train(model, data.features, data.labels, options, out=args.output, val=val, resume=resume,
                        progress=progress)
    else:
        from kwsint.train.qat.parallel import train_parallel

        history = train_parallel(model, data.features, data.labels, options, out=args.output, val=val,
                                 resume=resume, progress=progress, nproc=args.nproc, threads=args.threads)
    summary = {"checkpoint": str(args.output), "stage": model.stage, "config": model.config.to_dict(),
               "steps": options.steps, **(history[-1] if history else {})}
    common.print_line(json.dumps(summary))
    return 0


class _CountedSteps:
    """train()'s progress bar: counts the steps done, for the line after Ctrl-C, and draws tqdm's ``bar`` if any."""

    def __init__(self, steps: common.Progress, bar) -> None:
        self.steps, self.bar = steps, bar

    def update(self, n: int) -> None:
        self.steps.done += n
        if self.bar is not None:
            self.bar.update(n)

    def set_postfix(self, *args, **kwargs) -> None:
        if self.bar is not None:
            self.bar.set_postfix(*args, **kwargs)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def main(argv: list[str] | None = None) -> int:
    steps = common.Progress("training steps")
    return common.run_command(PROG, lambda: _main(argv, steps), steps, needs_torch=True)


def _main(argv: list[str] | None, steps: common.Progress) -> int:
    # PyTorch's modules are imported in the functions that use them: this module loads without it, so that
    # run_command can say in one line that it is missing.
    ap = _parser()
    args = ap.parse_args(argv)
    if args.nproc > args.batch_size:
        ap.error(f"--nproc {args.nproc} is more than --batch-size {args.batch_size}: every process needs a share of "
                 "each batch")
    common.check_outputs([args.output], force=True)  # its folder; the overwrite rule has --resume's way out
    if not args.resume:
        try:
            refuse_existing([args.output], args.force)
        except OutputExistsError as e:
            common.error(PROG, f"{e}, or --resume to continue it")
            return 1
    from kwsint.train.qat.parallel import WorkerError

    try:
        return run(args, steps)
    except (FormatError, ValueError, OSError, WorkerError) as e:
        common.error(PROG, str(e))
        return 1


if __name__ == "__main__":
    sys.exit(main())
