"""``cellverify.case``, a public path since the first release: a test case
and its inputs, which live in :mod:`cellverify.checks.cases.case` and
:mod:`cellverify.data.market`, and are exported from ``cellverify`` itself."""

from __future__ import annotations

from cellverify.checks.cases.case import Case
from cellverify.data.inputs import InputSpec

__all__ = ["Case", "InputSpec"]
