"""The strategies reach the edge cases of the arithmetic, in the vector lanes: floors that fail when one regresses.

Each strategy is drawn 300 times (derandomized, as the "ci" profile draws) and
tests/edge_cases.py tallies what its cases reach. The floors sit at about half
of what the strategies reach today: a change that stops planting ties in vector
lanes, or lets outputs drift back to the clamp, fails here. ``NAME@W`` counts
elements inside the whole vectors of a W-lane kernel (not in a scalar tail).
"""

from __future__ import annotations

from collections import Counter
from typing import Callable

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from kwsint import reference

from . import edge_cases as ev, strategies as S
from .interop import test_tflm_oracle as tflm_oracle

EXAMPLES = 300


def _tally(strategy: st.SearchStrategy, events: Callable[[object], Counter]) -> Counter:
    counts: Counter = Counter()

    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def draw(example):
        counts.update(events(example))

    draw()
    return counts


def _tflm_events(kind: str, per_channel: bool) -> Callable[[dict], Counter]:
    """Events of a TFLM oracle case, with the multipliers TFLM derives from its scales."""
    def events(c: dict) -> Counter:
        mult, shift = reference.dense_multipliers(float(c["si"]), c["ws"], float(c["so"]))
        if not per_channel:
            mult, shift = int(mult[0]), int(shift[0])
        return ev.layer_events(kind, dict(x=c["x"], weights=c["weights"], bias=c["bias"], input_zero_point=c["zp_in"],
                                          output_zero_point=c["zp_out"], multiplier=mult, shift=shift,
                                          act_min=c["act_min"], act_max=c["act_max"]))
    return events


def _both_signs(*names: str, floor: int, lanes=(8, 16)) -> dict[str, int]:
    return {f"{name}{sign}@{w}": floor for name in names for sign in "+-" for w in lanes}


def _each_lane(*names: str, floor: int, lanes=(8, 16)) -> dict[str, int]:
    return {f"{name}@{w}": floor for name in names for w in lanes}


LAYER_FLOORS = {**_both_signs("srdhm_tie", "rdbpot_tie", "s64_tie", floor=50),
                **_each_lane("zero_point_wrap", "near_limit", "shift_wrap", "s64_wrap", floor=30)}

# name: (strategy, events of one example, floors of events, least share of outputs inside the clamp)
CASES = {
    "layer dense": (S.layer_case("dense"), lambda c: ev.layer_events("dense", c), LAYER_FLOORS, 0.55),
    "layer affine": (S.layer_case("affine"), lambda c: ev.layer_events("affine", c), LAYER_FLOORS, 0.55),
    "requantize s32": (S.requantize_s32_case(), lambda c: ev.requantize_events(*c)[0],
                       {**_both_signs("srdhm_tie", "rdbpot_tie", floor=100),
                        **_each_lane("srdhm_saturation", "shift_wrap", floor=100)}, None),
    "requantize s64": (S.requantize_s64_case(), lambda c: ev.requantize_events(*c)[0],
                       {**_both_signs("s64_tie", floor=100), **_each_lane("s64_wrap", floor=100)}, None),
    "acc16": (S.acc16_case(), lambda c: ev.acc16_events(*c),
              {**_each_lane("acc16_double_wrap", floor=200), **_both_signs("rdbpot_tie", floor=50),
               **_each_lane("zero_point_wrap", floor=15)}, 0.55),
    "tflm dense int8 per-channel": (tflm_oracle.layer_case("dense", 8, True), _tflm_events("dense", True),
                                    _both_signs("srdhm_tie", "rdbpot_tie", floor=30, lanes=(8,)), 0.5),
    "tflm dense int8 per-tensor": (tflm_oracle.layer_case("dense", 8, False), _tflm_events("dense", False),
                                   _both_signs("srdhm_tie", floor=30, lanes=(8,)), 0.5),
    "tflm dense 16x8": (tflm_oracle.layer_case("dense", 16, True), _tflm_events("dense", True),
                        _both_signs("s64_tie", floor=30, lanes=(8,)), 0.5),
    "tflm affine int8": (tflm_oracle.layer_case("affine", 8, True), _tflm_events("affine", True),
                         _both_signs("srdhm_tie", "rdbpot_tie", floor=30, lanes=(8,)), 0.5),
    "tflm affine 16x8": (tflm_oracle.layer_case("affine", 16, True), _tflm_events("affine", True),
                         _both_signs("s64_tie", floor=30, lanes=(8,)), 0.5),
}


@pytest.mark.parametrize("name", list(CASES))
def test_strategy_reaches_the_edge_cases(name):
    strategy, events, floors, unclamped = CASES[name]
    counts = _tally(strategy, events)
    short = {event: counts[event] for event, floor in floors.items() if counts[event] < floor}
    assert not short, f"{name}: too few of {short} (floors {floors}); all counts: {dict(sorted(counts.items()))}"
    if unclamped is not None:
        share = counts["unclamped"] / counts["outputs"]
        assert share >= unclamped, f"{name}: {share:.0%} of outputs inside the clamp, want >= {unclamped:.0%}"
        assert counts["constant_clamp"] <= 0.1 * counts["cases"], f"{name}: {counts['constant_clamp']} of " \
            f"{counts['cases']} cases clamp to one value (act_min == act_max)"
