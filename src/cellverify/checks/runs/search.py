"""The Hypothesis search of one invariant, for ``cellverify check`` and pytest.

:class:`SearchTest` is the test object both runners execute: ``cellverify
check`` through :func:`cellverify.checks.runs.suite.run_invariant` (which records the
shrunk failure as plain data) and the plugin's
:class:`~cellverify.checks.runs.testing.CellInvariants` (which lets Hypothesis report it).
The same invariant under the same profile draws the same examples, so a case
one runner finds, the other finds.

A search covers what its invariant claims (docs/design.md, "Coverage"):

* **its own sequence.**  Under a derandomized profile (``ci``) the seed comes
  from the invariant's name (:func:`search_seed`).  Hypothesis would derive it
  from the test function's source, which is the same function for every
  invariant: every invariant of one region drew the same cases.
* **covering cases first**, as explicit examples
  (:func:`cellverify.checks.draws.covering_cases.covering_cases`): every input kind and every
  value of each categorical field that the region and the pins allow.  Then
  the random search, for the rest of the profile's examples.
* **a tally** of what the examples reached (:class:`cellverify.checks.draws.coverage.Coverage`),
  in the report and, under pytest, as Hypothesis events.

Hypothesis does not shrink an explicit example, so a failure on a covering
case is shrunk here: each categorical dimension is set to its simplest value
while the failure persists, then every size to its smallest at once, then a
Hypothesis search with those values pinned shrinks the rest (shapes, kernel
counts, batch, seeds).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from hypothesis import Phase, event, example, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import Flaky, HypothesisException

from cellverify.checks.cases.case import Case
from cellverify.checks.draws.coverage import Coverage
from cellverify.checks.draws.profiles import current_profile, register_profiles
from cellverify.checks.draws.space import space_for
from cellverify.checks.judges.catalog import registered
from cellverify.checks.judges.registry import Invariant
from cellverify.checks.runs.crashes import crash_of
from cellverify.errors import BadCellFactory, CellVerifyError, CheckCrashed, InvariantViolation
from cellverify.model.factory import CellFactory

__all__ = ["SearchTest", "cases_for", "search_seed", "search_test", "strategy_for"]

#: The event under which each generated example shows the coverage so far,
#: covering cases included (Hypothesis's statistics leave explicit examples out).
COVERAGE_EVENT = "cellverify coverage so far (covering cases included)"


def search_seed(name: str) -> int:
    """The seed of the invariant called ``name``'s derandomized search: the
    same on every run and machine, different for every name."""
    return int.from_bytes(hashlib.sha256(f"cellverify/{name}".encode()).digest()[:8], "big")


def strategy_for(
    invariant: Invariant,
    profile: str | None = None,
    pinned: Mapping[str, Any] | None = None,
    inputs: tuple[str, float] | None = None,
    factory: Any = None,
) -> st.SearchStrategy[Case]:
    """The cases an invariant is claimed on: its region, adversarial inputs if
    it takes them (or the one ``(kind, scale)`` of ``inputs``), its least
    batch, the question's full shape too under ``thorough`` (``profile``, by
    default the one loaded), and the ``pinned`` fields fixed; a
    :class:`~cellverify.CellSpec` ``factory`` draws its own parameters."""
    full_shape = (profile or current_profile()) == "thorough"
    space = space_for(invariant, factory, pinned, full_shape=full_shape)
    return space.strategy(pinned, inputs)


def cases_for(
    name: str, profile: str | None = None, pinned: Mapping[str, Any] | None = None
) -> st.SearchStrategy[Case]:
    """The strategy of the invariant called ``name``, for ``@given`` in a property test."""
    return strategy_for(registered()[name], profile, pinned)


class SearchTest:
    """A Hypothesis test of one invariant: its covering cases, then the random
    search.  ``examples`` counts the examples run, ``coverage`` what they
    reached, ``failures`` each failure seen as ``(case, message)``, and
    ``last_error`` the violation (or crash) of the last one."""

    def __init__(
        self,
        invariant: Invariant,
        factory: CellFactory,
        *,
        profile: str | None,
        pinned: Mapping[str, Any] | None,
        strategy: st.SearchStrategy[Case] | None,
        failures: list[tuple[Case, str]],
        on_example: Callable[[int], None] | None,
        covering: Sequence[Case] | None = None,
    ) -> None:
        register_profiles()
        self.invariant = invariant
        self.failures = failures
        self.examples = 0
        self._factory = factory
        self._profile = profile
        self._pinned = dict(pinned or {})
        self._on_example = on_example
        loaded = settings.get_profile(profile) if profile is not None else settings.default
        assert loaded is not None  # Hypothesis always has a default profile
        self._settings = loaded
        full_shape = (profile or current_profile()) == "thorough"
        self.space = space_for(invariant, factory, self._pinned, full_shape=full_shape)
        self.coverage = Coverage(self.space.dimensions(), labeller=self.space.labels_of)
        # A strategy of the caller's own searches beyond the claim: it brings
        # its own covering cases, if any.
        if covering is not None:
            self.explicit = list(covering)
        else:
            seed = search_seed(invariant.name)
            self.explicit = [] if strategy is not None else self.space.covering_cases(seed)
        chosen = strategy if strategy is not None else self.space.strategy()
        self._test = self._hypothesis_test(chosen, self.explicit)
        self.last_error: InvariantViolation | CheckCrashed | None = None

    def __call__(self) -> None:
        try:
            self._test()
        except (InvariantViolation, CheckCrashed):
            failed = self.failures[-1][0] if self.failures else None
            if failed is None or failed not in self.explicit:
                raise
            self._shrink(failed)

    def _hypothesis_test(
        self,
        strategy: st.SearchStrategy[Case],
        explicit: list[Case],
        phases: tuple[Phase, ...] | None = None,
    ) -> Callable[[], None]:
        def search(case: Case) -> None:
            for name, label in self.space.labels_of(case).items():
                event(name, label)
            self._run(case)
            event(COVERAGE_EVENT, self.coverage.summary())

        search.__name__ = search.__qualname__ = f"test_{self.invariant.name}"
        test = given(case=strategy)(search)
        for case in reversed(explicit):  # Hypothesis runs them last-added first
            test = example(case=case)(test)
        overrides: dict[str, Any] = {
            # The profile's examples in all: the covering cases, then the search.
            "max_examples": max(1, self._settings.max_examples - len(explicit)),
            "report_multiple_bugs": False,
        }
        if phases is not None:
            overrides["phases"] = phases
        test = settings(self._settings, **overrides)(test)
        if self._settings.derandomize:
            test = seed(search_seed(self.invariant.name))(test)
        return test

    def _run(self, case: Case) -> None:
        """One example: a fresh Keras session, the check; a failure is kept.
        Anything raised but a violation is a crash (the cell's, the
        invariant's or the kit's), kept and raised as :class:`CheckCrashed`:
        Hypothesis shrinks it all the same, and no runner counts it as a
        violation of the claim."""
        from cellverify.model.rnn import fresh_session

        self.examples += 1
        if self._on_example is not None:
            self._on_example(self.examples)
        self.coverage.record(case)
        fresh_session()
        try:
            self.invariant(self._factory, case)
        except BadCellFactory:
            raise
        except InvariantViolation as exc:
            self._keep(case, exc)
            raise
        except Exception as exc:
            crash = crash_of(self.invariant.name, self.invariant.check.__module__, exc)
            self._keep(case, crash)
            raise crash from exc

    def _keep(self, case: Case, exc: InvariantViolation | CheckCrashed) -> None:
        self.failures.append((case, str(exc)))
        self.last_error = exc

    def _fails(self, case: Case, kind: type[CellVerifyError]) -> bool:
        """Whether ``case`` fails as the failure being shrunk does (a
        violation or a crash: one is never shrunk into the other)."""
        try:
            self._run(case)
        except (InvariantViolation, CheckCrashed) as exc:
            return isinstance(exc, kind)
        return False

    def _shrink(self, failed: Case) -> None:
        """Raise the simplest failure found from ``failed``, a covering case
        (module doc): simplest values first, then a pinned search.  As
        Hypothesis replays a failure before reporting it, the case is run
        again first; a failure that does not reproduce is ``Flaky``.  A
        violation shrinks to violations only, a crash to crashes."""
        first = self.last_error
        kind: type[CellVerifyError] = type(first) if first is not None else InvariantViolation
        if not self._fails(failed, kind):
            raise Flaky(
                f"[{self.invariant.name}] the covering case {failed.to_python()} failed once "
                f"and passed when run again ({self.failures[-1][1]})"
            )
        case, error, message = failed, self.last_error, self.failures[-1][1]
        space = self.space
        for d in self.coverage.dims:
            if d.name not in space.ended and space.labels_of(case)[d.name] != d.values[0]:
                candidate = space.with_label(case, d.name, d.values[0])
                if self._fails(candidate, kind):
                    case, error, message = candidate, self.last_error, self.failures[-1][1]
        # The ranged values together, in one run: the search below shrinks them
        # anyway when it finds the failure; this is the case reported when it
        # does not.
        smallest = self._smallest_ends(case)
        if smallest != case and self._fails(smallest, kind):
            case, error, message = smallest, self.last_error, self.failures[-1][1]
        pinned = space.label_pins(case)
        inputs = (case.inputs.kind, case.inputs.scale)
        strategy = space.strategy(pinned, inputs)
        try:  # a failure of the same kind propagates, shrunk by Hypothesis: the simplest
            self._hypothesis_test(strategy, [], phases=(Phase.generate, Phase.shrink))()
        except kind:
            raise
        except (HypothesisException, InvariantViolation, CheckCrashed):
            pass  # then the case found stands
        assert error is not None
        self.failures.append((case, message))  # the one reported
        self.last_error = error
        if hasattr(error, "add_note"):  # Python 3.11+: pytest shows it
            error.add_note(f"Falsifying case: {case.to_python()}")
        raise error

    def _smallest_ends(self, case: Case) -> Case:
        for d in self.coverage.dims:
            if d.name in self.space.ended and d.values:  # none: a pinned learning rate
                case = self.space.with_label(case, d.name, d.values[0])
        return case


def search_test(
    invariant: Invariant,
    factory: CellFactory,
    *,
    profile: str | None = None,
    pinned: Mapping[str, Any] | None = None,
    strategy: st.SearchStrategy[Case] | None = None,
    failures: list[tuple[Case, str]] | None = None,
    on_example: Callable[[int], None] | None = None,
    covering: Sequence[Case] | None = None,
) -> SearchTest:
    """The Hypothesis test that searches for a case breaking ``invariant``.

    ``profile`` applies that settings profile (``None``: whatever is loaded,
    as under pytest, where ``--hypothesis-profile`` decides).  ``strategy``
    replaces the invariant's own cases (and its covering cases); ``covering``
    replaces the covering cases, which run first, as the profile's first
    examples (default: the invariant's, or none with a ``strategy``).  Each
    failure seen is appended to ``failures`` as ``(case, message)``; a crash
    on a case (the cell's, the invariant's or the kit's) raises
    :class:`~cellverify.errors.CheckCrashed`, never a violation.
    """
    return SearchTest(
        invariant,
        factory,
        profile=profile,
        pinned=pinned,
        strategy=strategy,
        failures=failures if failures is not None else [],
        on_example=on_example,
        covering=covering,
    )
