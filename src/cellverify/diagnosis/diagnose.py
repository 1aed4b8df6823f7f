"""The diagnosis of several seeds' traces: every detector, each seed's state,
the verdict, then causes and remedies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cellverify.diagnosis.causes import REMEDIES, likely_causes
from cellverify.diagnosis.detectors import DETECTORS
from cellverify.diagnosis.findings import (
    SEVERITIES,
    Cause,
    Finding,
    Remedy,
    SeedState,
    Severity,
    Symptom,
    Verdict,
)
from cellverify.diagnosis.outcome import Outcome, outcome_of
from cellverify.diagnosis.verdict import outcome_variance, seed_state, verdict_of
from cellverify.trace import Trace

__all__ = ["Diagnosis", "diagnose"]


@dataclass(frozen=True)
class Diagnosis:
    """The verdict, findings over seeds, outcomes, causes and remedies to verify."""

    cell: dict[str, Any]
    train: dict[str, Any]
    seeds: list[int]
    outcomes: list[Outcome]
    findings: list[Finding]
    causes: list[Cause]
    verdict: Verdict

    @property
    def healthy(self) -> bool:
        return self.verdict.name == "healthy"

    def by_severity(self, severity: Severity) -> list[Finding]:
        return [f for f in self.findings if f.severity == severity]

    def remedies(self) -> list[Remedy]:
        """Every remedy the causes propose, once each, in order."""
        names = dict.fromkeys(r for c in self.causes for r in c.remedies)
        return [REMEDIES[n] for n in names]

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.to_dict(),
            "cell": self.cell,
            "train": self.train,
            "seeds": self.seeds,
            "outcomes": [o.to_dict() for o in self.outcomes],
            "findings": [f.to_dict() for f in self.findings],
            "causes": [c.to_dict() for c in self.causes],
            "remedies": [r.to_dict() for r in self.remedies()],
        }


def _most_severe(symptoms: Sequence[Symptom]) -> Severity:
    return min((sym.severity for sym in symptoms), key=SEVERITIES.index)


def _finding(name: str, hits: Sequence[tuple[int, Symptom]], total: int) -> Finding:
    """One symptom over the seeds that showed it.  The seed quoted is the first
    whose severity is the finding's, and when the seeds' severities differ
    the message says which seeds had which, so that the finding's severity,
    and the verdict read from it, follow from what it says."""
    severity = _most_severe([sym for _, sym in hits])
    seed, symptom = next((s, sym) for s, sym in hits if sym.severity == severity)
    message = f"{len(hits)}/{total} seeds"
    if len({sym.severity for _, sym in hits}) > 1:
        by_severity = [
            f"{level} on {sum(sym.severity == level for _, sym in hits)}"
            for level in SEVERITIES
            if any(sym.severity == level for _, sym in hits)
        ]
        message += f" ({', '.join(by_severity)})"
    return Finding(
        name,
        [s for s, _ in hits],
        total,
        f"{message}; seed {seed}: {symptom.message}",
        [{"seed": s, "severity": sym.severity, **sym.evidence} for s, sym in hits],
        severity,
        symptom.message,
    )


def diagnose(traces: Sequence[Trace], seeds: Sequence[int]) -> Diagnosis:
    """Every detector on every seed's trace, each seed's state, the verdict,
    then causes and remedies."""
    if len(traces) != len(seeds) or not traces:
        raise ValueError(f"need one trace per seed; received {len(traces)} for {len(seeds)}")
    by_name: dict[str, list[tuple[int, Symptom]]] = {}
    outcomes = [outcome_of(t) for t in traces]
    states: dict[int, SeedState] = {}
    for seed, trace, outcome in zip(seeds, traces, outcomes, strict=True):
        symptoms = [sym for detect in DETECTORS if (sym := detect(trace)) is not None]
        for symptom in symptoms:
            by_name.setdefault(symptom.name, []).append((seed, symptom))
        states[seed] = seed_state(symptoms, outcome)
    findings = [_finding(name, hits, len(seeds)) for name, hits in by_name.items()]
    variance = outcome_variance(states)
    if variance is not None:
        findings.append(variance)
    findings.sort(key=lambda f: SEVERITIES.index(f.severity))
    names = {f.name for f in findings}
    cell, train = dict(traces[0].cell), dict(traces[0].train)
    causes = likely_causes(names, cell, train)
    verdict = verdict_of(states, findings, min(t.steps for t in traces))
    return Diagnosis(cell, train, list(seeds), outcomes, findings, causes, verdict)
