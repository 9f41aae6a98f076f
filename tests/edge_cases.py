"""Which edge cases of the arithmetic a test case reaches, and where.

Each function recomputes a case with the steps of kwsint.reference and tallies,
per output element, the events that a wrong kernel would get wrong: outputs
inside the clamp, rounding ties of SRDHM, of RoundingDivideByPOT and of the
16x8 single rounding (by sign), the SRDHM saturation, left shifts and output
zero points that wrap modulo 2^32, int32 results within 128 of the limits, and
int16 accumulation blocks whose doubling would wrap. An event is tallied as
``NAME`` for every element and as ``NAME@W`` when the element lies in the
whole vectors of a W-lane kernel (index < N - N % W), not in its scalar tail.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from kwsint import reference

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
LANES = (8, 16)


def _tally(counts: Counter, name: str, mask: np.ndarray) -> None:
    """Count the True elements of `mask` (..., N), in all and per vector width by their last index."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.size:
        return
    counts[name] += int(mask.sum())
    n = mask.shape[-1]
    for w in LANES:
        counts[f"{name}@{w}"] += int(mask[..., : n - n % w].sum())


def requantize_events(acc: np.ndarray, multiplier, shift) -> tuple[Counter, np.ndarray]:
    """Events of requantizing `acc` (int32 or int64, (..., N)) with per-channel or scalar parameters, and the
    requantized values (int64, before the output zero point)."""
    counts: Counter = Counter()
    acc = np.asarray(acc)
    n = acc.shape[-1]
    mult = np.broadcast_to(np.asarray(multiplier, dtype=np.int64), (n,))
    sh = np.broadcast_to(np.asarray(shift, dtype=np.int64), (n,))
    a = acc.astype(np.int64)
    if acc.dtype == np.int64:  # 16x8: reduced multiplier, one rounding shift by `total`
        reduced = np.where(mult < 0x7FFF0000, (mult + (1 << 15)) >> 16, 0x7FFF)
        total = 15 - sh
        prod = a * reduced
        half = np.int64(1) << (total - 1)
        tie = (prod & ((half << 1) - 1)) == half
        _tally(counts, "s64_tie+", tie & (prod > 0))
        _tally(counts, "s64_tie-", tie & (prod < 0))
        r = reference.requantize(acc, mult, sh)
        _tally(counts, "s64_wrap", ((prod + half) >> total) != r)
        return counts, r
    left = np.maximum(sh, 0)
    right = np.maximum(-sh, 0)
    shifted = reference._wrap_int32(a << left)
    _tally(counts, "shift_wrap", shifted != (a << left))
    _tally(counts, "srdhm_saturation", (shifted == INT32_MIN) & (mult == INT32_MIN))
    prod = shifted * mult
    tie = (prod & (2**31 - 1)) == 2**30
    _tally(counts, "srdhm_tie+", tie & (prod > 0))
    _tally(counts, "srdhm_tie-", tie & (prod < 0))
    x = reference.saturating_rounding_doubling_high_mul(shifted, mult)
    half = np.where(right > 0, np.int64(1) << np.maximum(right - 1, 0), -1)
    tie = (x & ((np.int64(1) << right) - 1)) == half
    _tally(counts, "rdbpot_tie+", tie & (x > 0))
    _tally(counts, "rdbpot_tie-", tie & (x < 0))
    r = reference.rounding_divide_by_pot(x, right)
    return counts, r


def output_events(acc: np.ndarray, multiplier, shift, output_zero_point: int, act_min: int,
                  act_max: int) -> Counter:
    """Events of a layer's epilogue on its accumulators (B, N) or (N,) (int32 for int8, int64 for 16x8)."""
    counts, r = requantize_events(acc, multiplier, shift)
    pre = r + output_zero_point
    out = reference._wrap_int32(pre)
    near = (r > INT32_MAX - 128) | (r < INT32_MIN + 128)
    _tally(counts, "near_limit", near)
    _tally(counts, "zero_point_wrap", out != pre)
    _tally(counts, "outputs", np.ones(out.shape, bool))
    _tally(counts, "unclamped", (out >= act_min) & (out <= act_max) & (act_min < act_max))
    counts["cases"] += 1
    counts["constant_clamp"] += act_min == act_max
    return counts


def layer_events(kind: str, case: dict) -> Counter:
    """Events of one fully_connected (kind "dense") or affine case, given as the ops' keyword arguments."""
    x = np.asarray(case["x"])
    w = np.asarray(case["weights"])
    if kind == "dense":
        acc = reference._accumulate(x, w, case["bias"], case["input_zero_point"])
    else:
        acc = (x.astype(np.int64) - case["input_zero_point"]) * w.astype(np.int64)
        if case["bias"] is not None:
            acc = acc + np.asarray(case["bias"], dtype=np.int64)
    acc = acc.astype(np.int32 if x.dtype == np.int8 else np.int64)
    return output_events(acc, case["multiplier"], case["shift"], case["output_zero_point"], case["act_min"],
                         case["act_max"])


def acc16_events(case: dict, log2_block: int) -> Counter:
    """layer_events, plus "acc16_double_wrap": rows (per batch row) where a kernel that summed twice the
    proven block in int16 would end a block with a wrapped lane — what a wrong block size shows. A lane
    here sums the products of one residue mod 8 in an aligned block of 2^(log2_block + 1), as the NEON
    kernel's lanes do (an AVX2 lane sums four of the eight residues); int16 addition wraps, so only the
    block's final lane sum matters."""
    counts = layer_events("dense", case)
    if log2_block == 0:
        return counts
    x = np.asarray(case["x"]).reshape(-1, np.asarray(case["x"]).shape[-1]).astype(np.int64)
    w = np.asarray(case["weights"]).astype(np.int64)
    n, k = w.shape
    block = 2 << log2_block
    pad = -k % block
    prods = np.concatenate([x[:, None, :] * w[None], np.zeros((x.shape[0], n, pad), np.int64)], axis=2)
    # (B, N, blocks, block / 8, 8): a lane sums one residue mod 8 within a block
    lanes = prods.reshape(x.shape[0], n, -1, block // 8, 8)
    sums = lanes.sum(axis=3)
    wraps = ((sums < -32768) | (sums > 32767)).any(axis=(2, 3))
    _tally(counts, "acc16_double_wrap", wraps)
    return counts
