"""M2 at batch 1: kwsint's Python API against the runtimes a user would pick instead, in one run.

    .venv/bin/python -m pytest benchmarks/test_peers.py --benchmark-only -s

One model (the paper's M2 shape with random calibrated weights, ``paper_model("M2")``),
one window, one thread each, one inference per call, as an application calls them:

* kwsint: ``Model.infer`` on the raw (81, 20) float window: frame selection,
  normalisation and quantization included, then the integer model.
* LiteRT (``ai-edge-litert``): the ``.tflite`` export (``model_to_tflite``, float
  normalised input, QUANTIZE, int8 FULLY_CONNECTED / DEPTHWISE_CONV_2D), with its
  default XNNPACK delegate, and without it (its builtin optimized kernels).
* TFLM: the same ``.tflite`` in the TensorFlow Lite Micro interpreter.
* onnxruntime: the ONNX QDQ export (``model_to_onnx``) on CPUExecutionProvider.
* float32, the same network dequantized (dense with its clamp, per-channel
  affine): kwsint's float path (``FloatModel.infer`` on the raw window),
  onnxruntime (MatMul, Add, Clip, Mul), numpy and torch.

The peers get the normalised input vector, prepared once, so they do less work per
call than kwsint. Rounds of ROUNDS_CALLS calls alternate between the runtimes,
ROUNDS times, so that machine noise hits them alike; the table gives the median
time per call, each runtime's time as a multiple of kwsint's, and whether the
integer runtimes give kwsint's logit codes on this window (TFLite's integer
semantics say they should).
"""

import time

import numpy as np
import pytest

import kwsint
from kwsint import reference
from kwsint.engine.float_model import FloatLayer, FloatModel, FloatSpec
from kwsint.engine.modelspec import ModelSpec
from kwsint.interop.onnx_export import model_to_onnx
from kwsint.interop.tflite import _tflm, model_to_tflite
from kwsint.train.generate import paper_model

ROUNDS = 15
INTEGER_PEERS = ("LiteRT (XNNPACK)", "LiteRT (no delegate)", "TFLM", "onnxruntime (QDQ)")
ROUNDS_CALLS = 200


def float_spec(spec: ModelSpec) -> FloatSpec:
    """The integer model dequantized to float32: dense layers with their clamp in real units, affine
    layers (whose int8 output clamp lies outside the values they produce) without one."""
    layers = []
    for layer in spec.layers:
        ws = layer.weight_scale.reshape(-1, *[1] * (layer.weights.ndim - 1))
        w = (layer.weights.astype(np.float64) * ws).astype(np.float32)
        b = (layer.bias.astype(np.float64) * layer.input_scale * layer.weight_scale).astype(np.float32)
        if layer.kind == "dense":
            s, zp = float(layer.output_scale), layer.output_zero_point
            layers.append(FloatLayer("dense", w, b, (layer.act_min - zp) * s, (layer.act_max - zp) * s))
        else:
            layers.append(FloatLayer("affine", w, b))
    return FloatSpec(spec.frontend, tuple(layers))


def numpy_runner(fs: FloatSpec, x: np.ndarray):
    def run():
        y = x
        for layer in fs.layers:
            if layer.kind == "dense":
                y = np.clip(layer.weights @ y + layer.bias, layer.act_min, layer.act_max)
            else:
                y = layer.weights * y + layer.bias
        return y
    return run


def torch_runner(fs: FloatSpec, x: np.ndarray):
    import torch

    torch.set_num_threads(1)
    tl = [(l.kind, torch.from_numpy(l.weights), torch.from_numpy(l.bias), l.act_min, l.act_max) for l in fs.layers]
    tx = torch.from_numpy(x)

    def run():
        with torch.inference_mode():
            y = tx
            for kind, w, b, low, high in tl:
                y = torch.clamp(torch.mv(w, y) + b, low, high) if kind == "dense" else w * y + b
            return y
    return run


def onnx_float_model(fs: FloatSpec) -> bytes:
    """The float network as an ONNX graph: MatMul, Add, Clip for dense; Mul, Add for affine."""
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits, h = [], [], "x"
    for i, layer in enumerate(fs.layers):
        w, b = f"w{i}", f"b{i}"
        if layer.kind == "dense":
            inits += [numpy_helper.from_array(np.ascontiguousarray(layer.weights.T), w),
                      numpy_helper.from_array(layer.bias, b),
                      numpy_helper.from_array(np.float32(layer.act_min), f"lo{i}"),
                      numpy_helper.from_array(np.float32(layer.act_max), f"hi{i}")]
            nodes += [helper.make_node("MatMul", [h, w], [f"m{i}"]), helper.make_node("Add", [f"m{i}", b], [f"a{i}"]),
                      helper.make_node("Clip", [f"a{i}", f"lo{i}", f"hi{i}"], [f"y{i}"])]
        else:
            inits += [numpy_helper.from_array(layer.weights, w), numpy_helper.from_array(layer.bias, b)]
            nodes += [helper.make_node("Mul", [h, w], [f"m{i}"]), helper.make_node("Add", [f"m{i}", b], [f"y{i}"])]
        h = f"y{i}"
    n_in = fs.frontend.input_size
    graph = helper.make_graph(nodes, "kws_float", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n_in])],
                              [helper.make_tensor_value_info(h, TensorProto.FLOAT, [1, 2])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def litert_runner(tfl: bytes, x: np.ndarray, xnnpack: bool):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interp = Interpreter(model_content=tfl, num_threads=1, experimental_op_resolver_type=resolver)
    interp.allocate_tensors()
    i, o = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]
    row = x.reshape(1, -1)

    def run():
        interp.set_tensor(i, row)
        interp.invoke()
        return interp.get_tensor(o)
    return run


def tflm_runner(tfl: bytes, x: np.ndarray):
    interp = _tflm()[2].Interpreter.from_bytes(tfl, arena_size=1 << 20)
    row = x.reshape(1, -1)

    def run():
        interp.set_input(row, 0)
        interp.invoke()
        return interp.get_output(0)
    return run


def onnxruntime_runner(onnx_model: bytes, x: np.ndarray):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    sess = ort.InferenceSession(onnx_model, options, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    feed = {name: x.reshape(1, -1)}

    def run():
        return sess.run(None, feed)
    return run


@pytest.fixture(scope="module")
def runners():
    spec = paper_model("M2")
    window = np.random.default_rng(0).normal(-5.0, 2.5, (81, 20)).astype(np.float32)
    x = reference.normalize_window(spec.frontend, window).astype(np.float32).reshape(-1)
    model = kwsint.load(kwsint.write_blob(spec))
    tfl = model_to_tflite(spec, float_input=True)
    fs = float_spec(spec)
    float_model = FloatModel(fs)
    return {
        f"kwsint ({model.backend})": lambda: model.infer(window),
        "LiteRT (XNNPACK)": litert_runner(tfl, x, xnnpack=True),
        "LiteRT (no delegate)": litert_runner(tfl, x, xnnpack=False),
        "TFLM": tflm_runner(tfl, x),
        "onnxruntime (QDQ)": onnxruntime_runner(model_to_onnx(spec, batch=1), x),
        f"kwsint float32 ({float_model.backend})": lambda: float_model.infer(window),
        "onnxruntime float32": onnxruntime_runner(onnx_float_model(fs), x),
        "numpy float32": numpy_runner(fs, x),
        "torch float32": torch_runner(fs, x),
    }


def test_peer_ratios(benchmark, runners):
    seconds = {name: [] for name in runners}

    def alternate():
        for _ in range(ROUNDS):
            for name, run in runners.items():
                run()  # warm: the first call after another runtime's round
                t0 = time.perf_counter()
                for _ in range(ROUNDS_CALLS):
                    run()
                seconds[name].append((time.perf_counter() - t0) / ROUNDS_CALLS)

    benchmark.pedantic(alternate, rounds=1, iterations=1)
    median = {name: float(np.median(s)) for name, s in seconds.items()}
    base = next(iter(median.values()))
    want = next(iter(runners.values()))().logits  # the spec's output codes
    exact = {name: bool(np.array_equal(np.ravel(logits(run())), want)) for name, run in runners.items()
             if name in INTEGER_PEERS}
    benchmark.extra_info.update(
        config="M2", rounds=ROUNDS, calls_per_round=ROUNDS_CALLS,
        median_us_per_call={name: round(m * 1e6, 3) for name, m in median.items()},
        x_kwsint={name: round(m / base, 2) for name, m in median.items()}, same_logits_as_kwsint=exact,
    )
    print(f"\nM2, batch 1, one thread, median of {ROUNDS} alternating rounds of {ROUNDS_CALLS} calls:")
    print(f"{'runtime':>22} {'us/call':>9} {'x kwsint':>9}  logits == kwsint's (integer runtimes)")
    for name, m in median.items():
        print(f"{name:>22} {m * 1e6:9.2f} {m / base:9.2f}  {exact.get(name, '')}")


def logits(out) -> np.ndarray:
    """A runtime's output codes: onnxruntime returns a list of outputs."""
    return np.asarray(out[0] if isinstance(out, list) else out)
