"""The training loop of every stage: float baseline, stage 1 and stage 2.

Deterministic: the model is initialised from the seed, each epoch's order is a
permutation drawn from ``seed`` and the epoch number alone, and the checkpoint
holds the step, the optimizer state and the history, so a run resumed from a
checkpoint continues exactly as if it had not stopped.
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

    Returns:
        The history: one dict per validation pass (step, loss, accuracy, ...).
    """
    n = len(labels)
    if n == 0:
        raise ValueError("no training windows")
    opt = torch.optim.Adam(model.parameters(), lr=options.lr)
    step, history = 0, []
    if resume is not None:
        if resume.get("options", {}).get("seed") != options.seed:
            raise ValueError("resume: the checkpoint was trained with another seed")
        opt.load_state_dict(resume["optimizer"])
        step, history = int(resume["step"]), list(resume["history"])
    model.train()  # stage 2 reads batch norm's running statistics as constants, in any mode
    steps_per_epoch = math.ceil(n / options.batch_size)
    bar = progress(options.steps, step) if progress else None
    feats = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
    labs = torch.from_numpy(np.asarray(labels, dtype=np.int64))

    def state() -> dict:
        return {"step": step, "optimizer": opt.state_dict(), "history": history, "options": asdict(options)}

    try:
        order, order_epoch = None, -1
        while step < options.steps:
            epoch, pos = divmod(step, steps_per_epoch)
            if epoch != order_epoch:
                order, order_epoch = _epoch_order(options.seed, epoch, n), epoch
            idx = order[pos * options.batch_size : (pos + 1) * options.batch_size]
            for g in opt.param_groups:
                g["lr"] = options.lr_at(step)
            batch = feats[idx]
            if options.augment:
                batch = augment_windows(batch, torch.Generator().manual_seed(options.seed * 1_000_003 + step))
            logits = model(batch)
            ce = model.loss(logits, labs[idx])
            loss = ce + model.regularizer(options.lambda_sigma, options.lambda_mu, options.lambda_cos)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{float(ce.detach()):.4f}", refresh=False)
            if step % options.eval_every == 0 or step == options.steps:
                entry = {"step": step, "train_loss": float(ce.detach())}
                if val is not None:
                    entry.update({f"val_{k}": v for k, v in evaluate(model, *val).items()})
                history.append(entry)
                if bar is not None:
                    bar.set_postfix({k: f"{v:.4f}" for k, v in entry.items() if k != "step"})
            if step % options.checkpoint_every == 0 or step == options.steps:
                save_checkpoint(out, model, state())
    finally:
        if bar is not None:
            bar.close()
    return history
