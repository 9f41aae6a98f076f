"""The training loop of every stage: float baseline, stage 1 and stage 2.

Deterministic: the model is initialised from the seed, each epoch's order is a
permutation drawn from ``seed`` and the epoch number alone, and the checkpoint
holds the step, the optimizer state and the history, so a run resumed from a
checkpoint continues exactly as if it had not stopped.

Data-parallel (``train(..., rank=r, nproc=n)`` in each of n processes of an
initialised ``torch.distributed`` group, as ``parallel.train_parallel`` starts
them): each worker takes its contiguous share of every batch (the first
``batch % n`` workers one window more), the gradients of the batch's mean loss
and the changes to the float buffers (batch-norm running statistics, stage 2's
moving ranges) are summed across the workers in one all-reduce per step, each
weighted by its share of the batch, and every worker takes the same Adam step,
so the models stay identical. The batch size is the global one. Batch norm
normalises each share by its own statistics, so a dense model's numbers differ
from one process's (by rounding otherwise); for a fixed n and seed a run is
repeatable, bit for bit. Worker 0 alone validates, checkpoints and reports.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch

from .augment import augment_windows
from .checkpoint import save_checkpoint
from .conv import ConvNet
from .model import KWSNet

#: Windows used to calibrate the stage-2 ranges when stage 2 starts.
CALIBRATION_WINDOWS = 4096


@dataclass(frozen=True)
class TrainOptions:
    """Hyper-parameters of one training run.

    Attributes:
        steps: optimizer updates in total (a resumed run stops at the same step).
        batch_size: windows per update.
        lr: Adam learning rate.
        lr_final: learning rate for the last ``final_fraction`` of the steps (the
            paper lowers it at the end of stage 1 for 1-bit models); None keeps ``lr``.
        final_fraction: share of steps, in (0, 1), run at ``lr_final``.
        lambda_sigma, lambda_mu: weights of the stage-1/2 distribution regulariser.
        lambda_cos: weight of the stage-1/2 absolute cosine regulariser (``quantizers.grid_penalty``).
        seed: initialisation and data order.
        eval_every: steps between validation passes (and at the end).
        checkpoint_every: steps between checkpoints (and at the end).
        augment: warp and mask each training batch (``augment.augment_windows``), drawn from ``seed`` and
            the step.
    """

    steps: int = 2000
    batch_size: int = 256
    lr: float = 1e-3
    lr_final: float | None = None
    final_fraction: float = 0.1
    lambda_sigma: float = 1.0
    lambda_mu: float = 1.0
    lambda_cos: float = 0.0
    seed: int = 0
    eval_every: int = 500
    checkpoint_every: int = 500
    augment: bool = False

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.eval_every < 1 or self.checkpoint_every < 1:
            raise ValueError("steps, batch_size, eval_every and checkpoint_every must be >= 1")
        if not (self.lr > 0 and (self.lr_final is None or self.lr_final > 0)):
            raise ValueError("learning rates must be > 0")
        if not 0 < self.final_fraction < 1:
            raise ValueError(f"final_fraction must be in (0, 1), got {self.final_fraction}")

    def lr_at(self, step: int) -> float:
        if self.lr_final is not None and step >= math.ceil(self.steps * (1 - self.final_fraction)):
            return self.lr_final
        return self.lr


def check_resume(resume: dict, options: TrainOptions, nproc: int = 1) -> None:
    """ValueError unless the ``train`` dict of a checkpoint continues this run: the same seed and, as a run
    continues exactly only with the same split of every batch, the same number of worker processes."""
    if resume.get("options", {}).get("seed") != options.seed:
        raise ValueError("resume: the checkpoint was trained with another seed")
    was = resume.get("nproc", 1)
    if was != nproc:
        raise ValueError(f"resume: the checkpoint was trained with --nproc {was}, not {nproc}: resume it with "
                         f"--nproc {was} (a run continues exactly only with the same number of workers)")


def _epoch_order(seed: int, epoch: int, n: int) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))


@torch.no_grad()
def evaluate(model: KWSNet | ConvNet, features: np.ndarray, labels: np.ndarray, batch_size: int = 2048) -> dict:
    """Cross-entropy and accuracy of the model in evaluation mode (stage 2: the integer model)."""
    was_training = model.training
    model.eval()
    loss, correct = 0.0, 0
    for i in range(0, len(labels), batch_size):
        x = torch.from_numpy(features[i : i + batch_size])
        y = torch.from_numpy(labels[i : i + batch_size])
        logits = model(x)
        loss += float(model.loss(logits, y)) * len(y)
        correct += int((model.decisions(logits) == y).sum())
    model.train(was_training)
    n = max(len(labels), 1)
    return {"loss": loss / n, "accuracy": correct / n}


def start_stage2(model: KWSNet | ConvNet, features: np.ndarray) -> None:
    """Turns a stage-1 model into stage 2: frozen batch-norm statistics, calibrated ranges."""
    model.stage = "stage2"
    model.calibrate(torch.from_numpy(features[:CALIBRATION_WINDOWS]))


def train(
    model: KWSNet | ConvNet,
    features: np.ndarray,
    labels: np.ndarray,
    options: TrainOptions,
    *,
    out: str | os.PathLike,
    val: tuple[np.ndarray, np.ndarray] | None = None,
    resume: dict | None = None,
    progress: Callable[[int, int], object] | None = None,
    rank: int = 0,
    nproc: int = 1,
) -> list[dict]:
    """Trains ``model`` in its stage for ``options.steps`` updates, checkpointing to ``out``.

    Args:
        model: a KWSNet or ConvNet (a stage-2 model must already be calibrated).
        features: float32 (N, window_frames, feature_dim) raw windows (a ConvNet reads the last frames of longer
            ones).
        labels: int64 (N,) in {0, 1}.
        out: checkpoint path, rewritten atomically every ``checkpoint_every`` steps and at the end.
        val: optional validation (features, labels).
        resume: the ``train`` dict of a checkpoint of this run, to continue it.
        progress: optional factory ``(total, initial) -> bar`` with ``update(n)``,
            ``set_postfix(**kw)`` and ``close()`` (tqdm's interface).
        rank, nproc: this worker and the number of workers of a data-parallel run (the module docstring), whose
            ``torch.distributed`` default group is initialised; 1 process by default. Only worker 0 validates,
            writes ``out`` and draws ``progress``.

    Returns:
        The history: one dict per validation pass (step, loss, accuracy, ...); empty on the other workers.
    """
    n = len(labels)
    if n == 0:
        raise ValueError("no training windows")
    opt = torch.optim.Adam(model.parameters(), lr=options.lr)
    step, history = 0, []
    if resume is not None:
        check_resume(resume, options, nproc)
        opt.load_state_dict(resume["optimizer"])
        step, history = int(resume["step"]), list(resume["history"])
    model.train()  # stage 2 reads batch norm's running statistics as constants, in any mode
    steps_per_epoch = math.ceil(n / options.batch_size)
    bar = progress(options.steps, step) if progress and rank == 0 else None
    feats = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
    labs = torch.from_numpy(np.asarray(labels, dtype=np.int64))

    shared = _Shared(model) if nproc > 1 else None

    def state() -> dict:
        s = {"step": step, "optimizer": opt.state_dict(), "history": history, "options": asdict(options)}
        return s | {"nproc": nproc} if nproc > 1 else s

    try:
        order, order_epoch = None, -1
        while step < options.steps:
            epoch, pos = divmod(step, steps_per_epoch)
            if epoch != order_epoch:
                order, order_epoch = _epoch_order(options.seed, epoch, n), epoch
            idx = order[pos * options.batch_size : (pos + 1) * options.batch_size]
            for g in opt.param_groups:
                g["lr"] = options.lr_at(step)
            if shared is None:
                batch = feats[idx]
                if options.augment:
                    batch = augment_windows(batch, torch.Generator().manual_seed(options.seed * 1_000_003 + step))
                logits = model(batch)
                ce = model.loss(logits, labs[idx])
                loss = ce + model.regularizer(options.lambda_sigma, options.lambda_mu, options.lambda_cos)
                opt.zero_grad(set_to_none=True)
                loss.backward()
            else:
                opt.zero_grad(set_to_none=True)
                ce = shared.step(model, feats, labs, idx, options, step, rank, nproc)
            opt.step()
            step += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{float(ce.detach()):.4f}", refresh=False)
            if rank == 0 and (step % options.eval_every == 0 or step == options.steps):
                entry = {"step": step, "train_loss": float(ce.detach())}
                if val is not None:
                    entry.update({f"val_{k}": v for k, v in evaluate(model, *val).items()})
                history.append(entry)
                if bar is not None:
                    bar.set_postfix({k: f"{v:.4f}" for k, v in entry.items() if k != "step"})
            if step % options.checkpoint_every == 0 or step == options.steps:
                if shared is not None:
                    shared.check_same()
                if rank == 0:
                    save_checkpoint(out, model, state())
    finally:
        if bar is not None:
            bar.close()
    return history


class PeerLost(RuntimeError):
    """A collective operation of a data-parallel run failed: another worker has stopped."""


def first_line(text) -> str:
    """The first non-blank line of ``str(text)``, stripped ("" if there is none): a message in one line."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else ""


class _Shared:
    """One data-parallel step (the module docstring): this worker's share of the batch, then the gradients and
    buffer changes summed across the workers, weighted by share."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.buffers = [b for b in model.buffers() if b.is_floating_point()]

    def step(self, model, feats, labs, idx, options: TrainOptions, step: int, rank: int, nproc: int) -> torch.Tensor:
        """Forward and backward on this worker's share; leaves the summed gradients in ``.grad``, returns the
        batch's mean loss (without the regulariser, as the one-process loop reports it)."""
        parts = idx.tensor_split(nproc)
        mine, first = parts[rank], sum(len(p) for p in parts[:rank])
        share = len(mine) / len(idx)
        before = [b.detach().clone() for b in self.buffers]
        ce = torch.zeros(())
        if len(mine):
            batch = feats[mine]
            if options.augment:
                batch = augment_windows(batch, torch.Generator().manual_seed(options.seed * 1_000_003 + step),
                                        first, len(idx))
            ce = model.loss(model(batch), labs[mine])
            loss = ce * share
            if rank == 0:  # the regulariser is the same in every worker: counted once
                loss = loss + model.regularizer(options.lambda_sigma, options.lambda_mu, options.lambda_cos)
            loss.backward()
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
        deltas = [(b.detach() - b0) * share for b, b0 in zip(self.buffers, before)]
        flat = torch.cat([t.reshape(-1).float() for t in (*grads, *deltas)] + [(ce.detach() * share).reshape(1)])
        self._collective(flat, torch.distributed.ReduceOp.SUM)
        at = 0
        for p in self.params:
            p.grad = flat[at : at + p.numel()].view_as(p)
            at += p.numel()
        with torch.no_grad():
            for b, b0 in zip(self.buffers, before):
                b.copy_(b0 + flat[at : at + b.numel()].view_as(b).to(b.dtype))
                at += b.numel()
        return flat[at]

    def check_same(self) -> None:
        """RuntimeError unless every worker holds the same parameters and buffers, bit for bit (before a
        checkpoint: worker 0's is everyone's)."""
        bits = torch.cat([t.detach().reshape(-1).double() for t in (*self.params, *self.buffers)]).view(torch.int64)
        low, high = bits.clone(), bits.clone()
        self._collective(low, torch.distributed.ReduceOp.MIN)
        self._collective(high, torch.distributed.ReduceOp.MAX)
        if not torch.equal(low, high):
            raise RuntimeError("the workers' models differ: a data-parallel step was not the same in every worker")

    @staticmethod
    def _collective(t: torch.Tensor, op) -> None:
        try:
            torch.distributed.all_reduce(t, op=op)
        except RuntimeError as e:  # the gloo backend's words for a peer that has gone: its socket closed
            raise PeerLost(first_line(e) or type(e).__name__) from None
