"""The blob format: round trips, and every kind of corruption gives FormatError, never a crash."""

import dataclasses
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, strategies as st

import kwsint
from kwsint import FormatError
from kwsint._kwsint_c import ffi, lib
from kwsint.engine import backend as kb
from kwsint.engine.blob import FBANK, HEADER, pack_codes, unpack_codes
from kwsint.engine.metadata import MAX_METADATA_BYTES, ModelMetadata
from kwsint.io.features import FbankOptions
from kwsint.train.generate import random_model


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
            if value == blob[i] or (i == 4 and value == 5):  # version 4 -> 5: the same model (kind 0)
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
    and an accepted blob runs like its reference. The metadata's JSON, the blob's last bytes, is the
    exception the format states (rule 45c): only the Python reader checks it, the engine only frames it."""
    spec = tiny_spec(bits, act_bits)
    blob = kwsint.write_blob(spec)
    pos = HEADER.size + pos % (len(blob) - HEADER.size)
    bad = refresh_crc(blob[:pos] + bytes([value]) + blob[pos + 1:])
    in_json = pos >= len(blob) - len(spec.metadata.to_json())
    try:
        spec = kwsint.read_blob(bad)
    except FormatError:
        assert c_load(bad) == lib.KWS_OK if in_json else c_load(bad) != lib.KWS_OK
        return
    assert c_load(bad) == lib.KWS_OK
    model = kwsint.load(bad)
    fe = spec.frontend
    w = np.random.default_rng(pos).normal(0, 3, (fe.window_frames, fe.feature_dim)).astype(np.float32)
    np.testing.assert_array_equal(model.infer(w).logits, kwsint.reference.forward(spec, w)[0])


def _edit(blob: bytes, offset: int, fmt: str, value) -> bytes:
    return refresh_crc(blob[:offset] + struct.pack(fmt, value) + blob[offset + struct.calcsize(fmt):])


MODEL_AT = HEADER.size
FBANK_AT = MODEL_AT + 24
LAYER0_AT = FBANK_AT + FBANK.size + 2 * 4 * 2  # model header + fbank + mean + inv_std (feature_dim 2)


@pytest.mark.parametrize("offset, fmt, value, field", [
    (0, "<4s", b"KWSX", "magic"),
    (4, "<H", 6, "version"),  # 5 reads: version 5 of kind 0 is the same dense model (test_graph_engine.py)
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
    bad = dataclasses.replace(spec, layers=(dataclasses.replace(layer, weights=bad_weights),) + spec.layers[1:])
    with pytest.raises(ValueError, match="4-bit grid"):
        kwsint.write_blob(bad)


def test_feature_settings_round_trip():
    fbank = FbankOptions(sample_rate=8000, frame_length_ms=32.0, frame_shift_ms=12.5, num_mel_bins=2, low_freq=60.0,
                         high_freq=-400.0, preemph_coeff=0.9, remove_dc_offset=False, window_type="blackman",
                         snip_edges=False)
    spec = tiny_spec()
    spec = dataclasses.replace(spec, frontend=dataclasses.replace(spec.frontend, fbank=fbank))
    blob = kwsint.write_blob(spec)
    back = kwsint.load(blob).spec.frontend.fbank
    f32 = ("frame_length_ms", "frame_shift_ms", "low_freq", "high_freq", "preemph_coeff")
    assert back == dataclasses.replace(fbank, **{k: float(np.float32(getattr(fbank, k))) for k in f32})
    assert kwsint.write_blob(dataclasses.replace(spec, frontend=dataclasses.replace(spec.frontend, fbank=back))) == blob
    assert tiny_spec().frontend.fbank == FbankOptions(num_mel_bins=2)  # the default: Kaldi's, at feature_dim


def test_version_1_is_refused_with_a_reason():
    bad = _edit(kwsint.write_blob(tiny_spec()), 4, "<H", 1)
    with pytest.raises(FormatError, match="version: expected 5, got 1: .*export the model again"):
        kwsint.read_blob(bad)
    assert c_load(bad) == lib.KWS_ERR_VERSION


def test_writer_refuses_mel_bins_other_than_feature_dim():
    spec = tiny_spec()
    spec = dataclasses.replace(spec, frontend=dataclasses.replace(spec.frontend, fbank=FbankOptions()))
    with pytest.raises(FormatError, match=r"fbank.num_mel_bins: expected feature_dim \(2\), got 20"):
        kwsint.write_blob(spec)


NYQUIST = 8000.0
FBANK_FIELDS = {  # name: (offset in the record, struct format, values to try)
    "sample_rate": (0, "<I", [0, 999, 1000, 16000, 192000, 192001, 2**32 - 1]),
    "frame_length_ms": (4, "<f", [0.0, 0.999, 1.0, 25.0, 1000.0, 1000.0001, -1.0]),
    "frame_shift_ms": (8, "<f", [0.0, 0.999, 1.0, 10.0, 1000.0, 1001.0, -10.0]),
    "low_freq": (12, "<f", [-1e-30, -0.0, 0.0, 7999.0, NYQUIST, 9000.0]),
    "high_freq": (16, "<f", [-NYQUIST, -7980.0, -7979.0, 0.0, 1e-30, 20.0, 21.0, NYQUIST, 8000.001, -9000.0]),
    "preemph_coeff": (20, "<f", [-1e-30, 0.0, 1.0, 1.0000001, 0.5]),
    "num_mel_bins": (24, "<H", [0, 1, 2, 3, 20, 1024, 1025]),
    "window_type": (26, "<B", [0, 1, 6, 7, 255]),
    "remove_dc_offset": (27, "<B", [0, 1, 2]),
    "snip_edges": (28, "<B", [0, 1, 2]),
    "reserved": (29, "<3s", [b"\0\0\0", b"\0\0\1", b"\1\0\0"]),
}
SPECIAL_F32 = [float("nan"), float("inf"), float("-inf"), 3.4e38, -3.4e38, 1e-45]


@pytest.mark.parametrize("name", FBANK_FIELDS)
def test_feature_settings_checks_agree_and_name_the_field(name):
    """Each field at and around its limits, and every special float: both loaders accept or both refuse,
    and the Python error names the field."""
    offset, fmt, values = FBANK_FIELDS[name]
    blob = kwsint.write_blob(tiny_spec())
    if fmt == "<f":
        values = values + SPECIAL_F32
    verdicts = set()
    for value in values:
        bad = _edit(blob, FBANK_AT + offset, fmt, value)
        try:
            kwsint.read_blob(bad)
        except FormatError as e:
            assert f"fbank.{name}: expected" in str(e), (value, str(e))
            assert c_load(bad) != lib.KWS_OK, value
            verdicts.add("refused")
        else:
            assert c_load(bad) == lib.KWS_OK, value
            verdicts.add("accepted")
    assert verdicts == {"accepted", "refused"}


@given(pos=st.integers(0, FBANK.size - 1), value=st.integers(0, 255))
def test_c_and_python_loaders_agree_on_feature_setting_bytes(pos, value):
    blob = kwsint.write_blob(tiny_spec())
    at = FBANK_AT + pos
    bad = refresh_crc(blob[:at] + bytes([value]) + blob[at + 1:])
    try:
        kwsint.read_blob(bad)
    except FormatError:
        assert c_load(bad) != lib.KWS_OK
    else:
        assert c_load(bad) == lib.KWS_OK


# --- the metadata record (version 4) ------------------------------------------------------------------------------

FULL_METADATA = ModelMetadata(phrase="hey lümen", threshold=0.62, smoothing_s=0.15, lockout_s=1.0,
                              provenance="synthetic corpus, seed 0\nespeak-ng voices", model_version="2026.12")


def _with_metadata(blob: bytes, raw: bytes) -> bytes:
    """``blob`` (version 4, metadata {}) with its metadata record replaced by ``raw``."""
    assert blob.endswith(struct.pack("<I", 2) + b"{}")
    payload = blob[HEADER.size:-6] + struct.pack("<I", len(raw)) + raw
    return HEADER.pack(b"KWSQ", 4, 0, len(payload), zlib.crc32(payload)) + payload


def test_metadata_round_trips_and_both_loaders_read_it():
    spec = dataclasses.replace(tiny_spec(), metadata=FULL_METADATA)
    blob = kwsint.write_blob(spec)
    assert kwsint.read_blob(blob).metadata == FULL_METADATA
    assert kwsint.write_blob(kwsint.read_blob(blob)) == blob
    assert c_load(blob) == lib.KWS_OK
    assert kwsint.load(blob).spec.metadata == FULL_METADATA


def test_microwakeword_settings_round_trip():
    meta = ModelMetadata(phrase="Okay Nabu", probability_cutoff=0.85, sliding_window_size=5, feature_step_size=10,
                         trained_languages=["en", "nl"])
    assert meta.trained_languages == ("en", "nl")
    blob = kwsint.write_blob(dataclasses.replace(tiny_spec(), metadata=meta))
    assert kwsint.read_blob(blob).metadata == meta
    assert b'"trained_languages":["en","nl"]' in blob


def test_a_version_3_blob_reads_with_no_metadata():
    blob = kwsint.write_blob(tiny_spec())
    payload = blob[HEADER.size:-6]  # no metadata record
    v3 = HEADER.pack(b"KWSQ", 3, 0, len(payload), zlib.crc32(payload)) + payload
    assert kwsint.read_blob(v3).metadata == ModelMetadata()
    assert c_load(v3) == lib.KWS_OK
    assert kwsint.write_blob(kwsint.read_blob(v3)) == blob
    with pytest.raises(FormatError, match="payload: 6 unexpected bytes after the last layer"):
        kwsint.read_blob(HEADER.pack(b"KWSQ", 3, 0, len(blob) - 16, zlib.crc32(blob[16:])) + blob[16:])


@pytest.mark.parametrize("raw, message", [
    (b"[1, 2]", "metadata: expected a JSON object, got list"),
    (b"{", "metadata: expected a UTF-8 JSON object"),
    (b'{"phrase": "\xff"}', "metadata: expected a UTF-8 JSON object"),
    (b'{"wake": "hey"}', "metadata: unknown key 'wake'"),
    (b'{"threshold": 1.5}', r"metadata.threshold: expected a number in \[0, 1\], got 1.5"),
    (b'{"threshold": NaN}', "metadata: expected a UTF-8 JSON object: NaN is not a number"),
    (b'{"threshold": true}', "metadata.threshold: expected a finite number, got True"),
    (b'{"smoothing_s": -0.1}', r"metadata.smoothing_s: expected a number in \[0, 60\]"),
    (b'{"phrase": ""}', r"metadata.phrase: expected 1..200 characters, got 0"),
    (b'{"phrase": "hey\\nlumen"}', "metadata.phrase: expected printable characters"),
    (b'{"model_version": 3}', "metadata.model_version: expected a string, got int"),
    (b'{"probability_cutoff": 1.01}', r"metadata.probability_cutoff: expected a number in \[0, 1\]"),
    (b'{"sliding_window_size": 5.0}', r"metadata.sliding_window_size: expected an integer in 1..1024, got 5.0"),
    (b'{"feature_step_size": 0}', r"metadata.feature_step_size: expected an integer in 1..1000, got 0"),
    (b'{"trained_languages": "en"}', r"metadata.trained_languages: expected a list of 1..64 language tags"),
    (b'{"trained_languages": ["en", ""]}', r"metadata.trained_languages: expected language tags of 1..35 printable"),
])
def test_bad_metadata_is_named_by_the_python_reader(raw, message):
    bad = _with_metadata(kwsint.write_blob(tiny_spec()), raw)
    with pytest.raises(FormatError, match=message):
        kwsint.read_blob(bad, "m.kwsq")
    assert c_load(bad) == lib.KWS_OK  # rule 45c: the engine frames the JSON, it does not read it


def test_metadata_size_limit_is_the_same_in_both_loaders():
    blob = kwsint.write_blob(tiny_spec())
    at_limit = _with_metadata(blob, b"{" + b" " * (MAX_METADATA_BYTES - 2) + b"}")
    assert kwsint.read_blob(at_limit).metadata == ModelMetadata()
    assert c_load(at_limit) == lib.KWS_OK
    over = _with_metadata(blob, b"{" + b" " * (MAX_METADATA_BYTES - 1) + b"}")
    with pytest.raises(FormatError, match=f"metadata_bytes: expected at most {MAX_METADATA_BYTES}"):
        kwsint.read_blob(over)
    assert c_load(over) == lib.KWS_ERR_SIZE


def test_metadata_values_are_checked_when_made():
    with pytest.raises(ValueError, match=r"metadata lockout_s: expected a number in \[0, 3600\]"):
        ModelMetadata(lockout_s=4000)
    with pytest.raises(ValueError, match="metadata phrase: expected a string"):
        ModelMetadata(phrase=7)
