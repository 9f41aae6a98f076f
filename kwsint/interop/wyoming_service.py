"""A Wyoming protocol wake word service: Home Assistant, or any Wyoming client, detects kwsint models' wake
phrases over a socket, as it does openWakeWord's and microWakeWord's (``kwsint-wyoming`` runs one).

    service = WakeWordService(load_wake_words(["default:M4", "hey_kit.kwsq", "okay_nabu.tflite"]))
    asyncio.run(service.serve(server("tcp://127.0.0.1:10400")))

The models are kwsint's window models and microWakeWord's streaming graphs (a ``.tflite`` with its JSON settings
beside it, or its kind 1 blob), which detect by ESPHome's rule with their own settings (``GraphListener``).

One connection speaks the protocol's wake domain, with the events of the ``wyoming`` package:

* ``describe`` -> ``info``: one wake program, ``kwsint``, listing every model by name with its wake phrase.
* ``detect {names}`` selects the models of the streams that follow (no names: all of them).
* ``audio-start {rate, width, channels}`` starts a stream, with a listener per selected model. Its
  ``audio-chunk`` events (in the start's format) are converted to each model's rate, 16-bit mono, by the
  package's ``AudioChunkConverter`` and pushed; each detection is a ``detection {name, timestamp}`` event, the
  timestamp in milliseconds of audio since the start: kwsint-run's time on the same audio.
* ``audio-stop`` ends the stream, with ``not-detected`` if no model fired in it. A new ``audio-start`` also
  starts afresh.
* ``ping`` -> ``pong``. An event type the service does not know gets an ``error`` (code ``unknown-event``) and
  is otherwise dropped, as Wyoming servers drop what they do not know.

A client's mistake (a malformed event, one over the size bounds below, audio outside a stream, a detect inside
one, an unknown model, an audio format outside SUPPORTED_AUDIO) gets one ``error`` event saying what was
expected, and the connection closes; the service goes on serving everyone else. What one connection can make
the service hold is bounded (a header line of MAX_HEADER_BYTES, MAX_DATA_BYTES of data, MAX_PAYLOAD_BYTES of
payload, its stream's state) and so is the number of connections served at once (``max_clients``); a connection
that sends nothing for ``idle_timeout_s`` gets an ``error`` (code ``timeout``) and is closed, so silent clients
cannot hold every slot; everything a connection holds is freed when it ends, however it ends.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from wyoming.audio import AudioChunk, AudioChunkConverter, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Attribution, Describe, Info, WakeModel, WakeProgram
from wyoming.ping import Ping, Pong
from wyoming.server import AsyncEventHandler, AsyncServer
from wyoming.wake import Detect, Detection, NotDetected

from .. import __version__, load
from ..engine.graph_model import GraphModel
from ..engine.listener import GraphListener, Listener
from ..engine.model import Model, model_names

_LOGGER = logging.getLogger(__name__)

PROGRAM = "kwsint"
"""The wake program's name in ``info``."""
MAX_HEADER_BYTES = 1 << 16
"""An event's JSON header line, newline included: asyncio's stream limit, which the wyoming servers keep."""
MAX_DATA_BYTES = 1 << 16
"""An event's JSON data after its header (``data_length``)."""
MAX_PAYLOAD_BYTES = 1 << 20
"""An event's payload (``payload_length``): 32 s of 16 kHz 16-bit mono audio in one chunk."""
DEFAULT_MAX_CLIENTS = 32
DEFAULT_IDLE_TIMEOUT_S = 120.0
"""Seconds a connection may send nothing before it is closed (a streaming client sends audio every few tens of ms)."""
"""Connections served at once unless told otherwise; one more gets an ``error`` (code ``busy``)."""
SUPPORTED_AUDIO = {"rate": (8000, 192000), "width": (1, 4), "channels": (1, 2)}
"""The audio formats a stream may have: inclusive ranges of samples per second, bytes per sample and channels,
what the converter handles (mono or stereo: it mixes stereo as the sum of the channels) in bounded memory (at
most 4x a payload's size after conversion)."""
_SELECT_PROGRAM = "select-program"  # newer wyoming packages' SelectProgram, by its type: older ones lack the class


class ClientError(Exception):
    """A client's mistake: ``code`` and ``text`` go to it in an ``error`` event, then the connection closes."""

    def __init__(self, code: str, text: str):
        super().__init__(text)
        self.code = code
        self.text = text


@dataclass(frozen=True)
class WakeWord:
    """A model as the service offers it.

    Attributes:
        name: what clients select it by in ``detect`` and what ``detection`` events name.
        phrase: the wake phrase shown to users (the blob's, else the name).
        model: the loaded model, shared by every connection: a window model, or a microWakeWord streaming graph.
    """

    name: str
    phrase: str
    model: Model | GraphModel


def load_wake_words(refs: Sequence[str], *, backend: str | None = None) -> list[WakeWord]:
    """Load the models ``refs`` (``.kwsq`` paths, ``default:NAME`` or microWakeWord ``.tflite`` files, as
    ``kwsint.load`` does), each named by its file's stem or shipped name (the refs whole where two names clash),
    its phrase the metadata's (a microWakeWord JSON's ``wake_word``), else that name."""
    wake_words = []
    for ref, name in zip(refs, model_names(list(refs))):
        model = load(ref, backend=backend)
        wake_words.append(WakeWord(name, model.spec.metadata.phrase or name, model))
    return wake_words


def _short(value, limit: int = 100) -> str:
    """``repr(value)`` cut to ``limit`` characters: a client's text echoed in an error stays small."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _json_object(raw: bytes, what: str) -> dict:
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as e:  # RecursionError: nested too deeply for the parser
        raise ClientError("malformed-event", f"{what}: expected a JSON object, got {type(e).__name__}: "
                                             f"{str(e)[:100]}") from None
    if not isinstance(value, dict):
        raise ClientError("malformed-event", f"{what}: expected a JSON object, got {type(value).__name__}")
    return value


def _length(header: dict, key: str, limit: int) -> int:
    value = header.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ClientError("malformed-event", f"event header: {key}: expected a byte count >= 0, got {_short(value)}")
    if value > limit:
        raise ClientError("too-large", f"event header: {key}: expected at most {limit} bytes, got {value}")
    return value


async def read_event(reader: asyncio.StreamReader) -> Event | None:
    """The next event a client sent; None when the connection ended, also in the middle of an event.

    The framing is the ``wyoming`` package's (a JSON header line, then ``data_length`` bytes of JSON data and
    ``payload_length`` bytes of payload); every length is checked against its bound before anything is read.
    Raises ClientError for a malformed or oversized event.
    """
    try:
        line = await reader.readline()
    except ValueError:  # asyncio: no newline within the reader's limit (it has dropped what it buffered)
        raise ClientError("too-large", f"event header: expected a JSON line of at most {MAX_HEADER_BYTES} bytes "
                                       "ending in a newline") from None
    if not line.endswith(b"\n"):
        return None  # the end of the stream, maybe after part of a header
    header = _json_object(line, "event header")
    event_type = header.get("type")
    if not isinstance(event_type, str) or not event_type:
        raise ClientError("malformed-event", f"event header: type: expected an event type, got {_short(event_type)}")
    data = header.get("data", {})
    if not isinstance(data, dict):
        raise ClientError("malformed-event", f"{_short(event_type)}: data: expected a JSON object, got "
                                             f"{type(data).__name__}")
    data_length = _length(header, "data_length", MAX_DATA_BYTES)
    payload_length = _length(header, "payload_length", MAX_PAYLOAD_BYTES)
    try:
        if data_length:
            data = {**data, **_json_object(await reader.readexactly(data_length), f"{_short(event_type)}: data")}
        payload = await reader.readexactly(payload_length) if payload_length else None
    except asyncio.IncompleteReadError:
        return None
    return Event(type=event_type, data=data, payload=payload)


def _audio_format(data: dict, what: str) -> tuple[int, int, int]:
    """(rate, width, channels) of an audio-start or audio-chunk's data; ClientError outside SUPPORTED_AUDIO."""
    values = []
    for key, (low, high) in SUPPORTED_AUDIO.items():
        value = data.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ClientError("unsupported-audio", f"{what}: {key}: expected an integer in [{low}, {high}], got "
                                                   f"{_short(value)}")
        values.append(value)
    rate, width, channels = values
    return rate, width, channels


@dataclass
class _Stream:
    """One audio stream of a connection: its format, a converter per model sample rate, a listener per model."""

    audio_format: tuple[int, int, int]
    listeners: dict[str, Listener | GraphListener]
    converters: dict[int, AudioChunkConverter] = field(init=False)
    detected: bool = False

    def __post_init__(self):
        # One converter per rate the models take (a fresh resampler state each stream), 16-bit mono.
        self.converters = {rate: AudioChunkConverter(rate=rate, width=2, channels=1)
                           for rate in {listener.sample_rate for listener in self.listeners.values()}}

    def push(self, audio: bytes) -> list[Detection]:
        """Whole frames of audio in the stream's format; the detections they complete."""
        rate, width, channels = self.audio_format
        chunk = AudioChunk(rate=rate, width=width, channels=channels, audio=audio)
        converted = {r: converter.convert(chunk).audio for r, converter in self.converters.items()}
        return self._events((name, listener.push(converted[listener.sample_rate]))
                            for name, listener in self.listeners.items())

    def finish(self) -> list[Detection]:
        """The end of the stream: the detections only it completes."""
        return self._events((name, listener.finish()) for name, listener in self.listeners.items())

    def _events(self, found: Iterable[tuple[str, list]]) -> list[Detection]:
        events = [Detection(name=name, timestamp=round(d.time * 1000)) for name, detections in found
                  for d in detections]
        self.detected |= bool(events)
        return events


class WakeWordService:
    """The wake words a service offers, how it detects them and how many connections it serves at once;
    ``handler`` makes each connection's WakeWordHandler (the ``wyoming`` servers' handler factory)."""

    def __init__(self, wake_words: Sequence[WakeWord], *, threshold: float | None = None,
                 smoothing_s: float | None = None, lockout_s: float | None = None,
                 max_clients: int = DEFAULT_MAX_CLIENTS, idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S):
        """``threshold`` (in [0, 1]) applies to every model: a window model's posterior threshold, a streaming
        graph's probability cutoff. ``smoothing_s`` and ``lockout_s`` (seconds) apply to the window models only
        (a graph detects by ESPHome's rule, which has neither): refused when every model is a graph. What is not
        given is each model's own (``Model.listener``, ``GraphModel.listener``). ``idle_timeout_s`` (> 0,
        seconds): how long a connection may send nothing. ValueError for a bad value (naming the model whose
        listener refuses it), no wake words, two with one name, ``max_clients`` < 1; ImportError for a graph
        without pymicro-features."""
        if not wake_words:
            raise ValueError("no models to serve")
        names = [w.name for w in wake_words]
        if len(set(names)) != len(names):
            raise ValueError(f"two models with one name: {names}")
        if max_clients < 1:
            raise ValueError(f"max_clients: expected >= 1, got {max_clients}")
        if not 0 < idle_timeout_s < float("inf"):
            raise ValueError(f"idle_timeout_s: expected a number of seconds > 0, got {idle_timeout_s}")
        self.idle_timeout_s = float(idle_timeout_s)
        self.wake_words = {w.name: w for w in wake_words}
        self.max_clients = max_clients
        self.connections = 0
        """Connections being served now."""
        if all(isinstance(w.model, GraphModel) for w in wake_words):
            for option, value in (("smoothing_s", smoothing_s), ("lockout_s", lockout_s)):
                if value is not None:
                    raise ValueError(f"{option}: expected none: it applies to window models only, and the models "
                                     f"served ({', '.join(names)}) detect by ESPHome's rule (a probability cutoff "
                                     "over a sliding window of outputs)")
        self._threshold = threshold
        self._durations = dict(smoothing_s=smoothing_s, lockout_s=lockout_s)
        for w in wake_words:  # a bad threshold, duration or graph setting is refused now, not at the first stream
            try:
                self.listener(w)
            except ValueError as e:
                raise ValueError(f"{w.name}: {e}") from None
        self.info = Info(wake=[WakeProgram(
            name=PROGRAM, description="kwsint: bit-exact integer wake word detection",
            attribution=Attribution(name="kwsint", url=""), installed=True, version=__version__,
            models=[WakeModel(name=w.name, description=w.phrase, phrase=w.phrase, installed=True,
                              languages=list(w.model.spec.metadata.trained_languages or ()),
                              version=w.model.spec.metadata.model_version, attribution=Attribution(name="", url=""))
                    for w in wake_words])])
        """What ``describe`` answers."""

    def listener(self, wake_word: WakeWord) -> Listener | GraphListener:
        """A new listener on ``wake_word``'s model with the service's settings."""
        if isinstance(wake_word.model, GraphModel):
            return wake_word.model.listener(self._threshold)
        return wake_word.model.listener(threshold=self._threshold, **self._durations)

    def handler(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> WakeWordHandler:
        """The handler of a new connection."""
        return WakeWordHandler(self, reader, writer)

    async def serve(self, on: AsyncServer, ready: Callable[[], None] | None = None) -> None:
        """Serve on ``on`` (``server(uri)``) until SIGTERM or cancellation (Ctrl-C); ``ready`` is called once it
        listens. OSError when it cannot listen (an address in use). Call it in the main thread (SIGTERM)."""
        await on.start(self.handler)
        try:
            if ready is not None:
                ready()
            stopped = asyncio.Event()
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGTERM, stopped.set)
            try:
                await stopped.wait()
            finally:
                loop.remove_signal_handler(signal.SIGTERM)
        finally:
            await on.stop()


def server(uri: str) -> AsyncServer:
    """The ``wyoming`` server for ``uri``: ``tcp://HOST:PORT`` or ``unix://PATH``. ValueError for another URI,
    and for a unix PATH that exists and is not a socket (the server deletes what is there)."""
    parsed = urlparse(uri)
    if parsed.scheme == "unix":
        path = Path(parsed.path)
        if not parsed.path or (os.path.lexists(path) and not stat.S_ISSOCK(path.lstat().st_mode)):
            raise ValueError(f"uri: {uri}: expected the path of a socket to create or replace, got "
                             f"{'nothing' if not parsed.path else 'an existing file that is not a socket'}")
    elif parsed.scheme != "tcp" or not parsed.hostname or parsed.port is None:
        raise ValueError(f"uri: expected tcp://HOST:PORT or unix://PATH, got {uri}")
    return AsyncServer.from_uri(uri)


class WakeWordHandler(AsyncEventHandler):
    """One connection: its selected wake words and its stream (module docstring for the protocol)."""

    def __init__(self, service: WakeWordService, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        super().__init__(reader, writer)
        self.service = service
        self.selected: list[WakeWord] = list(service.wake_words.values())
        self.stream: _Stream | None = None
        self.client = str(writer.get_extra_info("peername") or "a client")

    async def run(self) -> None:
        """Serve the connection until the client closes it or makes a mistake; never raises but for cancellation.

        The base class's loop with the bounded reader, and an ``error`` event for a client's mistake.
        """
        service = self.service
        try:
            if service.connections >= service.max_clients:
                raise ClientError("busy", f"the service serves {service.max_clients} connections at once; "
                                          "try again later")
            service.connections += 1
            self._is_running = True  # stop() clears it
            try:
                while self._is_running:
                    try:
                        event = await asyncio.wait_for(read_event(self.reader), service.idle_timeout_s)
                    except asyncio.TimeoutError:
                        raise ClientError("timeout", f"nothing received for {service.idle_timeout_s:g} s") from None
                    if event is None or not await self.handle_event(event):
                        break
            finally:
                service.connections -= 1
        except ClientError as e:
            _LOGGER.info("%s: %s (%s): closing the connection", self.client, e.text, e.code)
            await self._write_last(Error(text=e.text, code=e.code).event())
        except ConnectionError:  # the client went away while we wrote or read
            _LOGGER.debug("%s: connection lost", self.client)
        except Exception:  # a bug: this connection ends, the service goes on
            _LOGGER.exception("%s: internal error", self.client)
            await self._write_last(Error(text="internal error", code="internal-error").event())
        finally:
            self.stream = None
            self.writer.close()
            await self.disconnect()

    async def _write_last(self, event: Event) -> None:
        try:
            await self.write_event(event)
        except ConnectionError:
            pass

    async def handle_event(self, event: Event) -> bool:
        """Answer one event; True to go on (a client's mistake raises ClientError)."""
        if AudioChunk.is_type(event.type):
            await self._chunk(event)
        elif Detect.is_type(event.type):
            self._select(event.data)
        elif AudioStart.is_type(event.type):
            self._start(event.data)
        elif AudioStop.is_type(event.type):
            await self._stop()
        elif Describe.is_type(event.type):
            await self.write_event(self.service.info.event())
        elif Ping.is_type(event.type):
            text = event.data.get("text")
            await self.write_event(Pong(text=text if isinstance(text, str) else None).event())
        elif event.type == _SELECT_PROGRAM:
            if event.data.get("name") != PROGRAM:
                raise ClientError("unknown-program", f"select-program: name: expected {PROGRAM!r}, got "
                                                     f"{_short(event.data.get('name'))}")
        else:
            await self.write_event(Error(text=f"unknown event type {_short(event.type)}: dropped",
                                         code="unknown-event").event())
        return True

    def _select(self, data: dict) -> None:
        if self.stream is not None:
            raise ClientError("unexpected-event", "detect: inside an audio stream; expected it before audio-start "
                                                  "or after audio-stop")
        names = data.get("names")
        if not names:
            self.selected = list(self.service.wake_words.values())
            return
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ClientError("malformed-event", f"detect: names: expected a list of model names, got {_short(names)}")
        known = self.service.wake_words
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ClientError("unknown-model", f"detect: names: no model {_short(unknown[0])}; this service has "
                                               f"{', '.join(known)}")
        self.selected = [known[n] for n in dict.fromkeys(names)]

    def _start(self, data: dict) -> None:
        self.stream = _Stream(_audio_format(data, "audio-start"),
                              {w.name: self.service.listener(w) for w in self.selected})

    async def _chunk(self, event: Event) -> None:
        if self.stream is None:
            raise ClientError("unexpected-event", "audio-chunk: outside an audio stream; expected audio-start first")
        audio_format = _audio_format(event.data, "audio-chunk")
        if audio_format != self.stream.audio_format:
            raise ClientError("unsupported-audio", f"audio-chunk: expected the audio-start's (rate, width, channels) "
                                                   f"{self.stream.audio_format}, got {audio_format}")
        audio = event.payload or b""
        frame_bytes = audio_format[1] * audio_format[2]
        if len(audio) % frame_bytes:
            raise ClientError("malformed-event", f"audio-chunk: expected whole frames of {frame_bytes} bytes, got "
                                                 f"{len(audio)} bytes")
        # In a worker thread: the event loop goes on serving the other connections meanwhile.
        await self._send(await asyncio.to_thread(self.stream.push, audio))

    async def _stop(self) -> None:
        if self.stream is None:
            raise ClientError("unexpected-event", "audio-stop: outside an audio stream; expected audio-start first")
        stream, self.stream = self.stream, None
        await self._send(await asyncio.to_thread(stream.finish))
        if not stream.detected:
            await self.write_event(NotDetected().event())

    async def _send(self, detections: list[Detection]) -> None:
        for detection in detections:
            _LOGGER.debug("%s: detected %s at %s ms", self.client, detection.name, detection.timestamp)
            await self.write_event(detection.event())
