"""Loading into the caller's memory and in place (kws_model_arena_bytes, kws_model_load_into, KWS_LOAD_IN_PLACE;
kws_stream_init, kws_detector_init): the query is exact, the load allocates nothing past it, an in-place model
reads the blob's weights, and streams and detectors run in memory the caller gives. That such models compute
the same numbers is checked with every other model: tests/engine/test_model.py and test_graph_engine.py load
in every way."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import kwsint
from kwsint import GraphModel
from kwsint._kwsint_c import ffi, lib
from kwsint.engine import backend as kb
from kwsint.engine.blob import pack_codes, write_blob
from kwsint.train.generate import random_model

BACKENDS = kwsint.backends()
FLAGS = {"arena": 0, "in_place": lib.KWS_LOAD_IN_PLACE}


def _okay_nabu() -> bytes:
    import pymicro_wakeword
    from kwsint.interop.tflite_import import read_tflite
    return write_blob(read_tflite(Path(pymicro_wakeword.__file__).parent / "models" / "okay_nabu.tflite"))


def _blobs() -> dict[str, bytes]:
    """Dense models: int8 (M2), 4-bit (M4), 1..8-bit weights, int16 activations; and a streaming graph."""
    mixed = random_model([40, 25, 16, 8], weight_bits=[4, 8, 4, 3, 1], act_bits=8, window_frames=12, feature_dim=8,
                         seed=5)  # 4-bit rows of 96 codes (whole bytes: read in place) and of 25 (not)
    wide = random_model([20], weight_bits=[8, 2], act_bits=16, window_frames=6, feature_dim=5, seed=6)
    shipped = {name: kwsint.default_model.model_path(f"default:{name}").read_bytes() for name in ("M2", "M4")}
    return {**shipped, "mixed": write_blob(mixed),
            "int16": write_blob(wide), "okay_nabu": _okay_nabu()}


BLOBS = _blobs()


def _arena_bytes(blob, be, flags: int) -> int:
    need, err = ffi.new("size_t *"), ffi.new("kws_load_error *")
    assert lib.kws_model_arena_bytes(ffi.from_buffer(blob), len(blob), be, lib.KWS_WEIGHTS_AUTO, flags, need,
                                     err) == lib.KWS_OK
    return need[0]


def _load_into(blob, be, flags: int, arena, size: int):
    out, err = ffi.new("kws_model **"), ffi.new("kws_load_error *")
    status = lib.kws_model_load_into(ffi.from_buffer(blob), len(blob), be, lib.KWS_WEIGHTS_AUTO, flags, arena, size,
                                     out, err)
    return status, out[0], (ffi.string(err.field).decode() if status != lib.KWS_OK else None)


@pytest.mark.parametrize("name", BLOBS)
@pytest.mark.parametrize("memory", FLAGS)
def test_the_arena_query_is_exact(name, memory):
    """The queried bytes load (the model keeps a prefix of them); one byte fewer is refused without a write past
    it; an arena that is not 8-byte aligned is refused."""
    blob = BLOBS[name]
    for be_name in BACKENDS:
        be = kb.resolve(be_name)
        need = _arena_bytes(blob, be, FLAGS[memory])
        buf = np.full(need // 8 + 2, 0x5A5A5A5A5A5A5A5A, dtype=np.uint64)  # a canary word past the arena
        arena = ffi.cast("uint8_t *", ffi.from_buffer(buf))
        status, _, field = _load_into(blob, be, FLAGS[memory], arena, need - 1)
        assert (status, field) == (lib.KWS_ERR_NOMEM, "arena"), be_name
        status, model, _ = _load_into(blob, be, FLAGS[memory], arena, need)
        assert status == lib.KWS_OK, be_name
        info = ffi.new("kws_model_info *")
        lib.kws_model_get_info(model, info)
        assert 0 < info.model_bytes <= need
        lib.kws_model_free(model)  # does nothing: the arena is the caller's
        raw = buf.view(np.uint8)
        assert (raw[need:] == 0x5A).all(), be_name
        assert _load_into(blob, be, FLAGS[memory], arena + 4, need)[0] == lib.KWS_ERR_ARGUMENT


@pytest.mark.parametrize("name", BLOBS)
def test_every_way_of_loading_computes_the_same(name):
    for be in BACKENDS:
        want = _outputs(kwsint.load(BLOBS[name], backend=be))
        for memory in FLAGS:
            np.testing.assert_array_equal(_outputs(kwsint.load(BLOBS[name], backend=be, memory=memory)), want,
                                          err_msg=f"{be} {memory}")


def test_the_query_and_the_load_refuse_what_kws_model_load_refuses():
    blob = bytearray(BLOBS["M2"])
    blob[40] ^= 1  # the CRC no longer matches
    be = kb.resolve("portable")
    need, err = ffi.new("size_t *"), ffi.new("kws_load_error *")
    assert lib.kws_model_arena_bytes(ffi.from_buffer(blob), len(blob), be, lib.KWS_WEIGHTS_AUTO, 0, need,
                                     err) == lib.KWS_ERR_CHECKSUM
    arena = ffi.new("uint64_t[]", 1 << 16)
    assert _load_into(bytes(blob), be, 0, arena, 8 << 16)[:3:2] == (lib.KWS_ERR_CHECKSUM, "payload_crc32")
    assert lib.kws_model_arena_bytes(ffi.from_buffer(BLOBS["M2"]), len(BLOBS["M2"]), be, lib.KWS_WEIGHTS_AUTO, 2,
                                     need, err) == lib.KWS_ERR_ARGUMENT  # an unknown flag


def test_in_place_holds_no_int8_weights():
    """M2's weights are all 8-bit: loaded in place, the model is smaller by exactly their bytes (each array
    8-byte aligned) on a backend whose kernel reads the codes as they are."""
    model = kwsint.load("default:M2", backend="portable")
    weights = sum((l.weights.size + 7) // 8 * 8 for l in model.spec.layers)
    in_place = kwsint.load("default:M2", backend="portable", memory="in_place")
    assert model.info()["model_bytes_in_memory"] - in_place.info()["model_bytes_in_memory"] == weights


@pytest.mark.parametrize("name", ["M2", "M4", "okay_nabu"])
def test_an_in_place_model_reads_the_blob(name):
    """Changing weights in the blob after the load changes the outputs of the model loaded in place, and of no
    other: it reads the weights where they lie (M4's first layer: 4-bit codes, read by the portable nibble
    kernel), the others hold copies."""
    for be in BACKENDS:
        blob = bytearray(BLOBS[name])
        models = {m: kwsint.load(blob, backend=be, memory=m) for m in ("copy", "arena")}
        models["in_place"] = (GraphModel if name == "okay_nabu" else kwsint.Model)(blob, backend=be,
                                                                                   memory="in_place")
        before = {m: _outputs(model) for m, model in models.items()}
        at, n, bits = _first_weights(models["in_place"], blob)
        pattern = [100, 156] if bits == 8 else [0x35, 0xD3]  # codes 100, -100; 5, 3, 3, -3: on the grid
        blob[at:at + n] = bytes(pattern * (n // 2) + [0] * (n % 2))
        after = {m: _outputs(model) for m, model in models.items()}
        assert not np.array_equal(after["in_place"], before["in_place"]), be
        for m in ("copy", "arena"):
            np.testing.assert_array_equal(after[m], before[m], err_msg=be)
            np.testing.assert_array_equal(before[m], before["in_place"], err_msg=be)


def _first_weights(model, blob: bytearray) -> tuple[int, int, int]:
    """Where in the blob a model's first weights lie (a dense model's first layer, a graph's first op with
    weights, whose codes are int8): offset, bytes, bits."""
    ops = model.spec.layers if hasattr(model.spec, "layers") else model.spec.ops
    op = next(op for op in ops if getattr(op, "weights", None) is not None and op.weights.ndim > 1)
    bits = getattr(op, "weight_bits", 8)
    packed = pack_codes(op.weights.ravel(), bits)
    at = blob.find(packed)
    assert at > 0
    return at, len(packed), bits


def _outputs(model) -> np.ndarray:
    rng = np.random.default_rng(3)
    if isinstance(model, GraphModel):
        stream = model.stream()
        return np.stack([stream.invoke(rng.integers(-128, 128, model.input_shape).astype(np.int8))
                         for _ in range(60)])
    return model.infer_batch(rng.normal(-5.0, 3.0, (8, *model.window_shape)).astype(np.float32)).logits


def _steps(detector, frames: np.ndarray) -> list[tuple[int, int]]:
    n = len(frames)
    frame = ffi.new("uint64_t[]", n)
    smoothed = ffi.new("int32_t[]", n)
    steps = ffi.new("kws_detector_steps *", {"capacity": n, "frame": frame, "smoothed_q16": smoothed})
    count = ffi.new("size_t *")
    assert lib.kws_detector_push(detector, ffi.cast("float *", ffi.from_buffer(frames)), n, steps,
                                 count) == lib.KWS_OK
    return [(frame[i], smoothed[i]) for i in range(count[0])]


def test_a_detector_and_a_stream_in_the_callers_memory():
    """kws_detector_init in exactly kws_detector_bytes (the stream inside) steps as kws_detector_create; too
    little or misaligned memory is refused; kws_stream_init runs a graph as kws_stream_create."""
    model = kwsint.load("default:M2", memory="in_place")
    config = ffi.new("kws_detector_config *", {"hop": 3, "smoothing": 5, "threshold_q16": 32768, "lockout": 33})
    frames = np.random.default_rng(1).normal(-5.0, 3.0, (400, model.window_shape[1])).astype(np.float32)
    created = ffi.new("kws_detector **")
    assert lib.kws_detector_create(model._ptr, config, created) == lib.KWS_OK
    want = _steps(created[0], frames)
    lib.kws_detector_free(created[0])
    size = lib.kws_detector_bytes(model._ptr, config)
    mem = ffi.new("uint64_t[]", size // 8 + 1)
    out = ffi.new("kws_detector **")
    assert lib.kws_detector_init(model._ptr, config, mem, size - 1, out) == lib.KWS_ERR_ARGUMENT
    assert lib.kws_detector_init(model._ptr, config, ffi.cast("uint8_t *", mem) + 4, size, out) == lib.KWS_ERR_ARGUMENT
    assert lib.kws_detector_init(model._ptr, config, mem, size, out) == lib.KWS_OK
    assert _steps(out[0], frames) == want and len(want) > 100
    lib.kws_detector_free(out[0])  # does nothing: the memory is the caller's

    graph = GraphModel(BLOBS["okay_nabu"], memory="in_place")
    inputs = np.random.default_rng(2).integers(-128, 128, (40, *graph.input_shape)).astype(np.int8)
    stream = graph.stream()
    want = np.stack([stream.invoke(x) for x in inputs])
    size = lib.kws_stream_bytes(graph._ptr)
    mem = ffi.new("uint64_t[]", size // 8 + 1)
    s = ffi.new("kws_stream **")
    assert lib.kws_stream_init(graph._ptr, mem, size - 1, s) == lib.KWS_ERR_ARGUMENT
    assert lib.kws_stream_init(graph._ptr, mem, size, s) == lib.KWS_OK
    got = np.empty_like(want)
    for k, x in enumerate(inputs):
        assert lib.kws_stream_invoke(s[0], ffi.from_buffer(x), x.size, ffi.from_buffer(got[k]),
                                     got[k].size) == lib.KWS_OK
    np.testing.assert_array_equal(got, want)
