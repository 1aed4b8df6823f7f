"""Declarative invariant tests: subclass :class:`CellInvariants` in a test file.

In the spirit of Keras's ``run_layer_test``: say what the cell is and which
fields to hold fixed, and pytest collects one test per invariant, named
``test_<invariant>``::

    from cellverify.testing import CellInvariants

    class TestGRU(CellInvariants):
        spec = GRU                         # a CellSpec, or a cell class
        pinned = {"units": 4}              # held fixed; everything else is drawn
        only = ()                          # or skip = (...): invariant names

A portfolio cell may give ``factory = staticmethod(make_cell)`` instead
(default: ``--cellverify-cell``, else the shipped cell).  An invariant that
does not apply to the cell's contract is skipped, with the reason.

Each test runs the same Hypothesis search as ``cellverify check`` under the
loaded profile (``--hypothesis-profile``, else ``ci`` under ``CI``, else
``dev``); a failure is shrunk and printed as a pasteable ``Case(...)``.
Invariants registered with :func:`cellverify.invariant` before the class is
defined get a test too.  The ``cell_factory`` fixture comes from the
``cellverify`` pytest plugin, installed with the package.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from cellverify.checks.draws.strategies import check_pinned
from cellverify.checks.judges.catalog import registered
from cellverify.errors import InvalidConfig

__all__ = ["COVERAGE_PROPERTY", "EXAMPLES_PROPERTY", "CellInvariants"]


def _selected(cls: type[CellInvariants]) -> list[str]:
    names = list(registered())
    for attribute in ("only", "skip"):
        unknown = [n for n in getattr(cls, attribute) if n not in names]
        if unknown:
            raise InvalidConfig(
                cls.__name__,
                attribute,
                f"invariant names ({', '.join(names)})",
                tuple(getattr(cls, attribute)),
            )
    if cls.only and cls.skip:
        raise InvalidConfig(cls.__name__, "only", "empty when skip is given", tuple(cls.only))
    chosen = [n for n in names if n in cls.only] if cls.only else names
    return [n for n in chosen if n not in cls.skip]


#: The test report property holding how many examples an invariant's search
#: ran (carried to the controller under pytest-xdist, written by --junitxml).
EXAMPLES_PROPERTY = "cellverify_examples"
#: The report property holding what those examples covered, as JSON
#: (:meth:`cellverify.checks.draws.coverage.Coverage.to_dict`).
COVERAGE_PROPERTY = "cellverify_coverage"


def _statistics_for(item: Any) -> contextlib.AbstractContextManager[Any]:
    """Hand the search's statistics to Hypothesis's pytest plugin, as it does
    itself around a ``@given`` test: the search runs inside this test, which
    the plugin does not see as one, so ``--hypothesis-show-statistics`` would
    show nothing.  The collector is Hypothesis's internal hook: without it,
    the statistics are left out and the test still runs."""
    try:
        from hypothesis.statistics import collector, describe_statistics
    except ImportError:  # pragma: no cover - a Hypothesis without the hook
        return contextlib.nullcontext()

    def note(stats: Any) -> None:
        stats["nodeid"] = item.nodeid
        item.hypothesis_statistics = describe_statistics(stats)

    hook: Any = collector  # typed for the plugin's own use, a callable in practice
    return hook.with_value(note)  # type: ignore[no-any-return]


def _make_test(name: str) -> Callable[..., None]:
    def test(self: CellInvariants, cell_factory: Callable[..., Any], request: Any) -> None:
        import pytest

        from cellverify.checks.runs.search import search_test
        from cellverify.model.factory import as_factory
        from cellverify.spec import contract_of

        cls = type(self)
        factory = as_factory(cls.spec or cls.factory or cell_factory)
        reason = registered()[name].why_not_applicable(contract_of(factory))
        if reason is not None:
            pytest.skip(reason)
        search = search_test(registered()[name], factory, pinned=cls.pinned)
        try:
            with _statistics_for(request.node):
                search()
        finally:
            properties = request.node.user_properties
            properties.append((EXAMPLES_PROPERTY, search.examples))
            properties.append((COVERAGE_PROPERTY, json.dumps(search.coverage.to_dict())))

    invariant = registered()[name]
    test.__name__ = test.__qualname__ = f"test_{name}"
    test.__doc__ = (
        f"{invariant.doc} (claimed on the region {invariant.region.name!r}, "
        f"{'any' if invariant.adversarial_inputs else 'market'} inputs)"
    )
    return test


class CellInvariants:
    """Base class of declarative invariant tests (module doc).

    Class attributes: ``spec`` (a :class:`~cellverify.CellSpec`, or a cell
    class whose spec is derived), ``factory`` (a portfolio cell factory;
    with neither, the plugin's ``cell_factory`` fixture), ``pinned`` (fields
    held fixed: configuration fields, or a spec's own keywords),
    ``only`` / ``skip`` (invariant names).  An unknown name in any of them is
    an error when the class is defined, so pytest reports it at collection.
    """

    factory: ClassVar[Callable[..., Any] | None] = None
    spec: ClassVar[Any] = None
    pinned: ClassVar[Mapping[str, Any]] = {}
    only: ClassVar[tuple[str, ...]] = ()
    skip: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.spec is None:  # a spec's own keywords are checked by its space
            check_pinned(cls.pinned)
        for name in _selected(cls):
            setattr(cls, f"test_{name}", _make_test(name))
