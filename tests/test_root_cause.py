"""One root cause per failure: a non-finite output, state, loss or gradient is
reported as itself by every invariant that meets it, never as a mismatch with
the hint of the invariant's own concern (docs/design.md, "One root cause per
failure")."""

from __future__ import annotations

import numpy as np
import pytest

from cellverify import Case, CellConfig, InputSpec, TrainConfig
from cellverify.checks.judges.catalog import check
from cellverify.checks.judges.invariants import INVARIANTS
from cellverify.checks.judges.invariants.harness import (
    require_close,
    require_finite,
    require_identical,
)
from cellverify.checks.judges.registry import NON_FINITE
from cellverify.errors import InvariantViolation

from .outside_cells import minmax_scaled_cell

pytestmark = pytest.mark.usefixtures("fresh_keras")

#: Hints each invariant gives for its own concern: none may be given for a NaN.
OWN_HINTS = (
    "random at inference",
    "seed honoured",
    "get_config() misses",
    "re-drew them",
    "rounding allows",
    "exactly uniform",
    "differs",
)

#: Invariants that never read the case's windows' values: output_shape's
#: claim is shapes alone, and gradients_nonzero trains on market batches.
READ_NO_FLAT_WINDOW = {"output_shape", "gradients_nonzero"}

#: The outside min-max cell on constant prices, inside every region that
#: claims adversarial inputs (ELU convs, linear last conv, no cash).
FLAT_CASE = Case(
    CellConfig(assets=3, window=5, kernels=(2, 2, 1), activation="elu", output_activation="linear"),
    TrainConfig(batch_size=2, steps=2, task="supervised"),
    InputSpec(kind="constant"),
)


@pytest.mark.parametrize("name", sorted(INVARIANTS))
def test_every_invariant_names_the_nan_of_a_cell_that_divides_by_a_flat_window(name):
    """(x - min) / (max - min) is 0/0 on a constant window: each invariant
    either passes (it reads no such window) or says that the output is NaN
    on a constant window, and nothing of its own concern."""
    if name in READ_NO_FLAT_WINDOW:
        check(name, minmax_scaled_cell, FLAT_CASE)
        return
    with pytest.raises(InvariantViolation) as info:
        check(name, minmax_scaled_cell, FLAT_CASE)
    message = str(info.value)
    assert info.value.clause == NON_FINITE, message
    assert "is NaN" in message and "on a constant window" in message, message
    assert not any(hint in message for hint in OWN_HINTS), message


def test_a_non_finite_value_is_reported_with_its_value_index_and_count():
    values = np.array([[0.5, 0.5, 0.0], [0.2, np.inf, np.nan]])
    with pytest.raises(InvariantViolation) as info:
        require_finite("the output", values)
    assert info.value.clause == NON_FINITE
    assert str(info.value).endswith(
        "the output [2, 3] is +inf at index [1, 1] (2 of 6 entries non-finite) on its inputs; "
        "every comparison after that is meaningless"
    )


def test_a_nan_met_in_a_comparison_is_reported_as_a_nan_not_as_a_difference():
    nan = np.full((2, 2), np.nan)
    with pytest.raises(InvariantViolation, match=r"the output twice \[2, 2\] is NaN") as same:
        require_identical("the output twice", nan, nan, "is something random at inference?")
    with pytest.raises(InvariantViolation, match=r"compared with \[2, 2\] is NaN") as close:
        require_close("the permuted output", np.ones((2, 2)), nan, 1e-6, 1.0)
    for info in (same, close):
        assert info.value.clause == NON_FINITE
        assert "random" not in str(info.value) and "differs" not in str(info.value)


def test_a_finite_comparison_still_reports_the_difference_with_its_hint():
    with pytest.raises(InvariantViolation, match=r"differs by 0\.5 .*; is the seed honoured\?"):
        require_identical("two builds", np.array([1.0]), np.array([0.5]), "is the seed honoured?")
