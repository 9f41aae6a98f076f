"""The reference against values worked out by hand from the TFLM/gemmlowp definitions."""

import numpy as np
import pytest

from kwsint import reference as R


def test_srdhm_saturates_only_for_int32_min_squared():
    assert R.saturating_rounding_doubling_high_mul(-(2**31), -(2**31)) == 2**31 - 1
    assert R.saturating_rounding_doubling_high_mul(-(2**31), 2**31 - 1) == -(2**31) + 1


@pytest.mark.parametrize("x, e, want", [(5, 1, 3), (-5, 1, -3), (3, 1, 2), (-3, 1, -2), (4, 1, 2),
                                        (7, 2, 2), (6, 2, 2), (-6, 2, -2), (-(2**31), 31, -1), (2**31 - 1, 31, 1)])
def test_rounding_divide_by_pot_rounds_half_away_from_zero(x, e, want):
    assert R.rounding_divide_by_pot(x, e) == want


@pytest.mark.parametrize("scale, want", [
    (0.5, (2**30, 0)), (1.0, (2**30, 1)), (0.75, (3 * 2**29, 0)), (0.0, (0, 0)),
    (2.0**-40, (0, 0)),           # below 2^-31: all bits shifted out, TFLM returns zero
    (1 - 2.0**-40, (2**30, 1)),   # rounds up to 2^31: the fix-up halves it
    (2.0**-31, (2**30, -30)),
])
def test_quantize_multiplier(scale, want):
    assert R.quantize_multiplier(scale) == want


def test_requantize_s32_double_rounding():
    # 0.5 * 101 = 50.5: SRDHM nudges positive ties up.
    assert R.requantize(np.int32(101), 2**30, 0) == 51
    # Multiplier 0.5 then a right shift of 1: 0.25 * 6 = 1.5 -> SRDHM gives 3, RDBPOT(3, 1) = 2.
    assert R.requantize(np.int32(6), 2**30, -1) == 2
    # Left shifts wrap as int32: 2^30 << 1 = -2^31, times 0.5 = -2^30.
    assert R.requantize(np.int32(2**30), 2**30, 1) == -(2**30)


def test_requantize_s64_reduces_the_multiplier_to_16_bits():
    # multiplier 0.5 -> reduced 2^14; total shift 15: (1000 * 2^14 + 2^14) >> 15 = 500
    assert R.requantize(np.int64(1000), 2**30, 0) == 500
    assert R.requantize(np.int64(1001), 2**30, 0) == 501  # 500.5 rounds up
    assert R.requantize(np.int64(-1001), 2**30, 0) == -500  # -500.5 rounds up, toward +inf
    # multipliers at or above 0x7FFF0000 saturate the reduced multiplier at 0x7FFF
    assert R.requantize(np.int64(2**15), 0x7FFF0000, 0) == 0x7FFF


def test_quantize_rounds_half_away_and_saturates():
    x = np.array([2.5, -2.5, 0.49999997, 1e30, -1e30, np.nan, 126.5], dtype=np.float32)
    np.testing.assert_array_equal(R.quantize(x, 1.0, 0, 8), [3, -3, 0, 127, -128, -128, 127])
    np.testing.assert_array_equal(R.quantize(np.float32([1.5]), 0.5, -10, 8), [-7])


def test_posterior_table_ends():
    assert R.POSTERIOR_TABLE[0] == 32768 and R.POSTERIOR_TABLE[-1] == 65536
    logits = np.array([[0, 0], [0, 10_000], [10_000, 0]])
    np.testing.assert_array_equal(R.posterior_q16(logits, *R.quantize_multiplier(0.1 * 4096)), [32768, 65536, 0])


def test_smoothing_averages_the_steps_seen_so_far():
    p = np.array([0, 65536, 65536, 65536, 3, 4], dtype=np.int32)
    s = R.smooth_posteriors(p, 3)
    # n = 1, 2, 3, 3, 3, 3; half-up rounding of the integer mean
    assert s.tolist() == [0, 32768, 43691, 65536, (65536 * 2 + 3 + 1) // 3, (65536 + 3 + 4 + 1) // 3]
    assert R.smooth_posteriors(p, 1).tolist() == p.tolist()


def test_detection_lockout_gives_one_event_per_burst():
    s = np.array([0, 50000, 60000, 60000, 0, 0, 60000, 60000, 0, 60000], dtype=np.int32)
    assert R.detect(s, 50000, 0).tolist() == [1, 2, 3, 6, 7, 9]
    assert R.detect(s, 50000, 2).tolist() == [1, 6, 9]
    assert R.detect(s, 50000, 5).tolist() == [1, 7]
    assert R.detect(s, 65537, 0).tolist() == []
    assert R.threshold_q16(0.5) == 32768 and R.threshold_q16(1.0) == 65536
