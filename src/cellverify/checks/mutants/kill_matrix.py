"""The kill matrix: which invariant catches which deliberately broken cell.

An invariant that no mutant (:mod:`cellverify.checks.mutants.mutation`) makes fail
tests nothing, and so does each clause of it that no mutant makes fire; a
mutant that escapes the invariant it was written to break, or is caught by
another clause than the one it aims at, is a hole in the gate.
:func:`kill_matrix` runs invariants against mutants and says all four;
``cellverify mutants`` prints it and exits 1 on any.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cellverify.checks.judges.catalog import registered
from cellverify.checks.judges.registry import Invariant
from cellverify.checks.mutants.mutation import MUTANTS, Mutant
from cellverify.checks.runs.results import CheckStatus
from cellverify.checks.runs.suite import run_invariant
from cellverify.errors import InvariantViolation, describe_exception

__all__ = [
    "CRASHED",
    "KILLED",
    "KILL_RESULTS",
    "NOT_APPLICABLE",
    "SURVIVED",
    "KillMatrix",
    "KillResult",
    "kill_matrix",
    "kill_result",
]


#: A cell of the matrix: the invariant caught the mutant, held, crashed (a
#: bug in the kit or the invariant, never a kill), or does not apply to the
#: mutant's contract.
class KillResult(StrEnum):
    KILLED = "killed"
    SURVIVED = "survived"
    CRASHED = "crashed"
    NOT_APPLICABLE = "not_applicable"


KILL_RESULTS: tuple[KillResult, ...] = tuple(KillResult)
KILLED, SURVIVED, CRASHED, NOT_APPLICABLE = KILL_RESULTS


def kill_result(status: CheckStatus) -> KillResult:
    """What a search's status says of a mutant: a failure caught it, a pass
    let it survive, anything else (an error, nothing run) is no verdict."""
    if status == "failed":
        return KILLED
    if status == "not_applicable":
        return NOT_APPLICABLE
    return SURVIVED if status == "passed" else CRASHED


@dataclass(frozen=True)
class KillMatrix:
    """Which invariant caught which mutant, and by which of its clauses (plain data).

    ``clauses`` holds each invariant's declared clauses, ``aims`` the clause
    each mutant is written to break in each invariant it targets (where it
    says), ``fired`` the clause that caught it."""

    invariants: list[str]
    mutants: list[str]
    targets: dict[str, tuple[str, ...]]
    cells: dict[tuple[str, str], KillResult]
    messages: dict[tuple[str, str], str] = field(default_factory=dict)
    clauses: dict[str, tuple[str, ...]] = field(default_factory=dict)
    aims: dict[str, dict[str, str]] = field(default_factory=dict)
    fired: dict[tuple[str, str], str] = field(default_factory=dict)

    def unkilled(self) -> list[str]:
        """Invariants that no mutant made fail: they are not tested."""
        return [i for i in self.invariants if all(self.cells[m, i] != KILLED for m in self.mutants)]

    def escaped(self) -> list[tuple[str, str]]:
        """(mutant, invariant) pairs where the mutant escaped the invariant it targets."""
        return [
            (m, i)
            for m in self.mutants
            for i in self.targets[m]
            if i in self.invariants and self.cells[m, i] != KILLED
        ]

    def misfired(self) -> list[tuple[str, str, str, str]]:
        """(mutant, invariant, clause aimed at, clause that fired) where a
        mutant was caught, but not by the clause it was written to break."""
        return [
            (m, i, aim, self.fired.get((m, i), ""))
            for m in self.mutants
            for i, aim in self.aims.get(m, {}).items()
            if i in self.invariants
            and self.cells[m, i] == KILLED
            and self.fired.get((m, i), "") != aim
        ]

    def by_clause(self) -> dict[tuple[str, str], list[str]]:
        """Each declared clause of each invariant, and the mutants it caught by it."""
        return {
            (i, c): [m for m in self.mutants if self.fired.get((m, i)) == c]
            for i in self.invariants
            for c in self.clauses.get(i, ())
        }

    def untested_clauses(self) -> list[tuple[str, str]]:
        """(invariant, clause) pairs that no mutant made fire: not tested."""
        return [pair for pair, caught in self.by_clause().items() if not caught]

    @property
    def complete(self) -> bool:
        return not (self.unkilled() or self.escaped() or self.misfired() or self.untested_clauses())

    def to_dict(self) -> dict[str, Any]:
        return {
            "invariants": self.invariants,
            "mutants": [
                {
                    "name": m,
                    "targets": list(self.targets[m]),
                    "clauses": dict(self.aims.get(m, {})),
                    "cells": {i: str(self.cells[m, i]) for i in self.invariants},
                    "fired": {i: self.fired[m, i] for i in self.invariants if (m, i) in self.fired},
                }
                for m in self.mutants
            ],
            "clauses": [
                {"invariant": i, "clause": c, "mutants": caught}
                for (i, c), caught in self.by_clause().items()
            ],
            "unkilled": self.unkilled(),
            "escaped": [list(pair) for pair in self.escaped()],
            "misfired": [list(entry) for entry in self.misfired()],
            "untested_clauses": [list(pair) for pair in self.untested_clauses()],
            "complete": self.complete,
        }


def _verdict(
    invariant: Invariant, mutant: Mutant, profile: str | None
) -> tuple[KillResult, str, str]:
    """The cell of the matrix, the message, and the clause that fired."""
    from cellverify.model.rnn import fresh_session
    from cellverify.spec import contract_of

    reason = invariant.why_not_applicable(contract_of(mutant.factory))
    if reason is not None:
        return NOT_APPLICABLE, reason, ""
    fresh_session()
    try:
        invariant(mutant.factory, mutant.case)
    except InvariantViolation as exc:
        return KILLED, str(exc), exc.clause
    except Exception as exc:
        return CRASHED, describe_exception(exc), ""
    if profile is None:
        return SURVIVED, "", ""
    result = run_invariant(invariant, mutant.factory, profile=profile)
    return kill_result(result.status), result.message, result.clause


def kill_matrix(
    invariants: Iterable[str] | None = None,
    mutants: Iterable[str] | None = None,
    profile: str | None = None,
    *,
    on_cell: Callable[[str, str, str], None] | None = None,
) -> KillMatrix:
    """Run every invariant (by name; default all registered) on every mutant
    (default all registered).

    Each pair is first checked on the mutant's own case; with a ``profile``,
    an invariant the case did not break then searches generated cases too
    (Hypothesis, that profile).  ``on_cell(mutant, invariant, status)`` reports
    progress.
    """
    known = registered()
    names = list(invariants) if invariants is not None else list(known)
    chosen = list(mutants) if mutants is not None else list(MUTANTS)
    cells: dict[tuple[str, str], KillResult] = {}
    messages: dict[tuple[str, str], str] = {}
    fired: dict[tuple[str, str], str] = {}
    for m in chosen:
        for i in names:
            cells[m, i], messages[m, i], clause = _verdict(known[i], MUTANTS[m], profile)
            if cells[m, i] == KILLED:
                fired[m, i] = clause
            if on_cell is not None:
                on_cell(m, i, cells[m, i])
    targets = {m: MUTANTS[m].kills for m in chosen}
    clauses = {i: known[i].clauses for i in names}
    aims = {m: dict(MUTANTS[m].clauses) for m in chosen}
    return KillMatrix(names, chosen, targets, cells, messages, clauses, aims, fired)
