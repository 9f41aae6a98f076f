"""The curated mutations: realistic one-line slips in the kernels, loaders, detector and reference.

Each must be killed (make one of its tests fail). Every kernel added later comes with its own entries.
An entry whose original text no longer occurs exactly once in its file fails tests/test_mutation.py, so the
list cannot rot silently. Semantically equivalent mutations (no difference the spec can observe) do not
belong here: they can never be killed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutation:
    """One bug: ``original`` (exactly once in ``file``) replaced by ``replacement``; ``tests`` are the pytest
    node ids that must fail because of it; ``ci`` puts it in the subset tests/test_mutation.py runs."""

    id: str
    file: str
    original: str
    replacement: str
    why: str
    tests: tuple[str, ...]
    ci: bool = False


def _ops(test: str, *backends: str) -> tuple[str, ...]:
    """tests/test_ops.py::test[backend] for each backend."""
    return tuple(f"tests/test_ops.py::{test}[{b}]" for b in backends)


def _each(file: str, test: str, *params: str) -> tuple[str, ...]:
    return tuple(f"tests/{file}::{test}[{p}]" for p in params)


NEON = ("neon-simde", "neon-dotprod-simde")
PACKED_TAILS = ("3", "31", "32", "33", "63", "64", "65", "87")

MUTATIONS: list[Mutation] = [
    # --- portable kernels and the scalar arithmetic every backend's tails use (csrc/requantize.c) ---
    Mutation(
        "portable-srdhm-nudge", "csrc/requantize.c",
        "int64_t nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));",
        "int64_t nudge = 1 << 30;",
        "SRDHM nudges negative products like positive ones, so their ties round toward +inf",
        _ops("test_requantize_s32_equals_reference", "portable"),
    ),
    Mutation(
        "portable-srdhm-no-saturation", "csrc/requantize.c",
        "  if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;\n",
        "",
        "SRDHM without its one saturating case: INT32_MIN * INT32_MIN comes out INT32_MIN",
        _ops("test_requantize_s32_equals_reference", "portable"),
    ),
    Mutation(
        "portable-rdbpot-threshold", "csrc/requantize.c",
        "int32_t threshold = (mask >> 1) + (x < 0);",
        "int32_t threshold = mask >> 1;",
        "RoundingDivideByPOT rounds negative ties up instead of away from zero",
        _ops("test_requantize_s32_equals_reference", "portable"),
        ci=True,
    ),
    Mutation(
        "portable-s64-reduced-truncated", "csrc/requantize.c",
        "? ((int64_t)multiplier + (1 << 15)) >> 16 : 0x7FFF;",
        "? (int64_t)multiplier >> 16 : 0x7FFF;",
        "the 16x8 path truncates the multiplier to 16 bits instead of rounding it",
        _ops("test_requantize_s64_equals_reference", "portable"),
    ),
    Mutation(
        "portable-zero-point-saturates", "csrc/requantize.c",
        "int32_t kws_add_wrap(int32_t a, int32_t b) { return wrap32((uint32_t)a + (uint32_t)b); }",
        "int32_t kws_add_wrap(int32_t a, int32_t b) { int64_t s = (int64_t)a + b; "
        "return s > INT32_MAX ? INT32_MAX : s < INT32_MIN ? INT32_MIN : (int32_t)s; }",
        "the output zero point is added with saturation where the spec (and TFLM) wrap",
        _ops("test_fully_connected_equals_reference", "portable") + _ops("test_affine_equals_reference", "portable"),
    ),
    Mutation(
        "portable-clamp-before-zero-point", "csrc/portable/fully_connected.c",
        "int32_t out = kws_add_wrap(kws_requant_s32(acc, p->multiplier[o], p->shift[o]), p->output_zero_point);",
        "int32_t out = kws_add_wrap(clamp(kws_requant_s32(acc, p->multiplier[o], p->shift[o]), p->act_min, "
        "p->act_max), p->output_zero_point);",
        "the requantized value is clamped before the output zero point is added, not after",
        _ops("test_fully_connected_equals_reference", "portable"),
    ),
    Mutation(
        "portable-quantize-ties", "csrc/portable/quantize.c",
        "t += (frac >= 0.5f) - (frac <= -0.5f);",
        "t += (frac > 0.5f) - (frac < -0.5f);",
        "QUANTIZE rounds ties toward zero instead of away from it",
        _ops("test_quantize_equals_reference", "portable"),
    ),
    Mutation(
        "portable-nibble-not-sign-extended", "csrc/portable/fully_connected_packed.c",
        "static int32_t nibble(unsigned v) { return (int32_t)((v & 15u) ^ 8u) - 8; }",
        "static int32_t nibble(unsigned v) { return (int32_t)(v & 15u); }",
        "4-bit codes read as unsigned: negative weights become 9..15",
        _each("test_model.py", "test_packed_kernels_at_every_tail", *(f"portable-{k}" for k in PACKED_TAILS)),
    ),
    Mutation(
        "posterior-interpolation-truncates", "csrc/posterior.c",
        "int32_t p = lo + (((hi - lo) * (int32_t)frac + 128) >> 8);",
        "int32_t p = lo + (((hi - lo) * (int32_t)frac) >> 8);",
        "the sigmoid interpolation truncates instead of rounding",
        ("tests/test_ops.py::test_posterior_equals_reference",),
    ),
    # --- bias folding (csrc/fold_bias.c) ---
    Mutation(
        "fold-bias-first-row", "csrc/fold_bias.c",
        "for (size_t i = 0; i < k; i++) row_sum += w[o * k + i];",
        "for (size_t i = 0; i < k; i++) row_sum += w[i];",
        "every row's zero point correction uses the first row's weight sum",
        _ops("test_fully_connected_equals_reference", "portable"),
    ),
    # --- avx2 ---
    Mutation(
        "avx2-srdhm-no-saturation", "csrc/avx2/avx2.h",
        "  return _mm256_xor_si256(r, sat);",
        "  return r;",
        "vector SRDHM without the INT32_MIN * INT32_MIN saturation the scalar code has",
        _ops("test_requantize_s32_equals_reference", "avx2") + _ops("test_fully_connected_equals_reference", "avx2"),
        ci=True,
    ),
    Mutation(
        "avx2-rdbpot-threshold", "csrc/avx2/avx2.h",
        "__m256i threshold = _mm256_sub_epi32(_mm256_srli_epi32(mask, 1), _mm256_cmpgt_epi32(_mm256_setzero_si256(), x));",
        "__m256i threshold = _mm256_srli_epi32(mask, 1);",
        "vector RoundingDivideByPOT rounds negative ties up",
        _ops("test_requantize_s32_equals_reference", "avx2"),
    ),
    Mutation(
        "avx2-acc16-block-doubled", "csrc/avx2/fully_connected.c",
        "fully_connected_s8(x, k, w, n, bias, p, (size_t)1 << log2_block, y);",
        "fully_connected_s8(x, k, w, n, bias, p, (size_t)1 << (log2_block + 1), y);",
        "int16 accumulation over twice the block the loader proved safe: partial sums can wrap",
        ("tests/test_acc16.py::test_acc16_kernels_equal_reference[avx2]",)
        + _each("test_acc16.py", "test_worst_case_at_the_bound", *(f"avx2-{k}" for k in (16, 48, 87, 400, 540))),
        ci=True,
    ),
    Mutation(
        "avx2-pack-transposed", "csrc/avx2/fully_connected.c",
        "*packed++ = r < n && i < k ? w[r * k + i] : 0;",
        "*packed++ = r < n && i < k ? w[i * n + r] : 0;",
        "the weight panels are packed from a column-major reading of the row-major weights",
        _ops("test_fully_connected_equals_reference", "avx2"),
    ),
    Mutation(
        "avx2-panel-stride", "csrc/avx2/fully_connected.c",
        "const size_t panel = 32 * round4(k); /* bytes of a panel of 32 rows */",
        "const size_t panel = 32 * k; /* bytes of a panel of 32 rows */",
        "the panel stride forgets that K is padded to a multiple of 4",
        _ops("test_fully_connected_equals_reference", "avx2"),
    ),
    Mutation(
        "avx2-s16-flush-late", "csrc/avx2/fully_connected.c",
        "#define BLOCK16 31 /* full chunks per block: with the tail chunk at most 32 */",
        "#define BLOCK16 32 /* full chunks per block: with the tail chunk at most 32 */",
        "16x8 int32 lanes widened after 33 chunks: the horizontal sum of a worst-case row can wrap",
        _ops("test_fully_connected_equals_reference", "avx2")
        + _each("test_int16_bounds.py", "test_16x8_worst_case_rows_equal_reference", *(f"avx2-{k}" for k in (527, 4103))),
    ),
    Mutation(
        "avx2-nibbles-high-half-unsigned", "csrc/avx2/fully_connected_nibbles.c",
        "__m128i c1 = _mm_sub_epi8(_mm_xor_si128(_mm_unpackhi_epi8(lo, hi), eight), eight);",
        "__m128i c1 = _mm_unpackhi_epi8(lo, hi);",
        "codes 16..31 of each 32 are not sign-extended from 4 bits",
        _each("test_model.py", "test_packed_kernels_at_every_tail", *(f"avx2-{k}" for k in PACKED_TAILS)),
    ),
    # --- sse4.1 ---
    Mutation(
        "sse41-srdhm-no-saturation", "csrc/sse41/sse41.h",
        "  return _mm_xor_si128(r, sat);",
        "  return r;",
        "vector SRDHM without the INT32_MIN * INT32_MIN saturation",
        _ops("test_requantize_s32_equals_reference", "sse4.1"),
    ),
    Mutation(
        "sse41-rdbpot-unsigned-half", "csrc/sse41/sse41.h",
        "lo = _mm_add_pd(lo, _mm_or_pd(_mm_and_pd(lo, sign), half));",
        "lo = _mm_add_pd(lo, half);",
        "lanes 0 and 1 add +0.5 before truncating whatever their sign: negative quotients round wrongly",
        _ops("test_requantize_s32_equals_reference", "sse4.1"),
    ),
    Mutation(
        "sse41-s64-one-shift-for-both-lanes", "csrc/sse41/sse41.h",
        "return _mm_blend_epi16(_mm_srl_epi64(v, count), _mm_srl_epi64(v, _mm_unpackhi_epi64(count, count)), 0xF0);",
        "return _mm_srl_epi64(v, count);",
        "both int64 lanes shifted by the first lane's count: per-channel shifts applied per tensor",
        _ops("test_fully_connected_equals_reference", "sse4.1"),
    ),
    # --- neon (built through SIMDe here) ---
    Mutation(
        "neon-output-zero-point-saturates", "csrc/neon/epilogue.h",
        "return vmovn_s32(vminq_s32(vmaxq_s32(vaddq_s32(v, o.zp), o.lo), o.hi));",
        "return vmovn_s32(vminq_s32(vmaxq_s32(vqaddq_s32(v, o.zp), o.lo), o.hi));",
        "the output zero point is added with saturation (SQADD) where the spec wraps",
        _ops("test_fully_connected_equals_reference", *NEON) + _ops("test_affine_equals_reference", "neon-simde"),
        ci=True,
    ),
    Mutation(
        "neon-rdbpot-no-fixup", "csrc/neon/epilogue.h",
        "int32x4_t fixup = vshrq_n_s32(vandq_s32(x, neg_right), 31);",
        "int32x4_t fixup = vdupq_n_s32(0);",
        "without the fix-up SRSHL rounds negative ties up, not away from zero",
        _ops("test_requantize_s32_equals_reference", "neon-simde"),
    ),
    Mutation(
        "neon-simde-sqrdmulh-no-saturation", "csrc/neon/neon.h",
        "r[i] = (av[i] == INT32_MIN && bv[i] == INT32_MIN) ? INT32_MAX : (int32_t)((ab + ((int64_t)1 << 30)) >> 31);",
        "r[i] = (int32_t)((ab + ((int64_t)1 << 30)) >> 31);",
        "the SQRDMULH emulation loses the saturation SIMDe itself lacks",
        _ops("test_requantize_s32_equals_reference", "neon-simde"),
    ),
    Mutation(
        "neon-per-tensor-multiplier", "csrc/neon/fc_s8.h",
        "m0 = vld1q_s32(p->multiplier + o), m1 = vld1q_s32(p->multiplier + o + 4);",
        "m0 = vdupq_n_s32(p->multiplier[o]), m1 = vdupq_n_s32(p->multiplier[o + 4]);",
        "a block of 8 channels requantized with the multipliers of channels o and o + 4 only",
        _ops("test_fully_connected_equals_reference", "neon-simde"),
    ),
    Mutation(
        "neon-acc16-block-doubled", "csrc/neon/fully_connected.c",
        "size_t block = (size_t)1 << log2_block;",
        "size_t block = (size_t)1 << (log2_block + 1);",
        "int16 accumulation over twice the proven block: partial sums can wrap",
        ("tests/test_acc16.py::test_acc16_kernels_equal_reference[neon-simde]",
         "tests/test_acc16.py::test_claims_change_speed_not_results[neon-simde]"),
    ),
    Mutation(
        "neon-dot-row-copy-paste", "csrc/neon/fully_connected_dot.c",
        "a1 = vdotq_s32(a1, vld1q_s8(r1 + i), xv);",
        "a1 = vdotq_s32(a1, vld1q_s8(r0 + i), xv);",
        "SDOT of the second row reads the first row's weights",
        _ops("test_fully_connected_equals_reference", "neon-dotprod-simde"),
    ),
    Mutation(
        "neon-nibbles-not-sign-extended", "csrc/neon/fully_connected_nibbles.c",
        "return vsubq_s8(vreinterpretq_s8_u8(veorq_u8(c, vdupq_n_u8(8))), vdupq_n_s8(8));",
        "return vreinterpretq_s8_u8(c);",
        "4-bit codes read as unsigned in the vector steps",
        _each("test_model.py", "test_packed_kernels_at_every_tail", *(f"neon-simde-{k}" for k in PACKED_TAILS)),
    ),
    # --- the C loader (csrc/blob.c) and CRC (csrc/crc32.c) ---
    Mutation(
        "crc-polynomial", "csrc/crc32.c",
        "0xEDB88320u",
        "0x04C11DB7u",
        "CRC-32 with the unreflected polynomial: every stored checksum mismatches",
        ("tests/test_format.py::test_checksum_error", "tests/test_format.py::test_round_trip[1-8]"),
    ),
    Mutation(
        "loader-checksum-status", "csrc/blob.c",
        'return fail(&c, KWS_ERR_CHECKSUM, "payload_crc32", 12);',
        'return fail(&c, KWS_ERR_FIELD, "payload_crc32", 12);',
        "a checksum mismatch reported as a field error",
        ("tests/test_format.py::test_checksum_error",),
    ),
    Mutation(
        "loader-multiplier-channel-0", "csrc/blob.c",
        "L->multiplier[i] = les32(v->multiplier + 4 * i);",
        "L->multiplier[i] = les32(v->multiplier);",
        "the C loader gives every channel the first channel's multiplier",
        ("tests/test_model.py::test_random_models_equal_reference[portable]",)
        + _each("test_model.py", "test_paper_models_round_trip_and_equal_reference", "portable-M2"),
    ),
    Mutation(
        "loader-off-grid-code", "csrc/blob.c",
        "int s = v >= (1u << (bits - 1)) ? (int)v - (1 << bits) : (int)v;",
        "int s = v > (1u << (bits - 1)) ? (int)v - (1 << bits) : (int)v;",
        "the code -2^(b-1), off the narrow grid, is read as +2^(b-1) and accepted",
        ("tests/test_format.py::test_code_outside_the_narrow_grid_is_refused",
         "tests/test_format.py::test_c_and_python_loaders_agree_on_payload_edits"),
    ),
    Mutation(
        "loader-acc16-half-block", "csrc/blob.c",
        "for (size_t i = j; i < k && i < j + block; i++) {",
        "for (size_t i = j; i < k && i < j + block / 2; i++) {",
        "the C loader re-proves an int16 block claim over half of each block",
        ("tests/test_acc16.py::test_unsafe_claims_are_refused_by_both_loaders",
         "tests/test_acc16_claims.py::test_every_claim_is_accepted_exactly_when_safe"),
    ),
    Mutation(
        "loader-nibble-stride-odd-k", "csrc/blob.c",
        "  size_t stride = (k + 1) / 2;\n  for (size_t o = 0; o < n; o++)\n    for (size_t i = 0; i < k; i++) out",
        "  size_t stride = k / 2;\n  for (size_t o = 0; o < n; o++)\n    for (size_t i = 0; i < k; i++) out",
        "4-bit rows packed with a stride rounded down: rows of odd K overlap",
        _each("test_model.py", "test_packed_kernels_at_every_tail", *(f"portable-{k}" for k in PACKED_TAILS)),
    ),
    Mutation(
        "loader-signs-msb-first", "csrc/blob.c",
        "out[o * stride + i / 8] |= (uint8_t)((w[o * k + i] < 0) << (i % 8));",
        "out[o * stride + i / 8] |= (uint8_t)((w[o * k + i] < 0) << (7 - i % 8));",
        "1-bit packing at load is MSB-first, the kernels read LSB-first",
        _each("test_model.py", "test_packed_weights_memory_and_results", "portable-M6"),
    ),
    # --- the Python loader (kwsint/blob.py) ---
    Mutation(
        "py-loader-multiplier-channel-0", "kwsint/blob.py",
        "want_mult, want_shift = dense_multipliers(in_scale, weight_scale, out_scale)",
        "want_mult, want_shift = dense_multipliers(in_scale, weight_scale[:1], out_scale)",
        "the Python loader derives every channel's multiplier from the first channel's scale",
        _each("test_format.py", "test_round_trip", *(f"{b}-{a}" for a in (8, 16) for b in (1, 2, 5, 8))),
    ),
    # --- the streaming detector (csrc/detector.c) ---
    Mutation(
        "detector-lockout-one-long", "csrc/detector.c",
        "d->quiet = c->lockout;",
        "d->quiet = c->lockout + 1;",
        "after a detection one step more than the lockout is suppressed",
        ("tests/test_detector.py::test_detector_equals_reference[portable]",
         "tests/test_detector.py::test_paper_model_smooths_fires_and_locks_out[portable-M1]"),
    ),
    Mutation(
        "detector-smoothing-floors", "csrc/detector.c",
        "int32_t s = (int32_t)((d->sum + d->count / 2) / d->count);",
        "int32_t s = (int32_t)(d->sum / d->count);",
        "the moving average is floored instead of rounded half up",
        ("tests/test_detector.py::test_detector_equals_reference[portable]",),
    ),
    # --- batched inference (csrc/model.c) and the detector's batches of steps (csrc/detector.c) ---
    Mutation(
        "batch-dense-one-window", "csrc/model.c",
        "L->dense->run((const int8_t *)in, count, L->in_size,",
        "L->dense->run((const int8_t *)in, 1, L->in_size,",
        "a dense layer of a batch runs on its first window only",
        ("tests/test_batched.py::test_infer_batch_equals_one_window_at_a_time[portable-8-int8]",
         "tests/test_batched.py::test_detector_pushes_of_any_size_agree[portable-8-int8-3]"),
    ),
    Mutation(
        "batch-s16-input-stride", "csrc/model.c",
        "kk->fully_connected_s16((const int16_t *)in + b * L->in_size,",
        "kk->fully_connected_s16((const int16_t *)in + b * L->out_size,",
        "a 16x8 dense layer reads each window of a batch at the output width",
        ("tests/test_batched.py::test_infer_batch_equals_one_window_at_a_time[portable-16-int8]",),
    ),
    Mutation(
        "batch-chunks-restart", "csrc/model.c",
        "run_layers(m, (const uint8_t *)inputs + done * in_bytes, c,",
        "run_layers(m, (const uint8_t *)inputs, c,",
        "every chunk of a batch runs the first chunk's windows",
        ("tests/test_batched.py::test_infer_batch_equals_one_window_at_a_time[portable-8-auto]",),
    ),
    Mutation(
        "detector-batch-step-frame", "csrc/detector.c",
        "d->step_frames[pending++] = d->frames - 1;",
        "d->step_frames[pending++] = d->frames;",
        "a batched step reports the frame after its window's newest",
        ("tests/test_batched.py::test_detector_pushes_of_any_size_agree[portable-8-int8-3]",),
    ),
    # --- the reference (kwsint/reference.py): the spec the kernels are held to ---
    Mutation(
        "ref-rdbpot-threshold", "kwsint/reference.py",
        "threshold = (mask >> 1) + (x < 0)",
        "threshold = mask >> 1",
        "the spec's RoundingDivideByPOT rounds negative ties up",
        ("tests/test_reference.py",),
    ),
    Mutation(
        "ref-quantize-ties", "kwsint/reference.py",
        "return t + np.where(np.abs(frac) >= 0.5, np.sign(x), 0)",
        "return t + np.where(np.abs(frac) > 0.5, np.sign(x), 0)",
        "the spec's round-half-away rounds ties toward zero",
        ("tests/test_reference.py",),
        ci=True,
    ),
    Mutation(
        "ref-zero-point-saturates", "kwsint/reference.py",
        "out = _wrap_int32(requantize(acc.astype(acc_type), multiplier, shift) + int(output_zero_point))",
        "out = np.clip(requantize(acc.astype(acc_type), multiplier, shift) + int(output_zero_point), INT32_MIN, INT32_MAX)",
        "the spec adds the output zero point with saturation instead of wrapping",
        ("tests/test_reference.py",) + _ops("test_fully_connected_equals_reference", "portable"),
    ),
    Mutation(
        "ref-lockout-inclusive", "kwsint/reference.py",
        "if last is None or t - last > lockout:",
        "if last is None or t - last >= lockout:",
        "the spec's lockout ends one step early",
        ("tests/test_reference.py",),
    ),
]

BY_ID: dict[str, Mutation] = {m.id: m for m in MUTATIONS}
