"""A synthetic wake word corpus, made offline with espeak-ng and sox.

The wake phrase is ``"hey lumen"`` (``PHRASE``). Every utterance is said by one
*speaker*, an espeak-ng accent with a voice variant (``en-us+m3``: ACCENTS x
VARIANTS), who keeps a typical pitch, speaking rate and vocal-tract speed
across utterances. An utterance is a few segments (the phrase, a confusable, or
ordinary sentences from a built-in grammar), each synthesised alone by
espeak-ng at 22050 Hz and trimmed to its audible extent, placed one after
another with silences between them. One sox command then perturbs the speed,
resamples to 16 kHz and adds reverberation; noise from sox ``synth`` is mixed
in at a drawn SNR and the mixture scaled to a drawn peak level.

Because the phrase is its own trimmed segment and everything else is sample
arithmetic (a speed factor f maps t seconds to t / f), the phrase's time span
in the final audio is known by construction: it starts and ends with the
first and last 5 ms frames of the segment whose power is above -40 dB of its
loudest frame (reverberation adds a tail after the end; the span ends where
the dry speech ends).

``plan_corpus`` draws every choice from the seed up front; ``render`` turns one
``Utterance`` into audio; ``make_corpus`` renders in a process pool and writes
(see ``make_corpus``) train/val/test windows in the ``kwsint.data.dataset`` format
plus test streams and a manifest for detection metrics. The same seed and
scale give the same features, ``.npy`` and ``.wav`` files byte for byte.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import wave
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io.atomic import refuse_existing, temp_dir_beside
from ..io.features import FbankOptions, compute_fbank
from .dataset import Windows, save_windows

PHRASE = "hey lumen"
"""The wake phrase: three syllables, about 0.5-0.8 s, so that it fits an 81-frame window."""
PHRASE_TEXTS = ("hey lumen", "hey lumen", "hey lumen!", "hey lumen?")
"""Spellings of the phrase given to espeak-ng: punctuation changes its intonation. (A comma would
add a pause that makes the phrase longer than a window: median 0.94 s against 0.68 s.)"""
CONFUSABLES = (
    # part of the phrase
    "hey", "lumen", "hey loo", "lumen hey",
    # the phrase with another first word
    "hi lumen", "say lumen", "the lumen", "ten lumen",
    # the phrase with another second word
    "hey human", "hey lemon", "hey women", "hey luke", "hey luna", "hey lou", "hey newman", "hey lyman",
    "hey looming", "hey lumber", "hey you men", "hey there", "hey man",
)
"""Negatives that share sounds with the phrase; a detector must not fire on them."""

ACCENTS = ("en-gb", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-029",
           "en-us-nyc")
"""espeak-ng's English voices (Debian's espeak-ng 1.51; the MBROLA voices are not used)."""
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2",
            "klatt3", "klatt4", "croak", "adam", "Alex", "Andy", "Annie", "aunty", "belinda", "benjamin", "david",
            "edward", "grandpa", "john", "linda", "Michael", "quincy", "robert", "steph", "travis", "victor")
"""espeak-ng voice variants that sound like people (no robots, no whispering)."""
SPEAKERS = tuple(f"{accent}+{variant}" for accent in ACCENTS for variant in VARIANTS)
"""All speakers; a speaker's id is its index here."""

BASE_POSITIVES = 2000
"""Positive utterances at --scale 1."""
BASE_NEGATIVES = {"confusable": 1400, "speech": 2200, "noise": 400}
"""Negative utterances of each kind at --scale 1: a confusable, ordinary speech, noise alone."""
MIN_PER_KIND = 3
"""Every kind has at least this many utterances, so that each split gets one at any scale."""
SPLIT_SPEAKER_FRACTION = {"val": 0.1, "test": 0.1}
"""Share of the speakers held out for validation and for test; the rest train."""

ESPEAK_RATE = 22050
"""espeak-ng's output sample rate, Hz."""
SAMPLE_RATE = 16000
"""The corpus sample rate, Hz (FbankOptions' default)."""
TRIM_DB = -40.0
"""A segment starts and ends with its first and last TRIM_FRAME whose power is above this level
relative to its loudest frame, dB."""
TRIM_FRAME = ESPEAK_RATE // 200
"""5 ms of espeak-ng samples."""
SNRS_DB = (40.0, 30.0, 20.0, 15.0, 10.0, 5.0)
"""Speech-to-noise power ratios, dB; speech power is measured over the speech segments only."""
NOISE_COLOURS = ("whitenoise", "pinknoise", "brownnoise")
"""sox synth noise types."""
NOISE_BANK_SECONDS = 30.0
"""Length of each synthesised noise; utterances take a slice at a drawn offset."""
REVERB_PROBABILITY = 0.5
"""Share of utterances with sox reverb; the others stay dry."""
PEAK_DBFS = (-30.0, -3.0)
"""Range of the utterance's peak level, dB relative to int16 full scale."""

WINDOW_FRAMES = 81
"""Frames in a training window (0.825 s of audio with 25 ms frames every 10 ms)."""
POSITIVE_END_S = 0.2
"""A positive window ends 0 to this many seconds after the phrase ends."""
POSITIVE_START_S = 0.1
"""A positive window also starts at most this long after the phrase starts: a window that has lost "hey"
looks like "ten lumen" or "say lumen", which are negatives. Losing the phrase's first 0.1 s (the /h/) is
allowed, so that phrases as long as the window still get several positive steps."""
PREFIX_GUARD_S = 0.2
"""Windows ending within this much before the phrase ends (nearly all of it heard) are not used."""
AFTER_GUARD_S = 0.5
"""Windows ending between POSITIVE_END_S and this long after the phrase are not used."""
MIN_FOCUS_END_S = 1.0
"""The phrase (or confusable) ends at least this long plus the utterance's first gap after its start,
so that windows ending before and during it fit; silence is added at the start where needed."""
MIN_TAIL_S = 0.6
"""The phrase (or confusable) ends at least this long before the utterance ends, so that a streaming
detector has time to fire and windows ending AFTER_GUARD_S after it fit; silence is added where needed."""
STREAM_SECONDS = 60.0
"""Negative test streams are test utterances concatenated until at least this long."""
SAMPLE_WAVS = 8
"""Positive test clips (and negative streams, one) kept as .wav besides their features."""


@dataclass(frozen=True)
class Segment:
    """One espeak-ng call.

    Attributes:
        text: what is said (letters, spaces and punctuation).
        rate: speaking rate, words per minute (espeak-ng -s, 80..450).
        pitch: pitch adjustment (espeak-ng -p, 0..99, 50 is the variant's default).
        word_gap: extra pause between words, units of 10 ms (espeak-ng -g, >= 0).
    """

    text: str
    rate: int
    pitch: int
    word_gap: int


@dataclass(frozen=True)
class Utterance:
    """Everything needed to render one utterance, drawn by ``plan_corpus``.

    Attributes:
        kind: "positive" (contains the phrase), "confusable", "speech" or "noise" (no speech).
        split: "train", "val" or "test".
        speaker: index into SPEAKERS.
        segments: what is said, in order (empty for noise).
        focus: index of the phrase or confusable segment, or None.
        gaps: seconds of silence before each segment and after the last (len(segments) + 1),
            before speed perturbation; MIN_FOCUS_END_S and MIN_TAIL_S may lengthen the first and last.
        speed: sox speed factor (about 0.87..1.13): > 1 is faster and higher.
        reverb: sox reverb (reverberance %, HF damping %, room scale %, wet gain dB), or None.
        noise: index into NOISE_COLOURS.
        noise_offset: where the noise slice starts, as a fraction of the unused bank, [0, 1).
        snr_db: speech-to-noise ratio, dB (noise utterances: ignored).
        peak_dbfs: peak level of the final audio, dB re int16 full scale.
    """

    kind: str
    split: str
    speaker: int
    segments: tuple[Segment, ...]
    focus: int | None
    gaps: tuple[float, ...]
    speed: float
    reverb: tuple[float, float, float, float] | None
    noise: int
    noise_offset: float
    snr_db: float
    peak_dbfs: float


@dataclass(frozen=True)
class Rendered:
    """An utterance's audio and where its phrase or confusable lies.

    Attributes:
        audio: int16 samples at SAMPLE_RATE.
        span: (start, end) of the focus segment in seconds from the start of ``audio``, or None.
    """

    audio: np.ndarray
    span: tuple[float, float] | None


class ToolError(RuntimeError):
    """espeak-ng or sox is missing, lacks a voice, or failed."""


# --- ordinary speech -------------------------------------------------------------------------------------------

_SUBJECTS = (
    "the man", "my sister", "our neighbour", "the teacher", "the children", "this machine", "the old dog",
    "everyone", "nobody", "the doctor", "my friend", "the driver", "her brother", "the students", "a little bird",
    "the farmer", "his mother", "the new manager", "my uncle", "the baker", "a stranger", "the girls", "we", "they",
    "i", "you", "the team", "the pilot", "my father", "the cat", "the captain", "a tall woman", "the boys",
)
_VERBS = (
    "walked to", "looked at", "talked about", "waited for", "painted", "opened", "carried", "found", "cleaned",
    "followed", "remembered", "bought", "fixed", "visited", "forgot", "moved", "counted", "watched", "closed",
    "borrowed", "sold", "dropped", "climbed", "washed", "built", "wrote about", "asked about", "pushed", "picked up",
    "called", "liked", "needed", "kept", "lost", "cooked", "read", "heard", "paid for", "sent", "checked",
)
_OBJECTS = (
    "the kitchen door", "a green bottle", "the morning paper", "the red car", "a wooden chair", "the garden gate",
    "some fresh bread", "the small boat", "an old letter", "the city library", "the blue window", "a pair of shoes",
    "the coffee table", "the heavy box", "a cup of tea", "the station", "the yellow house", "a bag of apples",
    "the river bank", "the school bus", "a silver coin", "the north road", "the broken clock", "a warm coat",
    "the market", "a paper map", "the piano", "a bowl of soup", "the big tree", "the office", "a bright lamp",
    "the winter jacket", "the phone bill", "a long rope", "the hotel room", "the football", "the bottom drawer",
)
_TAILS = (
    "yesterday", "before dinner", "on monday", "in the garden", "after the storm", "very slowly", "again",
    "at noon", "last winter", "this morning", "with great care", "near the bridge", "for an hour", "in the rain",
    "every day", "on the way home", "at the weekend", "just in time", "a week ago", "without a word", "twice",
)
_REQUESTS = (
    "turn on the kitchen lights", "what time is it", "set a timer for ten minutes", "play some music",
    "how is the weather today", "call my mother", "turn the volume down", "what is on my calendar",
    "stop the alarm", "open the front door", "add milk to the shopping list", "read me the news",
    "switch off the television", "how far is the airport", "remind me at six", "is it going to rain tomorrow",
    "pause the song", "make the room warmer", "tell me a joke", "what was that noise", "start the washing machine",
    "lock the back door", "dim the lights please", "skip this track", "where is my phone",
)
_SAYINGS = (
    "good morning everyone", "thank you very much", "see you later", "i do not know", "that sounds fine",
    "let me think about it", "are you ready", "come here for a minute", "nice to meet you", "how are you doing",
    "it was a long day", "please sit down", "we are almost there", "can you hear me", "not right now",
    "see you tomorrow", "what a lovely evening", "hold on a second", "that is not what i meant", "welcome back",
)


def _sentence(rng: np.random.Generator) -> str:
    """One ordinary sentence (2..12 words) from the built-in grammar and word lists."""
    form = rng.integers(4)
    if form == 0:
        return str(rng.choice(_REQUESTS))
    if form == 1:
        return str(rng.choice(_SAYINGS))
    words = [rng.choice(_SUBJECTS), rng.choice(_VERBS), rng.choice(_OBJECTS)]
    if form == 3 or rng.random() < 0.3:
        words.append(rng.choice(_TAILS))
    return " ".join(str(w) for w in words)


# --- the plan ----------------------------------------------------------------------------------------------------


def split_speakers(seed: int) -> dict[str, list[int]]:
    """Speaker ids of each split under ``seed``: disjoint, together all of SPEAKERS, each sorted."""
    order = np.random.default_rng([seed, 0]).permutation(len(SPEAKERS))
    n_val = round(len(order) * SPLIT_SPEAKER_FRACTION["val"])
    n_test = round(len(order) * SPLIT_SPEAKER_FRACTION["test"])
    return {"train": sorted(order[n_val + n_test:].tolist()), "val": sorted(order[:n_val].tolist()),
            "test": sorted(order[n_val: n_val + n_test].tolist())}


def kind_counts(scale: float) -> dict[str, int]:
    """Utterances of each kind at ``scale`` (> 0): the base counts scaled, at least MIN_PER_KIND."""
    if not scale > 0:
        raise ValueError(f"scale: expected > 0, got {scale}")
    base = {"positive": BASE_POSITIVES, **BASE_NEGATIVES}
    return {kind: max(MIN_PER_KIND, round(n * scale)) for kind, n in base.items()}


def plan_corpus(seed: int, scale: float = 1.0) -> list[Utterance]:
    """Every utterance of the corpus, drawn from ``seed`` (>= 0): the same list for the same arguments.

    Each kind's utterances are divided between the splits in their speaker
    shares (SPLIT_SPEAKER_FRACTION, at least one each), each said by a speaker
    drawn from its split.
    """
    if seed < 0:
        raise ValueError(f"seed: expected >= 0, got {seed}")
    splits = split_speakers(seed)
    voices = {s: _speaker_style(seed, s) for s in range(len(SPEAKERS))}
    rng = np.random.default_rng([seed, 2])
    plan = []
    for kind, count in kind_counts(scale).items():
        n_val = max(1, round(count * SPLIT_SPEAKER_FRACTION["val"]))
        n_test = max(1, round(count * SPLIT_SPEAKER_FRACTION["test"]))
        for split, n in (("train", count - n_val - n_test), ("val", n_val), ("test", n_test)):
            for _ in range(n):
                speaker = int(rng.choice(splits[split]))
                plan.append(_utterance(rng, kind, split, speaker, voices[speaker]))
    return plan


def _speaker_style(seed: int, speaker: int) -> tuple[float, float, float]:
    """A speaker's typical (pitch 0..99, rate words/minute, speed factor), the same in every split."""
    rng = np.random.default_rng([seed, 1, speaker])
    return float(rng.uniform(25, 75)), float(rng.uniform(140, 195)), float(rng.uniform(0.9, 1.1))


def _utterance(rng: np.random.Generator, kind: str, split: str, speaker: int,
               style: tuple[float, float, float]) -> Utterance:
    pitch, rate, speed = style

    def segment(text: str) -> Segment:
        return Segment(text, rate=int(np.clip(rate * np.exp(rng.normal(0.0, 0.08)), 110, 260)),
                       pitch=int(np.clip(pitch + rng.normal(0.0, 6.0), 0, 99)),
                       word_gap=int(rng.integers(1, 4)) if rng.random() < 0.3 else 0)

    if kind == "noise":
        texts, focus = [], None
    elif kind == "speech":
        texts, focus = [_sentence(rng) for _ in range(rng.integers(1, 3))], None
    else:
        word = str(rng.choice(PHRASE_TEXTS if kind == "positive" else CONFUSABLES))
        before = [_sentence(rng)] if rng.random() < 0.35 else []
        after = [str(rng.choice(_REQUESTS))] if rng.random() < 0.5 else []
        texts, focus = [*before, word, *after], len(before)
    segments = tuple(segment(t) for t in texts)
    if segments:
        gaps = (rng.uniform(0.1, 0.5), *rng.uniform(0.05, 0.4, len(segments) - 1), rng.uniform(0.3, 0.8))
    else:
        gaps = (rng.uniform(1.0, 3.0),)
    reverb = None
    if rng.random() < REVERB_PROBABILITY:
        reverb = (rng.uniform(10, 80), rng.uniform(20, 80), rng.uniform(20, 100), rng.uniform(-6, 0))
    return Utterance(kind=kind, split=split, speaker=speaker, segments=segments, focus=focus,
                     gaps=tuple(round(float(g), 3) for g in gaps),
                     speed=round(float(speed * rng.uniform(0.97, 1.03)), 4),
                     reverb=None if reverb is None else tuple(round(float(r), 2) for r in reverb),
                     noise=int(rng.integers(len(NOISE_COLOURS))), noise_offset=float(rng.random()),
                     snr_db=float(rng.choice(SNRS_DB)), peak_dbfs=round(float(rng.uniform(*PEAK_DBFS)), 2))


# --- rendering ---------------------------------------------------------------------------------------------------


def check_tools() -> None:
    """Raise ToolError unless espeak-ng (with every ACCENT and VARIANT) and sox are on PATH."""
    missing = [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]
    if missing:
        raise ToolError(f"{' and '.join(missing)} not found on PATH; install the Debian packages "
                        "espeak-ng and sox (scripts/setup does, as root)")
    listed = _run(["espeak-ng", "--voices=en"]).decode() + _run(["espeak-ng", "--voices=variant"]).decode()
    languages = {line.split()[1] for line in listed.splitlines()[1:] if len(line.split()) > 1}
    files = {line.split()[4].rsplit("/", 1)[-1] for line in listed.splitlines() if "!v/" in line}
    absent = [a for a in ACCENTS if a not in languages] + [v for v in VARIANTS if v not in files]
    if absent:
        raise ToolError(f"espeak-ng lacks the voices {', '.join(absent)} (expected Debian's espeak-ng 1.51)")


def noise_bank() -> np.ndarray:
    """(len(NOISE_COLOURS), NOISE_BANK_SECONDS * SAMPLE_RATE) float32 noise from sox synth, unit RMS.

    sox runs with -R (repeatable), so the bank is the same on every call.
    """
    n = round(NOISE_BANK_SECONDS * SAMPLE_RATE)
    bank = []
    for colour in NOISE_COLOURS:
        raw = _run(["sox", "-R", "-D", "-r", str(SAMPLE_RATE), "-n", "-t", "f32", "-r", str(SAMPLE_RATE), "-c", "1",
                    "-", "synth", f"{n}s", colour])
        x = np.frombuffer(raw, dtype="<f4").astype(np.float64)
        if len(x) != n:
            raise ToolError(f"sox synth {colour}: expected {n} samples, got {len(x)}")
        x -= x.mean()
        bank.append(x / np.sqrt(np.mean(x**2)))
    return np.stack(bank).astype(np.float32)


def render(utt: Utterance, noise: np.ndarray) -> Rendered:
    """Synthesise, perturb and mix one utterance (see the module docstring); ``noise`` is ``noise_bank()``."""
    pieces, extents, position = [], [], 0
    for gap, segment in zip(utt.gaps, utt.segments):
        speech = _espeak(utt.speaker, segment)
        pieces += [np.zeros(round(gap * ESPEAK_RATE)), speech]
        position += len(pieces[-2])
        extents.append((position, position + len(speech)))
        position += len(speech)
    pieces.append(np.zeros(round(utt.gaps[-1] * ESPEAK_RATE)))
    dry = np.concatenate(pieces)
    if utt.focus is not None:  # lengthen the leading and trailing silences to the minimum
        end = extents[utt.focus][1]
        lead = max(0, round((MIN_FOCUS_END_S + utt.gaps[0]) * utt.speed * ESPEAK_RATE) - end)
        tail = max(0, round(MIN_TAIL_S * utt.speed * ESPEAK_RATE) - (len(dry) - end))
        dry = np.concatenate([np.zeros(lead), dry, np.zeros(tail)])
        extents = [(a + lead, b + lead) for a, b in extents]

    effects = ["speed", f"{utt.speed:.4f}", "rate", "-h", str(SAMPLE_RATE)]
    if utt.reverb is not None:
        reverberance, damping, room, wet = utt.reverb
        effects += ["reverb", f"{reverberance:.2f}", f"{damping:.2f}", f"{room:.2f}", "100", "0", f"{wet:.2f}"]
    # Headroom: sox works in fixed point and clips at full scale; the level is set at the end anyway.
    raw = _run(["sox", "-R", "-D", "-t", "f32", "-r", str(ESPEAK_RATE), "-c", "1", "-",
                "-t", "f32", "-r", str(SAMPLE_RATE), "-c", "1", "-", *effects],
               stdin=(0.25 * dry).astype("<f4").tobytes())
    processed = np.frombuffer(raw, dtype="<f4").astype(np.float64)

    scale = SAMPLE_RATE / (ESPEAK_RATE * utt.speed)  # input samples -> output samples
    bank = noise[utt.noise]
    if len(processed) > len(bank):
        raise ValueError(f"utterance of {len(processed) / SAMPLE_RATE:.1f} s is longer than the noise bank")
    offset = int(utt.noise_offset * (len(bank) - len(processed)))
    slice_ = bank[offset: offset + len(processed)].astype(np.float64)
    if extents:
        speech = np.concatenate([processed[round(a * scale): round(b * scale)] for a, b in extents])
        noise_rms = np.sqrt(np.mean(speech**2)) * 10 ** (-utt.snr_db / 20)
        mixed = processed + noise_rms * slice_
    else:
        mixed = slice_
    peak = 32767 * 10 ** (utt.peak_dbfs / 20)
    audio = np.round(mixed * (peak / np.max(np.abs(mixed)))).astype(np.int16)

    span = None
    if utt.focus is not None:
        start, end = extents[utt.focus]
        span = (start * scale / SAMPLE_RATE, end * scale / SAMPLE_RATE)
    return Rendered(audio, span)


def _espeak(speaker: int, segment: Segment) -> np.ndarray:
    """float64 samples at ESPEAK_RATE in [-1, 1], trimmed to the frames above TRIM_DB (see there)."""
    wav = _run(["espeak-ng", "-v", SPEAKERS[speaker], "-s", str(segment.rate), "-p", str(segment.pitch),
                "-g", str(segment.word_gap), "--stdout", segment.text])
    # espeak-ng --stdout writes a 44-byte header whose sizes are placeholders: mono 16-bit at 22050 Hz.
    if wav[:4] != b"RIFF" or wav[36:40] != b"data" or int.from_bytes(wav[24:28], "little") != ESPEAK_RATE:
        raise ToolError(f"espeak-ng: expected a 16-bit {ESPEAK_RATE} Hz wav on stdout for {segment.text!r}")
    x = np.frombuffer(wav[44:], dtype="<i2").astype(np.float64) / 32768
    power = np.mean(x[: len(x) // TRIM_FRAME * TRIM_FRAME].reshape(-1, TRIM_FRAME) ** 2, axis=1)
    loud = np.flatnonzero(power > np.max(power, initial=0.0) * 10 ** (TRIM_DB / 10))
    if loud.size == 0:
        raise ToolError(f"espeak-ng: silence for {segment.text!r} in {SPEAKERS[speaker]}")
    return x[loud[0] * TRIM_FRAME: (loud[-1] + 1) * TRIM_FRAME]


def _run(command: list[str], stdin: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(command, input=stdin, capture_output=True, check=False)
    except OSError as e:
        raise ToolError(f"{command[0]}: {e}") from e
    if done.returncode != 0:
        raise ToolError(f"{' '.join(command[:8])} ...: exit status {done.returncode}: "
                        f"{done.stderr.decode(errors='replace').strip()}")
    return done.stdout


# --- windows -----------------------------------------------------------------------------------------------------


def cut_windows(features: np.ndarray, utt: Utterance, span: tuple[float, float] | None,
                rng: np.random.Generator, options: FbankOptions = FbankOptions()) -> tuple[np.ndarray, np.ndarray]:
    """Labelled WINDOW_FRAMES-frame windows of one utterance's (T, bins) features.

    A window's end time is the end of its last frame. Positive utterances give
    three positives ending 0..POSITIVE_END_S after the phrase and starting no
    later than POSITIVE_START_S after it starts, two negatives
    ending while the phrase is still being said (up to PREFIX_GUARD_S before
    its end) and two ending before the phrase or AFTER_GUARD_S or more after
    it. Confusables give six negatives ending anywhere from 0.1 s into the
    confusable to AFTER_GUARD_S after it (every step a streaming detector
    sees it at) and one anywhere; speech and noise give three anywhere.
    Windows that do not fit are left out.

    Returns:
        float32 (N, WINDOW_FRAMES, bins) windows and int64 (N,) labels.
    """
    shift, length = options.frame_shift_ms / 1000, options.frame_length_ms / 1000
    ends = np.arange(WINDOW_FRAMES, len(features) + 1)  # exclusive end frame of each possible window
    end_s = (ends - 1) * shift + length
    start_s = (ends - WINDOW_FRAMES) * shift

    def draw(allowed: np.ndarray, count: int, label: int) -> list[tuple[int, int]]:
        choices = ends[allowed]
        picked = rng.choice(choices, size=min(count, len(choices)), replace=False) if len(choices) else []
        return [(int(e), label) for e in picked]

    anywhere = np.ones(len(ends), dtype=bool)
    if utt.kind == "positive":
        start, end = span
        chosen = draw((end_s >= end) & (end_s <= end + POSITIVE_END_S) & (start_s <= start + POSITIVE_START_S), 3, 1)
        chosen += draw((end_s >= start + 0.1) & (end_s <= end - PREFIX_GUARD_S), 2, 0)
        chosen += draw((end_s < start + 0.1) | (end_s >= end + AFTER_GUARD_S), 2, 0)
    elif utt.kind == "confusable":
        start, end = span
        chosen = draw((end_s >= start + 0.1) & (end_s <= end + AFTER_GUARD_S), 6, 0) + draw(anywhere, 1, 0)
    else:
        chosen = draw(anywhere, 3, 0)
    windows = np.stack([features[e - WINDOW_FRAMES: e] for e, _ in chosen]) if chosen else \
        np.zeros((0, WINDOW_FRAMES, features.shape[1]), np.float32)
    return windows.astype(np.float32), np.array([label for _, label in chosen], dtype=np.int64)


# --- the corpus --------------------------------------------------------------------------------------------------

SPLITS = ("train", "val", "test")
STREAM_SPLITS = ("val", "test")
"""Splits whose utterances are also written as streams: val to choose a threshold, test to measure."""


def outputs(split: str) -> tuple[str, ...]:
    """The files and directories ``make_corpus`` writes for one split."""
    if split not in STREAM_SPLITS:
        return (f"{split}.npz",)
    return f"{split}.npz", manifest_name(split), split


def manifest_name(split: str) -> str:
    """The stream manifest of a split: manifest.json for test (what kwsint-eval measures), val-manifest.json."""
    return "manifest.json" if split == "test" else f"{split}-manifest.json"


_NOISE: np.ndarray | None = None


def _init_worker() -> None:
    global _NOISE
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the pool
    _NOISE = noise_bank()


def _render_job(job: tuple[int, Utterance, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, tuple | None]:
    """(windows, labels, audio, span) of one utterance; windows drawn from [seed, 3, index], audio only for
    the splits written as streams."""
    seed, utt, index = job
    rendered = render(utt, _NOISE)
    features = compute_fbank(rendered.audio)
    windows, labels = cut_windows(features, utt, rendered.span, np.random.default_rng([seed, 3, index]))
    return windows, labels, rendered.audio if utt.split in STREAM_SPLITS else None, rendered.span


def make_corpus(out_dir: str | Path, *, seed: int = 0, scale: float = 1.0, jobs: int | None = None,
                splits: Iterable[str] = SPLITS, force: bool = False,
                progress: Callable[[Iterable, int], Iterable] | None = None) -> dict:
    """Render the ``splits`` of ``plan_corpus(seed, scale)`` with ``jobs`` processes and write them to ``out_dir``.

    Writes, for each split in ``splits``:
        SPLIT.npz: windows (``kwsint.data.dataset``) with speaker ids.
    and for val and test:
        SPLIT/pos_NNNN.npy: features (T, 20) of each positive utterance;
        SPLIT/neg_NNNN.npy: negative utterances (confusable, speech, noise)
            concatenated into streams of at least STREAM_SECONDS (the last may be shorter);
        test/*.wav: the 16 kHz audio of the first SAMPLE_WAVS positives and the first stream;
        manifest.json (test), val-manifest.json (val): {"streams": [{"features", "kind", "spans"?}],
            "frame_shift"}: paths relative to the manifest, spans [[start_s, end_s]] of the phrase
            for positives;
    and corpus.json: the settings and sizes.

    A split's utterances and windows do not depend on which other splits are rendered. Refuses
    (FileExistsError) when any output exists, unless ``force``: then they are replaced once the new ones are
    all written, so an interrupted run leaves them as they were.
    ``progress(iterable, total)`` may wrap the results.

    Returns:
        The summary written to corpus.json.
    """
    splits = tuple(splits)
    if not splits or any(split not in SPLITS for split in splits):
        raise ValueError(f"splits must be some of {', '.join(SPLITS)}, got {', '.join(splits) or 'none'}")
    out = Path(out_dir)
    names = [name for split in splits for name in outputs(split)] + ["corpus.json"]
    refuse_existing([out / name for name in names], force)
    check_tools()
    jobs_list = [(seed, utt, i) for i, utt in enumerate(plan_corpus(seed, scale)) if utt.split in splits]
    out.mkdir(parents=True, exist_ok=True)
    # Everything is written to a hidden folder first and moved into place at the end, corpus.json last: a run
    # that fails or is killed while rendering leaves the previous outputs as they were.
    stage = temp_dir_beside(out / "corpus.json")
    try:
        summary = _render(stage, seed, scale, splits, jobs_list, jobs, progress)
        for name in names:  # renames only; an old folder goes into the stage, removed with it
            if (out / name).is_dir():
                os.replace(out / name, stage / f"old.{name}")
            os.replace(stage / name, out / name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return summary


def _render(out: Path, seed: int, scale: float, splits: tuple[str, ...], jobs_list: list, jobs: int | None,
            progress: Callable[[Iterable, int], Iterable] | None) -> dict:
    """Render the planned utterances of ``jobs_list`` and write every output of ``splits`` to ``out``."""
    windows = {split: ([], [], []) for split in splits}
    clips = {split: ([], []) for split in STREAM_SPLITS if split in splits}  # positives (audio, span), negatives
    jobs = jobs or os.cpu_count() or 1
    with ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker) as pool:
        try:
            results = pool.map(_render_job, jobs_list, chunksize=8)
            for (_, utt, _), (w, labels, audio, span) in zip(jobs_list, progress(results, len(jobs_list))
                                                             if progress else results):
                features, label_list, speakers = windows[utt.split]
                features.append(w)
                label_list.append(labels)
                speakers.append(np.full(len(labels), utt.speaker, dtype=np.int64))
                if utt.split in clips and utt.kind == "positive":
                    clips[utt.split][0].append((audio, span))
                elif utt.split in clips:
                    clips[utt.split][1].append(audio)
        except BaseException:  # an interrupt or a failed job: drop the queued work instead of waiting for it
            pool.shutdown(cancel_futures=True)
            raise

    summary = {"phrase": PHRASE, "seed": seed, "scale": scale, "utterances": kind_counts(scale),
               "speakers": {s: len(ids) for s, ids in split_speakers(seed).items()}, "splits": {}}
    for split, (features, labels, speakers) in windows.items():
        w = Windows(np.concatenate(features), np.concatenate(labels), np.concatenate(speakers))
        save_windows(out / f"{split}.npz", w)
        summary["splits"][split] = {"windows": len(w), "positives": int(w.labels.sum()),
                                    "speakers": len(np.unique(w.speakers))}
    for split, (positives, negatives) in clips.items():
        summary["splits"][split]["streams"] = _write_streams(out, split, positives, negatives)
    (out / "corpus.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def _write_streams(out: Path, split: str, positives: list[tuple[np.ndarray, tuple[float, float]]],
                   negatives: list[np.ndarray]) -> dict:
    """Write one split's positive clips and negative streams (features; a few wavs for test) and its manifest."""
    (out / split).mkdir()
    wavs = split == "test"
    streams = []
    for i, (audio, span) in enumerate(positives, 1):
        name = f"{split}/pos_{i:04d}"
        np.save(out / f"{name}.npy", compute_fbank(audio))
        if wavs and i <= SAMPLE_WAVS:
            _write_wav(out / f"{name}.wav", audio)
        streams.append({"features": f"{name}.npy", "kind": "positive",
                        "spans": [[round(span[0], 4), round(span[1], 4)]]})
    negative_seconds = 0.0
    for i, audio in enumerate(_concatenate(negatives), 1):
        name = f"{split}/neg_{i:04d}"
        np.save(out / f"{name}.npy", compute_fbank(audio))
        if wavs and i == 1:
            _write_wav(out / f"{name}.wav", audio)
        streams.append({"features": f"{name}.npy", "kind": "negative"})
        negative_seconds += len(audio) / SAMPLE_RATE
    frame_shift = FbankOptions().frame_shift_ms / 1000
    lines = ",\n".join(" " + json.dumps(stream) for stream in streams)
    (out / manifest_name(split)).write_text(
        f'{{"streams": [\n{lines}\n], "frame_shift": {json.dumps(frame_shift)}}}\n')
    return {"positive_clips": len(positives), "negative_streams": len(streams) - len(positives),
            "negative_seconds": round(negative_seconds, 1)}


def _concatenate(clips: Iterable[np.ndarray]) -> Iterable[np.ndarray]:
    """Join clips in order into streams of at least STREAM_SECONDS; the last holds what is left."""
    stream, length = [], 0
    for clip in clips:
        stream.append(clip)
        length += len(clip)
        if length >= STREAM_SECONDS * SAMPLE_RATE:
            yield np.concatenate(stream)
            stream, length = [], 0
    if stream:
        yield np.concatenate(stream)


def _write_wav(path: Path, audio: np.ndarray) -> None:
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(SAMPLE_RATE)
        f.writeframes(audio.astype("<i2").tobytes())
