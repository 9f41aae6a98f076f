"""Builds the C engine as a cffi extension (API mode), and the C callable of GraphStream.invoke, at install time."""

import runpy

from setuptools import setup

setup(cffi_modules=["kwsint/_build_ffi.py:ffibuilder"],
      ext_modules=[runpy.run_path("kwsint/_build_ffi.py")["invoke_extension"]()])
