/* The int8 FULLY_CONNECTED kernel on VPDPBUSD, written once for two vector
 * widths: avxvnni/fully_connected.c (AVX-VNNI, 256 bits) and
 * avx512/fully_connected.c (AVX512-VNNI, 512 bits) each define the macros
 * below, then include this file once.
 *
 *   VN_VEC, VN_ROWS        the vector type; its int32 lanes = rows per block
 *   VN_PANEL, VN_ACC       blocks per panel; accumulators kept in registers
 *   VN_LOAD(p), VN_BCAST4(p), VN_ZERO, VN_ADD(a, b), VN_DPBUSD(acc, u, w), VN_HSUM(v)
 *   VN_EPILOGUE(acc, e, c, r, y)  the epilogue of rows c .. c + r - 1 (r <= VN_ROWS) into y
 *   VN_NAME(x)             the kernel's public names (kws_<backend>_x)
 *
 * Layout (made at load by pack): one int32 per row, c[r] = -128 * sum_i w[r][i],
 * rounded up to VN_ROWS entries, then the weights: for n < 8, rows padded with
 * zeros to a multiple of 64; otherwise panels of up to VN_PANEL blocks of
 * VN_ROWS rows (the last block padded with zero rows), each panel one stream of
 * groups of 4 K (K padded with zeros):
 *   w[o + 0][4g..4g+3], w[o + 1][4g..4g+3], ..., w[o + VN_PANEL * VN_ROWS - 1][4g..4g+3]
 * so one vector load holds 4 K of a block's rows.
 *
 * Exact: VPDPBUSD adds to each int32 lane the four products of an unsigned
 * byte of its first operand and a signed byte of its second, each exact in 16
 * bits (255 * 127 and 255 * -128 fit), without saturation. The unsigned
 * operand is u = x + 128 (x ^ 0x80, in [0, 255]), hoisted once per input and
 * broadcast 4 bytes at a time; the signed one is w. So a row's lanes sum
 * u * w = x * w + 128 * w, and starting them from c[r] leaves exactly
 * sum x * w. |c| <= 128 * 128 * 16384 = 2^28 and every partial sum of u * w
 * lies in [-255 * 128 * 16384, 255 * 127 * 16384], inside 2^29, so no int32
 * partial sum wraps, in any order of addition; no int16 block is needed.
 * Zero weights (padding) add nothing whatever u holds there. */
#include <string.h>

#define VN_INLINE static inline __attribute__((always_inline))
#define VN_CHUNK 1024 /* elements of x hoisted at a time: a multiple of 64 */
#define VN_GROUP 4    /* inputs that share each load of the weights */

static size_t vn_round4(size_t k) { return (k + 3) & ~(size_t)3; }
static size_t vn_round64(size_t k) { return (k + 63) & ~(size_t)63; }
static size_t vn_round_rows(size_t n) { return (n + VN_ROWS - 1) / VN_ROWS * VN_ROWS; }
static size_t vn_header_bytes(size_t n) { return 4 * vn_round_rows(n); }

size_t VN_NAME(packed_dense_s8_bytes)(size_t k, size_t n) {
  return vn_header_bytes(n) + (n < 8 ? n * vn_round64(k) : vn_round_rows(n) * vn_round4(k));
}

void VN_NAME(pack_dense_s8)(kws_codes w, size_t k, size_t n, uint8_t *packed) {
  for (size_t r = 0; r < n; r++) {
    int32_t s = 0;
    for (size_t i = 0; i < k; i++) s += kws_code_at(w, r * k + i);
    int32_t c = -128 * s;
    memcpy(packed + 4 * r, &c, 4);
  }
  packed += vn_header_bytes(n);
  if (n < 8) { /* rows (the caller zero-filled the buffer) */
    for (size_t r = 0; r < n; r++)
      for (size_t i = 0; i < k; i++) packed[r * vn_round64(k) + i] = (uint8_t)kws_code_at(w, r * k + i);
    return;
  }
  for (size_t o = 0; o < n; o += VN_ROWS * VN_PANEL) {
    size_t rows = n - o >= VN_ROWS * VN_PANEL ? VN_ROWS * VN_PANEL : vn_round_rows(n - o);
    for (size_t g = 0; g < k; g += 4)
      for (size_t r = o; r < o + rows; r++)
        for (size_t i = g; i < g + 4; i++) *packed++ = r < n && i < k ? (uint8_t)kws_code_at(w, r * k + i) : 0;
  }
}

/* u = x ^ 0x80 of B inputs from element i0, up to VN_CHUNK elements, zero-padded to a multiple of 64. */
typedef struct {
  uint8_t u[VN_GROUP][VN_CHUNK];
} vn_hoisted;

static __attribute__((noinline)) void vn_hoist(const int8_t *x, size_t k, int B, size_t i0, vn_hoisted *h) {
  const size_t len = k - i0 < VN_CHUNK ? k - i0 : VN_CHUNK;
  const __m256i flip = _mm256_set1_epi8(-128);
  for (int b = 0; b < B; b++) {
    const int8_t *xb = x + b * k + i0;
    size_t j = 0;
    for (; j + 32 <= len; j += 32)
      _mm256_storeu_si256((__m256i *)(h->u[b] + j), _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(xb + j)), flip));
    for (; j < len; j++) h->u[b][j] = (uint8_t)(xb[j] ^ 0x80);
    memset(h->u[b] + len, 0, vn_round64(len) - len);
  }
}

/* Adds one hoisted chunk (end elements, a multiple of 4) of blocks 0..P-1 (w at block 0 of the
 * chunk, stride bytes per group of 4 K) for B inputs to acc[b * P + p]; returns w past the chunk.
 * All VN_ACC accumulators run: B * P of them per group of 4 K, and S = VN_ACC / (B * P)
 * consecutive groups go to separate sets, added together at the end, so enough VPDPBUSD chains
 * hide its latency even for the last blocks of a panel. Accumulator j holds set j / (B * P),
 * input j % (B * P) / P, block j % P. Named accumulators, B and P constants at each call: they
 * stay in registers. */
#define VN_ACC16(X) \
  X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)
#define VN_SET(j) (j / (B * P))
#define VN_INPUT(j) (j % (B * P) / P)
#define VN_WEIGHTS(j, s) VN_LOAD(w + stride * (s) + sizeof(VN_VEC) * (j % P))
#define VN_LOAD_ACC(j) VN_VEC a##j = j < B * P ? acc[j % (B * P)] : VN_ZERO;
#define VN_STORE_ACC(j) \
  if (j < B * P) acc[j] = a##j;
#define VN_ADD_SET(j) \
  if (j >= B * P && j < VN_ACC) acc[j % (B * P)] = VN_ADD(acc[j % (B * P)], a##j);
#define VN_STEP(j) \
  if (j < VN_ACC) a##j = VN_DPBUSD(a##j, VN_BCAST4(h->u[VN_INPUT(j)] + i + 4 * VN_SET(j)), VN_WEIGHTS(j, VN_SET(j)));
#define VN_STEP_SET0(j) \
  if (j < B * P) a##j = VN_DPBUSD(a##j, VN_BCAST4(h->u[VN_INPUT(j)] + i), VN_WEIGHTS(j, 0));

VN_INLINE const int8_t *vn_dot_chunk(const vn_hoisted *h, size_t end, const int8_t *w, size_t stride, const int B,
                                     const int P, VN_VEC *acc) {
  const size_t S = VN_ACC / (B * P), whole = end / (4 * S) * (4 * S);
  VN_ACC16(VN_LOAD_ACC)
  size_t i = 0;
  for (; i < whole; i += 4 * S, w += stride * S) {
    VN_ACC16(VN_STEP)
  }
  for (; i < end; i += 4, w += stride) {
    VN_ACC16(VN_STEP_SET0)
  }
  VN_ACC16(VN_STORE_ACC)
  VN_ACC16(VN_ADD_SET)
  return w;
}

/* One function per shape (inputs, blocks), not inlined into the panel loops: there the
 * accumulators would lose their registers. */
#define VN_DOT(B, P)                                                                                    \
  static __attribute__((noinline)) const int8_t *vn_dot_##B##_##P(const vn_hoisted *h, size_t end,     \
                                                                  const int8_t *w, size_t stride,      \
                                                                  VN_VEC *acc) {                       \
    return vn_dot_chunk(h, end, w, stride, B, P, acc);                                                 \
  }
#define VN_CALL_DOT(B_, P_) \
  if (B == B_ && P == P_) return vn_dot_##B_##_##P_(h, end, w, stride, acc);

VN_DOT(1, 1) VN_DOT(1, 2) VN_DOT(1, 4) VN_DOT(2, 1) VN_DOT(2, 2) VN_DOT(4, 1)
#if VN_PANEL == 8
VN_DOT(1, 8) VN_DOT(2, 4) VN_DOT(4, 2)
#else
VN_DOT(2, 4) VN_DOT(4, 2) VN_DOT(4, 4)
#endif

VN_INLINE const int8_t *vn_dot(const vn_hoisted *h, size_t end, const int8_t *w, size_t stride, const int B,
                               const int P, VN_VEC *acc) {
  VN_CALL_DOT(1, 1) VN_CALL_DOT(1, 2) VN_CALL_DOT(1, 4) VN_CALL_DOT(2, 1) VN_CALL_DOT(2, 2) VN_CALL_DOT(4, 1)
#if VN_PANEL == 8
  VN_CALL_DOT(1, 8) VN_CALL_DOT(2, 4) VN_CALL_DOT(4, 2)
#else
  VN_CALL_DOT(2, 4) VN_CALL_DOT(4, 2) VN_CALL_DOT(4, 4)
#endif
  return w; /* not reached: every shape vn_panels() asks for is above */
}

/* Rows o .. o + P * VN_ROWS - 1 (w at their first block, c the row corrections) for B inputs. */
VN_INLINE void vn_sub_panel(const int8_t *x, size_t k, const int8_t *w, const int32_t *c, size_t n, size_t o,
                            size_t stride, const int B, const int P, int refill, vn_hoisted *h,
                            const kws_epilogue *e, int8_t *y) {
  VN_VEC acc[VN_ACC];
  for (int b = 0; b < B; b++)
    for (int p = 0; p < P; p++) acc[b * P + p] = VN_LOAD(c + o + VN_ROWS * p);
  for (size_t i0 = 0; i0 < k; i0 += VN_CHUNK) {
    if (refill) vn_hoist(x, k, B, i0, h);
    w = vn_dot(h, vn_round4(k - i0 < VN_CHUNK ? k - i0 : VN_CHUNK), w, stride, B, P, acc);
  }
  /* Local copies of the parameters: y cannot alias them, so their scalars are read once, not per block. */
  kws_requant_params rp = *e->p, ap;
  kws_epilogue le = *e;
  le.p = &rp;
  if (e->affine_w) {
    ap = *e->affine_p;
    le.affine_p = &ap;
  }
  for (int p = 0; p < P; p++)
    for (int b = 0; b < B; b++) {
      size_t r = o + VN_ROWS * p;
      VN_EPILOGUE(acc[b * P + p], &le, r, n - r < VN_ROWS ? n - r : VN_ROWS, y + b * n + r);
    }
}

/* Every panel for B inputs, in sub-panels of as many blocks as B inputs leave accumulators for,
 * powers of two, each one pass over x. */
VN_INLINE void vn_panels(const int8_t *x, size_t k, const int8_t *w, const int32_t *c, size_t n,
                         const kws_epilogue *e, const int B, int refill, vn_hoisted *h, int8_t *y) {
  const int most = VN_ACC / B < VN_PANEL ? VN_ACC / B : VN_PANEL;
  for (size_t o = 0; o < n; o += VN_ROWS * VN_PANEL) {
    size_t left_rows = n - o, blocks = (left_rows + VN_ROWS - 1) / VN_ROWS;
    if (blocks > VN_PANEL) blocks = VN_PANEL;
    size_t stride = sizeof(VN_VEC) * blocks;
    for (size_t s = 0; s < blocks;) {
      size_t left = blocks - s;
      const int8_t *ws = w + sizeof(VN_VEC) * s;
      size_t r = o + VN_ROWS * s;
      if (most >= 8 && left >= 8) {
        vn_sub_panel(x, k, ws, c, n, r, stride, B, 8, refill, h, e, y);
        s += 8;
      } else if (most >= 4 && left >= 4) {
        vn_sub_panel(x, k, ws, c, n, r, stride, B, 4, refill, h, e, y);
        s += 4;
      } else if (most >= 2 && left >= 2) {
        vn_sub_panel(x, k, ws, c, n, r, stride, B, 2, refill, h, e, y);
        s += 2;
      } else {
        vn_sub_panel(x, k, ws, c, n, r, stride, B, 1, refill, h, e, y);
        s += 1;
      }
    }
    w += stride * (vn_round4(k) / 4);
  }
}

/* Fewer than 8 rows: each row (padded to a multiple of 64) against a vector of u at a time. */
VN_INLINE void vn_rows(const int8_t *x, size_t k, const int8_t *w, const int32_t *c, size_t n,
                       const kws_epilogue *e, const int B, int refill, vn_hoisted *h, int8_t *y) {
  int32_t sums[VN_GROUP][VN_ROWS];
  memset(sums, 0, sizeof sums);
  for (size_t r = 0; r < n; r++, w += vn_round64(k)) {
    VN_VEC a[VN_GROUP];
    for (int b = 0; b < B; b++) a[b] = VN_ZERO;
    for (size_t i0 = 0; i0 < k; i0 += VN_CHUNK) {
      if (refill) vn_hoist(x, k, B, i0, h);
      const size_t end = vn_round64(k - i0 < VN_CHUNK ? k - i0 : VN_CHUNK);
      for (size_t j = 0; j < end; j += sizeof(VN_VEC)) {
        VN_VEC wv = VN_LOAD(w + i0 + j);
        for (int b = 0; b < B; b++) a[b] = VN_DPBUSD(a[b], VN_LOAD(h->u[b] + j), wv);
      }
    }
    for (int b = 0; b < B; b++) sums[b][r] = VN_HSUM(a[b]) + c[r];
  }
  for (int b = 0; b < B; b++) VN_EPILOGUE(VN_LOAD(sums[b]), e, 0, n, y + b * n);
}

VN_INLINE void vn_group(const int8_t *x, size_t k, const uint8_t *packed, size_t n, const kws_epilogue *e,
                        const int B, vn_hoisted *h, int8_t *y) {
  const int32_t *c = (const int32_t *)packed; /* the loader's and the op's buffers are 8-byte aligned */
  const int8_t *w = (const int8_t *)(packed + vn_header_bytes(n));
  const int refill = k > VN_CHUNK;
  if (!refill) vn_hoist(x, k, B, 0, h);
  if (n < 8)
    vn_rows(x, k, w, c, n, e, B, refill, h, y);
  else
    vn_panels(x, k, w, c, n, e, B, refill, h, y);
}

static void vn_group1(const int8_t *x, size_t k, const uint8_t *w, size_t n, const kws_epilogue *e, vn_hoisted *h,
                      int8_t *y) {
  vn_group(x, k, w, n, e, 1, h, y);
}
static void vn_group2(const int8_t *x, size_t k, const uint8_t *w, size_t n, const kws_epilogue *e, vn_hoisted *h,
                      int8_t *y) {
  vn_group(x, k, w, n, e, 2, h, y);
}
static void vn_group4(const int8_t *x, size_t k, const uint8_t *w, size_t n, const kws_epilogue *e, vn_hoisted *h,
                      int8_t *y) {
  vn_group(x, k, w, n, e, 4, h, y);
}

/* Inputs in groups of 4, then 2, then 1: each weight load serves every input of a group.
 * log2_block is not used: the sums are int32 throughout. */
void VN_NAME(fully_connected_s8)(const int8_t *x, size_t batches, size_t k, const uint8_t *w, size_t n,
                                 const kws_epilogue *e, int log2_block, int8_t *y) {
  (void)log2_block;
  vn_hoisted h;
  size_t b = 0;
  for (; batches - b >= 4; b += 4) vn_group4(x + b * k, k, w, n, e, &h, y + b * n);
  if (batches - b >= 2) {
    vn_group2(x + b * k, k, w, n, e, &h, y + b * n);
    b += 2;
  }
  if (b < batches) vn_group1(x + b * k, k, w, n, e, &h, y + b * n);
}
