/* kaldi-native-fbank's own compiled OnlineFbank, called on numpy buffers (module kwsint.io._knf_direct).
 *
 * The LFBE front end (kwsint/io/features.py) computes its features with kaldi-native-fbank (knf). Through
 * knf's Python binding a second of audio costs a Python list of 16,000 floats and a get_frame call per frame;
 * here the same knf object, made by that binding with the model's options, is driven from C++ instead:
 *
 *   - the knf::OnlineFbank behind a knf.OnlineFbank Python object comes from pybind11's public
 *     cross-extension API, the _pybind11_conduit_v1_ method every pybind11 class has (pybind11
 *     include/pybind11/conduit/pybind11_conduit_v1.h): given our platform ABI id and the std::type_info
 *     of knf::OnlineFbank, knf's binding checks both and hands back the pointer, or None;
 *   - its member functions AcceptWaveform(float, const float *, int32_t) and GetFrame(int32_t) const are
 *     knf's compiled code, found with dlsym in knf's extension module (they are
 *     exported there, as instantiations of the OnlineGenericBaseFeature template) and called through
 *     the Itanium C++ ABI: a non-virtual member function is a function whose first argument is `this`.
 *
 * So knf computes every number, as through its binding. Nothing here reads knf's object layout, which the
 * headers of the build-time knf describe and the run-time knf may not: the headers are included only for
 * typeid(knf::OnlineFbank). Frame counts and Pop (inline in knf's headers, not exported) and
 * InputFinished stay with the binding, called once per block or stream. Whether this route is used is
 * decided once, in features.py (fbank_route): it compares this route's frames with the binding's on a probe signal before using it.
 *
 * Platform ABI id: it says which C++ ABI the caller was compiled for; knf's binding refuses a pointer to
 * a caller whose id differs from its own. This file computes its id as pybind11 3 does (pybind11_platform_
 * abi_id.h), and setup.py compiles it with _GLIBCXX_USE_CXX11_ABI=0, the libstdc++ ABI of knf's manylinux
 * wheels ("system_libstdcpp_gxx_abi_1xxx_use_cxx11_abi_0"; no std::string or other dual-ABI type crosses
 * between this file and knf, so the choice changes nothing here but the id). A knf built with the other
 * libstdc++ ABI, an older pybind11 (another id, or no conduit), or a platform without dlsym: the conduit
 * or resolve() refuses, and features.py keeps the binding. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <cstdint>
#include <cstring>
#include <exception>
#include <typeinfo>

#if defined(__GNUC__) && !defined(_WIN32)
#define KNF_DIRECT_SUPPORTED 1
#include <dlfcn.h>

#include "kaldi-native-fbank/csrc/online-feature.h"
#else
#define KNF_DIRECT_SUPPORTED 0
#endif

#define KNF_DIRECT_STR2(x) #x
#define KNF_DIRECT_STR(x) KNF_DIRECT_STR2(x)

/* This file's platform ABI id, spelled as pybind11 3 spells it for gcc and clang. */
#if KNF_DIRECT_SUPPORTED && defined(_LIBCPP_ABI_VERSION)
#define KNF_DIRECT_ABI_ID "system_libcpp_abi" KNF_DIRECT_STR(_LIBCPP_ABI_VERSION)
#elif KNF_DIRECT_SUPPORTED && defined(_GLIBCXX_USE_CXX11_ABI) && defined(__GXX_ABI_VERSION) && \
    __GXX_ABI_VERSION >= 1002 && __GXX_ABI_VERSION < 2000
#define KNF_DIRECT_ABI_ID "system_libstdcpp_gxx_abi_1xxx_use_cxx11_abi_" KNF_DIRECT_STR(_GLIBCXX_USE_CXX11_ABI)
#else
#define KNF_DIRECT_ABI_ID ""
#endif

#if KNF_DIRECT_SUPPORTED
/* knf's member functions as the Itanium C++ ABI calls them. */
typedef void (*accept_fn)(knf::OnlineFbank *, float, const float *, int32_t);
typedef const float *(*get_frame_fn)(const knf::OnlineFbank *, int32_t);

static accept_fn knf_accept = nullptr;
static get_frame_fn knf_get_frame = nullptr;

static const char ACCEPT_SYMBOL[] = "_ZN3knf24OnlineGenericBaseFeatureINS_13FbankComputerEE14AcceptWaveformEfPKfi";
static const char GET_FRAME_SYMBOL[] = "_ZNK3knf24OnlineGenericBaseFeatureINS_13FbankComputerEE8GetFrameEi";
#endif

/* resolve(path): finds knf's two functions in its extension module at `path` (already imported). */
static PyObject *resolve(PyObject *, PyObject *arg) {
#if KNF_DIRECT_SUPPORTED
  const char *path = PyUnicode_AsUTF8(arg);
  if (!path) return nullptr;
  void *lib = dlopen(path, RTLD_NOW | RTLD_NOLOAD); /* the loaded module; kept open, as Python keeps it */
  if (!lib) {
    const char *why = dlerror();
    PyErr_Format(PyExc_ImportError, "%s is not loaded: %s", path, why ? why : "dlopen failed");
    return nullptr;
  }
  const char *names[2] = {ACCEPT_SYMBOL, GET_FRAME_SYMBOL};
  void *found[2];
  for (int i = 0; i < 2; i++) {
    found[i] = dlsym(lib, names[i]);
    if (!found[i]) {
      PyErr_Format(PyExc_ImportError, "%s exports no %s", path, names[i]);
      return nullptr;
    }
  }
  knf_accept = reinterpret_cast<accept_fn>(found[0]);
  knf_get_frame = reinterpret_cast<get_frame_fn>(found[1]);
  Py_RETURN_NONE;
#else
  (void)arg;
  PyErr_SetString(PyExc_ImportError, "this build has no direct route (no dlsym or no Itanium C++ ABI)");
  return nullptr;
#endif
}

#if KNF_DIRECT_SUPPORTED
/* The knf::OnlineFbank of `fbank` through the conduit, or nullptr with LookupError (or the conduit's own
 * exception). The pointer is valid while `fbank` lives, which the caller's reference guarantees. */
static knf::OnlineFbank *fbank_pointer(PyObject *fbank) {
  if (!knf_accept) {
    PyErr_SetString(PyExc_RuntimeError, "resolve() has not found kaldi-native-fbank's functions");
    return nullptr;
  }
  PyObject *type_capsule = PyCapsule_New(const_cast<void *>(static_cast<const void *>(&typeid(knf::OnlineFbank))),
                                         typeid(std::type_info).name(), nullptr);
  if (!type_capsule) return nullptr;
  PyObject *got = PyObject_CallMethod(fbank, "_pybind11_conduit_v1_", "yOy", KNF_DIRECT_ABI_ID, type_capsule,
                                      "raw_pointer_ephemeral");
  Py_DECREF(type_capsule);
  if (!got) return nullptr;
  void *p = PyCapsule_CheckExact(got) ? PyCapsule_GetPointer(got, PyCapsule_GetName(got)) : nullptr;
  Py_DECREF(got);
  if (!p) {
    if (!PyErr_Occurred())
      PyErr_SetString(PyExc_LookupError, "the conduit of kaldi-native-fbank's binding refused platform ABI id "
                                         KNF_DIRECT_ABI_ID " or type knf::OnlineFbank");
    return nullptr;
  }
  return static_cast<knf::OnlineFbank *>(p);
}

/* A knf exception (AcceptWaveform after InputFinished, a wrong rate) as the RuntimeError its binding raises. */
static void set_knf_error() {
  try {
    throw;
  } catch (const std::exception &e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
  } catch (...) {
    PyErr_SetString(PyExc_RuntimeError, "kaldi-native-fbank raised an unknown C++ exception");
  }
}
#endif

/* pointer(fbank) -> int: the address the conduit gives (for the tests: the route reaches the object). */
static PyObject *pointer(PyObject *, PyObject *fbank) {
#if KNF_DIRECT_SUPPORTED
  knf::OnlineFbank *p = fbank_pointer(fbank);
  return p ? PyLong_FromVoidPtr(p) : nullptr;
#else
  (void)fbank;
  PyErr_SetString(PyExc_ImportError, "this build has no direct route");
  return nullptr;
#endif
}

/* accept(fbank, rate, samples): AcceptWaveform(rate, samples) on a 1-D C-contiguous float32 buffer. */
static PyObject *accept(PyObject *, PyObject *args) {
#if KNF_DIRECT_SUPPORTED
  PyObject *fbank;
  float rate;
  Py_buffer x;
  if (!PyArg_ParseTuple(args, "Ofy*", &fbank, &rate, &x)) return nullptr;
  PyObject *result = nullptr;
  knf::OnlineFbank *p = nullptr;
  if (x.itemsize != 4 || x.len % 4) {
    PyErr_SetString(PyExc_TypeError, "samples: expected a float32 buffer");
  } else if ((p = fbank_pointer(fbank))) {
    const float *s = static_cast<const float *>(x.buf);
    Py_ssize_t n = x.len / 4;
    try {
      for (Py_ssize_t i = 0; i < n; i += INT32_MAX) /* knf takes int32_t counts */
        knf_accept(p, rate, s + i, static_cast<int32_t>(n - i < INT32_MAX ? n - i : INT32_MAX));
      result = Py_NewRef(Py_None);
    } catch (...) {
      set_knf_error();
    }
  }
  PyBuffer_Release(&x);
  return result;
#else
  (void)args;
  PyErr_SetString(PyExc_ImportError, "this build has no direct route");
  return nullptr;
#endif
}

/* The binding's integer property `name` of `fbank`, or -1 with an exception set. */
static long binding_int(PyObject *fbank, const char *name) {
  PyObject *v = PyObject_GetAttrString(fbank, name);
  long n = v ? PyLong_AsLong(v) : -1;
  Py_XDECREF(v);
  return n;
}

/* copy_frames(fbank, first, out): out[i] = GetFrame(first + i) for each row of `out`, a writable
 * C-contiguous float32 (n, dim) buffer. Checked against the binding: dim must be its dim() and the frames
 * must be ready (first >= 0, first + n <= num_frames_ready). The caller has not popped them (knf keeps no
 * count of popped frames that the binding shows). */
static PyObject *copy_frames(PyObject *, PyObject *args) {
#if KNF_DIRECT_SUPPORTED
  PyObject *fbank, *out;
  int first;
  if (!PyArg_ParseTuple(args, "OiO", &fbank, &first, &out)) return nullptr;
  Py_buffer b;
  if (PyObject_GetBuffer(out, &b, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_ND) < 0) return nullptr;
  PyObject *result = nullptr;
  knf::OnlineFbank *p = nullptr;
  if (b.ndim != 2 || b.itemsize != 4 || !b.format || std::strcmp(b.format, "f") != 0) {
    PyErr_SetString(PyExc_TypeError, "out: expected a 2-D float32 array");
  } else if ((p = fbank_pointer(fbank))) {
    Py_ssize_t n = b.shape[0], dim = b.shape[1];
    long ready = binding_int(fbank, "num_frames_ready");
    long knf_dim = ready < 0 ? -1 : binding_int(fbank, "dim");
    if (PyErr_Occurred()) {
      /* the binding's own error */
    } else if (dim != knf_dim) {
      PyErr_Format(PyExc_ValueError, "out: expected %ld features per frame, got %zd", knf_dim, dim);
    } else if (first < 0 || n > ready - first) {
      PyErr_Format(PyExc_ValueError, "frames %d..%zd: expected ready ones, below %ld", first, first + n - 1, ready);
    } else {
      float *o = static_cast<float *>(b.buf);
      try {
        for (Py_ssize_t i = 0; i < n; i++)
          std::memcpy(o + i * dim, knf_get_frame(p, first + static_cast<int32_t>(i)), dim * sizeof(float));
        result = Py_NewRef(Py_None);
      } catch (...) {
        set_knf_error();
      }
    }
  }
  PyBuffer_Release(&b);
  return result;
#else
  (void)args;
  PyErr_SetString(PyExc_ImportError, "this build has no direct route");
  return nullptr;
#endif
}

static PyMethodDef methods[] = {
    {"resolve", resolve, METH_O, "resolve(path): find kaldi-native-fbank's OnlineFbank functions in its module"},
    {"pointer", pointer, METH_O, "pointer(fbank) -> int: the knf::OnlineFbank address the conduit gives"},
    {"accept", accept, METH_VARARGS, "accept(fbank, rate, samples): AcceptWaveform on a float32 buffer"},
    {"copy_frames", copy_frames, METH_VARARGS, "copy_frames(fbank, first, out): ready frames into out (n, dim)"},
    {nullptr, nullptr, 0, nullptr},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_knf_direct", nullptr, -1, methods,
                                    nullptr, nullptr, nullptr, nullptr};

PyMODINIT_FUNC PyInit__knf_direct(void) {
  PyObject *m = PyModule_Create(&module);
  if (m && PyModule_AddStringConstant(m, "PLATFORM_ABI_ID", KNF_DIRECT_ABI_ID) < 0) Py_CLEAR(m);
  return m;
}
