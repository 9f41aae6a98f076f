"""Fuzzing the parsers (tests/fuzz): corpus replay, named regressions, refusals before allocation, and a
fixed-time coverage-guided run of every harness.

* Replay: every file of tests/fuzz/corpus/<target>/ and tests/fuzz/regressions/<target>/ goes through the
  harness's ``check`` (blob, features, checkpoint, wyoming, tflite) and, for blobs, through the libFuzzer build
  of the C loader.
* Regressions: each bug the fuzzers found, as a named test on its minimized input.
* Enormous sizes: files that declare huge shapes are refused with FormatError in a subprocess whose address
  space is limited to 1 GiB, so an attempt to allocate what they declare would fail as MemoryError instead.
* Fuzzing: each harness runs as a subprocess for KWSINT_FUZZ_SECONDS (default 30) seconds from a fixed seed
  (KWSINT_FUZZ_SEED, default 1), coverage guided (atheris for the Python targets, libFuzzer with ASan and UBSan
  for the C loader); any crash fails the test, naming the reproducer and the command to replay it.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import pytest

from kwsint.errors import CheckpointError, FormatError

from .fuzz import fuzz_blob, fuzz_checkpoint, fuzz_features, fuzz_tflite, fuzz_wyoming
from .native_build import build_program

ROOT = Path(__file__).resolve().parent.parent
FUZZ = ROOT / "tests" / "fuzz"
HARNESSES = {"blob": fuzz_blob, "features": fuzz_features, "checkpoint": fuzz_checkpoint, "wyoming": fuzz_wyoming,
             "tflite": fuzz_tflite}
FUZZ_SECONDS = int(os.environ.get("KWSINT_FUZZ_SECONDS", "30"))
# libFuzzer's random seed: fixed, so a run that finds a bug finds it again when repeated (KWSINT_FUZZ_SEED=0: a
# new seed each run, for exploring).
FUZZ_SEED = int(os.environ.get("KWSINT_FUZZ_SEED", "1"))
# Per-input time limit and memory ceiling of a fuzzing run: a hang or a runaway allocation is a finding.
INPUT_TIMEOUT_S = 20
RSS_LIMIT_MB = 3072
ADDRESS_SPACE_LIMIT = 1 << 30  # for the refusal-before-allocation tests


def _inputs(target: str) -> list[Path]:
    files = []
    for kind in ("corpus", "regressions"):
        folder = FUZZ / kind / target
        files += sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    return files


REPLAY = [(target, path) for target in HARNESSES for path in _inputs(target)]


# --- replay ------------------------------------------------------------------------


@pytest.mark.parametrize("target, path", REPLAY, ids=[f"{t}/{p.parent.parent.name}/{p.name}" for t, p in REPLAY])
def test_replay(target, path):
    HARNESSES[target].check(path.read_bytes())


def test_corpus_is_present_and_small():
    for target in HARNESSES:
        assert len(list((FUZZ / "corpus" / target).glob("seed-*"))) >= 4, target
    total = sum(p.stat().st_size for p in (FUZZ / "corpus").rglob("*") if p.is_file())
    assert total < 1 << 20, f"the checked-in corpus is {total} bytes; merge it (-merge=1) to keep it under 1 MiB"


def test_seeds_are_valid_inputs(tmp_path):
    """The seeds must be accepted, or the fuzzers start from nothing but refusals."""
    for path in (FUZZ / "corpus" / "blob").glob("seed-*"):
        fuzz_blob.read_blob(path.read_bytes())
        assert fuzz_blob.c_loads(path.read_bytes(), "portable", "packed"), path
    (tmp_path / "seed.ark").write_bytes(fuzz_features.SEED_ARK)  # what the scp seeds point into
    for path in (FUZZ / "corpus" / "features").glob("seed-*"):
        copy = tmp_path / f"x{path.suffix}"
        copy.write_bytes(path.read_bytes())
        with fuzz_features._inside(str(tmp_path)):
            assert fuzz_features.read_all(copy) > 0, path
    for path in (FUZZ / "corpus" / "checkpoint").glob("seed-*"):
        config = fuzz_checkpoint.CONFIG if "bare" in path.name else None
        assert fuzz_checkpoint.load_and_run(str(path), config), path
    for path in (FUZZ / "corpus" / "wyoming").glob("seed-*"):
        events = fuzz_wyoming.replies(path.read_bytes())
        errors = [e.data["code"] for e in events if e.type == "error"]
        assert events and (errors if "-bad-" in path.name else not errors), (path, errors)
    for path in (FUZZ / "corpus" / "tflite").glob("seed-*"):
        data = path.read_bytes()
        if path.suffix == ".tflite":
            fuzz_tflite.check_graph(fuzz_tflite.read_tflite(data, name=path.name))
        else:
            assert fuzz_tflite.read_micro_settings(data, name=path.name).probability_cutoff is not None, path


@pytest.fixture(scope="module")
def c_fuzzer(tmp_path_factory) -> Path:
    """tests/c/fuzz_blob_loader.c and the whole C library built with libFuzzer, ASan and UBSan."""
    out = tmp_path_factory.mktemp("libfuzzer") / "fuzz_blob_loader"
    return build_program(out, ROOT / "tests" / "c" / "fuzz_blob_loader.c",
                         ["-O1", "-g", "-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=all"], "clang")


def test_c_replay(c_fuzzer):
    """The libFuzzer binary runs each file given to it once: the blob corpus and regressions under ASan/UBSan."""
    files = [str(p) for p in _inputs("blob")]
    r = subprocess.run([str(c_fuzzer), *files], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-5000:]
    assert f"Executed {files[-1]}" in r.stderr


# --- refusal before allocation -------------------------------------------------------


def _refused_within_1gib(tmp_path, code: str, expect: str, before: str = "") -> None:
    """Runs ``code`` (which loads something) in a Python whose address space is capped at 1 GiB; it must end with
    an exception whose "ClassName: message" starts with ``expect``. Allocating a declared size of GiBs raises
    MemoryError. ``before`` runs ahead of the limit (torch's import maps more than 1 GiB)."""
    body = textwrap.indent(textwrap.dedent(code).strip(), "    ")
    script = tmp_path / "limited.py"
    script.write_text(
        f"import resource, sys\n{before}\n"
        f"resource.setrlimit(resource.RLIMIT_AS, ({ADDRESS_SPACE_LIMIT}, {ADDRESS_SPACE_LIMIT}))\n"
        f"try:\n{body}\n"
        "except Exception as e:\n"
        "    print(type(e).__name__ + ': ' + str(e)[:300])\n"
        "    sys.exit(0)\n"
        "print('accepted')\n")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                       env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.startswith(expect), r.stdout + r.stderr[-3000:]


def _blob(payload: bytes) -> bytes:
    return struct.pack("<4sHHII", b"KWSQ", 3, 0, len(payload), zlib.crc32(payload)) + payload


def _huge_blob() -> bytes:
    """A consistent blob of 64 layers whose first declares 6 -> 16384 weights and whose next ones would be
    16384 x 16384 (GiBs in all), but that ends after the first layer header: every field the reader checks before
    the layer's arrays is valid, so only the missing bytes can refuse it."""
    seed = (FUZZ / "corpus" / "blob" / "seed-w8-a8.kwsq").read_bytes()
    model_header = bytearray(seed[16:40])
    model_header[1] = 64  # num_layers
    input_scale, input_zp = struct.unpack("<fi", model_header[8:16])
    feature_dim = struct.unpack("<H", model_header[4:6])[0]
    frontend = seed[40:40 + 32 + 8 * feature_dim]  # fbank record, mean, inv_std
    layer = struct.pack("<BBBBHHffiiii", 1, 8, 1, 0, 6, 16384, input_scale, 0.1, input_zp, 0, -128, 127)
    return _blob(bytes(model_header) + frontend + layer)


def test_huge_blob_is_refused_before_allocation(tmp_path):
    (tmp_path / "huge.kwsq").write_bytes(_huge_blob())
    _refused_within_1gib(tmp_path, """
        import kwsint
        kwsint.load('huge.kwsq')
    """, "FormatError: huge.kwsq: layers[0].weight_scale: truncated: needs 65536 bytes")


def test_huge_blob_is_refused_by_the_c_loader_before_allocation(tmp_path):
    (tmp_path / "huge.kwsq").write_bytes(_huge_blob())
    _refused_within_1gib(tmp_path, """
        import sys
        sys.path.insert(0, %r)
        import fuzz_blob
        data = open('huge.kwsq', 'rb').read()
        for weights in ('int8', 'packed'):
            status, field = fuzz_blob.c_status(data, 'portable', weights)
            assert (status, field) == (fuzz_blob.lib.KWS_ERR_TRUNCATED, 'layer.weight_scale'), (status, field)
        raise fuzz_blob.FormatError('refused by the C loader')
    """ % str(FUZZ), "FormatError: refused by the C loader")


def test_huge_npy_is_refused_before_allocation(tmp_path):
    # A header declaring 2^40 x 3 float32 frames (12 TiB) over 12 bytes of data.
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 3), }"
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    (tmp_path / "huge.npy").write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode()
                                        + bytes(12))
    _refused_within_1gib(tmp_path, """
        from kwsint.io.inputs import iter_streams
        for name, chunks in iter_streams('huge.npy', 3):
            for chunk in chunks:
                pass
    """, "FormatError: huge.npy: npy: expected a readable .npy array, got ValueError: mmap length")


@pytest.mark.parametrize("name, message", [
    # 2^30 x 3 float32 frames (12 GiB) declared, no data: kaldiio read(12 GiB) allocated it.
    ("ark-huge-rows.ark", "matrix: expected 12884901903 bytes for a FM matrix of 1073741824 x 3, got 15"),
    # A compressed matrix of 2^31 - 1 columns: kaldiio read 16 GiB of per-column headers.
    ("ark-huge-compressed-cols.ark", "matrix: expected 21474836491 bytes for a CM matrix of 2 x 2147483647, got 21"),
])
def test_huge_ark_is_refused_before_allocation(tmp_path, name, message):
    (tmp_path / "huge.ark").write_bytes((FUZZ / "regressions" / "features" / name).read_bytes())
    _refused_within_1gib(tmp_path, """
        from kwsint.io.inputs import iter_streams
        for name, chunks in iter_streams('huge.ark', 3):
            for chunk in chunks:
                pass
    """, "FormatError: huge.ark:utt: " + message)


def test_huge_scp_entry_is_refused_before_allocation(tmp_path):
    (tmp_path / "huge.ark").write_bytes((FUZZ / "regressions" / "features" / "ark-huge-rows.ark").read_bytes())
    (tmp_path / "huge.scp").write_text("utt huge.ark:4\n")
    _refused_within_1gib(tmp_path, """
        from kwsint.io.inputs import iter_streams
        for name, chunks in iter_streams('huge.scp', 3):
            for chunk in chunks:
                pass
    """, "FormatError: huge.scp:utt: matrix: expected 12884901903 bytes")


def test_huge_checkpoint_config_is_refused_before_allocation(tmp_path):
    """A 1.7 KB checkpoint whose configuration declares 31 hidden layers of 16384 over a 4096 x 1024 window
    (7.7e10 weights) and no tensors: KWSNet was built first and tried to allocate 256 GiB (RuntimeError)."""
    (tmp_path / "huge.pt").write_bytes((FUZZ / "regressions" / "checkpoint" / "huge-config.pt").read_bytes())
    _refused_within_1gib(tmp_path, """
        from kwsint.train.qat.checkpoint import load_checkpoint
        load_checkpoint('huge.pt')
    """, "CheckpointError: huge.pt: model: expected the 76772573184 dense weights of the configuration, got "
         "tensors of 0 values in all", before="import torch")


# --- regressions: one named test per bug found ---------------------------------------------


def test_regression_ark_negative_rows_is_refused(tmp_path):
    """kaldiio reads a matrix of -1 rows as "the rest of the file", reshaped: the first utterance swallowed the
    second one's bytes as frames and the archive was accepted."""
    path = tmp_path / "neg.ark"
    path.write_bytes((FUZZ / "regressions" / "features" / "ark-negative-rows.ark").read_bytes())
    from kwsint.io.inputs import iter_streams
    with pytest.raises(FormatError, match=r"neg\.ark:a: shape: expected rows and columns >= 0, got -1 x 3"):
        for _, chunks in iter_streams(path, 3):
            list(chunks)


def test_regression_scp_nul_in_path_is_refused(tmp_path):
    """An scp line whose archive path holds a NUL byte: open() raised ValueError, which escaped iter_streams."""
    path = tmp_path / "nul.scp"
    path.write_bytes((FUZZ / "regressions" / "features" / "scp-nul-in-path.scp").read_bytes())
    from kwsint.io.inputs import iter_streams
    with pytest.raises(FormatError, match=r"nul\.scp:u1: ark: expected a readable archive 'seed.ark\\x00', got "
                                          r"embedded null byte"):
        list(iter_streams(path, 3))


@pytest.mark.parametrize("name", ["legacy-bad-memo.pt", "legacy-state-dict.pt"])
def test_regression_legacy_checkpoints_are_refused_unread(tmp_path, name):
    """The pre-1.6 format (a bare pickle stream) is refused before torch.load sees it: torch allocates each of its
    storages at the size the pickle declares before reading (4 GiB for a tiny fuzzed file), and a pickle that
    fetched a memo entry it never stored raised KeyError out of load_checkpoint (found by fuzz_checkpoint)."""
    path = tmp_path / "legacy.pt"
    path.write_bytes((FUZZ / "regressions" / "checkpoint" / name).read_bytes())
    with pytest.raises(CheckpointError, match=r"legacy\.pt: not a readable PyTorch checkpoint \(expected the zip "
                                              r"format that torch\.save writes since PyTorch 1\.6"):
        fuzz_checkpoint.load_checkpoint(path, config=fuzz_checkpoint.CONFIG)


def test_regression_checkpoint_zip_spanning_disks_is_refused(tmp_path):
    """A zip whose end record claims several disks: zipfile.is_zipfile, given an open file, raised BadZipFile."""
    path = tmp_path / "disks.pt"
    path.write_bytes((FUZZ / "regressions" / "checkpoint" / "zip-multi-disk.pt").read_bytes())
    with pytest.raises(CheckpointError, match=r"disks\.pt: not a readable PyTorch checkpoint \(expected the zip"):
        fuzz_checkpoint.load_checkpoint(path)


def test_regression_checkpoint_view_is_refused(tmp_path):
    """A weight saved as a stride-0 view of one value passed the shape check: billions of declared values over a
    4-byte storage, which the model then allocated and copied."""
    path = tmp_path / "view.pt"
    path.write_bytes((FUZZ / "regressions" / "checkpoint" / "expanded-view.pt").read_bytes())
    with pytest.raises(CheckpointError, match=r"view\.pt: model\.dense\.0\.weight: expected a tensor that holds "
                                              r"its 72 values, got a view of 4 bytes"):
        fuzz_checkpoint.load_checkpoint(path)


# --- fixed-time coverage-guided runs --------------------------------------------------------


def _fuzz(cmd: list[str], corpus: Path, tmp_path: Path, env: dict | None = None) -> None:
    """Runs a libFuzzer-style command for FUZZ_SECONDS from ``corpus``; new inputs go to a temporary folder (the
    first corpus folder is the one libFuzzer writes to), crashes to another."""
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    new = tmp_path / "new-inputs"
    new.mkdir()
    full = [*cmd, f"-max_total_time={FUZZ_SECONDS}", f"-timeout={INPUT_TIMEOUT_S}", f"-rss_limit_mb={RSS_LIMIT_MB}",
            f"-seed={FUZZ_SEED}", f"-artifact_prefix={artifacts}/", "-print_final_stats=1", str(new), str(corpus)]
    r = subprocess.run(full, capture_output=True, text=True, timeout=FUZZ_SECONDS + 600, env=env)
    crashes = sorted(artifacts.iterdir())
    replay = " ".join(cmd) + " " + (" ".join(map(str, crashes)) or "<reproducer>")
    assert r.returncode == 0 and not crashes, (
        f"fuzzing found a bug (exit status {r.returncode}, seed {FUZZ_SEED}); "
        f"reproducers: {[str(c) for c in crashes]}\n"
        f"replay with: {replay}\n--- output tail ---\n{r.stderr[-6000:]}")
    assert "Done" in r.stderr or "stat::number_of_executed_units" in r.stderr, r.stderr[-3000:]


@pytest.mark.parametrize("target", sorted(HARNESSES))
def test_fuzz_python_target(target, tmp_path):
    script = FUZZ / f"fuzz_{target}.py"
    _fuzz([sys.executable, str(script)], FUZZ / "corpus" / target, tmp_path,
          env=dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1"))


def test_fuzz_c_loader(c_fuzzer, tmp_path):
    _fuzz([str(c_fuzzer)], FUZZ / "corpus" / "blob", tmp_path)


