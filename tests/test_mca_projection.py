"""benchmarks/mca/project.py: trip counts against the C loops, and the projection on the real kernels.

The projection compiles csrc/neon with aarch64-linux-gnu-gcc and runs llvm-mca (Debian
gcc-aarch64-linux-gnu and llvm-16, both installed by scripts/setup); these tests need both and
do not skip without them.
"""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("mca_project", ROOT / "benchmarks" / "mca" / "project.py")
project = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(project)


def _count_dense(k: int, n: int, step: int) -> dict[str, int]:
    """Walks the loops of kws_neon_fully_connected_s8 / _s16 (fully_connected.c) and counts."""
    counts = dict(k_loop=0, tail=0, group=0, affine=0)
    for o in range(0, n, 8):
        counts["group"] += 1
        rows = min(n - o, 8)
        for _pass in range(2 if rows > 4 else 1):  # dot4 for rows o..o+3, then o+4..o+7 if any
            counts["k_loop"] += len(range(0, k - k % step, step))
            counts["tail"] += k % step != 0
    return counts


def _count_affine(n: int, step: int) -> dict[str, int]:
    """Walks the loop of kws_neon_affine_s8 / _s16 (affine.c): whole blocks, then one padded block."""
    c = blocks = 0
    while c + step <= n:
        c, blocks = c + step, blocks + 1
    return dict(k_loop=0, tail=0, group=0, affine=blocks + (c < n))


def test_trip_counts_by_hand():
    # K = 40, N = 10: groups of rows 0-7 (two passes) and 8-9 (one pass); each pass runs
    # 2 whole 16-K steps and one tail step for the last 8.
    assert project.trip_counts("dense", 40, 10) == dict(k_loop=6, tail=3, group=2, affine=0)
    # 16x8: 8 K per step, 40 = 5 whole steps, no tail.
    assert project.trip_counts("dense", 40, 10, act_bits=16) == dict(k_loop=15, tail=0, group=2, affine=0)
    # 20 channels: one block of 16, one padded block of 4.
    assert project.trip_counts("affine", 20, 20) == dict(k_loop=0, tail=0, group=0, affine=2)


@pytest.mark.parametrize("act_bits, step, affine_step", [(8, 16, 16), (16, 8, 8)])
def test_trip_counts_match_the_loops(act_bits, step, affine_step):
    for k in (1, 7, 8, 15, 16, 17, 40, 87, 400, 540):
        for n in (1, 2, 4, 5, 8, 9, 12, 13, 87, 123):
            assert project.trip_counts("dense", k, n, act_bits) == _count_dense(k, n, step), (k, n)
    for n in (1, 8, 15, 16, 17, 87, 400, 566):
        assert project.trip_counts("affine", n, n, act_bits) == _count_affine(n, affine_step), n


def _stack(width: int) -> list[dict]:
    return [dict(kind="dense", in_size=540, out_size=width), dict(kind="affine", in_size=width, out_size=width),
            dict(kind="dense", in_size=width, out_size=2)]


def test_projection_on_the_compiled_kernels():
    narrow = project.project(_stack(32), cpus=("cortex-a53", "cortex-a55"))
    wide = project.project(_stack(64), cpus=("cortex-a53", "cortex-a55"))
    assert [(r["backend"], r["cpu"]) for r in narrow] == [("neon", "cortex-a53"), ("neon", "cortex-a55"),
                                                          ("neon-dotprod", "cortex-a55")]
    for n, w in zip(narrow, wide):
        assert n["macs"] == 540 * 32 + 32 + 32 * 2 and w["macs"] == 540 * 64 + 64 + 64 * 2
        assert 0 < n["cycles"] < w["cycles"], (n, w)
        assert n["macs_per_cycle"] == pytest.approx(n["macs"] / n["cycles"], rel=1e-3)
        assert n["mcps"]["10ms"] == pytest.approx(n["cycles"] * 100 / 1e6, rel=1e-3)
        assert n["mcps"]["10ms"] == pytest.approx(3 * n["mcps"]["30ms"])
    # SDOT does 16 MACs in one instruction where ARMv8.0 needs three: fewer cycles on the
    # out-of-order A76. (On the in-order A55 the compiled SDOT loop waits on each weight load.)
    neon, dot = project.project(_stack(32), cpus=("cortex-a76",))
    assert dot["cycles"] < neon["cycles"], (dot, neon)
    for backend, cpu in (("neon", "cortex-a53"), ("neon-dotprod", "cortex-a55")):
        per_iteration = project.loop_cycles(backend, 8, cpu)
        assert all(c > 0 for c in per_iteration.values()), per_iteration


def test_extraction_failure_names_the_function():
    body = (".L3:", "ldr\tq0, [x0]", "sdot\tv1.4s, v0.16b, v0.16b", "cmp\tx0, x1", "bne\t.L3", "ret")
    with pytest.raises(project.ExtractionError, match="kws_example: the loop at .L3 holds 1 sdot, not 4"):
        project._hot_loops(project.Function("kws_example", body), "sdot", 4)
