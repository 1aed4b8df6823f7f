"""Gradients: finite, alive after training where the output depends on them,
and equal to finite differences in float64."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import tensorflow as tf

from cellverify.checks.cases.case import Case
from cellverify.checks.cases.regions import ROBUST_REGION
from cellverify.checks.judges.invariants.harness import (
    PERMUTATION_FLOOR,
    build_rnn,
    inputs_described,
    loss_and_gradients,
    make_trainer,
    require_finite,
    require_finite_gradients,
    run_batches,
    run_forward,
    shape_of,
    target_of,
)
from cellverify.checks.judges.numerics.gradcheck import NoisyLoss, check_variable
from cellverify.checks.judges.numerics.precision import float64_keras, output_tolerance
from cellverify.checks.judges.registry import fail, invariant
from cellverify.model.factory import CellFactory
from cellverify.model.rnn import loss_for
from cellverify.training.trainer import Trainer

__all__ = [
    "GRADIENTS_MIN_STEPS",
    "GRADIENT_TRAIN_STEPS",
    "SHIFT_PROBE",
    "SHIFT_UNIFORMITY",
    "gradient_check",
    "gradients_finite",
    "gradients_nonzero",
]

#: Steps of training before gradients_nonzero looks (Adam kills the question's
#: cell within 2-3 steps, docs/design.md, 'Measured facts').
GRADIENT_TRAIN_STEPS = 10
#: The shortest sequence gradients_nonzero draws for a spec'd cell.  From a
#: zero state, one step's output does not depend on a recurrent kernel (it
#: multiplies the zero state), so its gradient is exactly 0 in any cell and
#: the claim could not tell a cut gradient from the arithmetic; from the
#: second step the state is nonzero.  (A portfolio cell starts from the
#: uniform portfolio, not zero: its cases keep their lengths.)
GRADIENTS_MIN_STEPS = 2
#: A nudge, in units of max(1, max |variable|), by which a variable with an
#: exactly-zero gradient is moved both ways to see what depends on it: small
#: enough to stay on one linear piece of the activations (where the zero
#: gradient was measured), far above float32 rounding.
SHIFT_PROBE = 1e-2
#: With the logits in view, the nudge moved every logit alike when their
#: spread is below this share of the move (float32 rounding of logits ~1 is
#: ~1e-7 against a move of 1e-2).
SHIFT_UNIFORMITY = 1e-3


@invariant("gradients_finite", adversarial_inputs=True, clauses=("loss", "gradient"))
def gradients_finite(factory: CellFactory, case: Case) -> None:
    """The loss and every gradient are finite, for every configuration and input.

    A non-finite output is reported as itself first (the loss of a NaN is
    NaN): this claim is about what training makes of finite outputs.
    """
    batch = case.batch()
    rnn = build_rnn(factory(case.cell))
    y = target_of(case, batch, rnn.cell)
    loss, grads, _ = loss_and_gradients(rnn, case, batch.inputs, y)
    if not np.isfinite(float(loss)):
        fail(
            f"{case.train.task} loss is {float(loss)} on finite outputs, inputs "
            f"{shape_of(batch.inputs)} ({inputs_described()})",
            clause="loss",
        )
    for v, g in zip(rnn.trainable_variables, grads, strict=True):
        if g is not None and not np.all(np.isfinite(np.asarray(g))):
            bad = int(np.sum(~np.isfinite(np.asarray(g))))
            fail(
                f"gradient of {v.path} {shape_of(g)} has {bad} non-finite entries "
                f"({inputs_described()}, {case.train.task} loss {float(loss):.4g})",
                clause="gradient",
            )


def _nudged(variable: Any, measure: Callable[[], np.ndarray]) -> Iterator[tuple[float, Any]]:
    """``measure()`` after nudging ``variable`` by +/- SHIFT_PROBE (in units of
    max(1, max |variable|)), restoring it afterwards."""
    original = variable.numpy()
    unit = max(1.0, float(np.max(np.abs(original)))) if original.size else 1.0
    try:
        for nudge in (SHIFT_PROBE * unit, -SHIFT_PROBE * unit):
            variable.assign(original + nudge)
            yield nudge, measure()
    finally:
        variable.assign(original)


def _why_zero_gradient_is_wrong(
    factory: CellFactory, case: Case, trainer: Trainer, variable: Any, x: Any
) -> tuple[str, str] | None:
    """Why an exactly-zero gradient of ``variable`` is a fault, and the clause
    that says so, or None when it is right: the softmax cannot see the
    variable here.

    With the logits in view (``step_activations``), the zero is right when a
    nudge shifts every logit alike; a nudge that moves no logit at all marks a
    dead unit.  Without them, the outputs are measured instead: the zero is
    right when neither nudge moves the output beyond rounding (then, and only
    then, the output does not depend on it).
    """
    rnn, cell = trainer.rnn, trainer.cell
    if hasattr(cell, "step_activations"):
        state = rnn.get_initial_state(x.shape[0])[0]

        def logits() -> np.ndarray:
            return np.asarray(cell.step_activations(x[:, 0], state)["logits"], np.float64)

        before = logits()
        reasons = []
        for nudge, after in _nudged(variable, logits):
            delta = after - before
            size = float(np.max(np.abs(delta)))
            if size > 0 and float(np.max(np.ptp(delta, axis=-1))) <= SHIFT_UNIFORMITY * size:
                return None  # a uniform shift: the softmax cannot see it
            reasons.append(
                (f"nudging it by {nudge:+.3g} moves no logit (its units are dead)", "dead_units")
                if size == 0
                else (
                    f"nudging it by {nudge:+.3g} moves the logits unevenly (by up to {size:.3g})",
                    "logits_move",
                )
            )
        return reasons[0]

    def outputs() -> np.ndarray:
        return np.asarray(rnn(x, training=False), np.float64)

    before = outputs()
    tol_before, _ = output_tolerance(factory, case, cell, rnn, x, before, floor=PERMUTATION_FLOOR)
    for nudge, after in _nudged(variable, outputs):
        tol_after, _ = output_tolerance(factory, case, cell, rnn, x, after, floor=PERMUTATION_FLOOR)
        allowed = np.maximum(tol_before, tol_after)
        moved = np.abs(after - before)
        if np.any(moved > allowed):
            worst = int(np.argmax(moved - allowed))
            return (
                f"nudging it by {nudge:+.3g} moves the output by {moved.flat[worst]:.3g}, "
                f"beyond the {allowed.flat[worst]:.3g} rounding allows",
                "output_moves",
            )
    return None


@invariant(
    "gradients_nonzero",
    region=ROBUST_REGION,
    clauses=("no_variables", "all_zero", "dead_units", "logits_move", "output_moves"),
    min_steps=GRADIENTS_MIN_STEPS,
)
def gradients_nonzero(factory: CellFactory, case: Case) -> None:
    """After GRADIENT_TRAIN_STEPS steps, every trainable variable still gets a nonzero gradient.

    The claim the question breaks.  A variable with an exactly-zero gradient is
    excused only when the softmax, measured, cannot see it at this point (the
    bias of a linear last conv shifts every logit alike):
    ``_why_zero_gradient_is_wrong``.  A cell whose every gradient is exactly 0
    is dead, whatever a nudge says.
    """
    train = case.train.replace(train_steps=GRADIENT_TRAIN_STEPS)
    trainer = make_trainer(factory, case, train)
    if not trainer.variables:
        fail("the cell has no trainable variables", clause="no_variables")
    batches = run_batches(case.cell, train, GRADIENT_TRAIN_STEPS + 1)
    for step, batch in enumerate(batches[:-1]):
        require_finite(f"the training loss at update {step}", trainer.update(batch))
    final = batches[-1]
    record = trainer.measure(final)
    require_finite(f"the loss after {GRADIENT_TRAIN_STEPS} updates", record.loss)
    after = f"after {GRADIENT_TRAIN_STEPS} {train.optimizer} steps (lr {train.learning_rate:.3g})"
    if np.all(record.grad_zero_fraction == 1.0):
        fail(
            f"{after} the whole gradient is exactly 0: every one of the "
            f"{len(trainer.variables)} variables gets none (loss {record.loss:.6g}); "
            "the cell is dead",
            clause="all_zero",
        )
    for i, variable_name in enumerate(trainer.variable_names):
        if record.grad_zero_fraction[i] < 1.0:
            continue
        why = _why_zero_gradient_is_wrong(
            factory, case, trainer, trainer.variables[i], final.inputs
        )
        if why:
            reason, clause = why
            fail(
                f"{after} the gradient of {variable_name} {shape_of(trainer.variables[i])} is "
                f"exactly 0 in every entry, yet {reason} (loss {record.loss:.6g})",
                clause=clause,
            )


@invariant("gradient_check", adversarial_inputs=True, clauses=("derivative", "noisy_loss"))
def gradient_check(factory: CellFactory, case: Case) -> None:
    """Autodiff gradients agree with finite differences, in float64.

    One random direction per variable; inference mode, so dropout is off.
    Near a kink the step shrinks until the one-sided differences agree;
    exactly at one, coordinates are checked instead
    (:mod:`cellverify.checks.judges.numerics.gradcheck`).
    """
    with float64_keras():
        batch = case.batch()
        x = batch.inputs.astype(np.float64)
        rnn = build_rnn(factory(case.cell))
        y = np.asarray(target_of(case, batch, rnn.cell), np.float64)
        centre, grads, _ = loss_and_gradients(rnn, case, x, y, training=False)
        require_finite_gradients(centre, grads, rnn.trainable_variables)
        loss_fn = loss_for(case.train.task)
        # Compiled: a case evaluates the loss about 20 times, and eagerly each
        # evaluation cost 18 ms of dispatch at these shapes.  Every difference
        # is taken between evaluations of this one function.
        loss = tf.function(lambda: loss_fn(run_forward(rnn, x)[0], y), autograph=False)

        def loss_of() -> float:
            return float(loss())

        rng = np.random.default_rng(case.train.seed)
        for v, g in zip(rnn.trainable_variables, grads, strict=True):
            grad = np.zeros(v.shape) if g is None else np.asarray(g, np.float64)
            mismatch = check_variable(loss_of, v, grad, rng)
            if mismatch is not None:
                fail(
                    f"derivative of the {case.train.task} loss with respect to {v.path} "
                    f"{shape_of(v)} {mismatch.describe()} (float64)",
                    clause="noisy_loss" if isinstance(mismatch, NoisyLoss) else "derivative",
                )
