"""The LFBE front end: log mel filterbank energies from 16-bit audio, computed by kaldi-native-fbank.

``FbankOptions`` are the model's feature settings (25 ms windows every 10 ms,
20 mel bins by default), stored in the model blob (docs/format.md, §3.2);
``compute_fbank`` gives the (T, num_mel_bins) float32 frames that windows are
cut from, exactly what Kaldi's ``compute-fbank-feats`` computes with the same
options (no dither, so the same audio gives the same features every time).
``fbank_chunks`` computes the same frames block by block, in constant memory.

kaldi-native-fbank computes every number, by one of two routes (``fbank_route``
says which, decided once per process): ``"direct"`` drives the knf.OnlineFbank
its Python binding made with the options from C++ (kwsint.io._knf_direct: its
compiled AcceptWaveform on float32 buffers a second at a time, frames copied
into numpy blocks), ``"binding"`` calls that binding (lists of floats, a call
per frame), slower (benchmarks/README.md). The direct route is taken only where its
frames equal the binding's on a probe signal, so both give the same features.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np

# Kaldi's window types; the blob stores the 1-based position in this tuple.
WINDOW_TYPES = ("povey", "hamming", "hanning", "rectangular", "sine", "blackman")
SAMPLE_RATE_RANGE = (1000, 192000)  # Hz
FRAME_MS_RANGE = (1.0, 1000.0)  # ms; with >= 1000 Hz, every frame and shift is >= 1 sample
MAX_MEL_BINS = 1024


@dataclass(frozen=True)
class FbankOptions:
    """Kaldi fbank options (kaldi-native-fbank names), checked on construction.

    Floats are used as float32 (what kaldi-native-fbank and the blob hold) and
    checked as such. The remaining Kaldi options are fixed: dither 0, no energy
    feature, log filterbank energies, FFT size rounded up to a power of two,
    Blackman coefficient 0.42.

    Attributes:
        sample_rate: Hz of the audio, an integer in 1000..192000 (16000).
        frame_length_ms, frame_shift_ms: analysis window and hop in ms,
            1..1000 each (25, 10).
        num_mel_bins: features per frame, 1..1024 (20). kaldi-native-fbank
            itself needs at least 3, and no more than the FFT bins allow.
        low_freq: lower mel filterbank edge in Hz, in [0, sample_rate / 2) (20).
        high_freq: upper edge in Hz; <= 0 is an offset from the Nyquist
            frequency (Kaldi's convention) (0). The effective upper edge must
            lie in (low_freq, sample_rate / 2].
        preemph_coeff: pre-emphasis coefficient in [0, 1] (0.97).
        remove_dc_offset: subtract each frame's mean (True).
        window_type: one of ``WINDOW_TYPES`` ("povey").
        snip_edges: only frames that fit entirely in the audio (True).

    Raises:
        ValueError: ``"FIELD: expected ..., got ..."`` for the first setting
            out of range.
    """

    sample_rate: int = 16000
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    num_mel_bins: int = 20
    low_freq: float = 20.0
    high_freq: float = 0.0
    preemph_coeff: float = 0.97
    remove_dc_offset: bool = True
    window_type: str = "povey"
    snip_edges: bool = True

    def __post_init__(self):
        lo_rate, hi_rate = SAMPLE_RATE_RANGE
        _require("sample_rate", _is_int(self.sample_rate) and lo_rate <= self.sample_rate <= hi_rate,
                 f"an integer in {lo_rate}..{hi_rate} Hz", self.sample_rate)
        object.__setattr__(self, "sample_rate", int(self.sample_rate))
        lo_ms, hi_ms = FRAME_MS_RANGE
        for name in ("frame_length_ms", "frame_shift_ms"):
            v = _f32(self, name)
            _require(name, lo_ms <= v <= hi_ms, f"{lo_ms:g}..{hi_ms:g} ms", getattr(self, name))
        _require("num_mel_bins", _is_int(self.num_mel_bins) and 1 <= self.num_mel_bins <= MAX_MEL_BINS,
                 f"an integer in 1..{MAX_MEL_BINS}", self.num_mel_bins)
        object.__setattr__(self, "num_mel_bins", int(self.num_mel_bins))
        low, high = _f32(self, "low_freq"), _f32(self, "high_freq")
        nyquist = np.float32(0.5) * np.float32(self.sample_rate)
        _require("low_freq", 0 <= low < nyquist, f"a frequency in [0, {nyquist:g}) Hz", self.low_freq)
        top = high if high > 0 else nyquist + high  # float32 arithmetic, as kaldi-native-fbank
        _require("high_freq", low < top <= nyquist,
                 f"an upper edge in (low_freq, {nyquist:g}] Hz (<= 0: offset from {nyquist:g})", self.high_freq)
        p = _f32(self, "preemph_coeff")
        _require("preemph_coeff", 0 <= p <= 1, "a value in [0, 1]", self.preemph_coeff)
        for name in ("remove_dc_offset", "snip_edges"):
            v = getattr(self, name)
            _require(name, isinstance(v, (bool, np.bool_)) or (_is_int(v) and v in (0, 1)), "a bool", v)
            object.__setattr__(self, name, bool(v))
        _require("window_type", self.window_type in WINDOW_TYPES, f"one of {', '.join(WINDOW_TYPES)}",
                 self.window_type)

    def to_dict(self) -> dict:
        return asdict(self)

    def knf_options(self):
        """The equivalent ``kaldi_native_fbank.FbankOptions`` (dither 0, log energies)."""
        import kaldi_native_fbank as knf

        o = knf.FbankOptions()
        f = o.frame_opts
        f.samp_freq = float(self.sample_rate)
        f.frame_length_ms = float(self.frame_length_ms)
        f.frame_shift_ms = float(self.frame_shift_ms)
        f.dither = 0.0
        f.preemph_coeff = float(self.preemph_coeff)
        f.remove_dc_offset = bool(self.remove_dc_offset)
        f.window_type = self.window_type
        f.snip_edges = bool(self.snip_edges)
        o.mel_opts.num_bins = int(self.num_mel_bins)
        o.mel_opts.low_freq = float(self.low_freq)
        o.mel_opts.high_freq = float(self.high_freq)
        o.use_energy = False
        o.use_log_fbank = True
        return o


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _f32(options: FbankOptions, name: str) -> np.float32:
    """A float setting as float32 (NaN for a non-number, which every range check refuses)."""
    v = getattr(options, name)
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        return np.float32("nan")
    return np.float32(v)


def _require(field: str, ok: bool, expected: str, got) -> None:
    if not ok:
        raise ValueError(f"{field}: expected {expected}, got {got!r}")


def fbank_chunks(blocks: Iterable[np.ndarray], options: FbankOptions = FbankOptions()) -> Iterator[np.ndarray]:
    """Log mel filterbank energies of audio given block by block, in constant memory.

    Args:
        blocks: 1-D arrays of consecutive mono samples at ``options.sample_rate``
            in 16-bit sample units (int16, or floats in [-32768, 32767] as Kaldi
            reads wav files); any block sizes, empty blocks allowed.
        options: the feature settings.

    Yields:
        float32 (n, num_mel_bins) arrays, n >= 1, of the frames complete so far
        (the last ones once ``blocks`` is exhausted). Concatenated they equal
        ``compute_fbank`` of the whole signal bit for bit, whatever the block
        sizes. Besides the current block, memory holds a second of samples
        and their frames at most.

    Raises:
        ValueError: at once if kaldi-native-fbank refuses the options (fewer
            than 3 mel bins, or more than the FFT size allows); while
            iterating if a block is not 1-D.
    """
    stream = FbankStream(options)
    return _frames(stream, blocks)


def _frames(stream: FbankStream, blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    for block in blocks:
        yield from stream.push_pieces(block)
    last = stream.finish()
    if len(last):
        yield last


class FbankStream:
    """The LFBE front end pushed to: samples in, the frames they complete out (``fbank_chunks`` pulls).

    ``push`` takes 1-D mono samples at ``options.sample_rate`` in 16-bit sample
    units (int16, or floats in [-32768, 32767]) and returns the float32
    (n, num_mel_bins) frames completed, n >= 0; ``finish`` returns the last
    ones. Concatenated, they equal ``compute_fbank`` of all the samples bit for
    bit, whatever the chunk sizes.
    """

    def __init__(self, options: FbankOptions = FbankOptions()):
        import kaldi_native_fbank as knf

        self.options = options
        self._knf = knf.OnlineFbank(options.knf_options())
        self._done = 0  # frames handed out and popped
        self._direct = _direct_module()  # None: the binding route
        # Samples per accept. Direct: a second (larger blocks are no faster); the binding converts a short
        # list fastest.
        self._piece = options.sample_rate if self._direct else options.sample_rate // 10

    def push_pieces(self, samples: np.ndarray) -> Iterator[np.ndarray]:
        """The frames ``samples`` complete, in arrays of at least one frame, as they become ready."""
        x = np.asarray(samples)
        if x.ndim != 1:
            raise ValueError(f"samples: expected mono 1-D audio, got shape {x.shape}")
        x = np.ascontiguousarray(x, dtype=np.float32)
        rate = float(self.options.sample_rate)
        for start in range(0, len(x), self._piece):
            if self._direct:
                self._direct.accept(self._knf, rate, x[start : start + self._piece])
            else:
                self._knf.accept_waveform(rate, x[start : start + self._piece].tolist())
            if self._knf.num_frames_ready > self._done:
                yield self._take_ready()

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Append samples; returns the frames they complete, float32 (n, num_mel_bins), n >= 0."""
        return self._joined(list(self.push_pieces(samples)))

    def finish(self) -> np.ndarray:
        """End of the audio: the frames that only its end completes (none with ``snip_edges``)."""
        self._knf.input_finished()
        return self._joined([self._take_ready()] if self._knf.num_frames_ready > self._done else [])

    def _joined(self, parts: list[np.ndarray]) -> np.ndarray:
        if not parts:
            return np.zeros((0, self.options.num_mel_bins), dtype=np.float32)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _take_ready(self) -> np.ndarray:
        """Copies the ready frames out of the extractor, then frees them there."""
        ready = self._knf.num_frames_ready
        if self._direct:
            frames = np.empty((ready - self._done, self.options.num_mel_bins), dtype=np.float32)
            self._direct.copy_frames(self._knf, self._done, frames)
        else:
            frames = np.stack([self._knf.get_frame(i) for i in range(self._done, ready)])  # get_frame: a view
        self._knf.pop(ready - self._done)
        self._done = ready
        return frames


def compute_fbank(samples: np.ndarray, options: FbankOptions = FbankOptions()) -> np.ndarray:
    """Log mel filterbank energies of mono audio.

    Args:
        samples: 1-D audio at ``options.sample_rate``, in 16-bit sample units
            (int16, or floats in [-32768, 32767] as Kaldi reads wav files).

    Returns:
        float32 (T, num_mel_bins); T = 1 + (len - frame_length) // frame_shift
        samples with ``snip_edges`` (0 for audio shorter than one frame).
    """
    x = np.asarray(samples)
    if x.ndim != 1:
        raise ValueError(f"samples: expected mono 1-D audio, got shape {x.shape}")
    frames = list(fbank_chunks([x], options))
    if not frames:
        return np.zeros((0, options.num_mel_bins), dtype=np.float32)
    return np.concatenate(frames)


ROUTE_ENV = "KWSINT_FBANK_ROUTE"
"""``binding`` in the environment keeps the front end on kaldi-native-fbank's binding (read once)."""


class FbankRoute(NamedTuple):
    """How the LFBE front end reaches kaldi-native-fbank: ``name`` "direct" or "binding", ``detail`` why."""

    name: str
    detail: str


@functools.cache
def fbank_route() -> FbankRoute:
    """The route every ``FbankStream`` of this process takes, decided on first use (``FbankRoute``).

    "direct" where kwsint.io._knf_direct was built, finds kaldi-native-fbank's
    functions in its module, gets the C++ object through pybind11's conduit
    (same platform ABI id, same type) and gives the binding's frames bit for
    bit on a probe; "binding" otherwise, or with KWSINT_FBANK_ROUTE=binding,
    with the reason in ``detail``. Both give the same features.
    """
    import kaldi_native_fbank as knf

    if os.environ.get(ROUTE_ENV, "") == "binding":
        return FbankRoute("binding", f"{ROUTE_ENV}=binding")
    try:
        from . import _knf_direct as direct
    except ImportError as e:
        return FbankRoute("binding", f"kwsint.io._knf_direct is not built here (a build without a C++ compiler "
                                     f"or kaldi-native-fbank's headers): {e}")
    try:
        direct.resolve(knf.lib._kaldi_native_fbank.__file__)
        mismatch = _probe(direct)
    except Exception as e:  # the conduit refused (LookupError), a symbol is missing (ImportError), ...
        return FbankRoute("binding", f"kaldi-native-fbank {knf.__version__}: {type(e).__name__}: {e}")
    if mismatch:
        return FbankRoute("binding", f"kaldi-native-fbank {knf.__version__}: the direct route's frames differ "
                                     f"from the binding's ({mismatch})")
    return FbankRoute("direct", f"kaldi-native-fbank {knf.__version__}'s OnlineFbank through pybind11's conduit "
                                f"(platform ABI id {direct.PLATFORM_ABI_ID})")


def _direct_module():
    """kwsint.io._knf_direct where the direct route is taken, else None."""
    if fbank_route().name != "direct":
        return None
    from . import _knf_direct

    return _knf_direct


def _probe(direct) -> str:
    """"" if the direct route computes the binding's frames bit for bit on 0.3 s of noise under a few settings
    (knf's functions are called as found, so a kaldi-native-fbank that changed them must not pass unnoticed);
    else the first settings that differ."""
    import kaldi_native_fbank as knf

    x = np.random.default_rng(22).normal(0, 3000, 4801).round().astype(np.float32)
    for options in (FbankOptions(), FbankOptions(snip_edges=False, window_type="hamming", num_mel_bins=23)):
        want, got = knf.OnlineFbank(options.knf_options()), knf.OnlineFbank(options.knf_options())
        want.accept_waveform(float(options.sample_rate), x.tolist())
        direct.accept(got, float(options.sample_rate), x)
        want.input_finished()
        got.input_finished()
        n = want.num_frames_ready
        if got.num_frames_ready != n:
            return f"{options}: {got.num_frames_ready} frames, not {n}"
        frames = np.empty((n, options.num_mel_bins), dtype=np.float32)
        direct.copy_frames(got, 0, frames)
        if not np.array_equal(frames, [want.get_frame(i) for i in range(n)]):
            return f"{options}"
    return ""
