"""Coverage-guided fuzzing of the Wyoming wake word service: ``kwsint.interop.wyoming_service``.

Each input is what one client sends on one connection before it closes it: the
bytes go, then the end of the stream, to a ``WakeWordHandler`` of a service that
offers two models (default:M4 and default:M2), over an in-memory reader and a
writer that records what the handler writes. Then:

* the handler has ended without raising (a client's mistake is an ``error``
  event, never an exception), closed the connection and stopped counting it,
  and is freed: nothing of the connection outlives it;
* what it wrote parses whole as Wyoming events (the ``wyoming`` package's own
  reader), each an info, pong, detection, not-detected or error; a detection
  names a served model at a timestamp >= 0 ms;
* no error is an internal one, and an error that ends the connection (any but
  ``unknown-event``) is the last event written.

Run (atheris, libFuzzer flags; new inputs go to the first corpus folder)::

    python tests/fuzz/fuzz_wyoming.py -max_total_time=300 -rss_limit_mb=2048 -timeout=10 \\
        /tmp/wyoming-corpus tests/fuzz/corpus/wyoming

``check(data)`` is the target; tests/test_fuzz.py replays the checked-in
corpus and tests/fuzz/regressions/wyoming through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import shlex
import sys
import weakref


def _instrumented():
    """Python coverage of kwsint guides the fuzzer when run as a script; a plain import is not instrumented."""
    if __name__ != "__main__":
        return contextlib.nullcontext()
    import atheris

    return atheris.instrument_imports(include=["kwsint"])


with _instrumented():
    from wyoming.event import Event, async_read_event

    from kwsint.interop.wyoming_service import MAX_HEADER_BYTES, WakeWordService, load_wake_words

SERVICE = WakeWordService(load_wake_words(["default:M4", "default:M2"]))
REPLY_TYPES = {"info", "pong", "detection", "not-detected", "error"}
_LOOP = asyncio.new_event_loop()  # one for every input: a loop per input would cost more than most inputs


class Recorder:
    """A connection's writer (the part of ``asyncio.StreamWriter`` a handler uses) that keeps what is written."""

    def __init__(self):
        self.data = bytearray()
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "written after the connection was closed"
        self.data += data

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    async def drain(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default=None):
        return default


async def _serve(data: bytes) -> tuple[Recorder, weakref.ref]:
    reader = asyncio.StreamReader(limit=MAX_HEADER_BYTES)  # as asyncio's servers make it
    reader.feed_data(data)
    reader.feed_eof()
    writer = Recorder()
    handler = SERVICE.handler(reader, writer)  # type: ignore[arg-type]
    await handler.run()
    return writer, weakref.ref(handler)


async def _parse(data: bytes) -> list[Event]:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    events = []
    while (event := await async_read_event(reader)) is not None:
        events.append(event)
    assert reader.at_eof(), f"the replies do not parse whole: {bytes(data[:300])!r}"
    return events


def replies(data: bytes) -> list[Event]:
    """What the service answers a client that sends ``data`` and closes the connection, checked as the module
    docstring says."""
    writer, handler = _LOOP.run_until_complete(_serve(data))
    if handler() is not None:  # a reference cycle (an exception's traceback) is freed by the collector
        gc.collect()
    assert handler() is None, "the connection's handler outlives it"
    assert writer.closed and SERVICE.connections == 0, (writer.closed, SERVICE.connections)
    events = _LOOP.run_until_complete(_parse(bytes(writer.data)))
    for i, event in enumerate(events):
        assert event.type in REPLY_TYPES, event
        if event.type == "error":
            assert event.data.get("code") != "internal-error", event
            assert event.data.get("code") == "unknown-event" or i == len(events) - 1, events
        if event.type == "detection":
            assert event.data["name"] in SERVICE.wake_words and event.data["timestamp"] >= 0, event
    return events


def check(data: bytes) -> None:
    """The fuzz target: raises AssertionError (or any exception) on a bug."""
    replies(bytes(data))


def main(argv: list[str]) -> None:
    import atheris

    # libFuzzer runs argv[0] through the shell for -merge=1 and -minimize_crash=1: make it this interpreter and
    # this script (the script itself is not executable).
    command = f"{shlex.quote(sys.executable)} {shlex.quote(os.path.abspath(__file__))}"
    atheris.Setup([command, *argv[1:]], check)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
