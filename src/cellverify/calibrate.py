"""``python -m cellverify.calibrate``, a public path: everything lives in
:mod:`cellverify.tools.calibrate`."""

from __future__ import annotations

from cellverify.tools.calibrate import (
    DIAGNOSIS_BUDGETS,
    DIAGNOSIS_SEEDS,
    LABEL_BUDGET,
    LABEL_SEEDS,
    LABELLED_SET,
    Labelled,
    main,
    run_missing,
    score,
)

__all__ = [
    "DIAGNOSIS_BUDGETS",
    "DIAGNOSIS_SEEDS",
    "LABELLED_SET",
    "LABEL_BUDGET",
    "LABEL_SEEDS",
    "Labelled",
    "main",
    "run_missing",
    "score",
]

if __name__ == "__main__":
    import sys

    sys.exit(main())
