"""Every number a failure message prints, against a hand-computed case: the
sums, counts, bounds and differences the user acts on must be right."""

from __future__ import annotations

import numpy as np
import pytest

from cellverify import Case, CellConfig, TrainConfig
from cellverify.checks.judges.catalog import check
from cellverify.checks.judges.invariants.harness import require_close, require_identical
from cellverify.checks.judges.invariants.learning import (
    LOSS_DECREASE_MARGIN,
    LOSS_DROP_FLOOR_ULPS,
    loss_drop,
)
from cellverify.checks.judges.numerics.gradcheck import Mismatch, NoisyLoss
from cellverify.checks.judges.numerics.tolerances import FLOAT32_EPS
from cellverify.errors import InvariantViolation
from cellverify.mutation import DEFAULT_CASE, GradientSignFlipped

from .outside_cells import fixed_row_factory

pytestmark = pytest.mark.usefixtures("fresh_keras")

#: Three assets, a batch of 3 and 2 steps: 6 rows of 3 entries.
CASE = Case(CellConfig(assets=3, window=5, kernels=(2, 2, 1)), TrainConfig(batch_size=3, steps=2))


def _message(invariant: str, row: tuple[float, ...]) -> str:
    with pytest.raises(InvariantViolation) as info:
        check(invariant, fixed_row_factory(row), CASE)
    return str(info.value)


def test_simplex_message_gives_a_row_summing_below_one_as_its_sum():
    # 0.5 + 0.25 + (0.25 - 2**-11) = 0.99951171875, exact in float32.
    message = _message("simplex_output", (0.5, 0.25, 0.25 - 2**-11))
    assert "a row sums to 0.99951172 (|sum - 1| = 0.000488 > tolerance 1e-05 for rows of 3)" in (
        message
    )


def test_simplex_message_gives_a_row_summing_above_one_as_its_sum():
    message = _message("simplex_output", (0.5, 0.25, 0.25 + 2**-11))
    assert "a row sums to 1.0004883 (|sum - 1| = 0.000488" in message


def test_simplex_message_gives_the_negative_entry_and_where_it_is():
    message = _message("simplex_output", (0.75, 0.5, -0.25))
    assert "has a negative entry -0.25 at index [0, 0, 2]" in message


def test_init_message_counts_the_exact_zeros_of_a_saturated_output():
    # 6 rows of (1, 0, 0): 12 entries exactly 0.
    message = _message("init_near_uniform", (1.0, 0.0, 0.0))
    assert "puts 1 on one entry (saturation at 0.99) with 12 entries exactly 0" in message


def test_init_message_counts_the_exactly_uniform_rows():
    third = float(np.float32(1 / 3))
    message = _message("init_near_uniform", (third, third, third))
    assert "6 of 6 untrained output rows [3, 2, 3] are exactly uniform" in message


def test_state_matters_message_gives_how_far_the_output_moved_and_the_bound():
    message = _message("state_matters", (0.5, 0.25, 0.25))
    assert (
        "output [3, 3] moved by 0 when the state went from uniform to peaked (needs > 1e-06)"
        in (message)
    )


def test_close_comparison_message_gives_the_difference_the_bound_and_the_probability():
    got = np.array([[0.5, 0.25]])
    expected = np.array([[0.5, 0.25001]])
    with pytest.raises(InvariantViolation) as info:
        require_close("the output", got, expected, np.array([[1e-6, 2e-6]]), 3.0)
    assert (
        "the output [1, 2] differs by 1e-05 at index [0, 1], where rounding allows 2e-06 "
        "(probability 0.25, logits up to 3;"
    ) in str(info.value)


def test_exact_comparison_message_gives_the_largest_difference():
    with pytest.raises(InvariantViolation, match=r"two runs \[2\] differs by 0\.5 \(tolerance"):
        require_identical("two runs", np.array([1.0, 2.0]), np.array([1.0, 2.5]))


def test_loss_message_gives_the_losses_and_the_drop_it_asked_for():
    start, best, gap = loss_drop(GradientSignFlipped, DEFAULT_CASE)
    needed = max(LOSS_DECREASE_MARGIN * gap, LOSS_DROP_FLOOR_ULPS * FLOAT32_EPS * max(1, start))
    with pytest.raises(InvariantViolation) as info:
        check("loss_decreases", GradientSignFlipped, DEFAULT_CASE)
    assert (
        f"went from {start:.6g} to at best {best:.6g} in 20 adam steps (lr 0.001); needed a "
        f"drop above {needed:.3g} (margin 0.0001 of the gap {gap:.3g}"
    ) in str(info.value)


def test_noisy_loss_message_gives_the_bound_at_the_losss_magnitude():
    # sqrt(eps64) * max(1, |2|) = 2 * 1.49e-8 = 2.98e-8.
    text = NoisyLoss(noise=1e-6, loss=2.0).describe()
    assert "the loss (2) moves with a standard deviation of 1e-06" in text
    assert "more than rounding can (2.98e-08, sqrt(eps) of max(1, |loss|))" in text


def test_derivative_mismatch_message_gives_autodiff_and_both_differences():
    text = Mismatch("coordinate [0]", 1.5, -1.5, -1.25, 1e-5, False, (1.5, -1.5, -1.25)).describe()
    assert text.startswith(
        "along coordinate [0]: autodiff 1.5, one-sided differences -1.5 (forward) and "
        "-1.25 (backward) at step 1e-05 (no kink within the step); autodiff must lie between"
    )
