"""16x8 dense layers at the largest magnitudes the spec allows, on every backend: x = -32768 and w = +-127
make every product of a row 4161536 of one sign, the most an int16 x int8 product reaches, over rows up to
the longest (K = 16384). The spec's accumulator is int64 (docs/arithmetic.md 3.2), so a kernel that holds
a partial sum in int32 for too many products is caught here."""

import numpy as np
import pytest

from kwsint import ops, reference


@pytest.mark.parametrize("k", [16, 527, 528, 529, 2056, 4103, 16384])
def test_16x8_worst_case_rows_equal_reference(backend, k):
    """Each row's bias cancels its exact sum up to twice a small offset, so the output (scale 1/2) is the offset.
    Not scale 1: the requantized int64 is wrapped to int32, which would hide a sum off by 2^32."""
    rng = np.random.default_rng(k)
    for n in (8, 11):  # whole blocks of rows, and tail rows
        x = np.full(k, -32768, np.int16)
        w = np.full((n, k), -127, np.int8)
        w[1::2] = 127  # every other row at the most negative sum
        offset = rng.integers(-100, 101, n)
        bias = 2 * offset - w.astype(np.int64) @ x.astype(np.int64)
        case = dict(x=x, weights=w, bias=bias, input_zero_point=0, output_zero_point=0, multiplier=2**30, shift=0,
                    act_min=-32768, act_max=32767)
        got = ops.fully_connected(**case, backend=backend)
        np.testing.assert_array_equal(got, reference.fully_connected(**case), err_msg=f"n={n} k={k}")
        np.testing.assert_array_equal(got, offset, err_msg=f"n={n} k={k}")
