"""The paper's streaming, state-free feed-forward KWS model and its 2-stage QAT, in PyTorch.

Architecture (Zeng et al. 2022, sections 2 and 4): the window's selected frames,
globally mean/variance normalised, go through hidden blocks

    dense (W, per-channel gain alpha, bias) -> clipped ReLU [0, relu_clip] -> batch norm

and a final dense layer with two logits (not-wakeword, wakeword). Batch norm
comes *after* the activation, as the paper prescribes for quantization; in the
integer model it is the per-channel affine (DEPTHWISE_CONV_2D 1x1) of
``docs/arithmetic.md``.

Stages (``KWSNet.stage``):

* ``"float"``: the M0 baseline, weights ``alpha * W``.
* ``"stage1"``: weights ``alpha * q_z(tanh(W))`` with the STE, W initialised
  from N(0, SIGMA_T^2) and pulled toward it by the distribution regulariser;
  everything else float.
* ``"stage2"``: also the input, biases, batch-norm affine and activations on
  the integer model's grids (fake quantization with the STE, observed ranges
  tracked by moving averages). In evaluation mode a stage-2 model runs the
  integer model itself (``kwsint.train.qat.integer``), so its logits are exactly the
  engine's.

``to_spec()`` turns the model into the integer ``ModelSpec`` that
``kwsint.write_blob`` stores; the fake-quantized forward pass uses the same
grids and scales, so training sees what the engine will compute.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...engine.limits import BIAS_LIMIT
from ...engine.modelspec import Frontend, Layer, ModelSpec
from ...engine.reference import dense_multipliers, quantize_multiplier, with_acc16_blocks
from .. import generate
from . import integer
from .quantizers import (SIGMA_T, asymmetric_range, distribution_regularizer, fake_quantize, grid_max, grid_penalty,
                         on_gained_grid, round_half_away, squash, ste, weight_codes)

STAGES = ("float", "stage1", "stage2")
BN_EPS = 1e-5
#: Quantiles of an activation tensor taken as its range when calibrating and observing.
RANGE_QUANTILE = 1e-4
#: Momentum of the moving-average activation ranges during stage-2 training.
RANGE_MOMENTUM = 0.05


def _f32(x: float) -> float:
    return float(np.float32(x))


@dataclass(frozen=True)
class NetConfig:
    """Shape and bit widths of a model.

    Attributes:
        sizes: hidden layer widths (each a dense + clipped ReLU + batch-norm block).
        weight_bits: bits of each dense layer's weights, len(sizes) + 1 entries, 1..8.
        act_bits: 8 (int8 activations and input) or 16 (int16, zero point 0).
        param_bits: bits of the batch-norm affine weights, 2..8.
        window_frames, feature_dim, frame_stride: the input window (81 x 20, every 3rd frame).
        relu_clip: upper end of the clipped ReLU, in real units (its output scale
            is relu_clip / 255 for int8, relu_clip / 32767 for int16).
        per_channel: one weight grid and gain per output channel (True), or one
            per dense layer (False: what TFLM's INT4 FULLY_CONNECTED requires).
        name: a label, e.g. "M4".
    """

    sizes: tuple[int, ...]
    weight_bits: tuple[int, ...]
    act_bits: int = 8
    param_bits: int = 8
    window_frames: int = 81
    feature_dim: int = 20
    frame_stride: int = 3
    relu_clip: float = 6.0
    per_channel: bool = True
    name: str = field(default="")

    def __post_init__(self) -> None:
        object.__setattr__(self, "sizes", tuple(int(s) for s in self.sizes))
        object.__setattr__(self, "weight_bits", tuple(int(b) for b in self.weight_bits))
        problems = self.problems()
        if problems:
            raise ValueError("; ".join(problems))

    def problems(self) -> list[str]:
        """What is wrong with this configuration (empty when valid), as "field: expected ..., got ..."."""
        p = []
        if len(self.sizes) > 31 or any(not 1 <= s <= 16384 for s in self.sizes):
            p.append(f"sizes: expected at most 31 hidden layers of 1..16384, got {list(self.sizes)}")
        if len(self.weight_bits) != len(self.sizes) + 1:
            p.append(f"weight_bits: expected {len(self.sizes) + 1} entries (one per dense layer), "
                     f"got {len(self.weight_bits)}")
        if any(not 1 <= b <= 8 for b in self.weight_bits):
            p.append(f"weight_bits: expected 1..8, got {list(self.weight_bits)}")
        if self.act_bits not in (8, 16):
            p.append(f"act_bits: expected 8 or 16, got {self.act_bits}")
        if not 2 <= self.param_bits <= 8:
            p.append(f"param_bits: expected 2..8, got {self.param_bits}")
        if not (1 <= self.frame_stride <= self.window_frames <= 4096 and 1 <= self.feature_dim <= 1024):
            p.append(f"window: expected 1 <= frame_stride <= window_frames <= 4096 and 1 <= feature_dim <= 1024, "
                     f"got {self.window_frames} x {self.feature_dim} / {self.frame_stride}")
        if not isinstance(self.per_channel, bool):
            p.append(f"per_channel: expected true or false, got {self.per_channel!r}")
        if not (np.isfinite(self.relu_clip) and 0 < self.relu_clip <= 1e4):
            p.append(f"relu_clip: expected a positive finite value, got {self.relu_clip}")
        return p

    @property
    def input_size(self) -> int:
        return ((self.window_frames - 1) // self.frame_stride + 1) * self.feature_dim

    def to_dict(self) -> dict:
        d = asdict(self)
        d["sizes"], d["weight_bits"] = list(self.sizes), list(self.weight_bits)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> NetConfig:
        return cls(**d)

    def with_bits(self, weight_bits=None, act_bits=None, param_bits=None) -> NetConfig:
        """A copy with other bit widths (weight_bits: an int for every layer or a per-layer sequence)."""
        d = self.to_dict()
        if weight_bits is not None:
            d["weight_bits"] = [weight_bits] * len(self.weight_bits) if isinstance(weight_bits, int) else weight_bits
        if act_bits is not None:
            d["act_bits"] = act_bits
        if param_bits is not None:
            d["param_bits"] = param_bits
        return NetConfig.from_dict(d)


def quantile(x: torch.Tensor, q: float) -> torch.Tensor:
    """``torch.quantile(x, q)`` of a 1-D tensor, bit for bit (the same ranks and lerp), by two selections
    (``kthvalue``) instead of a sort: stage 2 observes several ranges per step."""
    rank = torch.tensor(q, dtype=x.dtype) * (x.numel() - 1)
    below, above = int(rank.floor()), int(rank.ceil())
    lo = torch.kthvalue(x, below + 1).values
    hi = lo if above == below else torch.kthvalue(x, above + 1).values
    return torch.lerp(lo, hi, rank - rank.floor())


def observe_range(buf: torch.Tensor, x: torch.Tensor, observe: str | None) -> None:
    """Track the (low, high) quantile range of ``x`` in ``buf``: ``"set"`` replaces it, ``"ema"`` moves it by
    RANGE_MOMENTUM, None leaves it."""
    if observe is None:
        return
    x = x.detach().reshape(-1).double()
    if x.numel() > 1 << 22:
        x = x[torch.linspace(0, x.numel() - 1, 1 << 22, dtype=torch.int64)]
    rng = torch.stack([quantile(x, RANGE_QUANTILE), quantile(x, 1 - RANGE_QUANTILE)]).to(buf.dtype)
    if observe == "set":
        buf.copy_(rng)
    else:
        buf.mul_(1 - RANGE_MOMENTUM).add_(RANGE_MOMENTUM * rng)


def paper_config(name: str) -> NetConfig:
    """The paper's configurations by name: M0 (the float baseline, exported at 8 bits) .. M6."""
    if name == "M0":
        return NetConfig(generate.PAPER_SIZES, (8,) * 7, act_bits=8, name="M0")
    if name not in generate.CONFIGS:
        raise ValueError(f"unknown config {name!r}; choose from M0, {', '.join(generate.CONFIGS)}")
    c = generate.CONFIGS[name]
    bits = c["weight_bits"]
    bits = (bits,) * (len(c["sizes"]) + 1) if isinstance(bits, int) else tuple(bits)
    return NetConfig(c["sizes"], bits, act_bits=c["act_bits"], name=name)


class Dense(nn.Module):
    """y = alpha * (W' x) + b with W' = W (float), or q_z(tanh(W)) (stages 1 and 2).

    The gain alpha has one entry per output channel, or one for the layer.
    """

    def __init__(self, in_size: int, out_size: int, per_channel: bool):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_size, in_size))
        self.gain = nn.Parameter(torch.ones(out_size if per_channel else 1))
        self.bias = nn.Parameter(torch.zeros(out_size))


def init_weights(layers: Iterable[Dense], stage: str, generator: torch.Generator) -> None:
    """Initialise each layer for its stage: Kaiming-uniform weights and gain 1 (float), or W from
    N(0, SIGMA_T^2) with a gain that gives the squashed weights a pre-activation spread of about 1 (QAT);
    biases 0."""
    with torch.no_grad():
        for d in layers:
            fan_in = d.weight.shape[1]
            if stage == "float":
                bound = np.sqrt(6.0 / fan_in)
                d.weight.uniform_(-bound, bound, generator=generator)
                d.gain.fill_(1.0)
            else:
                d.weight.normal_(0.0, SIGMA_T, generator=generator)
                # tanh(W) has an RMS of ~0.58: scale so pre-activations start with unit-ish spread.
                rms = float(squash(d.weight).pow(2).mean().sqrt().clamp_min(1e-3))
                d.gain.fill_(float(np.sqrt(2.0 / fan_in)) / rms)
            d.bias.zero_()


class KWSNet(nn.Module):
    """The KWS model of one ``NetConfig`` in one of ``STAGES``.

    Input: float windows (B, window_frames, feature_dim) of raw LFBE features.
    Output: float logits (B, 2); in stage 2 evaluation mode, the integer model's
    logits dequantized (``integer_logits`` gives the integers).
    """

    arch = "dense"

    def __init__(self, config: NetConfig, stage: str = "float"):
        super().__init__()
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
        self.config = config
        self.stage = stage
        sizes = (config.input_size, *config.sizes, 2)
        self.dense = nn.ModuleList(Dense(a, b, config.per_channel) for a, b in zip(sizes[:-1], sizes[1:]))
        self.norms = nn.ModuleList(nn.BatchNorm1d(h, eps=BN_EPS) for h in config.sizes)
        f = config.feature_dim
        self.register_buffer("feature_mean", torch.zeros(f))
        self.register_buffer("feature_inv_std", torch.ones(f))
        # Stage-2 quantization state: input clip C_input, and the observed real ranges of each
        # batch-norm output and of the logits. Zero until calibrated.
        self.register_buffer("input_clip", torch.zeros(()))
        self.register_buffer("bn_range", torch.zeros(len(config.sizes), 2))
        self.register_buffer("logit_range", torch.zeros(2))
        self.reset_weights(torch.Generator().manual_seed(0))

    # --- set-up -------------------------------------------------------------------------

    def reset_weights(self, generator: torch.Generator) -> None:
        """Initialise weights for this stage (``init_weights``)."""
        init_weights(self.dense, self.stage, generator)

    def set_normalization(self, features: np.ndarray) -> None:
        """Global mean/variance normalisation from training features (..., feature_dim), float32."""
        x = np.asarray(features, dtype=np.float64).reshape(-1, self.config.feature_dim)
        std = np.maximum(x.std(axis=0), 1e-3)
        self.feature_mean.copy_(torch.from_numpy(x.mean(axis=0).astype(np.float32)))
        self.feature_inv_std.copy_(torch.from_numpy((1.0 / std).astype(np.float32)))

    @property
    def calibrated(self) -> bool:
        return bool(self.input_clip > 0)

    # --- forward ------------------------------------------------------------------------

    def normalize(self, windows: torch.Tensor) -> torch.Tensor:
        """Selected frames of (B, W, F) windows, normalised in float32, flattened frame-major: (B, input_size)."""
        return integer.normalize_window(windows, self.config.frame_stride, self.feature_mean, self.feature_inv_std)

    def quantized_weight(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Dense layer i's weights on their grid: (real weights (N, K) with the STE gradient, scale (N,)).

        The grid is symmetric, per channel or per layer, on W (float stage:
        post-training quantization) or on tanh(W) (QAT); the gain multiplies
        both, so the scale of the codes is |alpha| * grid scale.
        """
        d = self.dense[i]
        src = d.weight if self.stage == "float" else squash(d.weight)
        w, scale = on_gained_grid(src, d.gain, *self._codes(src, i))
        return w, scale.expand(src.shape[0])

    def _codes(self, src: torch.Tensor, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """weight_codes per row, or over the whole matrix (scale of shape (1,)) for per-layer grids."""
        bits = self.config.weight_bits[i]
        if self.config.per_channel:
            return weight_codes(src, bits)
        codes, scale = weight_codes(src.reshape(1, -1), bits)
        return codes.reshape(src.shape), scale

    def effective_weight(self, i: int) -> torch.Tensor:
        """Dense layer i's real weights as the float and stage-1 forward passes use them (N, K)."""
        d = self.dense[i]
        if self.stage == "float":
            return d.gain[:, None] * d.weight
        return self.quantized_weight(i)[0]

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        if self.stage == "stage2":
            if not self.training:
                spec = self.to_spec()
                q = integer.forward(spec, windows)
                out = spec.layers[-1]
                return (q - out.output_zero_point).to(torch.float32) * out.output_scale
            return self._forward_fake_quant(windows, observe="ema")
        h = self.normalize(windows)
        for i, d in enumerate(self.dense):
            h = h @ self.effective_weight(i).T + d.bias
            if i < len(self.norms):
                h = self.norms[i](h.clamp(0.0, self.config.relu_clip))
        return h

    def integer_logits(self, windows: torch.Tensor) -> torch.Tensor:
        """The integer model's logits (B, 2), int64: what the engine computes for these windows."""
        return integer.forward(self.to_spec(), windows)

    def _act_grid(self) -> tuple[int, int]:
        return (-128, 127) if self.config.act_bits == 8 else (-32768, 32767)

    def _relu_grid(self) -> tuple[float, int]:
        """(scale, zero point) of a clipped-ReLU output: [0, relu_clip] over the whole code range."""
        qmin, qmax = self._act_grid()
        if self.config.act_bits == 8:
            return _f32(self.config.relu_clip / (qmax - qmin)), qmin
        return _f32(self.config.relu_clip / qmax), 0

    def _observe(self, buf: torch.Tensor, x: torch.Tensor, observe: str | None) -> None:
        observe_range(buf, x, observe)

    def _bn_affine(self, i: int) -> tuple[torch.Tensor, torch.Tensor, float]:
        """Batch norm i as the integer affine's real parameters: (a codes, b, grid scale of a).

        ``a = gamma / sqrt(var + eps)`` goes on one symmetric ``param_bits`` grid
        per layer. The grid spans the channels whose input varies by more than
        one activation step: a channel that is (nearly) constant, e.g. a dead
        ReLU unit, may have a huge ``a`` that would otherwise flatten every
        other channel's codes. Saturating it costs nothing because
        ``b = beta - a_q * mean`` is folded with the *quantized* ``a``, so a
        constant input still maps exactly to ``beta``. Running statistics are
        constants in stage 2 (and at export).
        """
        bn = self.norms[i]
        q = grid_max(self.config.param_bits)
        # sqrt in float64, rounded once: torch's float32 sqrt is not correctly rounded, and its last bit
        # depends on the CPU's instruction set (see quantizers.squash)
        a = bn.weight / torch.sqrt((bn.running_var + bn.eps).double()).float()
        live = bn.running_var > self._relu_grid()[0] ** 2
        ref = a.detach()[live] if bool(live.any()) else a.detach()
        sa = _f32(float(ref.abs().max().clamp_min(1e-30)) / q)
        codes = round_half_away(a.detach() / sa).clamp(-q, q)
        a_q = ste(a, codes * sa)
        return a_q, bn.bias - a_q * bn.running_mean, sa

    def _forward_fake_quant(self, windows: torch.Tensor, observe: str | None) -> torch.Tensor:
        """Stage 2: every tensor on the integer model's grid, gradients by the STE."""
        c = self.config
        qmin, qmax = self._act_grid()
        x = self.normalize(windows)
        s_in = _f32(float(self.input_clip) / qmax)
        h = fake_quantize(x, s_in, 0, qmin, qmax)
        relu_scale, relu_zp = self._relu_grid()
        for i, d in enumerate(self.dense):
            w, ws = self.quantized_weight(i)
            step = s_in * ws
            b = ste(d.bias, round_half_away(d.bias / step) * step)
            h = h @ w.T + b
            if i == len(self.norms):
                self._observe(self.logit_range, h, observe)
                s, zp = asymmetric_range(*self.logit_range.tolist(), c.act_bits)
                return fake_quantize(h, s, zp, qmin, qmax)
            h = fake_quantize(h, relu_scale, relu_zp, qmin, qmax)
            a_q, bb, sa = self._bn_affine(i)
            bstep = relu_scale * sa
            h = a_q * h + ste(bb, round_half_away(bb / bstep) * bstep)
            self._observe(self.bn_range[i], h, observe)
            s_in, zp = asymmetric_range(*self.bn_range[i].tolist(), c.act_bits)
            h = fake_quantize(h, s_in, zp, qmin, qmax)
        raise AssertionError("unreachable: the last dense layer returns")

    # --- quantization -------------------------------------------------------------------

    @torch.no_grad()
    def calibrate(self, windows: torch.Tensor) -> None:
        """Sets the input clip and every activation range from float windows (B, W, F).

        The input clip C_input is the 1 - RANGE_QUANTILE quantile of |normalised
        input|; each batch-norm output and the logits get the quantile range of
        their values, layer by layer through the quantized model, so each range
        sees the rounding of the layers before it.
        """
        x = self.normalize(windows).reshape(-1).double()
        clip = torch.quantile(x.abs()[: 1 << 22], 1 - RANGE_QUANTILE)
        self.input_clip.fill_(float(max(clip, 1e-3)))
        self._forward_fake_quant(windows, observe="set")

    def regularizer(self, lambda_sigma: float, lambda_mu: float, lambda_cos: float = 0.0) -> torch.Tensor:
        """Stages 1 and 2: the distribution regulariser on W plus ``lambda_cos`` times the absolute cosine
        regulariser on tanh(W)'s grid (``quantizers.grid_penalty``), summed over dense layers (0 for float)."""
        if self.stage == "float":
            return torch.zeros(())
        return sum(distribution_regularizer(d.weight, SIGMA_T, lambda_sigma, lambda_mu)
                   + lambda_cos * grid_penalty(d.weight, self.config.weight_bits[i], self.config.per_channel)
                   for i, d in enumerate(self.dense))

    @staticmethod
    def loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the two logits (not-wakeword, wakeword)."""
        return F.cross_entropy(logits, labels)

    @staticmethod
    def decisions(logits: torch.Tensor) -> torch.Tensor:
        """1 where the model says wakeword (logit 1 above logit 0)."""
        return logits.argmax(dim=1)

    @torch.no_grad()
    def to_spec(self) -> ModelSpec:
        """The integer model: what ``kwsint.write_blob`` stores and every backend runs.

        Float-stage weights are quantized linearly per channel (post-training
        quantization), QAT weights as q_z(tanh(W)); the gain folds into the
        per-channel weight scale (its sign into the codes). Requires calibrated
        ranges (``calibrate``, or a stage-2 model).
        """
        if not self.calibrated:
            raise ValueError("the model has no activation ranges: calibrate it (or train stage 2) first")
        c = self.config
        qmin, qmax = self._act_grid()
        bias_dtype = np.int32 if c.act_bits == 8 else np.int64
        limit = BIAS_LIMIT[c.act_bits]
        s_in = _f32(float(self.input_clip) / qmax)
        frontend = Frontend(c.window_frames, c.feature_dim, c.frame_stride,
                            self.feature_mean.numpy().astype(np.float32),
                            self.feature_inv_std.numpy().astype(np.float32),
                            s_in, 0)
        relu_scale, relu_zp = self._relu_grid()
        layers: list[Layer] = []
        zp = 0
        for i, d in enumerate(self.dense):
            src = d.weight if self.stage == "float" else squash(d.weight)
            codes, grid_scale = self._codes(src, i)  # float32, as in training
            codes = codes * torch.where(d.gain < 0, -1.0, 1.0)[:, None]
            ws = (d.gain.abs() * grid_scale).clamp_min(1e-30).expand(src.shape[0]).numpy().astype(np.float32)
            last = i == len(self.norms)
            if last:
                out_scale, out_zp = asymmetric_range(*self.logit_range.tolist(), c.act_bits)
                act_min = qmin
            else:
                out_scale, out_zp = relu_scale, relu_zp
                act_min = relu_zp
            layers.append(self._layer("dense", codes, c.weight_bits[i], ws, d.bias.double().numpy(), s_in, zp,
                                      out_scale, out_zp, act_min, qmax, bias_dtype, limit, c.per_channel))
            s_in, zp = out_scale, out_zp
            if last:
                break
            a_q, bb, sa = self._bn_affine(i)
            acodes = round_half_away(a_q.double() / sa)
            out_scale, out_zp = asymmetric_range(*self.bn_range[i].tolist(), c.act_bits)
            layers.append(self._layer("affine", acodes, c.param_bits, np.full(a_q.numel(), sa, np.float32),
                                      bb.double().numpy(), s_in, zp, out_scale, out_zp, qmin, qmax, bias_dtype,
                                      limit, True))
            s_in, zp = out_scale, out_zp
        post = quantize_multiplier(float(np.float64(np.float32(layers[-1].output_scale)) * 4096.0))
        return with_acc16_blocks(ModelSpec(c.act_bits, frontend, tuple(layers), post[0], post[1], name=c.name))

    @staticmethod
    def _layer(kind, codes, bits, ws, bias_real, s_in, zp, s_out, out_zp, act_min, act_max, bias_dtype, limit,
               per_channel):
        step = np.float64(np.float32(s_in)) * ws.astype(np.float64)
        bias = np.clip(round_half_away(torch.from_numpy(bias_real / step)).numpy(), -limit, limit)
        mult, shift = dense_multipliers(s_in, ws, s_out)
        return Layer(kind=kind, weights=codes.numpy().astype(np.int8), weight_bits=bits, weight_scale=ws,
                     bias=bias.astype(bias_dtype), multiplier=mult, shift=shift, per_channel=per_channel,
                     input_scale=float(np.float32(s_in)), output_scale=float(np.float32(s_out)),
                     input_zero_point=int(zp), output_zero_point=int(out_zp), act_min=int(act_min),
                     act_max=int(act_max))
