"""The streaming conv models (kwsint.train.qat.conv): whole-window simulation against the streamed graph (numpy
reference, C engine), the cosine regulariser, checkpoints, and kwsint-train / kwsint-export end to end with
TFLM."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import kwsint
from kwsint.cli import export as export_cli, train as train_cli
from kwsint.data.dataset import Windows, save_windows
from kwsint.data.toydata import make_toy_windows
from kwsint.engine.graph import Conv, GraphSpec, ReferenceStream, receptive_field, run_windows
from kwsint.engine.graph_model import GraphModel
from kwsint.errors import CheckpointError
from kwsint.interop.tflite_graph import tflm_arena_bytes
from kwsint.io.microfrontend import quantize_features
from kwsint.train.graph_export import op_report, stream_inputs, stream_outputs
from kwsint.train.qat.checkpoint import load_checkpoint, save_checkpoint
from kwsint.train.qat.conv import ConvConfig, ConvNet, conv_config
from kwsint.train.qat.quantizers import cosine_regularizer, grid_penalty

SHAPES = {
    "conv-s": conv_config("conv-s"),
    # no first-conv state (kernel == stride), a 1-frame depthwise kernel (no state), a 2-frame head, 3-bit weights
    "edges": ConvConfig(blocks=((1, 8), (4, 12)), weight_bits=(3, 2, 8, 4, 5, 6), first_channels=8, first_kernel=3,
                        stride=3, head_frames=2),
    "odd": ConvConfig(blocks=((3, 6),), weight_bits=(8, 8, 8, 8), first_channels=5, first_kernel=7, stride=2,
                      feature_dim=40),
    "pow2": ConvConfig(blocks=((5, 16), (3, 8)), weight_bits=(8, 4, 4, 8, 2, 1), first_channels=12, pow2_scales=True),
    # MixConv blocks: three uneven groups (5, 3, 3 channels) with a 1-frame kernel among them, then two groups
    "mix": ConvConfig(blocks=((4, 11), ((3, 1, 6), 10), ((7, 4), 8)), weight_bits=(8, 4, 8, 3, 8, 4, 8, 8),
                      first_channels=10),
}


def _features(rng: np.random.Generator, n: int, frames: int) -> np.ndarray:
    """Microfrontend-like windows: feature values (uint16 / 25.6) over the int8 codes' whole range and beyond."""
    x = rng.uniform(0, 28, (n, frames, 40))
    x[rng.random(x.shape) < 0.05] = 0.0
    return x.astype(np.float32)


def _model(config: ConvConfig, stage: str, seed: int) -> tuple[ConvNet, np.ndarray]:
    rng = np.random.default_rng(seed)
    model = ConvNet(config, stage)
    model.reset_weights(torch.Generator().manual_seed(seed))
    with torch.no_grad():
        for d in model.ops:
            d.bias.normal_(0, 0.3, generator=torch.Generator().manual_seed(seed + 1))
    windows = _features(rng, 48, config.window_frames + 4)
    model.calibrate(torch.from_numpy(windows))
    model.eval()
    return model, windows


@pytest.mark.parametrize("stage", ["float", "stage2"])
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_whole_windows_equal_the_streamed_graph(shape, stage):
    """run_windows (what training evaluates) == ReferenceStream and the C engine, invoke by invoke, on every
    window: the model is trained in its streaming-equivalent form."""
    config = SHAPES[shape]
    model, windows = _model(config, stage, seed=len(shape))
    spec = model.to_graph()
    assert receptive_field(spec) == config.window_frames
    codes = model.input_codes(torch.from_numpy(windows)).numpy().astype(np.int8)
    sim = run_windows(spec, codes)[spec.output][:, -1, 0].astype(np.int64)
    engine = GraphModel(kwsint.write_blob(spec))
    assert np.array_equal(stream_outputs(lambda: ReferenceStream(spec), spec, codes), sim)
    assert np.array_equal(stream_outputs(engine.stream, spec, codes), sim)
    assert len(np.unique(sim)) > 3, "a constant output would test nothing"
    for extra in range(1, config.stride + 1):  # earlier frames change nothing, whatever the stride's phase
        earlier = np.random.default_rng(extra).integers(-128, 128, (len(codes), extra, 40)).astype(np.int8)
        longer = run_windows(spec, np.concatenate([earlier, codes], axis=1))
        assert np.array_equal(longer[spec.output][:, -1, 0], sim)
    # a stream that goes on: its output at each invoke is the whole-window result of the frames before it
    stream = engine.stream()
    long = np.concatenate(list(codes))[: 3 * config.window_frames]
    x = stream_inputs(spec, long)
    step = config.stride
    outs = stream.invoke_many(x)[:, 0, 0]
    ends = np.arange(1, len(x) + 1) * step
    ready = ends >= config.window_frames
    flat = x.reshape(-1, 40)
    wins = np.stack([flat[e - config.window_frames: e] for e in ends[ready]])
    assert np.array_equal(outs[ready], run_windows(spec, wins)[spec.output][:, -1, 0])


def _assert_tflm_equals_simulation(model: ConvNet, spec: GraphSpec, windows: np.ndarray) -> None:
    """The exported .tflite, streamed in TFLM from each window's start, gives the simulation's output."""
    from kwsint.interop.tflite_graph import TflmStream, graph_to_tflite

    codes = model.input_codes(torch.from_numpy(windows)).numpy().astype(np.int8)
    sim = run_windows(spec, codes)[spec.output][:, -1, 0].astype(np.int64)
    tflm = TflmStream(graph_to_tflite(spec, input_rank3=True, fc_reshape=True), spec)

    def fresh():
        tflm.reset()
        return tflm

    assert np.array_equal(stream_outputs(fresh, spec, codes), sim) and len(np.unique(sim)) > 3


@pytest.mark.parametrize("stage", ["float", "stage2"])
def test_pow2_scales_requantize_by_shifts(stage):
    """Every scale a power of two: each op's multiplier is 2^30 (a shift) except the first conv's, whose input
    scale is ESPHome's 26/255; TFLM agrees on every window."""
    from kwsint.engine.graph import op_multipliers

    model, windows = _model(SHAPES["pow2"], stage, seed=9)
    spec = model.to_graph()
    linear = [op for op in spec.ops if hasattr(op, "weights")]
    for op in linear[1:]:
        mult, _ = op_multipliers(spec, op)
        assert (mult == 2**30).all()
        assert all(float(s) == 2.0 ** np.round(np.log2(float(s))) for s in op.weight_scale)
    assert (op_multipliers(spec, linear[0])[0] != 2**30).any()
    _assert_tflm_equals_simulation(model, spec, windows)


def test_mixconv_blocks_split_their_channels_and_run_exactly_in_tflm():
    """A MixConv block is one shift register, then per group a slice of its last K frames and channels, a
    depthwise conv and, for the block, a concatenation; the graph's MACs are the config's; TFLM agrees on every
    window; a group's unused taps (before its kernel) are not weights: they change neither the outputs nor the
    regularisers."""
    from kwsint.engine.graph import Concat, Slice

    config = SHAPES["mix"]
    model, windows = _model(config, "stage2", seed=13)
    spec = model.to_graph()
    slices = [op for op in spec.ops if isinstance(op, Slice)]
    assert [(op.frames, op.channel_start, op.channels) for op in slices] == [
        (3, 0, 5), (1, 5, 3), (6, 8, 3), (7, 0, 5), (4, 5, 5)]
    assert sum(isinstance(op, Concat) for op in spec.ops) == 2
    assert GraphModel(kwsint.write_blob(spec)).macs == config.macs
    rows = op_report(spec, config)  # the export report: every graph op, under its config op's index and bits
    assert [(r["index"], r["kernel"], r["weight_bits"]) for r in rows] == [
        (0, 5, 8), (1, 4, 4), (2, 1, 8), (3, 3, 3), (3, 1, 3), (3, 6, 3), (4, 1, 8), (5, 7, 4), (5, 4, 4), (6, 1, 8),
        (7, 1, 8)]
    assert sum(r["weights"] for r in rows) == sum(op.weights.size for op in spec.ops if hasattr(op, "weights"))
    _assert_tflm_equals_simulation(model, spec, windows)

    s1, _ = _model(config, "stage1", seed=13)
    x = torch.from_numpy(windows)
    before, reg = s1(x), s1.regularizer(1.0, 1.0, 0.1)
    mask = s1.tap_masks[3]
    assert mask.sum() == 5 * 3 + 3 * 1 + 3 * 6 and set(s1.tap_masks) == {3, 5}
    with torch.no_grad():
        s1.ops[3].weight.add_((1 - mask) * 5.0)
    assert torch.equal(s1(x), before) and torch.equal(s1.regularizer(1.0, 1.0, 0.1), reg)
    with pytest.raises(ValueError, match=r"MixConv depthwise ops \[3\] need 2..8 bits"):
        config.with_bits(weight_bits=[8, 4, 8, 1, 8, 4, 8, 8])


def test_stage2_evaluation_is_the_integer_graph():
    model, windows = _model(SHAPES["edges"], "stage2", seed=5)
    x = torch.from_numpy(windows)
    spec = model.to_graph()
    logit = next(op.input for op in spec.ops if type(op).__name__ == "Logistic")
    q = spec.tensors[logit].quant
    codes = model.integer_outputs(x)[logit][:, -1, 0]
    assert torch.equal(model(x), torch.from_numpy((codes.astype(np.float32) - q.zero_point) * np.float32(q.scale)))


def test_run_windows_refuses_short_windows_and_same_padding():
    model, windows = _model(SHAPES["odd"], "float", seed=3)
    spec = model.to_graph()
    with pytest.raises(ValueError, match="frames"):
        run_windows(spec, np.zeros((2, receptive_field(spec) - 1, 40), np.int8))
    ops = tuple(Conv(**{**op.__dict__, "padding": "same"}) if isinstance(op, Conv) and op.weights.shape[1] == 1
                else op for op in spec.ops)  # a 1x1 conv keeps its frames with "same" padding
    same = GraphSpec(spec.tensors, spec.states, ops, spec.input, spec.output)
    with pytest.raises(ValueError, match="'valid' convolutions"):
        receptive_field(same)


def test_cosine_regulariser_and_its_gradient():
    u = torch.tensor([0.0, 1.0, -3.0, 0.5, 2.5, 0.2, 0.8, -1.3], dtype=torch.float64, requires_grad=True)
    each = 1 - torch.cos(torch.pi * u).abs()
    assert torch.allclose(each[:5], torch.tensor([0.0, 0.0, 0.0, 1.0, 1.0], dtype=torch.float64), atol=1e-12)
    cosine_regularizer(u).backward()
    d = u.detach()
    formula = torch.pi * torch.sin(torch.pi * d) * torch.sign(torch.cos(torch.pi * d)) / len(d)
    assert torch.allclose(u.grad[[0, 1, 2, 5, 6, 7]], formula[[0, 1, 2, 5, 6, 7]])
    # descending the gradient moves each value toward its nearest integer
    assert (u.grad[[5, 6, 7]].sign() == torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64)).all()
    w = torch.randn(6, 20, generator=torch.Generator().manual_seed(0))
    assert float(grid_penalty(w, 1)) == 0.0 and 0.2 < float(grid_penalty(w, 4)) < 0.8


def test_checkpoint_keeps_the_family(tmp_path):
    model, _ = _model(SHAPES["edges"], "stage2", seed=7)
    save_checkpoint(tmp_path / "c.pt", model)
    back = load_checkpoint(tmp_path / "c.pt").model
    assert isinstance(back, ConvNet) and back.config == model.config and back.stage == "stage2"
    assert kwsint.write_blob(back.to_graph()) == kwsint.write_blob(model.to_graph())
    data = torch.load(tmp_path / "c.pt", weights_only=True)
    data["arch"] = "transformer"
    torch.save(data, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="arch: expected dense or conv"):
        load_checkpoint(tmp_path / "bad.pt")
    data["arch"] = "conv"
    data["config"]["blocks"] = [[0, 8]]
    torch.save(data, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="config: blocks"):
        load_checkpoint(tmp_path / "bad.pt")


def _mf_windows(n: int, seed: int, speakers) -> Windows:
    """Toy windows with 40 features, mapped onto the microfrontend's value range."""
    w = make_toy_windows(n, seed=seed, speakers=speakers, window_frames=81,
                         feature_dim=40)
    f = np.clip((w.features + 12.0) * 1.1, 0, 27).astype(np.float32)
    return Windows(f, w.labels, w.speakers)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("conv")
    save_windows(d / "train.npz", _mf_windows(192, 1, range(6)))
    save_windows(d / "val.npz", _mf_windows(48, 2, range(6, 8)))
    data = ["--train", str(d / "train.npz"), "--val", str(d / "val.npz"), "--arch", "conv", "--batch-size", "32",
            "--eval-every", "4", "--checkpoint-every", "4", "--no-progress"]
    assert train_cli.main(["--stage", "stage1", "--config", "conv-s", *data, "-o", str(d / "big.pt"), "--steps",
                           "1"]) == 1  # conv-s reads more frames than these windows hold
    return d


def test_train_and_export_a_conv_model(trained, tmp_path, capsys, monkeypatch):
    """kwsint-train --arch conv through stage 2, kwsint-export to .kwsq and .tflite: simulation, engine and TFLM
    agree on every window, and kwsint-import reads the .tflite back to the same graph."""
    d = trained
    monkeypatch.setattr("kwsint.train.qat.conv.CONV_PRESETS", {"edges": {
        k: v for k, v in SHAPES["edges"].to_dict().items() if k not in ("weight_bits", "name")}})
    common = ["--train", str(d / "train.npz"), "--val", str(d / "val.npz"), "--batch-size", "32", "--eval-every",
              "4", "--checkpoint-every", "4", "--no-progress"]
    assert train_cli.main(["--arch", "conv", "--config", "edges", "--stage", "stage1", "--weight-bits", "4",
                           "--lambda-cos", "0.5", *common, "-o", str(tmp_path / "s1.pt"), "--steps", "8"]) == 0
    assert train_cli.main(["--stage", "stage2", "--init", str(tmp_path / "s1.pt"), *common,
                           "-o", str(tmp_path / "s2.pt"), "--steps", "4"]) == 0
    s2 = load_checkpoint(tmp_path / "s2.pt").model
    assert isinstance(s2, ConvNet) and s2.config.weight_bits == (4,) * 6
    reports = {}
    for suffix in ("kwsq", "tflite"):
        capsys.readouterr()
        assert export_cli.main([str(tmp_path / "s2.pt"), "-o",
                                str(tmp_path / f"m.{suffix}"), "--samples", str(d / "val.npz"), "--threshold", "0.7",
                                "--phrase", "hey toy", "--languages", "en,de", "--json",
                                *(["--author", "tests"] if suffix == "tflite" else [])]) == 0
        reports[suffix] = json.loads(capsys.readouterr().out)
    for r in reports.values():
        assert r["agreement"]["windows"] == 48
        assert r["agreement"]["engine_equal_simulation"] == 48 and r["tflm"]["bit_exact"] == 48
        assert r["metadata"]["probability_cutoff"] == 0.7 and r["metadata"]["sliding_window_size"] == 5
    # microWakeWord's settings beside the .tflite, with the arena TFLM allocates for it; kwsint reads them back
    tflite = (tmp_path / "m.tflite").read_bytes()
    settings = json.loads((tmp_path / "m.json").read_text())
    assert settings == {"type": "micro", "wake_word": "hey toy", "author": "tests", "model": "m.tflite",
                        "trained_languages": ["en", "de"], "version": 2, "micro": {
                            "probability_cutoff": 0.7, "feature_step_size": 10, "sliding_window_size": 5,
                            "tensor_arena_size": tflm_arena_bytes(tflite), "minimum_esphome_version": "2024.7.0"}}
    assert reports["tflite"]["settings"]["tensor_arena_size"] > len(tflite) // 4
    meta = kwsint.load(tmp_path / "m.tflite").metadata
    assert (meta.phrase, meta.probability_cutoff, meta.trained_languages) == ("hey toy", 0.7, ("en", "de"))
    capsys.readouterr()
    assert export_cli.main([str(tmp_path / "s2.pt"), "-o", str(tmp_path / "n.tflite"), "--threshold", "0.7"]) == 0
    assert "needs --phrase, --languages" in capsys.readouterr().out and not (tmp_path / "n.json").exists()
    (tmp_path / "n.json").write_text("{}")
    assert export_cli.main([str(tmp_path / "s2.pt"), "-o", str(tmp_path / "n.tflite"), "--force", "--threshold",
                            "0.7", "--phrase", "x", "--languages", "en"]) == 0  # --force: both files
    assert json.loads((tmp_path / "n.json").read_text())["wake_word"] == "x"
    (tmp_path / "o.json").write_text("{}")
    assert export_cli.main([str(tmp_path / "s2.pt"), "-o", str(tmp_path / "o.tflite"), "--threshold", "0.7",
                            "--phrase", "x", "--languages", "en"]) == 1
    assert "o.json" in capsys.readouterr().err and not (tmp_path / "o.tflite").exists()
    blob = (tmp_path / "m.kwsq").read_bytes()
    imported = kwsint.load(tmp_path / "m.tflite")  # kwsint-import's reader: the shipped models' TFLite form
    assert imported.macs == GraphModel(blob).macs == SHAPES["edges"].macs
    spec = kwsint.read_blob(blob)
    x = stream_inputs(spec, np.random.default_rng(0).integers(-128, 128, (60, 40)).astype(np.int8))
    assert np.array_equal(imported.stream().invoke_many(x), GraphModel(blob).stream().invoke_many(x))
    capsys.readouterr()
    assert export_cli.main([str(tmp_path / "s2.pt"), "-o", str(tmp_path / "m.onnx")]) == 1
    assert "not .onnx" in capsys.readouterr().err
    assert export_cli.main([str(tmp_path / "s2.pt"), "-o", str(tmp_path / "x.kwsq"), "--smoothing", "1"]) == 1
    assert "--smoothing: a conv model" in capsys.readouterr().err


def test_custom_conv_shapes_from_the_command_line(trained, tmp_path, capsys):
    """--blocks (MixConv blocks as K1+K2) and --config FILE.json give any ConvConfig; a wrong one is one line
    naming the file and the field."""
    common = ["--train", str(trained / "train.npz"), "--arch", "conv", "--stage", "float", "--steps", "1",
              "--no-progress", "--force"]
    assert train_cli.main([*common, "--blocks", "3+5:6,2:4", "--weight-bits", "4", "-o", str(tmp_path / "a.pt")]) == 0
    config = load_checkpoint(tmp_path / "a.pt").model.config
    assert config.blocks == (((3, 5), 6), (2, 4)) and config.weight_bits == (4,) * 6
    shape = {"blocks": [[[3, 5], 6], [2, 4]], "first_channels": 7, "stride": 2, "head_frames": 2}
    (tmp_path / "shape.json").write_text(json.dumps(shape))
    assert train_cli.main([*common, "--config", str(tmp_path / "shape.json"), "-o", str(tmp_path / "b.pt")]) == 0
    config = load_checkpoint(tmp_path / "b.pt").model.config
    assert (config.first_channels, config.stride, config.head_frames, config.name) == (7, 2, 2, "shape")
    capsys.readouterr()
    for bad, field in (({**shape, "first_chanels": 7}, "unknown field.*first_chanels"),
                       ({"blocks": [[[3, 0], 6]]}, "blocks: expected"),
                       ({"blocks": [[[3, 5], 6]], "first_channels": 1}, "one input channel per kernel")):
        (tmp_path / "bad.json").write_text(json.dumps(bad))
        assert train_cli.main([*common, "--config", str(tmp_path / "bad.json"), "-o", str(tmp_path / "c.pt")]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "bad.json" in err and re.search(field, err), err
    assert not (tmp_path / "c.pt").exists()


def conv_evaluation(folder: Path, frames: int) -> ConvNet:
    """In ``folder``: a float conv checkpoint ``f.pt``, its graph ``g.kwsq``, and ``m.json``, a manifest of three
    positive streams of about ``frames`` frames, with fbank and microfrontend features. Returns the model."""
    model, _ = _model(SHAPES["odd"], "float", seed=11)
    save_checkpoint(folder / "f.pt", model)
    kwsint.save(model.to_graph(), folder / "g.kwsq")
    rng = np.random.default_rng(4)
    streams = []
    for i in range(3):
        mf = _features(rng, 1, frames + 7 * i)[0]
        fbank = rng.standard_normal((len(mf) + 1, 20)).astype(np.float32)
        np.save(folder / f"s{i}.mf.npy", mf)
        np.save(folder / f"s{i}.npy", fbank)
        streams.append({"features": f"s{i}.npy", "microfrontend": f"s{i}.mf.npy", "kind": "positive",
                        "spans": [[0.5, 1.0]]})
    (folder / "m.json").write_text(json.dumps({"streams": streams}))
    return model


def test_kwsint_eval_scores_conv_models_invoke_by_invoke(tmp_path):
    """kwsint-eval's steps of a graph are its invokes once the receptive field is in, each posterior the uint8
    output times 256; a float conv checkpoint is scored on the same steps; dense and conv models share a report."""
    from kwsint.evaluation.scoring import StreamingScorer, evaluate, load_model

    model = conv_evaluation(tmp_path, 150)
    graph = load_model(tmp_path / "g.kwsq")
    assert isinstance(graph, StreamingScorer) and graph.window == SHAPES["odd"].window_frames
    mf = np.load(tmp_path / "s2.mf.npy")
    frames, q16 = graph.score(mf)
    spec = model.to_graph()
    ref = ReferenceStream(spec)
    x = quantize_features(mf[: len(mf) // 2 * 2]).reshape(-1, 2, 40)
    outs = np.array([ref.invoke(v)[0, 0] for v in x], np.int32)
    ends = np.arange(len(x)) * 2 + 1
    keep = ends >= graph.window - 1
    assert np.array_equal(frames, ends[keep]) and np.array_equal(q16, outs[keep] * 256)
    float_frames, float_q16 = load_model(tmp_path / "f.pt").score(mf)
    assert np.array_equal(float_frames, frames) and float_q16.min() >= 0 and float_q16.max() <= 65536
    report = evaluate(tmp_path / "m.json", [str(tmp_path / "f.pt"), str(tmp_path / "g.kwsq"), "default:M2"],
                      bootstrap=0)
    steps = sum(len(graph.score(np.load(tmp_path / f"s{i}.mf.npy"))[0]) for i in range(3))
    assert [m["steps"] for m in report["models"]] == [steps, steps, report["models"][2]["steps"]]
    assert report["models"][2]["steps"] > 0  # the dense model ran on the fbank features
    with pytest.raises(ValueError, match="hop"):
        evaluate(tmp_path / "m.json", [str(tmp_path / "g.kwsq")], hop=2, bootstrap=0)
    logistic = spec.ops[-2]  # a graph that ends at the LOGISTIC's int8 codes is not a probability per invoke
    cut = GraphSpec(spec.tensors[: logistic.out + 1], spec.states, spec.ops[:-1], spec.input, logistic.out)
    kwsint.save(cut, tmp_path / "int8.kwsq")
    with pytest.raises(ValueError, match="expected one uint8 probability"):
        load_model(tmp_path / "int8.kwsq")


@pytest.mark.parametrize("pow2", [False, True])
def test_accumulator_bound_makes_int16_accumulation_provable(pow2):
    """acc16_ops: every row of those ops has 128 * sum |w| <= 32767 by construction, in every stage, so the
    exporter proves int16 accumulation for them; without the bound the same ops are not provable."""
    from kwsint.engine.graph import acc16_proven

    base = conv_config("conv-s").with_bits(weight_bits=[8, 4, 4, 4, 8, 4, 4, 4, 4, 8])
    bound = ConvConfig.from_dict(base.to_dict() | {"acc16_ops": list(range(10)), "pow2_scales": pow2})
    free = ConvConfig.from_dict(base.to_dict() | {"pow2_scales": pow2})
    for stage in ("float", "stage1", "stage2"):
        provable = {}
        for name, config in (("bound", bound), ("free", free)):
            model, windows = _model(config, stage, seed=2)
            spec = model.to_graph()
            provable[name] = [acc16_proven(op) for op in spec.ops if hasattr(op, "weights")]
        assert all(provable["bound"]), stage
        assert not provable["free"][0] and not provable["free"][4], stage  # 8-bit first conv and wide 1x1
        # the C engine runs every op of the bounded model on int16 sums where the backend has the kernels
        model, windows = _model(bound, stage, seed=2)
        spec = model.to_graph()
        codes = model.input_codes(torch.from_numpy(windows)).numpy().astype(np.int8)
        sim = run_windows(spec, codes)[spec.output][:, -1, 0].astype(np.int64)
        for be in kwsint.backends():
            engine = GraphModel(kwsint.write_blob(spec), backend=be)
            # every op on avx2 and NEON; the depthwise ones only on SDOT (no int16 form); none on the others
            want = {"avx2": 10, "neon-simde": 10, "neon": 10, "neon-dotprod-simde": 4, "neon-dotprod": 4,
                    "sse4.1": 0, "portable": 0}
            assert engine.acc16_ops == want.get(be, engine.acc16_ops), be
            assert np.array_equal(stream_outputs(engine.stream, spec, codes), sim), be
    with pytest.raises(ValueError, match="acc16_ops"):
        ConvConfig.from_dict(base.to_dict() | {"acc16_ops": [10]})
    with pytest.raises(ValueError, match="1-bit weights"):  # 300 codes of +-1 per row cannot sum to 255
        ConvConfig(blocks=((3, 8),), weight_bits=(8, 8, 1, 8), first_channels=300, acc16_ops=(2,))
