"""The cell's wiring: output shapes, a probability simplex, the state fed back,
the state used, and equivariance under a permutation of the assets."""

from __future__ import annotations

import numpy as np

from cellverify.checks.case import Case
from cellverify.checks.invariants.harness import (
    PERMUTATION_FLOOR,
    build_rnn,
    forward_run,
    inputs_described,
    outputs_of,
    require_close,
    require_finite,
    require_identical,
    run_forward,
    shape_of,
    where_first,
)
from cellverify.checks.numerics.precision import output_tolerance
from cellverify.checks.numerics.tolerances import simplex_sum_tolerance
from cellverify.checks.regions import ROBUST_REGION
from cellverify.checks.registry import NON_FINITE, fail, invariant
from cellverify.model.rnn import CellFactory

__all__ = [
    "STATE_EFFECT_MIN",
    "asset_permutation_equivariance",
    "output_shape",
    "simplex_output",
    "state_is_output",
    "state_matters",
]

#: The output must move by more than this when the state goes from uniform to
#: a peaked portfolio.  Float32 noise on probabilities is ~1e-8; a wired state
#: moves them by ~1e-2 (conv3's state weight times a state change of ~0.5).
STATE_EFFECT_MIN = 1e-6


@invariant("output_shape", adversarial_inputs=True, clauses=("output", "state"))
def output_shape(factory: CellFactory, case: Case) -> None:
    """Output is [batch, steps, outputs] and the final state [batch, outputs]."""
    batch = case.batch()
    out, state = run_forward(build_rnn(factory(case.cell)), batch.inputs)
    b, t = batch.inputs.shape[:2]
    n = case.cell.outputs
    if tuple(out.shape) != (b, t, n):
        fail(
            f"RNN output has shape {shape_of(out)}, expected [batch, steps, outputs] = "
            f"{[b, t, n]} for inputs {shape_of(batch.inputs)}",
            clause="output",
        )
    if tuple(state.shape) != (b, n):
        fail(
            f"final state has shape {shape_of(state)}, expected [batch, outputs] = {[b, n]}",
            clause="state",
        )


@invariant(
    "simplex_output",
    adversarial_inputs=True,
    clauses=(NON_FINITE, "negative", "sum"),
)
def simplex_output(factory: CellFactory, case: Case) -> None:
    """Every output row is finite, >= 0 and sums to 1 within the rounding of its
    length (:func:`cellverify.checks.numerics.tolerances.simplex_sum_tolerance`).

    Checked in inference and in training mode (dropout on), on adversarial
    inputs too: the output is a portfolio whatever the prices.
    """
    batch = case.batch()
    rnn = build_rnn(factory(case.cell))
    for training in (False, True):
        out = np.asarray(run_forward(rnn, batch.inputs, training=training)[0], np.float64)
        where = f"output {shape_of(out)} (training={training}, {inputs_described()})"
        require_finite(f"the output (training={training})", out)
        if np.any(out < 0):
            fail(
                f"{where} has a negative entry {out.min():.3g} {where_first(out < 0)}",
                clause="negative",
            )
        _require_rows_sum_to_one(where, out)


def _require_rows_sum_to_one(where: str, out: np.ndarray) -> None:
    """Every row of ``out`` (float64) sums to 1 within the rounding of its
    length; the message gives the worst row's sum itself, sign and all."""
    sums = out.sum(axis=-1)
    error = np.abs(sums - 1.0)
    allowed = simplex_sum_tolerance(out.shape[-1])
    if np.any(error > allowed):
        worst = np.unravel_index(int(np.argmax(error)), error.shape)
        fail(
            f"{where}: a row sums to {sums[worst]:.8g} (|sum - 1| = {error[worst]:.3g} > "
            f"tolerance {allowed:.3g} for rows of {out.shape[-1]}) at index "
            f"{[int(i) for i in worst]}",
            clause="sum",
        )


@invariant("state_is_output", adversarial_inputs=True, clauses=("state", "rnn_loop"))
def state_is_output(factory: CellFactory, case: Case) -> None:
    """The state passed to step t+1 is exactly the output of step t.

    Steps the cell by hand, checking each returned state against the output,
    then checks that the RNN's outputs match the hand-stepped ones.
    """
    run = forward_run(factory, case, floor=PERMUTATION_FLOOR)
    batch, cell, rnn, seq, tol, scale = (
        run.batch,
        run.cell,
        run.rnn,
        run.outputs,
        run.tol,
        run.scale,
    )
    state = rnn.get_initial_state(batch.inputs.shape[0])[0]
    for t in range(batch.inputs.shape[1]):
        out, new_states = cell(batch.inputs[:, t], [state], training=False)
        new = new_states[0] if isinstance(new_states, (list, tuple)) else new_states
        o = np.asarray(out)
        require_finite(f"the output of the cell stepped by hand at step {t}", o)
        require_identical(f"at step {t} the new state", new, o, clause="state")
        require_close(
            f"RNN output at step {t}, against stepping the cell on the previous output,",
            seq[:, t],
            o,
            tol[:, t],
            scale,
            clause="rnn_loop",
        )
        state = new


def _peaked_state(case: Case, batch_size: int) -> np.ndarray:
    """A state far from uniform: 0.7 on one entry, the rest shared equally."""
    n = case.cell.outputs
    state = np.full((batch_size, n), 0.3 / (n - 1), np.float32)
    hot = np.random.default_rng(case.cell.seed).integers(0, n, size=batch_size)
    state[np.arange(batch_size), hot] = 0.7
    return state


@invariant("state_matters", region=ROBUST_REGION, clauses=("effect",))
def state_matters(factory: CellFactory, case: Case) -> None:
    """Changing the previous state changes the output: the feedback is wired."""
    batch = case.batch()
    cell = factory(case.cell)
    x = batch.inputs[:, 0]
    b = x.shape[0]
    uniform = np.full((b, case.cell.outputs), 1.0 / case.cell.outputs, np.float32)
    out_u = np.asarray(cell(x, [uniform], training=False)[0])
    out_p = np.asarray(cell(x, [_peaked_state(case, b)], training=False)[0])
    require_finite("the output from a uniform state", out_u)
    require_finite("the output from a peaked state", out_p)
    effect = float(np.max(np.abs(out_u - out_p)))
    if not effect > STATE_EFFECT_MIN:
        fail(
            f"output {shape_of(out_u)} moved by {effect:.3g} when the state went from uniform to "
            f"peaked (needs > {STATE_EFFECT_MIN:g}): the previous state is not used",
            clause="effect",
        )


@invariant("asset_permutation_equivariance", adversarial_inputs=True, clauses=("permuted",))
def asset_permutation_equivariance(factory: CellFactory, case: Case) -> None:
    """Permuting assets in the input permutes the output the same way.

    The convs are one row tall and shared across assets (EIIE's identical
    independent evaluators); the uniform initial state is unchanged by any
    permutation; cash, if present, stays first.
    """
    batch = case.batch()
    rnn = build_rnn(factory(case.cell))
    assets = case.cell.assets
    perm = np.random.default_rng(case.cell.seed).permutation(assets)
    if np.array_equal(perm, np.arange(assets)):
        perm = perm[::-1].copy()
    cash = case.cell.outputs - assets
    out_index = np.concatenate([np.arange(cash), cash + perm])
    out = outputs_of(rnn, batch.inputs, case)
    permuted = outputs_of(rnn, batch.inputs[:, :, perm], case)
    tol, scale = output_tolerance(
        factory, case, rnn.cell, rnn, batch.inputs, out, floor=PERMUTATION_FLOOR
    )
    require_close(
        f"the output for assets permuted by {perm.tolist()}, against the permuted output,",
        permuted,
        out[..., out_index],
        tol[..., out_index],
        scale,
        clause="permuted",
    )
