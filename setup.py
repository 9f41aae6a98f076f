"""Builds the C engine as a cffi extension (API mode) at install time."""

from setuptools import setup

setup(cffi_modules=["kwsint/_build_ffi.py:ffibuilder"])
