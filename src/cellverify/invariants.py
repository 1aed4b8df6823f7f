"""The built-in invariants (docs/design.md, 'Invariants').

Each check takes a cell factory and a :class:`~cellverify.case.Case` and
returns nothing when the invariant holds; otherwise it calls
:func:`~cellverify.registry.fail`, as a user's invariant does, with a message
that names the tensors, their shapes and the tolerance.  Each registers
itself, with the :class:`~cellverify.regions.Region` where it is claimed, in
:data:`~cellverify.registry.INVARIANTS`; :func:`cellverify.catalog.registered`
imports this module to get them.

Tolerances are named constants; the comment beside each says how it was chosen.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from cellverify.case import Case
from cellverify.config import CellConfig, TrainConfig
from cellverify.data import Batch, batch_for, market_for
from cellverify.errors import BadCellFactory, describe_exception
from cellverify.gradcheck import check_variable
from cellverify.model import CellFactory, loss_for
from cellverify.precision import float64_keras, output_tolerance
from cellverify.regions import INIT_REGION, LEARNABLE_REGION, ROBUST_REGION
from cellverify.registry import INVARIANTS, Invariant, fail, invariant
from cellverify.run import Trainer
from cellverify.tolerances import FLOAT32_EPS, simplex_sum_tolerance
from cellverify.trace import SATURATED_MAX_WEIGHT

__all__ = [
    "COMPILE_FROM_UPDATES",
    "DETERMINISM_TRAIN_STEPS",
    "GRADIENT_TRAIN_STEPS",
    "INIT_SATURATION",
    "INVARIANTS",
    "LOSS_DECREASE_MARGIN",
    "LOSS_DROP_FLOOR_ULPS",
    "LOSS_TRAIN_STEPS",
    "MODE_FLOOR",
    "PERMUTATION_FLOOR",
    "SHIFT_PROBE",
    "SHIFT_UNIFORMITY",
    "STATE_EFFECT_MIN",
    "Invariant",
    "loss_drop",
]

#: Floors of the rounding bounds (cellverify.tolerances): the absolute
#: tolerances that held on every case measured at ordinary magnitudes, kept
#: as the least ever allowed.  Above them the bound grows with the logits'
#: magnitude, so raw prices x1e4 (logits ~1e2-1e4) do not fail a correct cell.
#: Permutation and the RNN loop against stepping by hand: the same ops in
#: another order, measured differences ~1e-7.
PERMUTATION_FLOOR = 1e-6
#: Eager, tf.function and XLA: XLA fuses and reorders float32 arithmetic and
#: may use other exp/tanh approximations; measured worst difference ~1e-7.
MODE_FLOOR = 1e-5
#: The output must move by more than this when the state goes from uniform to
#: a peaked portfolio.  Float32 noise on probabilities is ~1e-8; a wired state
#: moves them by ~1e-2 (conv3's state weight times a state change of ~0.5).
STATE_EFFECT_MIN = 1e-6
#: Steps of training before gradients_nonzero looks (Adam kills the question's
#: cell within 2-3 steps, docs/design.md, 'Measured facts').
GRADIENT_TRAIN_STEPS = 10
#: A nudge, in units of max(1, max |variable|), by which a variable with an
#: exactly-zero gradient is moved both ways to see what depends on it: small
#: enough to stay on one linear piece of the activations (where the zero
#: gradient was measured), far above float32 rounding.
SHIFT_PROBE = 1e-2
#: With the logits in view, the nudge moved every logit alike when their
#: spread is below this share of the move (float32 rounding of logits ~1 is
#: ~1e-7 against a move of 1e-2).
SHIFT_UNIFORMITY = 1e-3
#: Steps of training on one fixed batch for loss_decreases.
LOSS_TRAIN_STEPS = 20
#: loss_decreases asks for a drop of more than this share of the batch's
#: uniform-to-reference gap, the most a learner can gain over a dead cell
#: there, in LOSS_TRAIN_STEPS steps (and of at least LOSS_DROP_FLOOR_ULPS).
#: Measured shares: python -m cellverify.region --region robust-supervised
#: --samples 120: smallest 1.67e-3, 1 % quantile 3.6e-3, median 6.3e-2; 100
#: random cases of the region's weakest corner (3 assets, 5-6 periods, 1-2
#: features, batch 1-2): smallest 1.28e-3.  The margin sits 12.8x below the
#: smallest.  It used to be 1e-5 of max(|initial loss|, gap); on the
#: supervised task |loss| ~ ln(assets) always dominates, so it asked more
#: than a batch with a near-uniform target allows: the ci gate's covering
#: cases found a healthy cell (RMSprop 3e-3, kernels 2-4-1, gap 3.4e-3) whose
#: loss fell by 9.9e-6, 0.29 % of its gap, against 1.1e-5 asked.
LOSS_DECREASE_MARGIN = 1e-4
#: A drop must also exceed this many float32 ulps of max(1, |initial loss|):
#: the loss of unchanged weights is bit-identical, so a dead cell shows no
#: drop at all, and 16 ulps is more than the reordered sums of a mean over a
#: few dozen terms can move it.  The smallest drop measured above, 7.3e-5,
#: is 560 ulps of a loss near 1.1; the shrunk case of the note above, 83.
LOSS_DROP_FLOOR_ULPS = 16
#: The untrained output must not be saturated: every row's largest weight
#: below this, the diagnosis's saturation level (the softmax's gradient
#: w(1 - w) is under 0.01 there), and no weight exactly 0.  "Roughly uniform"
#: in the question's answer means "neither 0/1 nor all exactly equal"; a
#: tighter bound (0.6 of the way from uniform to one-hot, the largest of 300
#: measured cases being 0.41) failed a correct 2-asset cell with cash at 0.685
#: (logits of a few units from fan-ins of 3): peaked is not saturated.
INIT_SATURATION = SATURATED_MAX_WEIGHT
#: Steps trained twice for the determinism check.
DETERMINISM_TRAIN_STEPS = 2


# -- shared machinery --------------------------------------------------------


def _rnn(cell: Any) -> keras.layers.RNN:
    return keras.layers.RNN(cell, return_sequences=True, return_state=True)


def _forward(rnn: keras.layers.RNN, x: Any, *, training: bool = False) -> tuple[Any, Any]:
    outputs, *states = rnn(x, training=training)
    return outputs, states[0]


def _outputs(rnn: keras.layers.RNN, x: Any, case: Case, *, training: bool = False) -> np.ndarray:
    """The RNN's outputs as NumPy, after checking their shape, so that an
    invariant comparing entries reports a malformed output instead of crashing."""
    out = np.asarray(_forward(rnn, x, training=training)[0])
    _check_shape(out, x, case)
    return out


def _check_shape(out: Any, x: Any, case: Case) -> None:
    expected = (*np.shape(x)[:2], case.cell.outputs)
    if tuple(out.shape) != expected:
        fail(
            f"output has shape {list(out.shape)}, expected [batch, steps, outputs] = "
            f"{list(expected)}; see output_shape"
        )


def _loss_and_gradients(
    rnn: keras.layers.RNN,
    case: Case,
    x: Any,
    y: Any,
    *,
    training: bool = True,
) -> tuple[Any, list[Any], Any]:
    """Loss, gradients of the trainable variables (None where unconnected), outputs."""
    loss_fn = loss_for(case.train.task)
    with tf.GradientTape() as tape:
        out, _ = _forward(rnn, x, training=training)
        _check_shape(out, x, case)
        loss = loss_fn(out, y)
    grads = tape.gradient(loss, rnn.trainable_variables)
    return loss, grads, out


#: An invariant that makes at least this many updates compiles them
#: (tf.function); with fewer, tracing costs more than it saves.  Measured per
#: example under ci (README, "Cost"): loss_decreases (20 updates) 2.7 s eager
#: against 1.5 s compiled; gradients_nonzero (10) 1.5 s against 2.7 s;
#: deterministic (2 x 2) 1.8 s against 3.3 s.
COMPILE_FROM_UPDATES = 15


def _trainer(factory: CellFactory, case: Case, train: Any) -> Trainer:
    """A Trainer for ``train.train_steps`` updates; a cell whose outputs do not
    fit the contract is this invariant's violation."""
    compiled = train.train_steps >= COMPILE_FROM_UPDATES
    try:
        return Trainer(factory, case.cell, train, compiled=compiled)
    except BadCellFactory as exc:
        fail(str(exc))


def _run_batches(cell: CellConfig, train: TrainConfig, count: int) -> list[Batch]:
    """The first ``count`` batches of a run, from one market: generating its
    4,000-odd periods per batch was a tenth of gradients_nonzero's time."""
    market = market_for(cell, train)
    return [batch_for(cell, train, market=market, draw=k) for k in range(count)]


def _require_identical(what: str, got: Any, expected: Any, hint: str = "") -> None:
    """Raise unless ``got`` and ``expected`` are equal bit for bit; the message
    says ``what`` differs, the shapes, by how much, and ``hint``."""
    a, b = np.asarray(got), np.asarray(expected)
    if a.shape == b.shape and np.array_equal(a, b):
        return
    by = f"by {np.max(np.abs(a - b)):.3g}" if a.shape == b.shape else f"in shape ({_shape(b)})"
    fail(f"{what} {_shape(a)} differs {by} (tolerance: exact){'; ' + hint if hint else ''}")


def _shape(x: Any) -> list[int]:
    return list(np.shape(x))


def _where(mask: np.ndarray) -> str:
    index = tuple(int(i) for i in np.argwhere(mask)[0])
    return f"at index {list(index)}"


def _require_close(
    what: str, got: np.ndarray, expected: np.ndarray, tol: Any, scale: float
) -> None:
    """Raise unless ``|got - expected| <= tol`` everywhere (``tol`` from the
    rounding bound of :mod:`cellverify.tolerances`, logit scale ``scale``)."""
    diff = np.abs(np.asarray(got, np.float64) - np.asarray(expected, np.float64))
    excess = diff - tol
    if np.all(excess <= 0):
        return
    worst = np.unravel_index(
        int(np.nanargmax(np.where(np.isnan(excess), np.inf, excess))), diff.shape
    )
    fail(
        f"{what} {_shape(got)} differs by {diff[worst]:.3g} at index {[int(i) for i in worst]}, "
        f"where rounding allows {np.broadcast_to(tol, diff.shape)[worst]:.3g} (probability "
        f"{float(np.asarray(expected)[worst]):.3g}, logits up to {scale:.3g}; "
        "cellverify.tolerances.probability_tolerance)"
    )


# -- the invariants ----------------------------------------------------------


@invariant("output_shape", adversarial_inputs=True)
def output_shape(factory: CellFactory, case: Case) -> None:
    """Output is [batch, steps, outputs] and the final state [batch, outputs]."""
    batch = case.batch()
    out, state = _forward(_rnn(factory(case.cell)), batch.inputs)
    b, t = batch.inputs.shape[:2]
    n = case.cell.outputs
    if tuple(out.shape) != (b, t, n):
        fail(
            f"RNN output has shape {_shape(out)}, expected [batch, steps, outputs] = "
            f"{[b, t, n]} for inputs {_shape(batch.inputs)}"
        )
    if tuple(state.shape) != (b, n):
        fail(f"final state has shape {_shape(state)}, expected [batch, outputs] = {[b, n]}")


@invariant("simplex_output", adversarial_inputs=True)
def simplex_output(factory: CellFactory, case: Case) -> None:
    """Every output row is finite, >= 0 and sums to 1 within the rounding of its
    length (:func:`cellverify.tolerances.simplex_sum_tolerance`).

    Checked in inference and in training mode (dropout on), on adversarial
    inputs too: the output is a portfolio whatever the prices.
    """
    batch = case.batch()
    rnn = _rnn(factory(case.cell))
    for training in (False, True):
        out = np.asarray(_forward(rnn, batch.inputs, training=training)[0], np.float64)
        where = f"output {_shape(out)} (training={training}, inputs {case.inputs.kind})"
        if not np.all(np.isfinite(out)):
            fail(f"{where} has a non-finite entry {_where(~np.isfinite(out))}")
        if np.any(out < 0):
            fail(f"{where} has a negative entry {out.min():.3g} {_where(out < 0)}")
        error = np.abs(out.sum(axis=-1) - 1.0)
        allowed = simplex_sum_tolerance(out.shape[-1])
        if np.any(error > allowed):
            fail(
                f"{where}: a row sums to {1 + error.max():.8g} (|sum - 1| = {error.max():.3g} > "
                f"tolerance {allowed:.3g} for rows of {out.shape[-1]}) "
                f"{_where(error == error.max())}"
            )


@invariant("state_is_output", adversarial_inputs=True)
def state_is_output(factory: CellFactory, case: Case) -> None:
    """The state passed to step t+1 is exactly the output of step t.

    Steps the cell by hand, checking each returned state against the output,
    then checks that the RNN's outputs match the hand-stepped ones.
    """
    batch = case.batch()
    cell = factory(case.cell)
    rnn = _rnn(cell)
    seq = _outputs(rnn, batch.inputs, case)
    tol, scale = output_tolerance(
        factory, case, cell, rnn, batch.inputs, seq, floor=PERMUTATION_FLOOR
    )
    state = rnn.get_initial_state(batch.inputs.shape[0])[0]
    for t in range(batch.inputs.shape[1]):
        out, new_states = cell(batch.inputs[:, t], [state], training=False)
        new = new_states[0] if isinstance(new_states, (list, tuple)) else new_states
        o = np.asarray(out)
        _require_identical(f"at step {t} the new state", new, o)
        _require_close(
            f"RNN output at step {t}, against stepping the cell on the previous output,",
            seq[:, t],
            o,
            tol[:, t],
            scale,
        )
        state = new


def _peaked_state(case: Case, batch_size: int) -> np.ndarray:
    """A state far from uniform: 0.7 on one entry, the rest shared equally."""
    n = case.cell.outputs
    state = np.full((batch_size, n), 0.3 / (n - 1), np.float32)
    hot = np.random.default_rng(case.cell.seed).integers(0, n, size=batch_size)
    state[np.arange(batch_size), hot] = 0.7
    return state


@invariant("state_matters", region=ROBUST_REGION)
def state_matters(factory: CellFactory, case: Case) -> None:
    """Changing the previous state changes the output: the feedback is wired."""
    batch = case.batch()
    cell = factory(case.cell)
    x = batch.inputs[:, 0]
    b = x.shape[0]
    uniform = np.full((b, case.cell.outputs), 1.0 / case.cell.outputs, np.float32)
    out_u = np.asarray(cell(x, [uniform], training=False)[0])
    out_p = np.asarray(cell(x, [_peaked_state(case, b)], training=False)[0])
    effect = float(np.max(np.abs(out_u - out_p)))
    if not effect > STATE_EFFECT_MIN:
        fail(
            f"output {_shape(out_u)} moved by {effect:.3g} when the state went from uniform to "
            f"peaked (needs > {STATE_EFFECT_MIN:g}): the previous state is not used"
        )


@invariant("asset_permutation_equivariance", adversarial_inputs=True)
def asset_permutation_equivariance(factory: CellFactory, case: Case) -> None:
    """Permuting assets in the input permutes the output the same way.

    The convs are one row tall and shared across assets (EIIE's identical
    independent evaluators); the uniform initial state is unchanged by any
    permutation; cash, if present, stays first.
    """
    batch = case.batch()
    rnn = _rnn(factory(case.cell))
    assets = case.cell.assets
    perm = np.random.default_rng(case.cell.seed).permutation(assets)
    if np.array_equal(perm, np.arange(assets)):
        perm = perm[::-1].copy()
    cash = case.cell.outputs - assets
    out_index = np.concatenate([np.arange(cash), cash + perm])
    out = _outputs(rnn, batch.inputs, case)
    permuted = _outputs(rnn, batch.inputs[:, :, perm], case)
    tol, scale = output_tolerance(
        factory, case, rnn.cell, rnn, batch.inputs, out, floor=PERMUTATION_FLOOR
    )
    _require_close(
        f"the output for assets permuted by {perm.tolist()}, against the permuted output,",
        permuted,
        out[..., out_index],
        tol[..., out_index],
        scale,
    )


@invariant("gradients_finite", adversarial_inputs=True)
def gradients_finite(factory: CellFactory, case: Case) -> None:
    """The loss and every gradient are finite, for every configuration and input."""
    batch = case.batch()
    rnn = _rnn(factory(case.cell))
    loss, grads, _ = _loss_and_gradients(rnn, case, batch.inputs, batch.target(case.train.task))
    if not np.isfinite(float(loss)):
        fail(
            f"{case.train.task} loss is {float(loss)} on inputs "
            f"{_shape(batch.inputs)} ({case.inputs.kind})"
        )
    for v, g in zip(rnn.trainable_variables, grads, strict=True):
        if g is not None and not np.all(np.isfinite(np.asarray(g))):
            bad = int(np.sum(~np.isfinite(np.asarray(g))))
            fail(
                f"gradient of {v.path} {_shape(g)} has {bad} non-finite entries "
                f"(inputs {case.inputs.kind}, {case.train.task} loss {float(loss):.4g})"
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
) -> str:
    """Why an exactly-zero gradient of ``variable`` is a fault, or "" when it
    is right: the softmax cannot see the variable here.

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
                return ""  # a uniform shift: the softmax cannot see it
            reasons.append(
                f"nudging it by {nudge:+.3g} moves no logit (its units are dead)"
                if size == 0
                else f"nudging it by {nudge:+.3g} moves the logits unevenly (by up to {size:.3g})"
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
                f"beyond the {allowed.flat[worst]:.3g} rounding allows"
            )
    return ""


@invariant("gradients_nonzero", region=ROBUST_REGION)
def gradients_nonzero(factory: CellFactory, case: Case) -> None:
    """After GRADIENT_TRAIN_STEPS steps, every trainable variable still gets a nonzero gradient.

    The claim the question breaks.  A variable with an exactly-zero gradient is
    excused only when the softmax, measured, cannot see it at this point (the
    bias of a linear last conv shifts every logit alike):
    ``_why_zero_gradient_is_wrong``.  A cell whose every gradient is exactly 0
    is dead, whatever a nudge says.
    """
    train = case.train.replace(train_steps=GRADIENT_TRAIN_STEPS)
    trainer = _trainer(factory, case, train)
    if not trainer.variables:
        fail("the cell has no trainable variables")
    batches = _run_batches(case.cell, train, GRADIENT_TRAIN_STEPS + 1)
    for batch in batches[:-1]:
        trainer.update(batch)
    final = batches[-1]
    record = trainer.measure(final)
    after = f"after {GRADIENT_TRAIN_STEPS} {train.optimizer} steps (lr {train.learning_rate:.3g})"
    if np.all(record.grad_zero_fraction == 1.0):
        fail(
            f"{after} the whole gradient is exactly 0: every one of the "
            f"{len(trainer.variables)} variables gets none (loss {record.loss:.6g}); "
            "the cell is dead"
        )
    for i, variable_name in enumerate(trainer.variable_names):
        if record.grad_zero_fraction[i] < 1.0:
            continue
        why = _why_zero_gradient_is_wrong(
            factory, case, trainer, trainer.variables[i], final.inputs
        )
        if why:
            fail(
                f"{after} the gradient of {variable_name} {_shape(trainer.variables[i])} is "
                f"exactly 0 in every entry, yet {why} (loss {record.loss:.6g})"
            )


@invariant("gradient_check", adversarial_inputs=True)
def gradient_check(factory: CellFactory, case: Case) -> None:
    """Autodiff gradients agree with finite differences, in float64.

    One random direction per variable; inference mode, so dropout is off.
    Near a kink the step shrinks until the one-sided differences agree;
    exactly at one, coordinates are checked instead (:mod:`cellverify.gradcheck`).
    """
    with float64_keras():
        batch = case.batch()
        x = batch.inputs.astype(np.float64)
        y = batch.target(case.train.task).astype(np.float64)
        rnn = _rnn(factory(case.cell))
        _, grads, _ = _loss_and_gradients(rnn, case, x, y, training=False)
        loss_fn = loss_for(case.train.task)

        def loss_of() -> float:
            return float(loss_fn(_forward(rnn, x)[0], y))

        rng = np.random.default_rng(case.train.seed)
        for v, g in zip(rnn.trainable_variables, grads, strict=True):
            grad = np.zeros(v.shape) if g is None else np.asarray(g, np.float64)
            mismatch = check_variable(loss_of, v, grad, rng)
            if mismatch is not None:
                fail(
                    f"derivative of the {case.train.task} loss with respect to {v.path} "
                    f"{_shape(v)} {mismatch.describe()} (float64)"
                )


def loss_drop(factory: CellFactory, case: Case) -> tuple[float, float, float]:
    """(start, best, gap): inference loss on the case's fixed batch before
    training, the lowest it reaches after any of LOSS_TRAIN_STEPS steps on it
    (NaN if any is NaN), and |uniform loss - reference loss|, the most a
    learner gains over a dead cell on that batch.

    The lowest, not the last: an Adam-like optimizer at the top of its range
    oscillates, and the thorough profile found a healthy cell (Adam at 3e-2)
    2 % below its start at step 4 and 0.1 % above it at step 20."""
    batch = case.batch()
    trainer = _trainer(factory, case, case.train.replace(train_steps=LOSS_TRAIN_STEPS))
    start = trainer.loss(batch)
    losses = []
    for _ in range(LOSS_TRAIN_STEPS):
        trainer.update(batch)
        losses.append(trainer.loss(batch))
    best = float(np.min(losses))  # NaN propagates: a NaN loss is no drop
    task = case.train.task
    return start, best, abs(batch.uniform_loss(task) - batch.reference_loss(task))


@invariant("loss_decreases", region=LEARNABLE_REGION)
def loss_decreases(factory: CellFactory, case: Case) -> None:
    """On one fixed batch, within LOSS_TRAIN_STEPS steps the loss falls by more
    than LOSS_DECREASE_MARGIN of the uniform-to-reference gap, and by more than
    LOSS_DROP_FLOOR_ULPS float32 ulps of the initial loss."""
    start, best, gap = loss_drop(factory, case)
    floor = LOSS_DROP_FLOOR_ULPS * FLOAT32_EPS * max(1.0, abs(start))
    needed = max(LOSS_DECREASE_MARGIN * gap, floor)
    if not start - best > needed:
        fail(
            f"{case.train.task} loss on a fixed batch of {case.train.batch_size}x"
            f"{case.train.steps} went from {start:.6g} to at best {best:.6g} in {LOSS_TRAIN_STEPS} "
            f"{case.train.optimizer} steps (lr {case.train.learning_rate:.3g}); needed a drop "
            f"above {needed:.3g} (margin {LOSS_DECREASE_MARGIN:g} of the gap {gap:.3g}, at "
            f"least {LOSS_DROP_FLOOR_ULPS} ulps of the loss)"
        )


@invariant("dropout_zero_is_identity", adversarial_inputs=True)
def dropout_zero_is_identity(factory: CellFactory, case: Case) -> None:
    """A dropout rate of 0 after every layer gives the same outputs and gradients
    as no dropout layer, in training mode, exactly."""
    batch = case.batch()
    with_dropout = case.cell.replace(dropout=0.0, dropout_after=(1, 2, 3))
    without = case.cell.replace(dropout=0.0, dropout_after=())
    y = batch.target(case.train.task)
    _, grads_a, out_a = _loss_and_gradients(_rnn(factory(with_dropout)), case, batch.inputs, y)
    _, grads_b, out_b = _loss_and_gradients(_rnn(factory(without)), case, batch.inputs, y)
    _require_identical(
        "training-mode output with rate-0 dropout after layers 1-3, against none,",
        out_a,
        out_b,
        "if the initial weights differ, adding a layer re-drew them",
    )
    for i, (ga, gb) in enumerate(zip(grads_a, grads_b, strict=False)):
        _require_identical(f"gradient {i} with rate-0 dropout, against none,", ga, gb)


@contextlib.contextmanager
def _without_retracing_warnings() -> Iterator[None]:
    # Every example compiles a new model's forward pass, so TensorFlow's
    # "N of the last N calls triggered retracing" warning, which assumes one
    # function called again, is always raised here and is wrong.
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")
    try:
        yield
    finally:
        logger.setLevel(level)


@invariant("execution_modes_agree", adversarial_inputs=True)
def execution_modes_agree(factory: CellFactory, case: Case) -> None:
    """Eager, tf.function and XLA (jit_compile=True) give the same outputs,
    within the rounding bound at the logits' scale (floor MODE_FLOOR)."""
    batch = case.batch()
    rnn = _rnn(factory(case.cell))

    def forward(x: Any) -> Any:
        return _forward(rnn, x)[0]

    eager = _outputs(rnn, batch.inputs, case)
    tol, scale = output_tolerance(
        factory, case, rnn.cell, rnn, batch.inputs, eager, floor=MODE_FLOOR
    )
    modes = {
        # No AutoGraph: forward has no Python control flow on tensors (the RNN
        # loops in its own while_loop). In long runs (200 examples of scaled
        # inputs, after gradient_check) AutoGraph failed to convert it and
        # warned on every example before running it as-is.
        "tf.function": tf.function(forward, reduce_retracing=True, autograph=False),
        "XLA": tf.function(forward, jit_compile=True, reduce_retracing=True, autograph=False),
    }
    for mode, fn in modes.items():
        try:
            with _without_retracing_warnings():
                out = np.asarray(fn(tf.constant(batch.inputs)))
        except Exception as exc:  # a compile failure is a finding, not a crash
            fail(f"{mode} failed on inputs {_shape(batch.inputs)}: {describe_exception(exc)}")
        _require_close(
            f"the {mode} output, against eager (inputs {case.inputs.kind}),",
            out,
            eager,
            tol,
            scale,
        )


def _training_losses(factory: CellFactory, case: Case) -> list[float]:
    run = case.train.replace(train_steps=DETERMINISM_TRAIN_STEPS)
    trainer = _trainer(factory, case, run)
    return [
        trainer.update(batch) for batch in _run_batches(case.cell, run, DETERMINISM_TRAIN_STEPS)
    ]


@invariant("deterministic", adversarial_inputs=True)
def deterministic(factory: CellFactory, case: Case) -> None:
    """The same seed gives bit-identical outputs and training losses.

    Two builds from the same configuration must agree, one model called twice
    at inference must agree, and two short training runs must agree.
    """
    batch = case.batch()
    rnn_a, rnn_b = _rnn(factory(case.cell)), _rnn(factory(case.cell))
    a1 = np.asarray(_forward(rnn_a, batch.inputs)[0])
    a2 = np.asarray(_forward(rnn_a, batch.inputs)[0])
    b1 = np.asarray(_forward(rnn_b, batch.inputs)[0])
    _require_identical(
        "one model's output, called twice at inference,",
        a2,
        a1,
        "is something random at inference?",
    )
    _require_identical(
        f"the output of two cells built with seed {case.cell.seed}",
        b1,
        a1,
        "is the seed honoured?",
    )
    first, second = (_training_losses(factory, case) for _ in range(2))
    _require_identical(
        f"the losses of two {DETERMINISM_TRAIN_STEPS}-step runs with the same seeds "
        f"({first} and {second})",
        second,
        first,
    )


@invariant("serialization_roundtrip", adversarial_inputs=True)
def serialization_roundtrip(factory: CellFactory, case: Case) -> None:
    """get_config/from_config and saving to .keras reproduce outputs exactly."""
    from cellverify.model import build_model

    batch = case.batch()
    cell = factory(case.cell)
    model = build_model(cell, case.cell)
    out = np.asarray(model(batch.inputs))
    try:
        clone = type(cell).from_config(cell.get_config())
    except Exception as exc:
        fail(
            f"{type(cell).__name__}.from_config(cell.get_config()) failed: "
            f"{describe_exception(exc)}"
        )
    clone_model = build_model(clone, case.cell)
    clone_model(batch.inputs)
    try:
        clone_model.set_weights(model.get_weights())
    except ValueError as exc:
        fail(f"the cell rebuilt from get_config() has other weights: {exc}")
    _require_identical(
        "the output of the cell rebuilt by from_config(get_config())",
        clone_model(batch.inputs),
        out,
        "get_config() misses something",
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.keras"
        try:
            model.save(path)
            loaded = keras.models.load_model(path)
        except Exception as exc:
            fail(f"saving to / loading from .keras failed: {describe_exception(exc)}")
    _require_identical(
        "the output of the model reloaded from .keras",
        loaded(batch.inputs),
        out,
    )


@invariant("batch_independence", adversarial_inputs=True, min_batch=2)
def batch_independence(factory: CellFactory, case: Case) -> None:
    """In inference mode each example's output depends on that example alone:
    running a batch's examples one at a time gives the batch's outputs, within
    the rounding bound at the logits' scale (floor PERMUTATION_FLOOR).

    Batch statistics at inference, or a reduction over the wrong axis, leak
    one example into another; a batch of 1 cannot show it, so the cases are
    drawn with batches of 2 or more.  The same ops run on another batch size
    may be blocked and summed in another order (oneDNN picks kernels by
    shape): rounding, as for a permutation of the assets.
    """
    batch = case.batch()
    cell = factory(case.cell)
    rnn = _rnn(cell)
    together = _outputs(rnn, batch.inputs, case)
    tol, scale = output_tolerance(
        factory, case, cell, rnn, batch.inputs, together, floor=PERMUTATION_FLOOR
    )
    size = batch.inputs.shape[0]
    for i in range(size):
        alone = _outputs(rnn, batch.inputs[i : i + 1], case)
        _require_close(
            f"example {i}'s output run alone, against its row of the batch of {size} "
            f"(inputs {case.inputs.kind}),",
            alone[0],
            together[i],
            tol[i],
            scale,
        )


@invariant("init_near_uniform", region=INIT_REGION)
def init_near_uniform(factory: CellFactory, case: Case) -> None:
    """Untrained outputs are roughly uniform but not exactly: not saturated,
    no row exactly uniform, logits not all exactly 0, and a nonzero gradient.

    Exactly uniform rows are the dead ones (docs/design.md, "Measured facts"):
    a ReLU before the softmax zeroes the logits, and the gradient with them.
    """
    batch = case.batch()
    cell = factory(case.cell)
    rnn = _rnn(cell)
    out = _outputs(rnn, batch.inputs, case).astype(np.float64)
    largest = float(out.max())
    if largest >= INIT_SATURATION or np.any(out == 0):
        fail(
            f"untrained output {_shape(out)} puts {largest:.4g} on one entry (saturation at "
            f"{INIT_SATURATION:g}) with {int(np.sum(out == 0))} entries exactly 0: the "
            "softmax is saturated at birth"
        )
    exact = out.max(axis=-1) == out.min(axis=-1)
    if np.any(exact):
        fail(
            f"{int(exact.sum())} of {exact.size} untrained output rows {_shape(out)} are exactly "
            "uniform: their logits are all equal (dead, docs/design.md, 'Measured facts')"
        )
    if hasattr(cell, "step_activations"):
        state = rnn.get_initial_state(batch.inputs.shape[0])[0]
        logits = np.asarray(cell.step_activations(batch.inputs[:, 0], state)["logits"])
        if np.all(logits == 0):
            fail(f"every logit {_shape(logits)} is exactly 0 at step 0")
    _, grads, _ = _loss_and_gradients(rnn, case, batch.inputs, batch.target(case.train.task))
    if all(g is None or not np.any(np.asarray(g)) for g in grads):
        fail("the untrained gradient is exactly 0 for every variable")
