"""The LFBE front end: log mel filterbank energies from 16-bit audio, computed by kaldi-native-fbank.

``FbankOptions`` are the model's feature settings (25 ms windows every 10 ms,
20 mel bins by default); ``compute_fbank`` gives the (T, num_mel_bins) float32
frames that windows are cut from, exactly what Kaldi's ``compute-fbank-feats``
computes with the same options (no dither, so the same audio gives the same
features every time).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class FbankOptions:
    """Kaldi fbank options (kaldi-native-fbank names).

    Attributes:
        sample_rate: Hz of the audio (16000).
        frame_length_ms, frame_shift_ms: analysis window and hop (25, 10).
        num_mel_bins: features per frame (20).
        low_freq, high_freq: mel filterbank edges in Hz; high_freq <= 0 is an
            offset from the Nyquist frequency (Kaldi's convention).
        preemph_coeff, remove_dc_offset, window_type, snip_edges: framing, as in Kaldi.
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


def compute_fbank(samples: np.ndarray, options: FbankOptions = FbankOptions()) -> np.ndarray:
    """Log mel filterbank energies of mono audio.

    Args:
        samples: 1-D audio at ``options.sample_rate``, in 16-bit sample units
            (int16, or floats in [-32768, 32767] as Kaldi reads wav files).

    Returns:
        float32 (T, num_mel_bins); T = 1 + (len - frame_length) // frame_shift
        samples with ``snip_edges`` (0 for audio shorter than one frame).
    """
    import kaldi_native_fbank as knf

    x = np.asarray(samples)
    if x.ndim != 1:
        raise ValueError(f"samples: expected mono 1-D audio, got shape {x.shape}")
    fb = knf.OnlineFbank(options.knf_options())
    fb.accept_waveform(float(options.sample_rate), x.astype(np.float32).tolist())
    fb.input_finished()
    if fb.num_frames_ready == 0:
        return np.zeros((0, options.num_mel_bins), dtype=np.float32)
    return np.stack([np.asarray(fb.get_frame(i), dtype=np.float32) for i in range(fb.num_frames_ready)])
