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
    """tests/engine/test_ops.py::test[backend] for each backend."""
    return tuple(f"tests/engine/test_ops.py::{test}[{b}]" for b in backends)


def _each(file: str, test: str, *params: str) -> tuple[str, ...]:
    return tuple(f"tests/{file}::{test}[{p}]" for p in params)


NEON = ("neon-simde", "neon-dotprod-simde")
PACKED_TAILS = ("3", "31", "32", "33", "63", "64", "65", "87")
DW_FILE = "engine/test_graph_engine.py"
DW_TEST = "test_depthwise_conv_at_the_kernels_channel_and_tap_boundaries_on_every_backend"
DW16_TEST = "test_depthwise_int16_sums_at_the_bound_on_every_backend"

MUTATIONS: list[Mutation] = [
    # --- portable kernels and the scalar arithmetic every backend's tails use (csrc/kwsint_internal.h, csrc/requantize.c) ---
    Mutation(
        "portable-srdhm-nudge", "csrc/kwsint_internal.h",
        "int64_t nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));",
        "int64_t nudge = 1 << 30;",
        "SRDHM nudges negative products like positive ones, so their ties round toward +inf",
        _ops("test_requantize_s32_equals_reference", "portable"),
    ),
    Mutation(
        "portable-srdhm-no-saturation", "csrc/kwsint_internal.h",
        "  if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;\n",
        "",
        "SRDHM without its one saturating case: INT32_MIN * INT32_MIN comes out INT32_MIN",
        _ops("test_requantize_s32_equals_reference", "portable"),
    ),
    Mutation(
        "portable-rdbpot-threshold", "csrc/kwsint_internal.h",
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
        "portable-zero-point-saturates", "csrc/kwsint_internal.h",
        "int32_t kws_add_wrap(int32_t a, int32_t b) { return kws_wrap32((uint32_t)a + (uint32_t)b); }",
        "int32_t kws_add_wrap(int32_t a, int32_t b) { int64_t s = (int64_t)a + b; "
        "return s > INT32_MAX ? INT32_MAX : s < INT32_MIN ? INT32_MIN : (int32_t)s; }",
        "the output zero point is added with saturation where the spec (and TFLM) wrap",
        _ops("test_fully_connected_equals_reference", "portable") + _ops("test_affine_equals_reference", "portable"),
    ),
    Mutation(
        "portable-clamp-before-zero-point", "csrc/kwsint_internal.h",
        "v = kws_clamp_to(kws_add_wrap(kws_requant_s32(acc + e->bias[c], p->multiplier[c], p->shift[c]),",
        "v = kws_clamp_to(kws_add_wrap(kws_clamp_to(kws_requant_s32(acc + e->bias[c], p->multiplier[c], "
        "p->shift[c]), p),",
        "the requantized value is clamped before the output zero point is added, not after",
        _ops("test_fully_connected_equals_reference", "portable"),
    ),
    Mutation(
        "epilogue-affine-dense-multiplier", "csrc/kwsint_internal.h",
        "kws_requant_s32(e->affine_bias[c] + e->affine_w[c] * v, q->multiplier[c],",
        "kws_requant_s32(e->affine_bias[c] + e->affine_w[c] * v, p->multiplier[c],",
        "the fused affine layer is requantized with the dense layer's multipliers",
        _each("engine/test_model.py", "test_paper_models_round_trip_and_equal_reference", "portable-M2"),
    ),
    Mutation(
        "avx2-fused-affine-dense-bias", "csrc/avx2/avx2.h",
        "    __m256i b = _mm256_loadu_si256((const __m256i *)(e->affine_bias + c));",
        "    __m256i b = _mm256_loadu_si256((const __m256i *)(e->bias + c));",
        "the vector epilogue adds the dense layer's bias to the fused affine layer's accumulator",
        _each("engine/test_model.py", "test_paper_models_round_trip_and_equal_reference", "avx2-M2"),
    ),
    Mutation(
        "sse41-fused-affine-dense-bias", "csrc/sse41/sse41.h",
        "    __m128i b = _mm_loadu_si128((const __m128i *)(e->affine_bias + c));",
        "    __m128i b = _mm_loadu_si128((const __m128i *)(e->bias + c));",
        "the vector epilogue adds the dense layer's bias to the fused affine layer's accumulator",
        _each("engine/test_model.py", "test_paper_models_round_trip_and_equal_reference", "sse4.1-M2"),
    ),
    Mutation(
        "neon-fused-affine-dense-params", "csrc/neon/fc_s8.h",
        "vmulq_s32(vmovl_s16(vget_low_s16(w)), v0), e->affine_bias, e->affine_p, out[1], o, lanes0);",
        "vmulq_s32(vmovl_s16(vget_low_s16(w)), v0), e->affine_bias, e->p, out[1], o, lanes0);",
        "the fused affine layer's first 4 channels are requantized with the dense layer's multipliers",
        # the 8-row epilogue: the SDOT kernel's (the ARMv8.0 int8 kernels run the 16-row one)
        _each("engine/test_model.py", "test_paper_models_round_trip_and_equal_reference", "neon-dotprod-simde-M2"),
    ),
    Mutation(
        "runner-fused-layer-runs-again", "csrc/model.c",
        "    if (m->layers[l].fused == KWS_FUSED_INTO_PREVIOUS) continue; /* done in layer l - 1's epilogue */\n",
        "",
        "an affine layer fused into the previous dense layer's epilogue runs a second time on its own",
        _each("engine/test_model.py", "test_paper_models_round_trip_and_equal_reference", "portable-M2"),
    ),
    Mutation(
        "plan-auto-ignores-speed", "csrc/plan.c",
        "return own->run && own->beats_s8 ? own : s8;",
        "return own->run ? own : s8;",
        "weights=\"auto\" picks a packed kernel that is slower than the backend's int8 one",
        ("tests/engine/test_dense_kernels.py::test_auto_keeps_int8_where_packed_is_slower",),
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
        _each("engine/test_model.py", "test_packed_kernels_at_every_tail", *(f"portable-{k}" for k in PACKED_TAILS)),
    ),
    Mutation(
        "posterior-interpolation-truncates", "csrc/posterior.c",
        "int32_t p = lo + (((hi - lo) * (int32_t)frac + 128) >> 8);",
        "int32_t p = lo + (((hi - lo) * (int32_t)frac) >> 8);",
        "the sigmoid interpolation truncates instead of rounding",
        ("tests/engine/test_ops.py::test_posterior_equals_reference",),
    ),
    # --- streaming graphs (csrc/graph.c) ---
    Mutation(
        "graph-window-keeps-oldest", "csrc/graph.c",
        "      *start += x->frames; /* the state is the window's newest frames */\n",
        "",
        "a shift register keeps its oldest frames instead of its newest (its window never moves on)",
        ("tests/engine/test_graph_engine.py::test_streaming_graph_on_every_backend_from_init_and_through_resets[1]",),
        ci=True,
    ),
    Mutation(
        "graph-window-wrap-keeps-older-rows", "csrc/graph.c",
        "memmove(region, region + *start * c, s->frames * c);",
        "memmove(region, region + (*start - 1) * c, s->frames * c);",
        "when a Window's region is full, the frames moved to its front start one frame before the state",
        ("tests/engine/test_graph_engine.py::test_streaming_graph_on_every_backend_from_init_and_through_resets[1]",
         "tests/engine/test_graph_engine.py::test_slice_views_and_window_regions_equal_the_reference_whichever_tensor_is_the_output"),
    ),
    Mutation(
        "graph-slice-view-first-frames", "csrc/graph.c",
        "op->view_delta = (x->frames - op->frames) * x->row + op->channel_start; /* the last frames */",
        "op->view_delta = op->channel_start; /* the last frames */",
        "a Slice (a view or a copy) takes its input's first frames instead of its last",
        ("tests/engine/test_graph_engine.py::test_streaming_graph_on_every_backend_from_init_and_through_resets[1]",
         "tests/engine/test_graph_engine.py::test_slice_views_and_window_regions_equal_the_reference_whichever_tensor_is_the_output"),
    ),
    Mutation(
        "graph-slice-view-own-row", "csrc/graph.c",
        "        y->row = x->row;\n",
        "        y->row = y->channels;\n",
        "a Slice view steps through its input's storage by its own channels instead of its input's row",
        ("tests/engine/test_graph_engine.py::test_streaming_graph_on_every_backend_from_init_and_through_resets[1]",
         "tests/engine/test_graph_engine.py::test_slice_views_and_window_regions_equal_the_reference_whichever_tensor_is_the_output"),
    ),
    Mutation(
        "graph-same-pads-after-first", "csrc/graph.c",
        "pad = need > x->frames ? (need - x->frames) / 2 : 0;",
        "pad = need > x->frames ? (need - x->frames + 1) / 2 : 0;",
        "SAME padding puts the odd frame before the input, where TFLM puts it after",
        ("tests/engine/test_graph_engine.py::test_conv_on_every_backend", "tests/engine/test_graph_engine.py::test_depthwise_conv_on_every_backend"),
    ),
    Mutation(
        "graph-depthwise-fold-sign", "csrc/graph.c",
        "op->bias[c] = les32(v->bias + 4 * c) - x->zero_point * sum;",
        "op->bias[c] = les32(v->bias + 4 * c) + x->zero_point * sum;",
        "the depthwise input zero point is folded into the bias with the wrong sign",
        ("tests/engine/test_graph_engine.py::test_depthwise_conv_on_every_backend",),
    ),
    Mutation(
        "graph-logistic-radius-open", "csrc/graph.c",
        "    if (v <= -radius) {",
        "    if (v < -radius) {",
        "LOGISTIC computes the input at minus the radius instead of saturating it to -128",
        ("tests/engine/test_graph_engine.py::test_logistic_table_built_in_c_equals_the_reference_on_every_input",),
    ),
    Mutation(
        "graph-reset-keeps-state", "csrc/stream.c",
        "  if (s->model->graph) kws_graph_stream_reset(s->model->graph, s->arena);\n",
        "",
        "kws_stream_reset leaves a graph's states as they are",
        ("tests/engine/test_graph_engine.py::test_streaming_graph_on_every_backend_from_init_and_through_resets[1]",),
    ),
    # --- bias folding (csrc/fold_bias.c) ---
    Mutation(
        "fold-bias-first-row", "csrc/fold_bias.c",
        "for (size_t i = 0; i < k; i++) row_sum += kws_code_at(w, o * k + i);",
        "for (size_t i = 0; i < k; i++) row_sum += kws_code_at(w, i);",
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
        "size_t block = log2_block ? (size_t)1 << log2_block : 0;",
        "size_t block = log2_block ? (size_t)1 << (log2_block + 1) : 0;",
        "int16 accumulation over twice the block the loader proved safe: partial sums can wrap",
        ("tests/engine/test_acc16.py::test_acc16_kernels_equal_reference[avx2]",)
        + _each("engine/test_acc16.py", "test_worst_case_at_the_bound", *(f"avx2-{k}" for k in (16, 48, 87, 400, 540))),
        ci=True,
    ),
    Mutation(
        "avx2-pack-transposed", "csrc/avx2/fully_connected.c",
        "*packed++ = r < n && i < k ? (uint8_t)kws_code_at(w, r * k + i) : 0;",
        "*packed++ = r < n && i < k ? (uint8_t)kws_code_at(w, i * n + r) : 0;",
        "the weight panels are packed from a column-major reading of the row-major weights",
        _ops("test_fully_connected_equals_reference", "avx2"),
    ),
    Mutation(
        "avx2-panel-stride", "csrc/avx2/fully_connected.c",
        "w += stride * (round4(k) / 4);",
        "w += stride * (k / 4);",
        "the panel stride forgets that K is padded to a multiple of 4",
        _ops("test_fully_connected_equals_reference", "avx2"),
    ),
    Mutation(
        "avx2-hoist-no-abs", "csrc/avx2/fully_connected.c",
        "_mm256_storeu_si256((__m256i *)(h->a[b] + j), _mm256_abs_epi8(_mm256_loadu_si256((const __m256i *)(h->s[b] + j))));",
        "_mm256_storeu_si256((__m256i *)(h->a[b] + j), _mm256_loadu_si256((const __m256i *)(h->s[b] + j)));",
        "the hoisted unsigned operand is x itself, not |x|: negative activations multiply as 256 + x",
        _ops("test_fully_connected_equals_reference", "avx2"),
    ),
    Mutation(
        "avx2-batch-group-second-input", "csrc/avx2/fully_connected.c",
        "#define X_OF(v, j) (j / P == 0 ? v##0 : j / P == 1 ? v##1 : j / P == 2 ? v##2 : v##3)",
        "#define X_OF(v, j) (j / P == 0 ? v##0 : j / P == 1 ? v##0 : j / P == 2 ? v##2 : v##3)",
        "the second input of a batch group reuses the first one's activations with the shared weight loads",
        _each("engine/test_dense_kernels.py", "test_int8_kernels_on_every_batch_group", "avx2-0-87-64", "avx2-5-87-64"),
    ),
    Mutation(
        "avx2-rows-stride-unpadded", "csrc/avx2/fully_connected.c",
        "for (size_t r = 0; r < n; r++, w += round32(k)) {",
        "for (size_t r = 0; r < n; r++, w += k) {",
        "layers of fewer than 8 rows step from row to row by K, not by the padded row of round32(K) bytes",
        _each("engine/test_dense_kernels.py", "test_int8_kernels_on_every_batch_group", "avx2-0-5-2", "avx2-0-33-7"),
    ),
    Mutation(
        "avx2-hoist-once-past-chunk", "csrc/avx2/fully_connected.c",
        "const int refill = k > CHUNK;",
        "const int refill = k > 2 * CHUNK;",
        "K of 1025..2048 is hoisted once, one chunk of 1024: the second chunk multiplies stale activations",
        _each("engine/test_dense_kernels.py", "test_int8_kernels_on_every_batch_group", "avx2-0-1025-24", "avx2-5-1025-24"),
    ),
    Mutation(
        "avx2-epilogue-part-first-bias", "csrc/avx2/avx2.h",
        "__m256i bias = _mm256_maskload_epi32(e->bias + c, lanes);",
        "__m256i bias = _mm256_maskload_epi32(e->bias, lanes);",
        "the partial block's epilogue takes the biases of the layer's first channels",
        _each("engine/test_dense_kernels.py", "test_int8_kernels_on_every_batch_group", "avx2-0-64-65", "avx2-0-540-87"),
    ),
    Mutation(
        "avx2-epilogue-part-odd-code", "csrc/avx2/avx2.h",
        "if (r & 1) y[i] = out[i];",
        "if (r & 1) y[i] = out[0];",
        "a partial block of an odd number of channels stores its first code as its last",
        _each("engine/test_dense_kernels.py", "test_int8_kernels_on_every_batch_group", "avx2-0-540-87"),
    ),
    Mutation(
        "avx2-s16-flush-late", "csrc/avx2/fully_connected.c",
        "#define BLOCK16 31 /* full chunks per block: with the tail chunk at most 32 */",
        "#define BLOCK16 32 /* full chunks per block: with the tail chunk at most 32 */",
        "16x8 int32 lanes widened after 33 chunks: the horizontal sum of a worst-case row can wrap",
        _ops("test_fully_connected_equals_reference", "avx2")
        + _each("engine/test_int16_bounds.py", "test_16x8_worst_case_rows_equal_reference", *(f"avx2-{k}" for k in (527, 4103))),
    ),
    Mutation(
        "avx2-s4-offset-correction", "csrc/avx2/fully_connected_s4.c",
        "const __m256i corr = _mm256_set1_epi32(-8 * sum_x);",
        "const __m256i corr = _mm256_set1_epi32(-7 * sum_x);",
        "the unsigned offset codes' correction is off by sum(x)",
        _each("engine/test_dense_kernels.py", "test_packed_kernels_at_their_extremes", "avx2-1-4", "avx2-87-2"),
    ),
    Mutation(
        "avx2-s4-flush-late", "csrc/avx2/fully_connected_s4.c",
        "    STEPS(x + i) STEPS(x + i + 8) STEPS(x + i + 16) STEPS(x + i + 24)\n",
        "    STEPS(x + i) STEPS(x + i + 8) STEPS(x + i + 16) STEPS(x + i + 24)\n"
        "    if (i + 40 <= k) { STEPS(x + i + 32) i += 8; }\n",
        "5 steps (10 pair sums) per int16 block: the sums wrap at the bound",
        _each("engine/test_dense_kernels.py", "test_packed_kernels_at_their_extremes", "avx2-64-4", "avx2-540-4"),
    ),
    Mutation(
        "avx2-s4-tail-high-half", "csrc/avx2/fully_connected_s4.c",
        "      memcpy(t, x + i, k - i);",
        "      memcpy(t, x + i, k - i < 4 ? k - i : 4);",
        "a K tail of 5 to 7 elements drops its last 1 to 3 activations",
        _each("engine/test_dense_kernels.py", "test_packed_kernels_at_their_extremes", "avx2-7-4", "avx2-87-4"),
    ),
    Mutation(
        "avx2-s1-flush-late", "csrc/avx2/fully_connected_s1.c",
        "const size_t end = steps - s > 32 ? s + 32 : steps;",
        "const size_t end = steps - s > 33 ? s + 33 : steps;",
        "66 table values per int16 block: the sums wrap at the bound",
        _each("engine/test_dense_kernels.py", "test_packed_kernels_at_their_extremes", "avx2-400-1", "avx2-4099-1"),
    ),
    Mutation(
        "avx2-s1-sign-identity", "csrc/avx2/fully_connected_s1.c",
        "__m256i d = _mm256_sub_epi32(sx, _mm256_slli_epi32(",
        "__m256i d = _mm256_add_epi32(sx, _mm256_slli_epi32(",
        "dot = sum(x) + 2 S instead of sum(x) - 2 S",
        _each("engine/test_dense_kernels.py", "test_packed_kernels_at_their_extremes", "avx2-8-1", "avx2-87-1"),
    ),
    Mutation(
        "avx2-s1-stale-table", "csrc/avx2/fully_connected_s1.c",
        "if (o == 0 || k8 > CHUNK_K) build_tables(",
        "if (o == 0) build_tables(",
        "rows after the first set reuse the last stretch's tables when K spans several",
        ("tests/engine/test_dense_kernels.py::test_packed_kernels_on_long_rows[avx2-1]",),
    ),
    # --- avx-vnni and avx512-vnni (one kernel source, csrc/avxvnni/dense.h, at two widths) ---
    Mutation(
        "vnni-row-correction-sign", "csrc/avxvnni/dense.h",
        "int32_t c = -128 * s;",
        "int32_t c = 128 * s;",
        "the row correction adds 128 * sum(w) instead of removing it: every output is off by 256 * sum(w)",
        _ops("test_fully_connected_equals_reference", "avx-vnni", "avx512-vnni"),
    ),
    Mutation(
        "vnni-hoist-no-offset", "csrc/avxvnni/dense.h",
        "_mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(xb + j)), flip)",
        "_mm256_loadu_si256((const __m256i *)(xb + j))",
        "whole vectors of x are hoisted without the + 128 (only the tail gets it): negative activations "
        "multiply as 256 + x",
        _ops("test_fully_connected_equals_reference", "avx-vnni", "avx512-vnni"),
    ),
    Mutation(
        "vnni-split-sets-share-weights", "csrc/avxvnni/dense.h",
        "VN_BCAST4(h->u[VN_INPUT(j)] + i + 4 * VN_SET(j)), VN_WEIGHTS(j, VN_SET(j)));",
        "VN_BCAST4(h->u[VN_INPUT(j)] + i + 4 * VN_SET(j)), VN_WEIGHTS(j, 0));",
        "the accumulator sets of a sub-panel with fewer blocks all read the first group of 4 K's weights",
        _each("engine/test_dense_kernels.py", "test_int8_kernels_on_every_batch_group",
              "avx-vnni-0-87-64", "avx512-vnni-0-87-64", "avx-vnni-0-400-9", "avx512-vnni-0-400-9"),
    ),
    Mutation(
        "vnni-rows-correction-dropped", "csrc/avxvnni/dense.h",
        "sums[b][r] = VN_HSUM(a[b]) + c[r];",
        "sums[b][r] = VN_HSUM(a[b]);",
        "layers of fewer than 8 rows leave out the row correction",
        _each("engine/test_dense_kernels.py", "test_int8_kernels_on_every_batch_group",
              "avx-vnni-0-5-2", "avx512-vnni-0-5-2", "avx-vnni-0-33-7", "avx512-vnni-0-33-7"),
    ),
    Mutation(
        "avx512-rdbpot-threshold", "csrc/avx512/avx512.h",
        "__m512i threshold = _mm512_mask_add_epi32(half, _mm512_cmplt_epi32_mask(x, _mm512_setzero_si512()), half, one);",
        "__m512i threshold = half;",
        "the 16-lane epilogue rounds negative ties up instead of away from zero",
        _ops("test_fully_connected_equals_reference", "avx512-vnni"),
    ),
    Mutation(
        "avx512-affine-requant-params", "csrc/avx512/avx512.h",
        "v = kws_avx512_output_s32(_mm512_add_epi32(b, _mm512_mullo_epi32(w, v)), e->affine_p, c, live);",
        "v = kws_avx512_output_s32(_mm512_add_epi32(b, _mm512_mullo_epi32(w, v)), e->p, c, live);",
        "the fused affine layer is requantized with the dense layer's multipliers and shifts",
        _each("engine/test_model.py", "test_paper_models_round_trip_and_equal_reference", "avx512-vnni-M2"),
    ),
    Mutation(
        "avx512-partial-block-live-lanes", "csrc/avx512/avx512.h",
        "const __mmask16 live = (__mmask16)((1u << r) - 1);",
        "const __mmask16 live = (__mmask16)((1u << (r - 1)) - 1);",
        "every block of 16 rows drops its last live channel",
        _each("engine/test_dense_kernels.py", "test_int8_kernels_on_every_batch_group", "avx512-vnni-0-64-65",
              "avx512-vnni-0-540-87"),
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
    Mutation(
        "sse41-nibbles-int16-block-too-long", "csrc/sse41/fully_connected_nibbles.c",
        "#define STEPS16 4 /* steps of 32 codes an int16 lane sums before widening */",
        "#define STEPS16 5 /* steps of 32 codes an int16 lane sums before widening */",
        "10 pair sums of u * x in an int16 lane: 10 * 3840 wraps at codes 7 against x = -128",
        _each("engine/test_dense_kernels.py", "test_packed_kernels_at_their_extremes", "sse4.1-400-4", "sse4.1-4099-4"),
    ),
    Mutation(
        "sse41-nibbles-pack-interleaved", "csrc/sse41/fully_connected_nibbles.c",
        "    *high = (i & 31) >= 16;",
        "    *high = i & 1;",
        "full steps packed with even / odd codes in the low / high nibbles (the portable order), not K and K + 16",
        _each("engine/test_model.py", "test_packed_kernels_at_every_tail", *(f"sse4.1-{k}" for k in PACKED_TAILS)),
    ),
    Mutation(
        "sse41-nibbles-tail-high-lanes-shifted", "csrc/sse41/fully_connected_nibbles.c",
        "    if (k32 + rb + j < k) thi[16 - rb + j] = x[k32 + rb + j];",
        "    if (k32 + rb + j < k) thi[16 - rb + j] = x[k32 + rb + j - 1];",
        "the tail's high-nibble codes meet the activations one position early",
        _each("engine/test_model.py", "test_packed_kernels_at_every_tail", *(f"sse4.1-{k}" for k in PACKED_TAILS)),
    ),
    Mutation(
        "sse41-sum-s8-wrong-lane", "csrc/sse41/sse41.h",
        "int32_t sum = _mm_cvtsi128_si32(s) + _mm_extract_epi32(s, 2) - 128 * (int32_t)i;",
        "int32_t sum = _mm_cvtsi128_si32(s) + _mm_extract_epi32(s, 1) - 128 * (int32_t)i;",
        "sum(x) reads the upper half of psadbw's first 64-bit lane instead of the second lane's sum",
        _each("engine/test_model.py", "test_packed_kernels_at_every_tail", *(f"sse4.1-{k}" for k in PACKED_TAILS)),
    ),
    Mutation(
        "sse41-signs-int8-block-too-long", "csrc/sse41/fully_connected_signs.c",
        "#define STEPS8 16      /* steps an int8 lane of hi parts sums before widening */",
        "#define STEPS8 17      /* steps an int8 lane of hi parts sums before widening */",
        "17 steps of hi parts (-8 each at x = -128 under +1 codes) wrap the int8 lane",
        _each("engine/test_dense_kernels.py", "test_packed_kernels_at_their_extremes", "sse4.1-400-1", "sse4.1-4099-1"),
    ),
    Mutation(
        "sse41-signs-lo-plane-8-bits", "csrc/sse41/fully_connected_signs.c",
        "const __m128i b0 = BITS4(0), b1 = BITS4(1), b2 = BITS4(2), b3 = BITS4(3), low7 = _mm_set1_epi16(127);",
        "const __m128i b0 = BITS4(0), b1 = BITS4(1), b2 = BITS4(2), b3 = BITS4(3), low7 = _mm_set1_epi16(255);",
        "table lo plane keeps 8 bits while hi is T >> 7: lo + 128 * hi double-counts bit 7 (and lo bytes wrap)",
        _each("engine/test_model.py", "test_packed_kernels_at_every_tail", *(f"sse4.1-{k}" for k in PACKED_TAILS)),
    ),
    Mutation(
        "sse41-signs-k-blocks-restart", "csrc/sse41/fully_connected_signs.c",
        "          a[v] = s0 ? _mm_loadu_si128((const __m128i *)(sums + r + 4 * v)) : _mm_setzero_si128();",
        "          a[v] = _mm_setzero_si128();",
        "each block of 1024 activations overwrites the row sums of the blocks before it",
        _each("engine/test_dense_kernels.py", "test_packed_kernels_past_their_blocks", "sse4.1-1031-1045-1", "sse4.1-2049-17-1"),
    ),
    Mutation(
        "sse41-signs-tail-rows-add-sum", "csrc/sse41/fully_connected_signs.c",
        "  for (; r < rows; r++) y[o0 + r] = kws_epilogue_s8(2 * sums[r] - sum_x, e, o0 + r);",
        "  for (; r < rows; r++) y[o0 + r] = kws_epilogue_s8(2 * sums[r] + sum_x, e, o0 + r);",
        "rows past the last group of 4 take 2S + sum(x): the sign identity reversed",
        _each("engine/test_model.py", "test_packed_kernels_at_every_tail", *(f"sse4.1-{k}" for k in PACKED_TAILS)),
    ),
    # --- neon (built through SIMDe here) ---
    Mutation(
        "neon-output-zero-point-saturates", "csrc/neon/epilogue.h",
        "return vminq_s32(vmaxq_s32(vaddq_s32(v, o.zp), o.lo), o.hi);",
        "return vminq_s32(vmaxq_s32(vqaddq_s32(v, o.zp), o.lo), o.hi);",
        "the output zero point is added with saturation (SQADD) where the spec wraps",
        _ops("test_fully_connected_equals_reference", *NEON) + _ops("test_affine_equals_reference", "neon-simde"),
        ci=True,
    ),
    Mutation(
        "neon-rdbpot-no-fixup", "csrc/neon/epilogue.h",
        "int32x4_t fixup = vandq_s32(veorq_s32(a, mult), neg_right);",
        "int32x4_t fixup = vdupq_n_s32(0);",
        "without the fix-up SRSHL rounds negative ties up, not away from zero",
        _ops("test_requantize_s32_equals_reference", "neon-simde"),
    ),
    Mutation(
        "neon-rdbpot-fixup-sign-of-acc", "csrc/neon/epilogue.h",
        "int32x4_t fixup = vandq_s32(veorq_s32(a, mult), neg_right);",
        "int32x4_t fixup = vandq_s32(a, neg_right);",
        "the fix-up taken from the sign of the shifted accumulator alone: wrong for negative multipliers",
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
        "b = vld1q_s32(bias + o), m = vld1q_s32(p->multiplier + o), e = vld1q_s32(p->shift + o);",
        "b = vld1q_s32(bias + o), m = vdupq_n_s32(p->multiplier[o]), e = vld1q_s32(p->shift + o);",
        "each block of 4 channels requantized with its first channel's multiplier",
        _ops("test_fully_connected_equals_reference", "neon-simde"),
    ),
    Mutation(
        "neon-dot8-row-copy-paste", "csrc/neon/fully_connected.c",
        "int16x8_t p5 = vmull_s8(vget_low_s8(w5), xl);",
        "int16x8_t p5 = vmull_s8(vget_low_s8(w4), xl);",
        "row 5 of the 8-row pass multiplies row 4's low weights (a copy-paste slip in the unrolled rows)",
        _ops("test_fully_connected_equals_reference", "neon-simde"),
    ),
    Mutation(
        "neon-dot8-acc16-row-copy-paste", "csrc/neon/fully_connected.c",
        "p5 = vmlal_s8(p5, vget_low_s8(w5), xl);",
        "p5 = vmlal_s8(p5, vget_low_s8(w4), xl);",
        "row 5 of the 8-row int16-block pass multiplies row 4's low weights",
        ("tests/engine/test_acc16.py::test_acc16_kernels_equal_reference[neon-simde]",),
    ),
    Mutation(
        "neon-finish16-affine-dense-params", "csrc/neon/fc_s8.h",
        "vmulq_s32(vmovl_s16(vget_low_s16(wh)), v2), e->affine_bias, e->affine_p, out[1], o + 8, l2);",
        "vmulq_s32(vmovl_s16(vget_low_s16(wh)), v2), e->affine_bias, e->p, out[1], o + 8, l2);",
        "rows 8..11 of a 16-row group's fused affine layer requantized with the dense layer's multipliers",
        _each("engine/test_model.py", "test_paper_models_round_trip_and_equal_reference", "neon-simde-M2"),
    ),
    Mutation(
        "neon-acc16-block-doubled", "csrc/neon/fully_connected.c",
        "size_t block = (size_t)1 << log2_block;",
        "size_t block = (size_t)1 << (log2_block + 1);",
        "int16 accumulation over twice the proven block: partial sums can wrap",
        ("tests/engine/test_acc16.py::test_acc16_kernels_equal_reference[neon-simde]",
         "tests/engine/test_acc16.py::test_claims_change_speed_not_results[neon-simde]"),
    ),
    Mutation(
        "neon-dot-row-copy-paste", "csrc/neon/fully_connected_dot.c",
        "a1 = vdotq_s32(a1, vld1q_s8(r1 + i), xv);",
        "a1 = vdotq_s32(a1, vld1q_s8(r0 + i), xv);",
        "SDOT of the second row reads the first row's weights",
        _ops("test_fully_connected_equals_reference", "neon-dotprod-simde"),
    ),
    Mutation(
        "neon-s4-int16-block-doubled", "csrc/neon/fully_connected_s4.c",
        "enum { S4_BLOCK = 96 };",
        "enum { S4_BLOCK = 192 };",
        "the 4-bit kernel's int16 lanes take up to 28 products of up to 15 * 128: they wrap at the extremes",
        _each("engine/test_dense_kernels.py", "test_packed_kernels_at_their_extremes", "neon-simde-540-4",
              "neon-simde-4099-4"),
    ),
    Mutation(
        "neon-s4-dot8-row-copy-paste", "csrc/neon/fully_connected_s4.c",
        "S4_STEP(r5, p5);",
        "S4_STEP(r4, p5);",
        "row 5 of the 8-row 4-bit pass multiplies row 4's codes (a copy-paste slip in the unrolled rows)",
        _each("engine/test_dense_kernels.py", "test_packed_kernels_across_row_groups", "neon-simde-9-4"),
    ),
    Mutation(
        "neon-s4-offset-7", "csrc/neon/fully_connected_s4.c",
        "row[i / 32 * 16 + i % 16] |= (uint8_t)((kws_code_at(codes, c + i) + 8) << (i % 32 >= 16 ? 4 : 0));",
        "row[i / 32 * 16 + i % 16] |= (uint8_t)((kws_code_at(codes, c + i) + 7) << (i % 32 >= 16 ? 4 : 0));",
        "whole 4-bit blocks packed with offset 7 while the correction removes 8 * sum(x)",
        _each("engine/test_dense_kernels.py", "test_packed_kernels_across_row_groups", "neon-simde-9-4",
              "neon-dotprod-simde-9-4"),
    ),
    Mutation(
        "neon-s4-sum-x-without-remainder", "csrc/neon/s4.h",
        "in.minus8_sum_x = -8 * (sum + vaddvq_s32(acc));",
        "in.minus8_sum_x = -8 * vaddvq_s32(acc);",
        "the -8 * sum(x) correction leaves out the K % 16 activations after the whole vectors",
        _each("engine/test_dense_kernels.py", "test_packed_kernels_at_their_extremes", *(f"{b}-{k}-4" for b in NEON
                                                                                   for k in ("7", "33", "87"))),
    ),
    Mutation(
        "neon-s4-tail-high-x-shifted", "csrc/neon/s4.h",
        "in.xhi = vandq_s8(vld1q_s8(xs + k - 16), vreinterpretq_s8_u8(keep_hi));",
        "in.xhi = vandq_s8(vld1q_s8(xs + k - 17), vreinterpretq_s8_u8(keep_hi));",
        "the tail's high nibbles meet the activations one position early",
        _each("engine/test_dense_kernels.py", "test_packed_kernels_across_row_groups", "neon-simde-9-4",
              "neon-dotprod-simde-9-4"),
    ),
    Mutation(
        "neon-dot-s4-high-codes-low-x", "csrc/neon/fully_connected_s4_dot.c",
        "acc = vdotq_s32(acc, vreinterpretq_s8_u8(vshrq_n_u8(b, 4)), x1);",
        "acc = vdotq_s32(acc, vreinterpretq_s8_u8(vshrq_n_u8(b, 4)), x0);",
        "SDOT of the high nibbles (codes 16..31 of a block) against activations 0..15",
        _each("engine/test_dense_kernels.py", "test_packed_kernels_across_row_groups", "neon-dotprod-simde-9-4"),
    ),
    Mutation(
        "neon-s1-logical-high-plane", "csrc/neon/fully_connected_s1.c",
        "vreinterpretq_u8_s8(vshrq_n_s8(v, 4))};",
        "vshrq_n_u8(vreinterpretq_u8_s8(v), 4)};",
        "the high plane of x split with a logical shift: negative activations lose their sign",
        _each("engine/test_dense_kernels.py", "test_packed_kernels_across_row_groups", *(f"{b}-9-1" for b in NEON)),
    ),
    Mutation(
        "neon-s1-partial-panel-stride-16", "csrc/neon/fully_connected_s1.c",
        "panel_chunk(panel, rows, end, 1, q0, q1, tab, s);",
        "panel_chunk(panel, 16, end, 1, q0, q1, tab, s);",
        "a partial panel (n % 16 rows, stored without padding) read with a full panel's stride",
        _each("engine/test_dense_kernels.py", "test_packed_kernels_across_row_groups", *(f"{b}-17-1" for b in NEON)),
    ),
    Mutation(
        "neon-s1-tables-built-once", "csrc/neon/fully_connected_s1.c",
        "if (chunks > 1) build_tables(x, k, q0, q1, tab);",
        "if (chunks > 1 && q0 == 0) build_tables(x, k, q0, q1, tab);",
        "K past one 2048-activation chunk looked up in the first chunk's tables",
        _each("engine/test_dense_kernels.py", "test_packed_kernels_across_row_groups", *(f"{b}-17-1" for b in NEON)),
    ),
    # --- depthwise kernels (csrc/*/depthwise.c): test_graph_engine's channel-boundary test, by channel count ---
    Mutation(
        "portable-depthwise-first-block-params", "csrc/portable/depthwise.c",
        "y[c0 + i] = kws_epilogue_s8(acc[i], e, c0 + i);",
        "y[c0 + i] = kws_epilogue_s8(acc[i], e, i);",
        "every block of 64 channels is requantized with the first block's parameters",
        _each(DW_FILE, DW_TEST, "65", "100"),
    ),
    Mutation(
        "portable-depthwise-rows-contiguous", "csrc/portable/depthwise.c",
        "const int8_t *xr = x + k * row_stride + c0, *wr = w + k * c + c0;",
        "const int8_t *xr = x + k * c + c0, *wr = w + k * c + c0;",
        "the taps' rows are read back to back, ignoring the row stride of a dilated window",
        _each(DW_FILE, DW_TEST, "7", "32"),
    ),
    Mutation(
        "avx2-depthwise-odd-tap-dropped", "csrc/avx2/depthwise.c",
        "    if (k < taps) {\n      const __m256i zero",
        "    if (k + 1 < taps) {\n      const __m256i zero",
        "the last tap of an odd tap count is never added",
        _each(DW_FILE, DW_TEST, "16", "33"),
    ),
    Mutation(
        "avx2-depthwise-halves-unpermuted", "csrc/avx2/depthwise.c",
        "finish(_mm256_permute2x128_si256(lo, hi, 0x20), _mm256_permute2x128_si256(lo, hi, 0x31), e, c0, BLOCK, y);",
        "finish(lo, hi, e, c0, BLOCK, y);",
        "the unpacks' channel order (0-3 and 8-11 in the low accumulator) is taken as 0-7",
        _each(DW_FILE, DW_TEST, "16", "33"),
    ),
    Mutation(
        "avx2-depthwise-part-first-half-params", "csrc/avx2/depthwise.c",
        "kws_avx2_epilogue_part(v1, e, c0 + 8, r - 8, y + c0 + 8);",
        "kws_avx2_epilogue_part(v1, e, c0, r - 8, y + c0 + 8);",
        "channels 8.. of a partial block (c in 9..15) get the parameters of channels 0..",
        _each(DW_FILE, DW_TEST, "9", "15"),
    ),
    Mutation(
        "sse41-depthwise-odd-tap-dropped", "csrc/sse41/depthwise.c",
        "    if (k < taps) {",
        "    if (k + 1 < taps) {",
        "the last tap of an odd tap count is never added",
        _each(DW_FILE, DW_TEST, "8", "17"),
    ),
    Mutation(
        "sse41-depthwise-high-half-params", "csrc/sse41/depthwise.c",
        "kws_sse41_epilogue4(hi, e, c0 + 4)",
        "kws_sse41_epilogue4(hi, e, c0)",
        "channels 4-7 of a block are requantized with the parameters of channels 0-3",
        _each(DW_FILE, DW_TEST, "8", "17"),
    ),
    Mutation(
        "sse41-depthwise-small-rows-contiguous", "csrc/sse41/depthwise.c",
        "for (size_t k = 0; k < taps; k++) acc += (int32_t)w[k * c + i] * (int32_t)x[k * row_stride + i];",
        "for (size_t k = 0; k < taps; k++) acc += (int32_t)w[k * c + i] * (int32_t)x[k * c + i];",
        "below one block, the taps' rows are read back to back, ignoring a dilated window's row stride",
        _each(DW_FILE, DW_TEST, "2", "7"),
    ),
    Mutation(
        "neon-depthwise-odd-tap-dropped", "csrc/neon/depthwise.c",
        "    if (k < taps) {\n      int8x16_t xa = vld1q_s8(x + k * row_stride + c0), wa = vld1q_s8(w + k * c + c0);\n"
        "      widen_add(",
        "    if (k + 1 < taps) {\n"
        "      int8x16_t xa = vld1q_s8(x + k * row_stride + c0), wa = vld1q_s8(w + k * c + c0);\n"
        "      widen_add(",
        "the last tap of an odd tap count is never added",
        _each(DW_FILE, DW_TEST, "16", "33"),
    ),
    Mutation(
        "neon-depthwise-widen-low-twice", "csrc/neon/depthwise.c",
        "acc[1] = vaddw_high_s16(acc[1], lo);",
        "acc[1] = vaddw_s16(acc[1], vget_low_s16(lo));",
        "channels 4-7 of a block accumulate the products of channels 0-3",
        _each(DW_FILE, DW_TEST, "16", "33"),
    ),
    Mutation(
        "neon-depthwise-small-rows-contiguous", "csrc/neon/depthwise.c",
        "for (size_t i = 0; i < c; i++) acc[i] += (int32_t)w[k * c + i] * (int32_t)x[k * row_stride + i];",
        "for (size_t i = 0; i < c; i++) acc[i] += (int32_t)w[k * c + i] * (int32_t)x[k * c + i];",
        "below one block, the taps' rows are read back to back, ignoring a dilated window's row stride",
        _each(DW_FILE, DW_TEST, "2", "15"),
    ),
    # --- int16 depthwise sums (csrc/*/depthwise.c, ..._acc16) and the graph loader's choice of them (csrc/graph.c):
    # test_graph_engine's test at the bound (and one past it) ---
    Mutation(
        "avx2-depthwise16-high-half-lost", "csrc/avx2/depthwise.c",
        "_mm256_cvtepi16_epi32(_mm256_extracti128_si256(acc, 1))",
        "_mm256_cvtepi16_epi32(_mm256_castsi256_si128(acc))",
        "channels 8-15 of an int16 block are given the sums of channels 0-7",
        _each(DW_FILE, DW16_TEST, "False-16", "False-33"),
        ci=True,
    ),
    Mutation(
        "neon-depthwise16-odd-tap-dropped", "csrc/neon/depthwise.c",
        "    if (k < taps) {\n      int8x16_t xa = vld1q_s8(x + k * row_stride + c0), wa = vld1q_s8(w + k * c + c0);\n"
        "      lo = vmlal_s8(",
        "    if (k + 1 < taps) {\n"
        "      int8x16_t xa = vld1q_s8(x + k * row_stride + c0), wa = vld1q_s8(w + k * c + c0);\n"
        "      lo = vmlal_s8(",
        "the last tap of an odd tap count is never added to the int16 sums",
        _each(DW_FILE, DW16_TEST, "False-16", "False-33"),
    ),
    Mutation(
        "neon-depthwise16-odd-chain-dropped", "csrc/neon/depthwise.c",
        "    hi = vaddq_s16(hi, hi1);\n",
        "",
        "the odd taps' int16 sums of channels 8-15 are never added in",
        _each(DW_FILE, DW16_TEST, "False-16", "False-33"),
    ),
    Mutation(
        "graph-depthwise16-unproven", "csrc/graph.c",
        "if (kk->depthwise_s8_acc16 && kws_depthwise_acc16_safe(codes, op->kernel, n)) {",
        "if (kk->depthwise_s8_acc16) {",
        "the loader runs every depthwise op on int16 sums, proven or not: one past the bound, a sum wraps",
        _each(DW_FILE, DW16_TEST, "True-16", "True-33"),
        ci=True,
    ),
    Mutation(
        "graph-dense16-unproven", "csrc/graph.c",
        "op->acc16_log2 = log2 <= KWS_ACC16_MAX_LOG2 && kws_acc16_safe(codes, n, k, log2) ? log2 : 0;",
        "op->acc16_log2 = log2 <= KWS_ACC16_MAX_LOG2 ? log2 : 0;",
        "the loader runs every conv and FULLY_CONNECTED on int16 row sums, proven or not",
        ("tests/engine/test_graph_engine.py::test_conv_on_every_backend",
         "tests/engine/test_graph_engine.py::test_fully_connected_on_every_backend"),
    ),
    # --- the C loader (csrc/blob.c) and CRC (csrc/crc32.c) ---
    Mutation(
        "crc-polynomial", "csrc/crc32.c",
        "0xEDB88320u",
        "0x04C11DB7u",
        "CRC-32 with the unreflected polynomial: every stored checksum mismatches",
        ("tests/engine/test_format.py::test_checksum_error", "tests/engine/test_format.py::test_round_trip[1-8]"),
    ),
    Mutation(
        "loader-checksum-status", "csrc/blob.c",
        'return fail(&c, KWS_ERR_CHECKSUM, "payload_crc32", 12);',
        'return fail(&c, KWS_ERR_FIELD, "payload_crc32", 12);',
        "a checksum mismatch reported as a field error",
        ("tests/engine/test_format.py::test_checksum_error",),
    ),
    Mutation(
        "loader-multiplier-channel-0", "csrc/blob.c",
        "L->multiplier[i] = les32(v->multiplier + 4 * i);",
        "L->multiplier[i] = les32(v->multiplier);",
        "the C loader gives every channel the first channel's multiplier",
        ("tests/engine/test_model.py::test_random_models_equal_reference[portable]",)
        + _each("engine/test_model.py", "test_paper_models_round_trip_and_equal_reference", "portable-M2"),
    ),
    Mutation(
        "loader-off-grid-code", "csrc/kwsint_internal.h",
        "return v >= (1u << (c.bits - 1)) ? (int32_t)v - (1 << c.bits) : (int32_t)v;",
        "return v > (1u << (c.bits - 1)) ? (int32_t)v - (1 << c.bits) : (int32_t)v;",
        "the code -2^(b-1), off the narrow grid, is read as +2^(b-1) and accepted",
        ("tests/engine/test_format.py::test_code_outside_the_narrow_grid_is_refused",
         "tests/engine/test_format.py::test_c_and_python_loaders_agree_on_payload_edits"),
    ),
    Mutation(
        "loader-acc16-half-block", "csrc/blob.c",
        "for (size_t i = j; i < k && i < j + block; i++) {",
        "for (size_t i = j; i < k && i < j + block / 2; i++) {",
        "the C loader re-proves an int16 block claim over half of each block",
        ("tests/engine/test_acc16.py::test_unsafe_claims_are_refused_by_both_loaders",
         "tests/engine/test_acc16_claims.py::test_every_claim_is_accepted_exactly_when_safe"),
    ),
    Mutation(
        "loader-nibble-stride-odd-k", "csrc/portable/fully_connected_packed.c",
        "  size_t stride = (k + 1) / 2;\n  for (size_t o = 0; o < n; o++)\n    for (size_t i = 0; i < k; i++)\n      packed",
        "  size_t stride = k / 2;\n  for (size_t o = 0; o < n; o++)\n    for (size_t i = 0; i < k; i++)\n      packed",
        "4-bit rows packed with a stride rounded down: rows of odd K overlap",
        _each("engine/test_model.py", "test_packed_kernels_at_every_tail", *(f"portable-{k}" for k in PACKED_TAILS)),
    ),
    Mutation(
        "loader-signs-msb-first", "csrc/portable/fully_connected_packed.c",
        "packed[o * stride + i / 8] |= (uint8_t)((kws_code_at(codes, o * k + i) < 0) << (i % 8));",
        "packed[o * stride + i / 8] |= (uint8_t)((kws_code_at(codes, o * k + i) < 0) << (7 - i % 8));",
        "1-bit packing at load is MSB-first, the kernels read LSB-first",
        _each("engine/test_model.py", "test_packed_weights_memory_and_results", "portable-M6"),
    ),
    # --- the Python loader (kwsint/engine/blob.py) ---
    Mutation(
        "py-loader-multiplier-channel-0", "kwsint/engine/blob.py",
        "want_mult, want_shift = dense_multipliers(in_scale, weight_scale, out_scale)",
        "want_mult, want_shift = dense_multipliers(in_scale, weight_scale[:1], out_scale)",
        "the Python loader derives every channel's multiplier from the first channel's scale",
        _each("engine/test_format.py", "test_round_trip", *(f"{b}-{a}" for a in (8, 16) for b in (1, 2, 5, 8))),
    ),
    # --- the streaming detector (csrc/detector.c) ---
    Mutation(
        "detector-lockout-one-long", "csrc/detector.c",
        "d->quiet = c->lockout;",
        "d->quiet = c->lockout + 1;",
        "after a detection one step more than the lockout is suppressed",
        ("tests/engine/test_detector.py::test_detector_equals_reference[portable]",
         "tests/engine/test_detector.py::test_paper_model_smooths_fires_and_locks_out[portable-M1]"),
    ),
    Mutation(
        "detector-smoothing-floors", "csrc/detector.c",
        "int32_t s = (int32_t)((d->sum + d->count / 2) / d->count);",
        "int32_t s = (int32_t)(d->sum / d->count);",
        "the moving average is floored instead of rounded half up",
        ("tests/engine/test_detector.py::test_detector_equals_reference[portable]",),
    ),
    # --- clang 14's SDOT through its builtin (csrc/neon/neon.h) ---
    Mutation(
        "clang-sdot-drops-accumulator", "csrc/neon/neon.h",
        "return (int32x4_t)__builtin_neon_vdotq_v((int8x16_t)acc, a, b, 34);",
        "return (int32x4_t)__builtin_neon_vdotq_v((int8x16_t)vdupq_n_s32(0), a, b, 34);",
        "clang's vdotq_s32 stand-in starts every dot product from zero, losing the sums before it",
        ("tests/test_c_library.py::test_clang_aarch64_dot_product_under_qemu",),
    ),
    # --- loading into the caller's memory and in place (csrc/blob.c, csrc/graph.c, csrc/detector.c) ---
    Mutation(
        "in-place-rows-need-not-be-whole", "csrc/blob.c",
        "return dk->blob_bits == v->bits && v->in_size * (size_t)v->bits % 8 == 0;",
        "return dk->blob_bits == v->bits;",
        "4-bit rows of an odd number of codes read in place, though they do not start on a byte",
        ("tests/engine/test_memory.py::test_every_way_of_loading_computes_the_same[mixed]",),
    ),
    Mutation(
        "graph-query-forgets-state-copies", "csrc/graph.c",
        "size->bytes += kws_align8(s->frames * s->channels); /* its copy */",
        "size->bytes += 0; /* its copy */",
        "the arena query leaves out the copies of a graph's initial states: the load runs out of arena",
        ("tests/engine/test_memory.py::test_the_arena_query_is_exact[arena-okay_nabu]",),
    ),
    Mutation(
        "detector-ring-over-its-stream", "csrc/detector.c",
        "d->ring = (int32_t *)(p + kws_stream_bytes(m));",
        "d->ring = (int32_t *)p;",
        "a detector in the caller's memory keeps its smoothing ring on top of its stream's state",
        ("tests/engine/test_memory.py::test_a_detector_and_a_stream_in_the_callers_memory",),
    ),
    # --- batched inference (csrc/model.c) and the detector's batches of steps (csrc/detector.c) ---
    Mutation(
        "batch-dense-one-window", "csrc/model.c",
        "L->dense->run((const int8_t *)in, count, L->in_size,",
        "L->dense->run((const int8_t *)in, 1, L->in_size,",
        "a dense layer of a batch runs on its first window only",
        ("tests/engine/test_batched.py::test_infer_batch_equals_one_window_at_a_time[portable-8-int8]",
         "tests/engine/test_batched.py::test_detector_pushes_of_any_size_agree[portable-8-int8-3]"),
    ),
    Mutation(
        "batch-s16-input-stride", "csrc/model.c",
        "kk->fully_connected_s16((const int16_t *)in + b * L->in_size,",
        "kk->fully_connected_s16((const int16_t *)in + b * L->out_size,",
        "a 16x8 dense layer reads each window of a batch at the output width",
        ("tests/engine/test_batched.py::test_infer_batch_equals_one_window_at_a_time[portable-16-int8]",),
    ),
    Mutation(
        "batch-chunks-restart", "csrc/model.c",
        "run_layers(m, (const uint8_t *)inputs + done * in_bytes, c,",
        "run_layers(m, (const uint8_t *)inputs, c,",
        "every chunk of a batch runs the first chunk's windows",
        ("tests/engine/test_batched.py::test_infer_batch_equals_one_window_at_a_time[portable-8-auto]",),
    ),
    Mutation(
        "detector-batch-step-frame", "csrc/detector.c",
        "d->step_frames[pending++] = d->frames - 1;",
        "d->step_frames[pending++] = d->frames;",
        "a batched step reports the frame after its window's newest",
        ("tests/engine/test_batched.py::test_detector_pushes_of_any_size_agree[portable-8-int8-3]",),
    ),
    # --- the reference (kwsint/engine/reference.py): the spec the kernels are held to ---
    Mutation(
        "ref-rdbpot-threshold", "kwsint/engine/reference.py",
        "threshold = (mask >> 1) + (x < 0)",
        "threshold = mask >> 1",
        "the spec's RoundingDivideByPOT rounds negative ties up",
        ("tests/engine/test_reference.py",),
    ),
    Mutation(
        "ref-quantize-ties", "kwsint/engine/reference.py",
        "return t + np.where(np.abs(frac) >= 0.5, np.sign(x), 0)",
        "return t + np.where(np.abs(frac) > 0.5, np.sign(x), 0)",
        "the spec's round-half-away rounds ties toward zero",
        ("tests/engine/test_reference.py",),
        ci=True,
    ),
    Mutation(
        "ref-zero-point-saturates", "kwsint/engine/reference.py",
        "out = _wrap_int32(requantize(acc.astype(acc_type), multiplier, shift) + int(output_zero_point))",
        "out = np.clip(requantize(acc.astype(acc_type), multiplier, shift) + int(output_zero_point), INT32_MIN, INT32_MAX)",
        "the spec adds the output zero point with saturation instead of wrapping",
        ("tests/engine/test_reference.py",) + _ops("test_fully_connected_equals_reference", "portable"),
    ),
    Mutation(
        "float-steps-count", "csrc/float_model.c",
        "size_t steps = num_frames < w ? 0 : (num_frames - w) / hop + 1;",
        "size_t steps = num_frames < w ? 0 : (num_frames - w) / hop;",
        "kws_float_model_infer_steps drops the last window a detector would step at",
        ("tests/engine/test_float_model.py",),
    ),
    Mutation(
        "float-steps-capacity", "csrc/float_model.c",
        "if (steps > capacity || !kws_all_finite(frames, num_frames * f)) return KWS_ERR_ARGUMENT;",
        "if (steps > capacity + 1 || !kws_all_finite(frames, num_frames * f)) return KWS_ERR_ARGUMENT;",
        "kws_float_model_infer_steps writes one window of logits past the caller's capacity",
        ("tests/engine/test_float_model.py::test_infer_steps_checks_every_length",),
    ),
    # --- the AArch32 forms of AArch64-only intrinsics (csrc/neon/a32.h), on real 32-bit Arm code under qemu ---
    Mutation(
        "a32-paddq-order", "csrc/neon/a32.h",
        "return vcombine_s32(vpadd_s32(vget_low_s32(a), vget_high_s32(a)), vpadd_s32(vget_low_s32(b), vget_high_s32(b)));",
        "return vcombine_s32(vpadd_s32(vget_low_s32(b), vget_high_s32(b)), vpadd_s32(vget_low_s32(a), vget_high_s32(a)));",
        "ADDP's AArch32 form puts b's pair sums before a's",
        ("tests/test_arm.py::test_backend_equals_reference[armv7-cortex-a7-neon]",),
    ),
    Mutation(
        "a32-tbl-halves", "csrc/neon/a32.h",
        "int8x8x2_t tab = {{vget_low_s8(t), vget_high_s8(t)}};",
        "int8x8x2_t tab = {{vget_high_s8(t), vget_low_s8(t)}};",
        "TBL's AArch32 form swaps the table's halves: index i reads entry i ^ 8",
        ("tests/test_arm.py::test_backend_equals_reference[armv7-cortex-a7-neon]",),
    ),
    Mutation(
        "a32-addv-drops-lane", "csrc/neon/a32.h",
        "  int32x2_t s = vpadd_s32(vget_low_s32(a), vget_high_s32(a));",
        "  int32x2_t s = vpadd_s32(vget_low_s32(a), vget_low_s32(a));",
        "ADDV's AArch32 form sums the low half twice and never the high lanes",
        ("tests/test_arm.py::test_backend_equals_reference[armv7-cortex-a7-neon]",),
    ),
    Mutation(
        "ref-lockout-inclusive", "kwsint/engine/reference.py",
        "if last is None or t - last > lockout:",
        "if last is None or t - last >= lockout:",
        "the spec's lockout ends one step early",
        ("tests/engine/test_reference.py",),
    ),
]

BY_ID: dict[str, Mutation] = {m.id: m for m in MUTATIONS}
