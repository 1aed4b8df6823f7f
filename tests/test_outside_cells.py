"""The invariants on cells written outside the project, which expose nothing
but their outputs (tests/outside_cells.py): no false alarm on a correct one,
and the faults still caught."""

from __future__ import annotations

import pytest

from cellverify.checks.cases.case import Case
from cellverify.checks.judges.catalog import check
from cellverify.config import CellConfig, TrainConfig
from cellverify.data import InputSpec
from cellverify.errors import InvariantViolation

from .outside_cells import asset_offset_cell, offset_votes_cell, pgportfolio_cell

pytestmark = pytest.mark.usefixtures("fresh_keras")

#: The issue's outside cell: assets 4, window 3, kernels 1-1-1, ELU, linear last conv.
SMALL_EIIE = CellConfig(
    assets=4, window=3, kernels=(1, 1, 1), activation="elu", output_activation="linear"
)
SUPERVISED = TrainConfig(batch_size=2, steps=2, task="supervised")


def test_gradients_nonzero_excuses_a_variable_the_softmax_cannot_see_without_step_activations():
    """The offset's gradient is exactly 0 by construction and it shifts every
    vote alike: measured on the outputs, nothing depends on it."""
    check("gradients_nonzero", offset_votes_cell, Case(SMALL_EIIE, SUPERVISED))


def test_gradients_nonzero_fails_a_zero_gradient_the_output_depends_on():
    with pytest.raises(InvariantViolation, match=r"offset.*exactly 0.*moves the output by"):
        check("gradients_nonzero", asset_offset_cell, Case(SMALL_EIIE, SUPERVISED))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradient_check_passes_a_correct_cell_with_many_units_exactly_at_a_kink(seed):
    """PGPortfolio's design on flat prices: every conv unit's pre-activation is
    exactly 0 (zero inputs after normalisation, zero biases), and the biases
    move them to both sides at once.  Seeds 1 and 2 failed the old rule."""
    cell = CellConfig(assets=4, window=6, kernels=(3, 4, 1), cash_bias=True, seed=seed)
    train = TrainConfig(batch_size=2, steps=2, task="portfolio", seed=seed)
    check("gradient_check", pgportfolio_cell, Case(cell, train, InputSpec(kind="constant")))
