"""Every invariant, the built-in ones included: lookup, running one by name,
and loading a user's invariant modules.

Above both :mod:`cellverify.checks.judges.registry` (the decorator, pure) and
:mod:`cellverify.checks.judges.invariants` (the built-in ones, which register themselves
there): the registry never imports what it holds.  No TensorFlow at import
time; the built-in invariants are imported on first lookup.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from cellverify.checks.cases.case import Case
from cellverify.checks.judges.registry import INVARIANTS, Invariant
from cellverify.errors import BadInvariantModule, InvalidConfig, describe_exception
from cellverify.model.factory import CellFactory, missing_package

__all__ = ["check", "check_invariant_module_names", "load_invariant_modules", "registered"]


def registered() -> dict[str, Invariant]:
    """Every invariant, the built-in ones included (imported on first use)."""
    import cellverify.checks.judges.invariants  # noqa: F401 - registers the built-in ones

    return INVARIANTS


def check(name: str, factory: CellFactory, case: Case) -> None:
    """Run the invariant called ``name`` on ``case``, in a fresh Keras session
    as ``cellverify check`` runs each example (a failure's reproduction calls
    this).  ``factory`` is a portfolio factory, a :class:`~cellverify.CellSpec`,
    or a cell class whose spec is derived from its signature."""
    from cellverify.model.factory import as_factory
    from cellverify.model.rnn import fresh_session

    invariants = registered()
    if name not in invariants:
        raise InvalidConfig("check", "name", f"one of {', '.join(invariants)}", name)
    fresh_session()
    invariants[name](as_factory(factory), case)


def check_invariant_module_names(modules: Iterable[str]) -> None:
    """Raise :class:`BadInvariantModule` for a module whose top-level package
    cannot be found, importing nothing: a worker checks this before it
    starts TensorFlow."""
    for module in modules:
        missing = missing_package(module)
        if missing is not None:
            raise BadInvariantModule(_cannot_import(module, missing))


def _cannot_import(module: str, exc: BaseException) -> str:
    return (
        f"cannot import invariant module {module!r}: {describe_exception(exc)}. "
        f"Received: --invariants {module}"
    )


def load_invariant_modules(modules: Iterable[str]) -> list[str]:
    """Import each module (the current directory importable), which registers
    its invariants (and mutants); returns the names of the invariants added."""
    check_invariant_module_names(modules)
    registered()
    before = set(INVARIANTS)
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as exc:
            raise BadInvariantModule(_cannot_import(module, exc)) from exc
    return [name for name in INVARIANTS if name not in before]
