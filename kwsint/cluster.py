"""Work on a Dask cluster (``dask.distributed``): connecting to one, a model sent once to each worker, and a long
stream split into pieces of frames that run apart and together give exactly what one process gives.

A piece owns the steps whose newest frame lies in its frames. It reads the frames before them that those steps
need besides: the window before its first step, and the steps before it that the moving average spans, so its
smoothed posteriors are the stream's. What carries further (the lockout after a detection, a DET sweep) is
done where the pieces are gathered, in stream order.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .io.urls import INSTALL  # the extra that brings dask.distributed and fsspec

if TYPE_CHECKING:
    from distributed import Client, Future

LOCAL_PREFIX = "local:"
CONNECT_TIMEOUT_S = 10.0
DEFAULT_PIECE_S = 600.0
"""Seconds of a stream in one piece by default: 60,000 frames of 10 ms, a few seconds of work."""


def connect(scheduler: str) -> Client:
    """A client of ``scheduler``: ``tcp://HOST:PORT`` (a running ``dask scheduler``), or ``local:N``, a
    LocalCluster of N single-threaded worker processes on this machine that closes with the client.

    Raises ValueError for a malformed address (``local_workers``) or a missing dask.distributed,
    ConnectionError naming the address when no scheduler answers there within CONNECT_TIMEOUT_S.
    """
    # Dask's own log lines would sit among kwsint's: a worker lost, or a scheduler closing while Ctrl-C stops
    # the work, prints tracebacks at ERROR and CRITICAL. What matters reaches kwsint as an exception of a task.
    # Set before distributed loads, so that the worker processes started here inherit it (DASK_LOGGING__... is
    # dask's config in the environment; a user's own value wins).
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "critical")
    try:
        import distributed
    except ImportError:
        raise ValueError(f"--scheduler: needs dask.distributed: {INSTALL}") from None
    for name in ("distributed", "tornado", "tornado.application", "bokeh"):
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)
    local = local_workers(scheduler)
    if local is not None:
        # The worker processes start with SIGINT ignored (they inherit it): a terminal's Ctrl-C reaches the whole
        # process group, and this process, not each worker, stops the work and then the cluster.
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
        try:
            workers = distributed.LocalCluster(n_workers=local, threads_per_worker=1, processes=True,
                                               dashboard_address=":0")  # any free port: 8787 may be taken
        finally:
            if main:
                signal.signal(signal.SIGINT, previous)
        return distributed.Client(workers, set_as_default=False)
    try:
        return distributed.Client(scheduler, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError) as e:
        raise ConnectionError(f"--scheduler: cannot reach a scheduler at {scheduler} within "
                              f"{CONNECT_TIMEOUT_S:g} s: {e}") from None


def model_bytes(ref: str) -> bytes:
    """The bytes of a model file: a path, or ``default:NAME`` for a shipped one."""
    from .default_model import SHIPPED_PREFIX, model_path

    return (model_path(ref) if ref.startswith(SHIPPED_PREFIX) else Path(ref)).read_bytes()


def disconnect(workers: Workers) -> None:
    """Closes the bar, the client, and the LocalCluster ``connect`` started for it."""
    if workers.bar is not None:
        workers.bar.close()
    workers.client.close()
    if workers.client.cluster is not None:
        workers.client.cluster.close()


def local_workers(scheduler: str) -> int | None:
    """N of ``local:N``, None for the address of a running scheduler; ValueError for neither."""
    if scheduler.startswith(LOCAL_PREFIX):
        n = scheduler[len(LOCAL_PREFIX):]
        if not n.isdigit() or int(n) < 1:
            raise ValueError(f"--scheduler: expected local:N with N >= 1 worker processes, got {scheduler!r}")
        return int(n)
    if "://" not in scheduler:
        raise ValueError(f"--scheduler: expected tcp://HOST:PORT or local:N, got {scheduler!r}")
    return None


@dataclass(frozen=True)
class SentModel:
    """A model's bytes, sent once to every worker (``send_model``); tasks take ``data`` as an argument, which
    the worker already holds, and ``worker_model`` loads it once per worker process."""

    key: str  # sha256 of the bytes
    data: Future
    backend: str | None


def send_model(client: Client, data: bytes, backend: str | None) -> SentModel:
    """Scatters ``data`` (a model file's bytes) to every worker, once."""
    key = hashlib.sha256(data).hexdigest()
    return SentModel(key, client.scatter(data, broadcast=True, hash=False), backend)


_loaded: dict[tuple, Any] = {}
_loading = threading.Lock()


def worker_model(key: str, data: bytes, backend: str | None, load: Callable[[bytes, str | None], Any]) -> Any:
    """On a worker: ``load(data, backend)``, once per process for each (key, backend, load)."""
    cache_key = (key, backend, load.__module__, load.__qualname__)
    with _loading:
        if cache_key not in _loaded:
            _loaded[cache_key] = load(data, backend)
        return _loaded[cache_key]


@dataclass(frozen=True)
class Piece:
    """Frames ``start .. stop - 1`` of a stream, and the steps whose newest frame lies there."""

    start: int
    stop: int

    def steps(self, window: int, hop: int) -> tuple[int, int]:
        """(first, end): the indices in the stream of this piece's steps, ``first .. end - 1``; a step's
        newest frame is ``window - 1 + step * hop``."""
        first, end = (max(0, -(-(f - (window - 1)) // hop)) for f in (self.start, self.stop))
        return first, max(first, end)


def split(frames: int, piece_frames: int) -> list[Piece]:
    """Pieces of ``piece_frames`` (>= 1) covering frames 0 .. frames - 1; one empty piece for no frames."""
    if piece_frames < 1:
        raise ValueError(f"piece_frames: expected >= 1, got {piece_frames}")
    return [Piece(s, min(s + piece_frames, frames)) for s in range(0, frames, piece_frames)] or [Piece(0, 0)]


@dataclass(frozen=True)
class Workers:
    """A cluster's workers as a command uses them: its client (``connect``), the frames of a piece when a long
    stream is split, and the bar that counts the hours of audio done (None: no bar)."""

    client: Client
    piece_frames: int
    bar: HoursBar | None = None

    def count(self, future: Future, hours: float) -> None:
        """Counts ``hours`` in the bar once ``future`` is done."""
        if self.bar is not None:
            self.bar.add(hours)
            future.add_done_callback(lambda _: self.bar.done(hours))


class HoursBar:
    """A progress bar of hours of audio done and their rate, updated from any thread (future callbacks).
    ``disable``: no bar; None: a bar only where stderr is a terminal (tqdm's rule)."""

    def __init__(self, disable: bool | None):
        from tqdm import tqdm

        self._lock = threading.Lock()
        self._bar = tqdm(total=0.0, unit="h", disable=disable, dynamic_ncols=True,
                         bar_format="{l_bar}{bar}| {n:.2f}/{total:.2f} h of audio [{elapsed}<{remaining}, "
                                    "{rate_noinv_fmt} of audio]")

    def add(self, hours: float) -> None:
        """More hours to do."""
        with self._lock:
            self._bar.total += hours
            self._bar.refresh()

    def done(self, hours: float) -> None:
        with self._lock:
            self._bar.update(hours)

    def close(self) -> None:
        self._bar.close()


class WorkersLost(RuntimeError):
    """A task that every worker it ran on died running (Dask's ``allowed-failures``, 3 by default)."""


def result(future: Future) -> Any:
    """The task's result; WorkersLost, in one line, if the workers running it kept dying."""
    from distributed import KilledWorker

    try:
        return future.result()
    except KilledWorker as e:
        raise WorkersLost(f"the workers running it died, one after another ({e})") from None
