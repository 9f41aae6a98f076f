"""The integer model as data: what a blob stores and what every backend runs.

A model is a front end (frame selection, float normalisation, QUANTIZE) followed
by a list of layers, each one TFLite builtin with its integer parameters:

* ``"dense"``  -- FULLY_CONNECTED, weights (N, K) codes, per-tensor or per-channel.
* ``"affine"`` -- DEPTHWISE_CONV_2D 1x1 with depth multiplier 1: one weight per
  channel, always per-channel (the batch-norm affine after the clipped ReLU).

The last layer is a dense layer with two outputs, the (not-wakeword, wakeword)
logits. ``docs/arithmetic.md`` is the normative description of every field.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..io.features import FbankOptions
from .metadata import ModelMetadata

LAYER_KINDS = ("dense", "affine")


@dataclass(frozen=True)
class Layer:
    """One integer layer.

    Attributes:
        kind: ``"dense"`` or ``"affine"``.
        weights: int8 codes on the ``weight_bits`` grid; shape (N, K) for dense,
            (N,) for affine. Codes lie in [-(2^(b-1)-1), 2^(b-1)-1] for b >= 2
            and in {-1, +1} for b == 1.
        weight_bits: 1..8.
        weight_scale: float32 (N,), real value of one weight code per channel
            (all equal when ``per_channel`` is False).
        bias: (N,) int32 for int8 activations, int64 for int16 activations,
            in units of input_scale * weight_scale[c].
        multiplier: int32 (N,), Q31 significand of the effective output scale.
        shift: int32 (N,), power-of-two exponent (positive = left shift).
        per_channel: whether weight scales (and multipliers) differ per channel.
        input_scale, output_scale: float32 real value of one activation step.
        input_zero_point, output_zero_point: activation zero points (0 for int16).
        act_min, act_max: the fused output clamp, in output codes.
        acc16_block: dense layers with int8 activations: log2 of the block of
            products per row that kernels may accumulate in int16, proven safe
            for these weights (``reference.acc16_log2_block``; 4..14), or 0 for
            int32 accumulation. Results are the same either way; only speed differs.
    """

    kind: str
    weights: np.ndarray
    weight_bits: int
    weight_scale: np.ndarray
    bias: np.ndarray
    multiplier: np.ndarray
    shift: np.ndarray
    per_channel: bool
    input_scale: float
    output_scale: float
    input_zero_point: int
    output_zero_point: int
    act_min: int
    act_max: int
    acc16_block: int = 0

    @property
    def in_size(self) -> int:
        return int(self.weights.shape[-1]) if self.kind == "dense" else int(self.weights.shape[0])

    @property
    def out_size(self) -> int:
        return int(self.weights.shape[0])

    @property
    def macs(self) -> int:
        """Multiply-accumulates per inference."""
        return int(self.weights.size)


@dataclass(frozen=True)
class Frontend:
    """How a float feature window becomes the quantized input vector.

    Attributes:
        window_frames: frames per window (81 in the paper).
        feature_dim: features per frame (20 LFBE).
        frame_stride: downsampling factor (3); frames ``offset::stride`` are used,
            with ``offset = (window_frames - 1) % frame_stride`` so that the newest
            frame is always included.
        mean, inv_std: float32 (feature_dim,), global normalisation:
            ``y = (x - mean) * inv_std`` in float32.
        input_scale, input_zero_point: QUANTIZE parameters of the input tensor.
        fbank: the LFBE settings the model was trained with, used to compute
            features from audio; ``None`` (the default) means
            ``FbankOptions(num_mel_bins=feature_dim)``, Kaldi's usual settings.
            A blob requires ``fbank.num_mel_bins == feature_dim``.
    """

    window_frames: int
    feature_dim: int
    frame_stride: int
    mean: np.ndarray
    inv_std: np.ndarray
    input_scale: float
    input_zero_point: int
    fbank: FbankOptions | None = None

    def __post_init__(self):
        if self.fbank is None:
            object.__setattr__(self, "fbank", FbankOptions(num_mel_bins=self.feature_dim))

    @property
    def frame_offset(self) -> int:
        return (self.window_frames - 1) % self.frame_stride

    @property
    def selected_frames(self) -> int:
        return (self.window_frames - 1) // self.frame_stride + 1

    @property
    def input_size(self) -> int:
        return self.selected_frames * self.feature_dim


@dataclass(frozen=True)
class ModelSpec:
    """A whole integer model.

    Attributes:
        act_bits: 8 (int8 activations with zero points) or 16 (int16, zero point 0).
        frontend: the float -> integer input stage.
        layers: dense/affine layers; the last is dense with 2 outputs.
        posterior_multiplier, posterior_shift: requantize the logit difference
            (wakeword - other) to Q12 real units, i.e. quantize_multiplier of
            ``output_scale * 4096``; see ``docs/arithmetic.md``.
        name: a label for reports (not stored in the blob).
        metadata: the wake phrase, the recommended operating point and the
            provenance the blob carries (``kwsint.engine.metadata``).
    """

    act_bits: int
    frontend: Frontend
    layers: tuple[Layer, ...]
    posterior_multiplier: int
    posterior_shift: int
    name: str = field(default="")
    metadata: ModelMetadata = field(default_factory=ModelMetadata)

    @property
    def act_dtype(self) -> type:
        return np.int8 if self.act_bits == 8 else np.int16

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)
