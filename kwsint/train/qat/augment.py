"""Augmentation of training windows in the feature domain: a vocal-tract-length warp and SpecAugment masks.

A voice the model has not heard differs from the training voices mostly in its
formants, which a length warp of the mel axis imitates (Jaitly & Hinton's VTLP,
here on the log-mel bins themselves); the masks (Park et al.'s SpecAugment)
keep the model from leaning on any one band or moment. Only training batches
are augmented; the draws come from a generator the caller seeds, so a run is
repeatable and a resumed run continues exactly.
"""

from __future__ import annotations

import torch

WARP = (0.85, 1.15)
"""Range of the mel-axis stretch factor: bin b of the output reads the input at b * factor."""
MAX_MASKED_BINS = 3
"""Each window has one band of 0..MAX_MASKED_BINS adjacent bins set to its mean."""
MAX_MASKED_FRAMES = 10
"""... and one span of 0..MAX_MASKED_FRAMES frames set to its mean."""


def augment_windows(x: torch.Tensor, generator: torch.Generator, first: int = 0, total: int | None = None
                    ) -> torch.Tensor:
    """Warped and masked copies of float windows (N, frames, bins): raw log-mel values, the model's input.

    ``x`` may be rows ``first .. first + N`` of a batch of ``total`` windows (a data-parallel worker's share): the
    draws are made for the whole batch and the share gets its rows' draws, so the augmented windows are those of
    the whole batch, whichever way it is split.
    """
    n, frames, bins = x.shape
    total = n if total is None else total
    if not 0 <= first <= total - n:
        raise ValueError(f"augment_windows: rows {first}..{first + n} are not within a batch of {total}")
    rows = slice(first, first + n)
    factor = torch.empty(total, 1, 1).uniform_(*WARP, generator=generator)[rows]
    position = (torch.arange(bins, dtype=x.dtype).view(1, 1, bins) * factor).clamp(0, bins - 1)
    low = position.floor().long()
    frac = position - low
    high = (low + 1).clamp(max=bins - 1)
    warped = (torch.gather(x, 2, low.expand(n, frames, bins)) * (1 - frac)
              + torch.gather(x, 2, high.expand(n, frames, bins)) * frac)

    def span(size: int, longest: int) -> torch.Tensor:
        start = torch.randint(0, size, (total, 1), generator=generator)[rows]
        length = torch.randint(0, longest + 1, (total, 1), generator=generator)[rows]
        index = torch.arange(size).view(1, size)
        return (index >= start) & (index < start + length)

    masked = span(bins, MAX_MASKED_BINS).view(n, 1, bins) | span(frames, MAX_MASKED_FRAMES).view(n, frames, 1)
    return torch.where(masked, warped.mean(dim=(1, 2), keepdim=True), warped)
