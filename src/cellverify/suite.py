"""One builder of the Hypothesis tests, for ``cellverify check`` and for pytest.

:func:`search_test` builds, for one invariant, the Hypothesis test object
that both runners execute: ``cellverify check`` through :func:`run_invariant`
(which records the shrunk failure as plain data) and the pytest plugin's
:class:`~cellverify.testing.CellInvariants` (which lets Hypothesis report it).
The same function under the same profile draws the same examples, so a case
one runner finds, the other finds.  Results are plain data: rendering lives
in :mod:`cellverify.report`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import as_completed
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
from cellverify.factory import CellFactory
from cellverify.profiles import current_profile, register_profiles
from cellverify.registry import Invariant, registered
from cellverify.strategies import cases

__all__ = [
    "STATUSES",
    "InvariantResult",
    "SearchTest",
    "SuiteResult",
    "UnknownInvariant",
    "cases_for",
    "run_invariant",
    "run_suite",
    "search_test",
    "select_invariants",
    "strategy_for",
]

#: What an invariant's search can end in.  ``error``: the search itself could
#: not be completed (a Hypothesis health check, ``Unsatisfiable``, a flaky
#: failure that did not reproduce, no example run) - nothing was shown about
#: the cell either way, so it is neither a pass nor a violation.
STATUSES: tuple[str, ...] = ("passed", "failed", "error", "skipped")

_MESSAGE_CHARS = 400


@dataclass(frozen=True)
class InvariantResult:
    """One invariant's outcome: one of :data:`STATUSES`.

    ``outside`` lists the pinned ``field=value`` pairs outside the region
    where the invariant is claimed: a failure there is no fault of the cell.
    """

    name: str
    status: str
    examples: int
    seconds: float
    falsifying: Case | None = None
    message: str = ""
    region: str = "any"
    outside: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "examples": self.examples,
            "seconds": round(self.seconds, 3),
            "falsifying": None if self.falsifying is None else self.falsifying.to_dict(),
            "message": self.message,
            "region": self.region,
            "outside_region": list(self.outside),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InvariantResult:
        falsifying = data.get("falsifying")
        return cls(
            data["name"],
            data["status"],
            data["examples"],
            data["seconds"],
            None if falsifying is None else Case.from_dict(falsifying),
            data.get("message", ""),
            data.get("region", "any"),
            tuple(data.get("outside_region", ())),
        )


@dataclass(frozen=True)
class SuiteResult:
    """Every invariant's result for one cell factory under one profile
    (the JSON report of docs/design.md, "The check report")."""

    cell: str
    profile: str
    results: list[InvariantResult] = field(default_factory=list)
    pinned: dict[str, Any] = field(default_factory=dict)

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
            "pinned": {k: list(v) if isinstance(v, tuple) else v for k, v in self.pinned.items()},
            "invariants": [r.to_dict() for r in self.results],
        }


def strategy_for(
    invariant: Invariant, profile: str | None = None, pinned: Mapping[str, Any] | None = None
) -> st.SearchStrategy[Case]:
    """The cases an invariant is claimed on: its region, adversarial inputs if
    it takes them, the question's full shape too under ``thorough``
    (``profile``, by default the one loaded), and the ``pinned`` fields fixed."""
    return cases(
        region=invariant.region,
        adversarial_inputs=invariant.adversarial_inputs,
        full_shape=(profile or current_profile()) == "thorough",
        pinned=pinned,
    )


def cases_for(
    name: str, profile: str | None = None, pinned: Mapping[str, Any] | None = None
) -> st.SearchStrategy[Case]:
    """The strategy of the invariant called ``name``, for ``@given`` in a property test."""
    return strategy_for(registered()[name], profile, pinned)


class SearchTest:
    """A Hypothesis test of one invariant, and how many examples it has run."""

    def __init__(self, test: Callable[[], None], count: list[int]) -> None:
        self._test = test
        self._count = count

    def __call__(self) -> None:
        self._test()

    @property
    def examples(self) -> int:
        return self._count[0]


def search_test(
    invariant: Invariant,
    factory: CellFactory,
    *,
    profile: str | None = None,
    pinned: Mapping[str, Any] | None = None,
    strategy: st.SearchStrategy[Case] | None = None,
    failures: list[tuple[Case, str]] | None = None,
    on_example: Callable[[int], None] | None = None,
) -> SearchTest:
    """The Hypothesis test that searches for a case breaking ``invariant``.

    ``profile`` applies that settings profile (``None``: whatever is loaded,
    as under pytest, where ``--hypothesis-profile`` decides).  ``strategy``
    replaces the invariant's own cases.  Each failure seen is appended to
    ``failures`` as ``(case, message)``; a cell that crashes on a case is a
    failure too, reported as such.
    """
    from cellverify.model import fresh_session

    register_profiles()
    chosen = strategy if strategy is not None else strategy_for(invariant, profile, pinned)
    seen = failures if failures is not None else []
    count = [0]

    def search(case: Case) -> None:
        count[0] += 1
        if on_example is not None:
            on_example(count[0])
        fresh_session()
        try:
            invariant(factory, case)
        except BadCellFactory:
            raise
        except InvariantViolation as exc:
            seen.append((case, str(exc)))
            raise
        except Exception as exc:  # the cell crashed on a generated case
            message = f"[{invariant.name}] the cell raised {describe_exception(exc)}"
            seen.append((case, message))
            raise InvariantViolation(invariant.name, message[len(invariant.name) + 3 :]) from exc

    search.__name__ = search.__qualname__ = f"test_{invariant.name}"
    test = given(case=chosen)(search)
    if profile is not None:
        test = settings(settings.get_profile(profile), report_multiple_bugs=False)(test)
    return SearchTest(test, count)


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


def run_invariant(
    invariant: Invariant,
    factory: CellFactory,
    *,
    profile: str,
    pinned: Mapping[str, Any] | None = None,
    strategy: st.SearchStrategy[Case] | None = None,
    on_example: Callable[[int], None] | None = None,
) -> InvariantResult:
    """Search for a case that breaks ``invariant``; shrink it if found.

    ``strategy`` replaces the invariant's own region, for instance to search
    the whole space with an invariant claimed only on the robust region.
    """
    failures: list[tuple[Case, str]] = []
    test = search_test(
        invariant,
        factory,
        profile=profile,
        pinned=pinned,
        strategy=strategy,
        failures=failures,
        on_example=on_example,
    )
    outside = tuple(invariant.region.outside(pinned or {}))
    start = time.perf_counter()

    def result(status: str, case: Case | None = None, message: str = "") -> InvariantResult:
        examples = test.examples
        seconds = time.perf_counter() - start
        return InvariantResult(
            invariant.name, status, examples, seconds, case, message, invariant.region.name, outside
        )

    try:
        with reporting.with_reporter(lambda _: None):
            test()
    except BadCellFactory:
        raise
    except HypothesisException as exc:
        # Hypothesis's own verdict on the search (health check, unsatisfiable,
        # flaky), raised instead of a failure: report it, never as a violation.
        return result("error", message=f"[{invariant.name}] {_hypothesis_error(exc, failures)}")
    except Exception as exc:
        if not failures:  # raised outside the test body: a bug, not a finding
            return result(
                "error", message=f"[{invariant.name}] the search failed: {describe_exception(exc)}"
            )
        # Hypothesis replays the shrunk example last, so it is the last failure.
        case, message = failures[-1]
        return result("failed", case, message)
    if test.examples == 0:
        return result("error", message=f"[{invariant.name}] no example was run")
    return result("passed")


class UnknownInvariant(CellVerifyError):
    """A selection names no invariant."""


def select_invariants(select: Iterable[str] | None) -> list[str]:
    """Names of the invariants whose name contains one of ``select`` (all if
    None); raises :class:`UnknownInvariant` when a pattern matches none."""
    invariants = registered()
    if not select:
        return list(invariants)
    patterns = list(select)
    unmatched = [p for p in patterns if not any(p in name for name in invariants)]
    if unmatched:
        raise UnknownInvariant(
            f"-k {unmatched[0]!r} matches no invariant; the invariants are: "
            f"{', '.join(invariants)}. Received: {unmatched!r}"
        )
    return [name for name in invariants if any(p in name for p in patterns)]


#: Rough cost of each built-in invariant's search under ``ci``, in seconds on
#: the 2-core machine of README "Cost": the parallel run starts the longest
#: first, so that the processes finish together.  Unknown ones count as 5 s.
_TYPICAL_SECONDS = {
    "loss_decreases": 37.0,
    "gradients_nonzero": 20.0,
    "execution_modes_agree": 12.5,
    "deterministic": 11.5,
    "gradient_check": 9.0,
}


def _run_in_worker(job: tuple[str, str, str, dict[str, Any], list[str]]) -> dict[str, Any]:
    """One invariant's search in a worker process, as plain data."""
    from cellverify.factory import load_factory
    from cellverify.registry import load_invariant_modules

    _init_worker()
    name, spec, profile, pinned, modules = job
    load_invariant_modules(modules)
    invariant = registered()[name]
    return run_invariant(invariant, load_factory(spec), profile=profile, pinned=pinned).to_dict()


def _init_worker() -> None:
    # One thread each: two single-thread processes beat one with two threads.
    from cellverify.executors import pin_tensorflow_threads

    pin_tensorflow_threads()


def _run_parallel(
    names: Sequence[str],
    spec: str,
    profile: str,
    pinned: Mapping[str, Any],
    modules: Sequence[str],
    jobs: int,
    on_progress: Callable[[str, int], None] | None,
) -> dict[str, InvariantResult]:
    from cellverify.executors import spawn_pool, terminate_pool

    order = sorted(names, key=lambda n: -_TYPICAL_SECONDS.get(n, 5.0))
    results: dict[str, InvariantResult] = {}
    pool = spawn_pool(jobs)
    try:
        futures = {
            pool.submit(_run_in_worker, (n, spec, profile, dict(pinned), list(modules))): n
            for n in order
        }
        for future in as_completed(futures):
            name = futures[future]
            results[name] = InvariantResult.from_dict(future.result())
            if on_progress is not None:
                on_progress(name, results[name].examples)
    finally:
        terminate_pool(pool)  # after an interrupt, no invariant keeps running
    return results


def run_suite(
    factory: CellFactory,
    *,
    cell: str,
    profile: str,
    select: Iterable[str] | None = None,
    pinned: Mapping[str, Any] | None = None,
    jobs: int = 1,
    modules: Sequence[str] = (),
    on_progress: Callable[[str, int], None] | None = None,
) -> SuiteResult:
    """Run every invariant (or those whose name contains one of ``select``).

    With ``jobs > 1`` the invariants run in that many worker processes, which
    import the factory by its name ``cell`` (``MODULE:ATTRIBUTE``) and the
    invariant ``modules``; results come back as plain data.
    """
    pins = dict(pinned or {})
    chosen = select_invariants(select)
    invariants = registered()
    if jobs > 1 and len(chosen) > 1:
        done = _run_parallel(chosen, cell, profile, pins, modules, jobs, on_progress)
    else:
        done = {}
        for name in chosen:
            progress = None if on_progress is None else (lambda n, name=name: on_progress(name, n))
            done[name] = run_invariant(
                invariants[name], factory, profile=profile, pinned=pins, on_example=progress
            )
    results = [
        done.get(name)
        or InvariantResult(name, "skipped", 0, 0.0, message="not selected", region=inv.region.name)
        for name, inv in invariants.items()
    ]
    return SuiteResult(cell, profile, results, pins)
