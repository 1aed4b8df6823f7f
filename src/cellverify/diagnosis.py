"""Why a configuration is fragile: symptoms read off traces, their likely causes,
and the remedies to verify by re-running (NumPy only: no TensorFlow here).

Each detector reads one :class:`~cellverify.trace.Trace` and returns a
:class:`Symptom` with its severity and evidence (layer, step, number,
threshold and where the threshold comes from) or nothing.  Severities:

* ``fatal`` - the run cannot learn from here (the whole gradient exactly 0
  to the end, every output row exactly uniform, a non-finite loss);
* ``warning`` - learning is impaired (dead units, a tiny update ratio, a
  stalled loss);
* ``info`` - worth knowing, impairs nothing by itself.

:func:`diagnose` runs every detector on the traces of several seeds, decides
each seed (dead, learned, stalled or undecided), adds the across-seed symptom
(outcome variance, only among decided seeds), gives the configuration one
:class:`Verdict`, and maps the findings to causes and remedies.  Re-running
the remedies is the job of :mod:`cellverify.verify`.  docs/design.md,
"Verdicts", says how the rules were measured.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np

from cellverify.config import ADAPTIVE_OPTIMIZERS, GRADIENT_SCALED_OPTIMIZERS
from cellverify.outcome import (
    DECISION_HORIZON,
    LEARNED_GAP_FRACTION,
    Outcome,
    loss_trend,
    outcome_of,
)
from cellverify.trace import CONV_LAYERS, SATURATED_MAX_WEIGHT, Trace

__all__ = [
    "CAUSE_RULES",
    "DEAD_UNIT_SHARE",
    "DETECTORS",
    "EXPLODING_RATIO",
    "FINDING_NAMES",
    "OUTCOME_VARIANCE",
    "PREDICTIVE_WARNINGS",
    "REMEDIES",
    "SATURATED_MAX_WEIGHT",
    "SATURATED_UNIT_SHARE",
    "SEED_STATES",
    "SEVERITIES",
    "STEP_GAIN_LIMIT",
    "UPDATE_RATIO_RANGE",
    "VANISHING_FIRST_NORM",
    "VANISHING_RATIO",
    "VANISHING_TIME_RATIO",
    "VERDICTS",
    "Cause",
    "CauseRule",
    "Detector",
    "Diagnosis",
    "Finding",
    "Remedy",
    "SeedState",
    "Severity",
    "Symptom",
    "Verdict",
    "VerdictName",
    "diagnose",
    "likely_causes",
    "seed_state",
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


#: Severities, most severe first.
Severity = Literal["fatal", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = get_args(Severity)
#: Verdicts on a configuration, worst first (JSON ``verdict.name``).
VerdictName = Literal["will not learn", "at risk", "healthy", "too early to tell"]
VERDICTS: tuple[VerdictName, ...] = get_args(VerdictName)
#: What one seed's run came to: a fatal finding, learned, stalled at the
#: horizon, or none of these yet.
SeedState = Literal["dead", "learned", "stalled", "undecided"]
SEED_STATES: tuple[SeedState, ...] = get_args(SeedState)
#: Warnings that, measured on the labelled set, predict that a configuration
#: will not learn even with nothing fatal: they make it ``at risk``.
PREDICTIVE_WARNINGS: frozenset[str] = frozenset()

#: "will not learn" is a claim about the configuration, not about the seeds
#: that happened to be drawn.  A configuration that learns can still lose
#: some seeds: on the labelled set (README, "Can the verdict be trusted") the
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
    severity: Severity = "warning"


@dataclass(frozen=True)
class Finding:
    """A symptom across seeds: which seeds showed it, each one's evidence, and
    the most severe of its severities over those seeds."""

    name: str
    seeds: list[int]
    total: int
    message: str
    evidence: list[dict[str, Any]]
    severity: Severity = "warning"
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
    seed's state: ``dead`` (a fatal finding), ``learned``, ``stalled`` (alive,
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


# -- detectors -----------------------------------------------------------------


def _kernels(trace: Trace) -> list[int]:
    return [i for i, name in enumerate(trace.variables) if name.endswith("kernel")]


def _alive_steps(trace: Trace) -> int:
    """Rows up to (not including) the first exactly-zero gradient."""
    first = trace.first_zero_gradient_step()
    return trace.loss.shape[0] if first is None else first


def detect_zero_gradient(trace: Trace) -> Symptom | None:
    first = trace.first_zero_gradient_step()
    if first is None:
        return None
    later = trace.grad_zero_fraction[first:][trace.measured_rows()[first:]]
    stays = bool(np.all(later == 1.0))
    return Symptom(
        "zero_gradient",
        f"the whole gradient is exactly 0 from step {first}"
        + (" to the end" if stays else " (it came back later)"),
        {
            "step": first,
            "to_the_end": stays,
            "threshold": "every entry exactly 0",
            "source": "definition of a dead run (docs/design.md)",
        },
        "fatal" if stays else "warning",
    )


def _share(x: float) -> str:
    """A share as a percentage that never rounds a part up to the whole."""
    if x == 1.0 or x == 0.0 or np.isnan(x):
        return f"{x:.0%}"
    return f"{min(x, 0.999):.1%}"


def detect_zero_logits(trace: Trace) -> Symptom | None:
    rows = trace.uniform_rows
    hits = np.flatnonzero(rows > 0)
    if hits.size == 0:
        return None
    step = int(hits[0])
    logits = trace.zero_fraction[:, trace.layer("logits")]
    return Symptom(
        "zero_logits",
        f"{_share(rows[step])} of output rows exactly uniform at step {step} (logits exactly "
        f"0: {_share(logits[step])}); {_share(rows[-1])} at the end",
        {
            "step": step,
            "uniform_rows": float(rows[step]),
            "zero_logits": float(logits[step]),
            "uniform_rows_at_end": float(rows[-1]),
            "threshold": "> 0 rows exactly uniform",
            "source": "float32 logits are never all equal by chance (docs/design.md)",
        },
        # Every row exactly uniform at the end: every logit equal, no gradient
        # through the softmax, for good.
        "fatal" if rows[-1] == 1.0 else "warning",
    )


def detect_dead_units(trace: Trace) -> Symptom | None:
    worst: tuple[float, str, int] | None = None
    for layer in CONV_LAYERS:
        shares = trace.dead_fraction[:, trace.layer(layer)]
        if np.all(np.isnan(shares)):
            return None
        step = int(np.nanargmax(shares))
        if shares[step] >= DEAD_UNIT_SHARE and (worst is None or shares[step] > worst[0]):
            worst = (float(shares[step]), layer, step)
    if worst is None:
        return None
    share, layer, step = worst
    at_init = {name: float(trace.dead_fraction[0, trace.layer(name)]) for name in CONV_LAYERS}
    return Symptom(
        "dead_units",
        f"{share:.0%} of {layer}'s units output exactly 0 on every example at step {step} "
        f"(at init: conv1 {at_init['conv1']:.0%}, conv2 {at_init['conv2']:.0%})",
        {
            "layer": layer,
            "step": step,
            "share": share,
            "at_init": at_init,
            "threshold": DEAD_UNIT_SHARE,
            "source": "AUTOTRAINER dying-ReLU rule",
        },
    )


def detect_zero_gradient_entries(trace: Trace) -> Symptom | None:
    """A kernel most of whose gradient entries are exactly 0 while the run is alive."""
    for step in range(_alive_steps(trace)):
        for i in _kernels(trace):
            share = float(trace.grad_zero_fraction[step, i])
            if share >= DEAD_UNIT_SHARE:
                return Symptom(
                    "zero_gradient_entries",
                    f"{share:.0%} of {trace.variables[i]}'s gradient entries are exactly 0 at "
                    f"step {step}",
                    {
                        "variable": trace.variables[i],
                        "step": step,
                        "share": share,
                        "threshold": DEAD_UNIT_SHARE,
                        "source": "AUTOTRAINER dying-ReLU rule",
                    },
                )
    return None


def _first_last(trace: Trace, step: int) -> tuple[float, float]:
    kernels = _kernels(trace)
    return float(trace.grad_norm[step, kernels[0]]), float(trace.grad_norm[step, kernels[-1]])


def detect_vanishing_gradient(trace: Trace) -> Symptom | None:
    for step in range(_alive_steps(trace)):
        first, last = _first_last(trace, step)
        if last > 0 and first / last <= VANISHING_RATIO and first <= VANISHING_FIRST_NORM:
            return Symptom(
                "vanishing_gradient",
                f"first-layer gradient norm {first:.2e} is {first / last:.1e} of the last "
                f"layer's {last:.2e} at step {step}",
                {
                    "step": step,
                    "first_norm": first,
                    "last_norm": last,
                    "threshold": [VANISHING_RATIO, VANISHING_FIRST_NORM],
                    "source": "AUTOTRAINER vanishing-gradient rule",
                },
            )
    return None


def detect_exploding_gradient(trace: Trace) -> Symptom | None:
    bad = ~np.isfinite(trace.loss) | (
        trace.measured_rows() & ~np.all(np.isfinite(trace.grad_norm), axis=1)
    )
    if bad.any():
        step = int(np.flatnonzero(bad)[0])
        return Symptom(
            "exploding_gradient",
            f"non-finite loss or gradient at step {step}",
            {"step": step, "threshold": "any non-finite", "source": "AUTOTRAINER"},
            "fatal",
        )
    for step in range(_alive_steps(trace)):
        first, last = _first_last(trace, step)
        if last > 0 and first / last >= EXPLODING_RATIO:
            return Symptom(
                "exploding_gradient",
                f"first-layer gradient norm is {first / last:.0f}x the last layer's at step {step}",
                {
                    "step": step,
                    "ratio": first / last,
                    "threshold": EXPLODING_RATIO,
                    "source": "AUTOTRAINER exploding-gradient rule",
                },
            )
    return None


def detect_vanishing_through_time(trace: Trace) -> Symptom | None:
    if int(trace.train["steps"]) < 2:
        return None
    s0, last = trace.state_grad_norm[:, 0], trace.state_grad_norm[:, 1]
    for step in range(_alive_steps(trace)):
        if last[step] > 0 and s0[step] / last[step] <= VANISHING_TIME_RATIO:
            return Symptom(
                "vanishing_through_time",
                f"‖∂L/∂s_0‖ is {s0[step] / last[step]:.1e} of ‖∂L_last/∂s_last‖ at step {step}: "
                "the state's influence fades across the sequence",
                {
                    "step": step,
                    "ratio": float(s0[step] / last[step]),
                    "threshold": VANISHING_TIME_RATIO,
                    "source": "AUTOTRAINER ratio, through time",
                },
                # The portfolio memory fading over a sequence impairs nothing
                # the rest of the cell needs; it is worth knowing.
                "info",
            )
    return None


def detect_saturated_softmax(trace: Trace) -> Symptom | None:
    hits = np.flatnonzero(trace.max_weight >= SATURATED_MAX_WEIGHT)
    if hits.size == 0:
        return None
    step = int(hits[0])
    return Symptom(
        "saturated_softmax",
        f"rows put {trace.max_weight[step]:.3f} on one asset on average at step {step}",
        {
            "step": step,
            "max_weight": float(trace.max_weight[step]),
            "threshold": SATURATED_MAX_WEIGHT,
            "source": "softmax gradient ∝ w(1-w)",
        },
    )


def detect_saturated_tanh(trace: Trace) -> Symptom | None:
    if trace.cell.get("activation") != "tanh":
        return None
    for layer in CONV_LAYERS:
        shares = trace.saturated_fraction[:, trace.layer(layer)]
        hits = np.flatnonzero(shares >= SATURATED_UNIT_SHARE)
        if hits.size:
            step = int(hits[0])
            return Symptom(
                "saturated_tanh",
                f"{shares[step]:.0%} of {layer}'s tanh outputs are saturated at step {step}",
                {
                    "layer": layer,
                    "step": step,
                    "share": float(shares[step]),
                    "threshold": SATURATED_UNIT_SHARE,
                    "source": "AUTOTRAINER share; tanh' < 0.02",
                },
            )
    return None


def detect_stalled_loss(trace: Trace) -> Symptom | None:
    """Alive, not learned, and the batch losses' trend shows, beyond their
    noise, that the loss falls too slowly to learn within the horizon."""
    outcome = outcome_of(trace)
    if outcome.died or outcome.learned:
        return None  # dead runs are zero_gradient's; learning runs are fine
    trend = loss_trend(trace)
    if trend is None or not trend.stalled:
        return None  # too early to tell
    return Symptom(
        "stalled_loss",
        f"alive, but the loss falls by {-trend.slope:.2g} ± {trend.se:.2g} per update where "
        f"{trend.needed:.2g} is needed, and the evaluation loss closed "
        f"{outcome.gap_closed:.1%} of the gap ({trace.eval_loss[0]:.4g} -> "
        f"{trace.eval_loss[1]:.4g})",
        {
            "gap_closed": outcome.gap_closed,
            "trend": trend.to_dict(),
            "threshold": LEARNED_GAP_FRACTION,
            "source": "outcome.loss_trend: slope's 97.5 % bound against the needed rate",
        },
    )


def detect_update_ratio(trace: Trace) -> Symptom | None:
    alive = min(_alive_steps(trace), trace.update_ratio.shape[0])
    if alive == 0:
        return None
    low, high = UPDATE_RATIO_RANGE
    for i in _kernels(trace):
        ratios = trace.update_ratio[:alive, i]
        median = float(np.nanmedian(ratios)) if np.isfinite(ratios).any() else float("nan")
        if not math.isnan(median) and not low <= median <= high:
            # Too small and too large call for opposite remedies.
            return Symptom(
                "update_ratio_high" if median > high else "update_ratio_low",
                f"{trace.variables[i]} moves by {median:.1e} of its norm per step (median)",
                {
                    "variable": trace.variables[i],
                    "median": median,
                    "threshold": list(UPDATE_RATIO_RANGE),
                    "source": "docs/design.md, 'Diagnosis'; Karpathy's 1e-3",
                },
            )
    return None


def detect_optimizer_step(trace: Trace) -> Symptom | None:
    """Adam-like step: large next to lr·‖g‖, and the run died after step 0."""
    first = trace.first_zero_gradient_step()
    if first is None or first == 0 or trace.update_ratio.shape[0] == 0:
        return None
    lr = float(trace.train["learning_rate"])
    gains = []
    for i in _kernels(trace):
        update = trace.update_ratio[0, i] * trace.weight_norm[0, i]
        grad = trace.grad_norm[0, i]
        if grad > 0 and np.isfinite(update):
            gains.append((float(update / (lr * grad)), trace.variables[i]))
    if not gains:
        return None
    gain, variable = max(gains)
    if gain < STEP_GAIN_LIMIT:
        return None
    return Symptom(
        "optimizer_step",
        f"{trace.train['optimizer']} moved {variable} {gain:.0f}x farther than lr·‖g‖ at step 0, "
        f"and the gradient died at step {first}: the step size, not the gradient, drove it",
        {
            "step": 0,
            "gain": gain,
            "variable": variable,
            "death_step": first,
            "threshold": STEP_GAIN_LIMIT,
            "source": "Adam's step is about lr per entry (docs/design.md)",
        },
        # It explains a death that zero_gradient already reports as fatal.
        "info",
    )


#: Every per-run detector, in report order.
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


DETECTORS: tuple[Detector, ...] = (
    Detector(detect_zero_gradient, ("zero_gradient",)),
    Detector(detect_zero_logits, ("zero_logits",)),
    Detector(detect_dead_units, ("dead_units",)),
    Detector(detect_zero_gradient_entries, ("zero_gradient_entries",)),
    Detector(detect_optimizer_step, ("optimizer_step",)),
    Detector(detect_vanishing_gradient, ("vanishing_gradient",)),
    Detector(detect_vanishing_through_time, ("vanishing_through_time",)),
    Detector(detect_exploding_gradient, ("exploding_gradient",)),
    Detector(detect_saturated_softmax, ("saturated_softmax",)),
    Detector(detect_saturated_tanh, ("saturated_tanh",)),
    Detector(detect_update_ratio, ("update_ratio_high", "update_ratio_low")),
    Detector(detect_stalled_loss, ("stalled_loss",)),
)
#: The finding about a configuration rather than one run: seeds disagree.
OUTCOME_VARIANCE = "outcome_variance"
#: Every finding's name (for instance to choose which stop a run: Monitor's
#: ``stop_on``), from what the detectors declare.
FINDING_NAMES: tuple[str, ...] = (*(n for d in DETECTORS for n in d.emits), OUTCOME_VARIANCE)

# -- causes and remedies ---------------------------------------------------------

REMEDIES: dict[str, Remedy] = {
    r.name: r
    for r in (
        Remedy(
            "linear_last_conv",
            "a linear last conv (the paper's design)",
            cell={"output_activation": "linear"},
        ),
        Remedy("elu_convs", "ELU in the convs", cell={"activation": "elu"}),
        Remedy(
            "leaky_relu_convs",
            "leaky ReLU (slope 0.2) in the convs",
            cell={"activation": "leaky_relu"},
        ),
        Remedy(
            "elu_and_linear",
            "ELU in the convs and a linear last conv (REMEDIED)",
            cell={"activation": "elu", "output_activation": "linear"},
        ),
        Remedy(
            "tanh_glorot",
            "tanh everywhere with Glorot init",
            cell={
                "activation": "tanh",
                "output_activation": "tanh",
                "initializer": "glorot_uniform",
            },
        ),
        Remedy(
            "adagrad",
            "Adagrad, whose step scales with the gradient",
            train={"optimizer": "adagrad"},
        ),
        Remedy("lower_learning_rate", "a learning rate 10x lower", train={"learning_rate": 0.1}),
        Remedy("higher_learning_rate", "a learning rate 10x higher", train={"learning_rate": 10.0}),
        Remedy("glorot_init", "Glorot-uniform init", cell={"initializer": "glorot_uniform"}),
    )
}
"""Known remedies.  ``learning_rate`` values in ``train`` are *factors*."""


def _always(cell: dict[str, Any], train: dict[str, Any]) -> bool:
    return True


def _relu_before_softmax(cell: dict[str, Any], train: dict[str, Any]) -> bool:
    return bool(cell.get("output_activation") == "relu")


def _relu_convs(cell: dict[str, Any], train: dict[str, Any]) -> bool:
    return bool(cell.get("activation") == "relu")


def _adam_like(cell: dict[str, Any], train: dict[str, Any]) -> bool:
    return train.get("optimizer") in ADAPTIVE_OPTIMIZERS


def _not_adam_like(cell: dict[str, Any], train: dict[str, Any]) -> bool:
    return not _adam_like(cell, train)


def _gradient_scaled(cell: dict[str, Any], train: dict[str, Any]) -> bool:
    return train.get("optimizer") in GRADIENT_SCALED_OPTIMIZERS


def _not_gradient_scaled(cell: dict[str, Any], train: dict[str, Any]) -> bool:
    return not _gradient_scaled(cell, train)


@dataclass(frozen=True)
class CauseRule:
    """A likely cause: it applies when any of its ``triggers`` was found and
    ``when(cell, train)`` holds; a ``fallback`` rule applies only when no
    other rule does.  ``explanation`` may name ``{optimizer}``."""

    name: str
    triggers: frozenset[str]
    explanation: str
    remedies: tuple[str, ...]
    when: Callable[[dict[str, Any], dict[str, Any]], bool] = _always
    fallback: bool = False

    def cause(self, names: set[str], cell: dict[str, Any], train: dict[str, Any]) -> Cause | None:
        found = sorted(self.triggers & names)
        if not (found and self.when(cell, train)):
            return None
        text = self.explanation.format(optimizer=train.get("optimizer"))
        return Cause(self.name, text, found, list(self.remedies))


_STEP_INDEPENDENT = (
    "{optimizer} steps each weight by about lr whatever the gradient's scale; conv2's "
    "inputs are all >= 0 after ReLU, so the steps add up and push the single output unit "
    "below 0 within a few steps"
)

#: Every cause rule, in the order causes are reported.
CAUSE_RULES: tuple[CauseRule, ...] = (
    CauseRule(
        "relu_before_softmax",
        frozenset({"zero_gradient", "zero_logits"}),
        "a ReLU before the softmax clips every negative logit to exactly 0; when all "
        "are, the output is exactly uniform and the gradient exactly 0, for good",
        ("linear_last_conv", "elu_and_linear"),
        when=_relu_before_softmax,
    ),
    CauseRule(
        "step_independent_of_gradient",
        frozenset({"optimizer_step"}),
        _STEP_INDEPENDENT,
        ("linear_last_conv", "adagrad"),
        when=_adam_like,
    ),
    CauseRule(
        "step_independent_of_gradient",
        frozenset({"optimizer_step"}),
        _STEP_INDEPENDENT,
        ("linear_last_conv",),
        when=_not_adam_like,
    ),
    CauseRule(
        "dying_relu",
        frozenset({"dead_units", "zero_gradient_entries"}),
        "ReLU conv units whose pre-activation is negative on every input output 0 and get "
        "no gradient; with few kernels a whole layer can die at birth",
        ("elu_convs", "leaky_relu_convs"),
        when=_relu_convs,
    ),
    CauseRule(
        "vanishing_gradient",
        frozenset({"vanishing_gradient", "vanishing_through_time"}),
        "the gradient shrinks through the layers (or steps) to nothing",
        ("elu_convs", "tanh_glorot"),
    ),
    CauseRule(
        "step_too_large",
        frozenset({"exploding_gradient", "update_ratio_high"}),
        "the updates are large next to the weights",
        ("lower_learning_rate",),
    ),
    CauseRule(
        "step_too_small",
        frozenset({"update_ratio_low"}),
        "the updates barely move the weights",
        ("higher_learning_rate",),
    ),
    CauseRule(
        "saturated_tanh",
        frozenset({"saturated_tanh"}),
        "tanh units sit on their flat ends, where almost no gradient passes",
        ("glorot_init", "elu_convs"),
    ),
    CauseRule(
        "saturated_softmax",
        frozenset({"saturated_softmax"}),
        "the softmax is near one-hot, where its gradient w(1-w) vanishes",
        ("glorot_init", "lower_learning_rate"),
    ),
    CauseRule(
        "steps_too_small",
        frozenset({"stalled_loss"}),
        "the cell is alive but its gradient is tiny (about 3e-3 on the portfolio loss) and "
        "this optimizer's step scales with it, so nothing visible happens",
        ("higher_learning_rate", "elu_and_linear"),
        when=_gradient_scaled,
    ),
    CauseRule(
        "not_learning",
        frozenset({"stalled_loss"}),
        "the cell is alive but the loss does not move enough",
        ("elu_and_linear",),
        when=_not_gradient_scaled,
    ),
    CauseRule(
        "fragile_initialisation",
        frozenset({OUTCOME_VARIANCE}),
        "whether the cell learns depends on the seed: the initial weights are a coin flip",
        ("elu_and_linear",),
        fallback=True,
    ),
)


def likely_causes(names: set[str], cell: dict[str, Any], train: dict[str, Any]) -> list[Cause]:
    """The causes the findings ``names`` point to, for this configuration."""
    found = [c for r in CAUSE_RULES if not r.fallback if (c := r.cause(names, cell, train))]
    if found:
        return found
    return [c for r in CAUSE_RULES if r.fallback if (c := r.cause(names, cell, train))]


def seed_state(symptoms: Sequence[Symptom], outcome: Outcome) -> SeedState:
    """``dead`` (a fatal symptom), ``learned``, ``stalled`` or ``undecided``."""
    if any(sym.severity == "fatal" for sym in symptoms):
        return "dead"
    if outcome.learned:
        return "learned"
    if any(sym.name == "stalled_loss" for sym in symptoms):
        return "stalled"
    return "undecided"


def _outcome_variance(states: dict[int, SeedState]) -> Finding | None:
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
    return Finding(OUTCOME_VARIANCE, failed, len(states), message, [evidence], "warning", message)


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1))


def rules_out_learning(failed: int, n: int, rate: float) -> bool:
    """Whether ``failed`` of ``n`` seeds failing is too many for a configuration
    that learns, whose seeds fail at most at ``rate`` (the false alarm risk is
    then below FALSE_ALARM_RISK).  One run is judged as itself: its fatal
    finding is permanent, so that run will not learn."""
    if n == 1:
        return failed == 1
    return failed > n / 2 and binomial_tail(failed, n, rate) <= FALSE_ALARM_RISK


def _too_few(failed: int, n: int, rate: float) -> str:
    return (
        f"; too few seeds to say the configuration will not learn (one that learns can fail "
        f"on {rate:.0%} of seeds: {failed} of {n} happens {binomial_tail(failed, n, rate):.0%} "
        "of the time); run more seeds"
    )


def _verdict(states: dict[int, SeedState], findings: Sequence[Finding], updates: int) -> Verdict:
    """The rules of docs/design.md, "Verdicts", in order."""
    n = len(states)
    count = {name: sum(s == name for s in states.values()) for name in ("dead", "learned")}
    stalled = sum(s == "stalled" for s in states.values())
    fatal = ", ".join(f.name for f in findings if f.severity == "fatal")
    if count["dead"]:
        reason = f"fatal on {count['dead']} of {n} seeds ({fatal})"
        if rules_out_learning(count["dead"], n, LEARNER_DEATH_RATE):
            return Verdict("will not learn", reason, states)
        if count["dead"] > n / 2:
            reason += _too_few(count["dead"], n, LEARNER_DEATH_RATE)
        return Verdict("at risk", reason, states)
    if count["learned"] and stalled:
        return Verdict(
            "at risk", f"learned on {count['learned']} seeds, stalled on {stalled}", states
        )
    if stalled and not count["learned"] and updates >= DECISION_HORIZON:
        reason = (
            f"stalled on {stalled} of {n} seeds at {updates} updates, learned on none: the "
            f"loss falls too slowly to close {LEARNED_GAP_FRACTION:.0%} of the gap within "
            f"{DECISION_HORIZON} updates"
        )
        if rules_out_learning(stalled, n, LEARNER_STALL_RATE):
            return Verdict("will not learn", reason, states)
        return Verdict("at risk", reason + _too_few(stalled, n, LEARNER_STALL_RATE), states)
    if stalled:
        return Verdict(
            "at risk", f"alive but stalled on {stalled} of {n} seeds, learned on none", states
        )
    predictive = sorted({f.name for f in findings} & PREDICTIVE_WARNINGS)
    if predictive:
        return Verdict("at risk", f"warnings that predict failure: {', '.join(predictive)}", states)
    if count["learned"]:
        undecided = n - count["learned"]
        rest = f"; {undecided} not yet decided" if undecided else ""
        return Verdict(
            "healthy", f"nothing fatal; learned on {count['learned']} of {n} seeds{rest}", states
        )
    return Verdict(
        "too early to tell",
        f"nothing fatal, but no seed has learned or stalled yet in {n} runs",
        states,
    )


def _most_severe(symptoms: Sequence[Symptom]) -> Severity:
    return min((sym.severity for sym in symptoms), key=SEVERITIES.index)


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
    findings = [
        Finding(
            name,
            [s for s, _ in hits],
            len(seeds),
            f"{len(hits)}/{len(seeds)} seeds; seed {hits[0][0]}: {hits[0][1].message}",
            [{"seed": s, "severity": sym.severity, **sym.evidence} for s, sym in hits],
            _most_severe([sym for _, sym in hits]),
            hits[0][1].message,
        )
        for name, hits in by_name.items()
    ]
    variance = _outcome_variance(states)
    if variance is not None:
        findings.append(variance)
    findings.sort(key=lambda f: SEVERITIES.index(f.severity))
    names = {f.name for f in findings}
    cell, train = dict(traces[0].cell), dict(traces[0].train)
    causes = likely_causes(names, cell, train)
    verdict = _verdict(states, findings, min(t.steps for t in traces))
    return Diagnosis(cell, train, list(seeds), outcomes, findings, causes, verdict)
