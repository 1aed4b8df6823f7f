"""What the Monitor does with a diagnosis while the run goes on: says each
new finding once, with its likely causes and, at the end, the verdict; and
stops the run on the findings it was told to stop on."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cellverify.diagnosis import FINDING_NAMES, Diagnosis
from cellverify.errors import InvalidConfig
from cellverify.monitor.tensorboard import TensorBoardLog

__all__ = ["FindingReporter", "Stop", "StopRule"]


class FindingReporter:
    """Each finding said once per run: printed (through ``say``, when
    given) with the causes that explain it, and written to TensorBoard."""

    def __init__(self) -> None:
        self._reported: set[str] = set()

    def report(
        self,
        result: Diagnosis,
        *,
        step: int,
        log: TensorBoardLog,
        say: Callable[[str], None] | None,
        final: bool,
    ) -> None:
        """The findings of ``result`` not reported before; the verdict too if ``final``."""
        for finding in [f for f in result.findings if f.name not in self._reported]:
            self._reported.add(finding.name)
            if say is not None:
                say(f"cellverify: {finding.severity} {finding.name}: {finding.detail}")
                for cause in result.causes:
                    if finding.name in cause.findings:
                        say(f"  likely cause {cause.name}: {cause.explanation}")
            log.text(finding.name, finding.detail, step)
        if final and say is not None:
            say(f"cellverify: verdict {result.verdict.name.upper()} - {result.verdict.reason}")


@dataclass(frozen=True)
class Stop:
    """The finding that stops a run, and the step that showed it."""

    finding: str
    step: int
    detail: str


class StopRule:
    """The findings that stop training (``Monitor(stop_on=...)``), checked by name."""

    def __init__(self, stop_on: Sequence[str]) -> None:
        unknown = [name for name in stop_on if name not in FINDING_NAMES]
        if unknown:
            raise InvalidConfig(
                "Monitor", "stop_on", f"finding names ({', '.join(FINDING_NAMES)})", unknown
            )
        self.names = tuple(stop_on)

    def check(self, result: Diagnosis, step: int) -> Stop | None:
        """The first finding of ``result`` to stop on, at the step its
        evidence names (else ``step``), or None."""
        for finding in result.findings:
            if finding.name in self.names:
                at = int(finding.evidence[0].get("step", step))
                return Stop(finding.name, at, finding.detail)
        return None
