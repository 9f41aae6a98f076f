"""The four microWakeWord models (PyPI pymicro-wakeword) per invoke: kwsint against the runtimes that run them
today, side by side in one run, and each runtime's output codes against TFLM's on the same input stream.

    .venv/bin/python -m pytest benchmarks/test_microwakeword.py --benchmark-only -s

The input stream: int8 feature codes of synthetic speech (espeak-ng, when installed, through pymicro-features,
quantized as pymicro-wakeword quantizes them) between stretches of a clipped random walk, 3 frames per invoke.
Every runtime sees the same inputs in the same order from a fresh state, so the outputs of an exact one equal
TFLM's invoke for invoke. Runtimes, one thread each:

* kwsint (each usable backend): ``GraphStream.invoke`` (one Python call per invoke), and ``invoke_many`` on
  ROUNDS_CALLS invokes at a time (the C loop: one Python call per round).
* TFLM: the ``tflite_micro`` interpreter (the oracle: ESPHome's devices run TFLM).
* LiteRT (``ai-edge-litert``) with its default XNNPACK delegate and without it (its builtin kernels).
* pymicro-wakeword's own ``libtensorflowlite_c`` through ctypes, as its ``process_streaming_prob`` calls it,
  given the int8 codes directly.

Rounds of ROUNDS_CALLS invokes alternate between the runtimes, each on the next ROUNDS_CALLS inputs of the
stream, so that machine noise hits them alike; the table gives the median time per invoke, each as a multiple of
kwsint's fastest Python invoke, and the share of invokes whose uint8 output differs from TFLM's.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from kwsint.engine import backend as kb
from kwsint.interop.tflite_import import load_tflite

pymicro_wakeword = pytest.importorskip("pymicro_wakeword")
MODELS = Path(pymicro_wakeword.__file__).parent / "models"
NAMES = ("okay_nabu", "hey_jarvis", "alexa", "hey_mycroft")
ROUNDS = 15
ROUNDS_CALLS = 200
PHRASES = ("okay nabu", "hey jarvis", "alexa", "hey mycroft", "what time is it", "turn on the kitchen lights")


def _speech_features() -> np.ndarray:
    """(frames, 40) float features of espeak-ng speech (empty if espeak-ng is missing)."""
    from pymicro_wakeword import MicroWakeWordFeatures

    if not shutil.which("espeak-ng"):
        return np.zeros((0, 40))
    frames = []
    for voice in ("en", "en-us", "en-gb-x-rp"):
        for phrase in PHRASES:
            wav = subprocess.run(["espeak-ng", "-v", voice, "--stdout", phrase], check=True,
                                 capture_output=True).stdout[44:]  # a 22050 Hz 16-bit mono WAV: drop its header
            pcm = np.frombuffer(wav[:len(wav) // 2 * 2], np.int16).astype(np.float64)
            at16k = np.interp(np.arange(0, len(pcm), 22050 / 16000), np.arange(len(pcm)), pcm).astype(np.int16)
            silence = np.zeros(8000, np.int16)
            audio = np.concatenate([silence, at16k, silence]).tobytes()
            frames += [f.reshape(-1) for f in MicroWakeWordFeatures().process_streaming(audio)]
    return np.array(frames)


def _input_stream(n: int, scale: float, zero_point: int) -> np.ndarray:
    """(n, 3, 40) int8 codes: speech features (quantized and wrapped as pymicro-wakeword does) alternating with a
    clipped random walk."""
    rng = np.random.default_rng(0)
    speech = np.round(_speech_features() / scale + zero_point).astype(np.int64).astype(np.int8)
    parts, total = [], 0
    while total < 3 * n:
        walk = np.clip(np.cumsum(rng.integers(-6, 7, (600, 40)), axis=0) - 60, -128, 127).astype(np.int8)
        parts += [speech, walk]
        total += len(speech) + len(walk)
    return np.concatenate(parts)[:3 * n].reshape(n, 3, 40)


def _tflm(path: Path):
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(path.read_bytes(), arena_size=1 << 20)

    def run(x):
        interp.set_input(x.reshape(1, 3, 40), 0)
        interp.invoke()
        return interp.get_output(0)
    return run


def _litert(path: Path, xnnpack: bool):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interp = Interpreter(model_path=str(path), num_threads=1, experimental_op_resolver_type=resolver)
    interp.allocate_tensors()
    i, o = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]

    def run(x):
        interp.set_tensor(i, x.reshape(1, 3, 40))
        interp.invoke()
        return interp.get_tensor(o)
    return run


def _pymicro(name: str):
    """pymicro-wakeword's interpreter, invoked as its process_streaming_prob invokes it (after quantizing)."""
    mww = pymicro_wakeword.MicroWakeWord.from_builtin(pymicro_wakeword.Model(name))
    lib, interp, tin, tout = mww.lib, mww.interpreter, mww.input_tensor, mww.output_tensor
    out = np.empty(1, np.uint8)
    out_ptr = out.ctypes.data_as(ctypes.c_void_p)

    def run(x):
        lib.TfLiteTensorCopyFromBuffer(tin, x.ctypes.data_as(ctypes.c_void_p), x.nbytes)
        lib.TfLiteInterpreterInvoke(interp)
        lib.TfLiteTensorCopyToBuffer(tout, out_ptr, 1)
        return out.copy()
    run.keep = mww  # the interpreter lives as long as the runner
    return run


def _runners(name: str) -> dict[str, tuple[str, object]]:
    """name -> (kind, runner): kind "one" runs one input, "many" a whole round of inputs."""
    path = MODELS / f"{name}.tflite"
    runners = {}
    for be in (b for b in kb.backends() if not b.endswith("-simde")):
        model = load_tflite(path, backend=be)
        runners[f"kwsint {be}"] = ("one", model.stream().invoke)
        runners[f"kwsint {be}, C loop"] = ("many", model.stream().invoke_many)
    runners["TFLM"] = ("one", _tflm(path))
    runners["LiteRT (XNNPACK)"] = ("one", _litert(path, True))
    runners["LiteRT (no delegate)"] = ("one", _litert(path, False))
    runners["pymicro-wakeword lib"] = ("one", _pymicro(name))
    return runners


@pytest.mark.parametrize("name", NAMES)
def test_microwakeword_per_invoke(benchmark, name):
    runners = _runners(name)
    model = load_tflite(MODELS / f"{name}.tflite", backend="portable")
    q = model.spec.tensors[model.spec.input].quant
    inputs = _input_stream(ROUNDS * ROUNDS_CALLS, q.scale, q.zero_point)
    outputs = {r: [] for r in runners}
    seconds = {r: [] for r in runners}

    def alternate():
        for k in range(ROUNDS):
            chunk = inputs[k * ROUNDS_CALLS:(k + 1) * ROUNDS_CALLS]
            for r, (kind, run) in runners.items():
                t0 = time.perf_counter()
                if kind == "many":
                    got = run(chunk)
                else:
                    got = [run(x) for x in chunk]
                seconds[r].append((time.perf_counter() - t0) / ROUNDS_CALLS)
                outputs[r].append(np.asarray(got).reshape(-1))

    benchmark.pedantic(alternate, rounds=1, iterations=1)
    median = {r: float(np.median(s)) for r, s in seconds.items()}
    tflm = np.concatenate(outputs["TFLM"])
    mismatch = {r: float(np.mean(np.concatenate(o) != tflm)) for r, o in outputs.items()}
    base = min(m for r, m in median.items() if r.startswith("kwsint") and not r.endswith("C loop"))
    benchmark.extra_info.update(
        model=name, rounds=ROUNDS, invokes_per_round=ROUNDS_CALLS,
        median_us_per_invoke={r: round(m * 1e6, 3) for r, m in median.items()},
        x_kwsint={r: round(m / base, 2) for r, m in median.items()},
        mismatch_vs_tflm={r: round(m, 5) for r, m in mismatch.items()},
        distinct_tflm_outputs=int(np.unique(tflm).size),
    )
    print(f"\n{name}: median of {ROUNDS} alternating rounds of {ROUNDS_CALLS} invokes, "
          f"{np.unique(tflm).size} distinct TFLM outputs")
    print(f"{'runtime':>26} {'us/invoke':>10} {'x kwsint':>9} {'!= TFLM':>8}")
    for r, m in median.items():
        print(f"{r:>26} {m * 1e6:10.2f} {m / base:9.2f} {mismatch[r]:8.2%}")
    assert all(mismatch[r] == 0 for r in runners if r.startswith("kwsint"))
