"""What ``cellverify check`` found, as plain data: each invariant's result
and the suite's (the JSON report of docs/design.md, "The check report").

No TensorFlow and no Hypothesis: a worker's result crosses processes as
:meth:`InvariantResult.to_dict`, and the rendering reads the same dicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cellverify.checks.cases.case import Case

__all__ = ["STATUSES", "CheckStatus", "InvariantResult", "SuiteResult", "check_status"]


#: What an invariant's search can end in.  ``error``: the search itself could
#: not be completed (a crash of the cell, the invariant or the kit on a case,
#: a Hypothesis health check, ``Unsatisfiable``, a flaky failure that did not
#: reproduce, no example run) - nothing was shown about the claim either way,
#: so it is neither a pass nor a violation.  ``not_applicable``: the claim
#: needs a promise the cell's contract does not make, and did not run.
class CheckStatus(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"
    NOT_APPLICABLE = "not_applicable"


STATUSES: tuple[CheckStatus, ...] = tuple(CheckStatus)


def check_status(value: str) -> CheckStatus:
    """``value`` as a status, from a report read back (a worker's, a file)."""
    try:
        return CheckStatus(value)
    except ValueError:
        allowed = ", ".join(STATUSES)
        raise ValueError(f"a check status is one of {allowed}. Received: {value!r}") from None


@dataclass(frozen=True)
class InvariantResult:
    """One invariant's outcome: one of :data:`STATUSES`.

    ``outside`` lists the pinned ``field=value`` pairs outside the region
    where the invariant is claimed: a failure there is no fault of the cell.
    ``coverage`` is what the examples reached
    (:meth:`cellverify.checks.draws.coverage.Coverage.to_dict`; None where nothing ran).
    ``clause`` names the check of the invariant that fired, ``reproduction``
    the source of a pytest file that reproduces the failure or crash
    (:mod:`cellverify.checks.runs.reproduction`; None where there is no case, or
    the factory has no import path).
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
    clause: str = ""
    reproduction: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": str(self.status),
            "examples": self.examples,
            "seconds": round(self.seconds, 3),
            "falsifying": None if self.falsifying is None else self.falsifying.to_dict(),
            "message": self.message,
            "region": self.region,
            "outside_region": list(self.outside),
            "coverage": self.coverage,
            "clause": self.clause,
            "reproduction": self.reproduction,
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
            data.get("clause", ""),
            data.get("reproduction"),
        )


@dataclass(frozen=True)
class SuiteResult:
    """Every invariant's result for one cell factory under one profile
    (the JSON report of docs/design.md, "The check report")."""

    cell: str
    profile: str
    results: list[InvariantResult] = field(default_factory=list)
    pinned: dict[str, Any] = field(default_factory=dict)
    #: A spec'd cell's description (:meth:`cellverify.CellSpec.describe`);
    #: None for the portfolio contract.
    spec: dict[str, Any] | None = None

    @property
    def passed(self) -> bool:
        """Every invariant run held, and at least one ran: a run that checked
        nothing never passes."""
        idle = (CheckStatus.SKIPPED, CheckStatus.NOT_APPLICABLE)
        ran = [r for r in self.results if r.status not in idle]
        return bool(ran) and all(r.status is CheckStatus.PASSED for r in ran)

    @property
    def errored(self) -> bool:
        return any(r.status is CheckStatus.ERROR for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cell": self.cell,
            "profile": self.profile,
            "passed": self.passed,
            "pinned": {k: list(v) if isinstance(v, tuple) else v for k, v in self.pinned.items()},
            **({"spec": self.spec} if self.spec is not None else {}),
            "invariants": [r.to_dict() for r in self.results],
        }
