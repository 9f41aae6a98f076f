/* The dispatch table: every compiled backend, fastest first. */
#include <string.h>

#include "kwsint_internal.h"
#include "portable/portable.h"

const kws_kernels kws_portable_kernels = {
    kws_portable_requantize_s32,      kws_portable_requantize_s64, kws_portable_fully_connected_s8,
    kws_portable_fully_connected_s16, kws_portable_affine_s8,      kws_portable_affine_s16,
    kws_portable_quantize_s8,         kws_portable_quantize_s16,
};

static int always_usable(void) { return 1; }

static const kws_backend backends[] = {
    {"portable", always_usable, &kws_portable_kernels},
};

int kws_backend_count(void) { return (int)(sizeof backends / sizeof backends[0]); }

const kws_backend *kws_backend_at(int index) {
  return index >= 0 && index < kws_backend_count() ? &backends[index] : NULL;
}

const char *kws_backend_name(const kws_backend *backend) { return backend ? backend->name : NULL; }

int kws_backend_usable(const kws_backend *backend) { return backend && backend->usable(); }

kws_status kws_backend_find(const char *name, const kws_backend **out) {
  *out = NULL;
  for (int i = 0; i < kws_backend_count(); i++) {
    const kws_backend *be = &backends[i];
    if (name ? strcmp(name, be->name) == 0 : be->usable()) {
      if (!be->usable()) return KWS_ERR_BACKEND;
      *out = be;
      return KWS_OK;
    }
  }
  return KWS_ERR_BACKEND;
}
