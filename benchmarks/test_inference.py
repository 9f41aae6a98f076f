"""Per-inference time of the paper's configurations on each usable backend.

    .venv/bin/python -m pytest benchmarks/ --benchmark-only

Measures Model.infer on an already-quantized input (the engine alone, plus the
Python call) and on a float window (front end included). MACs per inference
are recorded in extra_info so MACs/s can be derived from the saved JSON.
"""

import numpy as np
import pytest

import kwsint
from kwsint import reference
from kwsint.train.generate import paper_model


@pytest.fixture(scope="module", params=["M1", "M2", "M4", "M6"])
def config(request):
    spec = paper_model(request.param)
    window = np.random.default_rng(0).normal(-5.0, 2.5, (81, 20)).astype(np.float32)
    return request.param, kwsint.write_blob(spec), window, reference.quantize_window(spec, window)


@pytest.mark.parametrize("backend", kwsint.backends())
def test_infer_quantized(benchmark, config, backend):
    name, blob, _, xq = config
    model = kwsint.load(blob, backend=backend)
    benchmark.extra_info.update(config=name, backend=backend, macs=model.info()["macs"])
    r = benchmark(model.infer, xq)
    assert r.logits.shape == (2,)


@pytest.mark.parametrize("backend", kwsint.backends())
def test_infer_float_window(benchmark, config, backend):
    name, blob, window, _ = config
    model = kwsint.load(blob, backend=backend)
    benchmark.extra_info.update(config=name, backend=backend, macs=model.info()["macs"])
    benchmark(model.infer, window)
