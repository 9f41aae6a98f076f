"""ESPHome's detection rule (kwsint.engine.graph_detector) on hand-made output sequences: a strict >, the sum of the
last N outputs, the cool-off of 100 frames at the start and after a detection, counted only on frames whose newest
output is below the cutoff; and the graphs a GraphDetector refuses, in one line."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from kwsint import GraphModel
from kwsint.engine.blob import write_blob
from kwsint.engine.graph import Quantize, Quant, Tensor
from kwsint.engine.graph_detector import GraphDetector, SlidingWindowRule, quantized_cutoff
from kwsint.interop.tflite_import import read_tflite
from tests.microwakeword_speech import long_stream_codes, speech_folder

from .test_graph import _single_op_graph

pymicro_wakeword = pytest.importorskip("pymicro_wakeword")
MODELS = Path(pymicro_wakeword.__file__).parent / "models"
STRIDE = 3  # the shipped models' input frames: an invoke every third frame


def _run(rule: SlidingWindowRule, outputs: list[int], frames: int | None = None) -> list[tuple[int, int]]:
    """Feeds ``rule`` frame by frame, ``outputs[k]`` arriving at frame STRIDE * k + STRIDE - 1 (as from a model
    invoked every STRIDE frames); the (frame, sum) of each detection."""
    frames = STRIDE * len(outputs) if frames is None else frames
    found = []
    for f in range(frames):
        k, last = divmod(f, STRIDE)
        fired = rule.frames(outputs[k] if last == STRIDE - 1 and k < len(outputs) else None, 1)
        if fired is not None:
            found.append((f, fired[1]))
    return found


def test_the_cutoff_is_truncated_as_esphome_generates_it():
    assert [quantized_cutoff(c) for c in (0.85, 0.97, 0.9, 0.95, 0.5, 1.0, 0.0)] == [216, 247, 229, 242, 127, 255, 0]
    with pytest.raises(ValueError, match=r"probability_cutoff: expected a number in \[0, 1\]"):
        quantized_cutoff(1.01)


def test_the_sum_must_exceed_cutoff_times_n():
    quiet = [0] * 40  # 120 frames below the cutoff: the cool-off is over at frame 99
    rule = SlidingWindowRule(216, 5)
    assert _run(rule, quiet + [216] * 10) == []  # 5 x 216 = 1080 is not > 1080
    rule.reset()
    # the fifth of 216, 216, 216, 216, 217 arrives at frame 3 * 44 + 2 = 134: 1081 > 1080
    assert _run(rule, quiet + [216, 216, 216, 216, 217, 0]) == [(134, 1081)]
    rule = SlidingWindowRule(216, 2)  # N counts: two outputs, 433 > 432
    assert _run(rule, quiet + [216, 217]) == [(3 * 41 + 2, 433)]


def test_nothing_is_detected_in_the_first_100_frames():
    rule = SlidingWindowRule(0, 1)  # cutoff 0: no output is below it, so the cool-off never ends
    assert _run(rule, [255] * 100) == []
    rule = SlidingWindowRule(10, 1)
    # outputs of 0 from the start: 100 frames below the cutoff end the cool-off at frame 99, where the output of
    # frame 98, which waited, is checked (sum 0); the first output above the cutoff arrives at frame 101
    assert _run(rule, [0] * 33 + [200]) == [(101, 200)]
    rule.reset()
    # an output above the cutoff stops the count: frames 0..95 count (96), then 255 from frame 98 on never does
    assert _run(rule, [0] * 32 + [255] * 40) == []


def test_a_waiting_output_fires_between_invokes_when_the_cool_off_ends():
    rule = SlidingWindowRule(216, 5)
    # frames 0..97 below the cutoff: the cool-off is at -2; four outputs of 255 (frames 98..109) stop the count;
    # at frame 110 the output 200 (< 216) makes it -1 with sum 4 * 255 + 200 = 1220 waiting; at frame 111, between
    # invokes, the count reaches 0 and the waiting sum fires
    assert _run(rule, [0] * 32 + [255] * 4 + [200], frames=112) == [(111, 1220)]


def test_after_a_detection_the_ring_is_zeroed_and_the_cool_off_restarts():
    rule = SlidingWindowRule(216, 5)
    quiet, loud = [0] * 40, [255] * 5
    found = _run(rule, quiet + loud + loud + quiet + loud)
    # fires once at the fifth loud output (frame 3 * 44 + 2); the next loud run comes too early (the ring was
    # zeroed, the count restarted and stalled under the outputs >= 216); after 40 quiet outputs the last run fires
    assert found == [(134, 1275), (3 * 94 + 2, 1275)]


@pytest.mark.parametrize("cutoff, window", [(216, 5), (10, 1), (0, 1), (128, 3), (254, 2)])
def test_a_run_of_frames_detects_as_its_frames_one_by_one(cutoff, window):
    rng = np.random.default_rng(cutoff)
    values = [None, 0, max(cutoff - 1, 0), cutoff, min(cutoff + 1, 255), 255]
    runs = [(values[rng.integers(len(values))], int(rng.choice([1, 2, 3, rng.integers(1, 150)])))
            for _ in range(3000)]
    whole, single = SlidingWindowRule(cutoff, window), SlidingWindowRule(cutoff, window)
    frame, found_whole, found_single = 0, [], []
    for output, count in runs:
        if (fired := whole.frames(output, count)) is not None:
            found_whole.append((frame + fired[0], fired[1]))
        for k in range(count):
            if (fired := single.frames(output if k == 0 else None, 1)) is not None:
                found_single.append((frame + k, fired[1]))
        frame += count
        assert whole.window_sum == single.window_sum
    assert found_whole == found_single
    assert len(found_whole) >= (0 if cutoff == 0 else 10)


def test_the_rule_refuses_settings_out_of_range():
    with pytest.raises(ValueError, match="cutoff: expected an integer in 0..255"):
        SlidingWindowRule(256, 5)
    with pytest.raises(ValueError, match="sliding_window_size: expected an integer in 1..1024"):
        SlidingWindowRule(216, 0)


@pytest.fixture(scope="module")
def nabu():
    return read_tflite(MODELS / "okay_nabu.tflite", settings=MODELS / "okay_nabu.json")


def test_the_detector_invokes_every_stride_frames_and_reports_its_window_sums(nabu):
    detector = GraphDetector(GraphModel(write_blob(nabu)), 0.85, 5)
    rng = np.random.default_rng(3)
    codes = rng.integers(-128, 128, (10, 40)).astype(np.int8)
    a = detector.push(codes[:4])
    b = detector.push(codes[4:])
    assert a.frame.tolist() == [2] and b.frame.tolist() == [5, 8] and detector.frames == 10
    stream = GraphModel(write_blob(nabu)).stream()
    want = [int(stream.invoke(codes[k : k + 3])[0, 0]) for k in (0, 3, 6)]
    assert [*a.output.tolist(), *b.output.tolist()] == want
    assert [*a.window_sum.tolist(), *b.window_sum.tolist()] == list(np.cumsum(want))
    detector.reset()
    assert detector.push(codes[:3]).output.tolist() == want[:1] and detector.frames == 3
    with pytest.raises(ValueError, match=r"codes: expected int8 \(frames, 40\), got float32"):
        detector.push(codes.astype(np.float32))


def test_the_detector_gives_the_same_steps_however_the_frames_are_cut(nabu, tmp_path_factory):
    model = GraphModel(write_blob(nabu))
    codes = long_stream_codes(speech_folder(tmp_path_factory))
    whole = GraphDetector(model, 0.85, 5).push(codes)
    assert len(whole.detections) >= 2
    detector = GraphDetector(model, 0.85, 5)
    rng = np.random.default_rng(18)
    cuts = np.sort(rng.integers(0, len(codes), 300))
    parts = [detector.push(part) for part in np.split(codes, cuts)]  # pieces of 0, 1, 2, ... frames
    for field in ("frame", "output", "window_sum"):
        assert np.array_equal(np.concatenate([getattr(p, field) for p in parts]), getattr(whole, field))
    assert [d for p in parts for d in p.detections] == whole.detections


def test_graphs_esphome_cannot_run_are_refused_in_one_line(nabu):
    last = nabu.ops[-1]
    assert isinstance(last, Quantize)
    assert last.out == len(nabu.tensors) - 1
    int8_out = dataclasses.replace(nabu, tensors=nabu.tensors[:-1], ops=nabu.ops[:-1], output=last.input)
    with pytest.raises(ValueError, match=r"^output: expected one uint8 value \(the wake word probability\), got "
                                         r"int8 \(1, 1\)$"):
        GraphDetector(GraphModel(write_blob(int8_out)), 0.85, 5)
    narrow = _single_op_graph(Tensor(3, 20, Quant(float(np.float32(26 / 255)), -128)),
                              Tensor(3, 20, Quant(float(np.float32(26 / 255)), 0), dtype="uint8"), Quantize(0, 1))
    with pytest.raises(ValueError, match=r"^input: expected \(frames, 40\) int8, the microfrontend's features, got "
                                         r"\(3, 20\)$"):
        GraphDetector(GraphModel(write_blob(narrow)), 0.85, 5)
    scaled = _single_op_graph(Tensor(3, 40, Quant(0.5, -128)), Tensor(3, 40, Quant(0.5, 0), dtype="uint8"),
                              Quantize(0, 1))
    with pytest.raises(ValueError, match=r"^input: expected scale 0.10196079 \(26/255\) and zero point -128, as "
                                         r"ESPHome's feature quantizer assumes, got scale 0.5 and zero point -128$"):
        GraphDetector(GraphModel(write_blob(scaled)), 0.85, 5)
