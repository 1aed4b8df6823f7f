"""The invariants of SPEC §5 as library functions.

Each check takes a cell factory (SPEC §4.2) and a :class:`~cellverify.case.Case`
and returns nothing when the invariant holds; otherwise it raises
:class:`~cellverify.errors.InvariantViolation` whose message names the
invariant, the tensors, their shapes and the tolerance.  :data:`INVARIANTS`
lists them by their stable names, with the region where each is claimed, a
key of :data:`~cellverify.strategies.REGIONS`: ``any`` (every configuration),
``robust`` or ``robust-supervised``.

Tolerances are named constants; the comment beside each says how it was chosen.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from cellverify.case import Case
from cellverify.errors import BadCellFactory, InvariantViolation, describe_exception
from cellverify.model import CellFactory, loss_for
from cellverify.run import Trainer

__all__ = [
    "DETERMINISM_TRAIN_STEPS",
    "GRADIENT_CHECK_ATOL",
    "GRADIENT_CHECK_EPSILON",
    "GRADIENT_CHECK_KINK",
    "GRADIENT_CHECK_RTOL",
    "GRADIENT_TRAIN_STEPS",
    "INIT_UNIFORM_BOUND",
    "INVARIANTS",
    "LOSS_DECREASE_MARGIN",
    "LOSS_TRAIN_STEPS",
    "MODE_TOLERANCE",
    "PERMUTATION_TOLERANCE",
    "SHIFT_PROBE",
    "SHIFT_UNIFORMITY",
    "SIMPLEX_SUM_TOLERANCE",
    "STATE_EFFECT_MIN",
    "Invariant",
    "check",
    "loss_drop",
]

#: |sum(row) - 1| allowed for a float32 softmax row.  The sum of n rounded
#: terms is off by at most ~n * 2**-24 (6e-8); n <= 100 outputs gives 6e-6.
#: Measured worst over the ci profile's cases: see README "Tolerances".
SIMPLEX_SUM_TOLERANCE = 1e-5
#: Max |difference| of probabilities between permuted and unpermuted runs.
#: Only the order of the softmax's sum changes, a few float32 ulps of 1.0.
PERMUTATION_TOLERANCE = 1e-6
#: Max |difference| of probabilities between eager, tf.function and XLA.  XLA
#: fuses and reorders float32 arithmetic; measured worst difference ~1e-7.
MODE_TOLERANCE = 1e-5
#: The output must move by more than this when the state goes from uniform to
#: a peaked portfolio.  Float32 noise on probabilities is ~1e-8; a wired state
#: moves them by ~1e-2 (conv3's state weight times a state change of ~0.5).
STATE_EFFECT_MIN = 1e-6
#: Central differences in float64: step, relative and absolute tolerance.  The
#: truncation error is ~epsilon**2 (1e-10), rounding ~1e-16/epsilon (1e-11).
GRADIENT_CHECK_EPSILON = 1e-5
GRADIENT_CHECK_RTOL = 1e-4
GRADIENT_CHECK_ATOL = 1e-8
#: One-sided differences further apart than this share of the larger mark a
#: kink; at a smooth point they differ by ~epsilon * curvature, far less.
GRADIENT_CHECK_KINK = 0.1
#: Steps of training before gradients_nonzero looks (Adam kills the question's
#: cell within 2-3 steps, SPEC §9).
GRADIENT_TRAIN_STEPS = 10
#: A nudge added to a variable to see how it moves the logits: small enough to
#: stay on one linear piece of the activations, far above float32 rounding.
SHIFT_PROBE = 1e-2
#: The nudge moved every logit alike when their spread is below this share of
#: the move (float32 rounding of logits ~1 is ~1e-7 against a move of 1e-2).
SHIFT_UNIFORMITY = 1e-3
#: Steps of training on one fixed batch for loss_decreases.
LOSS_TRAIN_STEPS = 20
#: loss_decreases asks for a drop of more than this share of
#: max(|initial loss|, uniform-to-reference gap) in LOSS_TRAIN_STEPS steps.
#: Measured (python -m cellverify.region --region robust-supervised
#: --samples 100): smallest relative drop 7.8e-5, 5 % quantile 1.7e-4, median
#: 7.6e-3; the margin sits 7.8x below the smallest, and ~160 float32 ulps of a
#: loss near 1, so a dead cell (no change) or an ascent always fails.
LOSS_DECREASE_MARGIN = 1e-5
#: The untrained output's largest |w - 1/outputs|, as a share of the largest
#: possible (1 - 1/outputs, a one-hot row), must stay below this.  Measured
#: over 300 cases of the robust region: largest share 0.41; a one-hot
#: (saturated) output is 1.0.
INIT_UNIFORM_BOUND = 0.6
#: Steps trained twice for the determinism check.
DETERMINISM_TRAIN_STEPS = 2


@dataclass(frozen=True)
class Invariant:
    """A named invariant, its check, and the region where it is claimed."""

    name: str
    check: Callable[[CellFactory, Case], None]
    region: str
    adversarial_inputs: bool


INVARIANTS: dict[str, Invariant] = {}


def _invariant(
    name: str, *, region: str = "any", adversarial_inputs: bool = False
) -> Callable[[Callable[[CellFactory, Case], None]], Callable[[CellFactory, Case], None]]:
    def register(fn: Callable[[CellFactory, Case], None]) -> Callable[[CellFactory, Case], None]:
        INVARIANTS[name] = Invariant(name, fn, region, adversarial_inputs)
        return fn

    return register


def check(name: str, factory: CellFactory, case: Case) -> None:
    """Run the invariant called ``name``."""
    INVARIANTS[name].check(factory, case)


# -- shared machinery --------------------------------------------------------


def _rnn(cell: Any) -> keras.layers.RNN:
    return keras.layers.RNN(cell, return_sequences=True, return_state=True)


def _forward(rnn: keras.layers.RNN, x: Any, *, training: bool = False) -> tuple[Any, Any]:
    outputs, *states = rnn(x, training=training)
    return outputs, states[0]


def _outputs(
    invariant: str, rnn: keras.layers.RNN, x: Any, case: Case, *, training: bool = False
) -> np.ndarray:
    """The RNN's outputs as NumPy, after checking their shape, so that an
    invariant comparing entries reports a malformed output instead of crashing."""
    out = np.asarray(_forward(rnn, x, training=training)[0])
    _check_shape(invariant, out, x, case)
    return out


def _check_shape(invariant: str, out: Any, x: Any, case: Case) -> None:
    expected = (*np.shape(x)[:2], case.cell.outputs)
    if tuple(out.shape) != expected:
        raise InvariantViolation(
            invariant,
            f"output has shape {list(out.shape)}, expected [batch, steps, outputs] = "
            f"{list(expected)}; see output_shape",
        )


def _loss_and_gradients(
    invariant: str,
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
        _check_shape(invariant, out, x, case)
        loss = loss_fn(out, y)
    grads = tape.gradient(loss, rnn.trainable_variables)
    return loss, grads, out


def _trainer(invariant: str, factory: CellFactory, case: Case, train: Any) -> Trainer:
    """An eager Trainer (cheaper than tracing at these shapes); a cell whose
    outputs do not fit the contract is this invariant's violation."""
    try:
        return Trainer(factory, case.cell, train, compiled=False)
    except BadCellFactory as exc:
        raise InvariantViolation(invariant, str(exc)) from exc


def _require_identical(invariant: str, what: str, got: Any, expected: Any, hint: str = "") -> None:
    """Raise unless ``got`` and ``expected`` are equal bit for bit; the message
    says ``what`` differs, the shapes, by how much, and ``hint``."""
    a, b = np.asarray(got), np.asarray(expected)
    if a.shape == b.shape and np.array_equal(a, b):
        return
    by = f"by {np.max(np.abs(a - b)):.3g}" if a.shape == b.shape else f"in shape ({_shape(b)})"
    raise InvariantViolation(
        invariant,
        f"{what} {_shape(a)} differs {by} (tolerance: exact){'; ' + hint if hint else ''}",
    )


def _shape(x: Any) -> list[int]:
    return list(np.shape(x))


def _where(mask: np.ndarray) -> str:
    index = tuple(int(i) for i in np.argwhere(mask)[0])
    return f"at index {list(index)}"


@contextlib.contextmanager
def _float64() -> Iterator[None]:
    policy = keras.config.dtype_policy()
    floatx = keras.config.floatx()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    try:
        yield
    finally:
        keras.config.set_floatx(floatx)
        keras.config.set_dtype_policy(policy)


# -- the invariants ----------------------------------------------------------


@_invariant("output_shape")
def output_shape(factory: CellFactory, case: Case) -> None:
    """Output is [batch, steps, outputs] and the final state [batch, outputs]."""
    batch = case.batch()
    out, state = _forward(_rnn(factory(case.cell)), batch.inputs)
    b, t = batch.inputs.shape[:2]
    n = case.cell.outputs
    if tuple(out.shape) != (b, t, n):
        raise InvariantViolation(
            "output_shape",
            f"RNN output has shape {_shape(out)}, expected [batch, steps, outputs] = "
            f"{[b, t, n]} for inputs {_shape(batch.inputs)}",
        )
    if tuple(state.shape) != (b, n):
        raise InvariantViolation(
            "output_shape",
            f"final state has shape {_shape(state)}, expected [batch, outputs] = {[b, n]}",
        )


@_invariant("simplex_output", adversarial_inputs=True)
def simplex_output(factory: CellFactory, case: Case) -> None:
    """Every output row is finite, >= 0 and sums to 1 within SIMPLEX_SUM_TOLERANCE.

    Checked in inference and in training mode (dropout on), on adversarial
    inputs too: the output is a portfolio whatever the prices.
    """
    batch = case.batch()
    rnn = _rnn(factory(case.cell))
    for training in (False, True):
        out = np.asarray(_forward(rnn, batch.inputs, training=training)[0], np.float64)
        where = f"output {_shape(out)} (training={training}, inputs {case.inputs.kind})"
        if not np.all(np.isfinite(out)):
            raise InvariantViolation(
                "simplex_output", f"{where} has a non-finite entry {_where(~np.isfinite(out))}"
            )
        if np.any(out < 0):
            raise InvariantViolation(
                "simplex_output",
                f"{where} has a negative entry {out.min():.3g} {_where(out < 0)}",
            )
        error = np.abs(out.sum(axis=-1) - 1.0)
        if np.any(error > SIMPLEX_SUM_TOLERANCE):
            raise InvariantViolation(
                "simplex_output",
                f"{where}: a row sums to {1 + error.max():.8g} (|sum - 1| = {error.max():.3g} > "
                f"tolerance {SIMPLEX_SUM_TOLERANCE:g}) {_where(error == error.max())}",
            )


@_invariant("state_is_output")
def state_is_output(factory: CellFactory, case: Case) -> None:
    """The state passed to step t+1 is exactly the output of step t.

    Steps the cell by hand, checking each returned state against the output,
    then checks that the RNN's outputs match the hand-stepped ones.
    """
    batch = case.batch()
    cell = factory(case.cell)
    rnn = _rnn(cell)
    seq, _ = _forward(rnn, batch.inputs)
    state = rnn.get_initial_state(batch.inputs.shape[0])[0]
    for t in range(batch.inputs.shape[1]):
        out, new_states = cell(batch.inputs[:, t], [state], training=False)
        new = new_states[0] if isinstance(new_states, (list, tuple)) else new_states
        o = np.asarray(out)
        _require_identical("state_is_output", f"at step {t} the new state", new, o)
        step_out = np.asarray(seq[:, t])
        if np.max(np.abs(step_out - o)) > PERMUTATION_TOLERANCE:
            raise InvariantViolation(
                "state_is_output",
                f"RNN output at step {t} {_shape(step_out)} differs from stepping the cell on the "
                f"previous output by {np.max(np.abs(step_out - o)):.3g} "
                f"(tolerance {PERMUTATION_TOLERANCE:g})",
            )
        state = new


def _peaked_state(case: Case, batch_size: int) -> np.ndarray:
    """A state far from uniform: 0.7 on one entry, the rest shared equally."""
    n = case.cell.outputs
    state = np.full((batch_size, n), 0.3 / (n - 1), np.float32)
    hot = np.random.default_rng(case.cell.seed).integers(0, n, size=batch_size)
    state[np.arange(batch_size), hot] = 0.7
    return state


@_invariant("state_matters", region="robust")
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
        raise InvariantViolation(
            "state_matters",
            f"output {_shape(out_u)} moved by {effect:.3g} when the state went from uniform to "
            f"peaked (needs > {STATE_EFFECT_MIN:g}): the previous state is not used",
        )


@_invariant("asset_permutation_equivariance", adversarial_inputs=True)
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
    out = _outputs("asset_permutation_equivariance", rnn, batch.inputs, case)
    permuted = _outputs("asset_permutation_equivariance", rnn, batch.inputs[:, :, perm], case)
    diff = np.abs(permuted - out[..., out_index])
    if diff.max() > PERMUTATION_TOLERANCE:
        raise InvariantViolation(
            "asset_permutation_equivariance",
            f"output {_shape(out)} for assets permuted by {perm.tolist()} differs from the "
            f"permuted output by {diff.max():.3g} (tolerance {PERMUTATION_TOLERANCE:g}) "
            f"{_where(diff == diff.max())}",
        )


@_invariant("gradients_finite", adversarial_inputs=True)
def gradients_finite(factory: CellFactory, case: Case) -> None:
    """The loss and every gradient are finite, for every configuration and input."""
    batch = case.batch()
    rnn = _rnn(factory(case.cell))
    loss, grads, _ = _loss_and_gradients(
        "gradients_finite", rnn, case, batch.inputs, batch.target(case.train.task)
    )
    if not np.isfinite(float(loss)):
        raise InvariantViolation(
            "gradients_finite",
            f"{case.train.task} loss is {float(loss)} on inputs "
            f"{_shape(batch.inputs)} ({case.inputs.kind})",
        )
    for v, g in zip(rnn.trainable_variables, grads, strict=True):
        if g is not None and not np.all(np.isfinite(np.asarray(g))):
            bad = int(np.sum(~np.isfinite(np.asarray(g))))
            raise InvariantViolation(
                "gradients_finite",
                f"gradient of {v.path} {_shape(g)} has {bad} non-finite entries "
                f"(inputs {case.inputs.kind}, {case.train.task} loss {float(loss):.4g})",
            )


def _softmax_cannot_see(trainer: Trainer, variable: Any, x: Any) -> bool:
    """Whether nudging ``variable`` shifts every logit by the same amount.

    The softmax ignores such a shift, so the variable's gradient is exactly 0
    by construction - conv3's bias, whenever the last activation is linear
    for every asset (a linear last conv, or ELU/leaky ReLU on their positive
    side) - which is no sign of a dying cell.  A dead unit's variable moves no
    logit at all, and is not excused.  Needs the cell's ``step_activations``.
    """
    cell = trainer.cell
    if not hasattr(cell, "step_activations"):
        return False
    state = trainer.rnn.get_initial_state(x.shape[0])[0]

    def logits() -> np.ndarray:
        return np.asarray(cell.step_activations(x[:, 0], state)["logits"], np.float64)

    before = logits()
    original = variable.numpy()
    try:
        # Both directions: a logit sitting near a kink may cross it one way.
        for nudge in (SHIFT_PROBE, -SHIFT_PROBE):
            variable.assign(original + nudge)
            delta = logits() - before
            size = float(np.max(np.abs(delta)))
            if size > 0 and float(np.max(np.ptp(delta, axis=-1))) <= SHIFT_UNIFORMITY * size:
                return True
    finally:
        variable.assign(original)
    return False


@_invariant("gradients_nonzero", region="robust")
def gradients_nonzero(factory: CellFactory, case: Case) -> None:
    """After GRADIENT_TRAIN_STEPS steps, every trainable variable still gets a nonzero gradient.

    The claim the question breaks.  A variable whose every nudge shifts all
    logits alike is exempt: the softmax cannot see it (``_softmax_cannot_see``).
    """
    from cellverify.data import batch_for

    train = case.train.replace(train_steps=GRADIENT_TRAIN_STEPS)
    trainer = _trainer("gradients_nonzero", factory, case, train)
    if not trainer.variables:
        raise InvariantViolation("gradients_nonzero", "the cell has no trainable variables")
    for k in range(GRADIENT_TRAIN_STEPS):
        trainer.step(batch_for(case.cell, train, draw=k))
    final = batch_for(case.cell, train, draw=GRADIENT_TRAIN_STEPS)
    record = trainer.measure(final)
    for i, name in enumerate(trainer.variable_names):
        if record.grad_zero_fraction[i] < 1.0:
            continue
        if not _softmax_cannot_see(trainer, trainer.variables[i], final.inputs):
            shape = _shape(trainer.variables[i])
            raise InvariantViolation(
                "gradients_nonzero",
                f"after {GRADIENT_TRAIN_STEPS} {train.optimizer} steps (lr "
                f"{train.learning_rate:.3g}) the gradient of {name} {shape} is exactly 0 in "
                f"every entry, though the output depends on it (loss {record.loss:.6g})",
            )


def _directional_derivatives(
    loss_of: Callable[[], float], variable: Any, gradient: np.ndarray, rng: np.random.Generator
) -> tuple[float, float, float]:
    """Autodiff's derivative along a random unit direction, and the forward and
    backward one-sided differences along it."""
    direction = rng.standard_normal(variable.shape)
    direction /= max(np.linalg.norm(direction), 1e-300)
    original = variable.numpy()
    try:
        centre = loss_of()
        variable.assign(original + GRADIENT_CHECK_EPSILON * direction)
        up = loss_of()
        variable.assign(original - GRADIENT_CHECK_EPSILON * direction)
        down = loss_of()
    finally:
        variable.assign(original)
    forward = (up - centre) / GRADIENT_CHECK_EPSILON
    backward = (centre - down) / GRADIENT_CHECK_EPSILON
    return float(np.sum(gradient * direction)), forward, backward


def _gradient_agrees(auto: float, forward: float, backward: float) -> bool:
    """Smooth point: autodiff matches the central difference.  Kink (ReLU at
    exactly 0, as a zero bias behind dead units is): any subgradient between
    the one-sided differences is right, so autodiff must lie between them."""
    central = (forward + backward) / 2
    slack = GRADIENT_CHECK_RTOL * max(abs(auto), abs(forward), abs(backward)) + GRADIENT_CHECK_ATOL
    if abs(forward - backward) <= GRADIENT_CHECK_KINK * max(abs(forward), abs(backward)):
        return abs(auto - central) <= slack
    return min(forward, backward) - slack <= auto <= max(forward, backward) + slack


@_invariant("gradient_check")
def gradient_check(factory: CellFactory, case: Case) -> None:
    """Autodiff gradients agree with central differences, in float64.

    One random direction per variable; inference mode, so dropout is off.
    """
    with _float64():
        batch = case.batch()
        x = batch.inputs.astype(np.float64)
        y = batch.target(case.train.task).astype(np.float64)
        rnn = _rnn(factory(case.cell))
        _, grads, _ = _loss_and_gradients("gradient_check", rnn, case, x, y, training=False)
        loss_fn = loss_for(case.train.task)

        def loss_of() -> float:
            return float(loss_fn(_forward(rnn, x)[0], y))

        rng = np.random.default_rng(case.train.seed)
        for v, g in zip(rnn.trainable_variables, grads, strict=True):
            grad = np.zeros(v.shape) if g is None else np.asarray(g, np.float64)
            auto, forward, backward = _directional_derivatives(loss_of, v, grad, rng)
            if not _gradient_agrees(auto, forward, backward):
                raise InvariantViolation(
                    "gradient_check",
                    f"directional derivative of the {case.train.task} loss along {v.path} "
                    f"{_shape(v)}: autodiff {auto:.6g}, one-sided differences {forward:.6g} "
                    f"(forward) and {backward:.6g} (backward); rtol {GRADIENT_CHECK_RTOL:g}, "
                    f"atol {GRADIENT_CHECK_ATOL:g}, step {GRADIENT_CHECK_EPSILON:g}, float64",
                )


def loss_drop(factory: CellFactory, case: Case) -> tuple[float, float, float]:
    """(start, end, gap): inference loss on the case's fixed batch before and
    after LOSS_TRAIN_STEPS steps on it, and |uniform loss - reference loss|,
    the most a learner gains over a dead cell on that batch."""
    batch = case.batch()
    trainer = _trainer(
        "loss_decreases", factory, case, case.train.replace(train_steps=LOSS_TRAIN_STEPS)
    )
    start = trainer.loss(batch)
    for _ in range(LOSS_TRAIN_STEPS):
        trainer.step(batch)
    end = trainer.loss(batch)
    task = case.train.task
    return start, end, abs(batch.uniform_loss(task) - batch.reference_loss(task))


@_invariant("loss_decreases", region="robust-supervised")
def loss_decreases(factory: CellFactory, case: Case) -> None:
    """On one fixed batch, LOSS_TRAIN_STEPS steps lower the loss by more than
    LOSS_DECREASE_MARGIN of max(|initial loss|, uniform-to-reference gap)."""
    start, end, gap = loss_drop(factory, case)
    scale = max(abs(start), gap)
    needed = LOSS_DECREASE_MARGIN * scale
    if not start - end > needed:
        raise InvariantViolation(
            "loss_decreases",
            f"{case.train.task} loss on a fixed batch of {case.train.batch_size}x"
            f"{case.train.steps} went from {start:.6g} to {end:.6g} in {LOSS_TRAIN_STEPS} "
            f"{case.train.optimizer} steps (lr {case.train.learning_rate:.3g}); needed a drop "
            f"above {needed:.3g} (margin {LOSS_DECREASE_MARGIN:g} of {scale:.3g})",
        )


@_invariant("dropout_zero_is_identity")
def dropout_zero_is_identity(factory: CellFactory, case: Case) -> None:
    """A dropout rate of 0 after every layer gives the same outputs and gradients
    as no dropout layer, in training mode, exactly."""
    batch = case.batch()
    with_dropout = case.cell.replace(dropout=0.0, dropout_after=(1, 2, 3))
    without = case.cell.replace(dropout=0.0, dropout_after=())
    y = batch.target(case.train.task)
    name = "dropout_zero_is_identity"
    _, grads_a, out_a = _loss_and_gradients(
        name, _rnn(factory(with_dropout)), case, batch.inputs, y
    )
    _, grads_b, out_b = _loss_and_gradients(name, _rnn(factory(without)), case, batch.inputs, y)
    _require_identical(
        "dropout_zero_is_identity",
        "training-mode output with rate-0 dropout after layers 1-3, against none,",
        out_a,
        out_b,
        "if the initial weights differ, adding a layer re-drew them",
    )
    for i, (ga, gb) in enumerate(zip(grads_a, grads_b, strict=False)):
        _require_identical(name, f"gradient {i} with rate-0 dropout, against none,", ga, gb)


@_invariant("execution_modes_agree", adversarial_inputs=True)
def execution_modes_agree(factory: CellFactory, case: Case) -> None:
    """Eager, tf.function and XLA (jit_compile=True) give the same outputs
    within MODE_TOLERANCE."""
    batch = case.batch()
    rnn = _rnn(factory(case.cell))

    def forward(x: Any) -> Any:
        return _forward(rnn, x)[0]

    eager = np.asarray(forward(batch.inputs))
    modes = {
        "tf.function": tf.function(forward),
        "XLA": tf.function(forward, jit_compile=True),
    }
    for mode, fn in modes.items():
        try:
            out = np.asarray(fn(tf.constant(batch.inputs)))
        except Exception as exc:  # a compile failure is a finding, not a crash
            raise InvariantViolation(
                "execution_modes_agree",
                f"{mode} failed on inputs {_shape(batch.inputs)}: {describe_exception(exc)}",
            ) from exc
        diff = np.abs(out - eager)
        if not np.all(diff <= MODE_TOLERANCE):
            raise InvariantViolation(
                "execution_modes_agree",
                f"{mode} output {_shape(out)} differs from eager by {np.nanmax(diff):.3g} "
                f"(tolerance {MODE_TOLERANCE:g}; inputs {case.inputs.kind})",
            )


def _training_losses(factory: CellFactory, case: Case) -> list[float]:
    from cellverify.data import batch_for

    run = case.train.replace(train_steps=DETERMINISM_TRAIN_STEPS)
    trainer = _trainer("deterministic", factory, case, run)
    return [
        trainer.step(batch_for(case.cell, run, draw=k)).loss for k in range(DETERMINISM_TRAIN_STEPS)
    ]


@_invariant("deterministic")
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
        "deterministic",
        "one model's output, called twice at inference,",
        a2,
        a1,
        "is something random at inference?",
    )
    _require_identical(
        "deterministic",
        f"the output of two cells built with seed {case.cell.seed}",
        b1,
        a1,
        "is the seed honoured?",
    )
    first, second = (_training_losses(factory, case) for _ in range(2))
    _require_identical(
        "deterministic",
        f"the losses of two {DETERMINISM_TRAIN_STEPS}-step runs with the same seeds "
        f"({first} and {second})",
        second,
        first,
    )


@_invariant("serialization_roundtrip")
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
        raise InvariantViolation(
            "serialization_roundtrip",
            f"{type(cell).__name__}.from_config(cell.get_config()) failed: "
            f"{describe_exception(exc)}",
        ) from exc
    clone_model = build_model(clone, case.cell)
    clone_model(batch.inputs)
    try:
        clone_model.set_weights(model.get_weights())
    except ValueError as exc:
        raise InvariantViolation(
            "serialization_roundtrip",
            f"the cell rebuilt from get_config() has other weights: {exc}",
        ) from exc
    _require_identical(
        "serialization_roundtrip",
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
            raise InvariantViolation(
                "serialization_roundtrip",
                f"saving to / loading from .keras failed: {describe_exception(exc)}",
            ) from exc
    _require_identical(
        "serialization_roundtrip",
        "the output of the model reloaded from .keras",
        loaded(batch.inputs),
        out,
    )


@_invariant("init_near_uniform", region="robust")
def init_near_uniform(factory: CellFactory, case: Case) -> None:
    """Untrained outputs are near uniform but not exactly: no row exactly
    uniform, logits not all exactly 0, and a nonzero gradient.

    Exactly uniform rows are the dead ones of SPEC §9: a ReLU before the
    softmax zeroes the logits, and the gradient with them.
    """
    batch = case.batch()
    cell = factory(case.cell)
    rnn = _rnn(cell)
    out = _outputs("init_near_uniform", rnn, batch.inputs, case).astype(np.float64)
    n = case.cell.outputs
    share = float(np.max(np.abs(out - 1.0 / n))) / (1.0 - 1.0 / n)
    if share > INIT_UNIFORM_BOUND:
        raise InvariantViolation(
            "init_near_uniform",
            f"untrained output {_shape(out)} is {share:.3g} of the way from uniform 1/{n} to "
            f"one-hot (bound {INIT_UNIFORM_BOUND:g}): the softmax is saturated at birth",
        )
    exact = out.max(axis=-1) == out.min(axis=-1)
    if np.any(exact):
        raise InvariantViolation(
            "init_near_uniform",
            f"{int(exact.sum())} of {exact.size} untrained output rows {_shape(out)} are exactly "
            "uniform: their logits are all equal (dead, SPEC §9)",
        )
    if hasattr(cell, "step_activations"):
        state = rnn.get_initial_state(batch.inputs.shape[0])[0]
        logits = np.asarray(cell.step_activations(batch.inputs[:, 0], state)["logits"])
        if np.all(logits == 0):
            raise InvariantViolation(
                "init_near_uniform", f"every logit {_shape(logits)} is exactly 0 at step 0"
            )
    _, grads, _ = _loss_and_gradients(
        "init_near_uniform", rnn, case, batch.inputs, batch.target(case.train.task)
    )
    if all(g is None or not np.any(np.asarray(g)) for g in grads):
        raise InvariantViolation(
            "init_near_uniform", "the untrained gradient is exactly 0 for every variable"
        )
