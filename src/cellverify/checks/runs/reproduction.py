"""A failure's reproduction: the source of a self-contained pytest file.

``cellverify check`` prints it under each failure and puts it in the JSON
report (``reproduction``): the imports, the factory by its import path, the
shrunk case, and one call of the invariant.  Written into an empty directory
where the factory's module is importable, ``pytest`` there fails the same
invariant on the same case, and passes once the cell is fixed: a regression
test as it stands.  Plain text from plain data; no TensorFlow.
"""

from __future__ import annotations

import pprint
from collections.abc import Callable, Sequence
from typing import Any

from cellverify.checks.cases.case import Case

__all__ = ["factory_path", "reproduction"]


def factory_path(factory: Callable[..., Any]) -> str | None:
    """``MODULE:ATTRIBUTE`` naming ``factory``, when importing it gives back
    that very object; None when it has no such name (a lambda, a closure)."""
    import importlib

    module = getattr(factory, "__module__", None)
    name = getattr(factory, "__qualname__", None)
    if not module or not name or "." in name or "<" in name:
        return None
    try:
        found = getattr(importlib.import_module(module), name, None)
    except Exception:
        return None
    return f"{module}:{name}" if found is factory else None


def _literal(value: Any, indent: int) -> str:
    text = pprint.pformat(value, width=88 - indent, sort_dicts=False)
    return text.replace("\n", "\n" + " " * indent)


def reproduction(
    invariant: str,
    case: Case,
    factory: str,
    modules: Sequence[str] = (),
    *,
    crashed: bool = False,
) -> str:
    """The pytest file that runs ``invariant`` on ``case`` against the factory
    named ``factory`` (``MODULE:ATTRIBUTE``), after importing the invariant
    ``modules`` that register it.  ``crashed``: the failure was a crash, which
    the file reproduces as the same exception."""
    module, _, attribute = factory.partition(":")
    what = "crash" if crashed else "failure"
    kind = type(case.cell).__name__  # CellConfig, or a spec'd cell's Params
    imports = [f"import {m}  # registers its invariants" for m in modules]
    lines = [
        f'"""Reproduces cellverify\'s {what} of {invariant} on {factory}.',
        "",
        "Written by `cellverify check`: the minimal case its search found.  Run it",
        "with `pytest` where the factory's module is importable; it passes once",
        'the cell is fixed."""',
        "",
        "import cellverify",
        f"from cellverify import Case, {kind}, InputSpec, TrainConfig",
        f"from {module} import {attribute}",
        *imports,
        "",
        "CASE = Case(",
        f"    cell={kind}.from_dict({_literal(case.cell.to_dict(), len(kind) + 20)}),",
        f"    train=TrainConfig.from_dict({_literal(case.train.to_dict(), 32)}),",
        f"    inputs=InputSpec(**{_literal(case.inputs.to_dict(), 21)}),",
        ")",
        "",
        "",
        f"def test_{invariant}_holds() -> None:",
        f'    cellverify.check("{invariant}", {attribute}, CASE)',
        "",
    ]
    return "\n".join(lines)
