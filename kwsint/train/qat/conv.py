"""Streaming temporal-convolution KWS models and their fixed-point QAT (the 2023 paper), in PyTorch.

The architecture is the one microWakeWord deploys (``../shared/notes/streaming-conv-models.md``): microfrontend
feature frames (40 channels every 10 ms, ESPHome's int8 codes) go through

    a strided temporal conv (kernel ``first_kernel`` frames, stride ``stride``) + clipped ReLU,
    blocks of a depthwise temporal conv (kernel K, no activation) + a 1x1 conv + clipped ReLU,
        (a MixConv block splits the depthwise conv's channels into groups with kernels K1, K2, ...),
    a dense head on the last ``head_frames`` frames -> one logit -> LOGISTIC -> uint8 probability.

It is trained on whole windows (``receptive_field`` frames, the last of longer windows), which gives exactly the
output a stream computes at the invoke whose newest frame is the window's last (``kwsint.engine.graph.run_windows``;
tested against the streamed graph). ``to_graph()`` writes the streaming ``GraphSpec`` that kwsint's engine and TFLM
run (shift-register states between invokes).

Stages are those of the dense family (``model.STAGES``):

* ``"float"``: float weights ``gain * W``; exported by post-training quantization.
* ``"stage1"``: weights ``gain * q_z(tanh(W))`` with the STE, pulled to N(0, SIGMA_T^2) by the distribution
  regulariser and onto the grid by the absolute cosine regulariser (``quantizers.cosine_regularizer``).
* ``"stage2"``: every tensor the engine holds on its grid: the input (exactly, ESPHome's codes), weights, biases,
  every activation; in evaluation mode the model runs the integer graph itself, so its logits are the engine's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...engine.graph import (Concat, Conv, DepthwiseConv, FullyConnected, GraphSpec, Logistic, Quant, Quantize,
                             Slice, State, Tensor, Window, run_windows)
from ...engine.graph_detector import FEATURES_PER_FRAME, INPUT_SCALE, INPUT_ZERO_POINT
from ...engine.limits import BIAS_LIMIT
from ...engine.reference import ACC16_MAX, ACC16_X_MAX, LOGISTIC_OUTPUT_SCALE, LOGISTIC_OUTPUT_ZERO_POINT
from ...io.microfrontend import quantize_features
from .model import SIGMA_T, STAGES, Dense, asymmetric_range, init_weights, observe_range
from .quantizers import (distribution_regularizer, fake_quantize, grid_max, grid_penalty, on_gained_grid,
                         round_half_away, squash, ste, weight_codes)

ARCH = "conv"
ACC16_L1 = ACC16_MAX // ACC16_X_MAX
"""The accumulator bound on each row's integer weights: sum |w| <= 255, since 128 * 255 <= 32767 < 128 * 256."""


def _f32(x: float) -> float:
    return float(np.float32(x))


@dataclass(frozen=True)
class ConvConfig:
    """Shape and weight bits of a streaming conv model.

    Attributes:
        blocks: (depthwise kernel in frames after the stride, 1x1 output channels) of each block. A kernel may
            be a tuple of kernels (a MixConv block, as microWakeWord's): the block's input channels are split
            into that many groups (``mix_groups``), each with its own kernel.
        weight_bits: bits of each linear op's weights, 1..8, in order: the first conv, then the depthwise and
            the 1x1 conv of each block, then the head (2 + 2 * len(blocks) entries).
        first_channels: output channels of the first conv.
        first_kernel: its kernel, in feature frames (>= stride).
        stride: its stride: feature frames per invoke (ESPHome feeds 3, 30 ms).
        head_frames: frames of the last block's output the dense head reads.
        feature_dim: features per frame (the microfrontend's 40).
        relu_clip: upper end of the clipped ReLUs, real units (their int8 grid is relu_clip / 255, zero point
            -128).
        pow2_scales: every weight and activation scale a power of two (pure Q-format), so that every
            requantization but the first conv's is a shift (multiplier 2^30): the input scale is ESPHome's 26/255.
        acc16_ops: indices of the linear ops (as in ``weight_bits``) trained under the accumulator bound
            (``ACC16_L1``): every row's integer weights have sum |w| <= 255, so every partial sum of w * x over
            int8 codes stays inside int16 whatever the input (docs/arithmetic.md 5.6, whole rows).
        name: a label, e.g. "conv-s".
    """

    blocks: tuple[tuple[int, int], ...]
    weight_bits: tuple[int, ...]
    first_channels: int = 32
    first_kernel: int = 5
    stride: int = 3
    head_frames: int = 1
    feature_dim: int = FEATURES_PER_FRAME
    relu_clip: float = 6.0
    pow2_scales: bool = False
    acc16_ops: tuple[int, ...] = ()
    name: str = field(default="")

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "blocks", tuple((_kernel(k), int(c)) for k, c in self.blocks))
        except (TypeError, ValueError):
            raise ValueError(f"blocks: expected (kernel or kernels, channels) pairs of integers, got {self.blocks!r}"
                             ) from None
        object.__setattr__(self, "acc16_ops", tuple(sorted({int(i) for i in self.acc16_ops})))
        object.__setattr__(self, "weight_bits", tuple(int(b) for b in self.weight_bits))
        problems = self.problems()
        if problems:
            raise ValueError("; ".join(problems))

    def problems(self) -> list[str]:
        """What is wrong with this configuration (empty when valid), as "field: expected ..., got ..."."""
        p = []
        if not 1 <= len(self.blocks) <= 16 or any(not (all(1 <= k <= 64 for k in kernels(b)) and 1 <= b[1] <= 1024
                                                       and len(kernels(b)) <= 8) for b in self.blocks):
            p.append(f"blocks: expected 1..16 (kernel 1..64 or up to 8 kernels, channels 1..1024), got "
                     f"{list(self.blocks)}")
        if len(self.weight_bits) != 2 + 2 * len(self.blocks):
            p.append(f"weight_bits: expected {2 + 2 * len(self.blocks)} entries (first conv, depthwise and 1x1 "
                     f"per block, head), got {len(self.weight_bits)}")
        if any(not 1 <= b <= 8 for b in self.weight_bits):
            p.append(f"weight_bits: expected 1..8, got {list(self.weight_bits)}")
        if not 1 <= self.first_channels <= 1024:
            p.append(f"first_channels: expected 1..1024, got {self.first_channels}")
        if not 1 <= self.stride <= self.first_kernel <= 64:
            p.append(f"first_kernel, stride: expected 1 <= stride <= first_kernel <= 64, got {self.first_kernel}, "
                     f"{self.stride}")
        if not 1 <= self.head_frames <= 64:
            p.append(f"head_frames: expected 1..64, got {self.head_frames}")
        if not 1 <= self.feature_dim <= 1024:
            p.append(f"feature_dim: expected 1..1024, got {self.feature_dim}")
        if not (np.isfinite(self.relu_clip) and 0 < self.relu_clip <= 1e4):
            p.append(f"relu_clip: expected a positive finite value, got {self.relu_clip}")
        if not isinstance(self.pow2_scales, bool):
            p.append(f"pow2_scales: expected true or false, got {self.pow2_scales!r}")
        if any(not 0 <= i < 2 + 2 * len(self.blocks) for i in self.acc16_ops):
            p.append(f"acc16_ops: expected op indices 0..{1 + 2 * len(self.blocks)}, got {list(self.acc16_ops)}")
        if p:
            return p
        inputs = (self.first_channels, *(c for _, c in self.blocks[:-1]))
        split = [b for b, n in zip(self.blocks, inputs) if len(kernels(b)) > n]
        binary = [1 + 2 * b for b, block in enumerate(self.blocks)
                  if len(kernels(block)) > 1 and self.weight_bits[1 + 2 * b] == 1]
        if split:
            p.append(f"blocks: a MixConv block needs at least one input channel per kernel, got {split} on "
                     f"{list(inputs)} input channels")
        elif binary:  # 1-bit codes are signs: a group's unused taps would become +-1, not 0
            p.append(f"weight_bits: MixConv depthwise ops {binary} need 2..8 bits, got 1")
        else:
            ones = [i for i in self.acc16_ops if self.weight_bits[i] == 1 and self.fan_ins[i] > ACC16_L1]
            if ones:
                p.append(f"acc16_ops: ops {ones} have 1-bit weights (every code +-1) and more than {ACC16_L1} "
                         "weights per row, which the bound cannot hold")
        return p

    @property
    def fan_ins(self) -> tuple[int, ...]:
        """Weights per output channel of each linear op, in ``weight_bits``' order."""
        fans, channels = [self.first_kernel * self.feature_dim], self.first_channels
        for b in self.blocks:
            fans += [max(kernels(b)), channels]
            channels = b[1]
        return (*fans, self.head_frames * channels)

    @property
    def graph_ops(self) -> tuple[int, ...]:
        """The op index (``weight_bits``' order) of each linear op of the streaming graph, in graph order: a
        MixConv block's depthwise op is one graph op per group."""
        ops = [0]
        for b, block in enumerate(self.blocks):
            ops += [1 + 2 * b] * len(kernels(block)) + [2 + 2 * b]
        return (*ops, 1 + 2 * len(self.blocks))

    @property
    def act_bits(self) -> int:
        """Activation bits: 8 (the streaming graphs are int8 throughout)."""
        return 8

    @property
    def strided_frames(self) -> int:
        """Frames after the first conv that one output depends on."""
        return 1 + sum(max(kernels(b)) - 1 for b in self.blocks) + self.head_frames - 1

    @property
    def window_frames(self) -> int:
        """The receptive field in feature frames: the window the model reads."""
        return self.first_kernel + self.stride * (self.strided_frames - 1)

    @property
    def macs(self) -> int:
        """Multiply-accumulates per invoke (one output every ``stride`` feature frames)."""
        total, channels = self.first_kernel * self.feature_dim * self.first_channels, self.first_channels
        for b in self.blocks:
            total += sum(k * n for k, n in zip(kernels(b), mix_groups(channels, len(kernels(b))))) + channels * b[1]
            channels = b[1]
        return total + self.head_frames * channels

    def to_dict(self) -> dict:
        d = asdict(self)
        d["blocks"] = [[list(k) if isinstance(k, tuple) else k, c] for k, c in self.blocks]
        d["weight_bits"] = list(self.weight_bits)
        d["acc16_ops"] = list(self.acc16_ops)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ConvConfig:
        return cls(**d)

    def with_bits(self, weight_bits=None, act_bits=None, param_bits=None) -> ConvConfig:
        """A copy with other weight bits (an int for every op or a per-op sequence). ``act_bits`` may only be 8;
        ``param_bits`` does not apply (there is no batch norm)."""
        if act_bits not in (None, 8):
            raise ValueError(f"act bits: the conv models are int8 throughout, got {act_bits}")
        if param_bits is not None:
            raise ValueError("param bits: the conv models have no batch-norm affine")
        d = self.to_dict()
        if weight_bits is not None:
            d["weight_bits"] = [weight_bits] * len(self.weight_bits) if isinstance(weight_bits, int) else weight_bits
        return ConvConfig.from_dict(d)


def _kernel(k) -> int | tuple[int, ...]:
    """A block's kernel as stored: an int, or a tuple of two or more (a MixConv block)."""
    if isinstance(k, (list, tuple)):
        ks = tuple(int(x) for x in k)
        return ks[0] if len(ks) == 1 else ks
    return int(k)


def kernels(block: tuple) -> tuple[int, ...]:
    """The depthwise kernels of a block (one per channel group)."""
    return block[0] if isinstance(block[0], tuple) else (block[0],)


def mix_groups(channels: int, groups: int) -> list[int]:
    """The channels of each group of a MixConv block, as microWakeWord splits them: equal parts, the remainder
    to the first."""
    split = [channels // groups] * groups
    split[0] += channels - sum(split)
    return split


CONV_PRESETS = {
    "conv-s": dict(first_channels=32, blocks=((5, 32), (7, 48), (9, 64), (11, 64))),
    "conv-m": dict(first_channels=48, blocks=((5, 64), (7, 64), (9, 96), (11, 96), (13, 96))),
    "conv-mix": dict(first_channels=32, blocks=((5, 32), ((7, 11), 48), ((9, 15), 64), (11, 64))),
}
"""Preset shapes by name: about 18k, 44k and 18k MACs per invoke (microWakeWord's models have 21k-36k);
conv-mix has okay_nabu's two MixConv blocks (kernels 7 and 11, 9 and 15)."""


def conv_config(name: str, weight_bits: int = 8) -> ConvConfig:
    """A preset of ``CONV_PRESETS`` by name, every op at ``weight_bits``."""
    if name not in CONV_PRESETS:
        raise ValueError(f"unknown conv config {name!r}; choose from {', '.join(CONV_PRESETS)}")
    shape = CONV_PRESETS[name]
    return ConvConfig(weight_bits=(weight_bits,) * (2 + 2 * len(shape["blocks"])), name=name, **shape)


def _within_l1(r: torch.Tensor, codes: torch.Tensor, scale: torch.Tensor, q: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of ``codes`` whose sum |codes| exceeds ACC16_L1 rounded toward zero instead (in float64), which keeps
    sum |codes| <= sum |r| / scale <= ACC16_L1; a row that a last-bit rounding of the division still leaves over
    gets a scale larger by 2^-20 (never a power of two: dividing by one is exact). The bound is checked, never
    assumed."""
    for _ in range(4):
        over = codes.abs().sum(dim=1) > ACC16_L1
        if not bool(over.any()):
            return codes, scale
        trunc = torch.trunc(r.double() / scale.double()[:, None]).clamp(-q, q).to(codes.dtype)
        codes = torch.where(over[:, None], trunc, codes)
        still = codes.abs().sum(dim=1) > ACC16_L1
        scale = torch.where(still, scale * (1 + 2.0**-20), scale)
    if bool((codes.abs().sum(dim=1) > ACC16_L1).any()):
        raise ArithmeticError("accumulator bound: a row's codes exceed ACC16_L1 after rounding toward zero")
    return codes, scale


def _tap_mask(block: tuple, channels: int) -> torch.Tensor:
    """(channels, largest kernel) ones on the taps each MixConv group uses: the last ``k`` of its rows."""
    ks = kernels(block)
    mask = torch.zeros(channels, max(ks))
    start = 0
    for k, n in zip(ks, mix_groups(channels, len(ks))):
        mask[start:start + n, max(ks) - k:] = 1.0
        start += n
    return mask


def pow2_at_least(x: torch.Tensor) -> torch.Tensor:
    """The smallest power of two >= each value of ``x`` (> 0), exactly (float32 powers of two)."""
    return torch.pow(2.0, torch.ceil(torch.log2(x.double().clamp_min(2.0**-100)))).to(torch.float32)


def feature_codes(windows: torch.Tensor) -> torch.Tensor:
    """ESPHome's int8 input codes (int64) of float microfrontend features (uint16 values / 25.6), any shape."""
    return torch.from_numpy(quantize_features(windows.detach().cpu().numpy()).astype(np.int64))


def _logit_tensor(spec: GraphSpec) -> int:
    """The id of the logit tensor of a conv model's graph (the input of its Logistic)."""
    return next(op.input for op in spec.ops if isinstance(op, Logistic))


class ConvNet(nn.Module):
    """The streaming conv model of one ``ConvConfig`` in one of ``STAGES``.

    Input: float windows (B, frames >= window_frames, feature_dim) of microfrontend features.
    Output: float logits (B,); in stage 2 evaluation mode, the integer graph's logit dequantized.
    """

    arch = ARCH

    def __init__(self, config: ConvConfig, stage: str = "float"):
        super().__init__()
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
        self.config = config
        self.stage = stage
        c = config
        rows, channels = [c.first_channels], c.first_channels  # output channels of each op
        for _, out in c.blocks:
            rows += [channels, out]
            channels = out
        self.ops = nn.ModuleList(Dense(fan_in, n, True) for fan_in, n in zip(c.fan_ins, [*rows, 1]))
        # A MixConv block's depthwise op holds (channels, largest kernel) weights; a group with a shorter kernel
        # uses only the last taps of its rows (the newest frames), the others are masked to zero.
        self.tap_masks = {1 + 2 * b: _tap_mask(block, channels) for b, (block, channels)
                          in enumerate(zip(c.blocks, rows[1::2])) if len(kernels(block)) > 1}
        # Stage-2 state: the observed real ranges of each depthwise output and of the logit; zero until calibrated.
        self.register_buffer("dw_range", torch.zeros(len(c.blocks), 2))
        self.register_buffer("logit_range", torch.zeros(2))
        self.reset_weights(torch.Generator().manual_seed(0))

    # --- set-up -------------------------------------------------------------------------

    def reset_weights(self, generator: torch.Generator) -> None:
        """Initialise weights for this stage (``model.init_weights``)."""
        init_weights(self.ops, self.stage, generator)

    def set_normalization(self, features: np.ndarray) -> None:
        """Nothing to set: the input is ESPHome's fixed int8 grid (kept for the dense family's interface)."""

    @property
    def calibrated(self) -> bool:
        return bool(self.logit_range[1] > self.logit_range[0])

    # --- forward ------------------------------------------------------------------------

    def input_codes(self, windows: torch.Tensor) -> torch.Tensor:
        """The last ``window_frames`` frames of float windows as int8 input codes (int64 (B, frames, features))."""
        c = self.config
        if windows.ndim != 3 or windows.shape[1] < c.window_frames or windows.shape[2] != c.feature_dim:
            raise ValueError(f"windows: (N, >= {c.window_frames} frames, {c.feature_dim} features) expected by the "
                             f"model, got {tuple(windows.shape)}")
        return feature_codes(windows[:, windows.shape[1] - c.window_frames:])

    def quantized_weight(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Op i's weights (rows, fan-in) on their per-row grid with the STE gradient, and the scale (rows,).

        The grid is symmetric per row, on W (float stage: post-training quantization) or on tanh(W) (QAT); the
        gain multiplies both, so the scale of the codes is |gain| * grid scale. With ``pow2_scales`` the scale
        is the smallest power of two that keeps the row's largest weight on the grid. An op of ``acc16_ops``
        also takes a scale of at least sum |w| / ACC16_L1 and, in a row where rounding to nearest would still
        leave sum |codes| > ACC16_L1, rounds toward zero, which cannot (A2Q's rule), so the bound holds for
        every row by construction.
        """
        d = self.ops[i]
        src = self._masked(i, d.weight if self.stage == "float" else squash(d.weight))
        bits = self.config.weight_bits[i]
        acc16 = i in self.config.acc16_ops
        if not (self.config.pow2_scales or acc16):
            return on_gained_grid(src, d.gain, *weight_codes(src, bits))
        real = d.gain[:, None] * src
        r = real.detach()
        _, scale = weight_codes(r, bits)
        if acc16:
            scale = torch.maximum(scale, r.abs().sum(dim=1) / ACC16_L1)
        if self.config.pow2_scales:
            scale = pow2_at_least(scale)
        q = grid_max(bits)
        codes = round_half_away(r / scale[:, None]).clamp(-q, q)
        if bits == 1:
            codes = torch.where(r >= 0, 1.0, -1.0)
        elif acc16:
            codes, scale = _within_l1(r, codes, scale, q)
        return ste(real, codes * scale[:, None]), scale

    def _masked(self, i: int, w: torch.Tensor) -> torch.Tensor:
        return w * self.tap_masks[i] if i in self.tap_masks else w

    def _weight(self, i: int) -> torch.Tensor:
        d = self.ops[i]
        return d.gain[:, None] * self._masked(i, d.weight) if self.stage == "float" else self.quantized_weight(i)[0]

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        if self.stage == "stage2":
            if not self.training:
                spec = self.to_graph()
                logit = _logit_tensor(spec)
                codes = self.integer_outputs(windows, spec)[logit]
                q = spec.tensors[logit].quant
                return torch.from_numpy((codes[:, -1, 0].astype(np.float32) - q.zero_point) * np.float32(q.scale))
            return self._forward_fake_quant(windows, observe="ema")
        x = (self.input_codes(windows) - INPUT_ZERO_POINT).to(torch.float32) * INPUT_SCALE
        return self._run(x, [self._weight(i) for i in range(len(self.ops))], [d.bias for d in self.ops], None, None)

    def _run(self, x, weights, biases, act, observe) -> torch.Tensor:
        """The layers on real input (B, frames, features); ``act(kind, i, h, observe)`` quantizes each activation
        (stage 2) or is None (float ReLU clip only)."""
        c = self.config
        clip = c.relu_clip

        def relu(h, i):
            h = h.clamp(0.0, clip)
            return act("relu", i, h, observe) if act else h

        taps = x.unfold(1, c.first_kernel, c.stride).transpose(2, 3)  # (B, T', K, F)
        h = relu(taps.reshape(*taps.shape[:2], -1) @ weights[0].T + biases[0], 0)
        for b in range(len(c.blocks)):
            dw, pw = 1 + 2 * b, 2 + 2 * b
            h = (h.unfold(1, weights[dw].shape[1], 1) * weights[dw]).sum(-1) + biases[dw]  # (B, T', C, K) -> (B, T', C)
            if act:
                h = act("dw", b, h, observe)
            h = relu(h @ weights[pw].T + biases[pw], pw)
        head = len(self.ops) - 1
        z = h[:, h.shape[1] - c.head_frames:].reshape(len(h), -1) @ weights[head].T + biases[head]
        if act:
            z = act("logit", 0, z, observe)
        return z[:, 0]

    def _relu_grid(self) -> tuple[float, int]:
        """(scale, zero point) of a clipped-ReLU output: [0, relu_clip] over the int8 codes."""
        s = self.config.relu_clip / 255
        return (float(pow2_at_least(torch.tensor(s))) if self.config.pow2_scales else _f32(s)), -128

    def _range_grid(self, lo: float, hi: float) -> tuple[float, int]:
        """(scale, zero point) of an observed range [lo, hi] (``asymmetric_range``; with ``pow2_scales`` the
        scale is rounded up to a power of two and the zero point follows)."""
        scale, zp = asymmetric_range(lo, hi, 8)
        if not self.config.pow2_scales:
            return scale, zp
        scale = float(pow2_at_least(torch.tensor(scale)))
        lo = min(lo, 0.0)
        return scale, int(round_half_away(torch.tensor(-128 - lo / scale, dtype=torch.float64)).clamp(-128, 127))

    def _forward_fake_quant(self, windows: torch.Tensor, observe: str | None) -> torch.Tensor:
        """Stage 2: every tensor on the integer graph's grid, gradients by the STE."""
        x = (self.input_codes(windows) - INPUT_ZERO_POINT).to(torch.float32) * INPUT_SCALE
        weights, biases = [], []
        scales = self._input_scales()
        for i, d in enumerate(self.ops):
            w, ws = self.quantized_weight(i)
            step = scales[i] * ws
            weights.append(w)
            biases.append(ste(d.bias, round_half_away(d.bias / step) * step))

        def act(kind, i, h, observe):
            if kind == "relu":
                s, zp = self._relu_grid()
            else:
                buf = self.dw_range[i] if kind == "dw" else self.logit_range
                observe_range(buf, h, observe)
                s, zp = self._range_grid(*buf.tolist())
            return fake_quantize(h, s, zp, -128, 127)

        return self._run(x, weights, biases, act, observe)

    def _input_scales(self) -> list[float]:
        """The input scale of each op, as the graph holds it (float32 values)."""
        relu, _ = self._relu_grid()
        scales = [_f32(INPUT_SCALE)]
        for b in range(len(self.config.blocks)):
            scales += [relu, self._range_grid(*self.dw_range[b].tolist())[0]]
        return scales + [relu]

    def integer_outputs(self, windows: torch.Tensor, spec: GraphSpec | None = None) -> dict[int, np.ndarray]:
        """Every tensor of the integer graph on float windows (``run_windows``): what the engine computes."""
        spec = spec or self.to_graph()
        return run_windows(spec, self.input_codes(windows).numpy().astype(np.int8))

    # --- training -----------------------------------------------------------------------

    @staticmethod
    def loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Binary cross-entropy of the wakeword logit."""
        return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))

    @staticmethod
    def decisions(logits: torch.Tensor) -> torch.Tensor:
        """1 where the model says wakeword (logit > 0, probability > 0.5)."""
        return (logits > 0).to(torch.int64)

    @torch.no_grad()
    def calibrate(self, windows: torch.Tensor) -> None:
        """Sets every activation range from float windows (B, frames, features), op by op through the quantized
        model, so each range sees the rounding of the ops before it."""
        self._forward_fake_quant(windows, observe="set")

    def regularizer(self, lambda_sigma: float, lambda_mu: float, lambda_cos: float = 0.0) -> torch.Tensor:
        """Stages 1 and 2: the distribution regulariser on W plus ``lambda_cos`` times the absolute cosine
        regulariser on tanh(W)'s grid (``quantizers.grid_penalty``), summed over ops (0 for float)."""
        if self.stage == "float":
            return torch.zeros(())
        total = torch.zeros(())
        for i, d in enumerate(self.ops):
            bits = self.config.weight_bits[i]
            if i in self.tap_masks:  # over a MixConv op's used weights only, as if its groups were one op
                used = self.tap_masks[i].bool()
                total = total + (distribution_regularizer(d.weight[used], SIGMA_T, lambda_sigma, lambda_mu)
                                 + lambda_cos * grid_penalty(d.weight * used, bits) * (used.numel() / used.sum()))
            else:
                total = total + (distribution_regularizer(d.weight, SIGMA_T, lambda_sigma, lambda_mu)
                                 + lambda_cos * grid_penalty(d.weight, bits))
        return total

    # --- the integer graph --------------------------------------------------------------

    @torch.no_grad()
    def to_graph(self) -> GraphSpec:
        """The streaming graph: what ``kwsint.write_blob`` stores, kwsint's engine runs and TFLM runs.

        Float weights are quantized linearly per channel (post-training quantization), QAT weights as
        q_z(tanh(W)); the gain folds into the per-channel scale (its sign into the codes). Requires calibrated
        ranges (``calibrate``, or a stage-2 model).
        """
        if not self.calibrated:
            raise ValueError("the model has no activation ranges: calibrate it (or train stage 2) first")
        c = self.config
        g = _GraphBuilder()
        relu = Quant(*self._relu_grid())
        x = g.input(c.stride, c.feature_dim, Quant(_f32(INPUT_SCALE), INPUT_ZERO_POINT))
        scales = self._input_scales()
        h = g.window(x, c.first_kernel - c.stride)
        codes, ws, bias = self._op_codes(0, scales[0])
        h = g.op(Conv, h, 1, c.first_channels, relu, weights=codes.reshape(c.first_channels, c.first_kernel, -1),
                 bias=bias, weight_scale=ws, stride=c.stride, dilation=1, padding="valid", act_min=-128, act_max=127)
        channels = c.first_channels
        for b, block in enumerate(c.blocks):
            dw, pw = 1 + 2 * b, 2 + 2 * b
            out, ks = block[1], kernels(block)
            quant = Quant(*self._range_grid(*self.dw_range[b].tolist()))
            codes, ws, bias = self._op_codes(dw, scales[dw])
            h = g.window(h, max(ks) - 1)
            parts, start = [], 0
            for k, n in zip(ks, mix_groups(channels, len(ks))):  # one group, or a MixConv block's SPLIT_V
                rows = slice(start, start + n)
                x = h if len(ks) == 1 else g.slice(h, k, start, n)
                parts.append(g.op(DepthwiseConv, x, 1, n, quant, weights=codes[rows, codes.shape[1] - k:].T.copy(),
                                  bias=bias[rows], weight_scale=ws[rows], stride=1, dilation=1, padding="valid",
                                  act_min=-128, act_max=127))
                start += n
            h = parts[0] if len(parts) == 1 else g.concat(parts)
            codes, ws, bias = self._op_codes(pw, scales[pw])
            h = g.op(Conv, h, 1, out, relu, weights=codes.reshape(out, 1, channels), bias=bias, weight_scale=ws,
                     stride=1, dilation=1, padding="valid", act_min=-128, act_max=127)
            channels = out
        s, zp = self._range_grid(*self.logit_range.tolist())
        codes, ws, bias = self._op_codes(len(self.ops) - 1, scales[-1])
        logit = g.op(FullyConnected, g.window(h, c.head_frames - 1), 1, 1, Quant(s, zp), weights=codes, bias=bias,
                     weight_scale=ws, act_min=-128, act_max=127)
        p = g.op(Logistic, logit, 1, 1, Quant(LOGISTIC_OUTPUT_SCALE, LOGISTIC_OUTPUT_ZERO_POINT))
        out = g.op(Quantize, p, 1, 1, Quant(LOGISTIC_OUTPUT_SCALE, 0), dtype="uint8")
        return g.spec(out)

    def _op_codes(self, i: int, input_scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(int8 codes (rows, fan-in), float32 scales (rows,), int32 bias (rows,)) of op i."""
        d = self.ops[i]
        w, scale = self.quantized_weight(i)
        ws = scale.numpy().astype(np.float32)
        codes = round_half_away(w.double() / torch.from_numpy(ws.astype(np.float64))[:, None])
        step = np.float64(np.float32(input_scale)) * ws.astype(np.float64)
        limit = BIAS_LIMIT[8]
        bias = np.clip(round_half_away(torch.from_numpy(d.bias.double().numpy() / step)).numpy(), -limit, limit)
        return codes.numpy().astype(np.int8), ws, bias.astype(np.int32)


class _GraphBuilder:
    """Appends tensors, states and ops of a chain graph."""

    def __init__(self) -> None:
        self.tensors: list[Tensor] = []
        self.states: list[State] = []
        self.ops: list = []

    def _tensor(self, frames: int, channels: int, quant: Quant, dtype: str = "int8") -> int:
        self.tensors.append(Tensor(frames, channels, quant, dtype))
        return len(self.tensors) - 1

    def input(self, frames: int, channels: int, quant: Quant) -> int:
        self.first = self._tensor(frames, channels, quant)
        return self.first

    def window(self, x: int, frames: int) -> int:
        """``x`` preceded by a state of its last ``frames`` frames (x itself when frames is 0)."""
        if frames == 0:
            return x
        t = self.tensors[x]
        self.states.append(State(frames, t.channels, t.quant, np.full((frames, t.channels), t.quant.zero_point,
                                                                      np.int8)))
        out = self._tensor(frames + t.frames, t.channels, t.quant)
        self.ops.append(Window(state=len(self.states) - 1, input=x, out=out))
        return out

    def op(self, kind, x: int, frames: int, channels: int, quant: Quant, dtype: str = "int8", **fields) -> int:
        out = self._tensor(frames, channels, quant, dtype)
        self.ops.append(kind(input=x, out=out, **fields))
        return out

    def slice(self, x: int, frames: int, start: int, channels: int) -> int:
        """The last ``frames`` frames and channels [start, start + channels) of ``x``."""
        out = self._tensor(frames, channels, self.tensors[x].quant)
        self.ops.append(Slice(input=x, frames=frames, channel_start=start, channels=channels, out=out))
        return out

    def concat(self, parts: list[int]) -> int:
        """``parts`` side by side along channels (they share frames and quantization)."""
        t = self.tensors[parts[0]]
        out = self._tensor(t.frames, sum(self.tensors[i].channels for i in parts), t.quant)
        self.ops.append(Concat(inputs=tuple(parts), out=out))
        return out

    def spec(self, output: int) -> GraphSpec:
        return GraphSpec(tuple(self.tensors), tuple(self.states), tuple(self.ops), self.first, output)
