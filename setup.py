"""Builds the C engine as a cffi extension (API mode), the C callable of GraphStream.invoke and, where a C++
compiler and kaldi-native-fbank's headers are at hand, the LFBE front end's direct route, at install time."""

import runpy

from setuptools import setup

build = runpy.run_path("kwsint/_build_ffi.py")
optional = [e for e in [build["knf_direct_extension"]()] if e is not None]
setup(cffi_modules=["kwsint/_build_ffi.py:ffibuilder"], ext_modules=[build["invoke_extension"](), *optional])
