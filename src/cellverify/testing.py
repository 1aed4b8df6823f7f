"""``cellverify.testing``, a public path: everything lives in
:mod:`cellverify.checks.runs.testing`."""

from __future__ import annotations

from cellverify.checks.runs.testing import (
    COVERAGE_PROPERTY,
    EXAMPLES_PROPERTY,
    CellInvariants,
)

__all__ = [
    "COVERAGE_PROPERTY",
    "EXAMPLES_PROPERTY",
    "CellInvariants",
]
