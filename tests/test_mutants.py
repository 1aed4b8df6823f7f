"""Every invariant fails on some deliberately broken cell, each mutant is
caught by the invariants it targets, and the shipped cell passes them all."""

from __future__ import annotations

import pytest

from cellverify.cell import conv_rnn_cell
from cellverify.checks.invariants import INVARIANTS
from cellverify.errors import InvariantViolation
from cellverify.mutation import DEFAULT_CASE, KILLED, MUTANTS, KillMatrix, Mutant, kill_matrix

pytestmark = pytest.mark.usefixtures("fresh_keras")

TARGETS = [(m.name, name) for m in MUTANTS.values() for name in m.kills]


def test_every_invariant_is_targeted_by_some_mutant():
    targeted = {name for m in MUTANTS.values() for name in m.kills}
    assert targeted == set(INVARIANTS)


@pytest.mark.parametrize(("mutant", "invariant"), TARGETS)
def test_mutant_is_caught_by_its_invariant(mutant, invariant):
    m = MUTANTS[mutant]
    with pytest.raises(InvariantViolation) as info:
        INVARIANTS[invariant](m.factory, m.case)
    assert info.value.invariant == invariant
    assert str(info.value).startswith(f"[{invariant}] ")


@pytest.mark.parametrize(("mutant", "invariant"), TARGETS)
def test_mutant_is_caught_by_its_invariant_under_the_ci_gate(mutant, invariant):
    """Not just on the case the mutant was written with: the gate's own
    search (covering cases, then the random search) finds and shrinks it."""
    from cellverify.checks.runner import run_invariant

    result = run_invariant(INVARIANTS[invariant], MUTANTS[mutant].factory, profile="ci")
    assert result.status == "failed", result.message
    assert result.message.startswith(f"[{invariant}] ")
    assert result.falsifying.train.batch_size <= MUTANTS[mutant].case.train.batch_size


@pytest.mark.parametrize("invariant", sorted(INVARIANTS))
def test_shipped_cell_passes_every_invariant_on_the_mutants_case(invariant):
    INVARIANTS[invariant](conv_rnn_cell, DEFAULT_CASE)


def test_kill_matrix_reports_an_invariant_no_mutant_breaks():
    matrix = kill_matrix(["state_matters", "output_shape"], ["StateIgnored"])
    assert matrix.cells["StateIgnored", "state_matters"] == KILLED
    assert matrix.unkilled() == ["output_shape"]
    assert not matrix.complete
    assert matrix.to_dict()["unkilled"] == ["output_shape"]


def test_kill_matrix_reports_a_mutant_that_escapes_its_target():
    harmless = Mutant("Harmless", conv_rnn_cell, kills=("output_shape",))
    from cellverify.mutation import register_mutant

    register_mutant(harmless)
    try:
        matrix = kill_matrix(["output_shape"], ["Harmless"])
    finally:
        del MUTANTS["Harmless"]
    assert matrix.escaped() == [("Harmless", "output_shape")]
    assert isinstance(matrix, KillMatrix)


def test_a_batch_leak_is_caught_by_batch_independence_alone():
    """BatchLeak equals the shipped cell at batch 1: every invariant that
    compares a batch with itself passes it."""
    matrix = kill_matrix(mutants=["BatchLeak"])
    killed = [i for i in matrix.invariants if matrix.cells["BatchLeak", i] == KILLED]
    assert killed == ["batch_independence"]
