"""``python -m cellverify.calibrate``, a public path: the measurement lives in
:mod:`cellverify.tools.calibrate`, the labelled set in :mod:`cellverify.tools.labelled`."""

from __future__ import annotations

from cellverify.tools.calibrate import (
    DIAGNOSIS_BUDGETS,
    DIAGNOSIS_SEEDS,
    LABEL_BUDGET,
    LABEL_SEEDS,
    main,
    run_missing,
    score,
)
from cellverify.tools.labelled import LABELLED_SET, Labelled

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
