"""``cellverify.testing``, a public path: everything lives in :mod:`cellverify.checks.testing`."""

from __future__ import annotations

from cellverify.checks.testing import (
    COVERAGE_PROPERTY,
    EXAMPLES_PROPERTY,
    CellInvariants,
)

__all__ = [
    "COVERAGE_PROPERTY",
    "EXAMPLES_PROPERTY",
    "CellInvariants",
]
