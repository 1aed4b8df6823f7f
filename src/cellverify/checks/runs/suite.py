"""``cellverify check``'s runner: every invariant's search, here or in workers.

Each invariant's search is :class:`cellverify.checks.runs.search.SearchTest`, the same
Hypothesis test the pytest plugin runs; :func:`run_invariant` runs one and
records its outcome, the shrunk failure and what its examples covered as
plain data (:mod:`cellverify.checks.runs.results`); :func:`run_suite` runs them
all, on an executor's workers (:func:`start_check`) if asked.  Rendering lives
in :mod:`cellverify.render.report`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hypothesis import reporting
from hypothesis import strategies as st
from hypothesis.errors import Flaky, HypothesisException

from cellverify.checks.cases.case import Case
from cellverify.checks.judges.catalog import registered
from cellverify.checks.judges.registry import Invariant
from cellverify.checks.runs.reproduction import factory_path, reproduction
from cellverify.checks.runs.results import (
    CheckStatus,
    InvariantResult,
    SuiteResult,
)
from cellverify.checks.runs.search import SearchTest, search_test
from cellverify.config import CellConfig
from cellverify.errors import (
    BadCellFactory,
    CheckCrashed,
    InvariantViolation,
    UnknownInvariant,
    describe_exception,
)
from cellverify.execution import Executor
from cellverify.model.factory import CellFactory
from cellverify.spec import CellSpec, contract_of

__all__ = [
    "CheckJob",
    "invariant_regions",
    "load_checked_factory",
    "run_invariant",
    "run_suite",
    "select_invariants",
    "start_check",
]

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


def run_invariant(
    invariant: Invariant,
    factory: CellFactory,
    *,
    profile: str,
    pinned: Mapping[str, Any] | None = None,
    strategy: st.SearchStrategy[Case] | None = None,
    on_example: Callable[[int], None] | None = None,
    covering: Sequence[Case] | None = None,
    factory_name: str | None = None,
    modules: Sequence[str] = (),
) -> InvariantResult:
    """Search for a case that breaks ``invariant``; shrink it if found.

    ``strategy`` replaces the invariant's own region, for instance to search
    the whole space with an invariant claimed only on the robust region;
    ``covering``, the cases run first (:func:`cellverify.checks.runs.search.search_test`).
    A failure's reproduction imports the factory as ``factory_name``
    (``MODULE:ATTRIBUTE``; default: the factory's own import path, if it has
    one) after the invariant ``modules``.
    """
    reason = invariant.why_not_applicable(contract_of(factory))
    if reason is not None:
        return InvariantResult(
            invariant.name, CheckStatus.NOT_APPLICABLE, 0, 0.0, None, reason, invariant.region.name
        )
    failures: list[tuple[Case, str]] = []
    test = search_test(
        invariant,
        factory,
        profile=profile,
        pinned=pinned,
        strategy=strategy,
        failures=failures,
        on_example=on_example,
        covering=covering,
    )
    start = time.perf_counter()
    status, case, message = _search_outcome(test, failures)
    error = test.last_error if case is not None else None
    name = factory_name or factory_path(factory)
    return InvariantResult(
        invariant.name,
        status,
        test.examples,
        time.perf_counter() - start,
        case,
        message,
        invariant.region.name,
        tuple(test.space.outside()),
        test.coverage.to_dict() if test.examples else None,
        error.clause if isinstance(error, InvariantViolation) else "",
        None
        if case is None or name is None
        else reproduction(
            invariant.name, case, name, modules, crashed=isinstance(error, CheckCrashed)
        ),
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
        return CheckStatus.ERROR, None, f"[{name}] {_hypothesis_error(exc, failures)}"
    except Exception as exc:
        if failures and isinstance(exc, (InvariantViolation, CheckCrashed)):
            # The test body raises nothing else (a crash is a CheckCrashed),
            # and Hypothesis replays the shrunk example last.  Only a
            # violation is a failure; a crash is no verdict on the claim.
            case, message = failures[-1]
            violated = isinstance(exc, InvariantViolation)
            return (CheckStatus.FAILED if violated else CheckStatus.ERROR), case, message
        # Raised outside the test body (the search's own code): a bug, not a
        # finding, even after a failure was seen.
        seen = f"; the failure seen last: {failures[-1][1]}" if failures else ""
        return (
            CheckStatus.ERROR,
            None,
            f"[{name}] the search failed: {describe_exception(exc)}{seen}",
        )
    if test.examples == 0:
        return CheckStatus.ERROR, None, f"[{name}] no example was run"
    return CheckStatus.PASSED, None, ""


def select_invariants(
    select: Iterable[str] | None, invariants: Iterable[str] | None = None
) -> list[str]:
    """Names of the invariants whose name contains one of ``select`` (all if
    None), of ``invariants`` (default: every registered one); raises
    :class:`UnknownInvariant` when a pattern matches none."""
    invariants = list(registered() if invariants is None else invariants)
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
#: a 2-core AVX-512 machine (three runs of ``CI=true cellverify check``,
#: medians rounded): the parallel run starts the longest first, so that the
#: processes finish together.  Unknown ones count as 3 s.
_TYPICAL_SECONDS = {
    "execution_modes_agree": 12.0,
    "loss_decreases": 11.5,
    "gradients_nonzero": 11.4,
    "deterministic": 9.5,
    "gradient_check": 5.5,
    "serialization_roundtrip": 5.0,
    "dropout_zero_is_identity": 3.2,
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


def _init_worker() -> None:
    # One thread each: two single-thread processes beat one with two threads.
    from cellverify.execution import pin_tensorflow_threads

    pin_tensorflow_threads()


def _run_in_worker(job: CheckJob) -> dict[str, Any]:
    """One invariant's search in a worker process, as plain data."""
    from cellverify.checks.judges.catalog import load_invariant_modules
    from cellverify.model.factory import load_factory

    _init_worker()
    load_invariant_modules(job.modules)
    invariant = registered()[job.name]
    factory = load_factory(job.spec)
    result = run_invariant(
        invariant,
        factory,
        profile=job.profile,
        pinned=job.pinned,
        factory_name=job.spec,
        modules=job.modules,
    )
    return result.to_dict()


#: The configuration a factory is tried on before any search: the smallest
#: shape the strategies draw, built and run in a blink.
_TRIAL_CONFIG = CellConfig(assets=3, window=5, kernels=(2, 2, 1))


def load_checked_factory(spec: str) -> CellFactory:
    """The factory named ``spec`` (``MODULE:ATTRIBUTE``; a spec, or a class
    whose spec is derived), after building a cell and running one step with
    it; :class:`BadCellFactory` names what is wrong."""
    from cellverify.model.factory import load_factory, validate_factory, validate_spec

    factory = load_factory(spec)
    if isinstance(factory, CellSpec):
        validate_spec(factory)
    else:
        validate_factory(factory, _TRIAL_CONFIG)
    return factory


def invariant_regions() -> dict[str, str]:
    """Every registered invariant's name and its region's, in registration order."""
    return {name: invariant.region.name for name, invariant in registered().items()}


def _start_here(modules: list[str], spec: str) -> dict[str, Any]:
    from cellverify.checks.judges.catalog import load_invariant_modules

    load_invariant_modules(modules)
    factory = load_checked_factory(spec)
    described = factory.describe() if isinstance(factory, CellSpec) else None
    return {"invariants": invariant_regions(), "spec": described}


def _start_worker(modules: list[str], spec: str) -> dict[str, Any]:
    from cellverify.checks.judges.catalog import check_invariant_module_names
    from cellverify.model.factory import check_factory_name

    # Before TensorFlow starts: a typo fails at once.
    check_invariant_module_names(modules)
    check_factory_name(spec)
    _init_worker()
    return _start_here(modules, spec)


def start_check(executor: Executor, spec: str, modules: Sequence[str] = ()) -> dict[str, Any]:
    """Start ``executor``'s workers for ``check``: each imports TensorFlow and
    the invariant ``modules`` and tries the factory named ``spec``; returns
    the invariants they hold (``invariants``: name to region name) and, for
    a spec'd cell, its description (``spec``: :meth:`CellSpec.describe`),
    raising what a start raised (a factory or an invariant module that does
    not load).

    The caller needs none of it: the report is plain data.  A caller that
    imported TensorFlow too, to list the invariants and try the factory
    itself, took a third core's worth of start-up from 2 cores: the searches
    began 7.5 s after the command, against about 4.5 s now (docs/cost.md)."""
    return executor.start(_start_worker, list(modules), spec, here=_start_here)


def _run_on(
    executor: Executor,
    names: Sequence[str],
    spec: str,
    profile: str,
    pinned: Mapping[str, Any],
    modules: Sequence[str],
    on_progress: Callable[[str, int], None] | None,
) -> dict[str, InvariantResult]:
    order = sorted(names, key=lambda n: -_TYPICAL_SECONDS.get(n, 3.0))
    jobs = [CheckJob(n, spec, profile, dict(pinned), tuple(modules)) for n in order]
    results: dict[str, InvariantResult] = {}

    def done(job: CheckJob, result: dict[str, Any]) -> None:
        results[job.name] = InvariantResult.from_dict(result)
        if on_progress is not None:
            on_progress(job.name, results[job.name].examples)

    executor.map(_run_in_worker, jobs, done)
    return results


def run_suite(
    factory: CellFactory | None,
    *,
    cell: str,
    profile: str,
    select: Iterable[str] | None = None,
    pinned: Mapping[str, Any] | None = None,
    modules: Sequence[str] = (),
    on_progress: Callable[[str, int], None] | None = None,
    executor: Executor | None = None,
    regions: Mapping[str, str] | None = None,
) -> SuiteResult:
    """Run every invariant (or those whose name contains one of ``select``).

    On an ``executor`` (:mod:`cellverify.execution`), the invariants run in
    its workers, which import the factory by its name ``cell``
    (``MODULE:ATTRIBUTE``) and the invariant ``modules``; results come back
    as plain data, and ``factory`` is not used.  ``regions`` are the
    invariants of workers already started (:func:`start_check`); else they
    are started here.  Without an executor they run in this process, on
    ``factory``, reporting each example.
    """
    pins = dict(pinned or {})
    if executor is not None:
        if regions is None:
            regions = start_check(executor, cell, modules)["invariants"]
        regions = dict(regions)
        chosen = select_invariants(select, regions)
        done = _run_on(executor, chosen, cell, profile, pins, modules, on_progress)
    else:
        if factory is None:
            raise ValueError("run_suite runs here only on a factory. Received: factory=None")
        regions = invariant_regions()
        names = select_invariants(select, regions)
        done = _run_here(factory, names, profile, pins, on_progress, cell, modules)
    results = [
        done.get(name)
        or InvariantResult(name, CheckStatus.SKIPPED, 0, 0.0, message="not selected", region=r)
        for name, r in regions.items()
    ]
    return SuiteResult(cell, profile, results, pins)


def _run_here(
    factory: CellFactory,
    names: Sequence[str],
    profile: str,
    pinned: Mapping[str, Any],
    on_progress: Callable[[str, int], None] | None,
    cell: str,
    modules: Sequence[str],
) -> dict[str, InvariantResult]:
    invariants = registered()
    done = {}
    for name in names:
        progress = None if on_progress is None else (lambda n, name=name: on_progress(name, n))
        done[name] = run_invariant(
            invariants[name],
            factory,
            profile=profile,
            pinned=pinned,
            on_example=progress,
            factory_name=cell,
            modules=modules,
        )
    return done
