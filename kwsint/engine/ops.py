"""Single ops on the C backends: integer ops with TFLite builtin semantics, and the float32 ops.

Each function checks its arguments against the ranges of docs/arithmetic.md
and raises ValueError naming the argument; then a C backend computes the
result, which equals ``kwsint.reference`` bit for bit.
"""

from __future__ import annotations

import numpy as np

from .._kwsint_c import ffi, lib
from . import backend as _backend
from .limits import BIAS_LIMIT, MAX_DIM
from .model import WEIGHT_STORAGE
from .reference import ACC16_MAX_LOG2, ACC16_MIN_LOG2, acc16_safe, quantize_multiplier

__all__ = ["FullyConnected", "affine", "affine_f32", "depthwise", "fully_connected", "fully_connected_f32",
           "posterior_q16", "quantize", "quantize_multiplier", "requantize"]



def _ptr(ctype: str, a: np.ndarray):
    return ffi.cast(ctype, ffi.from_buffer(a))


def _int_array(value, name: str, dtype, shape, lo: int, hi: int) -> np.ndarray:
    a = np.asarray(value)
    if a.dtype.kind not in "iu":
        raise ValueError(f"{name}: expected integers, got dtype {a.dtype}")
    try:
        a = np.broadcast_to(a, shape)
    except ValueError:
        raise ValueError(f"{name}: expected a scalar or shape {shape}, got shape {a.shape}") from None
    if a.size and (a.min() < lo or a.max() > hi):
        raise ValueError(f"{name}: values must lie in [{lo}, {hi}], got [{a.min()}, {a.max()}]")
    return np.ascontiguousarray(a, dtype=dtype)


def _activations(x, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype not in (np.int8, np.int16):
        raise ValueError(f"{name}: expected int8 or int16 activations, got dtype {a.dtype}")
    if a.ndim not in (1, 2) or a.shape[-1] < 1 or a.shape[-1] > MAX_DIM:
        raise ValueError(f"{name}: expected shape (K,) or (B, K) with 1 <= K <= {MAX_DIM}, got {a.shape}")
    return np.ascontiguousarray(a)


def _params(n: int, act_bits: int, input_zero_point, output_zero_point, multiplier, shift, act_min, act_max):
    """Builds a kws_requant_params; the returned arrays must outlive the struct."""
    qmin, qmax = (-128, 127) if act_bits == 8 else (-32768, 32767)
    zp_lo, zp_hi = (qmin, qmax) if act_bits == 8 else (0, 0)
    for name, v, lo, hi in (("input_zero_point", input_zero_point, zp_lo, zp_hi),
                            ("output_zero_point", output_zero_point, zp_lo, zp_hi),
                            ("act_min", act_min, qmin, qmax), ("act_max", act_max, act_min, qmax)):
        if not lo <= int(v) <= hi:
            raise ValueError(f"{name}: must lie in [{lo}, {hi}] for int{act_bits} activations, got {v}")
    mult = _int_array(multiplier, "multiplier", np.int32, (n,), 0, 2**31 - 1)
    sh = _int_array(shift, "shift", np.int32, (n,), -31, 30 if act_bits == 8 else 7)
    p = ffi.new("kws_requant_params *")
    p.multiplier = _ptr("int32_t *", mult)
    p.shift = _ptr("int32_t *", sh)
    p.input_zero_point = int(input_zero_point)
    p.output_zero_point = int(output_zero_point)
    p.act_min = int(act_min)
    p.act_max = int(act_max)
    return p, (mult, sh)


def _bias(bias, n: int, act_bits: int):
    if bias is None:
        return None, ffi.NULL
    if act_bits == 8:
        b = _int_array(bias, "bias", np.int32, (n,), -BIAS_LIMIT[8], BIAS_LIMIT[8])
        return b, _ptr("int32_t *", b)
    b = _int_array(bias, "bias", np.int64, (n,), -BIAS_LIMIT[16], BIAS_LIMIT[16])
    return b, _ptr("int64_t *", b)


def _weights(weights, shape_name: str, ndim: int) -> np.ndarray:
    w = np.asarray(weights)
    if w.dtype != np.int8 or w.ndim != ndim:
        raise ValueError(f"weights: expected int8 of shape {shape_name}, got {w.dtype} {w.shape}")
    if w.size and w.min() == -128:
        raise ValueError("weights: codes must lie in [-127, 127] (the symmetric narrow grid)")
    return np.ascontiguousarray(w)


def fully_connected(
    x: np.ndarray,
    weights: np.ndarray,
    bias: np.ndarray | None,
    *,
    input_zero_point: int,
    output_zero_point: int,
    multiplier,
    shift,
    act_min: int,
    act_max: int,
    acc16_block: int = 0,
    backend: str | None = None,
) -> np.ndarray:
    """TFLite FULLY_CONNECTED (int8, or 16x8 with int16 activations), per-tensor or per-channel.

    Args:
        x: int8 or int16 activations, shape (K,) or (B, K), 1 <= K <= 16384.
        weights: int8 (N, K), codes in [-127, 127].
        bias: (N,) with |bias| <= 2^30 (int8) or < 2^46 (int16), in units of
            input scale * weight scale; or None.
        input_zero_point, output_zero_point: in the int8 range; 0 for int16.
        multiplier: scalar or (N,), in [0, 2^31 - 1] (Q31 significand).
        shift: scalar or (N,), in [-31, 30] (int8) or [-31, 7] (int16).
        act_min, act_max: the fused clamp, output codes.
        acc16_block: int8 only: accumulate in int16 over aligned blocks of
            2^acc16_block products per row (4..14), which must be safe for these
            weights (``reference.acc16_safe``); 0 accumulates in int32. The
            result is the same; the kernel may be faster.
        backend: a name from ``kwsint.backends()``; None picks the default.

    Returns:
        Activations of x's dtype, shape (N,) or (B, N).
    """
    xa = _activations(x, "x")
    k = xa.shape[-1]
    w = _weights(weights, "(N, K)", 2)
    if w.shape[1] != k or not 1 <= w.shape[0] <= MAX_DIM:
        raise ValueError(f"weights: expected shape (N, {k}) with 1 <= N <= {MAX_DIM}, got {w.shape}")
    n = w.shape[0]
    act_bits = 8 if xa.dtype == np.int8 else 16
    p, keep = _params(n, act_bits, input_zero_point, output_zero_point, multiplier, shift, act_min, act_max)
    b, bptr = _bias(bias, n, act_bits)
    batches = xa.size // k
    y = np.empty(xa.shape[:-1] + (n,), dtype=xa.dtype)
    be = _backend.resolve(backend)
    if acc16_block:
        if act_bits != 8 or not ACC16_MIN_LOG2 <= acc16_block <= ACC16_MAX_LOG2 or not acc16_safe(w, acc16_block):
            raise ValueError(f"acc16_block: {acc16_block} is not a safe int16 block for these weights and "
                             f"int8 activations (docs/arithmetic.md 5.6)")
        st = lib.kws_fully_connected_s8_acc16(be, _ptr("int8_t *", xa), batches, k, _ptr("int8_t *", w), n, bptr, p,
                                              acc16_block, _ptr("int8_t *", y))
    elif act_bits == 8:
        st = lib.kws_fully_connected_s8(be, _ptr("int8_t *", xa), batches, k, _ptr("int8_t *", w), n, bptr, p,
                                        _ptr("int8_t *", y))
    else:
        st = lib.kws_fully_connected_s16(be, _ptr("int16_t *", xa), batches, k, _ptr("int8_t *", w), n, bptr, p,
                                         _ptr("int16_t *", y))
    _backend.check(st, "fully_connected")
    return y


def depthwise(
    x: np.ndarray,
    weights: np.ndarray,
    bias: np.ndarray | None,
    *,
    input_zero_point: int,
    output_zero_point: int,
    multiplier,
    shift,
    act_min: int,
    act_max: int,
    acc16: bool = False,
    backend: str | None = None,
) -> np.ndarray:
    """One output frame of DEPTHWISE_CONV_2D in time (docs/arithmetic.md 11.4), int8.

    Args:
        x: int8 (taps, C) input codes; weights: int8 (taps, C), codes in [-127, 127]; 1 <= taps, C <= 16384.
        bias: (C,) with |bias| <= 2^30, or None; the rest as ``fully_connected``'s.
        acc16: accumulate in int16, as a graph op whose weights allow it runs (every channel
            128 * sum_k |w[k][c]| <= 32767, ``kwsint.engine.graph.acc16_proven``; ValueError otherwise).

    Returns:
        int8 (C,).
    """
    xa = _activations(x, "x")
    w = _weights(weights, "(taps, C)", 2)
    if xa.dtype != np.int8 or xa.shape != w.shape or not (1 <= w.shape[0] <= MAX_DIM and 1 <= w.shape[1] <= MAX_DIM):
        raise ValueError(f"x and weights: int8 (taps, C) of one shape, 1..{MAX_DIM} each, got {xa.dtype} {xa.shape} "
                         f"and {w.shape}")
    taps, c = w.shape
    if acc16 and 128 * np.abs(w.astype(np.int64)).sum(axis=0).max() > 32767:
        raise ValueError("acc16: these weights do not keep every channel's sum inside int16 "
                         "(128 * sum |w| <= 32767, docs/arithmetic.md 11.4)")
    p, keep = _params(c, 8, input_zero_point, output_zero_point, multiplier, shift, act_min, act_max)
    b, bptr = _bias(bias, c, 8)
    y = np.empty(c, dtype=np.int8)
    st = lib.kws_depthwise_s8(_backend.resolve(backend), _ptr("int8_t *", xa), taps, c, _ptr("int8_t *", w), bptr,
                              p, int(acc16), _ptr("int8_t *", y))
    _backend.check(st, "depthwise")
    return y


class FullyConnected:
    """A prepared int8 FULLY_CONNECTED: checked, its bias folded and its weights packed once, by the
    kernel the model loader would choose, then run on any number of inputs (``op(x)``).

    Arguments as for ``fully_connected`` with int8 activations, plus:
        weight_bits: 1..8, the codes' bit width: codes in [-(2^(bits-1) - 1), 2^(bits-1) - 1], or -1
            and +1 for 1 bit. It picks the weight format (int8, 4-bit or 1-bit) and kernel.
        weights_storage: "auto", "int8" or "packed", as for ``kwsint.load``.

    Immutable once made; threads may share one.
    """

    def __init__(self, weights: np.ndarray, bias: np.ndarray | None, *, input_zero_point: int,
                 output_zero_point: int, multiplier, shift, act_min: int, act_max: int, weight_bits: int = 8,
                 acc16_block: int = 0, weights_storage: str = "auto", backend: str | None = None):
        w = _weights(weights, "(N, K)", 2)
        n, k = w.shape
        if not (1 <= n <= MAX_DIM and 1 <= k <= MAX_DIM):
            raise ValueError(f"weights: expected shape (N, K) with 1 <= N, K <= {MAX_DIM}, got {w.shape}")
        if not (isinstance(weight_bits, int) and 1 <= weight_bits <= 8):
            raise ValueError(f"weight_bits: expected an integer in [1, 8], got {weight_bits!r}")
        limit = 2 ** (weight_bits - 1) - 1
        if weight_bits == 1 and w.size and not np.isin(w, (-1, 1)).all():
            raise ValueError("weights: 1-bit codes must be -1 or +1")
        if weight_bits > 1 and w.size and (w.min() < -limit or w.max() > limit):
            raise ValueError(f"weights: {weight_bits}-bit codes must lie in [{-limit}, {limit}], "
                             f"got [{w.min()}, {w.max()}]")
        if weights_storage not in WEIGHT_STORAGE:
            raise ValueError(f"weights_storage: expected one of {', '.join(WEIGHT_STORAGE)}, got {weights_storage!r}")
        if acc16_block and (not ACC16_MIN_LOG2 <= acc16_block <= ACC16_MAX_LOG2 or not acc16_safe(w, acc16_block)):
            raise ValueError(f"acc16_block: {acc16_block} is not a safe int16 block for these weights and "
                             f"int8 activations (docs/arithmetic.md 5.6)")
        p, keep = _params(n, 8, input_zero_point, output_zero_point, multiplier, shift, act_min, act_max)
        _, bptr = _bias(bias, n, 8)
        out = ffi.new("kws_dense_op **")
        st = lib.kws_dense_op_create(_backend.resolve(backend), k, _ptr("int8_t *", w), n, weight_bits, bptr, p,
                                     acc16_block, WEIGHT_STORAGE[weights_storage], out)
        _backend.check(st, "FullyConnected")
        self._op = ffi.gc(out[0], lib.kws_dense_op_free)
        self.shape = (n, k)
        plan = ffi.new("kws_layer_plan *")
        lib.kws_dense_op_plan(self._op, plan)
        self.plan = dict(kernel=ffi.string(plan.kernel).decode(), weight_bytes=int(plan.weight_bytes),
                         code_bits=int(plan.code_bits), acc16_block=int(plan.acc16_block))
        """The kernel chosen, the weights' bytes and bits as held, the int16 block it uses (as ``Model.plans``)."""

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """int8 activations (K,) or (B, K) -> int8 (N,) or (B, N)."""
        n, k = self.shape
        if not (isinstance(x, np.ndarray) and x.dtype == np.int8 and x.ndim in (1, 2) and x.shape[-1] == k):
            a = np.asarray(x)
            raise ValueError(f"x: expected int8 activations of shape (K,) or (B, K) with K = {k}, "
                             f"got {a.dtype} {a.shape}")
        xa = np.ascontiguousarray(x)
        y = np.empty(xa.shape[:-1] + (n,), dtype=np.int8)
        _backend.check(lib.kws_dense_op_run(self._op, _ptr("int8_t *", xa), xa.size // k, _ptr("int8_t *", y)),
               "FullyConnected")
        return y


def affine(
    x: np.ndarray,
    weights: np.ndarray,
    bias: np.ndarray | None,
    *,
    input_zero_point: int,
    output_zero_point: int,
    multiplier,
    shift,
    act_min: int,
    act_max: int,
    backend: str | None = None,
) -> np.ndarray:
    """Per-channel affine ``y[c] = w[c] * (x[c] - zp) + bias[c]``, requantized: DEPTHWISE_CONV_2D 1x1.

    Same argument ranges as ``fully_connected``, with weights of shape (N,)
    and x of shape (N,) or (B, N).
    """
    xa = _activations(x, "x")
    n = xa.shape[-1]
    w = _weights(weights, "(N,)", 1)
    if w.shape[0] != n:
        raise ValueError(f"weights: expected shape ({n},), got {w.shape}")
    act_bits = 8 if xa.dtype == np.int8 else 16
    p, keep = _params(n, act_bits, input_zero_point, output_zero_point, multiplier, shift, act_min, act_max)
    b, bptr = _bias(bias, n, act_bits)
    y = np.empty_like(xa)
    be = _backend.resolve(backend)
    if act_bits == 8:
        st = lib.kws_affine_s8(be, _ptr("int8_t *", xa), xa.size // n, n, _ptr("int8_t *", w), bptr, p,
                               _ptr("int8_t *", y))
    else:
        st = lib.kws_affine_s16(be, _ptr("int16_t *", xa), xa.size // n, n, _ptr("int8_t *", w), bptr, p,
                                _ptr("int16_t *", y))
    _backend.check(st, "affine")
    return y


def _floats(value, name: str, shape=None) -> np.ndarray:
    a = np.asarray(value)
    if a.dtype.kind != "f":
        raise ValueError(f"{name}: expected floats, got dtype {a.dtype}")
    if shape is not None and a.shape != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {a.shape}")
    if a.ndim == 0 or a.shape[-1] < 1 or a.shape[-1] > MAX_DIM:
        raise ValueError(f"{name}: expected a last dimension of 1..{MAX_DIM}, got shape {a.shape}")
    return np.ascontiguousarray(a, dtype=np.float32)


def fully_connected_f32(x: np.ndarray, weights: np.ndarray, bias: np.ndarray | None, *,
                        act_min: float = -np.inf, act_max: float = np.inf, backend: str | None = None) -> np.ndarray:
    """Float32 dense layer with the fixed summation order of docs/arithmetic.md 10.

    Args:
        x: float (K,) or (B, K), 1 <= K <= 16384, converted to float32.
        weights: float (N, K); bias: float (N,) or None (zeros).
        act_min, act_max: output clamp, act_min <= act_max (infinite for none).

    Returns:
        float32 (N,) or (B, N), equal bit for bit to ``reference.fully_connected_f32``.
    """
    xa = _floats(x, "x")
    if xa.ndim > 2:
        raise ValueError(f"x: expected shape (K,) or (B, K), got {xa.shape}")
    k = xa.shape[-1]
    w = _floats(weights, "weights")
    if w.ndim != 2 or w.shape[1] != k:
        raise ValueError(f"weights: expected shape (N, {k}), got {w.shape}")
    n = w.shape[0]
    b = None if bias is None else _floats(bias, "bias", (n,))
    if not act_min <= act_max:
        raise ValueError(f"act_min, act_max: expected act_min <= act_max, got {act_min}, {act_max}")
    y = np.empty(xa.shape[:-1] + (n,), dtype=np.float32)
    st = lib.kws_fully_connected_f32(_backend.resolve(backend), _ptr("float *", xa), xa.size // k, k,
                                     _ptr("float *", w), n, ffi.NULL if b is None else _ptr("float *", b),
                                     act_min, act_max, _ptr("float *", y))
    _backend.check(st, "fully_connected_f32")
    return y


def affine_f32(x: np.ndarray, scale: np.ndarray, shift: np.ndarray, *, backend: str | None = None) -> np.ndarray:
    """Float32 per-channel affine ``x * scale + shift`` (two roundings): x (N,) or (B, N), scale and shift (N,)."""
    xa = _floats(x, "x")
    if xa.ndim > 2:
        raise ValueError(f"x: expected shape (N,) or (B, N), got {xa.shape}")
    n = xa.shape[-1]
    s, b = _floats(scale, "scale", (n,)), _floats(shift, "shift", (n,))
    y = np.empty_like(xa)
    st = lib.kws_affine_f32(_backend.resolve(backend), _ptr("float *", xa), xa.size // n, n, _ptr("float *", s),
                            _ptr("float *", b), _ptr("float *", y))
    _backend.check(st, "affine_f32")
    return y


def requantize(acc: np.ndarray, multiplier, shift, *, backend: str | None = None) -> np.ndarray:
    """TFLM MultiplyByQuantizedMultiplier, elementwise; returns int32 of acc's shape.

    int32 ``acc``: double rounding, multiplier any int32, shift in [-31, 30].
    int64 ``acc`` (16x8): |acc| < 2^47, multiplier in [0, 2^31 - 1], shift in [-31, 7].
    ``multiplier`` and ``shift`` broadcast against ``acc``.
    """
    a = np.asarray(acc)
    if a.dtype not in (np.int32, np.int64):
        raise ValueError(f"acc: expected int32 or int64, got dtype {a.dtype}")
    a = np.ascontiguousarray(a)
    if a.dtype == np.int32:
        mult = _int_array(multiplier, "multiplier", np.int32, a.shape, -(2**31), 2**31 - 1)
        sh = _int_array(shift, "shift", np.int32, a.shape, -31, 30)
    else:
        if a.size and np.abs(a).max() >= 2**47:
            raise ValueError("acc: int64 accumulators must satisfy |acc| < 2^47")
        mult = _int_array(multiplier, "multiplier", np.int32, a.shape, 0, 2**31 - 1)
        sh = _int_array(shift, "shift", np.int32, a.shape, -31, 7)
    out = np.empty(a.shape, dtype=np.int32)
    be = _backend.resolve(backend)
    fn = lib.kws_requantize_s32 if a.dtype == np.int32 else lib.kws_requantize_s64
    ctype = "int32_t *" if a.dtype == np.int32 else "int64_t *"
    _backend.check(fn(be, _ptr(ctype, a), _ptr("int32_t *", mult), _ptr("int32_t *", sh), a.size, _ptr("int32_t *", out)),
           "requantize")
    return out


def quantize(x: np.ndarray, scale: float, zero_point: int, act_bits: int, *, backend: str | None = None) -> np.ndarray:
    """TFLite QUANTIZE float32 -> int8/int16: round_half_away(x / scale) + zero_point, saturated.

    Args:
        x: float values (converted to float32); NaN maps to the smallest code.
        scale: float32 > 0, real value of one step.
        zero_point: int8 range for act_bits 8, 0 for 16.
    """
    xa = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    if act_bits not in (8, 16):
        raise ValueError(f"act_bits: expected 8 or 16, got {act_bits}")
    s = np.float32(scale)
    if not (np.isfinite(s) and s > 0):
        raise ValueError(f"scale: expected a finite positive float32, got {scale}")
    zp_ok = -128 <= zero_point <= 127 if act_bits == 8 else zero_point == 0
    if not zp_ok:
        raise ValueError(f"zero_point: expected {'[-128, 127]' if act_bits == 8 else '0'}, got {zero_point}")
    y = np.empty(xa.shape, dtype=np.int8 if act_bits == 8 else np.int16)
    be = _backend.resolve(backend)
    _backend.check(lib.kws_quantize(be, _ptr("float *", xa), xa.size, float(s), int(zero_point), act_bits, ffi.from_buffer(y)),
           "quantize")
    return y


def posterior_q16(logits: np.ndarray, multiplier: int, shift: int) -> np.ndarray:
    """Wakeword posterior (Q16, 65536 == 1.0) of integer logits (..., 2), by the C engine."""
    lg = np.asarray(logits, dtype=np.int64)
    if lg.shape[-1:] != (2,):
        raise ValueError(f"logits: expected shape (..., 2), got {lg.shape}")
    d = lg[..., 1] - lg[..., 0]
    if d.size and np.abs(d).max() > 65535:
        raise ValueError("logits: the difference of the two logits must fit in 17 bits")
    if not 0 <= multiplier <= 2**31 - 1 or not -31 <= shift <= 14:
        raise ValueError(f"multiplier/shift: expected [0, 2^31-1] and [-31, 14], got {multiplier}, {shift}")
    flat = [lib.kws_posterior_q16(int(v), int(multiplier), int(shift)) for v in d.reshape(-1)]
    return np.array(flat, dtype=np.int32).reshape(d.shape)
