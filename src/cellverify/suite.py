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
from hypothesis.errors import Flaky, HypothesisException

from cellverify.case import Case
from cellverify.errors import (
    BadCellFactory,
    CellVerifyError,
    InvariantViolation,
    describe_exception,
)
from cellverify.invariants import INVARIANTS, Invariant
from cellverify.model import CellFactory, fresh_session
from cellverify.profiles import register_profiles
from cellverify.strategies import REGIONS, cases

__all__ = [
    "STATUSES",
    "InvariantResult",
    "SuiteResult",
    "UnknownInvariant",
    "cases_for",
    "run_invariant",
    "run_suite",
    "select_invariants",
    "strategy_for",
]


#: What an invariant's search can end in.  ``error``: the search itself could
#: not be completed (a Hypothesis health check, ``Unsatisfiable``, a flaky
#: failure that did not reproduce, no example run) - nothing was shown about
#: the cell either way, so it is neither a pass nor a violation.
STATUSES: tuple[str, ...] = ("passed", "failed", "error", "skipped")


@dataclass(frozen=True)
class InvariantResult:
    """One invariant's outcome: one of :data:`STATUSES`."""

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
        """Every invariant run held, and at least one ran: a run that checked
        nothing never passes."""
        ran = [r for r in self.results if r.status != "skipped"]
        return bool(ran) and all(r.status == "passed" for r in ran)

    @property
    def errored(self) -> bool:
        return any(r.status == "error" for r in self.results)

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

    def result(status: str, case: Case | None = None, message: str = "") -> InvariantResult:
        return InvariantResult(
            invariant.name, status, examples, time.perf_counter() - start, case, message
        )

    try:
        with reporting.with_reporter(lambda _: None):
            search()
    except BadCellFactory:
        raise
    except HypothesisException as exc:
        # Hypothesis's own verdict on the search (health check, unsatisfiable,
        # flaky), raised instead of a failure: report it, never as a violation.
        return result("error", message=f"[{invariant.name}] {_hypothesis_error(exc, failures)}")
    except Exception as exc:
        if not failures:  # raised outside the test body: a bug, not a finding
            return result(
                "error",
                message=f"[{invariant.name}] the search failed: {describe_exception(exc)}",
            )
        # Hypothesis replays the shrunk example last, so it is the last failure.
        case, message = failures[-1]
        return result("failed", case, message)
    if examples == 0:
        return result("error", message=f"[{invariant.name}] no example was run")
    return result("passed")


_MESSAGE_CHARS = 400


def _hypothesis_error(exc: HypothesisException, failures: list[tuple[Case, str]]) -> str:
    """Hypothesis's own error in one line, with the failure it could not reproduce."""
    if isinstance(exc, Flaky):
        said = (
            "a failure did not reproduce when Hypothesis replayed it: the cell (or the "
            "check) is not deterministic"
        )
    else:
        said = " ".join(str(exc).split())[:_MESSAGE_CHARS]
    seen = f"; the failure seen first: {failures[-1][1]}" if failures else ""
    return f"Hypothesis could not complete the search: {type(exc).__name__}: {said}{seen}"


class UnknownInvariant(CellVerifyError):
    """A selection names no invariant."""


def select_invariants(select: Iterable[str] | None) -> list[str]:
    """Names of the invariants whose name contains one of ``select`` (all if
    None); raises :class:`UnknownInvariant` when a pattern matches none."""
    if not select:
        return list(INVARIANTS)
    patterns = list(select)
    unmatched = [p for p in patterns if not any(p in name for name in INVARIANTS)]
    if unmatched:
        raise UnknownInvariant(
            f"-k {unmatched[0]!r} matches no invariant; the invariants are: "
            f"{', '.join(INVARIANTS)}. Received: {unmatched!r}"
        )
    return [name for name in INVARIANTS if any(p in name for p in patterns)]


def run_suite(
    factory: CellFactory,
    *,
    cell: str,
    profile: str,
    select: Iterable[str] | None = None,
    on_progress: Callable[[str, int], None] | None = None,
) -> SuiteResult:
    """Run every invariant (or those whose name contains one of ``select``)."""
    chosen = select_invariants(select)
    results = []
    for name, invariant in INVARIANTS.items():
        if name not in chosen:
            results.append(InvariantResult(name, "skipped", 0, 0.0, message="not selected"))
            continue
        progress = None if on_progress is None else (lambda n, name=name: on_progress(name, n))
        results.append(run_invariant(invariant, factory, profile=profile, on_example=progress))
    return SuiteResult(cell, profile, results)
