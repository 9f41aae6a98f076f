"""Coverage-guided fuzzing of the checkpoint reader: ``kwsint.train.qat.checkpoint.load_checkpoint``.

Each input is written to a temporary ``.pt`` file and loaded twice: as a
kwsint checkpoint, and as a bare state dict with ``CONFIG`` supplied. The only
error allowed is ``CheckpointError`` (what load_checkpoint documents); a
checkpoint that loads gives a ``KWSNet`` that runs a zero window to (1, 2)
logits.

Run (atheris, libFuzzer flags; new inputs go to the first corpus folder)::

    python tests/fuzz/fuzz_checkpoint.py -max_total_time=300 -rss_limit_mb=4096 -timeout=20 \\
        /tmp/checkpoint-corpus tests/fuzz/corpus/checkpoint

torch takes some seconds to import. ``check(data)`` is the target;
tests/test_fuzz.py replays the checked-in corpus and
tests/fuzz/regressions/checkpoint through it.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
import tempfile


def _instrumented():
    """Python coverage of kwsint guides the fuzzer when run as a script; a plain import is not instrumented.
    (torch's own parsers are instrumented function by function in main(): naming a torch module here would
    instrument all of torch, and each input would take a second.)"""
    if __name__ != "__main__":
        return contextlib.nullcontext()
    import atheris

    return atheris.instrument_imports(include=["kwsint"])


with _instrumented():
    import torch

    from kwsint.errors import CheckpointError
    from kwsint.train.qat.checkpoint import load_checkpoint
    from kwsint.train.qat.model import KWSNet, NetConfig

# The configuration of the bare state-dict seeds (the same small network as tests/train/test_checkpoint.py).
CONFIG = NetConfig((6, 5), (4, 1, 8), window_frames=7, feature_dim=3, frame_stride=2)


def load_and_run(path: str, config: NetConfig | None) -> bool:
    """Whether the checkpoint loads; a loaded model must run. Only CheckpointError may escape load_checkpoint."""
    try:
        ck = load_checkpoint(path, config=config)
    except CheckpointError:
        return False
    assert isinstance(ck.model, KWSNet) and (ck.train is None or isinstance(ck.train, dict))
    model = ck.model.eval()
    cfg = model.config
    with torch.no_grad():
        logits = model(torch.zeros(1, cfg.window_frames, cfg.feature_dim))
    assert tuple(logits.shape) == (1, 2), logits.shape  # finite weights may still overflow: no finiteness check
    return True


def check(data: bytes) -> None:
    """The fuzz target: raises AssertionError (or an undocumented exception) on a bug."""
    fd, path = tempfile.mkstemp(prefix="kwsint-fuzz-", suffix=".pt")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(bytes(data))
        load_and_run(path, None)
        load_and_run(path, CONFIG)
    finally:
        os.unlink(path)


def main(argv: list[str]) -> None:
    import atheris
    import torch._weights_only_unpickler as unpickler
    import torch.serialization as serialization

    # The data-only unpickler's opcode loop and the two file formats' readers, where malformed bytes meet torch.
    for func in (unpickler.Unpickler.load, unpickler.load, serialization.load, serialization._load,
                 serialization._legacy_load):
        atheris.instrument_func(func)
    # libFuzzer runs argv[0] through the shell for -merge=1 and -minimize_crash=1: make it this interpreter and
    # this script (the script itself is not executable).
    command = f"{shlex.quote(sys.executable)} {shlex.quote(os.path.abspath(__file__))}"
    atheris.Setup([command, *argv[1:]], check)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
