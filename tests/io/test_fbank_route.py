"""The LFBE front end's two routes to kaldi-native-fbank (kwsint.io.features.fbank_route): the direct one
(kwsint.io._knf_direct: knf's compiled AcceptWaveform and GetFrame on numpy buffers, the object found through
pybind11's conduit) gives the binding's frames bit for bit, whatever the audio, block cuts and settings; when
it is refused, the binding is used, still exact; the errors are the same on both."""

from __future__ import annotations

import importlib.util
import re
import sys

import kaldi_native_fbank as knf
import numpy as np
import pytest

from kwsint.io import features
from kwsint.io.features import FbankOptions, FbankStream, compute_fbank, fbank_chunks, fbank_route

BUILT = importlib.util.find_spec("kwsint.io._knf_direct") is not None


def binding_frames(x, options):
    """The oracle: knf's binding as the front end called it before the direct route (lists of 1,600 floats,
    get_frame per frame), on the whole signal, then InputFinished."""
    fb = knf.OnlineFbank(options.knf_options())
    x = np.asarray(x).astype(np.float32)
    for start in range(0, len(x), 1600):
        fb.accept_waveform(float(options.sample_rate), x[start : start + 1600].tolist())
    fb.input_finished()
    frames = [fb.get_frame(i) for i in range(fb.num_frames_ready)]
    return np.array(frames, np.float32).reshape(-1, options.num_mel_bins)


def cut(x, sizes):
    edges = np.cumsum(sizes)
    return np.split(x, edges[edges < len(x)])


def pushed(blocks, options):
    stream = FbankStream(options)
    parts = [stream.push(b) for b in blocks] + [stream.finish()]
    assert all(p.dtype == np.float32 and p.shape[1:] == (options.num_mel_bins,) for p in parts)
    return np.concatenate(parts)


def awkward_audio(rate):
    rng = np.random.default_rng(rate)
    noise = rng.normal(0, 3000, int(rate * 2.3) + 7).clip(-32768, 32767).astype(np.int16)
    square = np.where(np.arange(rate + 77) % 40 < 20, 32767, -32768).astype(np.int16)
    frame = round(rate * 0.025)
    return {"noise": noise, "silence then full scale": np.concatenate([np.zeros(rate // 3 + 1, np.int16), square]),
            "one sample short of a frame": noise[: frame - 1], "one frame": noise[:frame], "empty": noise[:0],
            "float64 samples": noise.astype(np.float64) + 0.25}


@pytest.fixture
def route():
    """fbank_route decided afresh for the test, and again for the tests after it."""
    features.fbank_route.cache_clear()
    yield
    features.fbank_route.cache_clear()


OPTIONS = [FbankOptions(), FbankOptions(num_mel_bins=40, window_type="blackman"),
           FbankOptions(snip_edges=False, window_type="hamming", remove_dc_offset=False),
           FbankOptions(snip_edges=False, window_type="hanning", preemph_coeff=0.0),
           FbankOptions(sample_rate=8000, num_mel_bins=13, frame_shift_ms=12.5, window_type="rectangular"),
           FbankOptions(sample_rate=44100, num_mel_bins=64, window_type="sine", low_freq=60, high_freq=-400)]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: f"{o.sample_rate}-{o.window_type}-snip{o.snip_edges:d}")
def test_the_front_end_gives_the_binding_frames_bit_for_bit(options):
    rng = np.random.default_rng(7)
    rate = options.sample_rate
    for name, x in awkward_audio(rate).items():
        want = binding_frames(x, options)
        assert np.isfinite(want).all()
        for sizes in ([len(x)], [rate + 1] * 4, [1, rate // 100 - 1, 0, rate // 40 + 1, 3 * rate] * 3,
                      rng.integers(0, 2 * rate, 8)):
            got = pushed(cut(x, sizes), options)
            assert np.array_equal(got, want), (name, list(sizes[:4]))
        assert np.array_equal(compute_fbank(x, options), want), name
        assert np.array_equal(np.concatenate([*fbank_chunks(cut(x, [999] * 200), options), want[:0]]), want), name


def test_the_direct_route_is_taken_where_it_is_built():
    if not BUILT:
        pytest.skip("kwsint.io._knf_direct is not built (no C++ compiler or no kaldi-native-fbank headers)")
    if not sys.platform.startswith("linux"):
        pytest.skip("the direct route is checked on Linux, where kaldi-native-fbank's wheels export its functions")
    assert fbank_route().name == "direct", fbank_route().detail
    assert FbankStream()._direct is not None


def test_copy_frames_checks_the_rows_and_features_it_is_given():
    """The C++ side checks the buffer against the binding's own counts: no read past the frames ready."""
    if not BUILT:
        pytest.skip("kwsint.io._knf_direct is not built")
    from kwsint.io import _knf_direct

    fbank = knf.OnlineFbank(FbankOptions().knf_options())
    _knf_direct.accept(fbank, 16000.0, np.zeros(16000, np.float32))
    ready = fbank.num_frames_ready
    out = np.zeros((ready, 20), np.float32)
    _knf_direct.copy_frames(fbank, 0, out)
    assert np.array_equal(out[-1], np.asarray(fbank.get_frame(ready - 1)))
    for first, shape, message in [(0, (1, 21), "out: expected 20 features per frame, got 21"),
                                  (ready - 2, (3, 20), f"expected ready ones, below {ready}"),
                                  (-1, (1, 20), f"frames -1..-1: expected ready ones, below {ready}")]:
        with pytest.raises(ValueError, match=re.escape(message)):
            _knf_direct.copy_frames(fbank, first, np.zeros(shape, np.float32))


def test_the_conduit_refuses_another_type():
    if not BUILT:
        pytest.skip("kwsint.io._knf_direct is not built")
    from kwsint.io import _knf_direct

    if fbank_route().name != "direct":
        pytest.skip(fbank_route().detail)
    assert _knf_direct.pointer(knf.OnlineFbank(FbankOptions().knf_options())) != 0
    with pytest.raises(LookupError, match="refused"):
        _knf_direct.pointer(knf.OnlineMfcc(knf.MfccOptions()))


def _refuse_import(monkeypatch):
    import kwsint.io

    monkeypatch.setitem(sys.modules, "kwsint.io._knf_direct", None)  # import raises ImportError
    monkeypatch.delattr(kwsint.io, "_knf_direct", raising=False)


def _refuse_symbols(monkeypatch):
    from kwsint.io import _knf_direct

    def resolve(path):
        raise ImportError(f"{path} exports no _ZN3knf...AcceptWaveform")
    monkeypatch.setattr(_knf_direct, "resolve", resolve)


def _refuse_conduit(monkeypatch):
    from kwsint.io import _knf_direct

    def accept(fbank, rate, x):
        raise LookupError("the conduit refused platform ABI id ...")
    monkeypatch.setattr(_knf_direct, "accept", accept)


def _differ(monkeypatch):
    from kwsint.io import _knf_direct

    copy = _knf_direct.copy_frames

    def copy_frames(fbank, first, out):
        copy(fbank, first, out)
        out[-1, -1] = np.nextafter(out[-1, -1], np.float32(np.inf))  # one ulp off: a changed knf
    monkeypatch.setattr(_knf_direct, "copy_frames", copy_frames)


@pytest.mark.parametrize("refusal, why", [("env", "KWSINT_FBANK_ROUTE=binding"), (_refuse_import, "not built"),
                                          (_refuse_symbols, "ImportError: .* exports no"),
                                          (_refuse_conduit, "LookupError: the conduit refused"),
                                          (_differ, "frames differ from the binding's")])
def test_a_refused_direct_route_falls_back_to_the_binding_once_and_exactly(route, monkeypatch, refusal, why):
    if refusal == "env":
        monkeypatch.setenv(features.ROUTE_ENV, "binding")
    elif not BUILT:
        pytest.skip("kwsint.io._knf_direct is not built")
    else:
        refusal(monkeypatch)
    probes = []
    monkeypatch.setattr(features, "_probe", lambda d, probe=features._probe: probes.append(1) or probe(d))
    decided = fbank_route()
    assert decided.name == "binding"
    assert re.search(why, decided.detail), decided.detail
    x = awkward_audio(16000)["noise"]
    options = FbankOptions(snip_edges=False)
    streams = [FbankStream(options) for _ in range(3)]
    assert all(s._direct is None for s in streams) and fbank_route() is decided and len(probes) <= 1
    assert np.array_equal(pushed(cut(x, [777] * 100), options), binding_frames(x, options))


@pytest.mark.parametrize("name", ["direct", "binding"])
def test_bad_input_gives_the_same_errors_on_both_routes(route, monkeypatch, name):
    if name == "binding":
        monkeypatch.setenv(features.ROUTE_ENV, "binding")
    elif not BUILT:
        pytest.skip("kwsint.io._knf_direct is not built")
    assert fbank_route().name == name, fbank_route().detail
    stream = FbankStream()
    with pytest.raises(ValueError, match=r"^samples: expected mono 1-D audio, got shape \(2, 400\)$"):
        stream.push(np.zeros((2, 400), np.int16))
    with pytest.raises(ValueError, match=r"^samples: expected mono 1-D audio, got shape \(\)$"):
        compute_fbank(np.int16(3))
    with pytest.raises(ValueError, match="at least 3 mel bins"):
        fbank_chunks([], FbankOptions(num_mel_bins=2))
    stream.push(np.zeros(800, np.int16))
    stream.finish()
    with pytest.raises(RuntimeError, match=r"^AcceptWaveform called after InputFinished\(\) was called\.$"):
        stream.push(np.zeros(1, np.int16))
