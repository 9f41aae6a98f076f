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


def _count_dense(k: int, n: int, step: int, block: int = 0) -> dict[str, int]:
    """Walks the loops of kws_neon_fully_connected_s8 / _s16 / _s8_acc16 (fully_connected.c) and
    counts; block: the int16 block in products (log2_block's 1 << log2_block), 0 for int32."""
    counts = dict(k_loop=0, flush=0, tail=0, group=0, affine=0)
    for o in range(0, n, 8):
        counts["group"] += 1
        rows = min(n - o, 8)
        for _pass in range(2 if rows > 4 else 1):  # dot4 for rows o..o+3, then o+4..o+7 if any
            if block:  # dot4_s8_acc16: for (i = 0; i < t->k16;) { end = ...; for (; i < end; i += 16) }
                k16, i = k & ~15, 0
                while i < k16:
                    end = i + block if k16 - i > block else k16
                    while i < end:
                        counts["k_loop"] += 1
                        i += 16
                    counts["flush"] += 1  # the 4 SADALPs after the block
            else:
                counts["k_loop"] += len(range(0, k - k % step, step))
            counts["tail"] += k % step != 0
    return counts


def _count_affine(n: int, step: int) -> dict[str, int]:
    """Walks the loop of kws_neon_affine_s8 / _s16 (affine.c): whole blocks, then one padded block."""
    c = blocks = 0
    while c + step <= n:
        c, blocks = c + step, blocks + 1
    return dict(k_loop=0, flush=0, tail=0, group=0, affine=blocks + (c < n))


def test_trip_counts_by_hand():
    # K = 40, N = 10: groups of rows 0-7 (two passes) and 8-9 (one pass); each pass runs
    # 2 whole 16-K steps and one tail step for the last 8.
    assert project.trip_counts("dense", 40, 10) == dict(k_loop=6, flush=0, tail=3, group=2, affine=0)
    # int16 blocks of 16 products: each pass's 32 whole K are 2 blocks of one step each, then
    # the same tail step; blocks of 32: one block of 2 steps; blocks of 64: one block, cut at 32.
    assert project.trip_counts("dense", 40, 10, acc16_block=16) == dict(k_loop=6, flush=6, tail=3, group=2, affine=0)
    assert project.trip_counts("dense", 40, 10, acc16_block=32) == dict(k_loop=6, flush=3, tail=3, group=2, affine=0)
    assert project.trip_counts("dense", 40, 10, acc16_block=64) == dict(k_loop=6, flush=3, tail=3, group=2, affine=0)
    # M4's second layer, K = 87, N = 400, blocks of 32: 100 passes of 5 steps (80 K) in blocks of
    # 32, 32, 16, and a tail step for the last 7.
    assert project.trip_counts("dense", 87, 400, acc16_block=32) == dict(k_loop=500, flush=300, tail=100, group=50,
                                                                           affine=0)
    # K < 16: no whole step, no block, only the tail.
    assert project.trip_counts("dense", 15, 4, acc16_block=16) == dict(k_loop=0, flush=0, tail=1, group=1, affine=0)
    # 16x8: 8 K per step, 40 = 5 whole steps, no tail.
    assert project.trip_counts("dense", 40, 10, act_bits=16) == dict(k_loop=15, flush=0, tail=0, group=2, affine=0)
    # 20 channels: one block of 16, one padded block of 4.
    assert project.trip_counts("affine", 20, 20) == dict(k_loop=0, flush=0, tail=0, group=0, affine=2)
    for bad in (8, 48):  # below one step; not a power of two
        with pytest.raises(ValueError, match="acc16_block"):
            project.trip_counts("dense", 40, 10, acc16_block=bad)


@pytest.mark.parametrize("act_bits, step, affine_step", [(8, 16, 16), (16, 8, 8)])
def test_trip_counts_match_the_loops(act_bits, step, affine_step):
    for k in (1, 7, 8, 15, 16, 17, 40, 87, 400, 540):
        for n in (1, 2, 4, 5, 8, 9, 12, 13, 87, 123):
            assert project.trip_counts("dense", k, n, act_bits) == _count_dense(k, n, step), (k, n)
    for n in (1, 8, 15, 16, 17, 87, 400, 566):
        assert project.trip_counts("affine", n, n, act_bits) == _count_affine(n, affine_step), n


@pytest.mark.parametrize("block", [16, 32, 64, 128, 1 << 14])
def test_acc16_trip_counts_match_the_loops(block):
    for k in (1, 15, 16, 17, 31, 32, 33, 40, 87, 123, 400, 540, 566, 1080):
        for n in (1, 4, 5, 8, 9, 87, 123):
            assert project.trip_counts("dense", k, n, 8, block) == _count_dense(k, n, 16, block), (k, n)


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
        assert per_iteration.pop("flush") == 0  # int32 kernels have no block flush
        assert all(c > 0 for c in per_iteration.values()), per_iteration


def _mnemonics(code: str) -> list[str]:
    return [line.split()[0] for line in code.splitlines()]


def test_acc16_pieces_on_the_compiled_kernel():
    pieces = project.dense_pieces("neon", 8, acc16=True)
    assert len(pieces.k_loops) == len(pieces.flushes) == 2  # two 4-row passes per row group
    for k_loop, flush in zip(pieces.k_loops, pieces.flushes):
        ops = _mnemonics(k_loop)  # 4 rows x 16 K: 4 SMLAL + 4 SMLAL2 into int16 lanes, nothing widened
        assert (ops.count("smlal"), ops.count("smlal2"), ops.count("sadalp"), ops.count("smull")) == (4, 4, 0, 0)
        assert _mnemonics(flush).count("sadalp") == 4 and "smlal" not in _mnemonics(flush)
    assert "sadalp" not in _mnemonics(pieces.group)  # the flushes are costed once per block, not per group
    with pytest.raises(ValueError, match="neon backend with int8"):
        project.dense_pieces("neon-dotprod", 8, acc16=True)


def test_acc16_projection_on_a53(monkeypatch):
    a53 = "cortex-a53"
    int32, int16 = project.loop_cycles("neon", 8, a53), project.loop_cycles("neon", 8, a53, acc16=True)
    # Two NEON instructions per 16 MACs instead of three: the K loop is no slower.
    assert 0 < int16["k_loop"] <= int32["k_loop"], (int16, int32)
    assert int16["flush"] > 0 and int32["flush"] == 0
    assert int16["tail"] == int32["tail"] and int16["affine"] == int32["affine"]
    # Costing pieces apart: a block of B K (B / 16 K iterations and one flush as one straight
    # sequence) takes what B / 16 K iterations and a flush take back to back, to within 1%.
    pieces = project.dense_pieces("neon", 8, acc16=True)
    for cpu, steps in ((a53, 2), ("cortex-a72", 8)):
        c = project.loop_cycles("neon", 8, cpu, acc16=True)
        whole = project.mca_cycles("\n".join([pieces.k_loops[0]] * steps + [pieces.flushes[0]]), cpu)
        assert whole == pytest.approx(steps * c["k_loop"] + c["flush"], rel=0.01), (cpu, steps)
    # The paper configurations as exported. M3 and M4 have the same shapes, M3 blocks of 16 and
    # M4 of 32: the longer block pays fewer flushes per K, yet both cost more than int32, which is
    # why the neon kernel runs int32 below NEON_ACC16_MIN_BLOCK; M6's blocks of 128 pay off.
    def ratios(min_block):
        monkeypatch.setattr(project, "NEON_ACC16_MIN_BLOCK", min_block)
        out = {}
        for config in ("M3", "M4", "M6"):
            layers, act_bits = project.paper_layers(config)
            (r,) = project.compare_acc16(layers, act_bits, cpus=(a53,))
            assert r["total32"] - r["dense32"] == r["total16"] - r["dense16"]  # the affine layers are the same
            out[config] = r["dense_ratio"]
        return out
    assert {l["acc16_block"] for l in project.paper_layers("M4")[0] if l["kind"] == "dense"} == {32}
    every_claim = ratios(16)
    assert every_claim["M3"] < every_claim["M4"] < 1 < every_claim["M6"], every_claim
    as_run = ratios(128)
    assert as_run["M3"] == as_run["M4"] == 1 and as_run["M6"] == every_claim["M6"], as_run
    # M2 claims nothing: the same cycles either way.
    (m2,) = project.compare_acc16(*project.paper_layers("M2"), cpus=(a53,))
    assert m2["dense32"] == m2["dense16"] and m2["total_ratio"] == 1


def test_extraction_failure_names_the_function():
    body = (".L3:", "ldr\tq0, [x0]", "sdot\tv1.4s, v0.16b, v0.16b", "cmp\tx0, x1", "bne\t.L3", "ret")
    with pytest.raises(project.ExtractionError, match="kws_example: the loop at .L3 holds 1 sdot, not 4"):
        project._hot_loops(project.Function("kws_example", body), "sdot", 4)


def _acc16_k_loop(sadalp: int = 0) -> tuple[str, ...]:
    return (".L8:", "ldr\tq0, [x0, x3]", *["smlal\tv1.8h, v2.8b, v0.8b"] * 4, *["smlal2\tv1.8h, v2.16b, v0.16b"] * 4,
            *["sadalp\tv9.4s, v1.8h"] * sadalp, "cmp\tx4, x3", "bhi\t.L8")


def test_acc16_extraction_failures_name_the_function():
    def blocks(body):
        f = project.Function("kws_example_acc16", body)
        hot = dict(project._hot_loops(f, project.ACC16.marker, project.ACC16.markers, project.ACC16.mix))
        return project._block_loops(f, project.ACC16, hot)

    # a SADALP in the K loop: not the int16 loop the projection costs
    with pytest.raises(project.ExtractionError, match="kws_example_acc16: the loop at .L8 holds 1 sadalp, not 0"):
        blocks((*_acc16_k_loop(sadalp=1), "ret"))
    # an int16 K loop with no block loop around it: its flushes could not be counted
    with pytest.raises(project.ExtractionError, match="kws_example_acc16: the K loop at .L8 runs in no block loop"):
        blocks((*_acc16_k_loop(), "ret"))
    # a block loop that flushes 2 rows, not 4
    body = (".L7:", "movi\tv1.4s, 0", *_acc16_k_loop(), "sadalp\tv9.4s, v1.8h", "sadalp\tv10.4s, v2.8h",
            "cmp\tx12, x3", "bhi\t.L7", "ret")
    with pytest.raises(project.ExtractionError, match="kws_example_acc16: the block loop at .L7 holds 2 sadalp"):
        blocks(body)
    # the shape the kernel has: K loop .L8 (lines 2..13) inside block loop .L7 (0..19)
    good = (".L7:", "movi\tv1.4s, 0", *_acc16_k_loop(), *["sadalp\tv9.4s, v1.8h"] * 4, "cmp\tx12, x3", "bhi\t.L7",
            "ret")
    assert blocks(good) == {0: (19, 2, 13)}


def test_nibble_pieces_on_the_compiled_kernel():
    k_loops, tails = project.nibble_pieces()
    assert len(k_loops) >= 1 and len(tails) >= 1
    for k_loop in k_loops:  # 4 rows x 16 K: 4 x 8 bytes of codes unpacked, then the int8 kernel's products
        ops = _mnemonics(k_loop)
        assert [ops.count(m) for m in ("smull", "smlal2", "sadalp", "zip1", "zip2", "ushr", "eor")] == [4] * 7, ops
        assert sum(op == "ldr" and ", [" in line and line.split()[1].startswith("d")
                   for op, line in zip(ops, k_loop.splitlines())) == 4, k_loop
    for tail in tails:  # one K element of one row, scalar
        ops = _mnemonics(tail)
        assert (ops.count("ldrsb"), ops.count("ldrb"), ops.count("madd"), ops.count("sadalp")) == (1, 1, 1, 0)
    int8 = project.dense_pieces("neon", 8).k_loops
    for cpu in ("cortex-a53", "cortex-a72"):
        # unpacking adds instructions to the same SMULL/SMLAL2/SADALP step: never cheaper
        nib = project.nibble_cycles(cpu)
        assert nib["k_loop"] >= project._mean(int8, cpu) > 0, cpu
        assert nib["tail"] > 0 and nib["group"] == project.loop_cycles("neon", 8, cpu)["group"]
    layers, act_bits = project.paper_layers("M4")
    assert {l["weight_bits"] for l in layers if l["kind"] == "dense"} == {4}
    (r,) = project.compare_packed(layers, act_bits, cpus=("cortex-a53",))
    assert r["total8"] - r["dense8"] == r["total4"] - r["dense4"]  # the affine layers are the same
    assert r["dense_ratio"] >= 1
    (m2,) = project.compare_packed(*project.paper_layers("M2"), cpus=("cortex-a53",))
    assert m2["dense8"] == m2["dense4"]  # 8-bit weights are never held as nibbles


def test_nibble_trip_counts():
    # K = 40, N = 10: 3 passes of 2 K iterations; the tail is 8 scalar elements of each of 4 rows per pass.
    assert project.nibble_trip_counts(40, 10) == dict(k_loop=6, flush=0, tail=3 * 4 * 8, group=2, affine=0)
    assert project.nibble_trip_counts(400, 87)["tail"] == 0


def test_nibble_extraction_failure_names_the_function(monkeypatch):
    body = ("dot4_nibbles:", ".L5:", "ldr\td3, [x7, x3]", *["smull\tv22.8h, v4.8b, v0.8b"] * 4,
            *["sadalp\tv17.4s, v22.8h"] * 4, "cmp\tx8, x2", "bhi\t.L5", "ret")
    fake = {project.NIBBLES.function: project.Function(project.NIBBLES.function, body[1:])}
    monkeypatch.setattr(project, "_compile", lambda source: fake)
    project.nibble_pieces.cache_clear()
    try:
        with pytest.raises(project.ExtractionError,
                           match="kws_neon_fully_connected_s8_nibbles: .*the loop at .L5 holds 0 smlal2, not 4"):
            project.nibble_pieces()
    finally:
        project.nibble_pieces.cache_clear()
