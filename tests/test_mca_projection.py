"""benchmarks/mca/project.py: trip counts against the C loops, and the projection on the real kernels.

The projection compiles csrc/neon with aarch64-linux-gnu-gcc and runs llvm-mca (Debian
gcc-aarch64-linux-gnu and llvm-16, both installed by scripts/setup test); these tests need both and
do not skip without them.
"""

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("mca_project", ROOT / "benchmarks" / "mca" / "project.py")
project = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(project)


def _count_dense(k: int, n: int, step: int, block: int = 0, pass_rows: int = 4) -> dict[str, int]:
    """Walks the loops of kws_neon_fully_connected_s8 / _s16 / _s8_acc16 (fully_connected.c) and
    counts; block: the int16 block in products (log2_block's 1 << log2_block), 0 for int32 (and
    for 16x8, step 8, whose int32 chunks of 2048 K are flushed into int64); pass_rows: 8 for the
    int8 kernels (dot8_s8, dot8_s8_acc16, groups of 16 rows), 4 for 16x8 (dot4_s16, groups of 8)."""
    counts = dict(k_loop=0, flush=0, tail=0, group=0, affine=0)
    for o in range(0, n, 2 * pass_rows):
        counts["group"] += 1
        rows = min(n - o, 2 * pass_rows)
        passes = 1 if rows <= pass_rows else 2  # rows o .. o + pass_rows - 1, then the rest if any
        for _pass in range(passes):
            if block:  # dot8_s8_acc16: for (i = 0; i < t->k16;) { end = ...; for (; i < end; i += 16) }
                k16, i = k & ~15, 0
                while i < k16:
                    end = i + block if k16 - i > block else k16
                    while i < end:
                        counts["k_loop"] += 1
                        i += 16
                    counts["flush"] += 1  # the 4 SADALPs after the block
            else:
                counts["k_loop"] += len(range(0, k - k % step, step))
                if step == 8:  # dot4_s16: int32 chunks of 2048 K, each flushed into int64
                    counts["flush"] += len(range(0, k - k % 8, 2048))
            counts["tail"] += k % step != 0
    return counts


def _count_affine(n: int, step: int) -> dict[str, int]:
    """Walks the loop of kws_neon_affine_s8 / _s16 (affine.c): whole blocks, then one padded block."""
    c = blocks = 0
    while c + step <= n:
        c, blocks = c + step, blocks + 1
    return dict(k_loop=0, flush=0, tail=0, group=0, affine=blocks + (c < n))


def test_trip_counts_by_hand():
    # K = 40, N = 10, 4-row passes (SDOT): groups of rows 0-7 (two passes) and 8-9 (one pass);
    # each pass runs 2 whole 16-K steps and one tail step for the last 8.
    assert project.trip_counts("dense", 40, 10) == dict(k_loop=6, flush=0, tail=3, group=2, affine=0)
    # 8-row passes (ARMv8.0 int8): one group of 16 rows, passes for rows 0-7 and 8-9.
    assert project.trip_counts("dense", 40, 10, pass_rows=8) == dict(k_loop=4, flush=0, tail=2, group=1, affine=0)
    # int16 blocks of 16 products: each pass's 32 whole K are 2 blocks of one step each, then
    # the same tail step; blocks of 32: one block of 2 steps; blocks of 64: one block, cut at 32.
    def acc16(k, n, block):
        return project.trip_counts("dense", k, n, acc16_block=block, pass_rows=8)
    assert acc16(40, 10, 16) == dict(k_loop=4, flush=4, tail=2, group=1, affine=0)
    assert acc16(40, 10, 32) == dict(k_loop=4, flush=2, tail=2, group=1, affine=0)
    assert acc16(40, 10, 64) == dict(k_loop=4, flush=2, tail=2, group=1, affine=0)
    # M4's second layer, K = 87, N = 400, blocks of 32: 50 passes of 5 steps (80 K) in blocks of
    # 32, 32, 16, and a tail step for the last 7.
    assert acc16(87, 400, 32) == dict(k_loop=250, flush=150, tail=50, group=25, affine=0)
    # K < 16: no whole step, no block, only the tail.
    assert acc16(15, 4, 16) == dict(k_loop=0, flush=0, tail=1, group=1, affine=0)
    # 16x8: 8 K per step, 40 = 5 whole steps, no tail, one int64 flush per pass.
    assert project.trip_counts("dense", 40, 10, act_bits=16) == dict(k_loop=15, flush=3, tail=0, group=2, affine=0)
    # 20 channels: one block of 16, one padded block of 4.
    assert project.trip_counts("affine", 20, 20) == dict(k_loop=0, flush=0, tail=0, group=0, affine=2)
    for bad in (8, 48):  # below one step; not a power of two
        with pytest.raises(ValueError, match="acc16_block"):
            project.trip_counts("dense", 40, 10, acc16_block=bad)


@pytest.mark.parametrize("act_bits, step, affine_step", [(8, 16, 16), (16, 8, 8)])
def test_trip_counts_match_the_loops(act_bits, step, affine_step):
    for k in (1, 7, 8, 15, 16, 17, 40, 87, 400, 540, 2048, 2056, 4100):
        for n in (1, 2, 4, 5, 8, 9, 12, 13, 87, 123):
            rows = 8 if act_bits == 8 else 4
            assert project.trip_counts("dense", k, n, act_bits, pass_rows=rows) == _count_dense(k, n, step, 0, rows), (k, n)
    for n in (1, 8, 15, 16, 17, 87, 400, 566):
        assert project.trip_counts("affine", n, n, act_bits) == _count_affine(n, affine_step), n


@pytest.mark.parametrize("block", [16, 32, 64, 128, 1 << 14])
def test_acc16_trip_counts_match_the_loops(block):
    for k in (1, 15, 16, 17, 31, 32, 33, 40, 87, 123, 400, 540, 566, 1080):
        for n in (1, 4, 5, 8, 9, 87, 123):
            assert project.trip_counts("dense", k, n, 8, block, 8) == _count_dense(k, n, 16, block, 8), (k, n)


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
    pieces = project.dense_pieces("acc16")
    assert len(pieces.k_loops) == len(pieces.flushes) >= 1
    for k_loop, flush in zip(pieces.k_loops, pieces.flushes):
        ops = _mnemonics(k_loop)  # 8 rows x 16 K: 8 SMLAL + 8 SMLAL2 into int16 lanes, nothing widened
        assert (ops.count("smlal"), ops.count("smlal2"), ops.count("sadalp"), ops.count("smull")) == (8, 8, 0, 0)
        assert _mnemonics(flush).count("sadalp") == 8 and "smlal" not in _mnemonics(flush)
    assert "sadalp" not in _mnemonics(pieces.group)  # the flushes are costed once per block, not per group


def test_acc16_projection_on_a53(monkeypatch):
    a53 = "cortex-a53"
    int32, int16 = project.loop_cycles("neon", 8, a53), project.loop_cycles("neon", 8, a53, acc16=True)
    # Two NEON instructions per 16 MACs instead of three: the K loop is no slower.
    assert 0 < int16["k_loop"] <= int32["k_loop"], (int16, int32)
    assert int16["flush"] > 0 and int32["flush"] == 0
    assert int16["tail"] == int32["tail"] and int16["affine"] == int32["affine"]  # both 8-row passes
    # Costing pieces apart: a block of B K (B / 16 K iterations and one flush as one straight
    # sequence) takes what B / 16 K iterations and a flush take back to back, to within 1% on the
    # in-order A53; on the out-of-order A72 the straight block overlaps its 8 flushes with the
    # steps, so the pieces overestimate it, by less than 8%.
    pieces = project.dense_pieces("acc16")
    for cpu, steps, over in ((a53, 2, 0.01), ("cortex-a72", 8, 0.08)):
        c = project.loop_cycles("neon", 8, cpu, acc16=True)
        whole = project.mca_cycles("\n".join([pieces.k_loops[0]] * steps + [pieces.flushes[0]]), cpu)
        apart = steps * c["k_loop"] + c["flush"]
        assert apart * (1 - over) <= whole <= apart * 1.01, (cpu, steps, whole, apart)
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
    return (".L8:", "ldr\tq0, [x0, x3]", *["smlal\tv1.8h, v2.8b, v0.8b"] * 8, *["smlal2\tv1.8h, v2.16b, v0.16b"] * 8,
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
    # a block loop that flushes 2 rows, not 8
    body = (".L7:", "movi\tv1.4s, 0", *_acc16_k_loop(), "sadalp\tv9.4s, v1.8h", "sadalp\tv10.4s, v2.8h",
            "cmp\tx12, x3", "bhi\t.L7", "ret")
    with pytest.raises(project.ExtractionError, match="kws_example_acc16: the block loop at .L7 holds 2 sadalp"):
        blocks(body)
    # the shape the kernel has: K loop .L8 (lines 2..21) inside block loop .L7 (0..31)
    good = (".L7:", "movi\tv1.4s, 0", *_acc16_k_loop(), *["sadalp\tv9.4s, v1.8h"] * 8, "cmp\tx12, x3", "bhi\t.L7",
            "ret")
    assert blocks(good) == {0: (31, 2, 21)}


def _count_s4(k: int, n: int, sdot: bool) -> dict[str, int]:
    """Walks the loops of kws_neon_run_s4 (groups of 16 rows, passes of 8: dot8_s4) / kws_neon_dot_run_s4
    (groups of 8, passes of 4: dot4_s4_sdot), one input vector, and counts; flush: iterations of dot8_s4's
    block loop (the last one's sums are taken after the tail, with the same instructions)."""
    counts = dict(k_loop=0, flush=0, tail=0, group=0, sum_x=len(range(0, k - k % 16, 16)), sum_tail=k % 16)
    k32, t = k - k % 32, (k % 32 + 1) // 2
    rows = 4 if sdot else 8
    for o in range(0, n, 2 * rows):
        counts["group"] += 1
        for _pass in range(2 if n - o > rows else 1):
            if sdot:
                counts["k_loop"] += len(range(0, k32, 32))
            else:
                i = 0
                while True:  # for (size_t i = 0;;) { end = ...; for (; i < end; i += 32); if (i == k32) break; }
                    counts["flush"] += 1
                    end = i + 96 if k32 - i > 96 else k32
                    while i < end:
                        counts["k_loop"] += 1
                        i += 32
                    if i == k32:
                        break
            counts["tail"] += t != 0
    return counts


def _count_s1(k: int, n: int) -> dict[str, int]:
    """Walks the loops of kws_neon_run_s1 (one input vector) and counts; tables: iterations of
    build_tables' group loop (4 groups each)."""
    g = (k + 7) // 8
    chunks = -(-g // 256)
    counts = dict(k_loop=0, group=0, tables=0, sum_x=len(range(0, k - k % 16, 16)), sum_tail=k % 16)
    if chunks == 1:
        counts["tables"] += len(range(0, 2 * g, 4))
    for _o in range(0, n, 16):
        counts["group"] += 1
        for q0 in range(0, g, 256):
            q1 = min(g, q0 + 256)
            if chunks > 1:
                counts["tables"] += len(range(2 * q0, 2 * q1, 4))
            counts["k_loop"] += len(range(q0, q1, 2))
    return counts


def test_packed_trip_counts_match_the_loops():
    # by hand: K = 87, N = 10: one group of 16 rows, 2 passes (rows 0-7, 8-9) of 2 steps of 32 (one block
    # each) and a tail of 23 codes; SDOT: 2 groups of 8 rows, 3 passes of 4; sum(x) in 5 steps of 16 and 7
    # scalar elements
    assert project.s4_trip_counts(87, 10) == dict(k_loop=4, flush=2, tail=2, group=1, sum_x=5, sum_tail=7)
    assert project.s4_trip_counts(87, 10, sdot=True) == dict(k_loop=6, flush=0, tail=3, group=2, sum_x=5,
                                                             sum_tail=7)
    # K = 400: 12 steps in blocks of 3, the last one full before the tail of 16 codes; K = 31: one block, no step
    assert project.s4_trip_counts(400, 8) == dict(k_loop=12, flush=4, tail=1, group=1, sum_x=25, sum_tail=0)
    assert project.s4_trip_counts(31, 8)["flush"] == 1
    # K = 123, N = 566 (1-bit): 16 group pairs, 36 panels of 8 K iterations; tables of 16 x 8 K
    assert project.s1_trip_counts(123, 566) == dict(k_loop=36 * 8, group=36, tables=8, sum_x=7, sum_tail=11)
    for k in (1, 16, 31, 32, 33, 87, 96, 127, 128, 192, 256, 257, 400, 540, 1080, 2048, 2049, 4100):
        for n in (1, 4, 5, 8, 9, 16, 17, 87, 123):
            assert project.s4_trip_counts(k, n) == _count_s4(k, n, False), (k, n)
            assert project.s4_trip_counts(k, n, sdot=True) == _count_s4(k, n, True), (k, n)
            assert project.s1_trip_counts(k, n) == _count_s1(k, n), (k, n)


def test_packed_pieces_on_the_compiled_kernels():
    s4, dot, s1 = project.dense_pieces("s4"), project.dense_pieces("dot_s4"), project.dense_pieces("s1")
    for k_loop in s4.k_loops:  # 8 rows x 32 codes: one load per row, AND + USHR, 32 multiplies into int16
        ops = _mnemonics(k_loop)
        assert [ops.count(m) for m in ("and", "ushr", "smlal", "smlal2", "sadalp")] == [8, 8, 16, 16, 0], ops
    for flush in s4.flushes:  # per block: each row's int16 lanes widened once, summed into the rows' int32 lanes
        ops = _mnemonics(flush)
        assert (ops.count("saddlp"), ops.count("addp"), "smlal" in ops) == (8, 6, False), ops
    # the last block's sums are costed as a block (project.s4_trip_counts), so the group path must not hold them
    assert "saddlp" not in _mnemonics(s4.group) and "saddlp" not in _mnemonics(s4.group_affine)
    assert not dot.flushes and all(_mnemonics(k).count("sdot") == 8 for k in dot.k_loops)
    for k_loop in s1.k_loops:  # 16 rows x 16 K: two 16-byte index loads, 8 TBL, no multiply
        ops = _mnemonics(k_loop)
        assert ops.count("tbl") == 8 and not {"smull", "mul", "sdot"} & set(ops), ops
    for kind, pieces in (("s4", s4), ("dot_s4", dot), ("s1", s1)):
        # the group paths: no K loop, no tail, the epilogue once per 8 rows (s1: twice per panel)
        for group in (pieces.group, pieces.group_affine):
            ops = _mnemonics(group)
            assert "tbl" not in ops and "sdot" not in ops and "ushr" not in ops, (kind, ops)
        # the 4-bit K loop's SMLAL stays out of the group path (the fused affine's w * v + bias, and the 1-bit
        # kernel's recombination 16 * high + low, may compile to SMLAL)
        if kind == "s4":
            assert "smlal" not in _mnemonics(pieces.group), kind
        # the fused affine: its weights loaded directly for a whole group (no memcpy call) and a second
        # requantization
        plain, affine = _mnemonics(pieces.group), _mnemonics(pieces.group_affine)
        assert "memcpy" not in pieces.group and "memcpy" not in pieces.group_affine, kind
        assert affine.count("sqrdmulh") == 2 * plain.count("sqrdmulh") > 0, kind
    assert _mnemonics(project.tail_loop("s4")).count("smlal2") == 16  # 8 rows
    assert _mnemonics(project.tail_loop("dot_s4")).count("sdot") == 8  # 4 rows
    vector, scalar = project.sum_x_loops("s1")
    assert _mnemonics(vector).count("saddlp") == 1 and _mnemonics(scalar).count("ldrsb") == 1
    assert _mnemonics(project.table_loop()).count("tbl") == project.TABLE_TBL


def _vector_ops(lines) -> list[str]:
    return sorted(line.split()[0] for line in lines if re.search(r"\b[vqd]\d", line))


def test_harness_runs_the_kernels_k_loops():
    # The group paths come from the harness, the K loops from the kernels: the harness compiles
    # the same K loops (the same vector instructions; the address arithmetic may differ), so the
    # harness changed nothing but what it fixes.
    for kind in ("s8", "acc16", "s4"):
        kernel, pieces = project.KINDS[kind], project.dense_pieces(kind)
        harness = project._harness(kind)["kws_mca_group_plain"]
        functions = project._harness(kind)
        loops = [f.instructions(i, j) for f in project._reachable(functions, harness.name)
                 for i, j in project._hot_loops(f, kernel.marker, kernel.markers, kernel.mix)]
        kernel_ops = _vector_ops(pieces.k_loops[0].splitlines())
        assert loops and all(_vector_ops(l) == kernel_ops for l in loops), kind


def test_what_runs_per_weights_policy():
    a53 = ("cortex-a53",)
    m2, m4, m1 = project.paper_layers("M2"), project.paper_layers("M4"), project.paper_layers("M1")
    # int8 activations: every affine layer runs fused into the dense layer before it
    steps = project.plan(*m2, "neon")
    assert [s["kind"] for s in steps] == ["s8", "fused"] * 6 + ["s8"]
    assert [s["fused_affine"] for s in steps if s["kind"] == "s8"] == [True] * 6 + [False]
    # the last layer (no affine after it) costs the plain group path, the others the fused one
    c = project.piece_cycles("s8", "cortex-a53"), project.piece_cycles("s8", "cortex-a53", affine=True)
    assert c[1]["group"] > c[0]["group"] and c[1]["k_loop"] == c[0]["k_loop"]
    # 16-bit activations: separate affine passes, the same whatever the weights policy
    assert [s["kind"] for s in project.plan(*m1, "neon")] == ["s16", "affine"] * 6 + ["s16"]
    (r1,) = project.project(*m1, cpus=a53, backends=("neon",))
    assert r1["cycles"] > r1["dense_cycles"] > 0
    assert project.project(*m1, cpus=a53, backends=("neon",), weights="packed")[0]["cycles"] == r1["cycles"]
    # weights: M4's 4-bit layers run the 4-bit kernels when packed, or auto (both dense_s4 slots have
    # beats_s8), int8 otherwise
    for weights, neon, dot in (("auto", "s4", "dot_s4"), ("packed", "s4", "dot_s4"), ("int8", "s8", "dot_s8")):
        rows = project.project(*m4, cpus=("cortex-a55",), weights=weights)
        assert [set(r["kinds"]) for r in rows] == [{neon}, {dot}], weights
    # the ground for the neon dense_s4 slot's beats_s8: M4 packed is projected faster than int8 on both cores
    for cpu in ("cortex-a53", "cortex-a55"):
        packed, int8 = (project.project(*m4, cpus=(cpu,), backends=("neon",), weights=w)[0]["cycles"]
                        for w in ("packed", "int8"))
        assert packed < int8, (cpu, packed, int8)
    # M2 (8-bit weights) runs int8 whatever the policy; M4 held as int8 is M2's cost
    assert len({project.project(*m2, cpus=a53, backends=("neon",), weights=w)[0]["cycles"]
                for w in project.WEIGHTS}) == 1
    assert (project.project(*m4, cpus=a53, backends=("neon",), weights="int8")[0]["cycles"]
            == project.project(*m2, cpus=a53, backends=("neon",))[0]["cycles"])
    # M6 (1-bit): the table build is per input vector, once per layer with K <= 2048
    steps = project.breakdown(*project.paper_layers("M6"), "neon", "cortex-a53", weights="packed")
    assert all(r["kind"] == "s1" and r["pieces"]["tables"] > 0 for r in steps if r["shape"].startswith("dense"))


def test_depthwise_tap_loops_on_the_compiled_kernels():
    """The projection costs the NEON depthwise kernels' tap loops as they are compiled: two taps an iteration in
    both, int32 sums widened by SADDW, int16 sums in four SMLAL chains and never widened in the loop."""
    loops = project.depthwise_loops()
    mnemonics = {name: [line.split()[0] for line in code.splitlines()] for name, code in loops.items()}
    assert mnemonics["int32"].count("saddw") + mnemonics["int32"].count("saddw2") == 4
    assert mnemonics["int16"].count("smlal") + mnemonics["int16"].count("smlal2") == 4
    assert not [m for m in mnemonics["int16"] if m.startswith(("saddw", "sxtl", "smull"))]
    for cpu in ("cortex-a53", "cortex-a72"):
        assert project.mca_cycles(loops["int16"], cpu) > 0 and project.mca_cycles(loops["int32"], cpu) > 0


def test_arm32_projection_covers_the_new_targets():
    """benchmarks/mca/project_arm32.py: every loop found in the real compiled kernels (with the MACs an iteration
    that its marker count implies) and projected on each modelled core; the Cortex-A7 has no model, so none."""
    spec = importlib.util.spec_from_file_location("mca_project_arm32", ROOT / "benchmarks" / "mca" / "project_arm32.py")
    arm32 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(arm32)
    rows = arm32.project()
    assert {(r["name"], r["cpu"]) for r in rows} == {
        ("neon int8", "cortex-a9"), ("neon int8", "cortex-a57"),
        *((name, cpu) for name in ("portable int8", "portable 4-bit", "portable 1-bit")
          for cpu in ("cortex-m4", "cortex-m7"))}
    for r in rows:
        assert r["copies"] >= 1 and 0 < r["cycles_per_mac"] < 50, r
    # 128 MACs of NEON an iteration cost far less per MAC than one scalar SMLABB does
    assert max(r["cycles_per_mac"] for r in rows if r["target"] == "armv7") < 1 < min(
        r["cycles_per_mac"] for r in rows if r["target"] != "armv7")
