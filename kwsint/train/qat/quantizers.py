"""Fake quantizers of the 2-stage QAT (Zeng et al. 2022, section 4), in PyTorch.

Every quantizer returns values on the exact grid the exporter writes, with a
straight-through estimator (STE) for the gradient: the forward pass sees the
quantized value, the backward pass the identity (inside the clamp range).
Rounding is half away from zero, as the integer spec (docs/arithmetic.md).
"""

from __future__ import annotations

import torch

#: Standard deviation of the stage-1 target normal N(0, sigma_t^2) for the raw
#: weights W. tanh(W) is then closest to U(-1, 1): sigma = 0.85 minimises the
#: Kolmogorov-Smirnov distance between tanh(sigma * Z) and U(-1, 1) (about 0.01,
#: ``tanh_uniformity`` measures it), so a linear grid on tanh(W) is evenly used.
SIGMA_T = 0.85


def grid_max(bits: int) -> int:
    """Largest weight code of a ``bits``-bit symmetric narrow grid (1 for 1-bit {-1, +1})."""
    if not 1 <= bits <= 8:
        raise ValueError(f"weight bits must be in 1..8, got {bits}")
    return 1 if bits == 1 else (1 << (bits - 1)) - 1


def round_half_away(x: torch.Tensor) -> torch.Tensor:
    """Round to nearest, ties away from zero (C ``round``), exactly."""
    t = torch.trunc(x)
    return t + torch.where((x - t).abs() >= 0.5, torch.sign(x), torch.zeros_like(x))


def ste(x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """``q`` in the forward pass, the gradient of ``x`` in the backward pass."""
    return x + (q - x).detach()


def weight_codes(w: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-output-channel symmetric codes of a (N, K) weight matrix.

    b >= 2: ``scale[c] = max_k |w[c, k]| / q`` and ``codes = round(w / scale)`` in
    [-q, q], q = 2^(b-1) - 1. b == 1: ``codes = sign(w)`` (0 -> +1) and
    ``scale[c] = mean_k |w[c, k]|``, the L2-optimal binary scale (XNOR-Net).
    All-zero rows get scale 1 and codes 0 (1-bit: +1 with scale 0 would be
    unrepresentable, so they get scale 1e-30 and codes +1).

    Returns:
        (codes, scale): float tensors, codes (N, K) integer-valued, scale (N,) > 0.
    """
    q = grid_max(bits)
    w = w.detach()
    if bits == 1:
        codes = torch.where(w >= 0, 1.0, -1.0).to(w.dtype)
        scale = w.abs().mean(dim=1).clamp_min(1e-30)
        return codes, scale
    scale = w.abs().amax(dim=1) / q
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    codes = round_half_away(w / scale[:, None]).clamp(-q, q)
    return codes, scale


def quantize_weights(w: torch.Tensor, bits: int) -> torch.Tensor:
    """``codes * scale`` of ``weight_codes`` with the STE gradient of ``w``."""
    codes, scale = weight_codes(w, bits)
    return ste(w, codes * scale[:, None])


def on_gained_grid(src: torch.Tensor, gain: torch.Tensor, codes: torch.Tensor,
                   grid_scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights (N, K) ``gain * codes * grid_scale`` with the STE gradient of ``src`` (and the gain's), and the
    scale of the codes, ``|gain| * grid_scale`` (the gain's sign goes into the codes at export)."""
    w = gain[:, None] * ste(src, codes * grid_scale[:, None])
    return w, (gain.detach().abs() * grid_scale).clamp_min(1e-30)


def squash(w: torch.Tensor) -> torch.Tensor:
    """tanh(W) in W's dtype, computed in float64 and rounded once. A float32 tanh runs MKL's vector math,
    whose last bit depends on the CPU's instruction set (AVX-512 and AVX2 differ in about 1.5% of a
    model's weights), and an export must give the same blob on every machine."""
    return torch.tanh(w.double()).to(w.dtype)


def tanh_weights(w: torch.Tensor, bits: int) -> torch.Tensor:
    """Stage 1: q_z(tanh(W)), the squashed weights on the per-channel ``bits`` grid.

    The gradient is the STE through the grid times tanh'(W).
    """
    return quantize_weights(squash(w), bits)


def distribution_regularizer(w: torch.Tensor, sigma_t: float, lambda_sigma: float, lambda_mu: float) -> torch.Tensor:
    """lambda_sigma * (sigma_w - sigma_t)^2 + lambda_mu * mu_w^2 over all of one layer's weights."""
    sigma = w.std(unbiased=False)
    return lambda_sigma * (sigma - sigma_t) ** 2 + lambda_mu * w.mean() ** 2


def cosine_regularizer(u: torch.Tensor) -> torch.Tensor:
    """The absolute cosine regulariser on grid units: mean(1 - |cos(pi * u)|) over ``u = w / delta``.

    It is 0 where every value sits on the grid (an integer u) and 1 halfway between grid points; its gradient,
    d/du = pi * sin(pi * u) * sign(cos(pi * u)), is about pi^2 * (u - n) near the integer n, a pull toward the
    nearest grid point that vanishes on it (docs/qat.md).
    """
    return (1 - torch.cos(torch.pi * u).abs()).mean()


def grid_penalty(w: torch.Tensor, bits: int, per_row: bool = True) -> torch.Tensor:
    """``cosine_regularizer`` of tanh(W) in units of its grid step (per row of a (N, K) matrix, or one step for the
    whole matrix), as ``tanh_weights`` quantizes it; 0 for 1-bit weights, whose codes are signs, not a grid."""
    if bits == 1:
        return torch.zeros((), dtype=w.dtype)
    src = squash(w)
    peak = src.detach().abs().amax(dim=1, keepdim=True) if per_row else src.detach().abs().amax()
    return cosine_regularizer(src * grid_max(bits) / peak.clamp_min(1e-30))


def fake_quantize(x: torch.Tensor, scale: torch.Tensor | float, zero_point: int, qmin: int, qmax: int) -> torch.Tensor:
    """Real values on the activation grid: ``(clamp(round(x / s) + zp) - zp) * s``.

    The gradient is 1 where the value is inside the representable range and 0
    where it saturates (the clamp's own gradient), so clipped units stop learning.
    """
    s = torch.as_tensor(scale, dtype=x.dtype, device=x.device)
    lo, hi = (qmin - zero_point) * s, (qmax - zero_point) * s
    xc = torch.clamp(x, lo, hi)
    q = (round_half_away(xc / s).clamp(qmin - zero_point, qmax - zero_point)) * s
    return ste(xc, q)


def tanh_uniformity(sigma: float, samples: int = 200_000, seed: int = 0) -> float:
    """Kolmogorov-Smirnov distance between tanh(sigma * Z), Z ~ N(0, 1), and U(-1, 1)."""
    g = torch.Generator().manual_seed(seed)
    t, _ = torch.sort(torch.tanh(sigma * torch.randn(samples, generator=g, dtype=torch.float64)))
    ecdf = (torch.arange(samples, dtype=torch.float64) + 0.5) / samples
    return float(((t + 1) / 2 - ecdf).abs().max())


def asymmetric_range(lo: float, hi: float, act_bits: int) -> tuple[float, int]:
    """(scale, zero_point) covering [lo, hi] with 0.0 exactly representable (TFLite nudging).

    int8: 256 levels over [min(lo, 0), max(hi, 0)], integer zero point.
    int16: symmetric, zero point 0, scale max(|lo|, |hi|) / 32767.
    Scales are float32 values, at least 1e-6 so a dead channel cannot ask for an
    unbounded multiplier.
    """
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if act_bits == 16:
        return float(torch.tensor(max(-lo, hi, 1e-6 * 32767) / 32767, dtype=torch.float32)), 0
    scale = float(torch.tensor(max(hi - lo, 255e-6) / 255, dtype=torch.float32))
    zp = int(round_half_away(torch.tensor(-128 - lo / scale, dtype=torch.float64)).clamp(-128, 127))
    return scale, zp


__all__ = [
    "SIGMA_T", "asymmetric_range", "cosine_regularizer", "distribution_regularizer", "fake_quantize", "grid_max",
    "grid_penalty", "on_gained_grid", "quantize_weights", "round_half_away", "ste", "tanh_uniformity",
    "tanh_weights", "weight_codes",
]
