/* Each dense layer's kernel, chosen once: at load, or when a dense op is prepared. */
#include "kwsint_internal.h"

const kws_dense_kernel *kws_plan_dense(const kws_kernels *kk, int bits, kws_weight_storage storage) {
  const kws_dense_kernel *s8 = kk->dense_s8.run ? &kk->dense_s8 : &kws_portable_kernels.dense_s8;
  if (bits > 4 || storage == KWS_WEIGHTS_INT8) return s8;
  const kws_dense_kernel *own = bits == 1 ? &kk->dense_s1 : &kk->dense_s4;
  const kws_dense_kernel *portable = bits == 1 ? &kws_portable_kernels.dense_s1 : &kws_portable_kernels.dense_s4;
  if (storage == KWS_WEIGHTS_PACKED) return own->run ? own : portable;
  return own->run && own->beats_s8 ? own : s8; /* KWS_WEIGHTS_AUTO */
}
