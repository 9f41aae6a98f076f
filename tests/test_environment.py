"""What this machine must provide: every backend its CPU can run, and the TFLM build the oracle was validated on."""

from __future__ import annotations

import importlib.metadata
import platform
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import kwsint
from kwsint._build_ffi import SIMDE_HEADER

from .conftest import FORBID_SKIPS, forbid_skips

def _cpu_flags() -> set[str]:
    """The first processor's feature flags from /proc/cpuinfo ("flags" on x86, "Features" on aarch64)."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    raise AssertionError("/proc/cpuinfo has no flags or Features line")


def _expected_backends(machine: str) -> list[str]:
    """csrc/backends.c's table, fastest first, cut to what this CPU runs and what was compiled in."""
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
    if not arm and SIMDE_HEADER.exists():  # kwsint/_build_ffi.py compiles the NEON source through SIMDe
        want += ["neon-simde", "neon-dotprod-simde"]
    return want


def test_backends_are_every_one_this_machine_can_run():
    machine = platform.machine().lower()
    if forbid_skips() and machine not in ("aarch64", "arm64"):
        # Without SIMDe the build silently drops the NEON kernels and every x86 test of them.
        assert SIMDE_HEADER.exists(), (f"{FORBID_SKIPS}: CI needs SIMDe ({SIMDE_HEADER}, Debian libsimde-dev, "
                                       "which scripts/setup installs) to test the NEON kernels on x86")
    want = _expected_backends(machine)
    simde = "present" if SIMDE_HEADER.exists() else "absent"
    assert kwsint.backends() == want, (f"kwsint.backends() is {kwsint.backends()}, expected {want} on this "
                                       f"{machine} CPU with SIMDe {simde} (if that changed, rebuild: scripts/setup)")


def _pinned_version(name: str) -> str:
    """The exact version kwsint's test extra (pyproject.toml, as installed) pins ``name`` to."""
    reqs = [Requirement(r) for r in importlib.metadata.requires("kwsint") or []]
    matches = [r for r in reqs if canonicalize_name(r.name) == canonicalize_name(name)
               and r.marker is not None and r.marker.evaluate({"extra": "test"})]
    assert len(matches) == 1, f"kwsint's test extra should name {name} once, names it {len(matches)} times"
    specs = list(matches[0].specifier)
    assert len(specs) == 1 and specs[0].operator == "==", f"pyproject.toml should pin {name} with ==, has {matches[0]}"
    return specs[0].version


def test_installed_tflite_micro_is_the_pinned_build():
    """The TFLM oracle is a nightly build; the tests were validated on the pinned one, so run on that one."""
    want, got = _pinned_version("tflite-micro"), importlib.metadata.version("tflite-micro")
    assert got == want, f"tflite-micro {got} is installed, pyproject.toml pins {want} (run scripts/setup)"
