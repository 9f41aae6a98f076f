"""Checkpoints: loaded as data only, every defect refused with the file and field named."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

from kwsint.engine.metadata import ModelMetadata
from kwsint.errors import CheckpointError
from kwsint.train.qat.checkpoint import load_checkpoint, save_checkpoint
from kwsint.train.qat.model import KWSNet, NetConfig
from kwsint.train.qat.train import TrainOptions, train

CONFIG = NetConfig((6, 5), (4, 1, 8), window_frames=7, feature_dim=3, frame_stride=2)


def _stage2(tmp_path) -> KWSNet:
    m = KWSNet(CONFIG, "stage1")
    windows = np.random.default_rng(0).normal(0, 1, (32, 7, 3)).astype(np.float32)
    m.set_normalization(windows)
    m.stage = "stage2"
    m.calibrate(torch.from_numpy(windows))
    return m


def _raw(tmp_path, model: KWSNet) -> dict:
    path = tmp_path / "ok.pt"
    save_checkpoint(path, model)
    return torch.load(path, weights_only=True)


class Evil:
    """Unpickling this runs a shell command that creates the file MARKER."""

    marker = ""

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_round_trip_is_exact(tmp_path):
    m = _stage2(tmp_path)
    save_checkpoint(tmp_path / "m.pt", m, {"step": 3})
    ck = load_checkpoint(tmp_path / "m.pt")
    assert ck.model.stage == "stage2" and ck.model.config == CONFIG and ck.train == {"step": 3}
    for k, v in m.state_dict().items():
        assert torch.equal(ck.model.state_dict()[k], v), k
    x = torch.from_numpy(np.random.default_rng(1).normal(0, 1, (8, 7, 3)).astype(np.float32))
    assert torch.equal(ck.model.integer_logits(x), m.integer_logits(x))


def test_code_in_a_pickle_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(Evil, "marker", str(tmp_path / "ran"))
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"kwsint_checkpoint": 1, "x": Evil()}, f, protocol=2)
    with pytest.raises(CheckpointError, match=r"evil\.pt: not a readable PyTorch checkpoint \(expected the zip"):
        load_checkpoint(path)  # a bare pickle is not even unpickled
    path2 = tmp_path / "evil2.pt"
    torch.save({"kwsint_checkpoint": 1, "stage": "float", "config": Evil(), "model": {}}, path2)
    with pytest.raises(CheckpointError, match=r"evil2\.pt: refused: .*weights_only.*GLOBAL posix\.system"):
        load_checkpoint(path2)
    assert not (tmp_path / "ran").exists()


def _mutated(tmp_path, edit) -> str:
    data = _raw(tmp_path, _stage2(tmp_path))
    edit(data)
    path = tmp_path / "bad.pt"
    torch.save(data, path)
    return str(path)


def _set(key, value):
    def edit(d):
        d[key] = value
    return edit


def _model(key, fn):
    def edit(d):
        d["model"][key] = fn(d["model"][key])
    return edit


def _drop(key):
    def edit(d):
        del d["model"][key]
    return edit


def _config(field, value):
    def edit(d):
        d["config"][field] = value
    return edit


BAD = {
    "missing tensor": (_drop("dense.1.weight"), r"model\.dense\.1\.weight: missing"),
    "extra tensor": (lambda d: d["model"].__setitem__("extra.weight", torch.zeros(1)), r"model\.extra\.weight: not a tensor of"),
    "wrong shape": (_model("dense.0.weight", lambda t: torch.zeros(6, 9)), r"model\.dense\.0\.weight: expected shape \(6, 12\), got \(6, 9\)"),
    "NaN weight": (_model("dense.2.weight", lambda t: t.index_put_((torch.tensor([0]), torch.tensor([1])), torch.tensor(float("nan")))), r"model\.dense\.2\.weight: expected finite values, got 1 NaN/Inf"),
    "Inf gain": (_model("dense.0.gain", lambda t: t.fill_(float("inf"))), r"model\.dense\.0\.gain: expected finite"),
    "int weight": (_model("dense.0.weight", lambda t: t.to(torch.int32)), r"model\.dense\.0\.weight: expected a floating-point"),
    "not a tensor": (_model("dense.0.bias", lambda t: [1.0]), r"model\.dense\.0\.bias: expected a tensor, got list"),
    "negative variance": (_model("norms.0.running_var", lambda t: t.fill_(-1.0)), r"model\.norms\.0\.running_var: expected variances >= 0"),
    "bits out of range": (_config("weight_bits", [4, 9, 8]), r"config: weight_bits: expected 1\.\.8"),
    "too few bits": (_config("weight_bits", [4, 8]), r"config: weight_bits: expected 3 entries"),
    "act bits": (_config("act_bits", 12), r"config: act_bits: expected 8 or 16"),
    "unknown config field": (_config("colour", "red"), r"config: expected the fields .*unexpected \['colour'\]"),
    "stage": (_set("stage", "stage3"), r"stage: expected one of float, stage1, stage2, got 'stage3'"),
    "version": (_set("kwsint_checkpoint", 2), r"kwsint_checkpoint: expected version 1, got 2"),
    "uncalibrated stage 2": (_model("input_clip", lambda t: t.fill_(0.0)), r"model\.input_clip: expected > 0"),
    "inverted range": (_model("logit_range", lambda t: torch.tensor([1.0, -1.0])), r"model\.logit_range: expected low <= high"),
    "missing model": (lambda d: d.pop("model"), r"model: missing"),
    "metadata not a dict": (_set("metadata", ["hey"]), r"metadata: expected a JSON object, got list"),
    "metadata key": (_set("metadata", {"wake": "hey"}), r"metadata: unknown key 'wake'"),
    "metadata threshold": (_set("metadata", {"threshold": 3.0}), r"metadata\.threshold: expected a number in \[0, 1\]"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_checkpoint_names_the_problem(tmp_path, case):
    edit, message = BAD[case]
    path = _mutated(tmp_path, edit)
    with pytest.raises(CheckpointError, match=r"bad\.pt: " + message):
        load_checkpoint(path)


@pytest.mark.parametrize("content,message", [
    (b"", "not a readable PyTorch checkpoint"),
    (b"garbage" * 10, "not a readable PyTorch checkpoint"),
])
def test_unreadable_files(tmp_path, content, message):
    path = tmp_path / "x.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=f"x.pt: {message}"):
        load_checkpoint(path)


def test_truncated_file(tmp_path):
    save_checkpoint(tmp_path / "m.pt", _stage2(tmp_path))
    data = (tmp_path / "m.pt").read_bytes()
    for cut in (len(data) // 3, len(data) - 30):
        (tmp_path / "t.pt").write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="t.pt: not a readable"):
            load_checkpoint(tmp_path / "t.pt")


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="nope.pt: file not found"):
        load_checkpoint(tmp_path / "nope.pt")


def test_bare_state_dict_needs_its_config(tmp_path):
    m = KWSNet(CONFIG, "float")
    torch.save(m.state_dict(), tmp_path / "sd.pt")
    with pytest.raises(CheckpointError, match="kwsint_checkpoint: missing: not a kwsint checkpoint"):
        load_checkpoint(tmp_path / "sd.pt")
    ck = load_checkpoint(tmp_path / "sd.pt", config=CONFIG)
    assert ck.model.stage == "float"
    with pytest.raises(CheckpointError, match=r"model\.feature_mean: expected shape \(20,\), got \(3,\)"):
        load_checkpoint(tmp_path / "sd.pt", config=NetConfig((6, 5), (4, 1, 8)))


def test_save_is_atomic(tmp_path, monkeypatch):
    save_checkpoint(tmp_path / "m.pt", _stage2(tmp_path))
    before = (tmp_path / "m.pt").read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path / "m.pt", KWSNet(CONFIG, "float"))
    assert (tmp_path / "m.pt").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]  # no temporary file left behind


# --- training: deterministic, resumable -------------------------------------------------


def _data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (n, 7, 3)).astype(np.float32)
    y = rng.integers(0, 2, n)
    x[y == 1, -3:, 0] += 2.0
    return x, y


@pytest.mark.parametrize("stage", ["float", "stage1", "stage2"])
def test_resumed_training_equals_uninterrupted(tmp_path, stage):
    x, y = _data()

    def fresh():
        m = KWSNet(CONFIG, "stage1" if stage == "stage2" else stage)
        m.reset_weights(torch.Generator().manual_seed(5))
        m.set_normalization(x)
        if stage == "stage2":
            m.stage = "stage2"
            m.calibrate(torch.from_numpy(x))
        return m

    opts = TrainOptions(steps=8, batch_size=32, seed=5, eval_every=4, checkpoint_every=4)
    whole = fresh()
    h_whole = train(whole, x, y, opts, out=tmp_path / "whole.pt", val=(x, y))
    half = fresh()
    train(half, x, y, TrainOptions(**{**opts.__dict__, "steps": 4}), out=tmp_path / "half.pt", val=(x, y))
    ck = load_checkpoint(tmp_path / "half.pt")
    ck.train["options"]["steps"] = 8
    h_resumed = train(ck.model, x, y, opts, out=tmp_path / "half.pt", val=(x, y), resume=ck.train)
    for k, v in whole.state_dict().items():
        assert torch.equal(ck.model.state_dict()[k], v), k
    assert h_resumed == h_whole
    other = fresh()
    train(other, x, y, TrainOptions(**{**opts.__dict__, "seed": 6}), out=tmp_path / "other.pt")
    assert not torch.equal(other.dense[0].weight, whole.dense[0].weight)


def test_metadata_round_trips(tmp_path):
    meta = ModelMetadata(phrase="hey lumen", threshold=0.6, smoothing_s=0.15, lockout_s=1.0, provenance="toy data")
    model = _stage2(tmp_path)
    save_checkpoint(tmp_path / "m.pt", model, metadata=meta)
    assert load_checkpoint(tmp_path / "m.pt").metadata == meta
    save_checkpoint(tmp_path / "plain.pt", model)
    assert load_checkpoint(tmp_path / "plain.pt").metadata == ModelMetadata()
