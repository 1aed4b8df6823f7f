"""Each seed's state, the outcome variance over seeds, and the configuration's
verdict, with the binomial rule that keeps a learner's unlucky seeds from
calling it "will not learn" (docs/design.md, "Verdicts").
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from cellverify.diagnosis.findings import (
    FALSE_ALARM_RISK,
    LEARNER_DEATH_RATE,
    LEARNER_STALL_RATE,
    OUTCOME_VARIANCE,
    PREDICTIVE_WARNINGS,
    SEVERITIES,
    Finding,
    SeedState,
    Severity,
    Symptom,
    Verdict,
    VerdictName,
)
from cellverify.diagnosis.outcome import (
    DECISION_HORIZON,
    LEARNED_GAP_FRACTION,
    Outcome,
)

__all__ = ["binomial_tail", "outcome_variance", "rules_out_learning", "seed_state", "verdict_of"]


def seed_state(symptoms: Sequence[Symptom], outcome: Outcome) -> SeedState:
    """``dead`` (a fatal symptom), ``learned``, ``failing`` (a warning that
    predicts failure, not learned), ``stalled`` or ``undecided``."""
    if any(sym.severity == "fatal" for sym in symptoms):
        return SeedState.DEAD
    if outcome.learned:
        return SeedState.LEARNED
    if any(sym.name in PREDICTIVE_WARNINGS for sym in symptoms):
        return SeedState.FAILING
    if any(sym.name == "stalled_loss" for sym in symptoms):
        return SeedState.STALLED
    return SeedState.UNDECIDED


def outcome_variance(states: dict[int, SeedState]) -> Finding | None:
    """Outcomes that differ among the *decided* seeds; undecided ones say nothing."""
    decided = {seed: state for seed, state in states.items() if state != "undecided"}
    learned = [seed for seed, state in decided.items() if state == "learned"]
    failed = [seed for seed, state in decided.items() if state != "learned"]
    if not learned or not failed:
        return None
    message = (
        f"learns on {len(learned)} of {len(decided)} decided seeds and fails on {len(failed)}: "
        "fragile, whatever one run says"
    )
    evidence = {
        "learned_seeds": learned,
        "failed_seeds": failed,
        "undecided_seeds": [s for s in states if s not in decided],
        "source": "outcome variance over seeds (docs/design.md, 'Verdicts')",
    }
    return Finding(
        OUTCOME_VARIANCE, failed, len(states), message, [evidence], Severity.WARNING, message
    )


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1))


def rules_out_learning(failed: int, n: int, rate: float) -> bool:
    """Whether ``failed`` of ``n`` seeds failing is too many for a configuration
    that learns, whose seeds fail at most at ``rate`` (the false alarm risk is
    then below FALSE_ALARM_RISK).  One run is judged as itself: a fatal
    finding says that run will not learn, a failing one that its
    configuration will not (docs/design.md, "Verdicts")."""
    if n == 1:
        return failed == 1
    return failed > n / 2 and binomial_tail(failed, n, rate) <= FALSE_ALARM_RISK


def _too_few(failed: int, n: int, rate: float) -> str:
    return (
        f"; too few seeds to say the configuration will not learn (one that learns can fail "
        f"on {rate:.0%} of seeds: {failed} of {n} happens {binomial_tail(failed, n, rate):.0%} "
        "of the time); run more seeds"
    )


def _failure_reason(count: dict[SeedState, int], n: int, findings: Sequence[Finding]) -> str:
    """Dead seeds with their fatal findings, then failing ones with the
    warnings that predict failure, each named as the findings above name it."""
    parts = []
    if count[SeedState.DEAD]:
        fatal = ", ".join(f.name for f in findings if f.severity == "fatal")
        parts.append(f"fatal on {count[SeedState.DEAD]} of {n} seeds ({fatal})")
    if count[SeedState.FAILING]:
        signs = ", ".join(f.name for f in findings if f.name in PREDICTIVE_WARNINGS)
        parts.append(
            f"failing on {count[SeedState.FAILING]} of {n} seeds (not learned, showing {signs}, "
            "which no configuration that learns showed on the labelled sets)"
        )
    return "; ".join(parts)


def verdict_of(states: dict[int, SeedState], findings: Sequence[Finding], updates: int) -> Verdict:
    """The rules of docs/design.md, "Verdicts", in order."""
    n = len(states)
    count = {name: sum(s == name for s in states.values()) for name in SeedState}
    stalled = count[SeedState.STALLED]
    failed = count[SeedState.DEAD] + count[SeedState.FAILING]
    if failed:
        reason = _failure_reason(count, n, findings)
        if rules_out_learning(failed, n, LEARNER_DEATH_RATE):
            return Verdict(VerdictName.WILL_NOT_LEARN, reason, states)
        if failed > n / 2:
            reason += _too_few(failed, n, LEARNER_DEATH_RATE)
        return Verdict(VerdictName.AT_RISK, reason, states)
    if count[SeedState.LEARNED] and stalled:
        return Verdict(
            VerdictName.AT_RISK,
            f"learned on {count[SeedState.LEARNED]} seeds, stalled on {stalled}",
            states,
        )
    if stalled and not count[SeedState.LEARNED] and updates >= DECISION_HORIZON:
        reason = (
            f"stalled on {stalled} of {n} seeds at {updates} updates, learned on none: the "
            f"loss falls too slowly to close {LEARNED_GAP_FRACTION:.0%} of the gap within "
            f"{DECISION_HORIZON} updates"
        )
        if rules_out_learning(stalled, n, LEARNER_STALL_RATE):
            return Verdict(VerdictName.WILL_NOT_LEARN, reason, states)
        return Verdict(
            VerdictName.AT_RISK, reason + _too_few(stalled, n, LEARNER_STALL_RATE), states
        )
    if stalled:
        return Verdict(
            VerdictName.AT_RISK,
            f"alive but stalled on {stalled} of {n} seeds, learned on none",
            states,
        )
    predictive = sorted({f.name for f in findings} & PREDICTIVE_WARNINGS)
    if predictive:
        return Verdict(
            VerdictName.AT_RISK,
            f"learned, but shows {', '.join(predictive)}, which no configuration that learns "
            "showed on the labelled sets",
            states,
        )
    if count[SeedState.LEARNED]:
        undecided = n - count[SeedState.LEARNED]
        rest = f"; {undecided} not yet decided" if undecided else ""
        return Verdict(
            VerdictName.HEALTHY,
            f"nothing fatal; learned on {count[SeedState.LEARNED]} of {n} seeds{rest}",
            states,
        )
    return Verdict(
        VerdictName.TOO_EARLY,
        f"nothing fatal, but no seed has learned or stalled yet in {n} runs",
        states,
    )


def _most_severe(symptoms: Sequence[Symptom]) -> Severity:
    return min((sym.severity for sym in symptoms), key=SEVERITIES.index)
