"""A synthetic wake word corpus, made offline from several speech synthesizers, rooms, channels and noise.

The wake phrase is ``"hey lumen"`` (``PHRASE``). Every utterance is said by one
*speaker*, a voice of one of the synthesizers (``kwsint.data.synthesizers``:
espeak-ng, flite, festival), who keeps a typical speaking rate across
utterances; each utterance draws its own pitch and vocal-tract speed, so a
voice is heard as many speakers. An utterance is a few segments (the
phrase, a confusable, or ordinary sentences from a built-in grammar), each
synthesised alone and trimmed to its audible extent, placed one after another
with silences between them. One sox command then perturbs the speed (which
moves the formants like a longer or shorter vocal tract), resamples to 16 kHz
and may add sox's reverberation; or the speech is convolved with a generated
room impulse response. Noise (coloured, or babble of recorded speech) is mixed
in at a drawn SNR, the mixture goes through a channel (equaliser, telephone
band with a codec, radio, Ogg Vorbis: ``kwsint.data.augment``) and is scaled to
a drawn peak level. Real recordings of people (``recorded``) are negatives too.

Because the phrase is its own trimmed segment and everything else is sample
arithmetic (a speed factor f maps t seconds to t / f; rooms start at their
direct path; channels do not delay), the phrase's time span in the final audio
is known by construction: it starts and ends with the first and last 5 ms
frames of the segment whose power is above -40 dB of its loudest frame
(reverberation adds a tail after the end; the span ends where the dry speech ends).

``plan_corpus`` draws every choice from the seed up front; ``render`` turns one
``Utterance`` into audio; ``make_corpus`` renders in a process pool and writes
(see ``make_corpus``) train/val/test windows in the ``kwsint.data.dataset`` format
plus validation and test streams and their manifests for detection metrics. The
same seed and scale give the same features, ``.npy`` and ``.wav`` files byte for byte.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import wave
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io.atomic import refuse_existing, temp_dir_beside
from ..io.features import FbankOptions, compute_fbank
from ..io.microfrontend import MicroFrontendStream, require_pymicro_features
from . import augment
from .augment import NOISE_COLOURS, SAMPLE_RATE, sox
from .dataset import Windows, save_windows
from .synthesizers import (RECORDED, SYNTHESIZERS, VOICES, WORK_RATE, Segment, check_synthesizers, read_recording,
                           recorded_clips, synthesize)

PHRASE = "hey lumen"
"""The wake phrase: three syllables, about 0.5-0.8 s, so that it fits an 81-frame window."""
PHRASE_TEXTS = ("hey lumen", "hey lumen", "hey lumen!", "hey lumen?")
"""Spellings of the phrase given to the synthesizers: punctuation changes its intonation. (A comma would
add a pause that makes the phrase longer than a window: median 0.94 s against 0.68 s in espeak-ng.)"""
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

SYNTHESIZER_SHARE = {"espeak-ng": 0.4, "flite": 0.2, "festival": 0.2, "piper": 0.2}
"""Share of the synthesised utterances each synthesizer says (espeak-ng has far more voices); in train and
val, those of TEST_ONLY are left out and the rest keep their proportions."""
TEST_ONLY = ("piper",)
"""Synthesizers with a single voice, which cannot be split by speaker: heard in the test split only, so every
model meets them unheard."""
BASE_POSITIVES = 2000
"""Positive utterances at --scale 1."""
BASE_NEGATIVES = {"confusable": 1400, "speech": 2200, "noise": 400}
"""Synthesised negative utterances of each kind at --scale 1: a confusable, ordinary speech, noise alone."""
BASE_RECORDED = 500
"""Recorded utterances of each split at --scale 1, at most the split's recordings (RECORDED)."""
RECORDED_NUMBERS = 1_000_000
"""Recorded utterances are numbered from this times (split index + 1), after every synthesised one."""
MAX_RECORDED_SECONDS = 20.0
"""A longer recording is cut to this."""
MIN_PER_KIND = 3
"""Every kind has at least this many utterances, so that each split gets one at any scale."""
SPLITS = ("train", "val", "test")
SPLIT_SPEAKER_FRACTION = {"val": 0.1, "test": 0.15}
"""Share of each synthesizer's voices (at least one) held out for validation and for test; the rest train.
The utterances of each kind are divided between the splits in the same shares."""

SNRS_DB = (40.0, 30.0, 20.0, 15.0, 10.0, 5.0)
"""Speech-to-noise power ratios, dB; speech power is measured over the speech segments only."""
NOISES = (*NOISE_COLOURS, "babble-4", "babble-8")
"""Noise tracks of each split's bank: sox's coloured noise, then babble of 4 and of 8 recorded talkers."""
BABBLE_CLIPS = 80
"""Recordings of its split that each babble bank draws its talkers from."""
ROOM_PROBABILITY = {"none": 0.4, "reverb": 0.2, "rir": 0.4}
"""How utterances are heard: dry, with sox's reverb, or in a generated room (``augment.room_bank``)."""
CHANNEL_PROBABILITY = {"none": 0.4, "eq": 0.2, "phone-gsm": 0.1, "phone-amr": 0.1, "radio": 0.1, "vorbis": 0.1}
"""The channel each utterance is sent through (``augment.apply_channel``)."""
PITCH_SHIFT_CENTS = 400.0
"""Utterances of the engines with few voices (flite, festival) have their pitch shifted by up to this much,
either way (a third of an octave), independently of their speed factor."""
PEAK_DBFS = (-30.0, -3.0)
"""Range of the utterance's peak level, dB relative to int16 full scale."""
WINDOW_FRAMES = 81
"""Frames in a training window (0.825 s of audio with 25 ms frames every 10 ms)."""
MICROFRONTEND_WINDOW_FRAMES = 125
"""Frames in a microfrontend window (1.27 s of audio with 30 ms frames every 10 ms): the receptive field of the
largest conv preset (``kwsint.train.qat.conv.CONV_PRESETS``); a smaller model reads the last frames."""
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
class Utterance:
    """Everything needed to render one utterance, drawn by ``plan_corpus``.

    Attributes:
        kind: "positive" (contains the phrase), "confusable", "speech", "noise" (no speech) or
            "recorded" (a real recording of people, RECORDED).
        split: "train", "val" or "test".
        speaker: index into VOICES; for recorded utterances ``recorded_speaker(split)``.
        segments: what is said, in order (empty for noise and recorded).
        focus: index of the phrase or confusable segment, or None.
        gaps: seconds of silence before each segment and after the last (len(segments) + 1),
            before speed perturbation; MIN_FOCUS_END_S and MIN_TAIL_S may lengthen the first and last.
        speed: sox speed factor (about 0.85..1.15): > 1 is faster and higher, voice and formants both.
        room: "none", "reverb" (sox reverb with ``reverb``'s settings) or "rir" (``room_index``).
        reverb: sox reverb (reverberance %, HF damping %, room scale %, wet gain dB) for room "reverb".
        room_index: index into the split's rooms (``augment.room_bank``) for room "rir".
        channel: one of CHANNELS, with its drawn sox ``channel_effects``.
        noise: index into NOISES.
        noise_offset: where the noise slice starts, as a fraction of the unused bank, [0, 1).
        snr_db: speech-to-noise ratio, dB (noise utterances: ignored).
        peak_dbfs: peak level of the final audio, dB re int16 full scale.
        recording: index into ``recorded_clips(split)`` for recorded utterances.
        number: the utterance's own number, the same whichever splits are planned: its training windows are
            drawn from it.
    """

    kind: str
    split: str
    speaker: int
    segments: tuple[Segment, ...]
    focus: int | None
    gaps: tuple[float, ...]
    speed: float
    room: str
    reverb: tuple[float, float, float, float] | None
    room_index: int | None
    channel: str
    channel_effects: tuple[str, ...]
    noise: int
    noise_offset: float
    snr_db: float
    peak_dbfs: float
    recording: int | None = None
    number: int = 0


@dataclass(frozen=True)
class Rendered:
    """An utterance's audio and where its phrase or confusable lies.

    Attributes:
        audio: int16 samples at SAMPLE_RATE.
        span: (start, end) of the focus segment in seconds from the start of ``audio``, or None.
    """

    audio: np.ndarray
    span: tuple[float, float] | None


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
    """Voice ids (into VOICES) of each split under ``seed``: disjoint, together all of VOICES, each sorted.

    Each synthesizer's voices are divided apart, SPLIT_SPEAKER_FRACTION of them (at least one) to val and to
    test, so every split hears every synthesizer; the voices of TEST_ONLY synthesizers all go to test.
    """
    splits: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for k, synthesizer in enumerate(SYNTHESIZERS):
        ids = np.array([i for i, v in enumerate(VOICES) if v.synthesizer == synthesizer])
        if synthesizer in TEST_ONLY:
            splits["test"] += ids.tolist()
            continue
        order = ids[np.random.default_rng([seed, 0, k]).permutation(len(ids))]
        n_val = max(1, round(len(ids) * SPLIT_SPEAKER_FRACTION["val"]))
        n_test = max(1, round(len(ids) * SPLIT_SPEAKER_FRACTION["test"]))
        splits["val"] += order[:n_val].tolist()
        splits["test"] += order[n_val: n_val + n_test].tolist()
        splits["train"] += order[n_val + n_test:].tolist()
    return {split: sorted(ids) for split, ids in splits.items()}


def recorded_speaker(split: str) -> int:
    """The speaker id of a split's recorded utterances, after every voice's: the recordings' people are not
    known one by one, and each split's come from another package (RECORDED)."""
    return len(VOICES) + SPLITS.index(split)


def kind_counts(scale: float) -> dict[str, int]:
    """Synthesised utterances of each kind at ``scale`` (> 0): the base counts scaled, at least MIN_PER_KIND."""
    if not scale > 0:
        raise ValueError(f"scale: expected > 0, got {scale}")
    base = {"positive": BASE_POSITIVES, **BASE_NEGATIVES}
    return {kind: max(MIN_PER_KIND, round(n * scale)) for kind, n in base.items()}


def recorded_counts(scale: float, splits: Iterable[str] = SPLITS) -> dict[str, int]:
    """Recorded utterances of each of ``splits`` at ``scale``: BASE_RECORDED scaled, at least MIN_PER_KIND, at
    most the split's recordings."""
    return {split: min(len(recorded_clips(split)), max(MIN_PER_KIND, round(BASE_RECORDED * scale)))
            for split in splits}


def plan_corpus(seed: int, scale: float = 1.0, splits: Iterable[str] = SPLITS) -> list[Utterance]:
    """The utterances of ``splits``, drawn from ``seed`` (>= 0): the same list for the same arguments, and each
    split's utterances the same whichever other splits are asked for.

    Each kind's synthesised utterances are divided between the splits in their
    speaker shares (SPLIT_SPEAKER_FRACTION, at least one each); each is said by
    a voice of its split, of a synthesizer drawn by SYNTHESIZER_SHARE. Then each
    split's recorded utterances (``recorded_counts``), recordings drawn without
    repeats. Each split draws from random streams of its own, so that what one
    split holds (a new synthesizer in test) does not change the others, and
    only the asked splits' recordings need be installed.
    """
    splits = tuple(splits)
    if seed < 0:
        raise ValueError(f"seed: expected >= 0, got {seed}")
    by_synthesizer = {split: {s: [i for i in ids if VOICES[i].synthesizer == s] for s in SYNTHESIZERS}
                      for split, ids in split_speakers(seed).items()}
    rates = {s: _speaker_rate(seed, s) for s in range(len(VOICES))}
    shares = {split: np.array([0.0 if s in TEST_ONLY and split != "test" else SYNTHESIZER_SHARE[s]
                               for s in SYNTHESIZERS]) for split in SPLITS}
    rngs = {split: np.random.default_rng([seed, 2, k]) for k, split in enumerate(SPLITS)}
    plan, number = [], 0
    for kind, count in kind_counts(scale).items():
        n_val = max(1, round(count * SPLIT_SPEAKER_FRACTION["val"]))
        n_test = max(1, round(count * SPLIT_SPEAKER_FRACTION["test"]))
        for split, n in (("train", count - n_val - n_test), ("val", n_val), ("test", n_test)):
            if split not in splits:
                number += n
                continue
            rng, share = rngs[split], shares[split]
            for _ in range(n):
                synthesizer = SYNTHESIZERS[rng.choice(len(SYNTHESIZERS), p=share / share.sum())]
                speaker = int(rng.choice(by_synthesizer[split][synthesizer]))
                utt = _utterance(rng, kind, split, speaker, rates[speaker])
                plan.append(dataclasses.replace(utt, number=number))
                number += 1
    for split, n in recorded_counts(scale, splits).items():
        rng = np.random.default_rng([seed, 4, SPLITS.index(split)])
        for k, pick in enumerate(rng.permutation(len(recorded_clips(split)))[:n]):
            plan.append(dataclasses.replace(_utterance(rng, "recorded", split, recorded_speaker(split), 1.0),
                                            recording=int(pick), room="none", reverb=None, room_index=None,
                                            number=RECORDED_NUMBERS * (SPLITS.index(split) + 1) + k))
    return plan


def _speaker_rate(seed: int, speaker: int) -> float:
    """A speaker's typical speaking rate, relative to its voice's."""
    return float(np.random.default_rng([seed, 1, speaker]).uniform(0.8, 1.11))


def _voice_change(rng: np.random.Generator, speaker: int) -> tuple[int, float, float]:
    """One utterance's (espeak-ng pitch 0..99, speed factor, pitch shift in cents).

    Drawn afresh for every utterance, so that each voice is heard as many speakers: the speed factor moves
    formants and pitch together (a longer or shorter vocal tract), the pitch shift moves the pitch alone.
    espeak-ng has its own pitch control and hundreds of voices; the other engines, with a handful of voices,
    get a wider speed range and sox's pitch shift.
    """
    if VOICES[speaker].synthesizer == "espeak-ng":
        return int(rng.integers(25, 76)), float(rng.uniform(0.9, 1.1)), 0.0
    return 50, float(rng.uniform(0.85, 1.15)), float(rng.uniform(-PITCH_SHIFT_CENTS, PITCH_SHIFT_CENTS))


def _draw(rng: np.random.Generator, probabilities: dict[str, float]) -> str:
    names = list(probabilities)
    return names[rng.choice(len(names), p=np.array(list(probabilities.values())))]


def _utterance(rng: np.random.Generator, kind: str, split: str, speaker: int, rate: float) -> Utterance:
    pitch, speed, pitch_cents = _voice_change(rng, speaker) if speaker < len(VOICES) else (50, 1.0, 0.0)

    def segment(text: str) -> Segment:
        return Segment(text, rate=round(float(np.clip(rate * np.exp(rng.normal(0.0, 0.08)), 0.63, 1.49)), 3),
                       pitch=int(np.clip(pitch + rng.normal(0.0, 6.0), 0, 99)), pitch_cents=round(pitch_cents, 1),
                       word_gap=int(rng.integers(1, 4)) if rng.random() < 0.3 else 0)

    if kind in ("noise", "recorded"):
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
    room = _draw(rng, ROOM_PROBABILITY)
    reverb = (rng.uniform(10, 80), rng.uniform(20, 80), rng.uniform(20, 100), rng.uniform(-6, 0))
    room_index = int(rng.integers(augment.ROOMS[split]))
    channel = _draw(rng, CHANNEL_PROBABILITY)
    return Utterance(kind=kind, split=split, speaker=speaker, segments=segments, focus=focus,
                     gaps=tuple(round(float(g), 3) for g in gaps),
                     speed=round(speed, 4), room=room,
                     reverb=tuple(round(float(r), 2) for r in reverb) if room == "reverb" else None,
                     room_index=room_index if room == "rir" else None,
                     channel=channel, channel_effects=augment.channel_effects(channel, rng),
                     noise=int(rng.integers(len(NOISES))), noise_offset=float(rng.random()),
                     snr_db=float(rng.choice(SNRS_DB)), peak_dbfs=round(float(rng.uniform(*PEAK_DBFS)), 2))


# --- rendering ---------------------------------------------------------------------------------------------------


def check_tools(splits: Iterable[str] = SPLITS) -> None:
    """Raise ToolError unless every synthesizer and voice, sox, the recordings of ``splits``,
    pyroomacoustics and pymicro-features are here."""
    check_synthesizers()
    for split in splits:
        recorded_clips(split)
    augment.pyroomacoustics()
    try:
        require_pymicro_features()
    except ImportError as e:
        raise augment.ToolError(str(e)) from None


@dataclass(frozen=True)
class Banks:
    """What every utterance of a corpus shares, made once (``make_banks``).

    Attributes:
        noise: per split, float32 (len(NOISES), NOISE_BANK_SECONDS * SAMPLE_RATE) unit-RMS tracks: the
            coloured noises, then babble of the split's own recordings.
        rooms: per split, its rooms (``augment.room_bank``).
    """

    noise: dict[str, np.ndarray]
    rooms: dict[str, list[augment.Room]]


def make_banks(seed: int, splits: Iterable[str] = SPLITS) -> Banks:
    """The noise and rooms of ``splits`` of a corpus drawn from ``seed``: the same on every call."""
    splits = tuple(splits)
    colours = augment.noise_bank()
    noise = {}
    for k, split in enumerate(SPLITS):
        if split not in splits:
            continue
        clips = recorded_clips(split)
        rng = np.random.default_rng([seed, 5, k])
        voices = [read_recording(clips[i]) for i in np.sort(rng.permutation(len(clips))[:BABBLE_CLIPS])]
        babble = [augment.babble_track(voices, talkers, rng) for talkers in (4, 8)]
        noise[split] = np.concatenate([colours, np.stack(babble)])
    return Banks(noise, augment.room_bank(seed, splits))


def render(utt: Utterance, banks: Banks) -> Rendered:
    """Synthesise (or read), perturb and mix one utterance (see the module docstring)."""
    extents: list[tuple[int, int]] = []
    if utt.kind == "recorded":
        recording = read_recording(recorded_clips(utt.split)[utt.recording])
        processed = recording[: round(MAX_RECORDED_SECONDS * SAMPLE_RATE)]
        scale = 1.0
    else:
        pieces, position = [], 0
        for gap, segment in zip(utt.gaps, utt.segments):
            speech = synthesize(VOICES[utt.speaker], segment)
            pieces += [np.zeros(round(gap * WORK_RATE)), speech]
            position += len(pieces[-2])
            extents.append((position, position + len(speech)))
            position += len(speech)
        pieces.append(np.zeros(round(utt.gaps[-1] * WORK_RATE)))
        dry = np.concatenate(pieces)
        if utt.focus is not None:  # lengthen the leading and trailing silences to the minimum
            end = extents[utt.focus][1]
            lead = max(0, round((MIN_FOCUS_END_S + utt.gaps[0]) * utt.speed * WORK_RATE) - end)
            tail = max(0, round(MIN_TAIL_S * utt.speed * WORK_RATE) - (len(dry) - end))
            dry = np.concatenate([np.zeros(lead), dry, np.zeros(tail)])
            extents = [(a + lead, b + lead) for a, b in extents]
        effects = ["speed", f"{utt.speed:.4f}", "rate", "-h", str(SAMPLE_RATE)]
        if utt.reverb is not None:
            reverberance, damping, room, wet = utt.reverb
            effects += ["reverb", f"{reverberance:.2f}", f"{damping:.2f}", f"{room:.2f}", "100", "0", f"{wet:.2f}"]
        # Headroom: sox works in fixed point and clips at full scale; the level is set at the end anyway.
        processed = sox(0.25 * dry, WORK_RATE, effects)
        if utt.room_index is not None:
            processed = augment.apply_room(processed, banks.rooms[utt.split][utt.room_index])
        scale = SAMPLE_RATE / (WORK_RATE * utt.speed)  # input samples -> output samples

    bank = banks.noise[utt.split][utt.noise]
    if len(processed) > len(bank):
        raise ValueError(f"utterance of {len(processed) / SAMPLE_RATE:.1f} s is longer than the noise bank")
    offset = int(utt.noise_offset * (len(bank) - len(processed)))
    slice_ = bank[offset: offset + len(processed)].astype(np.float64)
    if utt.kind == "noise":
        mixed = slice_
    else:
        speech = (np.concatenate([processed[round(a * scale): round(b * scale)] for a, b in extents]) if extents
                  else processed)
        noise_rms = np.sqrt(np.mean(speech**2)) * 10 ** (-utt.snr_db / 20)
        mixed = processed + noise_rms * slice_
    mixed = augment.apply_channel(mixed, utt.channel, utt.channel_effects)
    peak = 32767 * 10 ** (utt.peak_dbfs / 20)
    audio = np.round(mixed * (peak / max(np.max(np.abs(mixed)), 1e-12))).astype(np.int16)

    span = None
    if utt.focus is not None:
        start, end = extents[utt.focus]
        span = (start * scale / SAMPLE_RATE, end * scale / SAMPLE_RATE)
    return Rendered(audio, span)


# --- windows -----------------------------------------------------------------------------------------------------


def choose_windows(frames: int, utt: Utterance, span: tuple[float, float] | None, rng: np.random.Generator,
                   options: FbankOptions = FbankOptions()) -> list[tuple[int, int]]:
    """(end frame, label) of the labelled windows of an utterance of ``frames`` fbank frames (``cut_windows``).

    A window's end time is the end of its last frame. Positive utterances give
    three positives ending 0..POSITIVE_END_S after the phrase and starting no
    later than POSITIVE_START_S after it starts, two negatives
    ending while the phrase is still being said (up to PREFIX_GUARD_S before
    its end) and two ending before the phrase or AFTER_GUARD_S or more after
    it. Confusables give six negatives ending anywhere from 0.1 s into the
    confusable to AFTER_GUARD_S after it (every step a streaming detector
    sees it at) and one anywhere; speech and noise give three anywhere.
    Windows that do not fit are left out. The end frame is exclusive.
    """
    shift, length = options.frame_shift_ms / 1000, options.frame_length_ms / 1000
    ends = np.arange(WINDOW_FRAMES, frames + 1)  # exclusive end frame of each possible window
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
    return chosen


def cut_windows(features: np.ndarray, utt: Utterance, span: tuple[float, float] | None,
                rng: np.random.Generator, options: FbankOptions = FbankOptions()) -> tuple[np.ndarray, np.ndarray]:
    """Labelled WINDOW_FRAMES-frame windows of one utterance's (T, bins) features (``choose_windows``).

    Returns:
        float32 (N, WINDOW_FRAMES, bins) windows and int64 (N,) labels.
    """
    chosen = choose_windows(len(features), utt, span, rng, options)
    return _stack(features, chosen, WINDOW_FRAMES), np.array([label for _, label in chosen], dtype=np.int64)


def _stack(features: np.ndarray, chosen: list[tuple[int, int]], frames: int) -> np.ndarray:
    """float32 (N, frames, bins) windows of ``features`` ending at each chosen (exclusive) end frame; a window
    that reaches before the first frame starts with frames of zeros (a stream's start: silence for the
    microfrontend, whose features are non-negative)."""
    out = np.zeros((len(chosen), frames, features.shape[1]), np.float32)
    for i, (end, _) in enumerate(chosen):
        piece = features[max(0, end - frames): end]
        out[i, frames - len(piece):] = piece
    return out


def cut_microfrontend_windows(features: np.ndarray, chosen: list[tuple[int, int]]) -> np.ndarray:
    """MICROFRONTEND_WINDOW_FRAMES-frame windows of one utterance's (T, 40) microfrontend features ending where
    the fbank windows ``chosen`` end: microfrontend frame j ends 30 ms after sample j * 160, fbank frame j 25 ms
    after it, so the same exclusive end frame ends 5 ms later (the microfrontend has one frame fewer at most)."""
    return _stack(features, [(min(end, len(features)), label) for end, label in chosen], MICROFRONTEND_WINDOW_FRAMES)


# --- the corpus --------------------------------------------------------------------------------------------------

STREAM_SPLITS = ("val", "test")
"""Splits whose utterances are also written as streams: val to choose a threshold, test to measure."""


def outputs(split: str) -> tuple[str, ...]:
    """The files and directories ``make_corpus`` writes for one split."""
    if split not in STREAM_SPLITS:
        return f"{split}.npz", microfrontend_name(split)
    return f"{split}.npz", microfrontend_name(split), manifest_name(split), split


def microfrontend_name(split: str) -> str:
    """The microfrontend windows of a split (the conv models' training data): SPLIT-mf.npz."""
    return f"{split}-mf.npz"


def manifest_name(split: str) -> str:
    """The stream manifest of a split: manifest.json for test (what kwsint-eval measures), val-manifest.json."""
    return "manifest.json" if split == "test" else f"{split}-manifest.json"


_BANKS: Banks | None = None


def _init_worker(banks: Banks) -> None:
    global _BANKS
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the pool
    _BANKS = banks


def microfrontend_features(audio: np.ndarray) -> np.ndarray:
    """float32 (T, 40) microfrontend features of int16 audio from its start (pymicro-features)."""
    return MicroFrontendStream().push(audio)


def _render_job(job: tuple[int, Utterance]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None,
                                                      tuple | None]:
    """(fbank windows, microfrontend windows, labels, audio, span) of one utterance; windows drawn from
    [seed, 3, its number], audio only for the splits written as streams."""
    seed, utt = job
    index = utt.number
    rendered = render(utt, _BANKS)
    features = compute_fbank(rendered.audio)
    chosen = choose_windows(len(features), utt, rendered.span, np.random.default_rng([seed, 3, index]))
    labels = np.array([label for _, label in chosen], dtype=np.int64)
    windows = _stack(features, chosen, WINDOW_FRAMES)
    mf_windows = cut_microfrontend_windows(microfrontend_features(rendered.audio), chosen)
    return windows, mf_windows, labels, rendered.audio if utt.split in STREAM_SPLITS else None, rendered.span


def make_corpus(out_dir: str | Path, *, seed: int = 0, scale: float = 1.0, jobs: int | None = None,
                splits: Iterable[str] = SPLITS, force: bool = False,
                progress: Callable[[Iterable, int], Iterable] | None = None) -> dict:
    """Render the ``splits`` of ``plan_corpus(seed, scale)`` with ``jobs`` processes and write them to ``out_dir``.

    Writes, for each split in ``splits``:
        SPLIT.npz: windows (``kwsint.data.dataset``) with speaker ids.
        SPLIT-mf.npz: the same windows (labels, speakers) of microfrontend features, MICROFRONTEND_WINDOW_FRAMES
            frames ending with them (``cut_microfrontend_windows``).
    and for val and test:
        SPLIT/pos_NNNN.npy: features (T, 20) of each positive utterance, and SPLIT/pos_NNNN.mf.npy its
            microfrontend features (T', 40); the same for negatives;
        SPLIT/neg_NNNN.npy: negative utterances of one category (near-miss, speech, noise, recorded) and
            one synthesizer concatenated into streams of at least STREAM_SECONDS (the last of each may be
            shorter);
        test/*.wav: the 16 kHz audio of the first SAMPLE_WAVS positives and the first stream;
        manifest.json (test), val-manifest.json (val): {"streams": [{"features", "microfrontend", "kind",
            "spans"?, "tags"}],
            "frame_shift"}: paths relative to the manifest, spans [[start_s, end_s]] of the phrase
            for positives, tags ``stream_tags``;
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
    check_tools(splits)
    banks = make_banks(seed, splits)
    jobs_list = [(seed, utt) for utt in plan_corpus(seed, scale, splits)]
    out.mkdir(parents=True, exist_ok=True)
    # Everything is written to a hidden folder first and moved into place at the end, corpus.json last: a run
    # that fails or is killed while rendering leaves the previous outputs as they were.
    stage = temp_dir_beside(out / "corpus.json")
    try:
        summary = _render(stage, seed, scale, splits, banks, jobs_list, jobs, progress)
        for name in names:  # renames only; an old folder goes into the stage, removed with it
            if (out / name).is_dir():
                os.replace(out / name, stage / f"old.{name}")
            os.replace(stage / name, out / name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return summary


def _render(out: Path, seed: int, scale: float, splits: tuple[str, ...], banks: Banks, jobs_list: list,
            jobs: int | None, progress: Callable[[Iterable, int], Iterable] | None) -> dict:
    """Render the planned utterances of ``jobs_list`` and write every output of ``splits`` to ``out``."""
    windows = {split: ([], [], [], []) for split in splits}  # fbank windows, labels, speakers, microfrontend
    clips = {split: ([], []) for split in STREAM_SPLITS if split in splits}  # (audio, span, tags), (audio, tags)
    jobs = jobs or os.cpu_count() or 1
    with ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker, initargs=(banks,)) as pool:
        try:
            results = pool.map(_render_job, jobs_list, chunksize=8)
            for (_, utt), (w, mf, labels, audio, span) in zip(jobs_list, progress(results, len(jobs_list))
                                                                 if progress else results):
                features, label_list, speakers, mf_features = windows[utt.split]
                features.append(w)
                mf_features.append(mf)
                label_list.append(labels)
                speakers.append(np.full(len(labels), utt.speaker, dtype=np.int64))
                if utt.split in clips and utt.kind == "positive":
                    clips[utt.split][0].append((audio, span, stream_tags(utt)))
                elif utt.split in clips:
                    clips[utt.split][1].append((audio, stream_tags(utt)))
        except BaseException:  # an interrupt or a failed job: drop the queued work instead of waiting for it
            pool.shutdown(cancel_futures=True)
            raise

    voices = split_speakers(seed)
    summary = {"phrase": PHRASE, "seed": seed, "scale": scale,
               "utterances": {**kind_counts(scale), "recorded": recorded_counts(scale, splits)},
               "speakers": {s: len(ids) for s, ids in voices.items()},
               "voices": {split: [str(VOICES[i]) for i in ids] for split, ids in voices.items()},
               "recorded": {split: {"package": RECORDED[split][0], "speaker": recorded_speaker(split),
                                    "recordings": len(recorded_clips(split))} for split in splits},
               "rooms": {split: [{"size_m": r.size_m, "distance_m": r.distance_m, "rt60_s": r.rt60_s}
                                 for r in rooms] for split, rooms in banks.rooms.items()},
               "splits": {}}
    for split, (features, labels, speakers, mf_features) in windows.items():
        w = Windows(np.concatenate(features), np.concatenate(labels), np.concatenate(speakers))
        save_windows(out / f"{split}.npz", w)
        save_windows(out / microfrontend_name(split), Windows(np.concatenate(mf_features), w.labels, w.speakers))
        summary["splits"][split] = {"windows": len(w), "positives": int(w.labels.sum()),
                                    "speakers": len(np.unique(w.speakers))}
    for split, (positives, negatives) in clips.items():
        summary["splits"][split]["streams"] = _write_streams(out, split, positives, negatives)
    (out / "corpus.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def stream_tags(utt: Utterance) -> dict[str, str]:
    """The manifest tags of an utterance's stream: its ``synthesizer`` ("recorded" for recordings, "none" for
    noise) and ``category`` (positive, near-miss, speech, noise, recorded); positives also their
    ``channel`` and ``room``."""
    synthesizer = {"recorded": "recorded", "noise": "none"}.get(utt.kind) or VOICES[utt.speaker].synthesizer
    category = {"confusable": "near-miss"}.get(utt.kind, utt.kind)
    tags = {"synthesizer": synthesizer, "category": category}
    if utt.kind == "positive":
        tags.update(channel=utt.channel, room=utt.room)
    return tags


def _write_streams(out: Path, split: str, positives: list[tuple[np.ndarray, tuple[float, float], dict]],
                   negatives: list[tuple[np.ndarray, dict]]) -> dict:
    """Write one split's positive clips and negative streams (features; a few wavs for test) and its manifest."""
    (out / split).mkdir()
    wavs = split == "test"
    streams = []
    for i, (audio, span, tags) in enumerate(positives, 1):
        name = f"{split}/pos_{i:04d}"
        np.save(out / f"{name}.npy", compute_fbank(audio))
        np.save(out / f"{name}.mf.npy", microfrontend_features(audio))
        if wavs and i <= SAMPLE_WAVS:
            _write_wav(out / f"{name}.wav", audio)
        streams.append({"features": f"{name}.npy", "microfrontend": f"{name}.mf.npy", "kind": "positive",
                        "spans": [[round(span[0], 4), round(span[1], 4)]], "tags": tags})
    negative_seconds = {}
    groups = {}  # one group of streams per tag set, in the order they first appear
    for audio, tags in negatives:
        groups.setdefault(json.dumps(tags), []).append(audio)
    i = 0
    for key, clips in groups.items():
        tags = json.loads(key)
        for audio in _concatenate(clips):
            i += 1
            name = f"{split}/neg_{i:04d}"
            np.save(out / f"{name}.npy", compute_fbank(audio))
            np.save(out / f"{name}.mf.npy", microfrontend_features(audio))
            if wavs and i == 1:
                _write_wav(out / f"{name}.wav", audio)
            streams.append({"features": f"{name}.npy", "microfrontend": f"{name}.mf.npy", "kind": "negative",
                            "tags": tags})
            category = tags["category"]
            negative_seconds[category] = negative_seconds.get(category, 0.0) + len(audio) / SAMPLE_RATE
    frame_shift = FbankOptions().frame_shift_ms / 1000
    lines = ",\n".join(" " + json.dumps(stream) for stream in streams)
    (out / manifest_name(split)).write_text(
        f'{{"streams": [\n{lines}\n], "frame_shift": {json.dumps(frame_shift)}}}\n')
    return {"positive_clips": len(positives), "negative_streams": len(streams) - len(positives),
            "negative_seconds": round(sum(negative_seconds.values()), 1),
            "negative_seconds_by_category": {k: round(v, 1) for k, v in sorted(negative_seconds.items())}}


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


# --- leave one synthesizer out -----------------------------------------------------------------------------------


def synthesizer_speakers(summary: dict, synthesizer: str, where: str = "corpus.json") -> list[int]:
    """Speaker ids of ``synthesizer``'s voices in a corpus, from its corpus.json ``summary``.

    Raises ValueError naming ``where`` when the summary lists a voice this
    kwsint does not know (a corpus of another version) or the synthesizer is not one of SYNTHESIZERS.
    """
    if synthesizer not in SYNTHESIZERS:
        raise ValueError(f"synthesizer: expected one of {', '.join(SYNTHESIZERS)}, got {synthesizer!r}")
    names = {str(v): i for i, v in enumerate(VOICES)}
    voices = summary.get("voices")
    if not isinstance(voices, dict):
        raise ValueError(f"{where}: voices: expected the voices of each split (a corpus of kwsint-data synth)")
    ids = []
    for split, listed in voices.items():
        for name in listed:
            if name not in names:
                raise ValueError(f"{where}: voices: {split} lists {name!r}, which this kwsint does not have")
            if VOICES[names[name]].synthesizer == synthesizer:
                ids.append(names[name])
    return sorted(ids)


def hold_out(windows: Windows, speakers: list[int]) -> Windows:
    """``windows`` without those of ``speakers`` (ids); the windows must carry speaker ids."""
    if windows.speakers is None:
        raise ValueError("speakers: expected speaker ids with the windows, got none")
    keep = ~np.isin(windows.speakers, speakers)
    return Windows(windows.features[keep], windows.labels[keep], windows.speakers[keep])
