"""kwsint.evaluation and kwsint-eval: manifests, event counting, DET sweeps, relative FDR, the CLI end to end."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

import kwsint
from kwsint import reference
from kwsint.cli import eval as eval_cli
from kwsint.engine.model import lockout_steps
from kwsint.engine.float_model import FloatModel
from kwsint.evaluation import (Det, LabelledStream, StreamCounts, at_frr, count_streams,
                               float_posterior_q16, interval, load_features, load_model, operating_point_replicates,
                               parse_selection, read_manifest, relative_fdr_pct, resample_weights, score_stream,
                               select_streams, step_time_s)
from kwsint.train.generate import random_model
from kwsint.train.qat.checkpoint import save_checkpoint
from kwsint.train.qat.model import KWSNet, NetConfig


def _stream(kind="negative", spans=(), tags=None):
    return LabelledStream(Path("x.npy"), kind, tuple(spans), "test", tags or {})


def _count(streams, smoothed, thresholds=(1,), lockout=0, tolerance_s=0.0, hours=1.0):
    """Counts for hand-made Q16 sequences with one step per 10 ms frame: step i ends at (i + 1) * 10 ms."""
    step_frames = [np.arange(len(s)) for s in smoothed]
    return count_streams(streams, step_frames, [np.asarray(s) for s in smoothed], thresholds, lockout,
                         tolerance_s).total(hours)


def _at(*times_cs, length):
    """A 0/1 sequence of ``length`` steps that is 1 at the steps ending at these times (in 10 ms units)."""
    s = np.zeros(length, np.int32)
    s[[t - 1 for t in times_cs]] = 1
    return s


# --- counting on hand-made sequences -----------------------------------------------------------


def test_hit_miss_and_false_detection():
    # spans 0.20-0.40 s and 1.00-1.20 s; detections at 0.30 s (hit), 0.70 s (past 0.40 + 0.2: false)
    det = _count([_stream("positive", [(0.2, 0.4), (1.0, 1.2)])], [_at(30, 70, length=150)], tolerance_s=0.2)
    assert (det.hits[0], det.false_detections[0], det.duplicates[0]) == (1, 1, 0)
    assert det.frr[0] == 0.5 and det.fdr[0] == 0.5 and det.false_per_hour[0] == 1.0


def test_false_detections_in_negative_streams_count_per_hour_of_all_audio():
    det = _count([_stream("positive", [(0.1, 0.2)]), _stream()], [_at(15, length=50), _at(10, 30, length=50)],
                 hours=0.5)
    assert (det.hits[0], det.false_detections[0]) == (1, 2)
    assert det.false_per_hour[0] == 4.0 and det.fdr[0] == pytest.approx(2 / 3)


def test_further_detections_in_a_hit_span_are_duplicates_and_a_lockout_merges_them():
    s = _at(12, 14, 18, length=30)  # three detections inside 0.10-0.20 s
    no_lockout = _count([_stream("positive", [(0.1, 0.2)])], [s])
    assert (no_lockout.hits[0], no_lockout.false_detections[0], no_lockout.duplicates[0]) == (1, 0, 2)
    lockout = _count([_stream("positive", [(0.1, 0.2)])], [s], lockout=2)  # fires at 12 and 18 (18 - 12 > 2)
    assert (lockout.hits[0], lockout.duplicates[0]) == (1, 1)
    merged = _count([_stream("positive", [(0.1, 0.2)])], [s], lockout=6)
    assert (merged.hits[0], merged.duplicates[0], merged.false_detections[0]) == (1, 0, 0)


def test_lockout_over_a_long_run_and_not_across_streams():
    run = np.ones(10, np.int32)  # above threshold for 10 steps: fires at steps 0, 4, 8 with lockout 3
    det = _count([_stream(), _stream()], [run, run], lockout=3)
    assert det.false_detections[0] == 6  # each stream starts afresh


def test_tolerance_boundaries_are_inside():
    # 0.01 + 0.06 < 0.07 in binary floating point; the detection at exactly end + tolerance still hits
    span = [_stream("positive", [(0.0, 0.01)])]
    assert _count(span, [_at(7, length=20)], tolerance_s=0.06).hits[0] == 1
    assert _count(span, [_at(8, length=20)], tolerance_s=0.06).false_detections[0] == 1
    starts = [_stream("positive", [(0.07, 0.09)])]
    assert _count(starts, [_at(7, length=20)]).hits[0] == 1
    assert _count(starts, [_at(6, length=20)]).false_detections[0] == 1


def test_a_detection_in_two_tolerance_windows_belongs_to_the_later_span():
    det = _count([_stream("positive", [(0.2, 0.4), (0.5, 0.7)])], [_at(55, length=100)], tolerance_s=0.5)
    assert (det.hits[0], det.false_detections[0], det.frr[0]) == (1, 0, 0.5)


def test_lockout_steps_and_step_times():
    assert lockout_steps(1.0, 3) == 33 and lockout_steps(0.99, 3) == 33 and lockout_steps(0.0, 3) == 0
    np.testing.assert_allclose(step_time_s(np.array([80, 83])), [0.81, 0.84])


def _naive(spans_cs, smoothed, threshold, lockout, tolerance_cs):
    """docs/evaluation.md's rules, one detection at a time, in integer 10 ms units."""
    hits, false, dups = set(), 0, 0
    base = 0
    for spans, s in zip(spans_cs, smoothed):
        for t in reference.detect(s, threshold, lockout):
            time = int(t) + 1
            started = [j for j, (a, _) in enumerate(spans) if a <= time]
            if started and time <= spans[started[-1]][1] + tolerance_cs:
                dups += (base + started[-1]) in hits
                hits.add(base + started[-1])
            else:
                false += 1
        base += len(spans)
    return len(hits), false, dups


@st.composite
def labelled_sequences(draw):
    streams = []
    for _ in range(draw(st.integers(1, 3))):
        length = draw(st.integers(1, 40))
        cuts = sorted(draw(st.lists(st.integers(0, length), max_size=6, unique=True)))
        spans = [(a, b) for a, b in zip(cuts[::2], cuts[1::2]) if a < b]
        streams.append((spans, np.array(draw(st.lists(st.integers(0, 6), min_size=length, max_size=length)))))
    return streams


@given(labelled_sequences(), st.integers(0, 8), st.integers(0, 5))
def test_counts_equal_the_rules_applied_one_detection_at_a_time(data, lockout, tolerance_cs):
    spans_cs = [spans for spans, _ in data]
    smoothed = [s for _, s in data]
    streams = [_stream("positive" if spans else "negative", [(a / 100, b / 100) for a, b in spans])
               for spans in spans_cs]
    thresholds = np.arange(0, 8)
    det = _count(streams, smoothed, thresholds, lockout, tolerance_cs / 100)
    for k, threshold in enumerate(thresholds):
        got = det.hits[k], det.false_detections[k], det.duplicates[k]
        assert got == _naive(spans_cs, smoothed, threshold, lockout, tolerance_cs)
    # per stream: each row is that stream counted alone, and the rows sum to the totals
    per = count_streams(streams, [np.arange(len(s)) for s in smoothed], smoothed, thresholds, lockout,
                        tolerance_cs / 100)
    for i, (stream, s) in enumerate(zip(streams, smoothed)):
        alone = _count([stream], [s], thresholds, lockout, tolerance_cs / 100)
        for name in ("hits", "false_detections", "duplicates"):
            np.testing.assert_array_equal(getattr(per, name)[i], getattr(alone, name))
    total = per.total(1.0)
    for name in ("hits", "false_detections", "duplicates"):
        np.testing.assert_array_equal(getattr(total, name), getattr(det, name))


# --- DET curves ---------------------------------------------------------------------------------


@given(labelled_sequences(), st.integers(0, 8))
def test_det_is_monotone_without_lockout_and_detections_never_grow_with_the_threshold(data, lockout):
    streams = [_stream("positive" if spans else "negative", [(a / 100, b / 100) for a, b in spans])
               for spans, _ in data]
    thresholds = np.arange(0, 8)
    smoothed = [s for _, s in data]
    free = _count(streams, smoothed, thresholds, 0, 0.02)
    assert np.all(np.diff(free.hits) <= 0) and np.all(np.diff(free.false_detections) <= 0)
    locked = _count(streams, smoothed, thresholds, lockout, 0.02)
    assert np.all(np.diff(locked.hits + locked.false_detections + locked.duplicates) <= 0)


def test_with_a_lockout_a_higher_threshold_can_hit_what_a_lower_one_locked_out():
    # a false detection at 0.05 s (threshold 1) locks out the wakeword at 0.08 s; at threshold 2 only the latter fires
    det = _count([_stream("positive", [(0.07, 0.09)])], [np.array([0, 0, 0, 0, 1, 0, 0, 2, 0])], (1, 2), lockout=5)
    np.testing.assert_array_equal(det.frr, [1.0, 0.0])


def _det(hits, false, spans=10, hours=2.0):
    return Det(np.arange(len(hits)), np.array(hits), np.array(false), np.zeros(len(hits), np.int64), spans, hours)


def test_relative_fdr_at_the_baseline_frr():
    base = _det([10, 8, 5], [20, 4, 0])  # FRR 0, 0.2, 0.5; FDR at 0.2: 4 / 12
    same_levels = _det([10, 8, 8, 5], [25, 9, 6, 0])  # at FRR 0.2 the fewest false detections count: 6 / 14
    interpolated = _det([10, 9, 7, 5], [30, 6, 3, 0])  # FDR 0.4 at FRR 0.1, 0.3 at FRR 0.3: 0.35 at 0.2
    base_fdr, base_fph = at_frr(base, 0.2)
    assert base_fdr == pytest.approx(1 / 3) and base_fph == 2.0
    assert relative_fdr_pct(at_frr(same_levels, 0.2)[0], base_fdr) == pytest.approx(100 * 2 / 7)
    fdr, fph = at_frr(interpolated, 0.2)
    assert fdr == pytest.approx(0.35) and fph == pytest.approx(2.25)
    assert relative_fdr_pct(fdr, base_fdr) == pytest.approx(5.0)
    assert at_frr(_det([8, 5], [3, 0]), 0.1) is None and relative_fdr_pct(0.2, 0.0) is None
    # without detections there is no FDR: the curve ends at the last point with any
    assert at_frr(_det([8, 5, 0, 0], [3, 1, 2, 0]), 1.0) == (1.0, 1.0) and at_frr(_det([8, 0], [3, 0]), 1.0) is None


# --- bootstrap intervals ------------------------------------------------------------------------


def _counts(hits, false, spans, thresholds=None):
    """StreamCounts from per-stream rows (S, K)."""
    hits, false = np.array(hits, np.int32), np.array(false, np.int32)
    k = hits.shape[1]
    return StreamCounts(np.arange(k) if thresholds is None else thresholds, hits, false, np.zeros_like(hits),
                        np.array(spans, np.int64))


def test_resample_weights_draw_each_group_apart_and_repeat_with_the_seed():
    groups = [np.array([0, 2, 3]), np.array([1, 4])]
    w = resample_weights(groups, 6, 50, np.random.default_rng(7))
    assert w.shape == (50, 6) and (w[:, [0, 2, 3]].sum(1) == 3).all() and (w[:, [1, 4]].sum(1) == 2).all()
    assert (w[:, 5] == 0).all() and len({tuple(row) for row in w}) > 1
    np.testing.assert_array_equal(w, resample_weights(groups, 6, 50, np.random.default_rng(7)))
    assert interval(np.array([np.nan, np.nan]), 0.9) is None
    assert interval(np.array([np.nan, *range(101)]), 0.9) == pytest.approx([5.0, 95.0])  # NaN: undefined, left out


def test_identical_streams_give_zero_width_intervals():
    # two positive streams alike, two negative alike: every resample has the same rates
    base = _counts([[2, 1, 0], [2, 1, 0], [0, 0, 0], [0, 0, 0]], [[3, 1, 0], [3, 1, 0], [4, 2, 0], [4, 2, 0]],
                   [2, 2, 0, 0])
    other = _counts([[2, 1, 0], [2, 1, 0], [0, 0, 0], [0, 0, 0]], [[5, 2, 0]] * 2 + [[6, 3, 0]] * 2, [2, 2, 0, 0])
    hours = np.array([0.5, 0.5, 1.0, 1.0])
    weights = resample_weights([np.array([0, 1]), np.array([2, 3])], 4, 200, np.random.default_rng(0))
    operating, models = operating_point_replicates([base, other], hours, 1, weights)
    assert interval(operating["frr"], 0.95) == [0.5, 0.5]
    assert interval(operating["false_per_hour"], 0.95) == [2.0, 2.0]  # 6 false in 3 h
    assert interval(models[0]["fdr"], 0.95) == [0.75, 0.75]  # 6 false, 2 hits at FRR 0.5
    assert interval(models[1]["relative_fdr_degradation_pct"], 0.95) == pytest.approx([100 * (10 / 12 - 0.75) / 0.75] * 2)


def test_intervals_contain_the_point_estimates():
    rng = np.random.default_rng(3)
    n_pos, n_neg, levels = 20, 20, np.arange(6) / 6  # thresholds as levels of a random strength in [0, 1)
    spans = np.r_[rng.integers(1, 4, n_pos), np.zeros(n_neg, int)]
    # a span is hit, a false detection fires, while the threshold is below its strength
    hits = np.array([(rng.random(n)[None, :] > levels[:, None]).sum(1) for n in spans])
    events = rng.poisson(2, n_pos + n_neg)
    strengths = [rng.random(n) for n in events]
    false = np.array([(x[None, :] > levels[:, None]).sum(1) for x in strengths])
    lessened = np.array([(0.8 * x[None, :] > levels[:, None]).sum(1) for x in strengths])
    counts = [_counts(hits, false, spans), _counts(hits, lessened, spans)]
    hours = rng.uniform(0.1, 1.0, n_pos + n_neg)
    weights = resample_weights([np.arange(n_pos), np.arange(n_pos, n_pos + n_neg)], n_pos + n_neg, 500,
                               np.random.default_rng(0))
    operating, models = operating_point_replicates(counts, hours, 3, weights)
    base = counts[0].total(hours.sum())
    for name, value in (("frr", base.frr[3]), ("false_per_hour", base.false_per_hour[3])):
        low, high = interval(operating[name], 0.95)
        assert low < value < high
    base_fdr = at_frr(base, base.frr[3])[0]
    for c, m in zip(counts, models):
        fdr, fph = at_frr(c.total(hours.sum()), base.frr[3])
        for name, value in (("fdr", fdr), ("false_per_hour", fph)):
            low, high = interval(m[name], 0.95)
            assert low < value < high
    low, high = interval(models[1]["relative_fdr_degradation_pct"], 0.95)
    assert low < relative_fdr_pct(at_frr(counts[1].total(hours.sum()), base.frr[3])[0], base_fdr) < high < 0


# --- manifests ----------------------------------------------------------------------------------


def _write_manifest(tmp_path, streams, name="data.json"):
    path = tmp_path / name
    path.write_text(json.dumps({"streams": streams}))
    return path


def test_manifest_json_and_jsonl(tmp_path):
    streams = [{"features": "p.npy", "kind": "positive", "spans": [[0.5, 1.0], [1.5, 2]]},
               {"features": "/abs/n.npy", "kind": "negative"}]
    got = read_manifest(_write_manifest(tmp_path, streams))
    assert got[0].features == tmp_path / "p.npy" and got[0].spans == ((0.5, 1.0), (1.5, 2.0))
    assert got[1].features == Path("/abs/n.npy") and got[1].spans == () and got[1].kind == "negative"
    lines = tmp_path / "data.jsonl"
    lines.write_text("\n".join(json.dumps(s) for s in streams) + "\n\n")
    assert read_manifest(lines) == [LabelledStream(s.features, s.kind, s.spans, f"{lines}:{i + 1}")
                                    for i, s in enumerate(got)]


POSITIVE = {"features": "p.npy", "kind": "positive", "spans": [[0.5, 1.0]]}


@pytest.mark.parametrize("streams, message", [
    ([POSITIVE, {"features": "n.npy", "kind": "negativ"}], r"streams\[1\]: kind: expected 'positive' or 'negative'"),
    ([{**POSITIVE, "span": [[0, 1]]}], r"streams\[0\]: unknown field 'span'"),
    ([{"kind": "positive", "spans": [[0, 1]]}], r"streams\[0\]: features: expected the path"),
    ([{**POSITIVE, "spans": []}], r"streams\[0\]: spans: a positive stream needs"),
    ([POSITIVE, {"features": "n.npy", "kind": "negative", "spans": [[0, 1]]}], r"streams\[1\]: spans: a negative"),
    ([{**POSITIVE, "spans": [[1.0, 0.5]]}], r"streams\[0\]: spans\[0\]: expected 0 <= start < end"),
    ([{**POSITIVE, "spans": [[0.5, 1.0], [0.9, 1.2]]}], r"spans\[1\]: starts at 0.9 s, before the previous"),
    ([{**POSITIVE, "spans": [[0.5, "1.0"]]}], r"spans\[0\]: expected a finite number"),
    ([{**POSITIVE, "spans": [[0.5]]}], r"spans\[0\]: expected \[start, end\]"),
    ([{"features": "n.npy", "kind": "negative"}], "no positive stream"),
    (["p.npy"], r"streams\[0\]: expected an object"),
    ([{**POSITIVE, "tags": ["flite"]}], r"streams\[0\]: tags: expected an object of names to values, got list"),
    ([{**POSITIVE, "tags": {"syn thesizer": "flite"}}], r"streams\[0\]: tags: name 'syn thesizer': expected letters"),
    ([{**POSITIVE, "tags": {"": "flite"}}], r"streams\[0\]: tags: name '': expected letters"),
    ([{**POSITIVE, "tags": {"synthesizer": 3}}], r"streams\[0\]: tags.synthesizer: expected a string .*, got 3"),
    ([{**POSITIVE, "tags": {"synthesizer": ""}}], r"streams\[0\]: tags.synthesizer: expected a string .*, got ''"),
    ([{**POSITIVE, "tags": {"category": "near miss"}}], r"tags.category: .*got 'near miss'"),
])
def test_manifest_errors_name_the_entry_and_field(tmp_path, streams, message):
    path = _write_manifest(tmp_path, streams)
    with pytest.raises(kwsint.FormatError, match=message) as e:
        read_manifest(path)
    assert str(path) in str(e.value)


def test_tags_are_read_and_streams_selected_by_them(tmp_path):
    tags = {"synthesizer": "flite", "category": "near-miss.v2+x_1"}
    got = read_manifest(_write_manifest(tmp_path, [{**POSITIVE, "tags": tags}, POSITIVE]))
    assert got[0].tags == tags and got[1].tags == {}
    with pytest.raises(TypeError):
        got[0].tags["synthesizer"] = "espeak"  # read-only
    streams = [_stream("positive", [(0, 1)], {"syn": "flite"}), _stream("positive", [(0, 1)], {"syn": "espeak"}),
               _stream("positive", [(0, 1)]), _stream("negative", (), {"cat": "speech", "syn": "flite"}),
               _stream("negative", (), {"cat": "music"}), _stream("negative")]

    def kept(*texts):
        return [i for i, s in enumerate(streams) if s in select_streams(streams, [parse_selection(t) for t in texts])]

    assert kept() == [0, 1, 2, 3, 4, 5]
    assert kept("positive:syn=flite") == [0, 3, 4, 5]  # negatives untouched
    assert kept("syn=flite") == [0, 3]  # both kinds; a stream without the key is dropped
    assert kept("syn=flite,espeak", "negative:cat=speech,real") == [0, 1, 3]
    assert kept("positive:syn=flite", "positive:syn=espeak") == [3, 4, 5]  # every selection must keep it
    selection = parse_selection("negative:cat=speech,real-speech")
    assert (selection.kind, selection.key, selection.values) == ("negative", "cat", ("speech", "real-speech"))
    assert str(selection) == "negative:cat=speech,real-speech" and str(parse_selection("a=b")) == "a=b"
    for bad in ("syn", "syn=", "=flite", "syn=a,", "neutral:syn=a", "syn=a b"):
        with pytest.raises(ValueError, match=r"expected \[positive:\|negative:\]KEY=VALUE"):
            parse_selection(bad)


def test_manifest_file_errors(tmp_path):
    with pytest.raises(kwsint.FormatError, match="missing.json: cannot read"):
        read_manifest(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"streams": [')
    with pytest.raises(kwsint.FormatError, match="bad.json: not JSON"):
        read_manifest(bad)
    bad.write_text('[{"features": "p.npy", "kind": "positive", "spans": [[0, 1]]}]')
    with pytest.raises(kwsint.FormatError, match="bad.json: expected an object with 'streams'"):
        read_manifest(bad)
    bad.write_text('{"streams": [], "frame_shift": 0.02}')
    with pytest.raises(kwsint.FormatError, match=r"bad.json: frame_shift: expected 0.01 \(seconds\), got 0.02"):
        read_manifest(bad)
    lines = tmp_path / "bad.jsonl"
    lines.write_text(json.dumps(POSITIVE) + "\n{oops\n")
    with pytest.raises(kwsint.FormatError, match="bad.jsonl:2: not JSON"):
        read_manifest(lines)


@pytest.mark.parametrize("array, message", [
    (np.zeros((100, 19), np.float32), r"expected float frames of shape \(T, 20\)"),
    (np.zeros((100, 20), np.int16), "expected float frames"),
    (np.full((100, 20), np.inf, np.float32), "NaN or Inf"),
    (np.zeros((90, 20), np.float32), r"spans\[0\]: ends at 1.0 s, after the stream \(90 frames"),
])
def test_feature_errors_name_the_entry_and_file(tmp_path, array, message):
    np.save(tmp_path / "p.npy", array)
    stream = read_manifest(_write_manifest(tmp_path, [POSITIVE]))[0]
    with pytest.raises(kwsint.FormatError, match=message) as e:
        load_features(stream, 20)
    assert "data.json: streams[0]" in str(e.value)
    with pytest.raises(kwsint.FormatError, match=r"streams\[0\]: features .*missing.npy: cannot read"):
        load_features(LabelledStream(tmp_path / "missing.npy", "negative", (), f"{tmp_path}/data.json: streams[0]"),
                      20)


# --- scoring and the CLI end to end -------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Two tiny random models, a float checkpoint of the same window, and a manifest of synthetic streams
    (3 positive, 3 negative, 2-3 s each, all tagged but the last)."""
    d = tmp_path_factory.mktemp("eval")
    for name, seed, bits in (("base", 0, 8), ("w4", 1, 4)):
        kwsint.save(random_model((16, 16), weight_bits=bits, seed=seed, window_frames=21), d / f"{name}.kwsq")
    torch.manual_seed(0)
    net = KWSNet(NetConfig((16, 16), (8, 8, 8), window_frames=21), "float")
    with torch.no_grad():  # the streams' feature range, so the posteriors vary
        net.feature_mean.fill_(-5.0)
        net.feature_inv_std.fill_(0.4)
    save_checkpoint(d / "f.pt", net)
    tags = [{"category": "speech"}, {"synthesizer": "a"}, {"category": "near-miss"}, {"synthesizer": "b"},
            {"category": "speech"}, {}]
    rng = np.random.default_rng(0)
    streams = []
    for i in range(6):
        frames = rng.normal(-5.0, 2.5, (200 + 50 * i, 20))  # the random models' calibration range
        entry = {"features": f"s{i}.npy", "kind": "positive" if i % 2 else "negative", "tags": tags[i]}
        if i % 2:
            entry["spans"] = [[0.5, 0.9], [1.4, 1.8]]
            frames[50:90] += 3.0
            frames[140:180] += 3.0
        np.save(d / f"s{i}.npy", frames.astype(np.float32))
        streams.append(entry)
    (d / "data.json").write_text(json.dumps({"streams": streams}))
    return d


def test_score_stream_equals_the_model_on_each_window(tiny):
    model = kwsint.load(tiny / "base.kwsq")
    frames = np.load(tiny / "s0.npy")
    step_frames, post = score_stream(model, frames, 4)
    np.testing.assert_array_equal(step_frames, np.arange(20, 200, 4))
    windows = np.stack([frames[f - 20 : f + 1] for f in step_frames])
    np.testing.assert_array_equal(post, model.infer_batch(windows).posterior_q16)


def test_float_scoring_steps_as_the_integer_detector(tiny):
    float_model = load_model(tiny / "f.pt")
    assert isinstance(float_model, FloatModel)
    frames = np.load(tiny / "s1.npy")
    for hop in (1, 4):
        step_frames, post = score_stream(float_model, frames, hop)
        np.testing.assert_array_equal(step_frames, score_stream(kwsint.load(tiny / "base.kwsq"), frames, hop)[0])
        logits = np.stack([float_model.infer(frames[f - 20 : f + 1]) for f in step_frames])
        np.testing.assert_array_equal(post, float_posterior_q16(logits))
        assert len(np.unique(post)) > 10
    assert score_stream(float_model, frames[:20], 1)[0].size == 0


def test_float_posterior_is_the_rounded_softmax():
    logits = np.array([[0, 0], [0, 1e4], [1e4, 0], [0, np.log(3)], [0.5, -0.25]], np.float32)
    want = [32768, 65536, 0, 49152, round(65536 / (1 + np.exp(0.75)))]
    np.testing.assert_array_equal(float_posterior_q16(logits), want)


def test_cli_writes_plot_markdown_and_json(tiny, tmp_path, capsys):
    out = tmp_path / "report"
    argv = ["--manifest", str(tiny / "data.json"), "--models", str(tiny / "base.kwsq"), str(tiny / "w4.kwsq"),
            "--out", str(out), "--no-progress", "--smoothing", "0.09", "--lockout", "0.5", "--threshold", "0.3"]
    assert eval_cli.main(argv) == 0
    assert (out / "det.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    report = json.loads((out / "report.json").read_text())
    markdown = (out / "report.md").read_text()
    assert capsys.readouterr().out == markdown
    assert [m["name"] for m in report["models"]] == ["base", "w4"]
    assert all(f"| {name} |" in markdown for name in ("base", "w4"))
    assert report["data"] == dict(streams=6, positive_streams=3, negative_streams=3, spans=6,
                                  hours=pytest.approx((200 + 250 + 300 + 350 + 400 + 450) / 360000), manifest_streams=6)
    base, w4 = report["models"]
    assert base["weight_bits"] == "8" and w4["weight_bits"] == "4" and w4["size_bytes"] < base["size_bytes"]
    assert base["size_bytes"] == (tiny / "base.kwsq").stat().st_size
    assert report["settings"]["bootstrap"] == 1000 and report["selection"] == []
    low, high = report["operating_point"]["ci"]["frr"]
    assert low <= report["operating_point"]["frr"] <= high
    assert f"{100 * report['operating_point']['frr']:.2f} [{100 * low:.2f}, {100 * high:.2f}]%" in markdown
    assert sorted(report["breakdown"]) == ["category", "synthesizer"] and "## By `synthesizer`" in markdown
    assert [v["value"] for v in report["breakdown"]["category"]] == ["near-miss", "speech"]
    assert report["operating_point"]["threshold_q16"] == reference.threshold_q16(0.3)
    assert base["at_operating_point"]["relative_fdr_degradation_pct"] in (0.0, None)
    assert base["lockout_steps"] == lockout_steps(0.5, 3) and base["det"]["threshold_q16"][-1] > 0
    assert report["settings"]["smoothing_s"] == 0.09 and base["smoothing_steps"] == 3  # 0.09 s of 3-frame steps

    assert eval_cli.main(argv) == 1
    assert "exist; use --force" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:  # exclusive with --threshold
        eval_cli.main(argv + ["--force", "--false-per-hour", "100"])
    assert e.value.code == 2
    assert eval_cli.main(argv[:-2] + ["--force", "--false-per-hour", "100"]) == 0
    report = json.loads((out / "report.json").read_text())
    op = report["operating_point"]
    assert op["chosen_by"] == "false_per_hour"
    i = report["models"][0]["det"]["threshold_q16"].index(op["threshold_q16"])
    assert report["models"][0]["det"]["false_per_hour"][i] <= 100


def test_cli_errors(tiny, tmp_path, capsys):
    base = ["--models", str(tiny / "base.kwsq"), "--out", str(tmp_path / "r"), "--no-progress"]
    assert eval_cli.main(["--manifest", str(tmp_path / "none.json"), *base]) == 1
    assert "none.json: cannot read the manifest" in capsys.readouterr().err
    short = tmp_path / "short.json"
    np.save(tmp_path / "short.npy", np.zeros((10, 20), np.float32))
    short.write_text(json.dumps({"streams": [{"features": "short.npy", "kind": "positive", "spans": [[0, 0.1]]}]}))
    assert eval_cli.main(["--manifest", str(short), *base]) == 1
    warning, error = capsys.readouterr().err.splitlines()
    assert warning == (f"kwsint-eval: warning: {short}: streams[0]: features {tmp_path / 'short.npy'}: 10 frames, "
                       "shorter than one window of 21 frames: no step ran, nothing can be detected in it")
    assert error == f"kwsint-eval: error: {tiny / 'base.kwsq'}: no stream is as long as one window (21 frames): " \
                    "nothing to evaluate"
    with pytest.raises(SystemExit) as e:
        eval_cli.main(["--manifest", str(short), *base, "--smoothing", "-0.1"])
    assert e.value.code == 2 and "--smoothing: -0.1: expected a value in [0, inf]" in capsys.readouterr().err
    assert eval_cli.main(["--manifest", str(tiny / "data.json"), *base, "--smoothing", "31"]) == 1
    assert capsys.readouterr().err == ("kwsint-eval: error: smoothing: 31 s is 1033 steps of 0.03 s; the detector "
                                       "smooths over at most 1024 steps (30.72 s)\n")
    assert not (tmp_path / "r").exists()


def test_a_short_stream_is_warned_about_and_its_spans_missed(tiny, tmp_path, capsys):
    """A stream shorter than one window gets one warning line; the others are evaluated, its span counts as missed."""
    np.save(tmp_path / "short.npy", np.zeros((15, 20), np.float32))
    streams = json.loads((tiny / "data.json").read_text())["streams"]
    streams = [dict(s, features=str(tiny / s["features"])) for s in streams]
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps({"streams": [*streams, {"features": "short.npy", "kind": "positive",
                                                            "spans": [[0.0, 0.1]]}]}))
    out = tmp_path / "r"
    argv = ["--manifest", str(manifest), "--models", str(tiny / "base.kwsq"), "--out", str(out), "--no-progress"]
    assert eval_cli.main(argv) == 0
    assert capsys.readouterr().err == (f"kwsint-eval: warning: {manifest}: streams[6]: features {tmp_path / 'short.npy'}"
                                       ": 15 frames, shorter than one window of 21 frames: no step ran, nothing can "
                                       "be detected in it\n")
    report = json.loads((out / "report.json").read_text())
    assert report["data"]["spans"] == 7 and min(report["models"][0]["det"]["frr"]) >= 1 / 7


def test_cli_without_matplotlib_writes_the_reports(tiny, tmp_path, capsys, monkeypatch):
    """No matplotlib: report.md and report.json are written, det.png skipped (an old one removed), with a note."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed: imports of it fail
    out = tmp_path / "r"
    out.mkdir()
    (out / "det.png").write_bytes(b"an old plot")
    argv = ["--manifest", str(tiny / "data.json"), "--models", str(tiny / "base.kwsq"), "--out", str(out),
            "--no-progress", "--force"]
    assert eval_cli.main(argv) == 0
    captured = capsys.readouterr()
    assert captured.err == (f"kwsint-eval: note: {out / 'det.png'} not written: the plot needs matplotlib: "
                            "pip install 'kwsint[eval]'\n")
    assert captured.out == (out / "report.md").read_text()
    assert json.loads((out / "report.json").read_text())["models"][0]["name"] == "base"
    assert sorted(p.name for p in out.iterdir()) == ["report.json", "report.md"]


def test_cli_float_baseline_selection_and_breakdown(tiny, tmp_path, capsys):
    out = tmp_path / "r"
    argv = ["--manifest", str(tiny / "data.json"), "--models", str(tiny / "f.pt"), str(tiny / "base.kwsq"),
            "--out", str(out), "--no-progress", "--bootstrap", "200", "--seed", "5", "--confidence", "0.9",
            "--select", "positive:synthesizer=a,b", "--select", "negative:category=speech"]
    assert eval_cli.main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    markdown = capsys.readouterr().out
    assert report["selection"] == ["positive:synthesizer=a,b", "negative:category=speech"]
    assert report["data"]["streams"] == 4 and report["data"]["spans"] == 4 and report["data"]["manifest_streams"] == 6
    f, base = report["models"]
    assert (f["name"], f["weight_bits"], f["act_bits"]) == ("f", "f32", 32)
    assert f["size_bytes"] == 4 * (21 // 3 * 20 * 16 + 16 * 16 + 16 * 2 + 2 * 16)  # dense weights, folded BN scales
    assert "| f | f32 | 32 |" in markdown and "`positive:synthesizer=a,b`" in markdown
    assert f["at_operating_point"]["matched_threshold_q16"] == report["operating_point"]["threshold_q16"]
    for m in report["models"]:
        for name, ci in m["at_operating_point"]["ci"].items():
            assert ci is None or ci[0] <= ci[1]
    synthesizer = report["breakdown"]["synthesizer"]
    assert [(v["value"], v["positive_streams"], v["negative_streams"]) for v in synthesizer] == [("a", 1, 0), ("b", 1, 0)]
    assert synthesizer[0]["models"][0]["false_per_hour"] is None and synthesizer[0]["models"][0]["frr"] in (0.0, 0.5, 1.0)
    speech = report["breakdown"]["category"][0]
    assert (speech["value"], speech["negative_streams"]) == ("speech", 2)
    assert speech["negative_hours"] == pytest.approx((200 + 400) / 360000)

    assert eval_cli.main([*argv, "--force"]) == 0  # the same seed, the same intervals
    assert json.loads((out / "report.json").read_text()) == report
    capsys.readouterr()
    assert eval_cli.main([*argv, "--force", "--select", "synthesizer=c"]) == 1
    assert capsys.readouterr().err == (f"kwsint-eval: error: {tiny / 'data.json'}: no positive stream left by the "
                                       "selection positive:synthesizer=a,b negative:category=speech synthesizer=c: "
                                       "the false rejection rate needs wakeword spans\n")
    for bad, message in ((["--select", "synthesizer"], "argument --select: 'synthesizer': expected "
                                                       "[positive:|negative:]KEY=VALUE[,VALUE...]"),
                         (["--confidence", "1"], "argument --confidence: 1: expected a value in (0, 1)")):
        with pytest.raises(SystemExit) as e:
            eval_cli.main([*argv, "--force", *bad])
        err = capsys.readouterr().err.splitlines()
        assert e.value.code == 2 and message in err[-1]


def test_float_checkpoints_need_torch_and_the_float_stage(tiny, tmp_path, capsys, monkeypatch):
    assert isinstance(load_model("default:M0"), FloatModel)
    with pytest.raises(ValueError, match="M4.pt: a stage2 checkpoint; the float path runs float-stage ones only"):
        load_model(kwsint.default_model.path("M4.pt"))
    monkeypatch.setitem(sys.modules, "torch", None)  # as if not installed
    argv = ["--manifest", str(tiny / "data.json"), "--models", str(tiny / "f.pt"), "--out", str(tmp_path / "r"),
            "--no-progress"]
    assert eval_cli.main(argv) == 1
    assert capsys.readouterr().err == (f"kwsint-eval: error: {tiny / 'f.pt'}: reading a float checkpoint needs "
                                       "PyTorch: pip install 'kwsint[train]'\n")
