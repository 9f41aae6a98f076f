/* The NEON kernels (the .c files of csrc/neon); kernels.c puts them in the backends' tables. */
#ifndef KWSINT_NEON_KERNELS_H
#define KWSINT_NEON_KERNELS_H

#include "../kwsint_internal.h"

void kws_neon_requantize_s32(const int32_t *acc, const int32_t *mult, const int32_t *shift, size_t n,
                             int32_t *out);
void kws_neon_requantize_s64(const int64_t *acc, const int32_t *mult, const int32_t *shift, size_t n,
                             int32_t *out);

#endif
