"""Inputs named by URL (kwsint.io.urls): read through fsspec by header and byte ranges, they give the frames, checks
and messages of the same file as a path; what cannot be opened is one line naming the URL."""

import sys
import uuid
import wave

import numpy as np
import pytest

from kwsint import FormatError
from kwsint.evaluation.manifest import load_features, read_manifest, stream_frames
from kwsint.io import urls
from kwsint.io.features import FbankOptions
from kwsint.io.inputs import frames_bound, iter_streams, read_frames

fsspec = pytest.importorskip("fsspec")

DIM = 20
FBANK = FbankOptions()


@pytest.fixture
def memory():
    """A fresh folder of fsspec's in-process memory filesystem: ``put(name, data)`` writes a file there and
    returns its URL."""
    root = f"memory://kwsint-{uuid.uuid4().hex}"

    def put(name: str, data: bytes) -> str:
        with fsspec.open(f"{root}/{name}", "wb") as f:
            f.write(data)
        return f"{root}/{name}"

    yield put
    fsspec.filesystem("memory").rm(root.removeprefix("memory://"), recursive=True)


def _whole(name):
    return [(n, np.concatenate(list(chunks))) for n, chunks in iter_streams(name, DIM, FBANK, chunk_frames=97)]


def _wav_bytes(path, samples) -> bytes:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(samples.astype("<i2").tobytes())
    return path.read_bytes()


def test_a_url_suffix_is_its_paths():
    assert urls.suffix("https://host/a.b/c.NPY?sig=x.wav#part.ark") == ".npy"
    assert urls.suffix("s3://bucket/key.wav") == ".wav"
    assert urls.suffix("https://host/") == ""
    assert urls.is_url("file:///x.npy") and not urls.is_url("x.npy")


@pytest.mark.parametrize("dtype, order", [("<f4", "C"), (">f8", "F"), ("<f2", "C"), ("<f4", "F")])
def test_a_npy_url_gives_the_frames_of_its_path(dtype, order, memory, tmp_path):
    a = np.random.default_rng(1).normal(0, 3, (1000, DIM)).astype(dtype)
    a = np.asfortranarray(a) if order == "F" else a
    np.save(tmp_path / "a.npy", a)
    url = memory("a.npy", (tmp_path / "a.npy").read_bytes())
    (name, got), = _whole(url)
    (_, want), = _whole(tmp_path / "a.npy")
    assert name == url and got.dtype == np.float32 and np.array_equal(got, want)
    assert frames_bound(url, DIM, FBANK) == 1000
    for start, stop in [(0, 1000), (3, 4), (999, 1200), (1200, 1300), (500, 500), (17, 813)]:
        assert np.array_equal(read_frames(url, DIM, FBANK, start, stop), want[start:stop])


def test_a_wav_url_gives_the_frames_of_its_path(memory, tmp_path):
    data = _wav_bytes(tmp_path / "a.wav", np.random.default_rng(2).normal(0, 2000, 23456))
    url = memory("a.wav", data)
    (name, got), = _whole(url)
    (_, want), = _whole(tmp_path / "a.wav")
    assert name == url and np.array_equal(got, want)
    assert frames_bound(url, DIM, FBANK) == frames_bound(tmp_path / "a.wav", DIM, FBANK)
    for start, stop in [(0, 5), (40, 120), (140, 400)]:
        assert np.array_equal(read_frames(url, DIM, FBANK, start, stop), want[start:stop])


def _message(name, call):
    with pytest.raises(FormatError) as e:
        call(name)
    return str(e.value)


@pytest.mark.parametrize("kind", ["npy-truncated", "wav-truncated", "nan", "dim", "int"])
def test_a_bad_file_at_a_url_has_the_message_of_its_path(kind, memory, tmp_path):
    a = np.zeros((300, DIM), np.float32)
    if kind == "nan":
        a[211, 3] = np.nan
    np.save(tmp_path / "f.npy", a[:, :7] if kind == "dim" else a.astype(np.int16) if kind == "int" else a)
    path = tmp_path / "f.npy"
    if kind == "wav-truncated":
        path = tmp_path / "f.wav"
        path.write_bytes(_wav_bytes(path, np.zeros(16000))[:20000])
    elif kind == "npy-truncated":
        path.write_bytes(path.read_bytes()[:5000])
    url = memory(path.name, path.read_bytes())
    for call in (_whole, lambda n: read_frames(n, DIM, FBANK, 200, 300)):
        want = _message(str(path), call)
        got = _message(url, call)
        if kind == "npy-truncated":  # np.load's words for a local file, the header's size for a URL
            assert got.startswith(f"{url}: data: expected the header's (300, {DIM}) array") and "truncated" in got
        else:
            assert got == want.replace(str(path), url)


@pytest.mark.parametrize("url, message", [
    ("memory://kwsint-none/x.npy", "memory://kwsint-none/x.npy: file: expected a readable file, got "),
    ("nosuchproto://x/a.npy", "nosuchproto://x/a.npy: protocol: expected one fsspec can open (its backend installed)"),
    ("file:///x/a.ark", "file:///x/a.ark: type: expected a URL of one of .npy, .wav (.ark and .scp files are read "
                        "from paths), got '.ark'"),
    ("file:///x/a.scp?v=1", "got '.scp'"),
    ("file:///x/a.txt", "file:///x/a.txt: type: expected one of .npy, .ark, .scp, .wav, got '.txt'"),
])
def test_a_url_that_cannot_be_read_is_one_line(url, message):
    for call in (_whole, lambda n: frames_bound(n, DIM, FBANK)):
        if url.endswith((".ark", ".scp", ".scp?v=1", ".txt")) and call is not _whole:
            continue  # not splittable: frames_bound is never asked
        got = _message(url, call)
        assert message in got and "\n" not in got


def test_an_object_array_at_a_url_is_never_unpickled(memory, tmp_path):
    np.save(tmp_path / "o.npy", np.array([[{"a": 1}]], dtype=object), allow_pickle=True)
    url = memory("o.npy", (tmp_path / "o.npy").read_bytes())
    assert "Python objects in dtype" in _message(url, _whole)


def test_without_fsspec_a_url_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "fsspec.core", None)
    assert _message("file:///x/a.npy", _whole) == ("file:///x/a.npy: url: reading a URL needs fsspec: pip install "
                                                   "'kwsint[cluster]'")


def test_a_manifest_keeps_a_url_and_reads_it_by_rows(memory, tmp_path):
    a = np.random.default_rng(3).normal(0, 1, (400, DIM)).astype(np.float32)
    np.save(tmp_path / "a.npy", a)
    url = memory("a.npy", (tmp_path / "a.npy").read_bytes())
    (tmp_path / "m.json").write_text(
        f'{{"streams": [{{"features": "{url}", "kind": "positive", "spans": [[1, 2]], "microfrontend": "{url}"}},'
        f' {{"features": "a.npy", "kind": "negative"}}]}}')
    by_url, by_path = read_manifest(tmp_path / "m.json")
    assert by_url.features == url and by_url.microfrontend == url and by_path.features == tmp_path / "a.npy"
    assert stream_frames(by_url, DIM) == 400
    assert np.array_equal(load_features(by_url, DIM), load_features(by_path, DIM))
    assert np.array_equal(load_features(by_url, DIM, True, 7, 333), a[7:333])
    missing = by_url.__class__(url + "x", "negative", (), "m.json: streams[0]")
    with pytest.raises(FormatError, match=r"^m.json: streams\[0\]: features memory://\S+x: file: expected a readable"):
        stream_frames(missing, DIM)


def test_a_huge_declared_npy_at_a_url_is_refused_before_reading(memory):
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (9223372036854775807, 20), }"
    header += " " * (117 - len(header)) + "\n"
    url = memory("huge.npy", b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode())
    assert "the file is truncated" in _message(url, _whole)
