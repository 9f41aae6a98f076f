"""kwsint-wyoming: the Wyoming wake word service, end to end over loopback with the wyoming package's client.

Each test starts the service in-process on a free loopback port. A client's mistake must end its own connection
with an error event (or close it) and leave the service serving the next client, with nothing of the connection
left in memory.
"""

import asyncio
import contextlib
import dataclasses
import gc
import json
import signal
import socket
import subprocess
import sys
import wave
import weakref
from pathlib import Path

import numpy as np
import pytest
from wyoming.audio import AudioChunk, AudioChunkConverter, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.event import Event, async_read_event
from wyoming.info import Describe, Info
from wyoming.ping import Ping
from wyoming.wake import Detect

import kwsint.interop
from kwsint.cli import run, wyoming as cli
from kwsint.engine.blob import write_blob
from kwsint.engine.metadata import ModelMetadata
from kwsint.interop.tflite_import import read_tflite
from kwsint.interop.wyoming_service import (MAX_DATA_BYTES, MAX_HEADER_BYTES, MAX_PAYLOAD_BYTES, WakeWord,
                                            WakeWordService, load_wake_words, server)
from tests.microwakeword_speech import phrase_wav, speech_folder, write_wav

SAMPLES = kwsint.default_model.path("samples")
READ_TIMEOUT_S = 60  # a reply that never comes fails the test instead of hanging it
MODEL_RATE = (16000, 2, 1)


def _pcm(name: str | Path) -> bytes:
    with wave.open(str(SAMPLES / name)) as w:  # an absolute path stays itself
        return w.readframes(w.getnframes())


POSITIVE, NEGATIVE = _pcm("positive_1.wav"), _pcm("negative_1.wav")


@pytest.fixture(scope="module")
def wake_words() -> list[WakeWord]:
    return load_wake_words(["default:M4", "default:M2"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def serving(service: WakeWordService, handlers: weakref.WeakSet | None = None):
    """The service listening on a free loopback port (yielded); ``handlers`` collects each connection's handler."""
    def factory(reader, writer):
        handler = service.handler(reader, writer)
        if handlers is not None:
            handlers.add(handler)
        return handler

    port = _free_port()
    srv = server(f"tcp://127.0.0.1:{port}")
    await srv.start(factory)
    try:
        yield port
    finally:
        await srv.stop()


def _convert(pcm: bytes, audio_format: tuple[int, int, int]) -> bytes:
    """16 kHz 16-bit mono PCM in another format (the wyoming package's converter, one chunk)."""
    return AudioChunkConverter(*audio_format).convert(AudioChunk(*MODEL_RATE, pcm)).audio


async def _read(client) -> Event:
    event = await asyncio.wait_for(client.read_event(), READ_TIMEOUT_S)
    assert event is not None, "the service closed the connection"
    return event


async def _until_pong(client) -> list[Event]:
    """Events up to the pong that answers the ping just sent: everything the events before the ping caused."""
    await client.write_event(Ping(text="fence").event())
    events = []
    while (event := await _read(client)).type != "pong":
        events.append(event)
    return events


async def _detect(port: int, pcm: bytes, audio_format=MODEL_RATE, names=None, chunk_frames=1024) -> list[Event]:
    """One stream as Home Assistant sends it (detect, audio-start, chunks, audio-stop): the replies."""
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Detect(names=names).event())
        await client.write_event(AudioStart(*audio_format).event())
        step = chunk_frames * audio_format[1] * audio_format[2]
        for i in range(0, len(pcm), step):
            await client.write_event(AudioChunk(*audio_format, pcm[i:i + step]).event())
            await asyncio.sleep(0)  # let other clients' chunks in between
        await client.write_event(AudioStop().event())
        return await _until_pong(client)


def _kwsint_run_ms(capsys, name: str | Path, model: str | Path = "default:M4") -> list[int]:
    capsys.readouterr()
    assert run.main([str(model), str(SAMPLES / name), "--no-progress"]) == 0
    lines = map(json.loads, capsys.readouterr().out.splitlines())
    return [round(line["time"] * 1000) for line in lines if "time" in line]


def _detections(events: list[Event]) -> list[tuple[str, int]]:
    assert all(e.type in ("detection", "not-detected") for e in events), events
    return [(e.data["name"], e.data["timestamp"]) for e in events if e.type == "detection"]


# --- the protocol ------------------------------------------------------------------------------------------


def test_describe_lists_every_model_with_its_phrase(tmp_path):
    spec = kwsint.read_blob(kwsint.default_model.path("M4.kwsq").read_bytes())
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    kwsint.save(dataclasses.replace(spec, metadata=ModelMetadata()), tmp_path / "a" / "hey_kit.kwsq")
    kwsint.save(spec, tmp_path / "b" / "hey_kit.kwsq")
    refs = [str(tmp_path / "a" / "hey_kit.kwsq"), str(tmp_path / "b" / "hey_kit.kwsq")]

    async def go():
        for refs_, want in [(["default:M4", refs[0]], [("M4", "hey lumen"), ("hey_kit", "hey_kit")]),
                            (refs, [(refs[0], refs[0]), (refs[1], "hey lumen")])]:  # one stem twice: whole paths
            async with serving(WakeWordService(load_wake_words(refs_))) as port:
                async with AsyncTcpClient("127.0.0.1", port) as client:
                    await client.write_event(Describe().event())
                    info = Info.from_event(await _read(client))
            [program] = info.wake
            assert program.name == "kwsint" and program.installed and program.version == kwsint.__version__
            assert [(m.name, m.phrase) for m in program.models] == want
            assert [m.description for m in program.models] == [phrase for _, phrase in want]

    asyncio.run(go())


@pytest.mark.parametrize("audio_format", [MODEL_RATE, (16000, 4, 1)], ids=["16k-16bit-mono", "16k-32bit-mono"])
def test_detections_at_kwsint_runs_times(wake_words, capsys, audio_format, tmp_path):
    """The positive sample twice in one stream: a detection event for each, at kwsint-run's times in ms on the
    same audio. 32-bit samples convert back to 16-bit without loss: the same detections exactly."""
    want = _kwsint_run_ms(capsys, write_wav(tmp_path / "twice.wav", np.frombuffer(POSITIVE * 2, "<i2")))
    assert len(want) == 2

    async def go():
        async with serving(WakeWordService(wake_words)) as port:
            return await _detect(port, _convert(POSITIVE * 2, audio_format), audio_format, names=["M4"])

    assert _detections(asyncio.run(go())) == [("M4", t) for t in want]


@pytest.mark.parametrize("audio_format", [(48000, 4, 2), (22050, 2, 1), (8000, 1, 1)])
def test_converted_audio_detects_where_kwsint_run_does_on_it(wake_words, capsys, audio_format, tmp_path):
    """Other rates, widths and channels: the service converts them back (the package's linear ratecv), and detects
    exactly where kwsint-run does on the audio converted there and back. (On the original the detection can move:
    8 kHz 8-bit audio moved it two steps with M4.)"""
    there = AudioChunkConverter(*audio_format).convert(AudioChunk(*MODEL_RATE, POSITIVE))
    back = np.frombuffer(AudioChunkConverter(*MODEL_RATE).convert(there).audio, "<i2")
    want = _kwsint_run_ms(capsys, write_wav(tmp_path / "back.wav", back))

    async def go():
        async with serving(WakeWordService(wake_words)) as port:
            return await _detect(port, there.audio, audio_format, names=["M4"])

    assert _detections(asyncio.run(go())) == [("M4", t) for t in want] and len(want) == 1


def test_speech_gives_not_detected(wake_words, capsys):
    assert _kwsint_run_ms(capsys, "negative_1.wav") == []

    async def go():
        async with serving(WakeWordService(wake_words)) as port:
            return await _detect(port, NEGATIVE)

    assert [e.type for e in asyncio.run(go())] == ["not-detected"]


def test_detect_selects_models_by_name(wake_words):
    async def go():
        async with serving(WakeWordService(wake_words)) as port:
            return [sorted({name for name, _ in _detections(await _detect(port, POSITIVE, names=names))})
                    for names in (["M2"], ["M4"], None, [])]

    assert asyncio.run(go()) == [["M2"], ["M4"], ["M2", "M4"], ["M2", "M4"]]


def test_several_clients_at_once_each_get_their_own_answer(wake_words, capsys):
    [want] = _kwsint_run_ms(capsys, "positive_1.wav")
    clips = [POSITIVE, NEGATIVE, POSITIVE, NEGATIVE, POSITIVE, NEGATIVE]

    async def go():
        async with serving(WakeWordService(wake_words)) as port:
            return await asyncio.gather(*(_detect(port, pcm, names=["M4"], chunk_frames=512) for pcm in clips))

    answers = asyncio.run(go())
    assert [_detections(a) for a in answers] == [[("M4", want)], [], [("M4", want)], [], [("M4", want)], []]
    assert [a[-1].type for a in answers[1::2]] == ["not-detected"] * 3


def test_a_stream_restarts_at_audio_start_and_ping_is_answered(wake_words, capsys):
    [want] = _kwsint_run_ms(capsys, "positive_1.wav")

    async def go():
        async with serving(WakeWordService(wake_words)) as port:
            async with AsyncTcpClient("127.0.0.1", port) as client:
                await client.write_event(Detect(names=["M4"]).event())
                await client.write_event(AudioStart(*MODEL_RATE).event())
                await client.write_event(AudioChunk(*MODEL_RATE, NEGATIVE[:32000]).event())
                await client.write_event(AudioStart(*MODEL_RATE).event())  # a new stream: times from 0 again
                await client.write_event(AudioChunk(*MODEL_RATE, POSITIVE).event())
                await client.write_event(AudioStop().event())
                await client.write_event(Ping(text="hello").event())
                return [await _read(client) for _ in range(2)]

    detection, pong = asyncio.run(go())
    assert (detection.type, detection.data["timestamp"]) == ("detection", want)
    assert (pong.type, pong.data["text"]) == ("pong", "hello")


# --- microWakeWord models ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def micro(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    """okay_nabu.tflite as pymicro-wakeword ships it (okay_nabu.json beside it), and espeak-ng clips."""
    pymicro_wakeword = pytest.importorskip("pymicro_wakeword")
    folder = speech_folder(tmp_path_factory)
    return (Path(pymicro_wakeword.__file__).parent / "models" / "okay_nabu.tflite",
            {name: phrase_wav(folder, name) for name in ("okay_nabu", "other")})


def test_a_microwakeword_model_is_served_beside_a_window_model(micro, capsys):
    """okay_nabu.tflite and M4 in one service: "okay nabu" gives okay_nabu's detection at kwsint-run's time,
    other speech gives none."""
    tflite, clips = micro
    [want] = _kwsint_run_ms(capsys, clips["okay_nabu"], tflite)
    service = WakeWordService(load_wake_words([str(tflite), "default:M4"]))

    async def go():
        async with serving(service) as port:
            async with AsyncTcpClient("127.0.0.1", port) as client:
                await client.write_event(Describe().event())
                info = Info.from_event(await _read(client))
            return info, [await _detect(port, _pcm(clips[name])) for name in ("okay_nabu", "other")]

    info, (nabu, other) = asyncio.run(go())
    [nabu_model, m4] = info.wake[0].models
    assert (nabu_model.name, nabu_model.phrase, m4.name) == ("okay_nabu", "Okay Nabu", "M4")
    assert "en" in nabu_model.languages  # okay_nabu.json's trained_languages
    assert _detections(nabu) == [("okay_nabu", want)]
    assert [e.type for e in other] == ["not-detected"]


def test_options_a_microwakeword_model_cannot_take_are_one_line(micro, capsys, tmp_path, monkeypatch):
    tflite, _ = micro
    code, err = _cli(capsys, "--model", tflite, "--lockout", "1")
    assert code == 2 and err == ("kwsint-wyoming: error: lockout_s: expected none: it applies to window models "
                                 "only, and the models served (okay_nabu) detect by ESPHome's rule (a probability "
                                 "cutoff over a sliding window of outputs)\n")
    code, err = _cli(capsys, "--model", tflite, "--model", "default:M4", "--threshold", "1.5")
    assert code == 2 and err == ("kwsint-wyoming: error: okay_nabu: threshold: expected a probability cutoff in "
                                 "[0, 1], got 1.5\n")
    bare = tmp_path / "bare.kwsq"  # imported without its settings
    bare.write_bytes(write_blob(read_tflite(tflite)))
    code, err = _cli(capsys, "--model", bare)
    assert code == 2 and err.startswith("kwsint-wyoming: error: bare: metadata.probability_cutoff: expected ")
    assert err.count("\n") == 1
    monkeypatch.setitem(sys.modules, "pymicro_features", None)  # as if the extra were not installed
    assert _cli(capsys, "--model", tflite) == (1, "kwsint-wyoming: error: needs pymicro-features: pip install "
                                                  "'kwsint[microfrontend]'\n")


def test_smoothing_and_lockout_apply_to_the_window_models_beside_a_microwakeword_model(micro):
    tflite, _ = micro
    graph, m4 = load_wake_words([str(tflite), "default:M4"])
    service = WakeWordService([graph, m4], threshold=0.9, smoothing_s=0.5, lockout_s=3)
    want = m4.model.detector(threshold=0.9, smoothing_s=0.5, lockout_s=3)
    got, default = service.listener(m4).detector, m4.model.detector()
    assert (want.smoothing_steps, want.lockout_steps) != (default.smoothing_steps, default.lockout_steps)
    assert (got.smoothing_steps, got.lockout_steps, got.threshold_q16) == (want.smoothing_steps,
                                                                           want.lockout_steps, want.threshold_q16)
    assert service.listener(graph).settings.probability_cutoff == 0.9  # the threshold replaces the cutoff


# --- a client's mistakes -----------------------------------------------------------------------------------


def _event_bytes(*events: Event) -> bytes:
    """Events as the wyoming package frames them."""
    out = []
    for event in events:
        header = {"type": event.type}
        data = json.dumps(event.data).encode() if event.data else b""
        if data:
            header["data_length"] = len(data)
        if event.payload:
            header["payload_length"] = len(event.payload)
        out.append(json.dumps(header).encode() + b"\n" + data + (event.payload or b""))
    return b"".join(out)


START = _event_bytes(AudioStart(*MODEL_RATE).event())
CHUNK = _event_bytes(AudioChunk(*MODEL_RATE, bytes(640)).event())

# (what a client sends, the error code it gets); the service closes the connection after it.
MISTAKES = {
    "not-json": (b"{type: describe}\n", "malformed-event"),
    "not-an-object": (b'["describe"]\n', "malformed-event"),
    "no-type": (b'{"data": {}}\n', "malformed-event"),
    "type-not-a-string": (b'{"type": 7}\n', "malformed-event"),
    "data-not-an-object": (b'{"type": "detect", "data": [1]}\n', "malformed-event"),
    "data-length-a-string": (b'{"type": "describe", "data_length": "2"}\n{}', "malformed-event"),
    "negative-payload-length": (b'{"type": "audio-chunk", "payload_length": -1}\n', "malformed-event"),
    "data-not-json": (b'{"type": "detect", "data_length": 3}\nabc', "malformed-event"),
    "data-nested-too-deeply": (b'{"type": "detect", "data_length": 60000}\n' + b"[" * 60000, "malformed-event"),
    # Refused from the header, before the service waits for (and buffers) what it declares:
    "data-too-large": (b'{"type": "detect", "data_length": %d}\n' % (MAX_DATA_BYTES + 1), "too-large"),
    "payload-too-large": (b'{"type": "audio-chunk", "payload_length": %d}\n' % (MAX_PAYLOAD_BYTES + 1), "too-large"),
    "payload-of-a-terabyte": (b'{"type": "audio-chunk", "payload_length": %d}\n' % 2**40, "too-large"),
    "header-line-too-long": (b'{"type": "' + b"x" * MAX_HEADER_BYTES + b'"}\n', "too-large"),
    "chunk-before-start": (CHUNK, "unexpected-event"),
    "stop-before-start": (_event_bytes(AudioStop().event()), "unexpected-event"),
    "detect-inside-a-stream": (START + _event_bytes(Detect().event()), "unexpected-event"),
    "unknown-model": (_event_bytes(Detect(names=["M4", "hey_jarvis"]).event()), "unknown-model"),
    "names-not-strings": (_event_bytes(Event("detect", {"names": [4]})), "malformed-event"),
    "unknown-program": (_event_bytes(Event("select-program", {"name": "openwakeword"})), "unknown-program"),
    "rate-zero": (_event_bytes(Event("audio-start", {"rate": 0, "width": 2, "channels": 1})), "unsupported-audio"),
    "rate-a-string": (_event_bytes(Event("audio-start", {"rate": "16000", "width": 2, "channels": 1})),
                      "unsupported-audio"),
    "width-5": (_event_bytes(AudioStart(16000, 5, 1).event()), "unsupported-audio"),
    "six-channels": (_event_bytes(AudioStart(16000, 2, 6).event()), "unsupported-audio"),
    "no-format": (_event_bytes(Event("audio-start", {"timestamp": 0})), "unsupported-audio"),
    "chunk-in-another-format": (START + _event_bytes(AudioChunk(48000, 2, 1, bytes(640)).event()),
                                "unsupported-audio"),
    "half-a-sample": (START + _event_bytes(AudioChunk(*MODEL_RATE, bytes(641)).event()), "malformed-event"),
}


async def _exchange(port: int, raw: bytes, *, fence: bool) -> tuple[list[Event], bool]:
    """Send raw bytes (then, with ``fence``, a ping); the events that come back, up to the pong or the end of the
    connection, and whether it ended."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw + (_event_bytes(Ping().event()) if fence else b""))
        await writer.drain()
        events = []
        while True:
            event = await asyncio.wait_for(async_read_event(reader), READ_TIMEOUT_S)
            if event is None or event.type == "pong":
                return events, event is None
            events.append(event)
    finally:
        writer.close()


async def _still_serving(port: int) -> None:
    """The next client is served whole: a describe, and a detection on the positive sample."""
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Describe().event())
        assert (await _read(client)).type == "info"
    assert [name for name, _ in _detections(await _detect(port, POSITIVE, names=["M4"]))] == ["M4"]


@pytest.mark.parametrize("name", MISTAKES)
def test_a_clients_mistake_gets_one_error_and_a_closed_connection(wake_words, name):
    raw, code = MISTAKES[name]

    async def go():
        async with serving(WakeWordService(wake_words)) as port:
            events, closed = await _exchange(port, raw, fence=False)
            await _still_serving(port)
            return events, closed

    events, closed = asyncio.run(go())
    assert closed and [(e.type, e.data["code"]) for e in events] == [("error", code)], events
    assert events[0].data["text"] and len(events[0].data["text"]) < 400


def test_an_unknown_event_type_gets_an_error_and_the_connection_goes_on(wake_words):
    async def go():
        async with serving(WakeWordService(wake_words)) as port:
            raw = _event_bytes(Event("transcribe", {"language": "en"}), Describe().event())
            return await _exchange(port, raw, fence=True)

    events, closed = asyncio.run(go())
    assert not closed and [e.type for e in events] == ["error", "info"]
    assert events[0].data == {"text": "unknown event type 'transcribe': dropped", "code": "unknown-event"}


def test_older_clients_data_in_the_header_and_our_program_selected_are_accepted(wake_words):
    async def go():
        async with serving(WakeWordService(wake_words)) as port:
            raw = (b'{"type": "select-program", "data": {"name": "kwsint"}}\n'
                   b'{"type": "detect", "data": {"names": ["M2"]}}\n' + START
                   + _event_bytes(AudioChunk(*MODEL_RATE, POSITIVE).event(), AudioStop().event()))
            return await _exchange(port, raw, fence=True)

    events, closed = asyncio.run(go())
    assert not closed and [(e.type, e.data["name"]) for e in events] == [("detection", "M2")]


# --- clients that vanish; what a connection leaves behind ------------------------------------------------------


async def _wait_until_freed(service: WakeWordService, handlers: weakref.WeakSet) -> None:
    """Until every connection has ended and its handler (its listeners, its stream) is garbage."""
    for _ in range(1000):
        gc.collect()
        if service.connections == 0 and not handlers:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{service.connections} connections still counted, {len(handlers)} handlers alive")


VANISHING = {
    "mid-stream": START + CHUNK * 5,
    "mid-payload": START + b'{"type": "audio-chunk", "data_length": 44, "payload_length": 2048}\n'
                   + json.dumps({"rate": 16000, "width": 2, "channels": 1}).encode().ljust(44) + bytes(100),
    "mid-data": b'{"type": "detect", "data_length": 500}\n{"names": [',
    "mid-header": b'{"type": "audio-st',
}


@pytest.mark.parametrize("how", ["close", "reset"])
def test_clients_that_vanish_leave_nothing_behind(wake_words, how):
    async def go():
        service, handlers = WakeWordService(wake_words), weakref.WeakSet()
        async with serving(service, handlers) as port:
            for raw in VANISHING.values():
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(raw)
                await writer.drain()
                await asyncio.sleep(0.05)  # the service reads what was sent before the client vanishes
                if how == "reset":
                    writer.transport.abort()  # RST: the service's next read or write fails
                else:
                    writer.close()
            await _wait_until_freed(service, handlers)
            await _still_serving(port)
            await _wait_until_freed(service, handlers)

    asyncio.run(go())


def test_connections_past_max_clients_are_refused_until_one_ends(wake_words):
    async def go():
        service, handlers = WakeWordService(wake_words, max_clients=1), weakref.WeakSet()
        async with serving(service, handlers) as port:
            async with AsyncTcpClient("127.0.0.1", port) as first:
                assert await _until_pong(first) == []  # served: counted
                refused, closed = await _exchange(port, b"", fence=False)
                assert closed and [(e.type, e.data["code"]) for e in refused] == [("error", "busy")]
                assert await _until_pong(first) == []  # the first goes on
            await _wait_until_freed(service, handlers)
            await _still_serving(port)

    asyncio.run(go())


def test_a_silent_connection_is_closed_and_frees_its_slot(wake_words):
    """With one slot and a short idle timeout: a client that connects and says nothing gets a timeout error and
    is closed, a client that keeps talking is not, and the slot serves the next client."""
    async def go():
        service, handlers = WakeWordService(wake_words, max_clients=1, idle_timeout_s=0.5), weakref.WeakSet()
        async with serving(service, handlers) as port:
            async with AsyncTcpClient("127.0.0.1", port) as talking:
                for _ in range(4):  # 1.2 s in all, never 0.5 s quiet
                    await asyncio.sleep(0.3)
                    assert await _until_pong(talking) == []
            await _wait_until_freed(service, handlers)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                first = await asyncio.wait_for(async_read_event(reader), READ_TIMEOUT_S)
                closed = await asyncio.wait_for(async_read_event(reader), READ_TIMEOUT_S)
            finally:
                writer.close()
            await _wait_until_freed(service, handlers)
            await _still_serving(port)
            return first, closed

    first, closed = asyncio.run(go())
    assert (first.type, first.data["code"], first.data["text"]) == ("error", "timeout", "nothing received for 0.5 s")
    assert closed is None


def test_service_options_are_checked_up_front(wake_words):
    with pytest.raises(ValueError, match="threshold"):
        WakeWordService(wake_words, threshold=1.5)
    with pytest.raises(ValueError, match="two models with one name"):
        WakeWordService([wake_words[0], wake_words[0]])
    with pytest.raises(ValueError, match="max_clients: expected >= 1, got 0"):
        WakeWordService(wake_words, max_clients=0)
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="idle_timeout_s: expected a number of seconds > 0"):
            WakeWordService(wake_words, idle_timeout_s=bad)


# --- the command ----------------------------------------------------------------------------------------------------


def _cli(capsys, *argv) -> tuple[int, str]:
    capsys.readouterr()
    code = cli.main([str(a) for a in argv])
    return code, capsys.readouterr().err


def test_the_default_is_this_machine_only():
    assert cli._parser().parse_args([]).uri == cli.DEFAULT_URI
    srv = server(cli.DEFAULT_URI)
    assert (srv.host, srv.port) == ("127.0.0.1", 10400)


@pytest.mark.parametrize("argv, message", [
    (["--uri", "stdio://"], "uri: expected tcp://HOST:PORT or unix://PATH, got stdio://"),
    (["--uri", "tcp://127.0.0.1"], "uri: expected tcp://HOST:PORT or unix://PATH, got tcp://127.0.0.1"),
    (["--model", "missing.kwsq"], "missing.kwsq"),
    (["--model", "default:M9"], "default:M9: no such shipped model"),
    (["--threshold", "1.5"], "threshold"),
    (["--smoothing", "-1"], "smoothing"),
    (["--max-clients", "0"], "max_clients: expected >= 1, got 0"),
    (["--idle-timeout", "0"], "idle_timeout_s: expected a number of seconds > 0, got 0.0"),
])
def test_bad_arguments_are_one_line(capsys, argv, message):
    code, err = _cli(capsys, *argv)
    assert code == 2 and err.startswith("kwsint-wyoming: error: ") and message in err and err.count("\n") == 1, err


def test_ctrl_c_ends_it_in_one_line(capsys, monkeypatch):
    def interrupt(coroutine):
        coroutine.close()
        raise KeyboardInterrupt

    monkeypatch.setattr(cli.asyncio, "run", interrupt)
    assert _cli(capsys, "--uri", "tcp://127.0.0.1:1") == (130, "kwsint-wyoming: interrupted\n")


def test_a_unix_uri_never_replaces_a_file_that_is_not_a_socket(tmp_path, capsys):
    precious = tmp_path / "notes.txt"
    precious.write_text("keep me")
    with pytest.raises(ValueError, match="an existing file that is not a socket"):
        server(f"unix://{precious}")
    code, err = _cli(capsys, "--uri", f"unix://{precious}")
    assert code == 2 and "an existing file that is not a socket" in err and precious.read_text() == "keep me"


def test_without_the_wyoming_package_it_says_what_to_install(capsys, monkeypatch):
    for name in [m for m in sys.modules if m == "wyoming" or m.startswith("wyoming.")]:
        monkeypatch.setitem(sys.modules, name, None)  # importing it raises ImportError
    monkeypatch.delitem(sys.modules, "kwsint.interop.wyoming_service")
    monkeypatch.delattr(kwsint.interop, "wyoming_service")
    code, err = _cli(capsys, "--threshold", "5")  # a service that did start would refuse it (2), not serve
    assert (code, err) == (1, "kwsint-wyoming: error: needs the wyoming package: pip install 'kwsint[wyoming]'\n")


def test_the_command_serves_until_sigterm(tmp_path):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "kwsint.cli.wyoming", "--uri", f"tcp://127.0.0.1:{port}",
                             "--model", "default:M4"], stderr=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[2])
    try:
        lines = iter(proc.stderr.readline, "")  # up to the line that says it listens (or the end: it failed)
        line = next((line for line in lines if line.startswith("kwsint-wyoming: ")), "")
        assert line == f"kwsint-wyoming: serving M4 ('hey lumen') on tcp://127.0.0.1:{port}\n", line

        async def go():
            async with AsyncTcpClient("127.0.0.1", port) as client:
                await client.write_event(Describe().event())
                return Info.from_event(await _read(client))

        assert [m.name for m in asyncio.run(go()).wake[0].models] == ["M4"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()
