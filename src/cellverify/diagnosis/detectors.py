"""The detectors: each reads one trace and returns a :class:`Symptom` or nothing.

Each declares the findings it may emit (:class:`Detector`); :data:`FINDING_NAMES`
is what they declare, and the cause rules' triggers are checked against it.
"""

from __future__ import annotations

import math

import numpy as np

from cellverify.diagnosis.findings import (
    DEAD_UNIT_SHARE,
    EXPLODING_RATIO,
    NEARLY_UNIFORM_SHARE,
    OUTCOME_VARIANCE,
    SATURATED_UNIT_SHARE,
    STEP_GAIN_LIMIT,
    UNIFORM_HOLD_UPDATES,
    UPDATE_RATIO_RANGE,
    VANISHING_FIRST_NORM,
    VANISHING_RATIO,
    VANISHING_TIME_RATIO,
    Detector,
    Severity,
    Symptom,
)
from cellverify.diagnosis.outcome import (
    LEARNED_GAP_FRACTION,
    loss_trend,
    outcome_of,
)
from cellverify.trace import CONV_LAYERS, SATURATED_MAX_WEIGHT, Trace

__all__ = [
    "DETECTORS",
    "FINDING_NAMES",
    "detect_dead_units",
    "detect_exploding_gradient",
    "detect_optimizer_step",
    "detect_saturated_softmax",
    "detect_saturated_tanh",
    "detect_stalled_loss",
    "detect_update_ratio",
    "detect_vanishing_gradient",
    "detect_vanishing_through_time",
    "detect_zero_gradient",
    "detect_zero_gradient_entries",
    "detect_zero_logits",
]

# -- detectors -----------------------------------------------------------------


def _kernels(trace: Trace) -> list[int]:
    return [i for i, name in enumerate(trace.variables) if name.endswith("kernel")]


def _alive_steps(trace: Trace) -> int:
    """Rows up to (not including) the first exactly-zero gradient."""
    first = trace.first_zero_gradient_step()
    return trace.loss.shape[0] if first is None else first


def _held_to_the_end(rows: np.ndarray, dead: np.ndarray) -> int | None:
    """The first step of the last stretch of measured ``rows`` (step numbers)
    at which ``dead`` holds, when that stretch reaches the last of them."""
    if rows.size == 0 or not dead[-1]:
        return None
    alive = np.flatnonzero(~dead)
    return int(rows[alive[-1] + 1]) if alive.size else int(rows[0])


def detect_zero_gradient(trace: Trace) -> Symptom | None:
    """The whole gradient exactly 0 at some measured step: fatal when it
    stayed 0 at every measured step to the end (the run is dead), a warning
    when it came back; the message says which, and when it came back."""
    first = trace.first_zero_gradient_step()
    if first is None:
        return None
    rows = np.flatnonzero(trace.measured_rows())
    zero = np.all(trace.grad_zero_fraction[rows] == 1.0, axis=1)
    start = _held_to_the_end(rows, zero)
    since = rows >= first
    back = None
    if start is None:
        back = int(rows[since][np.flatnonzero(~zero[since])[0]])
        message = (
            f"the whole gradient is exactly 0 from step {first} and came back at step {back} "
            f"(exactly 0 at {int(zero[since].sum())} of the {int(since.sum())} measured steps "
            "since): not dead"
        )
    else:
        message = f"the whole gradient is exactly 0 from step {start} to the end"
        if start != first:
            message += f" (first at step {first}; it came back in between)"
    return Symptom(
        "zero_gradient",
        message,
        {
            "step": first,
            "to_the_end": start is not None,
            "came_back_at": back,
            "threshold": "every entry exactly 0",
            "source": "definition of a dead run (docs/design.md)",
        },
        Severity.WARNING if start is None else Severity.FATAL,
    )


def _share(x: float) -> str:
    """A share as a percentage that never rounds a part up to the whole."""
    if x == 1.0 or x == 0.0 or np.isnan(x):
        return f"{x:.0%}"
    return f"{min(x, 0.999):.1%}"


def detect_zero_logits(trace: Trace) -> Symptom | None:
    """Output rows exactly uniform (every logit equal) at some step.  Fatal
    when every row is at the end, or when at least NEARLY_UNIFORM_SHARE of
    them were at every measured step of the last UNIFORM_HOLD_UPDATES updates
    or more and the run has not learned: too few rows carry a gradient, and
    they have not brought the rest back (docs/design.md, "Verdicts")."""
    rows = trace.uniform_rows
    hits = np.flatnonzero(rows > 0)
    if hits.size == 0:
        return None
    step = int(hits[0])
    logits = trace.zero_fraction[:, trace.layer("logits")]
    measured = np.flatnonzero(np.isfinite(rows))
    end = float(rows[measured[-1]])
    start = _held_to_the_end(measured, rows[measured] >= NEARLY_UNIFORM_SHARE)
    held = None if start is None else int(measured[-1]) - start
    # A run whose evaluation loss already fell has shown it is not dead.
    nearly = held is not None and held >= UNIFORM_HOLD_UPDATES and not outcome_of(trace).learned
    fatal = end == 1.0 or nearly
    message = (
        f"{_share(rows[step])} of output rows exactly uniform at step {step} (logits exactly "
        f"0: {_share(logits[step])}); {_share(end)} at the end"
    )
    if nearly:
        message += (
            f", and at least {NEARLY_UNIFORM_SHARE:.0%} at every step from {start}: too few "
            "rows carry a gradient to bring the rest back"
        )
    elif not fatal:
        message += (
            "; these rows alone do not make the run dead, but no configuration that learns "
            "showed one on the labelled sets (docs/verdicts.md, 'One run')"
        )
    return Symptom(
        "zero_logits",
        message,
        {
            "step": step,
            "uniform_rows": float(rows[step]),
            "zero_logits": float(logits[step]),
            "uniform_rows_at_end": end,
            "held": held,
            "threshold": f"> 0 rows exactly uniform; fatal: every row at the end, or >= "
            f"{NEARLY_UNIFORM_SHARE} of them for {UNIFORM_HOLD_UPDATES} updates to the end",
            "source": "float32 logits are never all equal by chance; the share and hold "
            "measured (docs/verdicts.md, 'One run')",
        },
        Severity.FATAL if fatal else Severity.WARNING,
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
            Severity.FATAL,
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
                Severity.INFO,
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
        Severity.INFO,
    )


#: Every per-run detector, in report order.
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
#: Every finding's name (for instance to choose which stop a run: Monitor's
#: ``stop_on``), from what the detectors declare.
FINDING_NAMES: tuple[str, ...] = (*(n for d in DETECTORS for n in d.emits), OUTCOME_VARIANCE)
