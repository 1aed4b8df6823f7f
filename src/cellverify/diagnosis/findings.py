"""Thresholds with their sources, the vocabularies, and the result types of a
diagnosis (docs/design.md, "Symptoms and severities").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cellverify.trace import Trace

__all__ = [
    "DEAD_UNIT_SHARE",
    "EXPLODING_RATIO",
    "FALSE_ALARM_RISK",
    "LEARNER_DEATH_RATE",
    "LEARNER_STALL_RATE",
    "NEARLY_UNIFORM_SHARE",
    "OUTCOME_VARIANCE",
    "PREDICTIVE_WARNINGS",
    "SATURATED_UNIT_SHARE",
    "SEED_STATES",
    "SEVERITIES",
    "STEP_GAIN_LIMIT",
    "UNIFORM_HOLD_UPDATES",
    "UPDATE_RATIO_RANGE",
    "VANISHING_FIRST_NORM",
    "VANISHING_RATIO",
    "VANISHING_TIME_RATIO",
    "VERDICTS",
    "Cause",
    "Detector",
    "Finding",
    "Remedy",
    "SeedState",
    "Severity",
    "Symptom",
    "Verdict",
    "VerdictName",
]

# -- thresholds, each with its source -----------------------------------------

#: A layer is "dying" when at least this share of its units output exactly 0
#: on every example, or this share of a variable's gradient entries is exactly
#: 0.  Source: AUTOTRAINER (Zhang et al., ICSE 2021), "dying ReLU" rule.
DEAD_UNIT_SHARE = 0.7
#: Vanishing gradient: first-layer / last-layer gradient-norm ratio at most
#: this, with the first layer's norm at most VANISHING_FIRST_NORM.  Source:
#: AUTOTRAINER's vanishing-gradient rule.
VANISHING_RATIO = 1e-3
VANISHING_FIRST_NORM = 1e-4
#: Exploding gradient: first/last gradient-norm ratio at least this, or any
#: non-finite number.  Source: AUTOTRAINER's exploding-gradient rule.
EXPLODING_RATIO = 70.0
#: Vanishing through time: ‖∂L/∂s_0‖ / ‖∂L_last/∂s_last‖ at most this (the
#: across-layer bound of AUTOTRAINER, applied across steps).
VANISHING_TIME_RATIO = 1e-3
#: Saturated tanh: at least this share of a tanh conv's activations sit at
#: |a| >= probe.SATURATION_LEVEL, where the slope is under 0.02 - the share
#: AUTOTRAINER uses for dying ReLUs, applied to tanh's flat ends.
SATURATED_UNIT_SHARE = 0.7
#: Update-to-weight ratio ‖ΔW‖/‖W‖ of a kernel, median over the run, outside
#: this range: the optimizer barely moves the weights, or jolts them.  The
#: usual rule of thumb is ~1e-3 (Karpathy, "A Recipe for Training Neural
#: Networks"); the kit widens it two decades each way to stay quiet on healthy
#: runs.
UPDATE_RATIO_RANGE = (1e-5, 1e-1)
#: Step gain ‖ΔW‖ / (lr ‖g‖) at step 0: 1 for SGD, ~3 for Keras's Adagrad
#: (accumulator 0.1), and ~√n/‖g‖-large for Adam, whose step is ~lr per entry
#: whatever the gradient's scale.  At least this much, and the run then dies:
#: the optimizer's step, not the gradient, drove the weights (docs/design.md, 'Measured facts').
STEP_GAIN_LIMIT = 10.0
#: "Nearly every output row exactly uniform, and not recovering": at least
#: NEARLY_UNIFORM_SHARE of the rows exactly uniform at every measured step of
#: the last UNIFORM_HOLD_UPDATES updates or more, to the end, is fatal.  A
#: softmax row is exactly uniform only when every logit is equal (the ReLU
#: before it clipped them all to 0); it passes no gradient, and the few rows
#: left carry all of it.  Measured on the label runs of the real-price
#: labelled set (seeds 0-4, 200 updates; docs/verdicts.md, "One run"): of
#: the 56 runs with >= 95 % of their rows uniform for 2 updates or more within
#: their first 20, 1 learned - the rate of the 51 whose whole gradient was
#: exactly 0 (1 learned, the same run: dead at birth, back after 6 updates).
#: The learner next closest held >= 90 % for 1 update (Nadam, the question's
#: cell), hence the share; the hold is one update more than that.
NEARLY_UNIFORM_SHARE = 0.95
UNIFORM_HOLD_UPDATES = 2


class Severity(StrEnum):
    """Severities, most severe first."""

    FATAL = "fatal"
    WARNING = "warning"
    INFO = "info"


SEVERITIES: tuple[Severity, ...] = tuple(Severity)


class VerdictName(StrEnum):
    """Verdicts on a configuration, worst first (JSON ``verdict.name``)."""

    WILL_NOT_LEARN = "will not learn"
    AT_RISK = "at risk"
    HEALTHY = "healthy"
    TOO_EARLY = "too early to tell"


VERDICTS: tuple[VerdictName, ...] = tuple(VerdictName)


class SeedState(StrEnum):
    """What one seed's run came to: a fatal finding, learned, a warning that
    predicts failure in a run that has not learned, stalled at the horizon,
    or none of these yet."""

    DEAD = "dead"
    FAILING = "failing"
    LEARNED = "learned"
    STALLED = "stalled"
    UNDECIDED = "undecided"


SEED_STATES: tuple[SeedState, ...] = tuple(SeedState)
#: Warnings that, measured on the labelled sets, only runs of configurations
#: that do not learn showed.  A seed that has not learned and shows one is
#: ``failing``: it counts against the configuration as a dead seed does,
#: though the run itself is not dead (docs/design.md, "Verdicts").  On a
#: seed that learned, such a warning makes the configuration ``at risk``.
#:
#: ``zero_logits``, any output row exactly uniform (every logit equal: a
#: ReLU before the softmax clipped them all).  Measured on the label runs
#: (seeds 0-4, 200 updates; docs/verdicts.md, "One run"): none of the 245
#: label runs of configurations that learn (real prices and synthetic, both
#: tasks) showed a single uniform row in all its 200 updates.  At 20 updates
#: 29 label runs were failing on it (17, 9, 3 and 0 on real supervised, real
#: portfolio, synthetic supervised and portfolio), all of configurations that
#: do not learn; 10 of those 29 runs (9 of the 17) learned by 200 all the
#: same.  So the call is about the configuration; for the run it is not.
PREDICTIVE_WARNINGS: frozenset[str] = frozenset({"zero_logits"})

#: "will not learn" is a claim about the configuration, not about the seeds
#: that happened to be drawn.  A configuration that learns can still lose
#: some seeds: on the labelled set (docs/verdicts.md, "Can the verdict be trusted") the
#: worst learners lost 2 of 10 diagnosis seeds at birth (the paper's ReLU +
#: linear design: every conv1 filter negative) and stalled on 3 of 10 at the
#: horizon (the remedied cell under SGD 1e-2, supervised).  So failures
#: count against a configuration only when that many would be unlikely,
#: below FALSE_ALARM_RISK, had each seed failed independently at those rates.
#: With the default 10 seeds this is the majority rule for deaths (6 of 10:
#: 0.0064) and 8 of 10 for stalls; with 3 seeds it takes all 3 dead, and no
#: number of stalls (3 of 3: 0.027).  Majority rules alone called 4-5 of 32
#: learning configurations "will not learn" with 3 seeds.
LEARNER_DEATH_RATE = 0.2
LEARNER_STALL_RATE = 0.3
FALSE_ALARM_RISK = 0.01


@dataclass(frozen=True)
class Symptom:
    """One detector's finding on one run."""

    name: str
    message: str
    evidence: dict[str, Any]
    severity: Severity = Severity.WARNING


@dataclass(frozen=True)
class Finding:
    """A symptom across seeds: which seeds showed it, each one's evidence, and
    the most severe of its severities over those seeds."""

    name: str
    seeds: list[int]
    total: int
    message: str
    evidence: list[dict[str, Any]]
    severity: Severity = Severity.WARNING
    #: The first seed's own message, without the count of seeds.
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "severity": self.severity,
            "seeds": self.seeds,
            "of": self.total,
            "message": self.message,
            "detail": self.detail,
            "evidence": self.evidence,
        }


@dataclass(frozen=True)
class Verdict:
    """One configuration's verdict (one of :data:`VERDICTS`), why, and each
    seed's state: ``dead`` (a fatal finding), ``failing`` (not learned, and a
    warning of :data:`PREDICTIVE_WARNINGS`), ``learned``, ``stalled`` (alive,
    falling too slowly to learn, with confidence) or ``undecided``."""

    name: VerdictName
    reason: str
    states: dict[int, SeedState]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "reason": self.reason,
            "seeds": {str(seed): state for seed, state in self.states.items()},
        }


@dataclass(frozen=True)
class Remedy:
    """A concrete change to the configurations."""

    name: str
    description: str
    cell: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Cause:
    """A likely cause, the findings that point to it, and remedies to try."""

    name: str
    explanation: str
    findings: list[str]
    remedies: list[str]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: The finding about a configuration rather than one run: seeds disagree.
OUTCOME_VARIANCE = "outcome_variance"


@dataclass(frozen=True)
class Detector:
    """A detector and the names of the findings it may emit: declared, so
    that :data:`FINDING_NAMES` and the cause rules' triggers can be checked
    against what is really emitted."""

    detect: Callable[[Trace], Symptom | None]
    emits: tuple[str, ...]

    @property
    def __name__(self) -> str:
        return self.detect.__name__

    def __call__(self, trace: Trace) -> Symptom | None:
        symptom = self.detect(trace)
        if symptom is not None and symptom.name not in self.emits:  # a bug in the kit
            raise RuntimeError(
                f"{self.__name__} emitted {symptom.name!r}, which it does not declare "
                f"({', '.join(self.emits)})"
            )
        return symptom
