"""A crash is an error, not a failure: anything but a violation raised while an
invariant checks a case is reported as ``error`` with where it was raised,
and never counted as a kill."""

from __future__ import annotations

import pytest

from cellverify.cell import ConvRNNCell, conv_rnn_cell
from cellverify.checks.judges.invariants import INVARIANTS
from cellverify.checks.judges.registry import Invariant
from cellverify.checks.mutants.kill_matrix import kill_result
from cellverify.checks.runs.crashes import crash_site
from cellverify.checks.runs.suite import run_invariant
from cellverify.mutation import CRASHED, KILLED

pytestmark = pytest.mark.usefixtures("fresh_keras")


def _lookup_fails(factory, case):
    {}["no such key"]  # a bug in the invariant itself


def test_an_invariant_that_raises_is_an_error_naming_the_invariants_code():
    simplex = INVARIANTS["simplex_output"]
    crasher = Invariant("crasher", _lookup_fails, simplex.region, simplex.adversarial_inputs)
    result = run_invariant(crasher, conv_rnn_cell, profile="dev")
    assert result.status == "error", result.message
    assert result.message.startswith(
        "[crasher] crashed in the invariant's code at test_crashes.py:"
    )
    assert "(_lookup_fails): KeyError: 'no such key'" in result.message
    assert kill_result(result.status) == CRASHED


class _CrashesOnTwoAssets(ConvRNNCell):
    def call(self, inputs, states, training=None):
        if inputs.shape[1] == 2:
            raise ValueError("two assets are not supported")
        return super().call(inputs, states, training)


def test_a_cell_that_raises_on_a_case_is_an_error_with_the_case_and_the_cells_code():
    result = run_invariant(INVARIANTS["output_shape"], _CrashesOnTwoAssets, profile="dev")
    assert result.status == "error", result.message
    assert "crashed in the cell's code at test_crashes.py:" in result.message
    assert "ValueError: two assets are not supported" in result.message
    assert result.falsifying is not None and result.falsifying.cell.assets == 2
    assert result.clause == ""


def test_a_violation_is_still_a_failure_and_a_kill():
    from cellverify.mutation import MUTANTS

    result = run_invariant(
        INVARIANTS["state_matters"], MUTANTS["StateIgnored"].factory, profile="dev"
    )
    assert (result.status, result.clause) == ("failed", "effect")
    assert kill_result(result.status) == KILLED


def _raise_in(module: str) -> BaseException:
    """An exception raised by code whose module is ``module``."""
    scope = {"__name__": module}
    exec("def boom():\n    raise RuntimeError('boom')\n", scope)
    try:
        scope["boom"]()
    except RuntimeError as exc:
        return exc
    raise AssertionError("boom did not raise")


@pytest.mark.parametrize(
    ("module", "owner"),
    [
        ("cellverify.checks.judges.invariants.harness", "the kit's code"),
        ("cellverify.model.cell", "the cell's code"),
        ("cellverify.checks.mutants.wiring", "the cell's code"),
        ("cellverify.checks.mutants.mutation", "the kit's code"),
        ("cellverify.checks.mutants.kill_matrix", "the kit's code"),
        ("mypackage.cells", "the cell's code"),
        ("myinvariants", "the invariant's code"),
    ],
)
def test_a_crash_is_laid_at_the_door_of_the_code_that_raised_it(module, owner):
    assert crash_site(_raise_in(module), "myinvariants").startswith(f"{owner} at ")
