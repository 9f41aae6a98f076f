"""The C engine under AddressSanitizer and UBSan, on mutated and truncated blobs."""

import shutil
import subprocess
from pathlib import Path

import pytest

import kwsint
from kwsint.generate import random_model

ROOT = Path(__file__).resolve().parent.parent
CSRC = ROOT / "csrc"


@pytest.fixture(scope="module")
def sanitized_driver(tmp_path_factory) -> Path:
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.fail("no C compiler: scripts/setup installs gcc")
    out = tmp_path_factory.mktemp("asan") / "loader_mutations"
    sources = sorted(str(p) for p in CSRC.rglob("*.c")) + [str(ROOT / "tests" / "c" / "loader_mutations.c")]
    cmd = [cc, "-std=c11", "-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
           "-ffp-contract=off", f"-I{CSRC / 'include'}", f"-I{CSRC}", *sources, "-lm", "-o", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return out


@pytest.mark.parametrize("act_bits, bits, per_channel", [(8, 4, True), (8, 1, False), (16, 8, True), (8, 3, True)])
def test_loader_mutations_under_sanitizers(sanitized_driver, tmp_path, act_bits, bits, per_channel):
    spec = random_model((3, 5), weight_bits=bits, act_bits=act_bits, per_channel=per_channel, window_frames=5,
                        feature_dim=3, frame_stride=2, seed=bits)
    blob = tmp_path / "m.kwsq"
    kwsint.save(spec, blob)
    r = subprocess.run([str(sanitized_driver), str(blob)], capture_output=True, text=True, timeout=600,
                       env={"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0", "UBSAN_OPTIONS": "print_stacktrace=1"})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "passed, 0 failed" in r.stdout
