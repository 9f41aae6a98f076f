"""Mutation testing as part of the suite (tests/mutation/README.md): every curated mutation still applies to
the tree, and the CI subset of them is killed by its tests."""

import re
from pathlib import Path

import pytest

from .mutation.mutations import MUTATIONS, Mutation
from .mutation.runner import KILLED, mutated, run_mutations

ROOT = Path(__file__).resolve().parent.parent
# Mutations that once escaped the suite: they stay in the CI subset so they cannot escape again.
ESCAPED_BEFORE = {"neon-output-zero-point-saturates", "avx2-srdhm-no-saturation", "avx2-acc16-block-doubled"}


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.id)
def test_every_mutation_applies_and_names_real_tests(mutation: Mutation):
    text = (ROOT / mutation.file).read_text()
    assert mutated(text, mutation) != text  # raises unless the original occurs exactly once
    assert mutation.tests and mutation.why
    for node in mutation.tests:
        path, _, name = node.partition("::")
        source = (ROOT / path).read_text()
        function = name.split("[")[0]
        assert not name or re.search(rf"^def {function}\(", source, flags=re.M), f"{node}: no such test"


def test_ids_are_unique_and_the_ci_subset_holds_the_former_escapees():
    assert len({m.id for m in MUTATIONS}) == len(MUTATIONS)
    assert ESCAPED_BEFORE <= {m.id for m in MUTATIONS if m.ci}


@pytest.mark.mutation
def test_ci_subset_is_killed(tmp_path):
    base, results = run_mutations([m for m in MUTATIONS if m.ci], workdir=tmp_path)
    assert base.verdict == "passed", f"the pristine copy's tests fail: {base.detail}"
    escaped = [f"{r.name}: {r.verdict} {r.detail}" for r in results if r.verdict != KILLED]
    assert not escaped, "not killed (run ./scripts/mutate --only ID to see it alone):\n" + "\n".join(escaped)
