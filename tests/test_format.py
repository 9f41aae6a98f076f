"""The blob format: round trips, and every kind of corruption gives FormatError, never a crash."""

import struct
import zlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import kwsint
from kwsint import FormatError, backend as kb
from kwsint._kwsint_c import ffi, lib
from kwsint.blob import HEADER, pack_codes, unpack_codes
from kwsint.generate import random_model


def tiny_spec(bits=4, act_bits=8):
    return random_model((3,), weight_bits=bits, act_bits=act_bits, window_frames=4, feature_dim=2, frame_stride=2,
                        seed=5)


def refresh_crc(blob: bytes) -> bytes:
    payload = blob[HEADER.size:]
    return blob[:12] + struct.pack("<I", zlib.crc32(payload)) + payload


def c_load(blob: bytes) -> int:
    out = ffi.new("kws_model **")
    status = lib.kws_model_load(ffi.from_buffer(blob), len(blob), kb.resolve("portable"), out, ffi.NULL)
    if out[0] != ffi.NULL:
        lib.kws_model_free(out[0])
    return status


@pytest.mark.parametrize("bits", range(1, 9))
def test_pack_unpack_round_trip(bits):
    q = 1 if bits == 1 else (1 << (bits - 1)) - 1
    codes = np.random.default_rng(bits).integers(-q, q + 1, 1001)
    if bits == 1:
        codes = np.where(codes >= 0, 1, -1)
    packed = pack_codes(codes, bits)
    assert len(packed) == (1001 * bits + 7) // 8
    np.testing.assert_array_equal(unpack_codes(packed, 1001, bits), codes)


@pytest.mark.parametrize("act_bits", [8, 16])
@pytest.mark.parametrize("bits", [1, 2, 5, 8])
def test_round_trip(bits, act_bits, tmp_path):
    spec = random_model((7, 5), weight_bits=bits, act_bits=act_bits, seed=bits)
    path = tmp_path / "m.kwsq"
    kwsint.save(spec, path)
    back = kwsint.load(path).spec
    assert kwsint.write_blob(back) == path.read_bytes()
    for a, b in zip(spec.layers, back.layers):
        np.testing.assert_array_equal(a.weights, b.weights)
        np.testing.assert_array_equal(a.bias, b.bias)
        assert (a.kind, a.weight_bits, a.act_min, a.act_max) == (b.kind, b.weight_bits, b.act_min, b.act_max)


def test_every_single_byte_corruption_is_rejected():
    blob = kwsint.write_blob(tiny_spec())
    for i in range(len(blob)):
        for value in {blob[i] ^ 0xFF, blob[i] ^ 0x01, 0}:
            if value == blob[i]:
                continue
            bad = blob[:i] + bytes([value]) + blob[i + 1:]
            with pytest.raises(FormatError):
                kwsint.load(bad)
            assert c_load(bad) != lib.KWS_OK


def test_every_truncation_is_rejected():
    blob = kwsint.write_blob(tiny_spec())
    for n in range(len(blob)):
        with pytest.raises(FormatError):
            kwsint.read_blob(blob[:n])
        assert c_load(blob[:n]) in (lib.KWS_ERR_TRUNCATED, lib.KWS_ERR_SIZE)
    with pytest.raises(FormatError, match="payload_bytes"):
        kwsint.read_blob(blob + b"\0")


@given(act_bits=st.sampled_from([8, 16]), bits=st.integers(1, 8), pos=st.integers(0, 10_000),
       value=st.integers(0, 255), data=st.data())
def test_c_and_python_loaders_agree_on_payload_edits(act_bits, bits, pos, value, data):
    """Edits behind a valid checksum reach the field checks: both loaders accept or both refuse,
    and an accepted blob runs like its reference."""
    blob = kwsint.write_blob(tiny_spec(bits, act_bits))
    pos = HEADER.size + pos % (len(blob) - HEADER.size)
    bad = refresh_crc(blob[:pos] + bytes([value]) + blob[pos + 1:])
    try:
        spec = kwsint.read_blob(bad)
    except FormatError:
        assert c_load(bad) != lib.KWS_OK
        return
    assert c_load(bad) == lib.KWS_OK
    model = kwsint.load(bad)
    fe = spec.frontend
    w = np.random.default_rng(pos).normal(0, 3, (fe.window_frames, fe.feature_dim)).astype(np.float32)
    np.testing.assert_array_equal(model.infer(w).logits, kwsint.reference.forward(spec, w)[0])


def _edit(blob: bytes, offset: int, fmt: str, value) -> bytes:
    return refresh_crc(blob[:offset] + struct.pack(fmt, value) + blob[offset + struct.calcsize(fmt):])


MODEL_AT = HEADER.size
LAYER0_AT = HEADER.size + 24 + 2 * 4 * 2  # model header + mean + inv_std (feature_dim 2)


@pytest.mark.parametrize("offset, fmt, value, field", [
    (0, "<4s", b"KWSX", "magic"),
    (4, "<H", 2, "version"),
    (MODEL_AT, "<B", 12, "act_bits"),
    (MODEL_AT + 1, "<B", 0, "num_layers"),
    (MODEL_AT + 6, "<H", 9, "frame_stride"),
    (MODEL_AT + 8, "<f", float("nan"), "input_scale"),
    (MODEL_AT + 16, "<i", 12345, "posterior_multiplier"),
    (LAYER0_AT, "<B", 3, r"layers\[0\].kind"),
    (LAYER0_AT + 1, "<B", 9, r"layers\[0\].weight_bits"),
    (LAYER0_AT + 4, "<H", 11, r"layers\[0\].in_size"),
    (LAYER0_AT + 24, "<i", 200, r"layers\[0\].act_min"),
    (LAYER0_AT + 32 + 3 * 4, "<i", 7, r"layers\[0\].multiplier\[0\]"),
])
def test_field_errors_name_the_field(offset, fmt, value, field):
    blob = kwsint.write_blob(tiny_spec())
    bad = _edit(blob, offset, fmt, value)
    with pytest.raises(FormatError, match=field):
        kwsint.read_blob(bad)
    assert c_load(bad) != lib.KWS_OK


def test_checksum_error():
    blob = bytearray(kwsint.write_blob(tiny_spec()))
    blob[-1] ^= 0x10
    with pytest.raises(FormatError, match="payload_crc32"):
        kwsint.read_blob(bytes(blob))
    assert c_load(bytes(blob)) == lib.KWS_ERR_CHECKSUM


def test_code_outside_the_narrow_grid_is_refused():
    spec = tiny_spec(bits=4)
    blob = kwsint.write_blob(spec)
    first = spec.layers[0]
    at = LAYER0_AT + 32 + first.out_size * (4 + 4 + 4 + 4)
    bad = _edit(blob, at, "<B", (blob[at] & 0xF0) | 0x8)  # code -8 is not on the 4-bit grid
    with pytest.raises(FormatError, match=r"layers\[0\].weights\[0\]"):
        kwsint.read_blob(bad)
    assert c_load(bad) == lib.KWS_ERR_FIELD


def test_file_errors_name_the_file(tmp_path):
    path = tmp_path / "broken.kwsq"
    path.write_bytes(b"nope")
    with pytest.raises(FormatError, match="broken.kwsq: header"):
        kwsint.load(path)


def test_extreme_int16_bias_and_scale_products_are_refused():
    spec = random_model((3,), act_bits=16, window_frames=4, feature_dim=2, frame_stride=2, seed=1)
    blob = kwsint.write_blob(spec)
    bias_at = LAYER0_AT + 32 + 3 * 4 * 3
    bad = _edit(blob, bias_at, "<q", -(2**63))
    with pytest.raises(FormatError, match=r"layers\[0\].bias\[0\]"):
        kwsint.read_blob(bad)
    assert c_load(bad) == lib.KWS_ERR_FIELD

    # Scales whose product needs a shift far above 30 (and overflows float32).
    spec = random_model((3,), window_frames=4, feature_dim=2, frame_stride=2, per_channel=False, seed=1)
    blob = kwsint.write_blob(spec)
    huge = b"".join(struct.pack("<f", 3e38) for _ in range(3))
    bad = blob[:LAYER0_AT + 32] + huge + blob[LAYER0_AT + 32 + 12:]
    bad = _edit(_edit(bad, MODEL_AT + 8, "<f", 3e38), LAYER0_AT + 8, "<f", 3e38)  # input scales, both places
    with pytest.raises(FormatError, match=r"layers\[0\].multiplier"):
        kwsint.read_blob(bad)
    assert c_load(bad) == lib.KWS_ERR_FIELD


def test_writer_refuses_codes_off_the_grid():
    spec = tiny_spec(bits=4)
    layer = spec.layers[0]
    bad_weights = layer.weights.copy()
    bad_weights[0, 0] = 9
    import dataclasses
    bad = dataclasses.replace(spec, layers=(dataclasses.replace(layer, weights=bad_weights),) + spec.layers[1:])
    with pytest.raises(ValueError, match="4-bit grid"):
        kwsint.write_blob(bad)
