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


def augment_windows(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Warped and masked copies of float windows (N, frames, bins): raw log-mel values, the model's input."""
    n, frames, bins = x.shape
    factor = torch.empty(n, 1, 1).uniform_(*WARP, generator=generator)
    position = (torch.arange(bins, dtype=x.dtype).view(1, 1, bins) * factor).clamp(0, bins - 1)
    low = position.floor().long()
    frac = position - low
    high = (low + 1).clamp(max=bins - 1)
    warped = (torch.gather(x, 2, low.expand(n, frames, bins)) * (1 - frac)
              + torch.gather(x, 2, high.expand(n, frames, bins)) * frac)

    def span(size: int, longest: int) -> torch.Tensor:
        start = torch.randint(0, size, (n, 1), generator=generator)
        length = torch.randint(0, longest + 1, (n, 1), generator=generator)
        index = torch.arange(size).view(1, size)
        return (index >= start) & (index < start + length)

    masked = span(bins, MAX_MASKED_BINS).view(n, 1, bins) | span(frames, MAX_MASKED_FRAMES).view(n, frames, 1)
    return torch.where(masked, warped.mean(dim=(1, 2), keepdim=True), warped)
