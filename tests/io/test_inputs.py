"""kwsint.io.inputs and kwsint.io.features: every input format round trips, chunking changes nothing,
every bad input is a FormatError naming the file and the field, and long files stream in constant memory."""

import os
import pickle
import re
import struct
import tracemalloc
import wave
from pathlib import Path

import kaldi_native_fbank as knf
import kaldiio
import numpy as np
import pytest
from hypothesis import given, strategies as st

from kwsint import FormatError
from kwsint.io.features import FbankOptions, compute_fbank, fbank_chunks
from kwsint.io.inputs import iter_streams

DIM = 20
POCKETSPHINX = Path("/usr/share/pocketsphinx/test/data")


def frames(n, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).normal(-5, 3, (n, DIM)).astype(dtype)


def audio(seconds, seed=0):
    return np.random.default_rng(seed).normal(0, 2000, int(16000 * seconds)).clip(-32768, 32767).astype(np.int16)


def write_wav(path, samples, rate=16000, channels=1, width=2):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return path


def read_all(path, dim=DIM, **kwargs):
    """{name: (concatenated frames, chunk shapes)} of every stream."""
    out = {}
    for name, chunks in iter_streams(path, dim, **kwargs):
        parts = list(chunks)
        for c in parts:
            assert type(c) is np.ndarray and c.dtype == np.float32 and c.flags.c_contiguous and c.flags.writeable
            assert c.ndim == 2 and c.shape[1] == dim
        out[name] = (np.concatenate(parts) if parts else np.zeros((0, dim), np.float32), [len(c) for c in parts])
    return out


def refused(path, match, dim=DIM, **kwargs):
    with pytest.raises(FormatError, match=match):
        read_all(path, dim, **kwargs)


# --- .npy ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["<f4", ">f4", "<f2", "<f8"])
@pytest.mark.parametrize("chunk", [1, 7, 1000, 5000])
def test_npy_round_trip_in_any_chunks(tmp_path, dtype, chunk):
    x = frames(1000, dtype=dtype)
    np.save(tmp_path / "f.npy", x)
    (name, (got, sizes)), = read_all(tmp_path / "f.npy", chunk_frames=chunk).items()
    assert name == str(tmp_path / "f.npy")
    np.testing.assert_array_equal(got, x.astype(np.float32))
    assert sizes == [chunk] * (1000 // chunk) + ([1000 % chunk] if 1000 % chunk else [])


def test_npy_fortran_order_and_empty(tmp_path):
    x = np.asfortranarray(frames(50))
    np.save(tmp_path / "f.npy", x)
    np.testing.assert_array_equal(read_all(tmp_path / "f.npy", chunk_frames=8)[str(tmp_path / "f.npy")][0], x)
    np.save(tmp_path / "e.npy", np.zeros((0, DIM), np.float32))
    assert read_all(tmp_path / "e.npy")[str(tmp_path / "e.npy")][1] == []


@pytest.mark.parametrize("array, match", [
    (np.zeros(DIM, np.float32), r"shape: expected \(frames, 20\), got \(20,\)"),
    (np.zeros((3, 4, DIM), np.float32), r"shape: expected \(frames, 20\), got \(3, 4, 20\)"),
    (np.zeros((5, 19), np.float32), r"shape: expected \(frames, 20\), got \(5, 19\)"),
    (np.zeros((5, DIM), np.int16), "dtype: expected float16, float32, float64, got int16"),
    (np.zeros((5, DIM), np.complex64), "dtype: expected .* got complex64"),
])
def test_npy_of_the_wrong_shape_or_type_is_refused(tmp_path, array, match):
    np.save(tmp_path / "bad.npy", array)
    refused(tmp_path / "bad.npy", "bad.npy: " + match)


@pytest.mark.parametrize("value, shown", [(np.nan, "nan"), (np.inf, "inf"), (-np.inf, "-inf"), (1e39, "1e+39")])
def test_npy_non_finite_frames_are_refused_by_index(tmp_path, value, shown):
    x = frames(20_000, dtype=np.float64)
    x[17_003, 4] = value
    x[19_000, 0] = np.nan  # only the first bad frame is named
    np.save(tmp_path / "nan.npy", x)
    refused(tmp_path / "nan.npy", rf"nan.npy: frames\[17003\]: expected finite float32 values, got {re.escape(shown)} "
                                  "at feature 4")


def test_npy_object_arrays_are_refused_without_unpickling(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([[None] * DIM], dtype=object), allow_pickle=True)
    refused(tmp_path / "obj.npy", "obj.npy: npy: expected a readable .npy array, got ValueError")


def test_every_truncated_npy_is_refused(tmp_path):
    np.save(tmp_path / "f.npy", frames(10))
    data = (tmp_path / "f.npy").read_bytes()
    for n in range(len(data)):
        (tmp_path / "t.npy").write_bytes(data[:n])
        refused(tmp_path / "t.npy", r"t.npy: (magic|npy): expected")


def test_unreadable_and_garbage_files_are_refused(tmp_path):
    refused(tmp_path / "missing.npy", "missing.npy: file: expected a readable file, got No such file")
    (tmp_path / "dir.npy").mkdir()
    refused(tmp_path / "dir.npy", "dir.npy: file: expected a readable file")
    (tmp_path / "junk.npy").write_bytes(b"\x80\x04garbage, not an array")
    refused(tmp_path / "junk.npy", r"junk.npy: magic: expected a .npy file")
    np.savez(tmp_path / "z.npz", a=frames(3))
    (tmp_path / "z.npz").rename(tmp_path / "z.npy")
    refused(tmp_path / "z.npy", r"z.npy: magic: expected a .npy file \(b'\\x93NUMPY'\), got b'PK")
    refused(tmp_path / "f.txt", r"f.txt: type: expected one of .npy, .ark, .scp, .wav, got '.txt'")
    for suffix in (".ark", ".scp", ".wav"):
        (tmp_path / f"junk{suffix}").write_bytes(bytes(range(256)) * 4)
        refused(tmp_path / f"junk{suffix}", rf"junk\{suffix}: (key|line 1|wav): expected")
        refused(tmp_path / f"missing{suffix}", rf"missing\{suffix}: file: expected a readable file")


def test_bad_arguments_are_value_errors(tmp_path):
    np.save(tmp_path / "f.npy", frames(3))
    with pytest.raises(ValueError, match="chunk_frames"):
        read_all(tmp_path / "f.npy", chunk_frames=0)
    with pytest.raises(ValueError, match="fbank.num_mel_bins"):
        read_all(tmp_path / "f.npy", fbank=FbankOptions(num_mel_bins=40))


# --- Kaldi ark and scp -----------------------------------------------------------------------------


UTTERANCES = {"u1": frames(30, 1), "u2": frames(1, 2).astype(np.float64), "u3": frames(95, 3)}


@pytest.mark.parametrize("how", ["binary", "text", "compressed", "write_helper"])
def test_ark_and_scp_round_trip(tmp_path, how):
    ark, scp = tmp_path / "f.ark", tmp_path / "f.scp"
    if how == "write_helper":
        with kaldiio.WriteHelper(f"ark,scp:{ark},{scp}") as writer:
            for key, x in UTTERANCES.items():
                writer(key, x)
    else:
        kaldiio.save_ark(str(ark), UTTERANCES, scp=str(scp), text=how == "text",
                         compression_method=2 if how == "compressed" else None)
    for path in (ark, scp):
        streams = read_all(path, chunk_frames=8)
        assert list(streams) == [f"{path}:{key}" for key in UTTERANCES]
        for key, x in UTTERANCES.items():
            got, sizes = streams[f"{path}:{key}"]
            want = dict(kaldiio.load_ark(str(ark)))[key].astype(np.float32)  # compressed: kaldiio's decoding
            np.testing.assert_array_equal(got, want)
            if how != "compressed":
                np.testing.assert_allclose(got, x, rtol=1e-6 if how == "text" else 0)
            assert sizes == [8] * (len(x) // 8) + ([len(x) % 8] if len(x) % 8 else [])


def test_ark_refuses_bad_utterances_by_name(tmp_path):
    bad_dim = {"good": frames(4), "wide": np.zeros((4, DIM + 1), np.float32)}
    kaldiio.save_ark(str(tmp_path / "dim.ark"), bad_dim, scp=str(tmp_path / "dim.scp"))
    for path in (tmp_path / "dim.ark", tmp_path / "dim.scp"):
        streams = iter_streams(path, DIM)
        name, chunks = next(streams)  # the good utterance streams before the bad one is read
        assert name.endswith(":good") and len(np.concatenate(list(chunks))) == 4
        with pytest.raises(FormatError, match=rf"{path.name}:wide: shape: expected \(frames, 20\), got \(4, 21\)"):
            next(streams)
    x = frames(9)
    x[6, 2] = np.nan
    kaldiio.save_ark(str(tmp_path / "nan.ark"), {"k": x})
    refused(tmp_path / "nan.ark", r"nan.ark:k: frames\[6\]: expected finite float32 values, got nan at feature 2")
    kaldiio.save_ark(str(tmp_path / "vec.ark"), {"k": np.zeros(DIM, np.float32)})
    refused(tmp_path / "vec.ark", r"vec.ark:k: shape: expected \(frames, 20\), got \(20,\)")
    (tmp_path / "empty.ark").write_bytes(b"")
    refused(tmp_path / "empty.ark", "empty.ark: utterances: expected at least one, got none")


class _Marker:
    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_kaldiio_pickle_and_audio_entries_are_refused_unread(tmp_path):
    marker = _Marker()
    marker.path = str(tmp_path / "unpickled")
    payload = pickle.dumps(marker)
    (tmp_path / "p.ark").write_bytes(b"u1 PKL" + payload)
    refused(tmp_path / "p.ark", r"p.ark:u1: matrix: expected a Kaldi matrix .* got b'PKL")
    (tmp_path / "p.scp").write_text(f"u1 {tmp_path / 'p.ark'}:3\n")
    refused(tmp_path / "p.scp", r"p.scp:u1: matrix: expected a Kaldi matrix .* got b'PKL")
    assert not (tmp_path / "unpickled").exists()
    kaldiio.save_ark(str(tmp_path / "w.ark"), {"u1": (16000, audio(0.1))})
    refused(tmp_path / "w.ark", r"w.ark:u1: matrix: expected a Kaldi matrix .* got b'RIFF")


def test_every_truncated_ark_is_refused(tmp_path):
    kaldiio.save_ark(str(tmp_path / "f.ark"), {"u1": frames(3)})
    data = (tmp_path / "f.ark").read_bytes()
    for n in range(1, len(data)):
        (tmp_path / "t.ark").write_bytes(data[:n])
        refused(tmp_path / "t.ark", r"t.ark(: key|:u1: matrix|:u1: shape): expected")


def test_scp_problems_are_refused_by_line_and_key(tmp_path):
    kaldiio.save_ark(str(tmp_path / "f.ark"), {"u1": frames(3)}, scp=str(tmp_path / "f.scp"))
    scp = tmp_path / "bad.scp"
    scp.write_text(f"u1 {tmp_path / 'gone.ark'}:3\n")
    refused(scp, r"bad.scp:u1: ark: expected a readable archive '.*gone.ark', got No such file or directory")
    scp.write_text(f"u1 {tmp_path / 'f.ark'}:1\n")  # an offset inside the key
    refused(scp, r"bad.scp:u1: matrix: expected a Kaldi matrix .* got b'1 \\x00B")
    scp.write_text("just-a-key\n")
    refused(scp, r"bad.scp: line 1: expected 'KEY ARK_PATH\[:OFFSET\]', got 'just-a-key'")
    scp.write_bytes(b"u1 \xff\xfe.ark\n")
    refused(scp, r"bad.scp: line 1: expected UTF-8 text")
    scp.write_text("")
    refused(scp, "bad.scp: utterances: expected at least one line, got none")
    marker = tmp_path / "ran"
    for spec in (f"touch {marker} |", f"| touch {marker}", f"touch {marker} |:12", "-", f"{tmp_path / 'f.ark'}:3[0:2]"):
        scp.write_text(f"u1 {spec}\n")
        refused(scp, r"bad.scp: line 1: expected .*no pipe, stdin or row range")
    assert not marker.exists()
    os.mkfifo(tmp_path / "fifo.ark")  # opening it would wait for a writer forever
    for ark in (tmp_path / "fifo.ark", "/dev/null", tmp_path):
        scp.write_text(f"u1 {ark}\n")
        refused(scp, r"bad.scp:u1: ark: expected a regular file .*, got a pipe, device or folder")


# --- .wav and the fbank front end ------------------------------------------------------------------


def knf_one_shot(samples, options):
    """kaldi-native-fbank on the whole signal in one call: the reference for chunked computation."""
    fb = knf.OnlineFbank(options.knf_options())
    fb.accept_waveform(float(options.sample_rate), samples.astype(np.float32).tolist())
    fb.input_finished()
    return np.array([fb.get_frame(i) for i in range(fb.num_frames_ready)], np.float32).reshape(-1,
                                                                                              options.num_mel_bins)


@pytest.mark.parametrize("options", [FbankOptions(), FbankOptions(snip_edges=False, window_type="hamming"),
                                     FbankOptions(sample_rate=8000, num_mel_bins=13, frame_shift_ms=12.5)])
def test_fbank_in_any_blocks_equals_one_shot_bit_for_bit(options):
    x = audio(3.3, seed=4)
    want = knf_one_shot(x, options)
    assert want.shape[0] > 250 and np.isfinite(want).all()
    np.testing.assert_array_equal(compute_fbank(x, options), want)
    rng = np.random.default_rng(0)
    for sizes in ([1] * 500 + [len(x)], [159, 160, 161, 0, 400] * 200, rng.integers(0, 5000, 100)):
        cuts = np.cumsum(sizes)
        got = np.concatenate(list(fbank_chunks(np.split(x, cuts[cuts < len(x)]), options)))
        np.testing.assert_array_equal(got, want)
    short = x[: int(options.sample_rate * options.frame_length_ms / 1000) - 1]  # one sample short of a frame
    np.testing.assert_array_equal(compute_fbank(short, options), knf_one_shot(short, options))
    if options.snip_edges:
        assert compute_fbank(short, options).shape == (0, options.num_mel_bins)


def test_fbank_options_are_checked():
    with pytest.raises(ValueError, match=r"frame_shift_ms: expected 1..1000 ms, got 0"):
        FbankOptions(frame_shift_ms=0)  # kaldi-native-fbank would divide by zero
    with pytest.raises(ValueError, match="window_type"):
        FbankOptions(window_type="hann")
    with pytest.raises(ValueError, match="at least 3 mel bins"):
        fbank_chunks([], FbankOptions(num_mel_bins=2))


@pytest.mark.parametrize("chunk", [1, 64, 100_000])
def test_wav_round_trip(tmp_path, chunk):
    x = audio(2.0)
    write_wav(tmp_path / "a.wav", x)
    (name, (got, sizes)), = read_all(tmp_path / "a.wav", chunk_frames=chunk).items()
    assert name == str(tmp_path / "a.wav") and got.shape == (1 + (32000 - 400) // 160, DIM)
    np.testing.assert_array_equal(got, compute_fbank(x))
    assert all(n == chunk for n in sizes[:-1]) and 1 <= sizes[-1] <= chunk
    options = FbankOptions(sample_rate=8000, num_mel_bins=13)
    write_wav(tmp_path / "b.WAV", x, rate=8000)
    got = read_all(tmp_path / "b.WAV", 13, fbank=options)[str(tmp_path / "b.WAV")][0]
    np.testing.assert_array_equal(got, compute_fbank(x, options))


def riff(fmt_tag, channels, rate, width, data):
    fmt = struct.pack("<HHIIHH", fmt_tag, channels, rate, rate * channels * width, channels * width, 8 * width)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_wav_problems_are_refused_by_field(tmp_path):
    x = audio(0.5)
    write_wav(tmp_path / "stereo.wav", np.repeat(x, 2), channels=2)
    refused(tmp_path / "stereo.wav", r"stereo.wav: channels: expected 1 \(mono\), got 2")
    write_wav(tmp_path / "w8.wav", (x >> 8).astype(np.uint8), width=1)
    refused(tmp_path / "w8.wav", r"w8.wav: sample_width: expected 2 bytes \(16-bit PCM\), got 1")
    (tmp_path / "w24.wav").write_bytes(riff(1, 1, 16000, 3, bytes(300)))
    refused(tmp_path / "w24.wav", "w24.wav: sample_width: expected 2 bytes .* got 3")
    write_wav(tmp_path / "r8k.wav", x, rate=8000)
    refused(tmp_path / "r8k.wav", r"r8k.wav: sample_rate: expected 16000 Hz \(the model's feature settings\), "
                                  "got 8000 Hz; resample the audio")
    (tmp_path / "float.wav").write_bytes(riff(3, 1, 16000, 4, bytes(400)))
    refused(tmp_path / "float.wav", "float.wav: wav: expected a RIFF WAVE file of 16-bit PCM audio, got unknown format")
    (tmp_path / "empty.wav").write_bytes(b"")
    refused(tmp_path / "empty.wav", "empty.wav: wav: expected a RIFF WAVE file")
    write_wav(tmp_path / "two_bins.wav", x)
    refused(tmp_path / "two_bins.wav", "two_bins.wav: fbank: expected settings that kaldi-native-fbank accepts, "
                                       "got Must have at least 3 mel bins", dim=2)


def test_every_truncated_wav_is_refused(tmp_path):
    data = write_wav(tmp_path / "a.wav", audio(0.05)).read_bytes()
    for n in range(len(data)):
        (tmp_path / "t.wav").write_bytes(data[:n])
        refused(tmp_path / "t.wav", r"t.wav: (wav|data): expected")
    (tmp_path / "t.wav").write_bytes(data[:-3])
    refused(tmp_path / "t.wav", r"t.wav: data: expected 800 samples \(the header's data size\), got 798: "
                                "the file is truncated")


@pytest.mark.skipif(not POCKETSPHINX.is_dir(), reason="Debian's pocketsphinx-testdata (scripts/setup test installs it)")
@pytest.mark.parametrize("name", ["cards/001.wav", "cards/005.wav",
                                  "librivox/sense_and_sensibility_01_austen_64kb-0870.wav"])
def test_real_recordings(name):
    """Real 16 kHz speech: the expected number of finite frames, log energies in a speech-like range."""
    path = POCKETSPHINX / name
    with wave.open(str(path)) as w:
        samples = w.getnframes()
    got = read_all(path)[str(path)][0]
    assert got.shape == (1 + (samples - 400) // 160, DIM)
    assert np.isfinite(got).all()
    assert got.min() > 0 and 10 < np.median(got) < 22 and got.max() < 32  # log power of 16-bit samples (7..30 here)
    assert got.mean(axis=1).std() > 1  # energy moves between speech and pauses


# --- constant memory --------------------------------------------------------------------------------


def peak_bytes_while_streaming(path, **kwargs):
    tracemalloc.start()
    try:
        total = 0
        for _, chunks in iter_streams(path, DIM, **kwargs):
            for c in chunks:
                total += len(c)
        return total, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_an_hour_of_npy_streams_without_python_allocations_growing(tmp_path):
    n = 360_000  # 1 hour of 10 ms frames: 28.8 MB of float32 (peak RSS over 1 and 4 hours: tests/cli/test_long_run.py)
    out = np.lib.format.open_memmap(tmp_path / "long.npy", mode="w+", dtype=np.float32, shape=(n, DIM))
    out[:] = np.float32(-3.5)
    out[-1] = 1.0
    del out
    total, peak = peak_bytes_while_streaming(tmp_path / "long.npy")
    assert total == n
    assert peak < 2_000_000, peak  # a scan block and a chunk, not the 28.8 MB file


def test_a_long_wav_streams_in_constant_memory(tmp_path):
    """The peak does not grow with the length of the audio. (1 hour of audio takes about 7 s to featurize here, and
    8 times longer under tracemalloc, so this compares 10 s with 60 s.)"""
    peaks = []
    for seconds in (10, 60):
        with wave.open(str(tmp_path / "long.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16000)
            block = audio(10)
            for _ in range(seconds // 10):
                w.writeframes(block.tobytes())
        total, peak = peak_bytes_while_streaming(tmp_path / "long.wav", chunk_frames=256)
        assert total == 1 + (seconds * 16000 - 400) // 160
        peaks.append(peak)
    assert peaks[1] - peaks[0] < 16_000, peaks  # 60 s of features are 480 KB; of samples, 1.9 MB
    assert peaks[1] < 300_000, peaks


def _valid_files(d):
    np.save(d / "f.npy", frames(6))
    kaldiio.save_ark(str(d / "b.ark"), {"u1": frames(3), "u2": frames(2)}, scp=str(d / "b.scp"))
    kaldiio.save_ark(str(d / "t.ark"), {"u1": frames(2)}, text=True)
    kaldiio.save_ark(str(d / "c.ark"), {"u1": frames(4)}, compression_method=2)
    write_wav(d / "a.wav", audio(0.05))
    return ["f.npy", "b.ark", "b.scp", "t.ark", "c.ark", "a.wav"]


@given(data=st.data())
def test_any_byte_edit_gives_frames_or_a_format_error(tmp_path_factory, data):
    """Never another exception, whatever one byte of a valid file becomes (scp: its archive)."""
    d = tmp_path_factory.mktemp("edit")
    names = _valid_files(d)
    name = data.draw(st.sampled_from(names))
    target = d / ("b.ark" if name == "b.scp" else name)
    blob = bytearray(target.read_bytes())
    pos = data.draw(st.integers(0, len(blob) - 1))
    blob[pos] = data.draw(st.integers(0, 255))
    target.write_bytes(bytes(blob))
    try:
        read_all(d / name)
    except FormatError:
        pass
