"""Data-parallel training on the CPU: ``train`` in N worker processes, one per core, joined by
``torch.distributed``'s gloo backend on 127.0.0.1.

``train_parallel`` spawns the workers (each with one torch thread unless told
otherwise), hands them the model, the windows (in shared memory, not one copy
each) and the options, and waits. Worker 0 writes the checkpoints and reports
its progress and, at the end, the history through a pipe; the others only
compute (``train``'s module docstring: how a step is shared). The parent holds
the rendezvous (a TCPStore on a port the system picks), so no port is guessed.

A worker that raises or dies ends the run: the others are stopped and
``WorkerError`` (or the ValueError or OSError the worker raised) says what
happened, in one line. An interrupt (Ctrl-C) stops them too: the workers ignore
SIGINT, and the parent ends them before the KeyboardInterrupt goes on.
Checkpoints are written atomically, worker 0 is stopped by SIGTERM (which
removes a checkpoint it was writing) and a checkpoint is written only while
every worker holds the same model.
"""

from __future__ import annotations

import datetime
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import wait

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ...errors import FormatError
from .conv import ConvNet
from .model import KWSNet
from .train import PeerLost, TrainOptions, check_resume, first_line, train

#: Seconds worker 0 is given to end after SIGTERM (removing a checkpoint it was writing) before it is killed.
GRACE_S = 5.0
#: Seconds between worker 0's progress reports.
REPORT_S = 0.1
#: Seconds the parent waits, once a worker has failed, for the others' reports (to name the first cause).
SETTLE_S = 1.0
# How long a collective waits for a peer: as long as worker 0 may take to validate or write a checkpoint. A worker
# that stops is noticed by its process ending, not by this.
_TIMEOUT = datetime.timedelta(hours=6)


class WorkerError(RuntimeError):
    """A worker of a data-parallel run failed: which, and why, in one line."""


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system says, else the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _shared(a) -> torch.Tensor:
    """A copy of an array or tensor in shared memory: the workers map it instead of each receiving a copy."""
    t = torch.as_tensor(a)
    s = torch.empty_like(t, memory_format=torch.contiguous_format).share_memory_()
    s.copy_(t)
    return s


def _own(x):
    """``x`` with each tensor copied out of shared memory (an optimizer state the worker updates in place)."""
    if isinstance(x, torch.Tensor):
        return x.clone()
    if isinstance(x, dict):
        return {k: _own(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_own(v) for v in x)
    return x


def train_parallel(
    model: KWSNet | ConvNet,
    features: np.ndarray,
    labels: np.ndarray,
    options: TrainOptions,
    *,
    out: str | os.PathLike,
    nproc: int,
    val: tuple[np.ndarray, np.ndarray] | None = None,
    resume: dict | None = None,
    progress: Callable[[int, int], object] | None = None,
    threads: int | None = None,
) -> list[dict]:
    """``train`` (same arguments) in ``nproc`` >= 2 worker processes of ``threads`` torch threads each (default 1).

    ``model`` is not changed: the trained model is the checkpoint at ``out``. Returns worker 0's history.

    Raises:
        ValueError: bad arguments (a batch smaller than ``nproc``, a ``resume`` of another run), or what a
            worker raised as ValueError (a problem with the data or the model); likewise FormatError, OSError.
        WorkerError: a worker died, or raised anything else.
    """
    if nproc < 2:
        raise ValueError(f"train_parallel: expected nproc >= 2 (one process: train), got {nproc}")
    if options.batch_size < nproc:
        raise ValueError(f"--batch-size {options.batch_size} is smaller than --nproc {nproc}: every worker needs "
                         "a share of each batch")
    if len(labels) == 0:
        raise ValueError("no training windows")
    if resume is not None:
        check_resume(resume, options, nproc)
    payload = {
        "arch": model.arch, "config": model.config, "stage": model.stage,
        "state": {k: _shared(v) for k, v in model.state_dict().items()},
        "features": _shared(np.ascontiguousarray(features, dtype=np.float32)),
        "labels": _shared(np.ascontiguousarray(labels, dtype=np.int64)),
        "val": None if val is None else tuple(_shared(np.ascontiguousarray(a)) for a in val),
        "options": options, "resume": resume, "out": str(out), "threads": threads or 1,
    }
    store = dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False, timeout=_TIMEOUT)
    bar = progress(options.steps, int(resume["step"]) if resume else 0) if progress else None
    procs, conns = [], []
    try:
        _start(procs, conns, nproc, store.port, payload)
        return _supervise(procs, conns, bar, nproc, int(resume["step"]) if resume else 0)
    finally:
        _stop(procs)
        for c in conns:
            c.close()
        if bar is not None:
            bar.close()


def _start(procs: list, conns: list, nproc: int, port: int, payload: dict) -> None:
    """Spawn the workers, SIGINT ignored from their first instruction (they inherit it: Ctrl-C is the parent's)."""
    ctx = mp.get_context("spawn")
    main = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        for rank in range(nproc):
            r, w = ctx.Pipe(duplex=False)
            conns.append(r)
            p = ctx.Process(target=_worker, args=(rank, nproc, port, payload, w, os.getpid()),
                            name=f"kwsint-train-{rank}", daemon=True)
            p.start()
            procs.append(p)
            w.close()
    finally:
        if main:
            signal.signal(signal.SIGINT, old)


def _supervise(procs: list, conns: list, bar, nproc: int, step: int) -> list[dict]:
    """Relay worker 0's progress to ``bar`` until every worker has ended; on the first failure, give the others
    SETTLE_S to report theirs, then raise the first cause."""
    readers = {c: rank for rank, c in enumerate(conns)}
    running = {p.sentinel: rank for rank, p in enumerate(procs)}
    history, errors, lost, ended = None, {}, {}, {}
    failed_at = None
    while readers or running:
        timeout = None if failed_at is None else max(0.0, failed_at + SETTLE_S - time.monotonic())
        ready = wait([*readers, *running], timeout)
        if not ready:
            break
        for obj in ready:
            if obj in running:
                rank = running.pop(obj)
                procs[rank].join()
                if procs[rank].exitcode != 0:
                    ended[rank] = procs[rank].exitcode
                continue
            try:
                kind, *rest = obj.recv()
            except (EOFError, OSError):
                del readers[obj]
                continue
            rank = readers[obj]
            if kind == "progress" and bar is not None:
                at, postfix = rest
                bar.update(at - step)
                step = at
                if postfix is not None:
                    bar.set_postfix(*postfix[0], **postfix[1])
            elif kind == "done":
                history = rest[0]
            elif kind == "error":
                errors.setdefault(rank, rest)
            elif kind == "lost":
                lost.setdefault(rank, rest[0])
        if failed_at is None and (errors or lost or ended):
            failed_at = time.monotonic()
    if errors:
        kind, message = errors[min(errors)]
        raise {"ValueError": ValueError, "OSError": OSError, "FormatError": FormatError}.get(kind, WorkerError)(
            message)
    died = {rank: code for rank, code in ended.items() if rank not in lost}  # those that said nothing
    if died:
        rank = min(died)
        code = died[rank]
        if code < 0 and -code in signal.valid_signals():
            how = f"was killed by {signal.Signals(-code).name}"
        elif code > 128 and code - 128 in signal.valid_signals():  # its SIGTERM handler's status (_stopped)
            how = f"was stopped by {signal.Signals(code - 128).name}"
        else:
            how = f"exited with status {code}"
        raise WorkerError(f"worker {rank} of {nproc} {how}; the run is stopped (its last checkpoint stands)")
    if lost:
        rank = min(lost)
        raise WorkerError(f"worker {rank} of {nproc} lost its peers: {lost[rank]}")
    if history is None:
        raise WorkerError("worker 0 ended without reporting its history")
    return history


def _stop(procs: list) -> None:
    """End the workers still running: worker 0 by SIGTERM (it removes a checkpoint it was writing; SIGKILL after
    GRACE_S), the others, which write nothing, by SIGKILL."""
    for rank, p in enumerate(procs):
        if p.is_alive():
            p.terminate() if rank == 0 else p.kill()
    deadline = time.monotonic() + GRACE_S
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join()


class _Relay:
    """Worker 0's progress bar for ``train``: sends (step, postfix) to the parent every REPORT_S seconds, and ends
    the worker when the parent has gone."""

    def __init__(self, conn, parent: int, step: int) -> None:
        self.conn, self.parent, self.step = conn, parent, step
        self.postfix, self.sent = None, 0.0

    def update(self, n: int) -> None:
        self.step += n
        if time.monotonic() - self.sent >= REPORT_S:
            self._send()

    def set_postfix(self, *args, **kwargs) -> None:
        self.postfix = (args, kwargs)

    def close(self) -> None:
        self._send()

    def _send(self) -> None:
        if os.getppid() != self.parent:
            raise SystemExit(1)  # orphaned: nobody is left to report to, or to stop the run
        self.conn.send(("progress", self.step, self.postfix))
        self.sent = time.monotonic()


def _stopped(signum, frame) -> None:
    raise SystemExit(128 + signum)  # unwinds: the atomic writer removes a checkpoint being written


def _report(conn, message: tuple) -> None:
    try:
        conn.send(message)
    except OSError:
        pass


def _worker(rank: int, nproc: int, port: int, payload: dict, conn, parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stopped)
    status = 1
    try:
        status = _work(rank, nproc, port, payload, conn, parent)
    except SystemExit as e:  # SIGTERM (_stopped), or orphaned (_Relay)
        status = e.code if isinstance(e.code, int) else 1
    finally:
        # Out without the interpreter's teardown: the gloo backend's threads may abort it (SIGABRT, "terminate
        # called without an active exception") once the group is gone. Everything the worker wrote is written:
        # checkpoints are flushed and synced, and reports sent.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


def _work(rank: int, nproc: int, port: int, payload: dict, conn, parent: int) -> int:
    """The worker's run: 0 when done, 1 after reporting a failure to the parent."""
    try:
        torch.set_num_threads(payload["threads"])
        if "GLOO_SOCKET_IFNAME" not in os.environ and any(name == "lo" for _, name in socket.if_nameindex()):
            os.environ["GLOO_SOCKET_IFNAME"] = "lo"  # the workers talk over loopback, whatever the host name says
        store = dist.TCPStore("127.0.0.1", port, is_master=False, timeout=_TIMEOUT)
        dist.init_process_group("gloo", store=store, rank=rank, world_size=nproc, timeout=_TIMEOUT)
        model = (ConvNet if payload["arch"] == "conv" else KWSNet)(payload["config"], payload["stage"])
        model.load_state_dict(payload["state"])
        val = payload["val"]
        history = train(model, payload["features"].numpy(), payload["labels"].numpy(), payload["options"],
                        out=payload["out"], val=None if val is None else (val[0].numpy(), val[1].numpy()),
                        resume=_own(payload["resume"]), rank=rank, nproc=nproc,
                        progress=(lambda total, initial: _Relay(conn, parent, initial)) if rank == 0 else None)
        try:
            dist.barrier()  # every worker is through: only then is the run done
        except RuntimeError as e:
            raise PeerLost(first_line(e)) from None
        if rank == 0:
            conn.send(("done", history))
        return 0
    except PeerLost as e:
        _report(conn, ("lost", first_line(e)))
    except (FormatError, ValueError, OSError) as e:
        kind = "FormatError" if isinstance(e, FormatError) else "ValueError" if isinstance(e, ValueError) else "OSError"
        _report(conn, ("error", kind, first_line(e)))
    except Exception as e:
        _report(conn, ("error", "", f"worker {rank} of {nproc}: {type(e).__name__}: {first_line(e)}"))
    return 1
