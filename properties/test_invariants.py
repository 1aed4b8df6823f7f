"""The property suite: every registered invariant against the cell under test.

The cell is ``--cellverify-cell`` / ``CELLVERIFY_CELL`` (default: the shipped
cell); the profile ``--hypothesis-profile`` / ``HYPOTHESIS_PROFILE`` (default:
``ci`` under ``CI``, else ``dev``).  The kit runs on its own product: this is
what a user's test file looks like.
"""

from cellverify.testing import CellInvariants


class TestCell(CellInvariants):
    """One test per invariant, named test_<invariant>."""
