"""Cell factories for the command-line tests, importable as ``tests.cli_cells:NAME``."""

from __future__ import annotations

import itertools

from cellverify.cell import ConvRNNCell
from cellverify.config import CellConfig
from cellverify.mutation import MUTANTS, WrongOutputShape

_calls = itertools.count()


def flaky_cell(config: CellConfig) -> ConvRNNCell:
    """The second cell it builds (the first example's, after ``check`` has
    vetted the first) drops an asset, every other one is right: a failure
    that does not reproduce when Hypothesis replays it (Flaky)."""
    if next(_calls) == 1:
        return WrongOutputShape(config)
    return ConvRNNCell(config)


#: Mutants by MODULE:ATTRIBUTE, for the command line.
softmax_over_wrong_axis = MUTANTS["SoftmaxOverWrongAxis"].factory
wrong_output_shape = MUTANTS["WrongOutputShape"].factory


#: Command-line options for a tiny shape that trains in well under a second a run.
SMALL_SHAPE_ARGS = ["--assets", "3", "--window", "6", "--kernels", "2,3,1", "--batch-size", "2"]
