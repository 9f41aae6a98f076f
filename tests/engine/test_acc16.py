"""int16 accumulation: the exporter's bound, the loaders' re-check, and kernels exact up to the bound."""

import dataclasses
import struct

import numpy as np
import pytest
from hypothesis import given

import kwsint
from kwsint import FormatError, ops, reference
from kwsint._kwsint_c import ffi, lib
from kwsint.engine.backend import resolve
from kwsint.train.generate import paper_model, random_model

from ..strategies import acc16_case
from .test_format import c_load, refresh_crc


def test_bound_is_exact_at_the_edge():
    # 128 * 255 = 32640 fits int16, 128 * 256 = 32768 does not
    w = np.zeros((2, 32), np.int8)
    w[0, :3] = [-127, -127, -1]  # the first block of 16 sums |w| = 255
    w[0, 16] = -1  # the block of 32 sums 256
    assert reference.acc16_safe(w, 4) and not reference.acc16_safe(w, 5)
    assert reference.acc16_log2_block(w, 8) == 4
    w[0, 2] = -2  # one unit past the bound in the first block of 16: no block is safe
    assert reference.acc16_log2_block(w, 8) == 0
    # blocks are aligned: 256 spread over two blocks of 16 is safe at 16, not at 32
    w[0] = 0
    w[0, 14:18] = [-127, -1, -127, -1]
    assert reference.acc16_log2_block(w, 8) == 4


def test_analysis_of_the_paper_models():
    blocks = {c: [l.acc16_block for l in paper_model(c).layers if l.kind == "dense"] for c in ("M2", "M4", "M6")}
    assert blocks["M2"] == [0] * 7  # 8-bit weights: two products already fill int16
    assert all(b >= 5 for b in blocks["M4"])  # 4-bit: blocks of 32 products and more
    assert blocks["M6"] == [7] * 7  # 1-bit: 128 * 128 fits, 128 * 256 does not
    assert all(l.acc16_block == 0 for l in random_model((8,), act_bits=16).layers)  # 16x8: int64 path


@given(data=acc16_case())
def test_acc16_kernels_equal_reference(backend, data):
    case, claim = data
    assert claim >= 4  # |w| <= 7, or blocks built at the bound of 2^4 .. 2^9 products
    want = reference.fully_connected(**case)
    for log2 in range(4, claim + 1):
        np.testing.assert_array_equal(ops.fully_connected(**case, acc16_block=log2, backend=backend), want,
                                      err_msg=f"acc16_block={log2}")


def _one_unit_per(acc: np.ndarray) -> tuple[int, int]:
    """A multiplier and shift that map the largest |acc| to about 100 output units: a wrong sum of 2^16
    (an int16 lane that wrapped) moves an output by far more than one unit."""
    return reference.quantize_multiplier(100.0 / max(int(np.abs(acc).max()), 1))


@pytest.mark.parametrize("k", [16, 48, 87, 400, 540])
def test_worst_case_at_the_bound(backend, k):
    # Blocks of 16 whose |w| sum to 255, all of one sign per row, and x = -128: every block's int16
    # partial sums reach +-128 * 255 = +-32640, the most the bound allows.
    n = 16
    w = np.zeros((n, k), np.int8)
    for j in range(0, k - 2, 16):
        w[:, j:j + 3] = [127, 127, 1]
    w[n // 2:] *= -1
    assert reference.acc16_block_sums(w, 4).max() == 255 and reference.acc16_log2_block(w, 8) == 4
    x = np.full((1, k), -128, np.int8)
    mult, shift = _one_unit_per(x.astype(np.int64) @ w.astype(np.int64).T)
    kw = dict(input_zero_point=0, output_zero_point=0, multiplier=mult, shift=shift, act_min=-128, act_max=127)
    want = reference.fully_connected(x, w, None, **kw)
    assert np.abs(want).max() >= 90  # the outputs resolve the accumulators (not all 0 or +-1)
    np.testing.assert_array_equal(ops.fully_connected(x, w, None, acc16_block=4, backend=backend, **kw), want)


def test_unsafe_claims_are_refused_by_the_op(backend):
    w = np.zeros((1, 16), np.int8)
    w[0, :3] = [-127, -127, -2]  # 128 * 256 > 32767
    x = np.full(16, -128, np.int8)
    kw = dict(input_zero_point=0, output_zero_point=0, multiplier=2**30, shift=0, act_min=-128, act_max=127)
    with pytest.raises(ValueError, match="acc16_block"):
        ops.fully_connected(x, w, None, acc16_block=4, backend=backend, **kw)
    # the C op checks the claim itself, whatever the caller says
    mult, sh = np.full(1, 2**30, np.int32), np.zeros(1, np.int32)
    p = ffi.new("kws_requant_params *", dict(multiplier=ffi.from_buffer("int32_t[]", mult),
                                            shift=ffi.from_buffer("int32_t[]", sh), input_zero_point=0,
                                            output_zero_point=0, act_min=-128, act_max=127))
    y = np.zeros(1, np.int8)
    st_ = lib.kws_fully_connected_s8_acc16(resolve(backend), ffi.from_buffer("int8_t[]", x), 1, 16,
                                           ffi.from_buffer("int8_t[]", w), 1, ffi.NULL, p, 4,
                                           ffi.from_buffer("int8_t[]", y))
    assert st_ == lib.KWS_ERR_ARGUMENT


def _layer_byte(blob: bytes, spec, index: int) -> int:
    """Offset of layer `index`'s acc16_block byte in a blob of `spec`."""
    at = 16 + 24 + 32 + 2 * 4 * spec.frontend.feature_dim  # header, model header, fbank, mean, inv_std
    for layer in spec.layers[:index]:
        n, count = layer.out_size, layer.weights.size
        bias = 4 if spec.act_bits == 8 else 8
        at += 32 + n * (4 + 4 + 4 + bias) + (count * layer.weight_bits + 7) // 8
    return at + 3


def test_unsafe_claims_are_refused_by_both_loaders():
    spec = paper_model("M4")
    blob = kwsint.write_blob(spec)
    at = _layer_byte(blob, spec, 2)  # dense 87 -> 400, claims 2^5
    assert blob[at] == spec.layers[2].acc16_block == 5
    for claim, why in ((14, "row"), (3, "0, or 4..14"), (15, "0, or 4..14")):
        bad = refresh_crc(blob[:at] + bytes([claim]) + blob[at + 1:])
        with pytest.raises(FormatError, match=rf"layers\[2\]\.acc16_block: .*{why}"):
            kwsint.read_blob(bad)
        assert c_load(bad) == lib.KWS_ERR_FIELD
    # an affine layer claims nothing
    at_affine = _layer_byte(blob, spec, 1)
    bad = refresh_crc(blob[:at_affine] + bytes([4]) + blob[at_affine + 1:])
    with pytest.raises(FormatError, match=r"layers\[1\]\.acc16_block"):
        kwsint.read_blob(bad)
    assert c_load(bad) == lib.KWS_ERR_FIELD
    # a smaller claim than the largest safe one is allowed, and runs the same
    smaller = refresh_crc(blob[:at] + bytes([4]) + blob[at + 1:])
    assert kwsint.read_blob(smaller).layers[2].acc16_block == 4
    assert c_load(smaller) == lib.KWS_OK


def _version_2(blob: bytes) -> bytes:
    """A version-4 blob stating no metadata as version 2 wrote it: no metadata record ({}: 6 bytes)."""
    assert blob.endswith(struct.pack("<I", 2) + b"{}")
    return refresh_crc(blob[:4] + struct.pack("<HHI", 2, 0, len(blob) - 22) + blob[12:-6])


def test_version_2_blobs_still_load():
    spec = paper_model("M4")
    no_claims = dataclasses.replace(spec, layers=tuple(dataclasses.replace(l, acc16_block=0) for l in spec.layers))
    blob = kwsint.write_blob(no_claims)
    v2 = _version_2(blob)
    assert kwsint.write_blob(kwsint.read_blob(v2)) == blob  # read as the same model, written as version 4
    assert c_load(v2) == lib.KWS_OK
    # in version 2 the byte was reserved: a claim there is refused as such
    claimed = kwsint.write_blob(spec)
    at = _layer_byte(claimed, spec, 0)
    bad = _version_2(claimed)
    with pytest.raises(FormatError, match=r"layers\[0\]\.reserved"):
        kwsint.read_blob(bad)
    assert c_load(bad) == lib.KWS_ERR_FIELD
    assert claimed[at] != 0


def test_claims_change_speed_not_results(backend):
    spec = paper_model("M6")
    plain = dataclasses.replace(spec, layers=tuple(dataclasses.replace(l, acc16_block=0) for l in spec.layers))
    a, b = kwsint.load(kwsint.write_blob(spec), backend=backend), kwsint.load(kwsint.write_blob(plain), backend=backend)
    windows = np.random.default_rng(0).normal(-5, 3, (4, 81, 20)).astype(np.float32)
    for w in windows:
        np.testing.assert_array_equal(a.infer(w).logits, b.infer(w).logits)
        np.testing.assert_array_equal(a.infer(w).logits, reference.forward(spec, w)[0])
    assert [l["acc16_block"] for l in a.info()["layers"] if l["kind"] == "dense"] == [128] * 7
