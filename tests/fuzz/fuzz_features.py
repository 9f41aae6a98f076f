"""Coverage-guided fuzzing of the feature readers: ``kwsint.io.inputs.iter_streams``.

Each input is written to a fresh temporary folder under every suffix the
readers know (``in.npy``, ``in.ark``, ``in.scp``, ``in.wav``) and each file is
read to the end with ``iter_streams`` (feature_dim 3; 8 kHz, 3 mel bins for
.wav). The folder also holds ``seed.ark``, a valid archive of two utterances
(``seed_ark()``), and is the current directory while reading, so scp lines
such as ``u1 seed.ark:3`` reach a real archive. The only error allowed is
``FormatError``, as the kwsint.io.inputs docstring documents; every chunk must be
a C-contiguous finite float32 (n, 3) array with 1 <= n <= chunk_frames.

Run (atheris, libFuzzer flags; new inputs go to the first corpus folder)::

    python tests/fuzz/fuzz_features.py -max_total_time=300 -rss_limit_mb=2048 -timeout=10 \\
        /tmp/features-corpus tests/fuzz/corpus/features

``check(data)`` is the target; tests/test_fuzz.py replays the checked-in
corpus and tests/fuzz/regressions/features through it.
"""

from __future__ import annotations

import contextlib
import io
import os
import shlex
import sys
import tempfile
from pathlib import Path


def _instrumented():
    """Python coverage of the readers (kwsint, kaldiio, the wave module, numpy's .npy header parser) guides the
    fuzzer when run as a script; a plain import is not instrumented."""
    if __name__ != "__main__":
        return contextlib.nullcontext()
    import atheris

    return atheris.instrument_imports(include=["kwsint", "kaldiio", "wave", "numpy.lib.format",
                                               "numpy.lib._format_impl"])


with _instrumented():
    import wave  # noqa: F401  imported here so the reader's module is instrumented

    import numpy as np
    from kaldiio.matio import write_array

    from kwsint.errors import FormatError
    from kwsint.io.features import FbankOptions
    from kwsint.io.inputs import SUFFIXES, iter_streams

FEATURE_DIM = 3
FBANK = FbankOptions(sample_rate=8000, num_mel_bins=FEATURE_DIM)
CHUNK_FRAMES = 5


def seed_ark() -> tuple[bytes, dict[str, int]]:
    """A valid binary archive of two utterances and each one's matrix offset (what an scp line points at)."""
    rng = np.random.default_rng(0)
    mats = {"u1": rng.normal(size=(4, FEATURE_DIM)).astype(np.float32),
            "u2": rng.normal(size=(7, FEATURE_DIM)).astype(np.float32)}
    out = io.BytesIO()
    offsets = {}
    for key, mat in mats.items():
        out.write(key.encode() + b" ")
        offsets[key] = out.tell()
        write_array(out, mat)
    return out.getvalue(), offsets


SEED_ARK, SEED_OFFSETS = seed_ark()


@contextlib.contextmanager
def _inside(folder: str):
    """The current directory is ``folder`` inside the block (scp paths are relative to it, as in Kaldi)."""
    before = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def read_all(path: Path) -> int:
    """Reads every stream of the file to its end; returns the frames read. Only FormatError may escape."""
    frames = 0
    try:
        for name, chunks in iter_streams(path, FEATURE_DIM, FBANK, chunk_frames=CHUNK_FRAMES):
            assert isinstance(name, str) and name.startswith(str(path)), name
            for chunk in chunks:
                assert isinstance(chunk, np.ndarray) and chunk.dtype == np.float32, type(chunk)
                assert chunk.ndim == 2 and chunk.shape[1] == FEATURE_DIM, chunk.shape
                assert 1 <= chunk.shape[0] <= CHUNK_FRAMES and chunk.flags.c_contiguous, chunk.shape
                assert np.isfinite(chunk).all(), "a chunk holds NaN or Inf"
                frames += chunk.shape[0]
    except FormatError:
        pass
    return frames


def check(data: bytes) -> None:
    """The fuzz target: raises AssertionError (or an undocumented exception) on a bug."""
    with tempfile.TemporaryDirectory(prefix="kwsint-fuzz-") as folder, _inside(folder):
        Path("seed.ark").write_bytes(SEED_ARK)
        for suffix in SUFFIXES:
            path = Path(folder) / f"in{suffix}"
            path.write_bytes(bytes(data))
            read_all(path)


def main(argv: list[str]) -> None:
    import atheris

    # libFuzzer runs argv[0] through the shell for -merge=1 and -minimize_crash=1: make it this interpreter and
    # this script (the script itself is not executable).
    command = f"{shlex.quote(sys.executable)} {shlex.quote(os.path.abspath(__file__))}"
    atheris.Setup([command, *argv[1:]], check)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
