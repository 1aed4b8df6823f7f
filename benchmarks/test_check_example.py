"""What one Hypothesis example of each invariant costs, model building and
(for the invariants that train) the updates included: the unit of
``cellverify check``'s and the property suite's run time.

Each timed call builds a fresh cell from the shipped factory, as the check
does; the first call (imports, first traces of Keras internals) is outside
the timed region.  Compare invariants as ratios within one run.
"""

from __future__ import annotations

import pytest

from cellverify.cell import conv_rnn_cell
from cellverify.checks.judges.catalog import registered
from cellverify.model import fresh_session
from cellverify.mutation import DEFAULT_CASE

INVARIANTS = list(registered())


@pytest.mark.parametrize("name", INVARIANTS)
def test_one_example(benchmark, name):
    invariant = registered()[name]
    case = DEFAULT_CASE  # small, and inside every invariant's region
    fresh_session()
    invariant(conv_rnn_cell, case)

    def once():
        fresh_session()
        invariant(conv_rnn_cell, case)

    benchmark.group = "one example per invariant (DEFAULT_CASE)"
    benchmark.extra_info["region"] = invariant.region.name
    benchmark.pedantic(once, rounds=5, iterations=1)
