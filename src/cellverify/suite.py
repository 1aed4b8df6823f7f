"""Run invariants through Hypothesis and collect plain results (for ``cellverify check``).

Each invariant is searched with the strategy of its region, under a named
profile; a failure is shrunk by Hypothesis, and the minimal falsifying case
is kept with its message.  Results are plain data: rendering lives in
:mod:`cellverify.report`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, reporting, settings
from hypothesis import strategies as st

from cellverify.case import Case
from cellverify.errors import BadCellFactory, InvariantViolation, describe_exception
from cellverify.invariants import INVARIANTS, Invariant
from cellverify.model import CellFactory, fresh_session
from cellverify.profiles import register_profiles
from cellverify.strategies import REGIONS, cases

__all__ = [
    "InvariantResult",
    "SuiteResult",
    "cases_for",
    "run_invariant",
    "run_suite",
    "strategy_for",
]


@dataclass(frozen=True)
class InvariantResult:
    """One invariant's outcome: ``passed``, ``failed`` or ``skipped``."""

    name: str
    status: str
    examples: int
    seconds: float
    falsifying: Case | None = None
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "examples": self.examples,
            "seconds": round(self.seconds, 3),
            "falsifying": None if self.falsifying is None else self.falsifying.to_dict(),
            "message": self.message,
        }


@dataclass(frozen=True)
class SuiteResult:
    """Every invariant's result for one cell factory under one profile (SPEC §4.4)."""

    cell: str
    profile: str
    results: list[InvariantResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.status != "failed" for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cell": self.cell,
            "profile": self.profile,
            "passed": self.passed,
            "invariants": [r.to_dict() for r in self.results],
        }


def strategy_for(invariant: Invariant) -> st.SearchStrategy[Case]:
    """The cases an invariant is claimed on: its region, adversarial inputs if it takes them."""
    return cases(region=REGIONS[invariant.region], adversarial_inputs=invariant.adversarial_inputs)


def cases_for(name: str) -> st.SearchStrategy[Case]:
    """The strategy of the invariant called ``name``, for ``@given`` in a property test."""
    return strategy_for(INVARIANTS[name])


def run_invariant(
    invariant: Invariant,
    factory: CellFactory,
    *,
    profile: str,
    strategy: st.SearchStrategy[Case] | None = None,
    on_example: Callable[[int], None] | None = None,
) -> InvariantResult:
    """Search for a case that breaks ``invariant``; shrink it if found.

    ``strategy`` replaces the invariant's own region, for instance to search
    the whole space with an invariant claimed only on the robust region.
    """
    register_profiles()
    examples = 0
    failures: list[tuple[Case, str]] = []

    @settings(settings.get_profile(profile), report_multiple_bugs=False)
    @given(strategy if strategy is not None else strategy_for(invariant))
    def search(case: Case) -> None:
        nonlocal examples
        examples += 1
        if on_example is not None:
            on_example(examples)
        fresh_session()
        try:
            invariant.check(factory, case)
        except BadCellFactory:
            raise
        except InvariantViolation as exc:
            failures.append((case, str(exc)))
            raise
        except Exception as exc:  # the user's cell crashed on a generated case
            failures.append((case, f"[{invariant.name}] the cell raised {describe_exception(exc)}"))
            raise

    start = time.perf_counter()
    try:
        with reporting.with_reporter(lambda _: None):
            search()
    except BadCellFactory:
        raise
    except Exception:
        # Hypothesis replays the shrunk example last, so it is the last failure.
        case, message = failures[-1]
        return InvariantResult(
            invariant.name, "failed", examples, time.perf_counter() - start, case, message
        )
    return InvariantResult(invariant.name, "passed", examples, time.perf_counter() - start)


def run_suite(
    factory: CellFactory,
    *,
    cell: str,
    profile: str,
    select: Iterable[str] | None = None,
    on_progress: Callable[[str, int], None] | None = None,
) -> SuiteResult:
    """Run every invariant (or those whose name contains one of ``select``)."""
    chosen = list(select) if select else None
    results = []
    for name, invariant in INVARIANTS.items():
        if chosen is not None and not any(s in name for s in chosen):
            results.append(InvariantResult(name, "skipped", 0, 0.0, message="not selected"))
            continue
        progress = None if on_progress is None else (lambda n, name=name: on_progress(name, n))
        results.append(run_invariant(invariant, factory, profile=profile, on_example=progress))
    return SuiteResult(cell, profile, results)
