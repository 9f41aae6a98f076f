"""Shared fixtures and the hypothesis profiles.

Profiles (select with HYPOTHESIS_PROFILE): "ci" (the default: 300 examples per
property, derandomized so a failure reproduces run to run), "dev" (quick), and
"deep" (10,000 randomized examples per property, for long runs).
"""

import os

import pytest
from hypothesis import HealthCheck, settings

import kwsint

_common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
               print_blob=True)
settings.register_profile("ci", max_examples=300, derandomize=True, **_common)
settings.register_profile("dev", max_examples=40, derandomize=True, **_common)
settings.register_profile("deep", max_examples=10_000, **_common)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(params=kwsint.backends(), scope="session")
def backend(request) -> str:
    """Every backend this machine can run: a new backend is under the whole suite at once."""
    return request.param
