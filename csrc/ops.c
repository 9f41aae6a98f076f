/* Public single-op entry points: check every argument, then run the backend's kernel. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kwsint_internal.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

static const kws_kernels *kernels_of(const kws_backend *be) {
  return be && be->usable() ? be->kernels : NULL;
}

static int params_ok(const kws_requant_params *p, size_t n, int act_bits) {
  int32_t qmin = act_bits == 8 ? INT8_MIN : INT16_MIN, qmax = act_bits == 8 ? INT8_MAX : INT16_MAX;
  int32_t max_shift = act_bits == 8 ? KWS_MAX_SHIFT_S8 : KWS_MAX_SHIFT_S16;
  if (!p || !p->multiplier || !p->shift) return 0;
  if (act_bits == 16 && (p->input_zero_point != 0 || p->output_zero_point != 0)) return 0;
  if (p->input_zero_point < qmin || p->input_zero_point > qmax) return 0;
  if (p->output_zero_point < qmin || p->output_zero_point > qmax) return 0;
  if (p->act_min < qmin || p->act_max > qmax || p->act_min > p->act_max) return 0;
  for (size_t i = 0; i < n; i++) {
    if (p->multiplier[i] < 0 || p->shift[i] < -31 || p->shift[i] > max_shift) return 0;
  }
  return 1;
}

static int weights_ok(const int8_t *w, size_t count) {
  for (size_t i = 0; i < count; i++)
    if (w[i] == INT8_MIN) return 0;
  return 1;
}

static int bias32_ok(const int32_t *b, size_t n) {
  for (size_t i = 0; b && i < n; i++)
    if (b[i] > KWS_BIAS_LIMIT_S8 || b[i] < -KWS_BIAS_LIMIT_S8) return 0;
  return 1;
}

static int bias64_ok(const int64_t *b, size_t n) {
  for (size_t i = 0; b && i < n; i++)
    if (b[i] > KWS_BIAS_LIMIT_S16 || b[i] < -KWS_BIAS_LIMIT_S16) return 0;
  return 1;
}

static int dims_ok(size_t batches, size_t k, size_t n) {
  return k >= 1 && k <= KWS_MAX_DIM && n >= 1 && n <= KWS_MAX_DIM && batches <= SIZE_MAX / KWS_MAX_DIM;
}

kws_status kws_requantize_s32(const kws_backend *be, const int32_t *acc, const int32_t *multiplier,
                              const int32_t *shift, size_t n, int32_t *out) {
  const kws_kernels *kk = kernels_of(be);
  if (!kk) return KWS_ERR_BACKEND;
  if (n && (!acc || !multiplier || !shift || !out)) return KWS_ERR_ARGUMENT;
  for (size_t i = 0; i < n; i++)
    if (shift[i] < -31 || shift[i] > 30) return KWS_ERR_ARGUMENT;
  kk->requantize_s32(acc, multiplier, shift, n, out);
  return KWS_OK;
}

kws_status kws_requantize_s64(const kws_backend *be, const int64_t *acc, const int32_t *multiplier,
                              const int32_t *shift, size_t n, int32_t *out) {
  const kws_kernels *kk = kernels_of(be);
  if (!kk) return KWS_ERR_BACKEND;
  if (n && (!acc || !multiplier || !shift || !out)) return KWS_ERR_ARGUMENT;
  for (size_t i = 0; i < n; i++) {
    if (multiplier[i] < 0 || shift[i] < -31 || shift[i] > 7) return KWS_ERR_ARGUMENT;
    if (acc[i] >= ((int64_t)1 << 47) || acc[i] < -((int64_t)1 << 47)) return KWS_ERR_ARGUMENT;
  }
  kk->requantize_s64(acc, multiplier, shift, n, out);
  return KWS_OK;
}

int kws_acc16_safe(const int8_t *w, size_t n, size_t k, int log2_block) {
  size_t block = (size_t)1 << log2_block;
  for (size_t o = 0; o < n; o++)
    for (size_t j = 0; j < k; j += block) {
      int32_t sum = 0; /* at most 16384 * 127 */
      for (size_t i = j; i < k && i < j + block; i++) sum += w[o * k + i] < 0 ? -w[o * k + i] : w[o * k + i];
      if (!kws_acc16_block_ok(sum)) return 0;
    }
  return 1;
}

int kws_depthwise_acc16_safe(const int8_t *w, size_t taps, size_t c) {
  for (size_t i = 0; i < c; i++) {
    int32_t sum = 0; /* at most 16384 * 127 */
    for (size_t k = 0; k < taps; k++) sum += w[k * c + i] < 0 ? -w[k * c + i] : w[k * c + i];
    if (!kws_acc16_block_ok(sum)) return 0;
  }
  return 1;
}

struct kws_dense_op {
  const kws_dense_kernel *kernel;
  size_t k, n;
  int log2_block;
  size_t weight_bytes;
  uint8_t *weights; /* as kernel->pack laid them out */
  int32_t *bias, *multiplier, *shift;
  kws_requant_params params;
  kws_epilogue epilogue;
};

/* Codes of weight_bits-bit weights: [-(2^(bits-1) - 1), 2^(bits-1) - 1], or -1 and +1 for 1 bit. */
static int codes_ok(const int8_t *w, size_t count, int bits) {
  int limit = (1 << (bits - 1)) - 1;
  for (size_t i = 0; i < count; i++)
    if (bits == 1 ? w[i] != 1 && w[i] != -1 : w[i] < -limit || w[i] > limit) return 0;
  return 1;
}

static size_t align8(size_t n) { return (n + 7) & ~(size_t)7; }

kws_status kws_dense_op_create(const kws_backend *be, size_t k, const int8_t *w, size_t n, int weight_bits,
                               const int32_t *bias, const kws_requant_params *p, int log2_block,
                               kws_weight_storage storage, kws_dense_op **out) {
  if (!out) return KWS_ERR_ARGUMENT;
  *out = NULL;
  const kws_kernels *kk = kernels_of(be);
  if (!kk) return KWS_ERR_BACKEND;
  if (!dims_ok(0, k, n) || !w || !params_ok(p, n, 8) || weight_bits < 1 || weight_bits > 8) return KWS_ERR_ARGUMENT;
  if (storage != KWS_WEIGHTS_INT8 && storage != KWS_WEIGHTS_PACKED && storage != KWS_WEIGHTS_AUTO)
    return KWS_ERR_ARGUMENT;
  if (!codes_ok(w, n * k, weight_bits) || !bias32_ok(bias, n)) return KWS_ERR_ARGUMENT;
  if (log2_block && (log2_block < KWS_ACC16_MIN_LOG2 || log2_block > KWS_ACC16_MAX_LOG2 ||
                     !kws_acc16_safe(w, n, k, log2_block)))
    return KWS_ERR_ARGUMENT;
  const kws_dense_kernel *dk = kws_plan_dense(kk, weight_bits, storage);
  size_t wbytes = dk->packed_bytes(k, n);
  uint8_t *mem = (uint8_t *)calloc(1, align8(sizeof(kws_dense_op)) + align8(wbytes) + 3 * align8(4 * n));
  if (!mem) return KWS_ERR_NOMEM;
  kws_dense_op *op = (kws_dense_op *)mem;
  uint8_t *at = mem + align8(sizeof(kws_dense_op));
  op->weights = at, at += align8(wbytes);
  op->bias = (int32_t *)at, at += align8(4 * n);
  op->multiplier = (int32_t *)at, at += align8(4 * n);
  op->shift = (int32_t *)at;
  op->kernel = dk;
  op->k = k, op->n = n, op->log2_block = log2_block, op->weight_bytes = wbytes;
  kws_codes codes = {(const uint8_t *)w, 8}; /* int8 codes: 8-bit codes of any weight width */
  dk->pack(codes, k, n, op->weights);
  kws_fold_bias_s32(bias, codes, n, k, p->input_zero_point, op->bias);
  memcpy(op->multiplier, p->multiplier, 4 * n);
  memcpy(op->shift, p->shift, 4 * n);
  op->params = *p;
  op->params.multiplier = op->multiplier;
  op->params.shift = op->shift;
  kws_epilogue e = {op->bias, &op->params, NULL, NULL, NULL};
  op->epilogue = e;
  *out = op;
  return KWS_OK;
}

kws_status kws_dense_op_run(const kws_dense_op *op, const int8_t *x, size_t batches, int8_t *y) {
  if (!op || !dims_ok(batches, op->k, op->n) || (batches && (!x || !y))) return KWS_ERR_ARGUMENT;
  op->kernel->run(x, batches, op->k, op->weights, op->n, &op->epilogue, op->log2_block, y);
  return KWS_OK;
}

kws_status kws_dense_op_plan(const kws_dense_op *op, kws_layer_plan *plan) {
  if (!op || !plan) return KWS_ERR_ARGUMENT;
  memset(plan, 0, sizeof *plan);
  plan->kernel = op->kernel->name;
  plan->code_bits = op->kernel->code_bits;
  plan->weight_bytes = op->weight_bytes;
  plan->acc16_block = op->kernel->acc16 && op->log2_block >= op->kernel->acc16 ? 1 << op->log2_block : 0;
  return KWS_OK;
}

void kws_dense_op_free(kws_dense_op *op) { free(op); }

/* log2_block 0: int32 accumulation; else the int16 block, checked when the op is made. */
static kws_status fully_connected_s8(const kws_backend *be, const int8_t *x, size_t batches, size_t k,
                                     const int8_t *w, size_t n, const int32_t *bias, const kws_requant_params *p,
                                     int log2_block, int8_t *y) {
  if (kernels_of(be) && (!dims_ok(batches, k, n) || !x || !y)) return KWS_ERR_ARGUMENT;
  kws_dense_op *op;
  kws_status st = kws_dense_op_create(be, k, w, n, 8, bias, p, log2_block, KWS_WEIGHTS_INT8, &op);
  if (st != KWS_OK) return st;
  st = kws_dense_op_run(op, x, batches, y);
  kws_dense_op_free(op);
  return st;
}

kws_status kws_fully_connected_s8(const kws_backend *be, const int8_t *x, size_t batches, size_t k,
                                  const int8_t *w, size_t n, const int32_t *bias,
                                  const kws_requant_params *p, int8_t *y) {
  return fully_connected_s8(be, x, batches, k, w, n, bias, p, 0, y);
}

kws_status kws_fully_connected_s8_acc16(const kws_backend *be, const int8_t *x, size_t batches, size_t k,
                                        const int8_t *w, size_t n, const int32_t *bias,
                                        const kws_requant_params *p, int log2_block, int8_t *y) {
  if (log2_block == 0) return KWS_ERR_ARGUMENT;
  return fully_connected_s8(be, x, batches, k, w, n, bias, p, log2_block, y);
}

kws_status kws_depthwise_s8(const kws_backend *be, const int8_t *x, size_t taps, size_t c, const int8_t *w,
                            const int32_t *bias, const kws_requant_params *p, int acc16, int8_t *y) {
  const kws_kernels *kk = kernels_of(be);
  if (!kk) return KWS_ERR_BACKEND;
  if (!dims_ok(1, taps, c) || !x || !w || !y || !params_ok(p, c, 8)) return KWS_ERR_ARGUMENT;
  if (!weights_ok(w, taps * c) || !bias32_ok(bias, c) || (acc16 && !kws_depthwise_acc16_safe(w, taps, c)))
    return KWS_ERR_ARGUMENT;
  int32_t *folded = (int32_t *)malloc(c * sizeof *folded);
  if (!folded) return KWS_ERR_NOMEM;
  for (size_t i = 0; i < c; i++) {
    int32_t sum = 0;
    for (size_t k = 0; k < taps; k++) sum += w[k * c + i];
    folded[i] = (bias ? bias[i] : 0) - p->input_zero_point * sum;
  }
  kws_epilogue e = {folded, p, NULL, NULL, NULL};
  void (*run)(const int8_t *, size_t, size_t, size_t, const int8_t *, const kws_epilogue *, int8_t *) =
      acc16 && kk->depthwise_s8_acc16 ? kk->depthwise_s8_acc16
      : kk->depthwise_s8              ? kk->depthwise_s8
                                      : kws_portable_kernels.depthwise_s8;
  run(x, c, taps, c, w, &e, y);
  free(folded);
  return KWS_OK;
}

kws_status kws_fully_connected_s16(const kws_backend *be, const int16_t *x, size_t batches, size_t k,
                                   const int8_t *w, size_t n, const int64_t *bias,
                                   const kws_requant_params *p, int16_t *y) {
  const kws_kernels *kk = kernels_of(be);
  if (!kk) return KWS_ERR_BACKEND;
  if (!dims_ok(batches, k, n) || !x || !w || !y || !params_ok(p, n, 16)) return KWS_ERR_ARGUMENT;
  if (!weights_ok(w, n * k) || !bias64_ok(bias, n)) return KWS_ERR_ARGUMENT;
  int64_t *folded = (int64_t *)malloc(n * sizeof *folded);
  if (!folded) return KWS_ERR_NOMEM;
  kws_fold_bias_s64(bias, n, folded);
  for (size_t b = 0; b < batches; b++) kk->fully_connected_s16(x + b * k, k, w, n, folded, p, y + b * n);
  free(folded);
  return KWS_OK;
}

kws_status kws_affine_s8(const kws_backend *be, const int8_t *x, size_t batches, size_t n,
                         const int8_t *w, const int32_t *bias, const kws_requant_params *p, int8_t *y) {
  const kws_kernels *kk = kernels_of(be);
  if (!kk) return KWS_ERR_BACKEND;
  if (!dims_ok(batches, 1, n) || !x || !w || !y || !params_ok(p, n, 8)) return KWS_ERR_ARGUMENT;
  if (!weights_ok(w, n) || !bias32_ok(bias, n)) return KWS_ERR_ARGUMENT;
  int32_t *folded = (int32_t *)malloc(n * sizeof *folded);
  if (!folded) return KWS_ERR_NOMEM;
  kws_fold_bias_s32(bias, (kws_codes){(const uint8_t *)w, 8}, n, 1, p->input_zero_point, folded);
  for (size_t b = 0; b < batches; b++) kk->affine_s8(x + b * n, n, w, folded, p, y + b * n);
  free(folded);
  return KWS_OK;
}

kws_status kws_affine_s16(const kws_backend *be, const int16_t *x, size_t batches, size_t n,
                          const int8_t *w, const int64_t *bias, const kws_requant_params *p, int16_t *y) {
  const kws_kernels *kk = kernels_of(be);
  if (!kk) return KWS_ERR_BACKEND;
  if (!dims_ok(batches, 1, n) || !x || !w || !y || !params_ok(p, n, 16)) return KWS_ERR_ARGUMENT;
  if (!weights_ok(w, n) || !bias64_ok(bias, n)) return KWS_ERR_ARGUMENT;
  int64_t *folded = (int64_t *)malloc(n * sizeof *folded);
  if (!folded) return KWS_ERR_NOMEM;
  kws_fold_bias_s64(bias, n, folded);
  for (size_t b = 0; b < batches; b++) kk->affine_s16(x + b * n, n, w, folded, p, y + b * n);
  free(folded);
  return KWS_OK;
}

kws_status kws_quantize(const kws_backend *be, const float *x, size_t n, float scale, int32_t zero_point,
                        int act_bits, void *y) {
  const kws_kernels *kk = kernels_of(be);
  if (!kk) return KWS_ERR_BACKEND;
  if ((n && (!x || !y)) || !(scale > 0.0f) || !isfinite(scale)) return KWS_ERR_ARGUMENT;
  if (act_bits == 8 && zero_point >= INT8_MIN && zero_point <= INT8_MAX) {
    kk->quantize_s8(x, n, scale, zero_point, (int8_t *)y);
  } else if (act_bits == 16 && zero_point == 0) {
    kk->quantize_s16(x, n, scale, zero_point, (int16_t *)y);
  } else {
    return KWS_ERR_ARGUMENT;
  }
  return KWS_OK;
}

kws_status kws_fully_connected_f32(const kws_backend *be, const float *x, size_t batches, size_t k,
                                   const float *w, size_t n, const float *bias, float act_min, float act_max,
                                   float *y) {
  const kws_kernels *kk = kernels_of(be);
  if (!kk) return KWS_ERR_BACKEND;
  if (!dims_ok(batches, k, n) || !x || !w || !y || !(act_min <= act_max)) return KWS_ERR_ARGUMENT;
  float *b = (float *)calloc(n, sizeof *b);
  if (!b) return KWS_ERR_NOMEM;
  for (size_t i = 0; bias && i < n; i++) b[i] = bias[i];
  for (size_t i = 0; i < batches; i++) kk->fully_connected_f32(x + i * k, k, w, n, b, act_min, act_max, y + i * n);
  free(b);
  return KWS_OK;
}

kws_status kws_affine_f32(const kws_backend *be, const float *x, size_t batches, size_t n, const float *scale,
                          const float *shift, float *y) {
  const kws_kernels *kk = kernels_of(be);
  if (!kk) return KWS_ERR_BACKEND;
  if (!dims_ok(batches, 1, n) || !x || !scale || !shift || !y) return KWS_ERR_ARGUMENT;
  for (size_t i = 0; i < batches; i++) kk->affine_f32(x + i * n, n, scale, shift, y + i * n);
  return KWS_OK;
}

/* Branch-free over blocks of 8, on the bits (exponent all ones: Inf or NaN), so
 * that compilers vectorise it: it runs on every window of kws_model_infer. */
int kws_all_finite(const float *x, size_t n) {
  uint32_t bad = 0;
  size_t i = 0;
#if defined(__SSE2__) /* x86-64's baseline: 8 at a time without relying on the vectoriser (GCC -O2 did not) */
  const __m128i ones = _mm_set1_epi32(0x7F800000);
  __m128i acc = _mm_setzero_si128();
  for (; i + 8 <= n; i += 8) {
    __m128i a = _mm_and_si128(_mm_loadu_si128((const __m128i *)(x + i)), ones);
    __m128i b = _mm_and_si128(_mm_loadu_si128((const __m128i *)(x + i + 4)), ones);
    acc = _mm_or_si128(acc, _mm_or_si128(_mm_cmpeq_epi32(a, ones), _mm_cmpeq_epi32(b, ones)));
  }
  bad = _mm_movemask_epi8(acc) != 0;
#endif
  for (; i + 8 <= n; i += 8) {
    uint32_t b[8];
    memcpy(b, x + i, sizeof b);
    for (int j = 0; j < 8; j++) bad |= (b[j] & 0x7F800000u) == 0x7F800000u;
  }
  for (; i < n; i++) bad |= !isfinite(x[i]);
  return !bad;
}
