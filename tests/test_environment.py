"""What this machine must provide: every backend its CPU can run, and the TFLM build the oracle was validated on."""

from __future__ import annotations

import importlib.metadata
import platform
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import kwsint
from kwsint._build_ffi import SIMDE_HEADER, TEST_BACKENDS_ENV

from .conftest import FORBID_SKIPS, forbid_skips


def _cpu_flags() -> set[str]:
    """The first processor's feature flags from /proc/cpuinfo ("flags" on x86, "Features" on aarch64)."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    raise AssertionError("/proc/cpuinfo has no flags or Features line")


def _expected_backends(machine: str, test_backends: bool) -> list[str]:
    """csrc/backends.c's table, fastest first, cut to what this CPU runs and what was compiled in
    (``test_backends``: a build with KWSINT_TEST_BACKENDS=1, which adds SIMDe's NEON on other CPUs than ARM)."""
    arm = machine in ("aarch64", "arm64")
    x86 = machine in ("x86_64", "amd64")
    flags = _cpu_flags() if arm or x86 else set()
    want = []
    if arm:
        want += [*(["neon-dotprod"] if "asimddp" in flags else []), "neon"]
    if x86:
        avx512_vnni = {"avx2", "avx512f", "avx512bw", "avx512vl", "avx512_vnni"} <= flags
        want += [*(["avx512-vnni"] if avx512_vnni else []), *(["avx-vnni"] if {"avx2", "avx_vnni"} <= flags else []),
                 *(["avx2"] if "avx2" in flags else []), *(["sse4.1"] if "sse4_1" in flags else [])]
    want.append("portable")
    if test_backends and not arm:
        want += ["neon-simde", "neon-dotprod-simde"]
    return want


def test_backends_are_every_one_this_machine_can_run():
    machine = platform.machine().lower()
    arm = machine in ("aarch64", "arm64")
    test_build = any(name.endswith("-simde") for name in kwsint.compiled_backends())
    if forbid_skips() and not arm:
        # A user build (no SIMDe backends) silently drops every x86 test of the NEON kernels.
        assert test_build, (f"{FORBID_SKIPS}: CI tests the NEON kernels on x86 through SIMDe, so it needs the "
                            f"test build: {TEST_BACKENDS_ENV}=1 pip install -e . (scripts/setup test does, "
                            f"with SIMDe: {SIMDE_HEADER}, Debian libsimde-dev)")
    want = _expected_backends(machine, test_build)
    assert kwsint.backends() == want, (f"kwsint.backends() is {kwsint.backends()}, expected {want} on this "
                                       f"{machine} CPU (if that changed, rebuild: scripts/setup test)")


def _pinned_version(name: str, extra: str) -> str:
    """The exact version kwsint's ``extra`` (pyproject.toml, as installed) pins ``name`` to."""
    reqs = [Requirement(r) for r in importlib.metadata.requires("kwsint") or []]
    matches = [r for r in reqs if canonicalize_name(r.name) == canonicalize_name(name)
               and r.marker is not None and r.marker.evaluate({"extra": extra})]
    assert len(matches) == 1, f"kwsint's {extra} extra should name {name} once, names it {len(matches)} times"
    specs = list(matches[0].specifier)
    assert len(specs) == 1 and specs[0].operator == "==", f"pyproject.toml should pin {name} with ==, has {matches[0]}"
    return specs[0].version


def test_installed_tflite_micro_is_the_pinned_build():
    """The TFLM oracle is a nightly build; the tests were validated on the pinned one, so run on that one."""
    want, got = _pinned_version("tflite-micro", "interop"), importlib.metadata.version("tflite-micro")
    assert got == want, f"tflite-micro {got} is installed, pyproject.toml pins {want} (run scripts/setup test)"
