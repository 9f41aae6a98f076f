/* GraphStream.invoke as a C callable (module kwsint.engine._invoke).
 *
 * The engine is loaded through cffi (kwsint._kwsint_c); an invoke of a streaming graph takes a few
 * microseconds, and a cffi call from a Python method (argument conversion, ffi.from_buffer, the output
 * copy) costs about as much again. StreamInvoke is one stream's invoke with none of that: a vectorcall
 * object that checks its argument with numpy's C API, makes the output array and calls
 * kws_stream_invoke through the address cffi gives for it. Anything other than an int8, C-contiguous
 * array of the input shape goes through a Python function (`as_input`) that converts it or raises the
 * ValueError; a status other than KWS_OK goes through another (`raise_status`), so the messages and
 * exceptions have one home in Python. kws_stream_invoke checks both lengths itself. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_22_API_VERSION
#define NPY_TARGET_VERSION NPY_1_22_API_VERSION
#include <numpy/arrayobject.h>
#include <stddef.h>
#include <stdint.h>

#include "kwsint.h"

/* The type of kws_stream_invoke, without a reference to the symbol (it lives in the cffi module). */
typedef __typeof__(&kws_stream_invoke) invoke_fn;

typedef struct {
  PyObject_HEAD
  vectorcallfunc vectorcall;
  invoke_fn invoke;
  kws_stream *stream;
  PyObject *keep_alive; /* owns the stream and its model */
  PyObject *as_input, *raise_status;
  npy_intp in_shape[2], out_shape[2];
  int out_type;
} StreamInvoke;

static int is_input(const StreamInvoke *self, PyObject *x) {
  if (!PyArray_Check(x)) return 0;
  PyArrayObject *a = (PyArrayObject *)x;
  return PyArray_TYPE(a) == NPY_INT8 && PyArray_NDIM(a) == 2 && PyArray_DIM(a, 0) == self->in_shape[0] &&
         PyArray_DIM(a, 1) == self->in_shape[1] && PyArray_IS_C_CONTIGUOUS(a);
}

static PyObject *stream_invoke(PyObject *obj, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
  StreamInvoke *self = (StreamInvoke *)obj;
  if (PyVectorcall_NARGS(nargsf) != 1 || (kwnames && PyTuple_GET_SIZE(kwnames))) {
    PyErr_SetString(PyExc_TypeError, "invoke(x) takes one positional argument");
    return NULL;
  }
  PyObject *x = args[0];
  Py_INCREF(x);
  if (!is_input(self, x)) {
    Py_SETREF(x, PyObject_CallOneArg(self->as_input, x));
    if (!x) return NULL;
    if (!is_input(self, x)) {
      Py_DECREF(x);
      PyErr_SetString(PyExc_TypeError, "as_input returned no int8 C-contiguous array of the input shape");
      return NULL;
    }
  }
  PyObject *y = PyArray_SimpleNew(2, self->out_shape, self->out_type);
  if (!y) {
    Py_DECREF(x);
    return NULL;
  }
  const int8_t *in = PyArray_DATA((PyArrayObject *)x);
  void *out = PyArray_DATA((PyArrayObject *)y);
  size_t in_len = (size_t)PyArray_SIZE((PyArrayObject *)x), out_len = (size_t)PyArray_SIZE((PyArrayObject *)y);
  kws_status status;
  Py_BEGIN_ALLOW_THREADS /* as cffi's calls do: other threads' streams run meanwhile */
  status = self->invoke(self->stream, in, in_len, out, out_len);
  Py_END_ALLOW_THREADS
  Py_DECREF(x);
  if (status != KWS_OK) {
    Py_DECREF(y);
    PyObject *r = PyObject_CallFunction(self->raise_status, "i", (int)status);
    if (r) { /* it must raise */
      Py_DECREF(r);
      PyErr_Format(PyExc_RuntimeError, "kws_stream_invoke: status %d", (int)status);
    }
    return NULL;
  }
  return y;
}

static int shape2(PyObject *t, const char *what, npy_intp shape[2]) {
  if (!PyArg_ParseTuple(t, "nn", &shape[0], &shape[1])) return -1;
  if (shape[0] <= 0 || shape[1] <= 0) {
    PyErr_Format(PyExc_ValueError, "%s: positive dimensions expected", what);
    return -1;
  }
  return 0;
}

static int stream_invoke_init(PyObject *obj, PyObject *args, PyObject *kwargs) {
  StreamInvoke *self = (StreamInvoke *)obj;
  static char *names[] = {"invoke_address", "stream_address", "keep_alive", "input_shape", "output_shape",
                          "output_type", "as_input", "raise_status", NULL};
  unsigned long long invoke, stream;
  PyObject *keep_alive, *in_shape, *out_shape, *as_input, *raise_status;
  int out_type;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "KKOO!O!iOO", names, &invoke, &stream, &keep_alive,
                                   &PyTuple_Type, &in_shape, &PyTuple_Type, &out_shape, &out_type, &as_input,
                                   &raise_status))
    return -1;
  if (!invoke || !stream) {
    PyErr_SetString(PyExc_ValueError, "invoke_address and stream_address must not be NULL");
    return -1;
  }
  if (out_type != NPY_INT8 && out_type != NPY_UINT8) {
    PyErr_SetString(PyExc_ValueError, "output_type: numpy's int8 or uint8 type number expected");
    return -1;
  }
  if (!PyCallable_Check(as_input) || !PyCallable_Check(raise_status)) {
    PyErr_SetString(PyExc_TypeError, "as_input and raise_status must be callable");
    return -1;
  }
  if (shape2(in_shape, "input_shape", self->in_shape) || shape2(out_shape, "output_shape", self->out_shape))
    return -1;
  self->invoke = (invoke_fn)(uintptr_t)invoke;
  self->stream = (kws_stream *)(uintptr_t)stream;
  self->out_type = out_type;
  Py_INCREF(keep_alive);
  Py_XSETREF(self->keep_alive, keep_alive);
  Py_INCREF(as_input);
  Py_XSETREF(self->as_input, as_input);
  Py_INCREF(raise_status);
  Py_XSETREF(self->raise_status, raise_status);
  self->vectorcall = stream_invoke;
  return 0;
}

/* A StreamInvoke made with __new__ but not __init__ has no stream: calling it raises. */
static PyObject *not_initialised(PyObject *obj, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
  (void)obj, (void)args, (void)nargsf, (void)kwnames;
  PyErr_SetString(PyExc_TypeError, "StreamInvoke was not initialised");
  return NULL;
}

static PyObject *stream_invoke_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
  (void)args, (void)kwargs;
  StreamInvoke *self = (StreamInvoke *)type->tp_alloc(type, 0);
  if (self) self->vectorcall = not_initialised;
  return (PyObject *)self;
}

static void stream_invoke_dealloc(PyObject *obj) {
  StreamInvoke *self = (StreamInvoke *)obj;
  Py_XDECREF(self->keep_alive);
  Py_XDECREF(self->as_input);
  Py_XDECREF(self->raise_status);
  Py_TYPE(obj)->tp_free(obj);
}

static PyTypeObject StreamInvokeType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "kwsint.engine._invoke.StreamInvoke",
    .tp_doc = "invoke(x): one invoke of a stream on x (int8, the input shape); a new output array.",
    .tp_basicsize = sizeof(StreamInvoke),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(StreamInvoke, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_new = stream_invoke_new,
    .tp_init = stream_invoke_init,
    .tp_dealloc = stream_invoke_dealloc,
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, .m_name = "kwsint.engine._invoke", .m_size = -1};

PyMODINIT_FUNC PyInit__invoke(void) {
  import_array();
  if (PyType_Ready(&StreamInvokeType) < 0) return NULL;
  PyObject *m = PyModule_Create(&module);
  if (!m) return NULL;
  Py_INCREF(&StreamInvokeType);
  if (PyModule_AddObject(m, "StreamInvoke", (PyObject *)&StreamInvokeType) < 0) {
    Py_DECREF(&StreamInvokeType);
    Py_DECREF(m);
    return NULL;
  }
  return m;
}
