"""The labelled-window files (kwsint.data.dataset), the toy generator (kwsint.data.toydata) and kwsint-data."""

import json

import numpy as np
import pytest

from kwsint.cli import data
from kwsint.data.dataset import Windows, batches, load_windows, load_windows_many, save_windows
from kwsint.data.toydata import make_speaker, make_toy_windows
from kwsint.errors import FormatError


@pytest.fixture(scope="module")
def small():
    return make_toy_windows(40, seed=0, speakers=range(4))


def _windows(n=6, frames=81, bands=20):
    rng = np.random.default_rng(0)
    return dict(features=rng.normal(0, 3, (n, frames, bands)).astype(np.float32),
                labels=np.arange(n, dtype=np.int64) % 2, speakers=np.arange(n, dtype=np.int64) // 2)


def test_round_trip(small, tmp_path):
    path = tmp_path / "w.npz"
    save_windows(path, small)
    back = load_windows(path)
    for name in ("features", "labels", "speakers"):
        np.testing.assert_array_equal(getattr(back, name), getattr(small, name))
        assert getattr(back, name).dtype == getattr(small, name).dtype
    save_windows(path, Windows(small.features, small.labels))
    assert load_windows(path).speakers is None
    assert [p.name for p in tmp_path.iterdir()] == ["w.npz"]


def _features_with(value, at):
    features = np.zeros((6, 81, 20), np.float32)
    features[at] = value
    return features


def _replace(**changes):
    arrays = _windows()
    arrays.update(changes)
    return {k: v for k, v in arrays.items() if v is not None}


BAD_ARCHIVES = [
    ("features", _replace(features=None), "an array of that name"),
    ("labels", _replace(labels=None), "an array of that name"),
    ("speaker", _replace(speaker=np.zeros(6, np.int64)), "only arrays"),
    ("features", _replace(features=np.zeros((6, 81, 20), np.float64)), "float32 of shape"),
    ("features", _replace(features=np.zeros((6, 1620), np.float32)), "float32 of shape"),
    ("features", _replace(features=np.zeros((0, 81, 20), np.float32), labels=np.zeros(0, np.int64),
                          speakers=None), "at least one window"),
    ("features", _replace(features=np.full((6, 81, 20), np.nan, np.float32)), r"finite values, got nan at \[0, 0, 0\]"),
    ("features", _replace(features=_features_with(np.inf, at=(2, 40, 7))), r"finite values, got inf at \[2, 40, 7\]"),
    ("labels", _replace(labels=np.zeros(6, np.int32)), r"int64 of shape \(6,\)"),
    ("labels", _replace(labels=np.zeros(5, np.int64)), r"int64 of shape \(6,\) like features, got int64 \(5,\)"),
    ("labels", _replace(labels=np.array([0, 1, 2, 0, 1, 0])), r"values in \{0, 1\}, got 2 at \[2\]"),
    ("labels", _replace(labels=np.array([0, -1, 0, 0, 1, 0])), r"values in \{0, 1\}, got -1 at \[1\]"),
    ("speakers", _replace(speakers=np.zeros(6, np.float32)), "int64 of shape"),
    ("speakers", _replace(speakers=np.zeros(7, np.int64)), "int64 of shape"),
    ("speakers", _replace(speakers=np.array([0, 0, 1, -3, 2, 2])), r"ids >= 0, got -3 at \[3\]"),
    ("labels", _replace(labels=np.array([0, 1, None, 0, 1, 0], dtype=object)), "a readable array"),
]


@pytest.mark.parametrize("field, arrays, message", BAD_ARCHIVES)
def test_bad_archive_names_file_and_field(tmp_path, field, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(FormatError, match=message) as e:
        load_windows(path)
    assert str(e.value).startswith(f"{path}: {field}: expected ")


def test_unreadable_files_name_the_file(tmp_path):
    good = tmp_path / "good.npz"
    np.savez(good, **_windows())
    text, single, truncated = tmp_path / "notes.npz", tmp_path / "single.npz", tmp_path / "truncated.npz"
    text.write_text("features,labels\n")
    with open(single, "wb") as f:
        np.save(f, _windows()["features"])
    truncated.write_bytes(good.read_bytes()[:5000])
    for path, message in [(text, "a readable .npz archive"), (single, "an .npz archive, got a single .npy array"),
                          (truncated, "a readable .npz archive"), (tmp_path / "missing.npz", "FileNotFoundError"),
                          (tmp_path, "a readable .npz archive")]:
        with pytest.raises(FormatError, match=message) as e:
            load_windows(path)
        assert str(e.value).startswith(f"{path}: file: expected ")


def test_save_refuses_what_load_would_reject_and_writes_nothing(tmp_path):
    arrays = _windows()
    bad = Windows(arrays["features"], arrays["labels"] + 1, arrays["speakers"])
    with pytest.raises(FormatError, match="labels: expected values in"):
        save_windows(tmp_path / "w.npz", bad)
    assert list(tmp_path.iterdir()) == []


def test_load_many_concatenates_matching_files(small, tmp_path):
    a, b, other_shape, no_speakers = (tmp_path / f"{name}.npz" for name in ("a", "b", "shape", "nospk"))
    save_windows(a, small)
    arrays = _windows()
    save_windows(b, Windows(**arrays))
    both = load_windows_many([a, b])
    np.testing.assert_array_equal(both.features, np.concatenate([small.features, arrays["features"]]))
    np.testing.assert_array_equal(both.labels, np.concatenate([small.labels, arrays["labels"]]))
    np.testing.assert_array_equal(both.speakers, np.concatenate([small.speakers, arrays["speakers"]]))
    save_windows(other_shape, Windows(**_windows(frames=99)))
    with pytest.raises(FormatError, match=rf"^{other_shape}: features: expected windows of shape \(81, 20\) as in {a}"):
        load_windows_many([a, other_shape])
    save_windows(no_speakers, Windows(small.features, small.labels))
    with pytest.raises(FormatError, match=rf"^{no_speakers}: speakers: expected an array as in {a}, got none"):
        load_windows_many([a, no_speakers])
    with pytest.raises(ValueError):
        load_windows_many([])


def test_batches_visit_every_window_once_in_a_seeded_order(small):
    first = list(batches(small, 16, np.random.default_rng(5)))
    assert [len(labels) for _, labels in first] == [16, 16, 8]
    seen = np.concatenate([features for features, _ in first])
    order = [int(np.flatnonzero((small.features == window).all(axis=(1, 2)))[0]) for window in seen]
    assert sorted(order) == list(range(len(small)))
    np.testing.assert_array_equal(np.concatenate([labels for _, labels in first]), small.labels[order])
    again = list(batches(small, 16, np.random.default_rng(5)))
    assert all(np.array_equal(x, y) for (x, _), (y, _) in zip(first, again))
    with pytest.raises(ValueError):
        next(batches(small, 0, np.random.default_rng(0)))


def test_toy_windows_shapes_ranges_and_balance(small):
    assert small.features.shape == (40, 81, 20) and small.features.dtype == np.float32
    assert small.labels.dtype == np.int64 and small.labels.sum() == 20
    assert np.bincount(small.speakers).tolist() == [10, 10, 10, 10]
    assert np.isfinite(small.features).all()
    low, high = np.percentile(small.features, [1, 99])
    assert -10 < low < high < 10 and -20 < small.features.min() and small.features.max() < 20
    odd = make_toy_windows(7, seed=0, speakers=[3, 9], window_frames=100, feature_dim=40, positive_fraction=0.3)
    assert odd.features.shape == (7, 100, 40) and odd.labels.sum() == 2 and set(odd.speakers) == {3, 9}


def test_toy_windows_are_deterministic_in_seed_and_speakers(small):
    same = make_toy_windows(40, seed=0, speakers=range(4))
    for name in ("features", "labels", "speakers"):
        np.testing.assert_array_equal(getattr(same, name), getattr(small, name))
    assert not np.array_equal(make_toy_windows(40, seed=1, speakers=range(4)).features, small.features)
    assert not np.array_equal(make_toy_windows(40, seed=0, speakers=range(4, 8)).features, small.features)
    assert make_speaker(0, 3) == make_speaker(0, 3) != make_speaker(1, 3)


@pytest.mark.parametrize("kwargs", [dict(n=0), dict(seed=-1), dict(speakers=[]), dict(speakers=[1, 1]),
                                    dict(window_frames=60), dict(positive_fraction=1.5)])
def test_toy_windows_reject_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        make_toy_windows(**{"n": 10, "seed": 0, **kwargs})


def test_toy_task_is_learnable_on_unseen_speakers():
    """A numpy logistic regression on the model's 27 x 20 input generalises to held-out speakers."""
    train = make_toy_windows(2000, seed=0, speakers=range(24))
    held_out = make_toy_windows(1000, seed=0, speakers=range(24, 32))

    def inputs(windows):
        return windows.features[:, 2::3, :].astype(np.float64)  # the 27 frames the model sees, newest included

    mean, std = inputs(train).mean(axis=0), inputs(train).std(axis=0)
    weights, bias = np.zeros(mean.size), 0.0
    rng = np.random.default_rng(0)
    for _ in range(20):
        for features, labels in batches(Windows((inputs(train) - mean) / std, train.labels), 64, rng):
            x = features.reshape(len(labels), -1)
            error = 1 / (1 + np.exp(-(x @ weights + bias))) - labels
            weights -= 0.1 * (x.T @ error / len(labels) + 1e-3 * weights)
            bias -= 0.1 * error.mean()
    x = ((inputs(held_out) - mean) / std).reshape(len(held_out), -1)
    accuracy = np.mean((x @ weights + bias > 0) == held_out.labels)
    assert accuracy > 0.8


def _cli_lines(capsys):
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_cli_writes_speaker_disjoint_splits(tmp_path, capsys):
    out = tmp_path / "toy"
    assert data.main(["toy", str(out), "--train", "64", "--val", "16", "--test", "20", "--seed", "3"]) == 0
    lines = _cli_lines(capsys)
    assert [line["split"] for line in lines] == ["train", "val", "test"]
    assert [line["windows"] for line in lines] == [64, 16, 20]
    splits = {split: load_windows(out / f"{split}.npz") for split in ("train", "val", "test")}
    speakers = {split: set(w.speakers.tolist()) for split, w in splits.items()}
    assert not (speakers["train"] & speakers["val"] or speakers["train"] & speakers["test"]
                or speakers["val"] & speakers["test"])
    for line in lines:
        assert line["speaker_ids"] == sorted(speakers[line["split"]]) and line["speakers"] == len(line["speaker_ids"])
        assert line["positive_fraction"] == pytest.approx(splits[line["split"]].labels.mean(), abs=1e-4)


def test_cli_refuses_to_overwrite_without_force(tmp_path, capsys):
    args = ["toy", str(tmp_path), "--train", "8", "--val", "4", "--test", "4"]
    (tmp_path / "val.npz").write_bytes(b"precious")
    assert data.main(args) == 1
    assert "val.npz: exists; use --force" in capsys.readouterr().err
    assert (tmp_path / "val.npz").read_bytes() == b"precious" and not (tmp_path / "train.npz").exists()
    assert data.main([*args, "--force"]) == 0
    assert len(load_windows(tmp_path / "val.npz")) == 4


def test_cli_usage_errors_exit_2(tmp_path, capsys):
    assert data.main(["toy", str(tmp_path), "--train", "0"]) == 2
    assert "must be >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        data.main([])
    assert e.value.code == 2
    assert list(tmp_path.iterdir()) == []
