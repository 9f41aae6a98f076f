"""Synthetic LFBE-like keyword-spotting windows, made offline from a seed.

A stand-in for real speech until a synthetic speech corpus exists: a small
model can learn it in minutes on a laptop CPU, yet it is not trivially
separable. Values are natural-log mel band energies in kaldi fbank's range
(about -10..+10), one frame per 10 ms, band 0 the lowest.

Every window has a background: a per-window level and spectral tilt, a smooth
random spectral shape, a slow drift in time and frame noise. On top of it sit
distractor events (other syllables, noise bursts, hums) and, in negatives,
sometimes a confusable word: a prefix of the keyword still being spoken, its
last two syllables, or the keyword with one syllable replaced. Positives add
the keyword, three syllables with formant trajectories, ending in the last
``KEYWORD_END_FRAMES`` frames of the window as a streaming detector sees it
shortly after the word.

A *speaker* is an integer id that, with the seed, fixes the tendencies of a
voice and its room: speaking rate, formant shift, loudness above the
background and background level. Windows of different speakers are
independent, so train/val/test split by speaker measure generalisation.
Events are combined with the background in the power domain
(``logaddexp``), so quiet keywords are partly masked as in real recordings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .dataset import Windows

REFERENCE_BANDS = 20
"""Formant positions below are in mel bands of a 20-band filterbank; other sizes scale them."""
KEYWORD_END_FRAMES = 30
"""A positive window's keyword ends within this many frames of the window's end."""
RATE_RANGE = (0.8, 1.25)
"""Time stretch of a word (1.0 = the syllable durations below; > 1 = slower)."""
BAND_SHIFT_LIMIT = 1.0
"""Largest formant offset of a word, in (reference) mel bands."""
FORMANT_WIDTH = 0.9
"""Standard deviation of a formant peak across bands, in (reference) mel bands."""
DIFFERENT_SYLLABLE_BANDS = 3.5
"""A syllable replacing one of the keyword's has formants this far (mean over start and end, reference bands) from it."""


@dataclass(frozen=True)
class Syllable:
    """A syllable-like spectro-temporal pattern.

    Attributes:
        frames: duration at rate 1.0, in frames (10 ms).
        formants_start, formants_end: centres of its formants at onset and at
            offset, in mel bands (0-based, 20-band scale); they move linearly.
        formant_gains: level of each formant relative to the syllable's peak,
            in nats (natural-log energy units), <= 0.
        gap_frames: silence before the next syllable of the word, in frames at rate 1.0.
    """

    frames: float
    formants_start: tuple[float, float, float]
    formants_end: tuple[float, float, float]
    formant_gains: tuple[float, float, float]
    gap_frames: float = 0.0


KEYWORD = (
    Syllable(11, (3.0, 11.0, 15.0), (4.5, 13.0, 16.0), (0.0, -0.5, -1.5), gap_frames=2),
    Syllable(9, (5.0, 9.0, 14.0), (3.0, 7.0, 13.0), (0.0, -0.3, -1.2), gap_frames=3),
    Syllable(14, (2.0, 12.0, 17.0), (3.0, 9.5, 17.0), (0.0, -0.4, -0.8)),
)
"""The wakeword: 34 frames of syllables and 5 of gaps at rate 1.0 (31..49 frames over RATE_RANGE)."""
MIN_WINDOW_FRAMES = KEYWORD_END_FRAMES + 49
"""The shortest window that holds the slowest keyword ending as early as allowed."""
DISTRACTORS_PER_WINDOW = 1.2
"""Mean number of distractor events per window (Poisson), the same for both labels."""


@dataclass(frozen=True)
class Speaker:
    """Tendencies of one speaker's windows (each window varies around them).

    Attributes:
        rate: typical word time stretch, within RATE_RANGE.
        band_shift: typical formant offset, in mel bands, within +-BAND_SHIFT_LIMIT.
        snr: typical level of speech peaks above the background level, in nats.
        background_level: typical background log energy at the middle band, in nats.
    """

    rate: float
    band_shift: float
    snr: float
    background_level: float


def make_speaker(seed: int, speaker: int) -> Speaker:
    """The tendencies of speaker ``speaker`` (>= 0) under ``seed``: the same for every split."""
    rng = np.random.default_rng([seed, 1, speaker])
    return Speaker(
        rate=float(np.exp(rng.uniform(np.log(0.87), np.log(1.15)))),
        band_shift=float(rng.uniform(-0.8, 0.8)),
        snr=float(rng.uniform(5.0, 9.0)),
        background_level=float(rng.uniform(-5.0, -1.0)),
    )


def make_toy_windows(
    n: int,
    *,
    seed: int,
    speakers: Sequence[int] = range(16),
    window_frames: int = 81,
    feature_dim: int = 20,
    positive_fraction: float = 0.5,
    confusable_fraction: float = 0.3,
) -> Windows:
    """``n`` labelled windows of the given speakers, deterministic in (seed, speakers).

    Args:
        n: number of windows, >= 1.
        seed: the data set's seed, >= 0; with a speaker id it fixes that speaker.
        speakers: distinct speaker ids >= 0; their window counts differ by at most one.
        window_frames: frames per window, >= MIN_WINDOW_FRAMES.
        feature_dim: mel bands per frame, >= 8.
        positive_fraction: share of wakeword windows in [0, 1]; round(n * fraction) exactly.
        confusable_fraction: share of negatives in [0, 1] that contain a confusable word.

    Returns:
        Windows with float32 features (n, window_frames, feature_dim), int64
        labels and int64 speakers.
    """
    speaker_ids = np.asarray(speakers, dtype=np.int64)
    if n < 1 or seed < 0 or speaker_ids.size < 1 or (speaker_ids < 0).any() \
            or len(set(speaker_ids.tolist())) != speaker_ids.size:
        raise ValueError("make_toy_windows: expected n >= 1, seed >= 0 and distinct speaker ids >= 0")
    if window_frames < MIN_WINDOW_FRAMES or feature_dim < 8:
        raise ValueError(f"make_toy_windows: expected window_frames >= {MIN_WINDOW_FRAMES} and feature_dim >= 8, "
                         f"got {window_frames} and {feature_dim}")
    if not (0.0 <= positive_fraction <= 1.0 and 0.0 <= confusable_fraction <= 1.0):
        raise ValueError("make_toy_windows: expected positive_fraction and confusable_fraction in [0, 1]")

    rng = np.random.default_rng([seed, 0, *speaker_ids.tolist()])
    window_speakers = speaker_ids[rng.permutation(n) % speaker_ids.size]
    labels = np.zeros(n, dtype=np.int64)
    labels[rng.permutation(n)[: round(n * positive_fraction)]] = 1
    voices = {int(s): make_speaker(seed, int(s)) for s in speaker_ids}

    features = _backgrounds(rng, [voices[int(s)] for s in window_speakers], window_frames, feature_dim)
    band_scale = feature_dim / REFERENCE_BANDS
    for window, speaker, label in zip(features, window_speakers, labels):
        voice = voices[int(speaker)]
        painter = _Painter(window, rng, band_scale)
        for _ in range(rng.poisson(DISTRACTORS_PER_WINDOW)):
            painter.distractor(voice)
        if label:
            painter.word(KEYWORD, voice, end=rng.uniform(window_frames - KEYWORD_END_FRAMES, window_frames))
        elif rng.random() < confusable_fraction:
            painter.confusable(voice)
    return Windows(features.astype(np.float32), labels, window_speakers)


def _backgrounds(rng: np.random.Generator, voices: list[Speaker], frames: int, bands: int) -> np.ndarray:
    """(N, frames, bands) float64 background log energies, one row of ``voices`` per window."""
    n = len(voices)
    band = (np.arange(bands) - (bands - 1) / 2) / bands  # -0.5..0.5 across the mel axis
    time = np.arange(frames)[:, None]
    level = np.array([v.background_level for v in voices]) + rng.normal(0.0, 1.0, n)
    tilt = rng.uniform(-4.0, 0.5, n)  # nats from the lowest to the highest band
    kernel = np.exp(-0.5 * (np.arange(-4, 5) / 1.5) ** 2)
    shape = np.array([np.convolve(rng.normal(0.0, 0.8, bands + 8), kernel, "valid") for _ in range(n)])
    drift = np.zeros((n, frames, 1))
    for _ in range(2):
        period = rng.uniform(40.0, 400.0, n)[:, None, None]
        phase = rng.uniform(0.0, 2 * np.pi, n)[:, None, None]
        drift += rng.uniform(0.0, 0.8, n)[:, None, None] * np.sin(2 * np.pi * time / period + phase)
    noise = rng.uniform(0.3, 0.9, n)[:, None, None] * rng.normal(0.0, 1.0, (n, frames, bands))
    return (level[:, None, None] + tilt[:, None, None] * band + 0.6 * shape[:, None, :]) + drift + noise


class _Painter:
    """Adds sound events to one window (frames, bands) of log energies, in place."""

    def __init__(self, window: np.ndarray, rng: np.random.Generator, band_scale: float):
        self.window = window
        self.rng = rng
        self.band_scale = band_scale
        self.bands = np.arange(window.shape[1])
        self.background = float(np.median(window))

    def word(self, syllables: Sequence[Syllable], voice: Speaker, end: float) -> None:
        """Say ``syllables`` in ``voice``, varied for this utterance, the last one ending at frame ``end``."""
        rng = self.rng
        rate = float(np.clip(voice.rate * np.exp(rng.normal(0.0, 0.06)), *RATE_RANGE))
        shift = float(np.clip(voice.band_shift + rng.normal(0.0, 0.25), -BAND_SHIFT_LIMIT, BAND_SHIFT_LIMIT))
        self._say(syllables, rate, shift, self.background + voice.snr + rng.normal(0.0, 1.2), end)

    def _say(self, syllables: Sequence[Syllable], rate: float, shift: float, peak: float, end: float) -> None:
        """Render syllables at time stretch ``rate``, formant offset ``shift`` (bands), ``peak`` (nats)."""
        onset = end - rate * (sum(s.frames + s.gap_frames for s in syllables) - syllables[-1].gap_frames)
        for syllable in syllables:
            self._syllable(syllable, onset, rate, shift + self.rng.normal(0.0, 0.2, 3), peak + self.rng.normal(0.0, 0.4))
            onset += rate * (syllable.frames + syllable.gap_frames)

    def confusable(self, voice: Speaker) -> None:
        """A word a streaming detector must not fire on: close to the keyword but not it."""
        frames = self.window.shape[0]
        end = self.rng.uniform(frames - KEYWORD_END_FRAMES, frames)
        kind = self.rng.integers(3)
        if kind == 0:  # the keyword still being spoken: its first one or two syllables
            self.word(KEYWORD[: self.rng.integers(1, 3)], voice, end)
        elif kind == 1:  # a word sharing the keyword's last two syllables
            self.word(KEYWORD[1:], voice, end)
        else:  # the keyword with one syllable replaced
            syllables = list(KEYWORD)
            replaced = self.rng.integers(3)
            syllables[replaced] = self._different_syllable(KEYWORD[replaced])
            self.word(syllables, voice, end)

    def distractor(self, voice: Speaker) -> None:
        """Another event anywhere in the window: speech of another, quieter voice, a noise burst or a hum."""
        rng, frames = self.rng, self.window.shape[0]
        kind = rng.choice(3, p=[0.6, 0.25, 0.15])
        if kind == 0:
            syllables = [self._random_syllable(gap_frames=rng.uniform(1.0, 4.0)) for _ in range(rng.integers(1, 4))]
            self._say(syllables, rate=rng.uniform(*RATE_RANGE), shift=rng.uniform(-BAND_SHIFT_LIMIT, BAND_SHIFT_LIMIT),
                      peak=self.background + voice.snr - rng.uniform(1.0, 4.0), end=rng.uniform(10.0, frames + 30.0))
        elif kind == 1:
            start, length = rng.uniform(-5.0, frames), rng.uniform(2.0, 12.0)
            centre, width = rng.uniform(0.0, REFERENCE_BANDS), rng.uniform(3.0, 10.0)
            self._blob(start, length, [centre], [centre], width, [0.0], self.background + rng.uniform(1.0, 6.0))
        else:
            start, length = rng.uniform(-40.0, frames - 10.0), rng.uniform(20.0, 120.0)
            centre = rng.uniform(0.0, REFERENCE_BANDS)
            self._blob(start, length, [centre], [centre], 0.6, [0.0], self.background + rng.uniform(1.0, 4.0))

    def _different_syllable(self, syllable: Syllable) -> Syllable:
        """A random syllable whose formants lie DIFFERENT_SYLLABLE_BANDS from ``syllable``'s on average; same gap."""
        while True:
            other = self._random_syllable(syllable.gap_frames)
            distance = np.abs(np.subtract(other.formants_start + other.formants_end,
                                          syllable.formants_start + syllable.formants_end))
            if distance.mean() >= DIFFERENT_SYLLABLE_BANDS:
                return other

    def _random_syllable(self, gap_frames: float) -> Syllable:
        rng = self.rng
        start = (float(rng.uniform(1.5, 6.0)), float(rng.uniform(6.0, 14.0)), float(rng.uniform(13.0, 18.0)))
        end = tuple(float(c + rng.normal(0.0, 1.5)) for c in start)
        gains = (0.0, float(rng.uniform(-1.0, 0.0)), float(rng.uniform(-2.0, -0.5)))
        return Syllable(float(rng.uniform(7.0, 16.0)), start, end, gains, gap_frames)

    def _syllable(self, syllable: Syllable, onset: float, rate: float, shift: np.ndarray, peak: float) -> None:
        self._blob(onset, rate * syllable.frames, syllable.formants_start + shift, syllable.formants_end + shift,
                   FORMANT_WIDTH, syllable.formant_gains, peak)

    def _blob(self, onset: float, length: float, centres_start, centres_end, width: float, gains, peak: float) -> None:
        """Add an event of ``length`` frames from frame ``onset`` (fractional): a sin^0.6 envelope in
        time and Gaussian peaks across bands of ``width``, moving linearly from ``centres_start`` to
        ``centres_end`` (reference bands), at ``gains`` (nats) below the loudest, which is ``peak`` nats."""
        frames = np.arange(max(0, int(np.ceil(onset))), min(self.window.shape[0], int(np.ceil(onset + length))))
        if frames.size == 0:
            return
        u = (frames - onset) / length
        envelope = 0.6 * np.log(np.maximum(np.sin(np.pi * u), 1e-6))
        centres = np.asarray(centres_start) + (np.asarray(centres_end) - np.asarray(centres_start)) * u[:, None]
        distance = self.bands[None, :, None] - self.band_scale * centres[:, None, :]
        formants = np.exp(np.array(gains) - 0.5 * (distance / (self.band_scale * width)) ** 2).sum(axis=2)
        event = peak + envelope[:, None] + np.log(formants + 1e-3)
        self.window[frames] = np.logaddexp(self.window[frames], event)
