"""What happens to the corpus's speech between the speaker and the features: room, noise and channel.

Three banks are made once per corpus and shared by every utterance:

* ``room_bank``: room impulse responses of shoebox rooms by the image-source
  method (pyroomacoustics), each split drawing from its own rooms;
* ``noise_bank``: white, pink and brown noise from sox ``synth``;
* babble: other speech mixed into a track (``babble_track``), made by the corpus
  from its own sentences and recorded speech.

``apply_channel`` then sends the noisy signal through a microphone and
transmission chain: a random equaliser, a telephone band with the GSM or AMR-NB
codec, a radio band with compression, or Ogg Vorbis. Nothing here moves the
speech in time: the room responses start at their direct path, and the one codec
with a delay (AMR-NB, 5 ms) is compensated, so the corpus's phrase spans stay exact.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 16000
"""Hz: every function here takes and gives audio at this rate."""

NOISE_COLOURS = ("whitenoise", "pinknoise", "brownnoise")
"""sox synth noise types; the noise bank holds one track of each, then babble tracks (see ``Banks``)."""
NOISE_BANK_SECONDS = 30.0
"""Length of each noise and babble track; utterances take a slice at a drawn offset."""

ROOMS = {"train": 40, "val": 8, "test": 8}
"""Room impulse responses of each split: no test utterance is heard in a room a training one was."""
ROOM_SIZE_M = ((3.0, 10.0), (2.5, 8.0), (2.4, 4.0))
"""Ranges of the shoebox rooms' length, width and height, metres."""
RT60_S = (0.2, 0.9)
"""Range of the rooms' target reverberation time (Sabine), seconds."""
MIC_DISTANCE_M = (0.5, 4.0)
"""Range of the talker-to-microphone distance, metres."""
MAX_REFLECTION_ORDER = 50
"""Image-source order cap: enough for the longest rooms' tails (measured RT60 within about 30 % of target)."""

CHANNELS = ("none", "eq", "phone-gsm", "phone-amr", "radio", "vorbis")
"""Transmission chains (``apply_channel``)."""
AMR_DELAY_SAMPLES = 80
"""sox's AMR-NB round trip delays the signal by 5 ms (measured by cross-correlation; GSM and Vorbis by 0)."""


class ToolError(RuntimeError):
    """A speech synthesizer or sox is missing, lacks a voice, or failed."""


def run_tool(command: list[str], stdin: bytes | None = None) -> bytes:
    """stdout of ``command``; ToolError naming it with its stderr when it cannot start or fails."""
    try:
        done = subprocess.run(command, input=stdin, capture_output=True, check=False)
    except OSError as e:
        raise ToolError(f"{command[0]}: {e}") from e
    if done.returncode != 0:
        raise ToolError(f"{' '.join(command[:8])} ...: exit status {done.returncode}: "
                        f"{done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def sox(x: np.ndarray, rate_in: int, effects: list[str], *, rate_out: int = SAMPLE_RATE,
        out_type: str = "f32", in_type: str = "f32") -> np.ndarray:
    """float64 samples of mono ``x`` (float, at ``rate_in``) through sox ``effects``, at ``rate_out``.

    sox runs with -R -D (repeatable, no dither), so the result depends only on the inputs.
    """
    raw = run_tool(["sox", "-R", "-D", "-t", in_type, "-r", str(rate_in), "-c", "1", "-",
                    "-t", out_type, "-r", str(rate_out), "-c", "1", "-", *effects],
                   stdin=np.asarray(x, "<f4").tobytes())
    return np.frombuffer(raw, dtype="<f4").astype(np.float64)


# --- banks -------------------------------------------------------------------------------------------------------


def noise_bank() -> np.ndarray:
    """(len(NOISE_COLOURS), NOISE_BANK_SECONDS * SAMPLE_RATE) float32 noise from sox synth, unit RMS."""
    n = round(NOISE_BANK_SECONDS * SAMPLE_RATE)
    bank = []
    for colour in NOISE_COLOURS:
        raw = run_tool(["sox", "-R", "-D", "-r", str(SAMPLE_RATE), "-n", "-t", "f32", "-r", str(SAMPLE_RATE),
                        "-c", "1", "-", "synth", f"{n}s", colour])
        x = np.frombuffer(raw, dtype="<f4").astype(np.float64)
        if len(x) != n:
            raise ToolError(f"sox synth {colour}: expected {n} samples, got {len(x)}")
        bank.append(_unit_rms(x))
    return np.stack(bank).astype(np.float32)


def babble_track(clips: list[np.ndarray], talkers: int, rng: np.random.Generator) -> np.ndarray:
    """NOISE_BANK_SECONDS of ``talkers`` voices at once, unit RMS: each talker says clips drawn from ``clips``
    (float, SAMPLE_RATE) one after another with short pauses, each clip at its own level (-6..0 dB)."""
    n = round(NOISE_BANK_SECONDS * SAMPLE_RATE)
    track = np.zeros(n)
    for _ in range(talkers):
        position = int(rng.integers(0, SAMPLE_RATE))
        while position < n:
            clip = _unit_rms(clips[int(rng.integers(len(clips)))]) * 10 ** (rng.uniform(-6, 0) / 20)
            end = min(n, position + len(clip))
            track[position:end] += clip[: end - position]
            position = end + int(rng.uniform(0.1, 0.6) * SAMPLE_RATE)
    return _unit_rms(track).astype(np.float32)


@dataclass(frozen=True)
class Room:
    """One room impulse response.

    Attributes:
        rir: float32 impulse response at SAMPLE_RATE, its direct path at sample 0 with gain 1.
        size_m: (length, width, height), metres.
        distance_m: talker to microphone, metres.
        rt60_s: reverberation time measured on ``rir`` (pyroomacoustics' Schroeder method), seconds.
    """

    rir: np.ndarray
    size_m: tuple[float, float, float]
    distance_m: float
    rt60_s: float


def pyroomacoustics():
    """The pyroomacoustics module; ToolError saying what to install when it is missing."""
    try:
        import pyroomacoustics as pra
    except ImportError as e:
        raise ToolError("the rooms need pyroomacoustics: pip install 'kwsint[data]'") from e
    return pra


def room_bank(seed: int, splits: Iterable[str] = tuple(ROOMS)) -> dict[str, list[Room]]:
    """ROOMS[split] rooms for each of ``splits``, drawn from ``seed``: a split's rooms are the same on every call."""
    pra = pyroomacoustics()
    bank: dict[str, list[Room]] = {}
    for k, (split, count) in enumerate(ROOMS.items()):
        if split not in splits:
            continue
        rng = np.random.default_rng([seed, 10, k])
        rooms = []
        while len(rooms) < count:
            size = np.array([rng.uniform(*r) for r in ROOM_SIZE_M])
            absorption, order = pra.inverse_sabine(rng.uniform(*RT60_S), size)
            talker = rng.uniform(0.5, size - 0.5)
            mic = rng.uniform(0.5, size - 0.5)
            distance = float(np.linalg.norm(talker - mic))
            if not MIC_DISTANCE_M[0] <= distance <= MIC_DISTANCE_M[1]:
                continue
            room = pra.ShoeBox(size, fs=SAMPLE_RATE, materials=pra.Material(absorption),
                               max_order=min(order, MAX_REFLECTION_ORDER))
            room.add_source(talker)
            room.add_microphone(mic)
            room.compute_rir()
            rir = np.asarray(room.rir[0][0], dtype=np.float64)
            direct = int(np.argmax(np.abs(rir)))  # the direct path is the strongest arrival
            rooms.append(Room((rir[direct:] / rir[direct]).astype(np.float32), tuple(round(float(s), 2) for s in size),
                              round(distance, 2), round(float(room.measure_rt60()[0][0]), 3)))
        bank[split] = rooms
    return bank


def apply_room(x: np.ndarray, room: Room) -> np.ndarray:
    """``x`` heard in ``room``: convolved with its response, cut to ``len(x)`` (the tail past the end is lost)."""
    from numpy.fft import irfft, rfft

    n = len(x) + len(room.rir) - 1
    size = 1 << (n - 1).bit_length()
    return irfft(rfft(x, size) * rfft(room.rir.astype(np.float64), size), size)[: len(x)]


# --- channels ----------------------------------------------------------------------------------------------------


def channel_effects(channel: str, rng: np.random.Generator) -> tuple[str, ...]:
    """The sox effects of one draw of ``channel`` (``apply_channel`` runs them): numbers drawn from ``rng``."""
    if channel == "none":
        return ()
    if channel == "eq":  # a cheap microphone or loudspeaker: three peaks or dips and a gentle band limit
        effects = ["highpass", f"{rng.uniform(60, 250):.0f}", "lowpass", f"{rng.uniform(4000, 7500):.0f}"]
        for low, high in ((150, 600), (600, 2500), (2500, 6000)):
            effects += ["equalizer", f"{rng.uniform(low, high):.0f}", f"{rng.uniform(0.5, 2.0):.2f}q",
                        f"{rng.uniform(-10, 10):.1f}"]
        return tuple(effects)
    if channel in ("phone-gsm", "phone-amr"):
        return ("sinc", f"{rng.uniform(200, 350):.0f}-{rng.uniform(3200, 3600):.0f}")
    if channel == "radio":  # a narrow band, hard compression, a little distortion
        return ("sinc", f"{rng.uniform(150, 400):.0f}-{rng.uniform(3500, 6000):.0f}",
                "compand", "0.01,0.2", "6:-70,-60,-20", "-8", "-90", "0",
                "overdrive", f"{rng.uniform(2, 12):.0f}")
    if channel == "vorbis":
        return ("vol", "1.0")  # the codec is the channel: see apply_channel
    raise ValueError(f"channel: expected one of {', '.join(CHANNELS)}, got {channel!r}")


def apply_channel(x: np.ndarray, channel: str, effects: tuple[str, ...]) -> np.ndarray:
    """``x`` (float, SAMPLE_RATE, peak below 1) through ``channel`` with its drawn ``effects``; the same length."""
    if channel == "none":
        return x
    gain = 0.25 / max(float(np.max(np.abs(x))), 1e-12)  # sox clips at full scale; the level is set later anyway
    y = sox(gain * x, SAMPLE_RATE, list(effects))
    codec = {"phone-gsm": ("gsm", 8000, ()), "phone-amr": ("amr-nb", 8000, ()),
             "vorbis": ("vorbis", SAMPLE_RATE, ("-C", "-1"))}.get(channel)
    if codec is not None:
        kind, rate, options = codec
        encoded = run_tool(["sox", "-R", "-D", "-t", "f32", "-r", str(SAMPLE_RATE), "-c", "1", "-",
                            "-t", kind, "-r", str(rate), "-c", "1", *options, "-"], stdin=y.astype("<f4").tobytes())
        y = sox(np.frombuffer(run_tool(["sox", "-R", "-D", "-t", kind, "-r", str(rate), "-c", "1", "-",
                                        "-t", "f32", "-"], stdin=encoded), dtype="<f4"), rate, [])
        if kind == "amr-nb":
            y = y[AMR_DELAY_SAMPLES:]
    return np.pad(y[: len(x)], (0, max(0, len(x) - len(y)))) / gain


def _unit_rms(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64) - np.mean(x)
    return x / max(np.sqrt(np.mean(x**2)), 1e-12)
