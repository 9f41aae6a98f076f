"""pytest plugin (``-p tests.mutation.proof``): writes where kwsint and its C extension were imported from,
at the end of the session, to the file named by KWSINT_MUTATION_PROOF. The runner requires both to lie
in the mutated copy, so a verdict is never about some other build."""

import json
import os


def pytest_sessionfinish(session, exitstatus):
    import kwsint
    import kwsint._kwsint_c

    with open(os.environ["KWSINT_MUTATION_PROOF"], "w") as f:
        json.dump({"kwsint": kwsint.__file__, "extension": kwsint._kwsint_c.__file__}, f)
