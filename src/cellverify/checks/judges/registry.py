"""The invariant registry: the public ``invariant`` decorator, ``fail``, lookup.

An invariant is a function ``check(factory, case)`` that returns nothing when
the claim holds and raises :class:`~cellverify.errors.InvariantViolation`
otherwise - most simply through :func:`fail`, which adds the ``[name]``
prefix.  Registered with :func:`invariant`, it runs everywhere the built-in
ones do: ``cellverify check`` (``--invariants MODULE``), the pytest plugin's
:class:`~cellverify.checks.runs.testing.CellInvariants`, the JSON report and the
mutation matrix::

    import cellverify

    @cellverify.invariant(region=cellverify.ROBUST_REGION)
    def weights_stay_long_only(factory, case):
        ...
        if (weights < 0).any():
            cellverify.fail(f"a weight of {weights.min():.3g} is negative")

No TensorFlow here, and no knowledge of the built-in invariants: they
register themselves here when :mod:`cellverify.checks.judges.invariants` is imported, which
:mod:`cellverify.checks.judges.catalog` does on first lookup.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NoReturn

from cellverify.checks.cases.case import Case
from cellverify.checks.cases.regions import WHOLE_SPACE, Region
from cellverify.checks.cases.sizes import MAX_BATCH
from cellverify.contracts import Contract, Promise
from cellverify.errors import InvalidConfig, InvariantViolation
from cellverify.model.factory import CellFactory

__all__ = [
    "INVARIANTS",
    "NON_FINITE",
    "Invariant",
    "current_case",
    "describe",
    "fail",
    "invariant",
]

Check = Callable[[CellFactory, Case], None]

#: The clause every built-in invariant shares: a non-finite output, state,
#: loss or gradient, met before the invariant's own comparison, is reported
#: as itself, since every comparison after it is meaningless
#: (docs/design.md, "One root cause per failure").
NON_FINITE = "non_finite"

_running: contextvars.ContextVar[str | None] = contextvars.ContextVar("invariant", default=None)
_case: contextvars.ContextVar[Case | None] = contextvars.ContextVar("case", default=None)


@dataclass(frozen=True)
class Invariant:
    """A named claim, its check, the region where it is claimed, whether it
    is claimed on adversarial inputs too (constant and nearly flat prices,
    large moves, raw prices scaled by 1, 1e-4 and 1e4) or on the market's
    only, and the least
    batch its cases need (2 for a claim about how examples of a batch relate)."""

    name: str
    check: Check
    region: Region
    adversarial_inputs: bool
    doc: str = ""
    min_batch: int = 1
    #: The names of the checks inside it that can each fail on their own
    #: (``fail(..., clause=...)``); every one has a mutant that it catches.
    clauses: tuple[str, ...] = ()
    #: The least sequence length its cases need (2 where a recurrent kernel
    #: must get a gradient: from a zero state, one step gives it none).
    min_steps: int = 1
    #: What a cell's contract must promise for the claim to apply to it.
    needs: tuple[Promise, ...] = ()

    def why_not_applicable(self, contract: Contract) -> str | None:
        """Why the claim does not apply to a cell of ``contract`` (it never
        runs against a promise the cell does not make), or None."""
        for promise in self.needs:
            reason = contract.why_not(promise)
            if reason is not None:
                return f"not applicable: it needs {promise}, and {reason}"
        return None

    def __call__(self, factory: CellFactory, case: Case) -> None:
        """Run the check, with :func:`fail` knowing whose failure it is."""
        with _checking(self.name, case):
            self.check(factory, case)


#: Every registered invariant by its stable name, the built-in ones first.
INVARIANTS: dict[str, Invariant] = {}


def invariant(
    name: str | None = None,
    *,
    region: Region = WHOLE_SPACE,
    adversarial_inputs: bool = False,
    min_batch: int = 1,
    clauses: Iterable[str] = (),
    min_steps: int = 1,
    needs: Iterable[Promise] = (),
) -> Callable[[Check], Check]:
    """Register the decorated ``check(factory, case)`` as an invariant.

    ``name`` defaults to the function's name; ``region`` is where the claim
    holds (a :class:`~cellverify.checks.cases.regions.Region`); ``adversarial_inputs``
    claims it on adversarial inputs too; ``min_batch`` is the least batch its
    cases are drawn with; ``clauses`` names the checks inside it that can
    each fail on their own, as its ``fail(..., clause=...)`` calls name them;
    ``min_steps`` is the least sequence length its cases need; ``needs``
    lists what a cell's contract must promise for the claim to apply
    (:class:`~cellverify.contracts.Promise`).
    Re-registering the same function (a module imported twice) is harmless;
    another function under a taken name is an error.
    """
    if not isinstance(region, Region):
        raise InvalidConfig("invariant", "region", "a cellverify Region", region)
    if not (isinstance(min_batch, int) and 1 <= min_batch <= MAX_BATCH):
        allowed = f"an integer from 1 to {MAX_BATCH}"
        raise InvalidConfig("invariant", "min_batch", allowed, min_batch)

    def register(fn: Check) -> Check:
        key = name or fn.__name__
        taken = INVARIANTS.get(key)
        same = taken is not None and (
            taken.check.__module__,
            taken.check.__qualname__,
        ) == (fn.__module__, fn.__qualname__)
        if taken is not None and not same:
            raise InvalidConfig(
                "invariant",
                "name",
                f"a name not already taken (by {taken.check.__qualname__})",
                key,
            )
        doc = (fn.__doc__ or "").strip().split("\n\n")[0]
        INVARIANTS[key] = Invariant(
            key,
            fn,
            region,
            adversarial_inputs,
            " ".join(doc.split()),
            min_batch,
            tuple(clauses),
            min_steps,
            tuple(needs),
        )
        return _named(key, fn)

    return register


def _named(name: str, fn: Check) -> Check:
    """``fn``, telling :func:`fail` whose failure it is when called directly
    (a measuring script, a test) and not through its :class:`Invariant`."""

    @functools.wraps(fn)
    def check(factory: CellFactory, case: Case) -> None:
        with _checking(name, case):
            fn(factory, case)

    return check


@contextlib.contextmanager
def _checking(name: str, case: Case) -> Iterator[None]:
    running, current = _running.set(name), _case.set(case)
    try:
        yield
    finally:
        _running.reset(running)
        _case.reset(current)


def current_case() -> Case | None:
    """The case the running invariant checks (None outside one), for
    messages that name its inputs."""
    return _case.get()


def fail(message: str, *, clause: str = "") -> NoReturn:
    """Raise the running invariant's violation, ``[name] message``;
    ``clause`` names which of its checks fired (:attr:`Invariant.clauses`)."""
    raise InvariantViolation(_running.get() or "invariant", message, clause)


def describe(invariants: Iterable[Invariant]) -> list[dict[str, Any]]:
    """Plain data about each invariant (name, region, inputs, claim)."""
    return [
        {
            "name": inv.name,
            "region": inv.region.name,
            "inputs": "any" if inv.adversarial_inputs else "market",
            "min_batch": inv.min_batch,
            "clauses": list(inv.clauses),
            "needs": [str(p) for p in inv.needs],
            "claim": inv.doc,
        }
        for inv in invariants
    ]
