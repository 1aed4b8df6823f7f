"""Each invariant fails on a deliberately broken cell, and holds on the shipped one."""

from __future__ import annotations

import pytest

from cellverify.cell import conv_rnn_cell
from cellverify.errors import InvariantViolation
from cellverify.invariants import INVARIANTS

from .mutants import CASE, KILLS, case_for, factory

pytestmark = pytest.mark.usefixtures("fresh_keras")

TARGETS = [(mutant, name) for mutant, names in KILLS.items() for name in names]


def test_every_invariant_is_killed_by_some_mutant():
    killed = {name for names in KILLS.values() for name in names}
    assert killed == set(INVARIANTS)


@pytest.mark.parametrize(("mutant", "invariant"), TARGETS, ids=lambda x: getattr(x, "__name__", x))
def test_mutant_is_caught_by_its_invariant(mutant, invariant):
    with pytest.raises(InvariantViolation) as info:
        INVARIANTS[invariant].check(factory(mutant), case_for(mutant))
    assert info.value.invariant == invariant
    assert str(info.value).startswith(f"[{invariant}] ")


@pytest.mark.parametrize("invariant", sorted(INVARIANTS))
def test_shipped_cell_passes_every_invariant_on_the_mutants_case(invariant):
    INVARIANTS[invariant].check(conv_rnn_cell, CASE)
