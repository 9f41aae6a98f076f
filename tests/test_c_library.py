"""The C engine built alone (csrc/Makefile, scripts/build-c-lib), for the host and the devices.

One source list (csrc/sources.mk) for the library and the Python extension; the host library installed and linked
through its pkg-config file, statically and as a shared library; the cross builds for aarch64 and 32-bit ARM Linux,
whose programs run under qemu, and for Cortex-M4 and M7, linked against newlib (built, not run). Every program is
tests/c/link_check.c, and prints what the Python engine computes on the same window. Apple arm64 and bare-metal
aarch64 are compile-checked with clang, a macOS host's dylib linked with ld64.lld (not run); a clang-built aarch64
library runs under qemu.

Needs the cross compilers and qemu that ``scripts/setup test`` installs.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import kwsint
from kwsint._build_ffi import CSRC, c_sources

from .native_build import arch_flags

ROOT = Path(__file__).resolve().parent.parent
PROGRAM = ROOT / "tests" / "c" / "link_check.c"
BLOB = ROOT / "kwsint" / "default_model" / "M2.kwsq"

# target: (compiler, link flags besides csrc/Makefile's target flags, qemu command or None, the backend it picks)
TARGETS = {
    "aarch64": ("aarch64-linux-gnu-gcc", [], ["qemu-aarch64", "-cpu", "cortex-a53"], "neon"),
    "armv7": ("arm-linux-gnueabihf-gcc", [], ["qemu-arm", "-cpu", "cortex-a7"], "neon"),
    "cortex-m4": ("arm-none-eabi-gcc", ["--specs=nosys.specs"], None, None),
    "cortex-m7": ("arm-none-eabi-gcc", ["--specs=nosys.specs"], None, None),
}


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kwargs)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))}\n{r.stdout}\n{r.stderr}"
    return r


def _build(target: str, build: Path, *make_args: str) -> None:
    _run(["make", "-s", "-C", str(CSRC), f"TARGET={target}", f"BUILD={build}", f"-j{os.cpu_count() or 1}",
          *make_args])


@pytest.fixture(scope="module")
def expected() -> list[str]:
    """The Python engine's logits and posterior on link_check's window."""
    return _python_results(BLOB)


def _python_results(blob: Path) -> list[str]:
    model = kwsint.load(blob)
    frames, dim = model.window_shape
    window = ((np.arange(frames * dim) * 37 % 101 - 50) / 8.0).astype(np.float32).reshape(frames, dim)
    r = model.infer(window)
    return [str(int(v)) for v in (*r.logits, r.posterior_q16)]


@pytest.fixture(scope="module")
def graph_blob(tmp_path_factory) -> Path:
    """microWakeWord's okay_nabu as a kwsint blob (kwsint-import's)."""
    import pymicro_wakeword
    from kwsint.interop.tflite_import import read_tflite
    path = tmp_path_factory.mktemp("graph") / "okay_nabu.kwsq"
    path.write_bytes(kwsint.write_blob(read_tflite(Path(pymicro_wakeword.__file__).parent / "models" /
                                                   "okay_nabu.tflite")))
    return path


def graph_expected(blob: Path) -> list[str]:
    """The Python engine's output codes of the graph's first invoke on link_check's input."""
    model = kwsint.load(blob)
    n = model.input_shape[0] * model.input_shape[1]
    codes = ((np.arange(n) * 37 % 256) - 128).astype(np.int8).reshape(model.input_shape)
    return [str(int(v)) for v in model.stream().invoke(codes).ravel()[:16]]


def _results(stdout: str) -> tuple[list[str], list[int], list[str]]:
    """link_check's output: (backend, its numbers), (model bytes, bytes to run it), and loaded in place (arena
    bytes, model bytes, its numbers)."""
    first, second, third = stdout.splitlines()
    name, *sizes = second.split()
    assert name == "bytes"
    name, *in_place = third.split()
    assert name == "in_place"
    return first.split(), [int(v) for v in sizes], in_place


def test_one_source_list_for_the_library_and_the_extension():
    assert sorted(c_sources()) == sorted(CSRC.rglob("*.c")), "csrc/sources.mk must list every .c file under csrc"


def test_host_library_installs_and_links_through_pkg_config(tmp_path, expected):
    build, root = tmp_path / "build", tmp_path / "root"
    _build("host", build, "install", f"DESTDIR={root}", "PREFIX=/usr")
    lib = root / "usr" / "lib"
    assert {p.name for p in lib.iterdir()} >= {"libkwsint.a", "libkwsint.so", "libkwsint.so.0", "pkgconfig"}
    assert (root / "usr" / "include" / "kwsint.h").read_bytes() == (CSRC / "include" / "kwsint.h").read_bytes()
    env = {**os.environ, "PKG_CONFIG_PATH": str(lib / "pkgconfig")}

    def pkg_config(*args: str) -> list[str]:
        return _run(["pkg-config", "--define-prefix", *args, "kwsint"], env=env).stdout.split()

    assert pkg_config("--modversion") == [kwsint.__version__]
    best = kwsint.load(BLOB).backend
    for linkage, libs, run_env in (("static", pkg_config("--static", "--libs"), None),
                                   ("shared", pkg_config("--libs"), {**os.environ, "LD_LIBRARY_PATH": str(lib)})):
        exe = tmp_path / f"link_check_{linkage}"
        _run(["gcc", "-std=c11", "-O2", *(["-static"] if linkage == "static" else []), *pkg_config("--cflags"),
              str(PROGRAM), *libs, "-o", str(exe)])
        out, sizes, in_place = _results(_run([str(exe), str(BLOB)], env=run_env).stdout)
        assert out == [best, *expected] and in_place[2:] == expected, linkage
        info = kwsint.load(BLOB).info()  # the memory the C program reports is the Python engine's
        assert sizes == [info["model_bytes_in_memory"], info["scratch_bytes"] + (info["input_size"] + 7) // 8 * 8]
        info = kwsint.load(BLOB, memory="in_place").info()
        assert [int(v) for v in in_place[:2]] == [info["arena_bytes"], info["model_bytes_in_memory"]]
    shared = _run(["ldd", str(tmp_path / "link_check_shared")], env={**os.environ, "LD_LIBRARY_PATH": str(lib)})
    assert str(lib / "libkwsint.so.0") in shared.stdout


def test_host_library_runs_a_streaming_graph(tmp_path, graph_blob):
    """link_check on microWakeWord's okay_nabu: the output codes and the memory (copied, and in place with the
    stream in the caller's memory) the Python engine gives."""
    build = tmp_path / "build"
    _build("host", build)
    exe = tmp_path / "link_check"
    _run(["gcc", "-std=c11", "-O2", f"-I{CSRC / 'include'}", str(PROGRAM), str(build / "libkwsint.a"), "-lm", "-o",
          str(exe)])
    out, sizes, in_place = _results(_run([str(exe), str(graph_blob)]).stdout)
    copied, placed = kwsint.load(graph_blob), kwsint.load(graph_blob, memory="in_place")
    want = graph_expected(graph_blob)
    assert out == [copied.backend, *want] and in_place[2:] == want
    assert sizes == [copied.model_bytes, copied.stream_bytes]
    assert [int(v) for v in in_place[:2]] == [placed.arena_bytes, placed.model_bytes]


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_cross_build(target, tmp_path, expected, graph_blob):
    """The library for a device: built by the Makefile with the target's own backends, linked into a program; on
    the Linux targets the program runs under qemu and prints the Python engine's numbers."""
    cc, flags, qemu, backend = TARGETS[target]
    missing = [tool for tool in (cc, qemu[0] if qemu else None) if tool and shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{target} needs {', '.join(missing)} (scripts/setup test installs them)")
    build = tmp_path / "build"
    _build(target, build)
    assert (build / "libkwsint.so.0").exists() == (qemu is not None)  # a shared library where there is an OS
    exe = tmp_path / "link_check"
    _run([cc, "-std=c11", "-O2", *arch_flags(target), *flags, *([] if qemu is None else ["-static"]),
          f"-I{CSRC / 'include'}",
          str(PROGRAM), str(build / "libkwsint.a"), "-lm", "-o", str(exe)])
    readelf = _run([cc.replace("gcc", "readelf"), "-h", "-A", str(exe)]).stdout
    assert ("AArch64" if target == "aarch64" else "ARM") in readelf
    if qemu is None:
        assert 'Tag_CPU_name: "7E-M"' in readelf  # Armv7E-M: the Cortex-M4 and M7 instruction set
        return
    out, sizes, in_place = _results(_run([*qemu, str(exe), str(BLOB)]).stdout)
    assert out == [backend, *expected] and in_place[2:] == expected
    assert all(n > 0 for n in sizes) and 0 < int(in_place[1]) < sizes[0]  # in place, the model holds no weights
    out, sizes, in_place = _results(_run([*qemu, str(exe), str(graph_blob)]).stdout)
    want = graph_expected(graph_blob)
    assert out == [backend, *want] and in_place[2:] == want and 0 < int(in_place[1]) < sizes[0]


# Targets with no OS of ours to run on, compile-checked with clang: an Apple arm64 (macOS, iOS), whose CPU features
# come from sysctlbyname, and a bare-metal aarch64, which has no way to ask and so trusts what the compiler targets.
# No Apple SDK can be installed here, so the C library's declarations come from newlib's headers (standard C: the
# same prototypes as Apple's libc) and <sys/sysctl.h> is a one-line stand-in with Apple's prototype of
# sysctlbyname. What this checks: every source compiles for the target (-Werror) and backends.c takes that
# target's branch; not that Apple's own headers accept it, nor that the result links or runs.
NEWLIB_INCLUDE = Path("/usr/lib/arm-none-eabi/include")  # Debian's libnewlib-arm-none-eabi
SYSCTL_STUB = "#include <stddef.h>\nint sysctlbyname(const char *, void *, size_t *, void *, size_t);\n"


def _stand_in_headers(tmp_path: Path) -> Path:
    """Skips without clang or newlib's headers; the folder holding the <sys/sysctl.h> stand-in."""
    missing = [need for need, ok in (("clang", shutil.which("clang")), (str(NEWLIB_INCLUDE), NEWLIB_INCLUDE.is_dir()))
               if not ok]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (scripts/setup test installs them)")
    stub = tmp_path / "stub"
    (stub / "sys").mkdir(parents=True, exist_ok=True)
    (stub / "sys" / "sysctl.h").write_text(SYSCTL_STUB)
    return stub


def _clang_objects(target: str, tmp_path: Path, sources: list[Path], *flags: str) -> dict[str, bytes]:
    stub = _stand_in_headers(tmp_path)
    objects = {}
    for src in sources:
        obj = tmp_path / f"{target}-{src.relative_to(CSRC).as_posix().replace('/', '-')}.o"
        _run(["clang", f"--target={target}", "-nostdlibinc", "-isystem", str(NEWLIB_INCLUDE), "-isystem", str(stub),
              "-std=c11", "-fno-fast-math", "-ffp-contract=off", "-O2", "-Wall", "-Wextra", "-Werror", *flags,
              f"-I{CSRC / 'include'}", f"-I{CSRC}", "-c", str(src), "-o", str(obj)])
        objects[src.name] = obj.read_bytes()
    return objects


@pytest.mark.parametrize("target", ["arm64-apple-macos11", "arm64-apple-ios14"])
def test_apple_arm64_compiles_and_asks_sysctl(target, tmp_path):
    """macOS (clang's default CPU there has the dot product) and iOS (its default CPU has not: the SDOT files
    enable it per function)."""
    objects = _clang_objects(target, tmp_path, sorted(c_sources()))
    assert all(data[:4] == b"\xcf\xfa\xed\xfe" for data in objects.values())  # 64-bit Mach-O
    backends = objects["backends.c"]
    assert b"_sysctlbyname" in backends and b"getauxval" not in backends
    assert b"hw.optional.arm.FEAT_DotProd" in backends and b"hw.optional.armv8_2_dotprod" in backends


def test_bare_metal_aarch64_compiles_without_os_queries(tmp_path):
    """An aarch64 with no Linux and no sysctl: the dot product is usable exactly when the compiler targets it. The
    whole library with and without +dotprod; backends.c's cpu_dotprod both ways."""
    for march in ("armv8-a", "armv8.2-a+dotprod"):
        (tmp_path / march).mkdir()
        objects = _clang_objects("aarch64-none-elf", tmp_path / march, sorted(c_sources()), f"-march={march}")
        assert all(data[:4] == b"\x7fELF" for data in objects.values())
        assert b"getauxval" not in objects["backends.c"] and b"sysctlbyname" not in objects["backends.c"]
    for march, returns in (("armv8.2-a+dotprod", "#1"), ("armv8-a", "wzr")):
        asm = tmp_path / f"backends-{march}.s"
        _run(["clang", "--target=aarch64-none-elf", "-nostdlibinc", "-isystem", str(NEWLIB_INCLUDE), "-std=c11",
              "-O2", f"-march={march}", f"-I{CSRC / 'include'}", f"-I{CSRC}", "-S", str(CSRC / "backends.c"),
              "-o", str(asm)])
        body = asm.read_text().split("cpu_dotprod:", 1)[1].split("ret", 1)[0]
        assert f"mov\tw0, {returns}" in body, (march, body)


def _ld64() -> str | None:
    """LLVM's Mach-O linker (Debian lld-14), under any of the names Debian gives it."""
    found = [shutil.which(n) for n in ("ld64.lld", "ld64.lld-14")] + sorted(glob.glob("/usr/lib/llvm-*/bin/ld64.lld"))
    return next((p for p in found if p), None)


def test_darwin_host_makes_a_dylib(tmp_path):
    """On a macOS host (HOST_OS=Darwin) the Makefile links a Mach-O dylib named by its install path, not an ELF
    soname. Built here by clang for arm64-apple-macos11 (the C library's headers as in the compile checks) and
    linked by LLVM's ld64.lld; with no Apple SDK there is no libSystem to link, so undefined symbols are left to
    the loader (-undefined dynamic_lookup) and -lm finds an empty archive. Then installed with DESTDIR."""
    ld64 = _ld64()
    if ld64 is None:
        pytest.skip("needs ld64.lld (Debian lld-14; scripts/setup test installs it)")
    stub = _stand_in_headers(tmp_path)
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "libm.a").write_bytes(b"!<arch>\n")
    build, root = tmp_path / "build", tmp_path / "root"
    cc = (f"clang --target=arm64-apple-macos11 -nostdlibinc -isystem {NEWLIB_INCLUDE} -isystem {stub} "
          "-Wno-unused-command-line-argument")
    ldflags = (f"-fuse-ld={ld64} -Wl,-platform_version,macos,11.0,11.0 -nostdlib -undefined dynamic_lookup "
               f"-L{tmp_path / 'lib'}")
    _build("host", build, "HOST_OS=Darwin", "PREFIX=/opt/kws", f"CC={cc}", f"LDFLAGS={ldflags}", "install",
           f"DESTDIR={root}")
    lib = root / "opt" / "kws" / "lib"
    assert {p.name for p in lib.iterdir()} == {"libkwsint.a", "libkwsint.0.dylib", "libkwsint.dylib", "pkgconfig"}
    assert os.readlink(lib / "libkwsint.dylib") == "libkwsint.0.dylib"
    dylib = (lib / "libkwsint.0.dylib").read_bytes()
    assert dylib[:4] == b"\xcf\xfa\xed\xfe" and dylib[12:16] == b"\x06\x00\x00\x00"  # 64-bit Mach-O, MH_DYLIB
    assert b"/opt/kws/lib/libkwsint.0.dylib\0" in dylib and b"libkwsint.so" not in dylib  # its install name
    assert b"_sysctlbyname" in dylib and b"_kws_model_load" in dylib

def test_clang_aarch64_dot_product_under_qemu(tmp_path):
    """The library built by clang for aarch64 Linux: clang 14's arm_neon.h declares vdotq_s32 only for a +dotprod
    translation unit, so csrc/neon/neon.h reaches its builtin for the per-function SDOT code. Run under qemu: -cpu
    max picks neon-dotprod, the Cortex-A53 neon, and both print the Python engine's numbers (int8 and 4-bit)."""
    tools = ("clang", "aarch64-linux-gnu-gcc", "qemu-aarch64")
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (scripts/setup test installs them)")
    build, exe = tmp_path / "build", tmp_path / "link_check"
    _build("aarch64", build, "CC=clang --target=aarch64-linux-gnu")
    _run(["aarch64-linux-gnu-gcc", "-std=c11", "-O2", "-static", f"-I{CSRC / 'include'}", str(PROGRAM),
          str(build / "libkwsint.a"), "-lm", "-o", str(exe)])
    for blob in (BLOB, BLOB.with_name("M4.kwsq")):
        want = _python_results(blob)
        for cpu, backend in (("max", "neon-dotprod"), ("cortex-a53", "neon")):
            out, _, in_place = _results(_run(["qemu-aarch64", "-cpu", cpu, str(exe), str(blob)]).stdout)
            assert out == [backend, *want] and in_place[2:] == want, (blob.name, cpu)
