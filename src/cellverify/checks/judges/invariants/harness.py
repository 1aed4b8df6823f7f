"""What the built-in invariants share: building the RNN, running it, its
loss and gradients, a trainer, and comparisons that say which tensor
differs, by how much, and what rounding allows.

Tolerances are named constants; the comment beside each says how it was chosen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from cellverify.checks.cases.case import Case
from cellverify.checks.judges.numerics.precision import output_tolerance
from cellverify.checks.judges.registry import NON_FINITE, current_case, fail
from cellverify.config import CellConfig, TrainConfig
from cellverify.contracts import OutputKind, Params
from cellverify.data.market import Batch, batch_for, market_for
from cellverify.data.sequences import training_sequences
from cellverify.errors import BadCellFactory
from cellverify.model.factory import CellFactory
from cellverify.model.fast import UNROLL_MAX_STEPS
from cellverify.model.rnn import loss_for
from cellverify.training.trainer import Trainer

__all__ = [
    "COMPILE_FROM_UPDATES",
    "PERMUTATION_FLOOR",
    "ForwardRun",
    "build_rnn",
    "check_shape",
    "forward_run",
    "inputs_described",
    "is_real",
    "loss_and_gradients",
    "make_trainer",
    "output_count",
    "output_size_of",
    "outputs_of",
    "require_close",
    "require_finite",
    "require_finite_gradients",
    "require_identical",
    "run_batches",
    "run_forward",
    "shape_of",
    "target_of",
    "where_first",
]

#: Floors of the rounding bounds (cellverify.checks.judges.numerics.tolerances): the absolute
#: tolerances that held on every case measured at ordinary magnitudes, kept
#: as the least ever allowed.  Above them the bound grows with the logits'
#: magnitude, so raw prices x1e4 (logits ~1e2-1e4) do not fail a correct cell.
#: Permutation and the RNN loop against stepping by hand: the same ops in
#: another order, measured differences ~1e-7.
PERMUTATION_FLOOR = 1e-6


def build_rnn(cell: Any) -> keras.layers.RNN:
    return keras.layers.RNN(cell, return_sequences=True, return_state=True)


def run_forward(rnn: keras.layers.RNN, x: Any, *, training: bool = False) -> tuple[Any, Any]:
    outputs, *states = rnn(x, training=training)
    return outputs, states[0]


def is_real(factory: CellFactory) -> bool:
    """Whether the cells ``factory`` makes promise a real output (not a simplex)."""
    from cellverify.spec import contract_of

    return contract_of(factory).output is OutputKind.REAL


def output_size_of(cell: Any) -> int:
    """The size of a cell's output: its ``output_size``, else its (first) state's."""
    size = getattr(cell, "output_size", None)
    if size is None:
        size = cell.state_size
    if isinstance(size, (list, tuple)):
        size = size[0]
    return int(size)


def output_count(case: Case, cell: Any) -> int:
    """How many numbers each output row has: the portfolio contract's
    assets (and cash), or what the spec'd cell says it outputs."""
    if isinstance(case.cell, CellConfig):
        return case.cell.outputs
    return output_size_of(cell)


def target_of(case: Case, batch: Any, cell: Any) -> Any:
    """What the case's task compares the cell's output with."""
    return batch.target(case.train.task, output_count(case, cell))


def outputs_of(rnn: keras.layers.RNN, x: Any, case: Case, *, training: bool = False) -> np.ndarray:
    """The RNN's outputs as NumPy, after checking their shape and that they
    and the final state are finite, so that an invariant comparing entries
    reports a malformed or non-finite output as itself, not as a mismatch."""
    out, state = run_forward(rnn, x, training=training)
    out = np.asarray(out)
    check_shape(out, x, output_count(case, rnn.cell))
    mode = " (training)" if training else ""
    require_finite(f"the output{mode}", out)
    require_finite(f"the final state{mode}", state)
    return out


def _non_finite_name(value: float) -> str:
    return "NaN" if np.isnan(value) else ("+inf" if value > 0 else "-inf")


def inputs_described() -> str:
    """The running case's inputs in words ("a nearly flat window", ...)."""
    case = current_case()
    return "its inputs" if case is None else case.inputs.describe()


def require_finite(what: str, value: Any) -> None:
    """Fail with the root cause when ``value`` holds a NaN or an infinity:
    which tensor, the value, where, and on which inputs.  Called where a
    tensor is first seen, before any comparison, so that a NaN is never
    reported as a mismatch with its own hint (docs/design.md, "One root
    cause per failure")."""
    a = np.asarray(value)
    if a.dtype.kind not in "fc" or bool(np.all(np.isfinite(a))):
        return
    bad = ~np.isfinite(a)
    index = [int(i) for i in np.argwhere(bad)[0]] if a.ndim else []
    first = a[tuple(index)] if a.ndim else a
    fail(
        f"{what} {shape_of(a)} is {_non_finite_name(float(first))} at index {index} "
        f"({int(bad.sum())} of {a.size} entries non-finite) on {inputs_described()}; "
        "every comparison after that is meaningless",
        clause=NON_FINITE,
    )


def require_finite_gradients(loss: Any, grads: list[Any], variables: list[Any]) -> None:
    """The loss, then each variable's gradient, finite (:func:`require_finite`)."""
    require_finite("the loss", loss)
    for v, g in zip(variables, grads, strict=True):
        if g is not None:
            require_finite(f"the gradient of {v.path}", g)


def check_shape(out: Any, x: Any, outputs: int) -> None:
    expected = (*np.shape(x)[:2], outputs)
    if tuple(out.shape) != expected:
        fail(
            f"output has shape {list(out.shape)}, expected [batch, steps, outputs] = "
            f"{list(expected)}; see output_shape"
        )


def loss_and_gradients(
    rnn: keras.layers.RNN,
    case: Case,
    x: Any,
    y: Any,
    *,
    training: bool = True,
) -> tuple[Any, list[Any], Any]:
    """Loss, gradients of the trainable variables (None where unconnected),
    outputs; the outputs and the final state checked finite first, the loss
    and gradients left to the caller (:func:`require_finite_gradients`)."""
    loss_fn = loss_for(case.train.task)
    with tf.GradientTape() as tape:
        out, state = run_forward(rnn, x, training=training)
        check_shape(out, x, output_count(case, rnn.cell))
        mode = " (training)" if training else ""
        require_finite(f"the output{mode}", out)
        require_finite(f"the final state{mode}", state)
        loss = loss_fn(out, y)
    grads = tape.gradient(loss, rnn.trainable_variables)
    return loss, grads, out


#: An invariant that makes at least this many updates compiles them
#: (tf.function); with fewer, tracing costs more than it saves.  Measured on
#: the 25 cases of each under ci, their RNN unrolled (make_trainer), one
#: process: loss_decreases (20 updates) 18.6 s eager against 10.0 s compiled;
#: gradients_nonzero (10) 7.8 s against 14.5 s; deterministic (2 x 2) 8.4 s
#: against 15.1 s.
COMPILE_FROM_UPDATES = 15


@dataclass(frozen=True)
class ForwardRun:
    """One inference run of a fresh cell on a case's batch: the batch, the
    cell, its RNN, the outputs (shape checked) and their rounding bound."""

    batch: Batch
    cell: Any
    rnn: keras.layers.RNN
    outputs: np.ndarray
    tol: np.ndarray
    scale: float


def forward_run(factory: CellFactory, case: Case, *, floor: float) -> ForwardRun:
    """Build ``factory(case.cell)``, run it on ``case.batch()`` and bound the
    outputs' rounding (floor ``floor``)."""
    batch = case.batch()
    cell = factory(case.cell)
    rnn = build_rnn(cell)
    out = outputs_of(rnn, batch.inputs, case)
    tol, scale = output_tolerance(factory, case, cell, rnn, batch.inputs, out, floor=floor)
    return ForwardRun(batch, cell, rnn, out, tol, scale)


def make_trainer(factory: CellFactory, case: Case, train: Any) -> Trainer:
    """A Trainer for ``train.train_steps`` updates; a cell whose outputs do not
    fit the contract is this invariant's violation.

    The RNN's loop is unrolled over a short sequence: the same cell calls,
    step by step, as the while loop makes, which ``execution_modes_agree``
    and the eager invariants run; its step traces and compiles in a third
    less time (loss_decreases' 25 ci cases: 8.7-10.8 s against 13.5-16.2 s,
    one process; docs/design.md, "Cost of an example")."""
    compiled = train.train_steps >= COMPILE_FROM_UPDATES
    unroll = train.steps <= UNROLL_MAX_STEPS
    try:
        return Trainer(factory, case.cell, train, compiled=compiled, unroll=unroll)
    except BadCellFactory as exc:
        fail(str(exc))


def run_batches(cell: CellConfig | Params, train: TrainConfig, count: int) -> list[Any]:
    """The first ``count`` batches of a run: a spec'd cell's sequences, or
    the portfolio contract's from one market (generating its 4,000-odd
    periods per batch was a tenth of gradients_nonzero's time)."""
    if isinstance(cell, Params):
        return [training_sequences(cell, train, k) for k in range(count)]
    market = market_for(cell, train)
    return [batch_for(cell, train, market=market, draw=k) for k in range(count)]


def require_identical(
    what: str, got: Any, expected: Any, hint: str = "", *, clause: str = ""
) -> None:
    """Raise unless ``got`` and ``expected`` are equal bit for bit; the message
    says ``what`` differs, the shapes, by how much, and ``hint``.  Either one
    non-finite is reported as that, never as a difference."""
    a, b = np.asarray(got), np.asarray(expected)
    require_finite(what, a)
    require_finite(f"what {what} is compared with", b)
    if a.shape == b.shape and np.array_equal(a, b):
        return
    by = f"by {np.max(np.abs(a - b)):.3g}" if a.shape == b.shape else f"in shape ({shape_of(b)})"
    fail(
        f"{what} {shape_of(a)} differs {by} (tolerance: exact){'; ' + hint if hint else ''}",
        clause=clause,
    )


def shape_of(x: Any) -> list[int]:
    return list(np.shape(x))


def where_first(mask: np.ndarray) -> str:
    index = tuple(int(i) for i in np.argwhere(mask)[0])
    return f"at index {list(index)}"


def require_close(
    what: str,
    got: np.ndarray,
    expected: np.ndarray,
    tol: Any,
    scale: float,
    *,
    clause: str = "",
    real: bool = False,
) -> None:
    """Raise unless ``|got - expected| <= tol`` everywhere (``tol`` from the
    rounding bound of :mod:`cellverify.checks.judges.numerics.tolerances`, at the
    logits' scale ``scale``, or the output's own for a ``real`` output).
    Either one non-finite is reported as that."""
    require_finite(what, got)
    require_finite(f"what {what} is compared with", expected)
    diff = np.abs(np.asarray(got, np.float64) - np.asarray(expected, np.float64))
    excess = diff - tol
    if np.all(excess <= 0):
        return
    worst = np.unravel_index(
        int(np.nanargmax(np.where(np.isnan(excess), np.inf, excess))), diff.shape
    )
    value = float(np.asarray(expected)[worst])
    at = (
        f"probability {value:.3g}, logits up to {scale:.3g}; "
        "cellverify.checks.judges.numerics.tolerances.probability_tolerance"
        if real is False
        else f"value {value:.3g}, rounded at up to {scale:.3g}; "
        "cellverify.checks.judges.numerics.tolerances.real_tolerance"
    )
    fail(
        f"{what} {shape_of(got)} differs by {diff[worst]:.3g} at index {[int(i) for i in worst]}, "
        f"where rounding allows {np.broadcast_to(tol, diff.shape)[worst]:.3g} ({at})",
        clause=clause,
    )
