"""Test vectors for tests/aarch64/driver.c, with the outputs kwsint.reference expects.

Formats (all little-endian; driver.c checks every length it reads):

    vectors: b"KWV1", u32 num_cases, per case: u32 op, u32 name_len, backend name,
             u32 payload_len, payload (op-specific: the ``_*_case`` functions below, and driver.c)
    results: b"KWR1", u32 num_cases, per case: u32 op, i32 status, u32 out_len, out

A case's expected output is a list of labelled little-endian arrays, so a
mismatch can be reported as "section, element, got, want" rather than a byte
offset.
"""

from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

import kwsint
from kwsint import reference
from kwsint.engine.blob import write_blob
from kwsint.engine.graph import ReferenceStream
from kwsint.engine.limits import BIAS_LIMIT, MAX_SHIFT
from kwsint.train.generate import paper_model, random_model

from ..strategies import (INT32_MAX, INT32_MIN, act_range, activations, grid_max, layer_case, requantize_s32_case,
                          requantize_s64_case, weight_codes)

OP_REQUANTIZE_S32 = 1
OP_REQUANTIZE_S64 = 2
OP_FULLY_CONNECTED_S8 = 3
OP_FULLY_CONNECTED_S16 = 4
OP_AFFINE_S8 = 5
OP_AFFINE_S16 = 6
OP_QUANTIZE = 7
OP_POSTERIOR = 8
OP_MODEL = 9
OP_DETECTOR = 10
OP_FULLY_CONNECTED_F32 = 11
OP_AFFINE_F32 = 12
OP_DENSE_OP = 13
OP_GRAPH = 14
OP_NAMES = {
    OP_REQUANTIZE_S32: "requantize_s32", OP_REQUANTIZE_S64: "requantize_s64",
    OP_FULLY_CONNECTED_S8: "fully_connected_s8", OP_FULLY_CONNECTED_S16: "fully_connected_s16",
    OP_AFFINE_S8: "affine_s8", OP_AFFINE_S16: "affine_s16", OP_QUANTIZE: "quantize",
    OP_POSTERIOR: "posterior", OP_MODEL: "model", OP_DETECTOR: "detector",
    OP_FULLY_CONNECTED_F32: "fully_connected_f32", OP_AFFINE_F32: "affine_f32", OP_DENSE_OP: "dense_op",
    OP_GRAPH: "graph",
}
KWS_WEIGHTS_PACKED = 1
KWS_OK, KWS_ERR_ARGUMENT, KWS_ERR_BACKEND = 0, 1, 9


@dataclass(repr=False)
class Case:
    op: int
    payload: bytes
    desc: str
    want: list[tuple[str, np.ndarray]] = field(default_factory=list)  # labelled expected output
    want_status: int = KWS_OK

    def __repr__(self) -> str:  # short: pytest prints the case list in tracebacks
        return f"Case({OP_NAMES.get(self.op, self.op)}, {self.desc!r})"

    def want_bytes(self) -> bytes:
        return b"".join(a.tobytes() for _, a in self.want)


def _u32(*v: int) -> bytes:
    return struct.pack(f"<{len(v)}I", *v)


def _i32(*v: int) -> bytes:
    return struct.pack(f"<{len(v)}i", *v)


def _le(a, dtype: str) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a).astype(dtype, casting="unsafe"))


# --- file formats ------------------------------------------------------------------


def write_vectors(cases: list[Case], backend: str) -> bytes:
    name = backend.encode()
    parts = [b"KWV1", _u32(len(cases))]
    for c in cases:
        parts += [_u32(c.op, len(name)), name, _u32(len(c.payload)), c.payload]
    return b"".join(parts)


def read_results(data: bytes) -> list[tuple[int, int, bytes]]:
    """[(op, status, out)] from a results file, checking its structure."""
    if data[:4] != b"KWR1":
        raise ValueError(f"results: bad magic {data[:4]!r}")
    (n,) = struct.unpack_from("<I", data, 4)
    pos, out = 8, []
    for i in range(n):
        if pos + 12 > len(data):
            raise ValueError(f"results: truncated in case {i} header")
        op, status, size = struct.unpack_from("<IiI", data, pos)
        pos += 12
        if pos + size > len(data):
            raise ValueError(f"results: truncated in case {i} output")
        out.append((op, status, data[pos : pos + size]))
        pos += size
    if pos != len(data):
        raise ValueError(f"results: {len(data) - pos} bytes after the last case")
    return out


def describe_mismatch(case: Case, status: int, got: bytes) -> str | None:
    """None if the driver's output equals the expectation, else what differs first."""
    if status != case.want_status:
        return f"status {status}, want {case.want_status}"
    want = case.want_bytes()
    if got == want:
        return None
    if len(got) != len(want):
        return f"{len(got)} output bytes, want {len(want)}"
    offset = 0
    for label, arr in case.want:
        size = arr.nbytes
        if got[offset : offset + size] != arr.tobytes():
            g = np.frombuffer(got[offset : offset + size], dtype=arr.dtype)
            w = arr.reshape(-1)
            bits = f"<u{arr.itemsize}"  # compare bits: floats differing only in the sign of zero differ
            bad = np.flatnonzero(g.view(bits) != w.view(bits))
            return (f"{label}: {bad.size} of {w.size} values differ; first at [{bad[0]}]: "
                    f"got {g[bad[0]]}, want {w[bad[0]]}")
        offset += size
    return "outputs differ"  # unreachable: equal sections give equal bytes


def compare(cases: list[Case], results: bytes, label: str) -> str:
    """Checks the driver's results against the cases; returns a per-op summary.

    Raises AssertionError naming the first few mismatches of every op.
    """
    got = read_results(results)
    assert len(got) == len(cases), f"{label}: {len(got)} results for {len(cases)} cases"
    counts: Counter[str] = Counter()
    bad: Counter[str] = Counter()
    examples: list[str] = []
    for i, (case, (op, status, out)) in enumerate(zip(cases, got)):
        name = OP_NAMES[case.op]
        counts[name] += 1
        assert op == case.op, f"{label}, case {i}: driver answered op {op} for op {case.op}"
        problem = describe_mismatch(case, status, out)
        if problem:
            bad[name] += 1
            if bad[name] <= 3:  # the first few of every op
                examples.append(f"  case {i} ({name}, {case.desc}): {problem}")
    summary = ", ".join(f"{name} {counts[name] - bad[name]}/{counts[name]}" for name in OP_NAMES.values())
    assert not bad, (f"{label}: {sum(bad.values())} of {len(cases)} cases differ from kwsint.engine.reference "
                     f"(equal/total per op: {summary}); first ones:\n" + "\n".join(examples))
    return summary


# --- requantize ----------------------------------------------------------------------


def _requantize_case(acc, mult, shift, desc: str) -> Case:
    wide = np.asarray(acc).dtype == np.int64
    acc = np.asarray(acc, dtype=np.int64 if wide else np.int32).reshape(-1)
    n = acc.size
    mult = np.broadcast_to(np.asarray(mult, dtype=np.int64), (n,)).astype(np.int32)
    shift = np.broadcast_to(np.asarray(shift, dtype=np.int64), (n,)).astype(np.int32)
    # The reference takes per-element multipliers and shifts (numpy broadcasting).
    want = reference.requantize(acc, mult.astype(np.int64), shift.astype(np.int64)) if n else np.zeros(0)
    payload = _u32(n) + _le(acc, "<i8" if wide else "<i4").tobytes() + _le(mult, "<i4").tobytes() \
        + _le(shift, "<i4").tobytes()
    return Case(OP_REQUANTIZE_S64 if wide else OP_REQUANTIZE_S32, payload, desc, [("out", _le(want, "<i4"))])


def _collect(strategy, count: int) -> list:
    """``count`` examples of ``strategy``, drawn inside a derandomized @given run (deterministic)."""
    out: list = []

    @settings(max_examples=count, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def draw(example):
        out.append(example)

    draw()
    return out


def requantize_s32_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    # Hypothesis: the strategy of tests/engine/test_ops.py (per-element ties, saturations and wraps in every lane).
    for acc, mult, shift in _collect(requantize_s32_case(), 300):
        cases.append(_requantize_case(acc, mult, shift, f"hypothesis n={acc.size}"))
    for shift in range(-31, 31):
        n = 67
        # Full-range accumulators, QuantizeMultiplier-range multipliers.
        acc = rng.integers(INT32_MIN, INT32_MAX, n, endpoint=True)
        acc[:6] = [INT32_MIN, INT32_MIN + 1, -1, 0, 1, INT32_MAX]
        cases.append(_requantize_case(acc.astype(np.int32), rng.integers(2**30, 2**31, n), shift,
                                      f"shift {shift}, full-range acc"))
        # Small accumulators (what layers see), any int32 multiplier.
        acc = rng.integers(-(1 << 20), 1 << 20, n)
        mult = rng.integers(INT32_MIN, INT32_MAX, n, endpoint=True)
        mult[:5] = [INT32_MIN, INT32_MAX, 0, -1, 1 << 30]
        cases.append(_requantize_case(acc.astype(np.int32), mult, shift, f"shift {shift}, any multiplier"))
        # Saturation: SRDHM(INT32_MIN, INT32_MIN) = INT32_MAX, and a left shift that wraps onto INT32_MIN;
        # 7 pairs repeated over 35 elements, so every pair lies in the whole vectors of 4, 8 and 16 lanes.
        left = max(shift, 0)
        wraps_to_min = -(1 << (31 - left)) if left else INT32_MIN
        acc = np.array([INT32_MIN, INT32_MIN, INT32_MIN, wraps_to_min, wraps_to_min, INT32_MAX, 1 << 30],
                       dtype=np.int64)
        mult = np.array([INT32_MIN, INT32_MAX, 1 << 30, INT32_MIN, INT32_MAX, INT32_MIN, INT32_MIN])
        cases.append(_requantize_case(np.tile(acc, 5).astype(np.int32), np.tile(mult, 5), shift,
                                      f"shift {shift}, INT32_MIN saturation"))
        # Ties. SRDHM: a*b = odd * 2^30 (multiplier m_odd * 2^j, acc a_odd * 2^(30-j)).
        j = rng.integers(0, 31, n)
        m_odd = (rng.integers(1 << 30, 1 << 31, n) >> j) | 1
        a_odd = (rng.integers(0, np.int64(1) << j, n) * 2 + 1) * rng.choice([-1, 1], n)
        cases.append(_requantize_case((a_odd << (30 - j)).astype(np.int32), m_odd << j, shift,
                                      f"shift {shift}, SRDHM ties"))
        if shift < 0:
            # RoundingDivideByPOT ties: SRDHM(acc, 2^30) = acc / 2 exactly = odd * 2^(e - 1).
            e = -shift
            odd = (rng.integers(0, np.int64(1) << max(30 - e, 0), n) * 2 + 1) * rng.choice([-1, 1], n)
            acc = odd << e
            acc = np.where((acc >= INT32_MIN) & (acc <= INT32_MAX), acc, INT32_MIN)
            cases.append(_requantize_case(acc.astype(np.int32), 1 << 30, shift, f"shift {shift}, RDBPOT ties"))
            # Both roundings on odd accumulators: SRDHM tie, then the divide.
            acc = rng.integers(-(1 << 24), 1 << 24, n) | 1
            cases.append(_requantize_case(acc.astype(np.int32), 1 << 30, shift, f"shift {shift}, double ties"))
    # Per-element multipliers and shifts, every length 0..70 (SIMD bodies and tails).
    for n in range(71):
        acc = rng.integers(INT32_MIN, INT32_MAX, n, endpoint=True) >> rng.integers(0, 31, n)
        mult = np.where(rng.random(n) < 0.8, rng.integers(2**30, 2**31, n),
                        rng.integers(INT32_MIN, INT32_MAX, n, endpoint=True))
        cases.append(_requantize_case(acc.astype(np.int32), mult, rng.integers(-31, 31, n),
                                      f"n={n}, per-element multiplier and shift"))
    return cases


def requantize_s64_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for acc, mult, shift in _collect(requantize_s64_case(), 300):
        cases.append(_requantize_case(acc, mult, shift, f"hypothesis n={acc.size}"))
    lim = (1 << 47) - 1
    for shift in range(-31, 8):
        n = 67
        acc = rng.integers(-lim, lim, n, endpoint=True)
        acc[:5] = [-lim, lim, -1, 0, 1]
        mult = rng.integers(2**30, 2**31, n)
        mult[:4] = [0x7FFF0000 - 1, 0x7FFF0000, INT32_MAX, 0]
        cases.append(_requantize_case(acc, mult, shift, f"shift {shift}, full-range acc"))
        acc = rng.integers(-(1 << 36), 1 << 36, n)
        cases.append(_requantize_case(acc, rng.integers(0, 2**31, n), shift, f"shift {shift}, 16x8-range acc"))
        # Ties of the single rounding: reduced multiplier r (odd), acc = odd * 2^(total_shift - 1).
        total = 15 - shift
        r = rng.integers(0, 0x3FFF, n) * 2 + 1
        mult = (r << 16) + rng.integers(-(1 << 15), 1 << 15, n)  # rounds to r when reduced
        odd_max = max((lim >> (total - 1)) // 2, 1)
        odd = (rng.integers(0, odd_max, n) * 2 + 1) * rng.choice([-1, 1], n)
        cases.append(_requantize_case((odd << (total - 1)).astype(np.int64), mult, shift, f"shift {shift}, ties"))
    for n in range(71):
        acc = rng.integers(-lim, lim, n, endpoint=True) >> rng.integers(0, 47, n)
        cases.append(_requantize_case(acc, rng.integers(0, 2**31, n), rng.integers(-31, 8, n),
                                      f"n={n}, per-element multiplier and shift"))
    return cases


# --- fully connected and affine ----------------------------------------------------


def _layer_case(kind: str, x, weights, bias, input_zero_point, output_zero_point, multiplier, shift, act_min,
                act_max, desc: str, packed_bits: int | None = None) -> Case:
    """``packed_bits``: a prepared dense op (OP_DENSE_OP) with weight_bits = packed_bits held
    packed (KWS_WEIGHTS_PACKED), so the backend's 4-bit or 1-bit kernel runs; it also answers
    the plan's code_bits."""
    x = np.asarray(x)
    act_bits = 8 if x.dtype == np.int8 else 16
    want = (reference.fully_connected if kind == "dense" else reference.affine)(
        x, weights, bias, input_zero_point=input_zero_point, output_zero_point=output_zero_point,
        multiplier=multiplier, shift=shift, act_min=act_min, act_max=act_max)
    x2 = x.reshape(-1, x.shape[-1])
    batches = x2.shape[0]
    n = weights.shape[0]
    dims = _u32(batches, weights.shape[1], n) if kind == "dense" else _u32(batches, n)
    if packed_bits is not None:
        dims = _u32(batches, weights.shape[1], n, packed_bits, KWS_WEIGHTS_PACKED)
    mult = np.broadcast_to(np.asarray(multiplier, dtype=np.int64), (n,))
    sh = np.broadcast_to(np.asarray(shift, dtype=np.int64), (n,))
    bias_dtype = "<i4" if act_bits == 8 else "<i8"
    payload = b"".join([
        dims, _i32(input_zero_point, output_zero_point, act_min, act_max), _u32(bias is not None),
        _le(mult, "<i4").tobytes(), _le(sh, "<i4").tobytes(), _le(weights, "i1").tobytes(),
        b"" if bias is None else _le(bias, bias_dtype).tobytes(), _le(x2, "i1" if act_bits == 8 else "<i2").tobytes(),
    ])
    y = ("y", _le(want, "i1" if act_bits == 8 else "<i2"))
    if packed_bits is not None:
        return Case(OP_DENSE_OP, payload, desc, [("code_bits", _le([1 if packed_bits == 1 else 4], "<i4")), y])
    op = {("dense", 8): OP_FULLY_CONNECTED_S8, ("dense", 16): OP_FULLY_CONNECTED_S16,
          ("affine", 8): OP_AFFINE_S8, ("affine", 16): OP_AFFINE_S16}[kind, act_bits]
    return Case(op, payload, desc, [y])


# K and N that hit every SIMD body/tail split: 1..70, then around multiples of 8..64 up to 600.
EDGE_DIMS = sorted(set(range(1, 71)) | {m + d for m in range(64, 601, 32) for d in (-1, 0, 1)} | {599, 600})


def _calibrated_layer(rng, kind: str, k: int, n: int, act_bits: int, bits: int, per_channel: bool, batches: int,
                      desc: str, ties: bool = False, packed: bool = False) -> Case:
    """A layer whose requantization maps the accumulators onto a few dozen output codes,
    so that the accumulations, not the clamp, decide the outputs.

    ``ties``: small activations and biases, and the multiplier exactly 2^30 with a
    shift <= 0, so the requantization divides by a small power of two and many
    outputs are exact rounding ties (for int8 both roundings of 3.1, for 16x8 the
    one of 3.2)."""
    mode = "extreme" if rng.random() < 0.15 and not ties else "random"
    weights = weight_codes(rng, (n, k) if kind == "dense" else (n,), bits, mode)
    lo, hi = act_range(act_bits)
    zp_in = int(rng.choice([lo, hi, 0, int(rng.integers(lo, hi + 1))])) if act_bits == 8 else 0
    zp_out = int(rng.integers(lo, hi + 1)) if act_bits == 8 else 0
    shape = (batches, k if kind == "dense" else n)
    if ties:
        x = np.clip(zp_in + rng.integers(-2, 3, shape), lo, hi).astype(np.int8 if act_bits == 8 else np.int16)
    else:
        x = activations(rng, shape, act_bits, mode)
    limit = BIAS_LIMIT[act_bits]
    bias = None if rng.random() < 0.2 else rng.integers(-(1 << 16), 1 << 16, n)
    if bias is not None and ties:
        bias >>= 10
    elif bias is not None and rng.random() < 0.1:
        bias[rng.random(n) < 0.5] = rng.choice([-limit, limit])
    if bias is not None:
        bias = bias.astype(np.int32 if act_bits == 8 else np.int64)
    acc = reference._accumulate(x, weights, None, zp_in) if kind == "dense" else \
        (x.astype(np.int64) - zp_in) * weights.astype(np.int64)
    spread = max(float(acc.std()), 1.0)
    max_shift = MAX_SHIFT[act_bits]
    target = (hi - lo) / 8 / spread * (rng.uniform(0.5, 2.0, n) if per_channel else rng.uniform(0.5, 2.0))
    target = np.broadcast_to(target, (n,))
    if ties:  # 2^30 * 2^(shift - 31): a division by 2^(1 - shift)
        mult = np.full(n, 1 << 30, dtype=np.int64)
        shift = np.minimum(np.floor(np.log2(target)).astype(np.int64) + 1, 0).clip(-31, 0)
    else:
        ms = [reference.quantize_multiplier(float(t)) for t in target]
        mult = np.array([m if s <= max_shift else 2**31 - 1 for m, s in ms], dtype=np.int64)
        shift = np.array([min(s, max_shift) for _, s in ms], dtype=np.int64)
    if not per_channel:
        mult, shift = int(mult[0]), int(shift[0])
    relu = rng.random() < 0.5
    act_min, act_max = (max(lo, zp_out), hi) if relu else (lo, hi)
    return _layer_case(kind, x, weights, bias, zp_in, zp_out, mult, shift, act_min, act_max,
                       desc + (" ties" if ties else ""), packed_bits=bits if packed else None)


def packed_dense_cases(rng: np.random.Generator) -> list[Case]:
    """Prepared dense ops with 1..4-bit weights held packed: the backends' 4-bit and 1-bit kernels,
    K around their 16- and 32-code steps, the 256-code int16 blocks and the 2048-activation table
    chunks, N around 4-, 8- and 16-row groups (odd K and N), then every code at the grid's edge
    against x = -128 and 127 only."""
    cases = []
    ks = [1, 2, 3, 7, 8, 9, 15, 16, 17, 30, 31, 32, 33, 47, 63, 64, 65, 255, 256, 257, 287, 289, 2047, 2049, 4103]
    ns = [1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 33, 123]
    for i, k in enumerate(ks):
        for bits in (1, 2, 3, 4):
            n = ns[(i * 4 + bits) % len(ns)] if k < 2000 else int(rng.choice([7, 17, 33]))
            batches = int(rng.choice([1, 2, 3]))
            cases.append(_calibrated_layer(rng, "dense", k, n, 8, bits, bool(i % 2), batches,
                                           f"packed dense op bits={bits} k={k} n={n} batches={batches}",
                                           ties=i % 5 == 2, packed=True))
    for bits in (1, 2, 3, 4):
        for k in (31, 33, 257, 2049):
            n, q = 19, grid_max(bits)
            w = (np.where(rng.random((n, 1)) < 0.5, -q, q) * np.ones((1, k), np.int64)).astype(np.int8)
            w[n - 3] = rng.choice(np.array([-q, q]), k)
            x = np.stack([np.full(k, -128), np.full(k, 127), rng.choice(np.array([-128, 127]), k)]).astype(np.int8)
            shift = -20 if k > 64 else -8
            cases.append(_layer_case("dense", x, w, None, 0, 0, 1 << 30, shift, -128, 127,
                                     f"packed dense op extremes bits={bits} k={k} n={n}", packed_bits=bits))
    return cases


def layer_cases(rng: np.random.Generator, kind: str) -> list[Case]:
    cases = []
    for c in _collect(layer_case(kind), 400):
        c = dict(c)
        x = c.pop("x")
        if x.ndim == 1:
            x = x[None]
        n = c["weights"].shape[0]
        desc = (f"hypothesis {kind} act_bits={8 if x.dtype == np.int8 else 16} n={n} "
                f"k={c['weights'].shape[-1] if kind == 'dense' else 1} batches={x.shape[0]}")
        cases.append(_layer_case(kind, x, desc=desc, **c))
    # Deterministic sweep: every weight width, both activation types, per-tensor and
    # per-channel, and dimensions around every SIMD block size.
    dims = EDGE_DIMS
    for i, d in enumerate(dims):
        for act_bits, per_channel in ((8, True), (8, False), (16, True), (16, False)):
            bits = 1 + (i + act_bits + per_channel) % 8
            if kind == "dense":
                k, n = d, int(rng.choice(dims))
                if i % 3 == 0:
                    k, n = n, k
            else:
                k = n = d
            batches = int(rng.choice([1, 1, 2, 3]))
            cases.append(_calibrated_layer(rng, kind, k, n, act_bits, bits, per_channel, batches,
                                           f"sweep {kind} act_bits={act_bits} bits={bits} k={k} n={n} "
                                           f"per_channel={per_channel} batches={batches}", ties=i % 3 == 1))
    for act_bits in (8, 16):
        for bits in range(1, 9):
            k = n = 600
            cases.append(_calibrated_layer(rng, kind, k, n, act_bits, bits, True, 1,
                                           f"large {kind} act_bits={act_bits} bits={bits} k={k} n={n}"))
    return cases


def invalid_cases() -> list[Case]:
    """Arguments the public API must refuse (KWS_ERR_ARGUMENT) on every backend."""
    w = np.ones((2, 3), dtype=np.int8)
    x = np.zeros((1, 3), dtype=np.int8)

    def bad_fc(desc, **kw):
        args = dict(batches=1, k=3, n=2, zp_in=0, zp_out=0, act_min=-128, act_max=127, mult=[2**30] * 2,
                    shift=[0, 0], w=w, x=x)
        args.update(kw)
        payload = b"".join([_u32(args["batches"], args["k"], args["n"]),
                            _i32(args["zp_in"], args["zp_out"], args["act_min"], args["act_max"]), _u32(0),
                            _i32(*args["mult"]), _i32(*args["shift"]), _le(args["w"], "i1").tobytes(),
                            _le(args["x"], "i1").tobytes()])
        return Case(OP_FULLY_CONNECTED_S8, payload, "invalid: " + desc, want_status=KWS_ERR_ARGUMENT)

    return [
        Case(OP_REQUANTIZE_S32, _u32(1) + _i32(5, 2**30, 31), "invalid: s32 shift 31", want_status=KWS_ERR_ARGUMENT),
        Case(OP_REQUANTIZE_S64, _u32(1) + struct.pack("<q", 5) + _i32(-1, 0), "invalid: s64 multiplier -1",
             want_status=KWS_ERR_ARGUMENT),
        Case(OP_REQUANTIZE_S64, _u32(1) + struct.pack("<q", 2**47) + _i32(2**30, 0), "invalid: s64 |acc| = 2^47",
             want_status=KWS_ERR_ARGUMENT),
        bad_fc("weight -128", w=np.array([[1, -128, 1], [1, 1, 1]], dtype=np.int8)),
        bad_fc("act_min > act_max", act_min=5, act_max=4),
        bad_fc("shift 31", shift=[0, 31]),
        bad_fc("k = 0", k=0, w=np.zeros((2, 0), dtype=np.int8), x=np.zeros((1, 0), dtype=np.int8)),
        Case(OP_QUANTIZE, _u32(1) + struct.pack("<fii", 0.0, 0, 8) + struct.pack("<f", 1.0),
             "invalid: quantize scale 0", want_status=KWS_ERR_ARGUMENT),
        Case(OP_QUANTIZE, _u32(1) + struct.pack("<fii", 1.0, 3, 16) + struct.pack("<f", 1.0),
             "invalid: quantize int16 zero point 3", want_status=KWS_ERR_ARGUMENT),
    ]


# --- quantize ------------------------------------------------------------------------


def _quantize_case(x, scale, zp: int, act_bits: int, desc: str) -> Case:
    x = np.asarray(x, dtype=np.float32).reshape(-1)
    scale = np.float32(scale)
    want = reference.quantize(x, float(scale), zp, act_bits)
    payload = _u32(x.size) + struct.pack("<fii", scale, zp, act_bits) + _le(x, "<f4").tobytes()
    return Case(OP_QUANTIZE, payload, desc, [("y", _le(want, "i1" if act_bits == 8 else "<i2"))])


SPECIAL_FLOATS = np.array([np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-45, -1e-45, 1.1754942e-38, 3.4028235e38,
                           -3.4028235e38, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 127.5, -128.5, 32767.5, -32768.5],
                          dtype=np.float32)


def quantize_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    floats = st.floats(width=32, allow_nan=True, allow_infinity=True)
    draw = st.tuples(st.sampled_from([8, 16]), st.integers(-12, 4), st.booleans(), st.floats(2.0**-20, 1024.0, width=32),
                     st.integers(-128, 127), st.lists(st.integers(-300, 300), max_size=32), st.lists(floats, max_size=32))
    for act_bits, exp, pow2, other, zp, ties, values in _collect(draw, 300):
        scale = float(2.0**exp) if pow2 else other
        zp = zp if act_bits == 8 else 0
        x = values + [(k + 0.5) * scale for k in ties]
        cases.append(_quantize_case(x, scale, zp, act_bits, f"hypothesis act_bits={act_bits} scale={scale} zp={zp}"))
    for i in range(260):
        act_bits = 8 if i % 2 == 0 else 16
        n = i % 70 if i < 140 else int(rng.integers(70, 1100))
        scale = float(2.0 ** rng.integers(-14, 6)) if i % 3 else float(np.float32(rng.uniform(1e-4, 50.0)))
        zp = int(rng.integers(-128, 128)) if act_bits == 8 else 0
        lo, hi = act_range(act_bits)
        mode = i % 4
        if mode == 0:  # ties: (k + 1/2) * scale, exact for power-of-two scales
            x = (rng.integers(lo - 300, hi + 300, n) + 0.5) * scale
        elif mode == 1:  # the whole code range and a bit beyond
            x = rng.uniform((lo - 2) * scale, (hi + 2) * scale, n)
        elif mode == 2:  # specials mixed with ordinary values
            x = np.where(rng.random(n) < 0.5, rng.choice(SPECIAL_FLOATS, n), rng.normal(0, 100 * scale, n))
        else:  # quotients around the int32 range, where TFLM is undefined and the spec saturates
            x = rng.choice([-1.0, 1.0], n) * scale * 2.0**31 * rng.choice([0.5, 1 - 2**-24, 1.0, 1 + 2**-23, 4.0], n)
        cases.append(_quantize_case(x, scale, zp, act_bits, f"numpy mode={mode} act_bits={act_bits} n={n} "
                                                            f"scale={scale} zp={zp}"))
    return cases


# --- float32 ops -----------------------------------------------------------------------


def _f32(a) -> bytes:
    return _le(np.asarray(a, dtype=np.float32), "<f4").tobytes()


def float_cases(rng: np.random.Generator) -> list[Case]:
    """Dense and affine float32 layers over every K and N tail, values over many exponents, with signed
    zeros and subnormals: the spec's summation order makes every backend give the same bits."""
    cases = []
    special = np.array([0.0, -0.0, 1e-40, -1e-40, 1.0, -1.0, 2.0**-24, 3.0e5], dtype=np.float32)

    def values(shape):
        v = (rng.normal(0, 1, shape) * 2.0 ** rng.integers(-20, 10, shape)).astype(np.float32)
        return np.where(rng.random(shape) < 0.1, rng.choice(special, shape), v).astype(np.float32)

    for i in range(160):
        k = int(EDGE_DIMS[i % len(EDGE_DIMS)]) if i < 120 else int(rng.integers(1, 600))
        n = int(rng.integers(1, 20))
        batches = int(rng.integers(1, 3))
        x, w = values((batches, k)), values((n, k))
        bias = values(n) if i % 3 else None
        lo, hi = [(-np.inf, np.inf), (0.0, 6.0), tuple(sorted(values(2)))][i % 3]
        want = reference.fully_connected_f32(x, w, bias, lo, hi)
        payload = b"".join([_u32(batches, k, n), _f32([lo, hi]), _u32(bias is not None), _f32(w),
                            b"" if bias is None else _f32(bias), _f32(x)])
        cases.append(Case(OP_FULLY_CONNECTED_F32, payload, f"numpy k={k} n={n} batches={batches}",
                          [("y", _le(want, "<f4"))]))
    for n in list(range(1, 20)) + [87, 400]:
        x, scale, shift = values((2, n)), values(n), values(n)
        want = reference.affine_f32(x, scale, shift)
        cases.append(Case(OP_AFFINE_F32, _u32(2, n) + _f32(scale) + _f32(shift) + _f32(x), f"numpy n={n}",
                          [("y", _le(want, "<f4"))]))
    return cases


# --- posterior -------------------------------------------------------------------------


def _posterior_case(d, scale: float, desc: str) -> Case:
    mult, shift = reference.quantize_multiplier(float(np.float32(scale)) * 4096.0)
    d = np.asarray(d, dtype=np.int64).reshape(-1)
    logits = np.stack([np.zeros_like(d), d], axis=-1)
    want = reference.posterior_q16(logits, mult, shift) if d.size else np.zeros(0)
    payload = _u32(d.size) + _i32(mult, shift) + _le(d, "<i4").tobytes()
    return Case(OP_POSTERIOR, payload, desc, [("posterior_q16", _le(want, "<i4"))])


def posterior_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    draw = st.tuples(st.lists(st.tuples(st.integers(-32768, 32767), st.integers(-32768, 32767)), min_size=1,
                              max_size=32), st.floats(2.0**-17, 3.5, width=32))
    for logits, scale in _collect(draw, 300):
        d = [b - a for a, b in logits]
        cases.append(_posterior_case(d, scale, f"hypothesis scale={scale}"))
    for i in range(200):
        scale = float(np.float32(2.0 ** rng.uniform(-17, 1.8)))
        d = np.concatenate([rng.integers(-65535, 65536, 40), [-65535, -1, 0, 1, 65535],
                            rng.integers(-64, 65, 16)])
        cases.append(_posterior_case(d, scale, f"numpy scale={scale}"))
    return cases


# --- whole models ------------------------------------------------------------------------


def _model_case(spec: kwsint.ModelSpec, rng: np.random.Generator, desc: str, nq: int = 3, nwin: int = 2,
                extra_frames: int = 4, packed: bool = False) -> Case:
    fe = spec.frontend
    qdt = "i1" if spec.act_bits == 8 else "<i2"
    lo, hi = act_range(spec.act_bits)
    elem_want = lambda a: _le(a, qdt)  # noqa: E731
    # Quantized inputs over the whole code range, and one at each extreme.
    q = rng.integers(lo, hi + 1, (nq, fe.input_size))
    q[0] = lo
    q[-1] = hi
    q = q.astype(spec.act_dtype)
    windows = rng.normal(-5.0, 3.0, (nwin, fe.window_frames, fe.feature_dim)).astype(np.float32)
    if nwin > 1:  # front-end saturation: huge values, infinities and NaN in the last window
        w = windows[-1].reshape(-1)
        pick = rng.random(w.size) < 0.2
        w[pick] = rng.choice(SPECIAL_FLOATS, int(pick.sum()))
    nframes = fe.window_frames + extra_frames
    frames = rng.normal(-5.0, 3.0, (nframes, fe.feature_dim)).astype(np.float32)
    chunks, left = [], nframes
    while left:
        c = int(min(left, rng.choice([0, 1, 1, 2, 3, max(1, fe.window_frames // 2), fe.window_frames])))
        chunks.append(c)
        left -= c

    want: list[tuple[str, np.ndarray]] = [("info", _le([spec.act_bits, len(spec.layers), fe.window_frames,
                                                       fe.feature_dim, fe.frame_stride, fe.input_size, 2], "<i4"))]

    def infer(xq, label):
        logits = reference.forward_quantized(spec, xq)
        post = reference.posterior_q16(logits, spec.posterior_multiplier, spec.posterior_shift)
        want.append((f"{label} logits", _le(logits, "<i4")))
        want.append((f"{label} posterior", _le([post], "<i4")))

    for i in range(nq):
        infer(q[i], f"infer_q[{i}]")
    for i in range(nwin):
        xq = reference.quantize_window(spec, windows[i])
        want.append((f"quantize_window[{i}]", elem_want(xq)))
        infer(xq, f"window[{i}]")
    pushed = 0
    for i, c in enumerate(chunks):
        pushed += c
        want.append((f"stream chunk {i} frames", _le([pushed], "<u4")))
        if pushed >= fe.window_frames:
            want.append((f"stream chunk {i} status", _le([KWS_OK], "<i4")))
            logits, post = reference.forward(spec, frames[pushed - fe.window_frames : pushed])
            want.append((f"stream chunk {i} ({pushed} frames) logits", _le(logits, "<i4")))
            want.append((f"stream chunk {i} ({pushed} frames) posterior", _le([post], "<i4")))
        else:
            want.append((f"stream chunk {i} status", _le([KWS_ERR_ARGUMENT, 0, 0, 0], "<i4")))
    want.append(("after reset", _le([0, KWS_ERR_ARGUMENT], "<i4")))

    blob = kwsint.write_blob(spec)
    payload = b"".join([
        _u32(int(packed)), _u32(len(blob)), blob,  # KWS_WEIGHTS_PACKED or KWS_WEIGHTS_INT8
        _u32(nq, q.nbytes), _le(q, qdt).tobytes(),
        _u32(nwin, windows.size), _le(windows, "<f4").tobytes(),
        _u32(nframes, frames.size), _le(frames, "<f4").tobytes(),
        _u32(len(chunks), *chunks),
    ])
    return Case(OP_MODEL, payload, desc, want)


def model_cases(rng: np.random.Generator, small: int = 300) -> list[Case]:
    cases = []
    for i in range(small):
        hidden = [int(h) for h in rng.integers(1, 49, int(rng.integers(0, 4)))]
        bits = [int(b) for b in rng.integers(1, 9, len(hidden) + 1)]
        wf = int(rng.integers(1, 25))
        args = dict(weight_bits=bits, act_bits=int(rng.choice([8, 16])), param_bits=int(rng.integers(1, 9)),
                    per_channel=bool(rng.integers(0, 2)), window_frames=wf, feature_dim=int(rng.integers(1, 9)),
                    frame_stride=int(rng.integers(1, wf + 1)), seed=int(rng.integers(0, 2**32)))
        packed = i % 2 == 1  # every other model with sub-8-bit weights held packed, as weights="packed"
        cases.append(_model_case(random_model(hidden, **args), rng, f"small model {hidden} {args} packed={packed}",
                                 packed=packed))
    # Layer widths around SIMD block sizes, up to 600.
    for i, (hidden, act_bits) in enumerate([([600, 33], 8), ([17, 600], 16), ([65, 1, 129], 8), ([255, 7], 16),
                                            ([31, 64, 97], 8), ([600], 16)]):
        spec = random_model(hidden, weight_bits=1 + i % 8, act_bits=act_bits, param_bits=8 - i % 8, seed=100 + i,
                            window_frames=15, feature_dim=13, frame_stride=2)
        for packed in (False, True):
            cases.append(_model_case(spec, rng, f"wide model {hidden} act_bits={act_bits} packed={packed}",
                                     packed=packed))
    for config in ("M2", "M1", "M5"):
        for seed in (0, 1):
            cases.append(_model_case(paper_model(config, seed=seed), rng, f"paper {config} seed={seed}",
                                     nq=4, nwin=3, extra_frames=3))
    cases.append(_model_case(paper_model("M4"), rng, "paper M4 packed", packed=True))
    return cases


# --- the streaming detector -----------------------------------------------------------------


def _chunk_sizes(rng: np.random.Generator, n: int, window_frames: int) -> list[int]:
    chunks, left = [], n
    while left:
        c = int(min(left, rng.choice([0, 1, 1, 2, 3, max(1, window_frames // 2), window_frames, n])))
        chunks.append(c)
        left -= c
    return chunks


def _detector_case(spec: kwsint.ModelSpec, rng: np.random.Generator, hop: int, smoothing: int, lockout: int,
                   steps: int, desc: str) -> Case:
    """A detector over ``steps`` steps (plus a few frames after the last), pushed in random chunks,
    then again in one push after a reset; the threshold is one of the smoothed posteriors."""
    fe = spec.frontend
    tail = int(rng.integers(0, hop if steps else fe.window_frames))  # frames after the last step
    n = fe.window_frames + (steps - 1) * hop + tail if steps else tail
    frames = rng.normal(-5.0, 3.0, (n, fe.feature_dim)).astype(np.float32)
    _, _, _, smoothed, _ = reference.detect_stream(spec, frames, hop, smoothing, 0, lockout)
    threshold = int(rng.choice(smoothed)) if smoothed.size else int(rng.integers(0, 65537))
    newest, logits, post, smoothed, fired = reference.detect_stream(spec, frames, hop, smoothing, threshold, lockout)
    chunks = _chunk_sizes(rng, n, fe.window_frames)

    want: list[tuple[str, np.ndarray]] = []

    def push(label, first, last):  # the steps of frames first..last-1
        k = (newest >= first) & (newest < last)
        m = int(k.sum())
        want.append((f"{label} steps_for", _le([m], "<u4")))
        if m:
            want.append((f"{label} status with one step too few", _le([KWS_ERR_ARGUMENT], "<i4")))
        want.append((f"{label} status", _le([KWS_OK], "<i4")))
        want.append((f"{label} steps run", _le([m], "<u4")))
        want.extend([(f"{label} frame", _le(newest[k], "<u8")), (f"{label} logits", _le(logits[k], "<i4")),
                     (f"{label} posterior", _le(post[k], "<i4")), (f"{label} smoothed", _le(smoothed[k], "<i4")),
                     (f"{label} fired", _le(fired[k], "u1"))])

    end = 0
    for i, c in enumerate(chunks):
        push(f"chunk {i} (frames {end}..{end + c - 1})", end, end + c)
        end += c
    push("after reset, all frames", 0, n)
    blob = kwsint.write_blob(spec)
    payload = b"".join([_u32(len(blob)), blob, _i32(hop, smoothing, threshold, lockout),
                        _u32(n, frames.size), _le(frames, "<f4").tobytes(), _u32(len(chunks), *chunks)])
    return Case(OP_DETECTOR, payload, f"{desc} hop={hop} W={smoothing} T={threshold} lockout={lockout} "
                                      f"frames={n}", want)


def detector_cases(rng: np.random.Generator, small: int = 150) -> list[Case]:
    cases = []
    for i in range(small):
        hidden = [int(h) for h in rng.integers(1, 33, int(rng.integers(0, 3)))]
        wf = int(rng.integers(1, 25))
        args = dict(weight_bits=[int(b) for b in rng.integers(1, 9, len(hidden) + 1)],
                    act_bits=int(rng.choice([8, 16])), param_bits=int(rng.integers(1, 9)),
                    per_channel=bool(rng.integers(0, 2)), window_frames=wf, feature_dim=int(rng.integers(1, 9)),
                    frame_stride=int(rng.integers(1, wf + 1)), seed=int(rng.integers(0, 2**32)))
        smoothing = int(rng.integers(1, 9)) if i % 10 else int(rng.integers(9, 1025))
        cases.append(_detector_case(random_model(hidden, **args), rng, hop=int(rng.integers(1, wf + 4)),
                                    smoothing=smoothing, lockout=int(rng.integers(0, 6)),
                                    steps=int(rng.integers(0, 41)), desc=f"small model {hidden} {args}"))
    for config in ("M2", "M5"):
        cases.append(_detector_case(paper_model(config), rng, hop=3, smoothing=4, lockout=5, steps=40,
                                    desc=f"paper {config}"))
    spec = random_model((3,), window_frames=4, feature_dim=2, seed=1)
    blob = kwsint.write_blob(spec)
    for bad in [(0, 1, 0, 0), (1, 0, 0, 0), (1, 1025, 0, 0), (1, 1, -1, 0), (1, 1, 65537, 0), (1, 1, 0, -1)]:
        payload = _u32(len(blob)) + blob + _i32(*bad) + _u32(0, 0, 0)
        cases.append(Case(OP_DETECTOR, payload, f"invalid: detector config {bad}", want_status=KWS_ERR_ARGUMENT))
    return cases


# --- streaming graphs (blob kind 1) ------------------------------------------------------------


def _graph_case(spec, inputs: np.ndarray, desc: str, resets: tuple[int, ...] = (), oracle=None) -> Case:
    """Invokes of ``inputs`` (n, frames, channels), with a reset before each invoke index in ``resets``; the
    outputs expected are ``oracle``'s (an object with ``invoke`` and ``reset``), ``ReferenceStream``'s by default."""
    oracle = oracle or ReferenceStream(spec)
    x, y = spec.tensors[spec.input], spec.tensors[spec.output]
    want = [("info", _le([x.frames, x.channels, y.frames, y.channels, int(y.dtype == "uint8")], "<u4"))]
    for k, xs in enumerate(inputs):
        if k in resets:
            oracle.reset()
        want.append((f"invoke {k}", np.asarray(oracle.invoke(xs)).reshape(-1).view(np.uint8)))
    blob = write_blob(spec)
    payload = b"".join([_u32(len(blob)), blob, _u32(len(resets), *resets), _u32(len(inputs), x.frames * x.channels),
                        inputs.astype(np.int8).tobytes()])
    return Case(OP_GRAPH, payload, desc, want)


def speech_cases(codes: np.ndarray) -> list[Case]:
    """The four microWakeWord models on the int8 feature codes (frames, 40) of a speech stream, invoke by invoke
    with a reset half way, against the TFLM interpreter itself."""
    from kwsint.interop.tflite_import import read_tflite

    from ..engine.test_graph_engine import MODELS, NAMES
    from kwsint.interop.tflite_graph import TflmStream
    cases = []
    for name in NAMES:
        data = (MODELS / f"{name}.tflite").read_bytes()
        spec = read_tflite(data, name=name)
        stride = spec.tensors[spec.input].frames
        inputs = codes[: len(codes) // stride * stride].reshape(-1, stride, codes.shape[1])
        cases.append(_graph_case(spec, inputs, f"{name} on speech", resets=(len(inputs) // 2,),
                                 oracle=TflmStream(data, spec)))
    return cases


def graph_cases(rng: np.random.Generator) -> list[Case]:
    """Single conv, depthwise, fully connected and quantize ops drawn as tests/engine/test_graph_engine.py draws
    them, depthwise ops at the int16 bound, two streaming graphs through resets, and the four microWakeWord models
    (300 invokes each)."""
    from ..engine.test_graph import _streaming_graph, conv_cases, fully_connected_cases, quantize_cases
    from kwsint.interop.tflite_import import read_tflite

    from ..engine.test_graph_engine import MODELS, NAMES, _model_inputs, _narrow, depthwise_bound_graph
    cases = []
    for depthwise in (False, True):
        for spec, inputs in _collect(conv_cases(depthwise=depthwise), 40):
            cases.append(_graph_case(_narrow(spec), np.stack(inputs), f"{'depthwise ' * depthwise}conv"))
    for channels, taps, past in ((16, 3, False), (33, 9, False), (64, 21, False), (17, 5, True)):
        spec = depthwise_bound_graph(rng, channels, taps, past)  # int16 sums at their bound (past: int32)
        x = np.stack([np.full((spec.tensors[0].frames, channels), v, np.int8) for v in (-128, 127)]
                     + [rng.integers(-128, 128, (spec.tensors[0].frames, channels)).astype(np.int8)])
        cases.append(_graph_case(spec, x, f"depthwise int16 sums at the bound{' + 1' * past}"))
    for spec, inputs, _ in _collect(fully_connected_cases(), 30):
        cases.append(_graph_case(_narrow(spec), np.stack(inputs), "fully connected"))
    for spec in _collect(quantize_cases(), 10):
        cases.append(_graph_case(spec, np.arange(-128, 128, dtype=np.int8).reshape(1, 1, 256), "quantize"))
    for seed in (1, 2):
        inputs = rng.integers(-128, 128, (120, 3, 8)).astype(np.int8)
        cases.append(_graph_case(_streaming_graph(seed), inputs, f"streaming graph {seed}", resets=(40, 41, 90)))
    for name in NAMES:
        cases.append(_graph_case(read_tflite(MODELS / f"{name}.tflite"), _model_inputs(rng, 300), name, resets=(150,)))
    return cases


def all_cases(seed: int = 20240601) -> list[Case]:
    rng = np.random.default_rng(seed)
    cases = []
    cases += requantize_s32_cases(rng)
    cases += requantize_s64_cases(rng)
    cases += layer_cases(rng, "dense")
    cases += layer_cases(rng, "affine")
    cases += packed_dense_cases(rng)
    cases += quantize_cases(rng)
    cases += float_cases(rng)
    cases += posterior_cases(rng)
    cases += model_cases(rng)
    cases += detector_cases(rng)
    cases += invalid_cases()
    cases += graph_cases(rng)
    return cases


__all__ = ["Case", "OP_NAMES", "all_cases", "speech_cases", "describe_mismatch", "read_results", "write_vectors", "grid_max"]
