"""int16 against int32 accumulation on the streaming conv model's layers (conv-s), per backend, side by side.

    .venv/bin/python -m pytest benchmarks/test_conv_acc16.py --benchmark-only -s

Each linear op of conv-s (the first conv, each block's depthwise and 1x1 conv, the head) is a one-op graph whose
input holds exactly one output frame's window, run by the C engine (``GraphStream.time_invoke``: no Python in the
loop). Its weights are 4-bit codes under the accumulator bound (every row 128 * sum |w| <= 32767, so the engine
runs it on int16 sums, ``GraphModel.acc16_ops``); its twin has the same codes with one unit more in one row, past
the bound, so the engine runs the int32 kernels on the same shapes: the only difference is the accumulation
width. Rounds of ROUND_INVOKES invokes alternate between the twins, ROUNDS times; the table gives the median
ticks per invoke and the ratio int32 / int16 (above 1: int16 is faster), and the sum over the layers (conv-s
per invoke without the data movement between them).
"""

from __future__ import annotations

import numpy as np
import pytest

import kwsint
from kwsint.engine.graph import Conv, DepthwiseConv, FullyConnected, GraphSpec, Quant, Tensor
from kwsint.engine.graph_model import GraphModel

ROUNDS = 15
ROUND_INVOKES = 2000
FIRST = (5, 40, 32, 3)  # conv-s: first conv kernel, features, channels, stride
BLOCKS = ((5, 32), (7, 48), (9, 64), (11, 64))


def _bounded(rng: np.random.Generator, rows: int, fan_in: int) -> np.ndarray:
    """4-bit codes (rows, fan_in) with every row's sum |w| <= 255, as the accumulator-aware training leaves
    them (rows too long for 4-bit codes to fit are scaled down, then rounded toward zero)."""
    w = rng.integers(-7, 8, (rows, fan_in)).astype(np.float64)
    total = np.abs(w).sum(axis=1, keepdims=True)
    return np.trunc(w * np.minimum(1.0, 255.0 / np.maximum(total, 1))).astype(np.int8)


def _past(w: np.ndarray) -> np.ndarray:
    """The codes with row 0 replaced by 127, 127, 2, 0, ...: sum |w| = 256, one past the bound (int32 sums)."""
    w = w.copy()
    row = w.reshape(len(w), -1)[0]
    row[:] = 0
    row[:3] = (127, 127, 2)
    return w


def _op_graph(kind: str, weights: np.ndarray, frames: int, cin: int, cout: int, stride: int) -> GraphSpec:
    x = Tensor(frames, cin, Quant(2.0**-4, -3))
    y = Tensor(1, cout, Quant(2.0**-2, 5))
    common = dict(input=0, bias=np.zeros(cout, np.int32), weight_scale=np.full(cout, 2.0**-6, np.float32),
                  act_min=-128, act_max=127, out=1)
    if kind == "dense":
        op = FullyConnected(weights=weights.reshape(cout, -1), **common)
    elif kind == "dw":
        op = DepthwiseConv(weights=weights.T.copy(), stride=1, dilation=1, padding="valid", **common)
    else:
        op = Conv(weights=weights.reshape(cout, -1, cin), stride=stride, dilation=1, padding="valid", **common)
    return GraphSpec((x, y), (), (op,), 0, 1)


def _layers(rng: np.random.Generator) -> list[tuple[str, GraphSpec, GraphSpec]]:
    kernel, features, channels, stride = FIRST
    shapes = [("conv 5x40->32 /3", "conv", kernel, features, channels, stride, channels, kernel * features)]
    c = channels
    for k, out in BLOCKS:
        shapes += [(f"dw {k} x {c}", "dw", k, c, c, 1, c, k), (f"1x1 {c}->{out}", "conv", 1, c, out, 1, out, c)]
        c = out
    shapes.append((f"head {c}->1", "dense", 1, c, 1, 1, 1, c))
    layers = []
    for name, kind, frames, cin, cout, s, rows, fan_in in shapes:
        w = _bounded(rng, rows, fan_in)
        layers.append((name, _op_graph(kind, w, frames, cin, cout, s), _op_graph(kind, _past(w), frames, cin, cout,
                                                                                   s)))
    return layers


def _ticks(models: list[GraphModel], inputs: list[np.ndarray]) -> list[float]:
    streams = [m.stream() for m in models]
    samples = [[] for _ in models]
    for _ in range(ROUNDS):
        for i, (s, x) in enumerate(zip(streams, inputs)):
            samples[i].append(s.time_invoke(x, ROUND_INVOKES) / ROUND_INVOKES)
    return [float(np.median(v)) for v in samples]


@pytest.mark.parametrize("backend", kwsint.backends())
def test_conv_layers_int16_against_int32(benchmark, backend):
    rng = np.random.default_rng(0)
    rows = []
    for name, bound, past in _layers(rng):
        models = [GraphModel(kwsint.write_blob(spec), backend=backend) for spec in (past, bound)]
        x = rng.integers(-128, 128, (bound.tensors[0].frames, bound.tensors[0].channels)).astype(np.int8)
        i32, i16 = _ticks(models, [x, x])
        rows.append((name, models[1].acc16_ops, i32, i16))
    benchmark.pedantic(lambda: None, rounds=1)
    print(f"\nbackend {backend}, median ticks per invoke of {ROUNDS} alternating rounds of {ROUND_INVOKES}:")
    print(f"{'layer':18} {'int16 runs':>10} {'int32':>8} {'int16':>8} {'x':>6}")
    for name, runs, i32, i16 in rows:
        print(f"{name:18} {'yes' if runs else 'no':>10} {i32:8.1f} {i16:8.1f} {i32 / i16:6.2f}")
    total32, total16 = sum(r[2] for r in rows), sum(r[3] for r in rows)
    print(f"{'all layers':18} {'':>10} {total32:8.1f} {total16:8.1f} {total32 / total16:6.2f}")
