"""Exception types of cellverify.

Every error a user can cause derives from :class:`CellVerifyError`, so a CLI or
a test harness can tell a user's mistake from a bug in the kit.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = [
    "BadCellFactory",
    "BadInvariantModule",
    "BadPriceFile",
    "CellVerifyError",
    "CheckCrashed",
    "InvalidConfig",
    "InvariantViolation",
    "SchedulerUnreachable",
    "UnknownInvariant",
    "describe_exception",
]

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Keras wraps an exception raised in a layer's call() with this first line.
_KERAS_WRAPPER = "Exception encountered when calling"


class CellVerifyError(Exception):
    """Base class of every error cellverify raises on purpose."""


class InvalidConfig(CellVerifyError, ValueError):
    """A configuration field has a value outside what is allowed.

    The message names the field, what is allowed and what was received, in
    Keras's style: ``"... Received: kernels=(5, 0, 1)"``.
    """

    def __init__(
        self, owner: str, field: str, allowed: str, received: Any, message: str | None = None
    ) -> None:
        self.owner = owner
        self.field = field
        self.allowed = allowed
        self.received = received
        super().__init__(
            message or f"{owner}.{field} must be {allowed}. Received: {field}={received!r}"
        )


class InvariantViolation(CellVerifyError, AssertionError):
    """A cell broke one of the invariants of :mod:`cellverify.checks.judges.invariants`.

    ``invariant`` is the stable name (``"simplex_output"``, ...); the message
    starts with ``[invariant]`` and names the tensors, shapes and tolerance.
    ``clause`` names which of the invariant's checks fired (``"sum"``,
    ``"non_finite"``, ...; ``""`` for an invariant of one check), so that a
    mutant can be held to the clause it was written to break.
    """

    def __init__(self, invariant: str, message: str, clause: str = "") -> None:
        self.invariant = invariant
        self.clause = clause
        super().__init__(f"[{invariant}] {message}")


class CheckCrashed(CellVerifyError):
    """Something other than a violation was raised while an invariant checked
    a case: a crash of the cell on that case, or a bug in the invariant or the
    kit.  Never a verdict on the claim, so ``cellverify check`` reports it as
    ``error``, not ``failed``, and the kill matrix never counts it as a kill.

    ``where`` says whose code raised it (``"the cell's code at cells.py:12
    (call)"``); the original exception is the ``__cause__``.
    """

    def __init__(self, invariant: str, error: str, where: str) -> None:
        self.invariant = invariant
        self.error = error
        self.where = where
        super().__init__(f"[{invariant}] crashed in {where}: {error}")


class BadCellFactory(CellVerifyError, TypeError):
    """A cell factory cannot be imported, called, or returns no usable cell."""


def describe_exception(exc: BaseException) -> str:
    """``Type: message`` on one line, without Keras's wrapper line or terminal colours."""
    lines = [_ANSI.sub("", line).strip() for line in str(exc).splitlines()]
    useful = [line for line in lines if line and not line.startswith(_KERAS_WRAPPER)]
    return f"{type(exc).__name__}: {useful[0] if useful else ''}".rstrip(": ")


class UnknownInvariant(CellVerifyError):
    """A selection names no invariant."""


class BadInvariantModule(CellVerifyError):
    """A module named by ``--invariants`` cannot be imported."""


class SchedulerUnreachable(CellVerifyError):
    """A Dask scheduler did not answer, or the address is not one."""


class BadPriceFile(InvalidConfig):
    """A price file cannot be used: says which file, row and column, what is
    allowed and what was found."""

    def __init__(
        self,
        file: str,
        row: int | None,
        column: str | None,
        problem: str,
        allowed: str,
        received: object,
    ) -> None:
        parts = [str(file)]
        if row is not None:
            parts.append(f"row {row}")
        if column is not None:
            parts.append(f"column {column!r}")
        super().__init__(
            "prices",
            column or "file",
            allowed,
            received,
            message=f"{', '.join(parts)}: {problem}; expected {allowed}. Received: {received!r}",
        )
