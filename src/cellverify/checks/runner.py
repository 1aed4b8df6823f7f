"""``cellverify check``'s runner: every invariant's search, and its results.

Each invariant's search is :class:`cellverify.checks.search.SearchTest`, the same
Hypothesis test the pytest plugin runs; :func:`run_invariant` runs one and
records its outcome, the shrunk failure and what its examples covered as
plain data; :func:`run_suite` runs them all, in worker processes if asked.
Rendering lives in :mod:`cellverify.render.report`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from hypothesis import reporting
from hypothesis import strategies as st
from hypothesis.errors import Flaky, HypothesisException

from cellverify.checks.case import Case
from cellverify.checks.catalog import registered
from cellverify.checks.registry import Invariant
from cellverify.checks.search import SearchTest, cases_for, search_test, strategy_for
from cellverify.errors import (
    BadCellFactory,
    InvariantViolation,
    UnknownInvariant,
    describe_exception,
)
from cellverify.model.factory import CellFactory

__all__ = [
    "STATUSES",
    "CheckJob",
    "CheckStatus",
    "InvariantResult",
    "SearchTest",
    "SuiteResult",
    "cases_for",
    "check_status",
    "run_invariant",
    "run_suite",
    "search_test",
    "select_invariants",
    "start_workers",
    "strategy_for",
]

#: What an invariant's search can end in.  ``error``: the search itself could
#: not be completed (a Hypothesis health check, ``Unsatisfiable``, a flaky
#: failure that did not reproduce, no example run) - nothing was shown about
#: the cell either way, so it is neither a pass nor a violation.
CheckStatus = Literal["passed", "failed", "error", "skipped"]
STATUSES: tuple[CheckStatus, ...] = get_args(CheckStatus)


def check_status(value: str) -> CheckStatus:
    """``value`` as a status, from a report read back (a worker's, a file)."""
    for status in STATUSES:
        if value == status:
            return status
    raise ValueError(f"a check status is one of {', '.join(STATUSES)}. Received: {value!r}")


_MESSAGE_CHARS = 400


@dataclass(frozen=True)
class InvariantResult:
    """One invariant's outcome: one of :data:`STATUSES`.

    ``outside`` lists the pinned ``field=value`` pairs outside the region
    where the invariant is claimed: a failure there is no fault of the cell.
    ``coverage`` is what the examples reached
    (:meth:`cellverify.checks.coverage.Coverage.to_dict`; None where nothing ran).
    """

    name: str
    status: CheckStatus
    examples: int
    seconds: float
    falsifying: Case | None = None
    message: str = ""
    region: str = "any"
    outside: tuple[str, ...] = ()
    coverage: dict[str, Any] | None = None

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
            "coverage": self.coverage,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InvariantResult:
        falsifying = data.get("falsifying")
        return cls(
            data["name"],
            check_status(data["status"]),
            data["examples"],
            data["seconds"],
            None if falsifying is None else Case.from_dict(falsifying),
            data.get("message", ""),
            data.get("region", "any"),
            tuple(data.get("outside_region", ())),
            data.get("coverage"),
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
    start = time.perf_counter()
    status, case, message = _search_outcome(test, failures)
    return InvariantResult(
        invariant.name,
        status,
        test.examples,
        time.perf_counter() - start,
        case,
        message,
        invariant.region.name,
        tuple(invariant.region.outside(pinned or {})),
        test.coverage.to_dict() if test.examples else None,
    )


def _search_outcome(
    test: SearchTest, failures: list[tuple[Case, str]]
) -> tuple[CheckStatus, Case | None, str]:
    """Run the search: passed, failed with the shrunk case and its message,
    or an error that says why there is no verdict."""
    name = test.invariant.name
    try:
        with reporting.with_reporter(lambda _: None):
            test()
    except BadCellFactory:
        raise
    except HypothesisException as exc:
        # Hypothesis's own verdict on the search (health check, unsatisfiable,
        # flaky), raised instead of a failure: report it, never as a violation.
        return "error", None, f"[{name}] {_hypothesis_error(exc, failures)}"
    except Exception as exc:
        if failures and isinstance(exc, InvariantViolation):
            # The test body raises nothing else (a crash of the cell becomes a
            # violation), and Hypothesis replays the shrunk example last.
            case, message = failures[-1]
            return "failed", case, message
        # Raised outside the test body (the search's own code): a bug, not a
        # finding, even after a failure was seen.
        seen = f"; the failure seen last: {failures[-1][1]}" if failures else ""
        return "error", None, f"[{name}] the search failed: {describe_exception(exc)}{seen}"
    if test.examples == 0:
        return "error", None, f"[{name}] no example was run"
    return "passed", None, ""


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
#: a 2-core AVX-512 machine (two runs of ``CI=true cellverify check``): the
#: parallel run starts the longest first, so that the processes finish
#: together.  Unknown ones count as 3 s.
_TYPICAL_SECONDS = {
    "loss_decreases": 14.2,
    "gradients_nonzero": 9.7,
    "execution_modes_agree": 9.6,
    "deterministic": 7.5,
    "gradient_check": 6.4,
    "serialization_roundtrip": 4.1,
    "dropout_zero_is_identity": 2.6,
}


@dataclass(frozen=True)
class CheckJob:
    """One invariant's search for a worker process: the invariant, the
    factory by its name ``MODULE:ATTRIBUTE``, the profile, the pins and the
    user's invariant modules to import first (plain data, picklable)."""

    name: str
    spec: str
    profile: str
    pinned: dict[str, Any]
    modules: tuple[str, ...]


def _run_in_worker(job: CheckJob) -> dict[str, Any]:
    """One invariant's search in a worker process, as plain data."""
    from cellverify.checks.catalog import load_invariant_modules
    from cellverify.model.factory import load_factory

    _init_worker()
    load_invariant_modules(job.modules)
    invariant = registered()[job.name]
    factory = load_factory(job.spec)
    return run_invariant(invariant, factory, profile=job.profile, pinned=job.pinned).to_dict()


def _init_worker() -> None:
    # One thread each: two single-thread processes beat one with two threads.
    from cellverify.training.executors import pin_tensorflow_threads

    pin_tensorflow_threads()


def _warm_worker(modules: list[str]) -> None:
    from cellverify.checks.catalog import load_invariant_modules

    _init_worker()
    load_invariant_modules(modules)


def start_workers(jobs: int, modules: Sequence[str] = ()) -> ProcessPoolExecutor:
    """A pool of ``jobs`` workers, each told at once to import TensorFlow and
    the invariants (and ``modules``), for :func:`run_suite`'s ``pool``.  Started
    before the caller's own start-up (its TensorFlow import and the factory's
    validation, 5 s on 2 cores), the two overlap instead of adding up."""
    from cellverify.training.executors import spawn_pool

    pool = spawn_pool(jobs)
    for _ in range(jobs):
        pool.submit(_warm_worker, list(modules))
    return pool


def _run_parallel(
    names: Sequence[str],
    spec: str,
    profile: str,
    pinned: Mapping[str, Any],
    modules: Sequence[str],
    pool: ProcessPoolExecutor,
    on_progress: Callable[[str, int], None] | None,
) -> dict[str, InvariantResult]:
    from cellverify.training.executors import run_in_pool, terminate_pool

    order = sorted(names, key=lambda n: -_TYPICAL_SECONDS.get(n, 3.0))
    jobs = [CheckJob(n, spec, profile, dict(pinned), tuple(modules)) for n in order]
    results: dict[str, InvariantResult] = {}

    def done(job: CheckJob, result: dict[str, Any]) -> None:
        results[job.name] = InvariantResult.from_dict(result)
        if on_progress is not None:
            on_progress(job.name, results[job.name].examples)

    try:
        run_in_pool(pool, _run_in_worker, jobs, done)
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
    pool: ProcessPoolExecutor | None = None,
) -> SuiteResult:
    """Run every invariant (or those whose name contains one of ``select``).

    With ``jobs > 1`` the invariants run in that many worker processes, which
    import the factory by its name ``cell`` (``MODULE:ATTRIBUTE``) and the
    invariant ``modules``; results come back as plain data.  ``pool`` is such
    a pool already started (:func:`start_workers`); it is shut down when done.
    """
    from cellverify.training.executors import terminate_pool

    pins = dict(pinned or {})
    chosen = select_invariants(select)
    invariants = registered()
    if jobs > 1 and len(chosen) > 1:
        workers = pool if pool is not None else start_workers(jobs, modules)
        done = _run_parallel(chosen, cell, profile, pins, modules, workers, on_progress)
    else:
        if pool is not None:
            terminate_pool(pool)
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
