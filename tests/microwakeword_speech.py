"""Speech for the microWakeWord tests: espeak-ng clips of the four wake phrases and of other sentences, at 16 kHz,
rendered once per test session into a folder the fixtures share.

``phrase_wav`` is one phrase as the research prototypes made it (espeak-ng ``-v en-us -s 150``, sox to 16 kHz,
1 s of silence either side). ``long_stream`` is about 78 s of sound: each phrase in three voices and speeds, other
sentences, silences, noise, a full-scale tone and full-scale noise.
"""

from __future__ import annotations

import subprocess
import wave
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
PHRASES = {"okay_nabu": "okay nabu", "hey_jarvis": "hey jarvis", "alexa": "alexa", "hey_mycroft": "hey mycroft"}
VOICES = (("en-us", 150), ("en-gb", 130), ("en-us+f3", 175))
OTHER = (
    "the weather today is cloudy with a chance of rain in the afternoon",
    "please turn off the kitchen lights and lock the front door",
    "my neighbour bought a new bicycle for his daughter last weekend",
    "okay so we need milk bread and a dozen eggs from the shop",
    "the train to the airport leaves every twenty minutes from platform nine",
    "hey can you tell me how long the pasta should boil",
    "a jar of honey sat next to the open window all summer",
    "nobody knew why the old clock stopped at exactly midnight",
)


def speak(text: str, voice: str = "en-us", rate: int = 150) -> np.ndarray:
    """espeak-ng speaking ``text``, resampled by sox to 16 kHz mono int16 (-R -D: no dither, the same samples
    every time)."""
    wav = subprocess.run(["espeak-ng", "-v", voice, "-s", str(rate), "--stdout", text], check=True,
                         capture_output=True).stdout
    raw = subprocess.run(["sox", "-R", "-D", "-t", "wav", "-", "-t", "raw", "-r", str(SAMPLE_RATE), "-e", "signed", "-b", "16",
                          "-c", "1", "-"], input=wav, check=True, capture_output=True).stdout
    return np.frombuffer(raw, "<i2")


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * SAMPLE_RATE), np.int16)


def write_wav(path: Path, samples: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(np.asarray(samples, "<i2").tobytes())
    return path


def phrase_wav(folder: Path, name: str) -> Path:
    """``folder/NAME.wav``: the phrase of ``name`` (a key of PHRASES, or "other" for OTHER[0]) with 1 s of silence
    either side, made once."""
    path = folder / f"{name}.wav"
    if not path.exists():
        text = OTHER[0] if name == "other" else PHRASES[name]
        write_wav(path, np.concatenate([silence(1), speak(text), silence(1)]))
    return path


def long_stream(folder: Path) -> Path:
    """``folder/long.wav``, about 78 s (module docstring), made once."""
    path = folder / "long.wav"
    if path.exists():
        return path
    rng = np.random.default_rng(18)
    parts = [silence(1.5)]
    for k, (voice, rate) in enumerate(VOICES):
        for text in PHRASES.values():
            parts += [speak(text, voice, rate), silence(1.2)]
        for text in OTHER[k::len(VOICES)]:
            parts += [speak(text, voice, rate), silence(0.6)]
    t = np.arange(3 * SAMPLE_RATE) / SAMPLE_RATE
    parts += [(rng.normal(0, 3000, 3 * SAMPLE_RATE)).astype(np.int16), silence(0.5),
              (32767 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16), silence(1),
              rng.choice(np.array([-32768, 32767], np.int16), 2 * SAMPLE_RATE), silence(1)]
    return write_wav(path, np.concatenate(parts))


def long_stream_codes(folder: Path) -> np.ndarray:
    """The int8 feature codes (frames, 40) of ``long_stream``: pymicro-features and ESPHome's quantizer
    (7,770 frames, 2,590 invokes of the four models)."""
    from kwsint.io.inputs import iter_streams
    from kwsint.io.microfrontend import MICROFRONTEND, quantize_features
    [(_, chunks)] = iter_streams(long_stream(folder), MICROFRONTEND.num_features, MICROFRONTEND)
    return quantize_features(np.concatenate(list(chunks)))


def speech_folder(tmp_path_factory) -> Path:
    """The session's folder of rendered speech (each file is made once, by whichever test needs it first)."""
    folder = tmp_path_factory.getbasetemp() / "microwakeword_speech"
    folder.mkdir(exist_ok=True)
    return folder
