"""A streaming graph as data: the models TFLite Micro runs invoke by invoke (microWakeWord's), in kwsint's terms.

Every activation is an int8 tensor of ``frames`` x ``channels`` (TFLite's [1, frames, 1, channels]); the graph
output may be uint8. A graph has one input tensor (the new feature frames of one invoke), a list of states (shift
registers that persist between invokes), and a list of ops in execution order, each writing one new tensor:

* ``Window``   -- [state ; input] along time: the state's frames followed by the input's. The state then keeps
  the last ``state.frames`` frames of the result. TFLite's READ_VARIABLE -> CONCATENATION -> STRIDED_SLICE ->
  ASSIGN_VARIABLE.
* ``Slice``    -- the last ``frames`` frames and the channels [channel_start, channel_start + channels) of a
  tensor: STRIDED_SLICE (stride 1) and SPLIT_V.
* ``Concat``   -- tensors side by side along channels (CONCATENATION on the last axis).
* ``Conv``     -- CONV_2D with a K x 1 kernel in time (stride, dilation, VALID or SAME padding).
* ``DepthwiseConv`` -- DEPTHWISE_CONV_2D, K x 1, depth multiplier 1.
* ``FullyConnected`` -- FULLY_CONNECTED on the tensor flattened frame by frame; its output has 1 frame.
* ``Logistic`` -- LOGISTIC int8 -> int8 (output scale 1/256, zero point -128).
* ``Quantize`` -- QUANTIZE int8 -> int8 or uint8 (a requantization).

``docs/arithmetic.md`` (the streaming graph part) is the normative description of every field; the integers
derived from the float scales (multipliers, shifts, LOGISTIC's parameters) are not stored here but derived by
``kwsint.reference`` exactly as TFLM derives them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .metadata import ModelMetadata

PADDINGS = ("valid", "same")


@dataclass(frozen=True)
class Quant:
    """An activation's quantization: real = scale * (code - zero_point). ``scale`` is a float32 value."""

    scale: float
    zero_point: int


@dataclass(frozen=True)
class Tensor:
    """An activation tensor: ``frames`` x ``channels`` codes of ``dtype`` ("int8", or "uint8" for the output)."""

    frames: int
    channels: int
    quant: Quant
    dtype: str = "int8"


@dataclass(frozen=True)
class State:
    """A shift register of ``frames`` x ``channels`` int8 codes kept between invokes.

    ``init`` (int8, (frames, channels)) is its content when a stream starts; ``Stream.reset`` sets every code to
    ``quant.zero_point`` instead, as TFLM's ``reset()`` does (which does not re-run the init subgraph).
    """

    frames: int
    channels: int
    quant: Quant
    init: np.ndarray


@dataclass(frozen=True)
class Window:
    """tensors[out] = [states[state] ; tensors[input]] along time; then the state keeps the last frames."""

    state: int
    input: int
    out: int


@dataclass(frozen=True)
class Slice:
    """tensors[out] = the last ``frames`` frames, channels [channel_start, channel_start + channels), of input."""

    input: int
    frames: int
    channel_start: int
    channels: int
    out: int


@dataclass(frozen=True)
class Concat:
    """tensors[out] = the inputs side by side along channels (all with the output's frames and quantization)."""

    inputs: tuple[int, ...]
    out: int


@dataclass(frozen=True)
class Conv:
    """CONV_2D, K x 1 in time: weights int8 (Cout, K, Cin); bias int32 (Cout,); weight_scale float32 (Cout,)
    per channel, or (1,) per tensor; the output clamp [act_min, act_max] in output codes (the fused activation)."""

    input: int
    weights: np.ndarray
    bias: np.ndarray
    weight_scale: np.ndarray
    stride: int
    dilation: int
    padding: str
    act_min: int
    act_max: int
    out: int


@dataclass(frozen=True)
class DepthwiseConv:
    """DEPTHWISE_CONV_2D, K x 1 in time, depth multiplier 1: weights int8 (K, C); bias int32 (C,); weight_scale
    float32 (C,) or (1,)."""

    input: int
    weights: np.ndarray
    bias: np.ndarray
    weight_scale: np.ndarray
    stride: int
    dilation: int
    padding: str
    act_min: int
    act_max: int
    out: int


@dataclass(frozen=True)
class FullyConnected:
    """FULLY_CONNECTED on the input flattened frame by frame (frames * channels values): weights int8 (N, frames *
    channels); bias int32 (N,); weight_scale float32 (N,) or (1,). The output is 1 frame of N channels."""

    input: int
    weights: np.ndarray
    bias: np.ndarray
    weight_scale: np.ndarray
    act_min: int
    act_max: int
    out: int


@dataclass(frozen=True)
class Logistic:
    """LOGISTIC int8 -> int8; the output's quantization is (1/256, -128)."""

    input: int
    out: int


@dataclass(frozen=True)
class Quantize:
    """QUANTIZE: requantize the input's codes to the output's quantization and dtype."""

    input: int
    out: int


Op = Window | Slice | Concat | Conv | DepthwiseConv | FullyConnected | Logistic | Quantize


@dataclass(frozen=True)
class GraphSpec:
    """A streaming graph. ``tensors[input]`` holds one invoke's new frames, ``tensors[output]`` its result; every
    other tensor is written by exactly one op, before any op reads it."""

    tensors: tuple[Tensor, ...]
    states: tuple[State, ...]
    ops: tuple[Op, ...]
    input: int
    output: int
    metadata: ModelMetadata = field(default_factory=ModelMetadata)

    @property
    def macs(self) -> int:
        """Multiply-accumulates per invoke."""
        total = 0
        for op in self.ops:
            if isinstance(op, (Conv, DepthwiseConv)):
                frames = self.tensors[op.out].frames
                total += frames * op.weights.size
            elif isinstance(op, FullyConnected):
                total += op.weights.size
        return total
