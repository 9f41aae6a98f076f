"""Turning input files into feature frames: ``iter_streams`` reads any supported file in constant memory.

The suffix (any case) chooses the reader:

* ``.npy``: (T, feature_dim) LFBE frames, 10 ms apart. float32 is used as is;
  float16 and float64 are converted to float32 (a float64 value beyond
  float32's range is refused like an Inf). Read through a memory map, one
  chunk at a time, whose pages are dropped (``MADV_DONTNEED``) once read: a
  10-hour file (3,600,000 frames, 288 MB) is never in memory whole, and does
  not stay in the process's resident set either.
* ``.ark``: a Kaldi archive of feature matrices (binary, text or compressed),
  each utterance one stream, named ``FILE:KEY``. Uncompressed binary matrices
  are read through a memory map, as .npy files are, so a 10-hour utterance is
  never in memory whole; text and compressed ones are read by kaldiio, one
  utterance's matrix in memory at a time. kaldiio's own entry types
  (pickle, npy, audio) are refused unread: kaldiio would unpickle them.
* ``.scp``: a Kaldi script file of lines ``KEY ARK_PATH[:OFFSET]`` pointing
  into archives (relative paths are relative to the current directory, as in
  Kaldi); each line is one stream, named ``FILE:KEY``. Pipes (``cmd |``),
  standard input (``-``), archives that are not regular files (a FIFO,
  ``/dev/stdin``) and row ranges (``[a:b]``) are refused: a data file
  never runs a command.
* ``.wav``: 16-bit PCM mono audio at the model's sample rate. LFBE frames are
  computed with the model's ``FbankOptions`` (``kwsint.io.features``), or for a
  microWakeWord model the microfrontend's frames (``MicroFrontendOptions``,
  ``kwsint.io.microfrontend``), one second of audio at a time, so memory does not
  grow with the length of the file.

A .npy or .wav input may be a URL instead of a path: a ``str`` with ``://``
(``file://``, ``memory://``, ``https://``, ``s3://``...), opened by fsspec with
the backend for its protocol (``kwsint.io.urls``; fsspec comes with
``kwsint[cluster]``). Its suffix is that of the URL's path (the query string
aside). A .npy file is read by its header, then by byte ranges of the rows
wanted (never whole in memory); a .wav file through ``wave`` on the seekable
fsspec file, its truncation checked against the file's size. Both give the
frames, checks and messages of the same file as a path (named by the URL).
.ark and .scp URLs are refused; a URL that cannot be opened, or whose protocol
has no backend, is a one-line ``FormatError`` naming it. Local paths are read
as above (memory maps), never through fsspec.

Every problem with a file is a ``kwsint.errors.FormatError`` reading
``"PATH: FIELD: expected ..., got ..."``. A stream is checked before its first
chunk is yielded (shape, dtype and every frame finite; the wav header and the
data length), so it yields all its frames or none, unless the file changes
while it is read. In an ark or scp file, a later stream can fail after
earlier ones were yielded.
"""

from __future__ import annotations

import mmap
import os
import stat
import struct
import tokenize
import wave
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
from kaldiio.matio import read_kaldi

from ..errors import FormatError
from .features import FbankOptions, fbank_chunks
from .microfrontend import MicroFrontendOptions, microfrontend_chunks
from .urls import UrlArray, UrlFile, check_npy_magic, is_url, open_npy, suffix as url_suffix

DEFAULT_CHUNK_FRAMES = 4096  # 41 s of 10 ms frames; 320 KiB at 20 features
SUFFIXES = (".npy", ".ark", ".scp", ".wav")
URL_SUFFIXES = (".npy", ".wav")
_SCAN_FRAMES = 8192  # frames per block when checking an array for NaN and Inf (640 KiB at 20 features)
_FLOAT_DTYPES = ("float16", "float32", "float64")
_MAX_KEY_BYTES = 4096
# What kaldiio's read_kaldi raises on a malformed matrix (found by mutating and truncating archives). Not
# MemoryError: a declared size the file cannot hold is refused before kaldiio reads (_check_binary_size).
_KALDIIO_ERRORS = (OSError, EOFError, ValueError, RuntimeError, AssertionError, struct.error)
# Binary Kaldi matrix types kaldiio reads: bytes per value in the file, and the bytes of the header after the
# type token ("\4" rows "\4" cols, or a compressed matrix's GlobalHeader: min, range, rows, cols).
_KALDI_BINARY = {"FM": (4, 10), "DM": (8, 10), "FV": (4, 5), "DV": (8, 5), "CM": (1, 16), "CM2": (2, 16),
                 "CM3": (1, 16)}

# What np.load raises on a malformed .npy (truncated, a header that numpy's literal_eval or Python 2 header
# tokenizer refuses, object arrays), found by editing every header byte.
_NPY_ERRORS = (OSError, EOFError, ValueError, SyntaxError, TypeError, OverflowError, tokenize.TokenError)
# What the wave module raises on a malformed header (RuntimeError: a chunk size beyond the file).
_WAVE_ERRORS = (wave.Error, EOFError, RuntimeError, ValueError, OSError, struct.error)

Stream = tuple[str, Iterator[np.ndarray]]


def iter_streams(path: str | os.PathLike, feature_dim: int, fbank: FbankOptions | MicroFrontendOptions | None = None,
                 chunk_frames: int = DEFAULT_CHUNK_FRAMES) -> Iterator[Stream]:
    """The streams of feature frames in one input file.

    Args:
        path: a .npy, .ark, .scp or .wav file (see the module docstring).
        feature_dim: features per frame the model expects, >= 1.
        fbank: the model's feature settings (``spec.frontend.fbank``), used for
            .wav input; None means ``FbankOptions(num_mel_bins=feature_dim)``.
            ``MicroFrontendOptions`` computes a microWakeWord model's features
            (pymicro-features) instead.
        chunk_frames: frames per chunk, >= 1.

    Yields:
        ``(name, chunks)`` per stream: ``name`` is the path, or ``PATH:KEY`` for
        an utterance of an ark or scp file; ``chunks`` yields C-contiguous
        float32 arrays of shape (n, feature_dim), n == chunk_frames except for
        the stream's last chunk (1 <= n <= chunk_frames). Concatenated, they
        are the stream's frames; a stream of no frames yields no chunks.

    Raises:
        FormatError: the file is missing, unreadable or malformed, or does not
            fit the model (feature_dim, sample rate).
        ValueError: chunk_frames < 1, or fbank's features per frame != feature_dim.
    """
    if chunk_frames < 1:
        raise ValueError(f"chunk_frames: expected >= 1, got {chunk_frames}")
    fbank = FbankOptions(num_mel_bins=feature_dim) if fbank is None else fbank
    if isinstance(fbank, MicroFrontendOptions):
        if fbank.num_features != feature_dim:
            raise ValueError(f"feature_dim: expected the microfrontend's {fbank.num_features} features per frame, "
                             f"got {feature_dim}")
    elif fbank.num_mel_bins != feature_dim:
        raise ValueError(f"fbank.num_mel_bins: expected feature_dim ({feature_dim}), got {fbank.num_mel_bins}")
    path, suffix = _name(path)
    if is_url(path) and suffix in (".ark", ".scp"):
        raise FormatError(f"{path}: type: expected a URL of one of {', '.join(URL_SUFFIXES)} (.ark and .scp files "
                          f"are read from paths), got {suffix!r}")
    if suffix == ".npy":
        yield str(path), _npy_chunks(path, feature_dim, chunk_frames)
    elif suffix == ".ark":
        yield from _ark_streams(path, feature_dim, chunk_frames)
    elif suffix == ".scp":
        yield from _scp_streams(path, feature_dim, chunk_frames)
    elif suffix == ".wav":
        yield str(path), _wav_chunks(path, fbank, chunk_frames)
    else:
        raise FormatError(f"{path}: type: expected one of {', '.join(SUFFIXES)}, got {suffix or 'no suffix'!r}")


def _name(path: str | os.PathLike) -> tuple[str | Path, str]:
    """An input as its readers take it, a URL kept as the string it is (a Path would fold its ``//``), and its
    suffix in lower case (a URL's from its path, without the query string)."""
    if is_url(path):
        return path, url_suffix(path)
    path = Path(path)
    return path, path.suffix.lower()


# --- feature matrices ------------------------------------------------------------


def _check_frames(name: str, a, feature_dim: int, release: Callable[[], None] = lambda: None) -> None:
    """Refuses anything but a finite float (T, feature_dim) array; reads ``a`` in blocks (it may be a memory map),
    calling ``release`` after each."""
    _check_matrix(name, a, feature_dim)
    _check_finite(name, a, release)


def _check_matrix(name: str, a, feature_dim: int) -> None:
    """Refuses anything but a float (T, feature_dim) array."""
    if not isinstance(a, (np.ndarray, UrlArray)):
        raise FormatError(f"{name}: matrix: expected a feature matrix, got {type(a).__name__}")
    if a.dtype.name not in _FLOAT_DTYPES:
        raise FormatError(f"{name}: dtype: expected {', '.join(_FLOAT_DTYPES)}, got {a.dtype}")
    if a.ndim != 2 or a.shape[1] != feature_dim:
        raise FormatError(f"{name}: shape: expected (frames, {feature_dim}), got {a.shape}")


def _check_finite(name: str, a: np.ndarray, release: Callable[[], None] = lambda: None, first: int = 0) -> None:
    """Refuses a NaN or Inf (or float64 beyond float32) in ``a``, the stream's frames from ``first`` on (messages
    name frames by their index in the stream), read in blocks; calls ``release`` after each."""
    for start in range(0, len(a), _SCAN_FRAMES):
        with np.errstate(over="ignore"):  # float64 beyond float32's range becomes inf, refused below
            bad = ~np.isfinite(a[start : start + _SCAN_FRAMES].astype(np.float32))
        release()
        if bad.any():
            frame, feature = np.argwhere(bad)[0]
            raise FormatError(f"{name}: frames[{first + start + frame}]: expected finite float32 values, "
                              f"got {float(a[start + frame, feature])!r} at feature {feature}")


def _slices(a, chunk_frames: int, release: Callable[[], None] = lambda: None) -> Iterator[np.ndarray]:
    """Copies, never views: a chunk of a memory map must not keep the file mapped or be read-only. Calls
    ``release`` after each copy."""
    for start in range(0, len(a), chunk_frames):
        chunk = np.array(a[start : start + chunk_frames], dtype=np.float32, order="C")
        release()
        yield chunk


def _npy_chunks(path: Path, feature_dim: int, chunk_frames: int) -> Iterator[np.ndarray]:
    a, release = _npy_map(path)
    _check_frames(str(path), a, feature_dim, release)
    return _slices(a, chunk_frames, release)


def _npy_map(path: Path | str) -> tuple[np.ndarray | UrlArray, Callable[[], None]]:
    """The .npy file's array through a read-only memory map, and a function that drops the pages read; at a URL,
    its array read by byte ranges of rows (``kwsint.io.urls``), and a function that does nothing."""
    if is_url(path):
        return open_npy(path), lambda: None
    with _open(path) as f:
        check_npy_magic(str(path), f.read(len(np.lib.format.MAGIC_PREFIX)))
    try:
        a = np.load(path, mmap_mode="r", allow_pickle=False)
    except _NPY_ERRORS as e:
        raise FormatError(f"{path}: npy: expected a readable .npy array, got {type(e).__name__}: {e}") from None
    # The same array through a map of our own, so that the pages read can be dropped from the resident set: pages
    # of a file mapping stay resident (counted in RSS) until unmapped or dropped, even when never touched again.
    with _open(path) as f:
        try:
            m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            a = np.ndarray(a.shape, a.dtype, buffer=m, offset=a.offset, order="F" if np.isfortran(a) else "C")
        except (OSError, TypeError, ValueError) as e:  # the file shrank since np.load read its header
            raise FormatError(f"{path}: data: expected the header's {a.shape} array, got {e}") from None

    def release() -> None:
        m.madvise(mmap.MADV_DONTNEED)  # a read-only shared file map: read again from the page cache if touched

    return a, release


# --- frame ranges: a long .npy or .wav stream split into pieces that run apart (kwsint.cluster) ---------------


def splittable(path: str | os.PathLike, fbank: FbankOptions | MicroFrontendOptions) -> bool:
    """Whether ``read_frames`` reads the input by frame ranges: a .npy file, or a .wav file for an LFBE front end
    with ``snip_edges`` (each frame then depends on its own samples only; the microfrontend carries state from
    frame to frame)."""
    suffix = _name(path)[1]
    return suffix == ".npy" or (suffix == ".wav" and isinstance(fbank, FbankOptions) and fbank.snip_edges)


def frames_bound(path: str | os.PathLike, feature_dim: int, fbank: FbankOptions) -> int:
    """For a ``splittable`` input, checked as ``iter_streams`` checks it before its first frame (a .wav file's
    header, a .npy file's dtype and shape; not yet its values): its frames (.npy), or at least its frames (.wav:
    one per frame shift of its samples, plus one). FormatError otherwise."""
    path, suffix = _name(path)
    if suffix == ".npy":
        a, _ = _npy_map(path)
        _check_matrix(str(path), a, feature_dim)
        return len(a)
    with _open(path) as f:
        _, samples = _wav_open(path, f, fbank)
    return audio_frames_bound(samples, fbank)


def read_frames(path: str | os.PathLike, feature_dim: int, fbank: FbankOptions, start: int, stop: int) -> np.ndarray:
    """Frames ``start .. stop - 1`` of a ``splittable`` input (fewer where it ends first), float32 C-contiguous,
    equal bit for bit to those rows of its ``iter_streams`` frames; checked as ``iter_streams`` checks the whole
    input, with the same messages (frames named by their index in the stream). FormatError otherwise."""
    path, suffix = _name(path)
    if suffix == ".npy":
        a, release = _npy_map(path)
        _check_matrix(str(path), a, feature_dim)
        rows = a[start:stop]
        _check_finite(str(path), rows, release, first=start)
        return np.array(rows, dtype=np.float32, order="C")
    with _open(path) as f:
        w, samples = _wav_open(path, f, fbank)

        def blocks(first: int, count: int) -> Iterator[np.ndarray]:
            w.setpos(first)
            return _samples(path, w, count, fbank.sample_rate)

        try:
            return audio_frames(blocks, samples, fbank, start, stop)
        except FormatError:  # the file's (a read cut short), not the settings'
            raise
        except ValueError as e:
            raise FormatError(f"{path}: fbank: expected settings that kaldi-native-fbank accepts, got {e}") from None


def audio_frames(blocks: Callable[[int, int], Iterable[np.ndarray]], samples: int, fbank: FbankOptions, start: int,
                 stop: int) -> np.ndarray:
    """LFBE frames ``start .. stop - 1`` (fewer where the audio ends) of ``samples`` samples of audio, computed
    from the samples they cover only, which ``blocks(first, count)`` gives (int16 blocks of samples ``first ..
    first + count - 1``): equal bit for bit to those rows of the whole audio's frames, with ``snip_edges``."""
    shift, length = window_samples(fbank)
    first = min(start * shift, samples)
    count = max(0, min(samples, (stop - 1) * shift + length) - first) if stop > start else 0
    frames = list(fbank_chunks(blocks(first, count), fbank))
    out = np.concatenate(frames) if frames else np.zeros((0, fbank.num_mel_bins), np.float32)
    return np.ascontiguousarray(out[: max(stop - start, 0)])


def audio_frames_bound(samples: int, fbank: FbankOptions) -> int:
    """At least the LFBE frames of ``samples`` samples of audio: one per frame shift, plus one."""
    return samples // window_samples(fbank)[0] + 1


def window_samples(fbank: FbankOptions) -> tuple[int, int]:
    """(frame shift, frame length) in samples, computed as kaldi-native-fbank computes them (float32)."""
    rate = np.float32(fbank.sample_rate) * np.float32(0.001)
    return (int(rate * np.float32(fbank.frame_shift_ms)), int(rate * np.float32(fbank.frame_length_ms)))


def _open(path: Path | str, mode: str = "rb"):
    if is_url(path):
        return UrlFile(path)
    try:
        return open(path, mode)
    except OSError as e:
        raise FormatError(f"{path}: file: expected a readable file, got {e.strerror or e}") from None


def _ark_streams(path: Path, feature_dim: int, chunk_frames: int) -> Iterator[Stream]:
    count = 0
    with _open(path) as f:
        while (key := _read_key(path, f, count)) is not None:
            name = f"{path}:{key}"
            matrix, release = _read_matrix(name, f)
            _check_frames(name, matrix, feature_dim, release)
            count += 1
            yield name, _slices(matrix, chunk_frames, release)
    if count == 0:
        raise FormatError(f"{path}: utterances: expected at least one, got none")


def _read_key(path: Path, f, count: int) -> str | None:
    """The next utterance key (the bytes up to a space), or None at the end of the archive."""
    key = bytearray()
    while (c := f.read(1)) not in (b" ", b""):
        key += c
        if len(key) > _MAX_KEY_BYTES:
            break
    if not key and not c:
        return None
    if not key or not c or len(key) > _MAX_KEY_BYTES:
        raise FormatError(f"{path}: key: expected a key of 1..{_MAX_KEY_BYTES} bytes and a space after "
                          f"{count} utterances, got {bytes(key[:40])!r}{' and the end of the file' if not c else ''}")
    text = key.decode("utf-8", errors="replace")
    if not text.isprintable() or "\ufffd" in text:
        raise FormatError(f"{path}: key: expected printable UTF-8 text after {count} utterances, "
                          f"got {bytes(key[:40])!r}")
    return text


def _read_matrix(name: str, f) -> tuple[np.ndarray, Callable[[], None]]:
    """The Kaldi matrix at f's position, binary or text, and a function that drops its pages already read from
    the resident set (for a mapped matrix; else it does nothing). f is left after the matrix. Other kaldiio
    entries (pickles, npy, audio) are refused unread: kaldiio would unpickle them."""
    flag = f.read(5)
    f.seek(-len(flag), os.SEEK_CUR)
    if flag[:2] != b"\0B" and flag.lstrip(b" \t\r\n")[:1] != b"[":
        raise FormatError(f"{name}: matrix: expected a Kaldi matrix (binary b'\\0B' or text '['), got {flag!r}")
    if flag[:2] == b"\0B":
        _check_binary_size(name, f)
        if flag[2:5] in (b"FM ", b"DM ") and (mapped := _map_matrix(name, f)) is not None:
            return mapped
    try:
        return read_kaldi(f, "<"), lambda: None
    except _KALDIIO_ERRORS as e:
        raise FormatError(f"{name}: matrix: expected a Kaldi matrix, got {type(e).__name__}: {e}") from None


def _map_matrix(name: str, f) -> tuple[np.ndarray, Callable[[], None]] | None:
    """An uncompressed binary matrix (FM, DM) read through a memory map, as .npy files are: one utterance of
    10 hours is never in memory whole. Its size was checked against the file by _check_binary_size. None, with
    f where it was, for a header that is not whole: kaldiio then says what is wrong."""
    start = f.tell()
    head = f.read(15)  # b"\0B", b"FM " or b"DM ", b"\4" rows (int32), b"\4" cols (int32)
    if len(head) < 15 or head[5] != 4 or head[10] != 4:
        f.seek(start)
        return None
    rows, cols = struct.unpack("<xixi", head[5:15])
    dtype = np.dtype("<f4" if head[2:4] == b"FM" else "<f8")
    try:
        m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        matrix = np.ndarray((rows, cols), dtype, buffer=m, offset=start + 15)
    except (OSError, TypeError, ValueError) as e:  # the file shrank since its size was checked
        raise FormatError(f"{name}: matrix: expected {rows} x {cols} values, got {e}") from None
    f.seek(start + 15 + rows * cols * dtype.itemsize)
    return matrix, lambda: m.madvise(mmap.MADV_DONTNEED)


def _check_binary_size(name: str, f) -> None:
    """Refuses a binary matrix whose declared shape is negative or needs more bytes than the file has left,
    before kaldiio reads it: kaldiio allocates what the header declares (GiBs for a few bytes of header), and
    reads a negative size as "the rest of the file". Leaves f where it was; kaldiio reports other defects."""
    start = f.tell()
    head = f.read(2 + 4 + 16)  # b"\0B", the longest token ("CM3 "), the longest header
    f.seek(start)
    token, space, rest = head[2:].partition(b" ")
    kind = token.decode("ascii", errors="replace")
    if not space or kind not in _KALDI_BINARY:
        return
    value_bytes, header_bytes = _KALDI_BINARY[kind]
    if len(rest) < header_bytes:
        return
    if kind.startswith("CM"):
        rows, cols = struct.unpack("<8xii", rest[:16])
    elif kind.endswith("M"):
        rows, cols = struct.unpack("<xixi", rest[:10])
    else:
        rows, cols = struct.unpack("<xi", rest[:5])[0], 1
    if rows < 0 or cols < 0:
        raise FormatError(f"{name}: shape: expected rows and columns >= 0, got {rows} x {cols}")
    need = 2 + len(token) + 1 + header_bytes + (8 * cols if kind == "CM" else 0) + rows * cols * value_bytes
    left = os.fstat(f.fileno()).st_size - start
    if need > left:
        raise FormatError(f"{name}: matrix: expected {need} bytes for a {kind} matrix of {rows} x {cols}, got {left}: "
                          "the file is truncated")


def _scp_streams(path: Path, feature_dim: int, chunk_frames: int) -> Iterator[Stream]:
    count = 0
    for key, ark, offset in _scp_entries(path):
        name = f"{path}:{key}"
        try:
            # A data file may not name a pipe or device (/dev/stdin, a FIFO): opening one could block forever.
            if not stat.S_ISREG(os.stat(ark).st_mode):
                raise FormatError(f"{name}: ark: expected a regular file {ark!r}, got a pipe, device or folder")
            f = open(ark, "rb")
        except (OSError, ValueError) as e:  # ValueError: a NUL byte in the path
            reason = getattr(e, "strerror", None) or e
            raise FormatError(f"{name}: ark: expected a readable archive {ark!r}, got {reason}") from None
        with f:
            try:
                f.seek(offset)
            except (OSError, ValueError) as e:
                raise FormatError(f"{name}: offset: expected a position in {ark!r}, got {offset}: {e}") from None
            matrix, release = _read_matrix(name, f)
        _check_frames(name, matrix, feature_dim, release)
        count += 1
        yield name, _slices(matrix, chunk_frames, release)
    if count == 0:
        raise FormatError(f"{path}: utterances: expected at least one line, got none")


def _scp_entries(path: Path) -> Iterator[tuple[str, str, int]]:
    """(key, ark path, byte offset) per line of a Kaldi scp file."""
    with _open(path) as f:
        for number, raw in enumerate(f, 1):
            where = f"{path}: line {number}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise FormatError(f"{where}: expected UTF-8 text, got {raw[:40]!r}") from None
            parts = line.split(None, 1)
            if len(parts) != 2:
                raise FormatError(f"{where}: expected 'KEY ARK_PATH[:OFFSET]', got {line.rstrip()!r}")
            key, spec = parts[0], parts[1].strip()
            ark, colon, offset = spec.rpartition(":")
            if not (colon and offset.isdigit()):
                ark, offset = spec, "0"
            if ark.startswith("|") or ark.endswith("|") or ark == "-" or spec.endswith("]"):
                raise FormatError(f"{where}: expected 'KEY ARK_PATH[:OFFSET]' (no pipe, stdin or row range), "
                                  f"got {line.rstrip()!r}")
            yield key, ark, int(offset)


# --- audio -----------------------------------------------------------------------


def _wav_chunks(path: Path, fbank: FbankOptions, chunk_frames: int) -> Iterator[np.ndarray]:
    f = _open(path)
    try:
        frames = _wav_frames(path, f, fbank)
    except BaseException:
        f.close()
        raise
    return _closing(f, _rebatch(frames, chunk_frames))


def _wav_frames(path: Path, f, fbank: FbankOptions | MicroFrontendOptions) -> Iterator[np.ndarray]:
    w, samples = _wav_open(path, f, fbank)
    blocks = _samples(path, w, samples, fbank.sample_rate)
    if isinstance(fbank, MicroFrontendOptions):
        return microfrontend_chunks(blocks)
    try:
        return fbank_chunks(blocks, fbank)
    except ValueError as e:
        raise FormatError(f"{path}: fbank: expected settings that kaldi-native-fbank accepts, got {e}") from None


def _wav_open(path: Path, f, fbank: FbankOptions | MicroFrontendOptions) -> tuple[wave.Wave_read, int]:
    """The checked wav reader of the open file ``f`` at its first sample, and its samples."""
    try:
        w = wave.open(f)
    except _WAVE_ERRORS as e:
        raise FormatError(f"{path}: wav: expected a RIFF WAVE file of 16-bit PCM audio, got "
                          f"{e or type(e).__name__}") from None
    if w.getnchannels() != 1:
        raise FormatError(f"{path}: channels: expected 1 (mono), got {w.getnchannels()}")
    if w.getsampwidth() != 2:
        raise FormatError(f"{path}: sample_width: expected 2 bytes (16-bit PCM), got {w.getsampwidth()}")
    if w.getframerate() != fbank.sample_rate:
        raise FormatError(f"{path}: sample_rate: expected {fbank.sample_rate} Hz (the model's feature settings), "
                          f"got {w.getframerate()} Hz; resample the audio")
    samples = w.getnframes()
    present = (_size(f) - f.tell()) // 2  # wave.open leaves f at the first sample
    if present < samples:
        raise FormatError(f"{path}: data: expected {samples} samples (the header's data size), got {present}: "
                          "the file is truncated")
    return w, samples


def _size(f) -> int:
    """The size in bytes of an open file, local or at a URL."""
    return f.size if isinstance(f, UrlFile) else os.fstat(f.fileno()).st_size


def _samples(path: Path, w: wave.Wave_read, samples: int, block: int) -> Iterator[np.ndarray]:
    """The int16 samples in blocks of ``block``."""
    left = samples
    while left:
        want = min(left, block)
        data = w.readframes(want)
        if len(data) != 2 * want:
            raise FormatError(f"{path}: data: expected {samples} samples, got {samples - left + len(data) // 2}: "
                              "the file is truncated")
        left -= want
        yield np.frombuffer(data, dtype="<i2")


def _rebatch(chunks: Iterable[np.ndarray], size: int) -> Iterator[np.ndarray]:
    """The rows of ``chunks`` in arrays of ``size`` rows (the last one shorter)."""
    pending: list[np.ndarray] = []
    count = 0
    for chunk in chunks:
        pending.append(chunk)
        count += len(chunk)
        if count >= size:
            rows = np.concatenate(pending)
            full = count - count % size
            yield from (rows[i : i + size] for i in range(0, full, size))
            pending, count = [rows[full:]], count - full
    if count:
        yield np.concatenate(pending)


def _closing(f, chunks: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    with f:
        yield from chunks
