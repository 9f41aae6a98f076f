/* QUANTIZE float32 -> int8/int16, portable C. */
#include "portable.h"

/* round_half_away(x / scale) + zero_point, saturated. The quotient is clamped
 * to just outside the output range first, so huge values and NaN (which fails
 * every comparison) never reach the float -> int conversion. Rounding without
 * libm's roundf (a call per value): the conversion truncates, and q - trunc(q)
 * is exact (|q| < 2^17 here), so comparing it with +-0.5 rounds half away. */
static int32_t quantize_one(float v, float scale, int32_t zp, int32_t qmin, int32_t qmax) {
  float q = v / scale;
  float lo = (float)(qmin - zp - 1), hi = (float)(qmax - zp + 1);
  if (!(q >= lo)) q = lo;
  if (q > hi) q = hi;
  int32_t t = (int32_t)q;
  float frac = q - (float)t;
  t += (frac >= 0.5f) - (frac <= -0.5f);
  int32_t r = t + zp;
  return r < qmin ? qmin : r > qmax ? qmax : r;
}

void kws_portable_quantize_s8(const float *x, size_t n, float scale, int32_t zp, int8_t *y) {
  for (size_t i = 0; i < n; i++) y[i] = (int8_t)quantize_one(x[i], scale, zp, INT8_MIN, INT8_MAX);
}

void kws_portable_quantize_s16(const float *x, size_t n, float scale, int32_t zp, int16_t *y) {
  for (size_t i = 0; i < n; i++) y[i] = (int16_t)quantize_one(x[i], scale, zp, INT16_MIN, INT16_MAX);
}
