"""Print the kill matrix: every mutant against every invariant.

    python -m tests.kill_matrix

``X`` marks an invariant that caught the mutant, ``.`` one that held, ``E``
one that crashed (a bug in the kit), ``*`` the invariant(s) the mutant was
written to break.  Run from the repository
root.  Not a test: it runs 16 x 14 checks (about a minute); the targeted
kills are asserted by tests/test_mutants.py.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from cellverify.errors import InvariantViolation
from cellverify.invariants import INVARIANTS
from cellverify.model import fresh_session

from .mutants import KILLS, case_for, factory


def main() -> int:
    names = list(INVARIANTS)
    print("invariants: " + ", ".join(f"{i}={n}" for i, n in enumerate(names)))
    print(f"{'mutant':24s} " + " ".join(f"{i:>2d}" for i in range(len(names))))
    for mutant, targets in KILLS.items():
        marks = []
        for name in names:
            fresh_session()
            try:
                INVARIANTS[name].check(factory(mutant), case_for(mutant))
                mark = "."
            except InvariantViolation:
                mark = "X"
            except Exception as exc:
                mark = "E"
                print(f"  {mutant.__name__} x {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
            marks.append(mark + ("*" if name in targets else " "))
        print(f"{mutant.__name__:24s} " + " ".join(marks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
