"""Things that must not change the outputs: a rate-0 dropout layer, the
execution mode, a rebuild from the same seed, a save and reload, and
running a batch's examples one at a time."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from cellverify.checks.cases.case import Case
from cellverify.checks.judges.invariants.harness import (
    PERMUTATION_FLOOR,
    build_rnn,
    forward_run,
    is_real,
    loss_and_gradients,
    make_trainer,
    outputs_of,
    require_close,
    require_finite,
    require_finite_gradients,
    require_identical,
    run_batches,
    run_forward,
    shape_of,
    target_of,
)
from cellverify.checks.judges.numerics.precision import output_tolerance
from cellverify.checks.judges.registry import fail, invariant
from cellverify.config import CellConfig
from cellverify.contracts import Promise
from cellverify.errors import describe_exception
from cellverify.model.factory import CellFactory
from cellverify.spec import contract_of

__all__ = [
    "DETERMINISM_TRAIN_STEPS",
    "MODE_FLOOR",
    "batch_independence",
    "deterministic",
    "dropout_zero_is_identity",
    "execution_modes_agree",
    "serialization_roundtrip",
]

#: Eager, tf.function and XLA: XLA fuses and reorders float32 arithmetic and
#: may use other exp/tanh approximations; measured worst difference ~1e-7.
MODE_FLOOR = 1e-5
#: Steps trained twice for the determinism check.
DETERMINISM_TRAIN_STEPS = 2


@invariant(
    "dropout_zero_is_identity",
    adversarial_inputs=True,
    clauses=("output", "gradient"),
    needs=(Promise.DROPOUT,),
)
def dropout_zero_is_identity(factory: CellFactory, case: Case) -> None:
    """A dropout rate of 0 is no dropout: in training mode, exactly the
    outputs and gradients of no dropout at all.

    For the portfolio contract: rate-0 dropout layers after every conv,
    against none.  For a spec'd cell, whose dropout is its own parameters:
    every rate at 0 in training mode, against inference mode (where no
    dropout runs)."""
    batch = case.batch()
    if isinstance(case.cell, CellConfig):
        with_dropout = case.cell.replace(dropout=0.0, dropout_after=(1, 2, 3))
        without = case.cell.replace(dropout=0.0, dropout_after=())
        rnn_a, rnn_b = build_rnn(factory(with_dropout)), build_rnn(factory(without))
        modes, what = (True, True), "rate-0 dropout after layers 1-3, against none"
        hint = "if the initial weights differ, adding a layer re-drew them"
    else:
        zero = case.cell.replace(**dict.fromkeys(contract_of(factory).dropout, 0.0))
        rnn_a = rnn_b = build_rnn(factory(zero))
        modes, what = (True, False), "every dropout rate at 0, against inference mode"
        hint = "a rate of 0 still changes something in training"
    y = target_of(case, batch, rnn_a.cell)
    loss_a, grads_a, out_a = loss_and_gradients(rnn_a, case, batch.inputs, y, training=modes[0])
    loss_b, grads_b, out_b = loss_and_gradients(rnn_b, case, batch.inputs, y, training=modes[1])
    require_finite_gradients(loss_a, grads_a, rnn_a.trainable_variables)
    require_finite_gradients(loss_b, grads_b, rnn_b.trainable_variables)
    require_identical(f"training-mode output with {what},", out_a, out_b, hint, clause="output")
    for i, (ga, gb) in enumerate(zip(grads_a, grads_b, strict=False)):
        require_identical(
            f"gradient {i} with {what.replace('every dropout rate', 'rates')},",
            ga,
            gb,
            clause="gradient",
        )


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


@invariant("execution_modes_agree", adversarial_inputs=True, clauses=("mode_fails", "mode_differs"))
def execution_modes_agree(factory: CellFactory, case: Case) -> None:
    """Eager, tf.function and XLA (jit_compile=True) give the same outputs,
    within the rounding bound at the logits' scale (floor MODE_FLOOR)."""
    batch = case.batch()
    rnn = build_rnn(factory(case.cell))

    def forward(x: Any) -> Any:
        return run_forward(rnn, x)[0]

    eager = outputs_of(rnn, batch.inputs, case)
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
            fail(
                f"{mode} failed on inputs {shape_of(batch.inputs)}: {describe_exception(exc)}",
                clause="mode_fails",
            )
        require_close(
            f"the {mode} output, against eager (inputs {case.inputs.kind}),",
            out,
            eager,
            tol,
            scale,
            clause="mode_differs",
            real=is_real(factory),
        )


def _training_losses(factory: CellFactory, case: Case) -> list[float]:
    run = case.train.replace(train_steps=DETERMINISM_TRAIN_STEPS)
    trainer = make_trainer(factory, case, run)
    losses = []
    for step, batch in enumerate(run_batches(case.cell, run, DETERMINISM_TRAIN_STEPS)):
        losses.append(trainer.update(batch))
        require_finite(f"the training loss at update {step}", losses[-1])
    return losses


@invariant(
    "deterministic",
    adversarial_inputs=True,
    clauses=("inference_repeat", "rebuild", "training"),
)
def deterministic(factory: CellFactory, case: Case) -> None:
    """The same seed gives bit-identical outputs and training losses.

    Two builds from the same configuration must agree, one model called twice
    at inference must agree, and two short training runs must agree.
    """
    batch = case.batch()
    # Each cell is built (its weights made at its first call) before the
    # next is constructed: a cell that makes its initializers in build()
    # draws from the global seed a spec sets before each construction, so
    # building both first would hand the second one the state the first
    # moved, and fail a cell that honours its seed.
    rnn_a = build_rnn(factory(case.cell))
    a1 = outputs_of(rnn_a, batch.inputs, case)
    a2 = outputs_of(rnn_a, batch.inputs, case)
    rnn_b = build_rnn(factory(case.cell))
    b1 = outputs_of(rnn_b, batch.inputs, case)
    require_identical(
        "one model's output, called twice at inference,",
        a2,
        a1,
        "is something random at inference?",
        clause="inference_repeat",
    )
    require_identical(
        f"the output of two cells built with seed {case.cell.seed}",
        b1,
        a1,
        "is the seed honoured?",
        clause="rebuild",
    )
    first, second = (_training_losses(factory, case) for _ in range(2))
    require_identical(
        f"the losses of two {DETERMINISM_TRAIN_STEPS}-step runs with the same seeds "
        f"({first} and {second})",
        second,
        first,
        "is something random in training left unseeded?",
        clause="training",
    )


@invariant(
    "serialization_roundtrip",
    adversarial_inputs=True,
    clauses=(
        "from_config_fails",
        "other_weights",
        "rebuilt_differs",
        "save_fails",
        "reloaded_differs",
    ),
)
def serialization_roundtrip(factory: CellFactory, case: Case) -> None:
    """get_config/from_config and saving to .keras reproduce outputs exactly."""
    from cellverify.model.rnn import build_model

    batch = case.batch()
    cell = factory(case.cell)
    model = build_model(cell, case.cell)
    out = np.asarray(model(batch.inputs))
    require_finite("the output", out)
    try:
        clone = type(cell).from_config(cell.get_config())
    except Exception as exc:
        fail(
            f"{type(cell).__name__}.from_config(cell.get_config()) failed: "
            f"{describe_exception(exc)}",
            clause="from_config_fails",
        )
    clone_model = build_model(clone, case.cell)
    clone_model(batch.inputs)
    try:
        clone_model.set_weights(model.get_weights())
    except ValueError as exc:
        fail(f"the cell rebuilt from get_config() has other weights: {exc}", clause="other_weights")
    require_identical(
        "the output of the cell rebuilt by from_config(get_config())",
        clone_model(batch.inputs),
        out,
        "get_config() misses something",
        clause="rebuilt_differs",
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.keras"
        try:
            model.save(path)
            loaded = keras.models.load_model(path)
        except Exception as exc:
            fail(
                f"saving to / loading from .keras failed: {describe_exception(exc)}",
                clause="save_fails",
            )
    require_identical(
        "the output of the model reloaded from .keras",
        loaded(batch.inputs),
        out,
        "are the weights saved as they are?",
        clause="reloaded_differs",
    )


@invariant("batch_independence", adversarial_inputs=True, min_batch=2, clauses=("example_alone",))
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
    run = forward_run(factory, case, floor=PERMUTATION_FLOOR)
    batch, together, tol, scale = run.batch, run.outputs, run.tol, run.scale
    size = batch.inputs.shape[0]
    for i in range(size):
        alone = outputs_of(run.rnn, batch.inputs[i : i + 1], case)
        require_close(
            f"example {i}'s output run alone, against its row of the batch of {size} "
            f"(inputs {case.inputs.kind}),",
            alone[0],
            together[i],
            tol[i],
            scale,
            clause="example_alone",
            real=is_real(factory),
        )
