"""The cell's wiring: output shapes, a probability simplex, the state fed back,
the state used, and equivariance under a permutation of the assets."""

from __future__ import annotations

from typing import Any

import numpy as np

from cellverify.checks.cases.case import Case
from cellverify.checks.cases.regions import ROBUST_REGION
from cellverify.checks.judges.invariants.harness import (
    PERMUTATION_FLOOR,
    build_rnn,
    forward_run,
    inputs_described,
    is_real,
    output_count,
    outputs_of,
    require_close,
    require_finite,
    require_identical,
    run_forward,
    shape_of,
    where_first,
)
from cellverify.checks.judges.numerics.precision import output_tolerance
from cellverify.checks.judges.numerics.tolerances import simplex_sum_tolerance
from cellverify.checks.judges.registry import NON_FINITE, fail, invariant
from cellverify.config import CellConfig
from cellverify.contracts import Contract, OutputKind, Promise
from cellverify.model.factory import CellFactory
from cellverify.spec import contract_of

__all__ = [
    "STATE_EFFECT_MIN",
    "asset_permutation_equivariance",
    "output_shape",
    "simplex_output",
    "state_is_output",
    "state_matters",
]

#: The output must move by more than this when the state goes from uniform to
#: a peaked portfolio (or, for another cell, by half a unit per entry), and
#: when the step before's input moves by half its size.  Float32 noise on
#: probabilities is ~1e-8; a wired state moves them by ~1e-2 (conv3's state
#: weight times a state change of ~0.5), a GRU's output by ~0.1.
STATE_EFFECT_MIN = 1e-6


def _state_sizes(case: Case, cell: Any) -> list[int]:
    """The sizes the final states must have: the portfolio contract's one
    state of ``outputs``, or what the spec'd cell declares (``state_size``)."""
    if isinstance(case.cell, CellConfig):
        return [case.cell.outputs]
    size = cell.state_size
    return [int(s) for s in size] if isinstance(size, (list, tuple)) else [int(size)]


@invariant("output_shape", adversarial_inputs=True, clauses=("output", "state"))
def output_shape(factory: CellFactory, case: Case) -> None:
    """Output is [batch, steps, outputs] and each final state [batch, its size]
    (the portfolio contract's one state of [batch, outputs])."""
    batch = case.batch()
    cell = factory(case.cell)
    out, *states = build_rnn(cell)(batch.inputs)
    b, t = batch.inputs.shape[:2]
    n = output_count(case, cell)
    if tuple(out.shape) != (b, t, n):
        fail(
            f"RNN output has shape {shape_of(out)}, expected [batch, steps, outputs] = "
            f"{[b, t, n]} for inputs {shape_of(batch.inputs)}",
            clause="output",
        )
    expected = [[b, size] for size in _state_sizes(case, cell)]
    got = [shape_of(state) for state in states]
    if got != expected:
        name = "final state has shape" if len(got) == 1 else "final states have shapes"
        shown = got[0] if len(got) == 1 else got
        want = expected[0] if len(expected) == 1 else expected
        fail(f"{name} {shown}, expected [batch, outputs] = {want}", clause="state")


@invariant(
    "simplex_output",
    adversarial_inputs=True,
    clauses=(NON_FINITE, "negative", "sum"),
    needs=(Promise.SIMPLEX_OUTPUT,),
)
def simplex_output(factory: CellFactory, case: Case) -> None:
    """Every output row is finite, >= 0 and sums to 1 within the rounding of its
    length (:func:`cellverify.checks.judges.numerics.tolerances.simplex_sum_tolerance`).

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


@invariant(
    "state_is_output",
    adversarial_inputs=True,
    clauses=("state", "rnn_loop"),
    needs=(Promise.STATE_IS_OUTPUT,),
)
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
            real=is_real(factory),
        )
        state = new


def _peaked_state(n: int, seed: int, batch_size: int) -> np.ndarray:
    """A state far from uniform: 0.7 on one entry, the rest shared equally."""
    state = np.full((batch_size, n), 0.3 / (n - 1), np.float32)
    hot = np.random.default_rng(seed).integers(0, n, size=batch_size)
    state[np.arange(batch_size), hot] = 0.7
    return state


def _other_states(
    case: Case, contract: Contract, initial: list[Any]
) -> tuple[list[np.ndarray], str]:
    """States far from the initial ones, and the change in words: a peaked
    distribution where the state is a simplex output (the initial one
    uniform), else the initial state moved by half a unit per entry (seeded
    by the cell's seed)."""
    seed = case.cell.seed
    first = np.asarray(initial[0])
    if contract.state_is_output and contract.output is OutputKind.SIMPLEX and first.shape[-1] > 1:
        peaked = _peaked_state(first.shape[-1], seed, first.shape[0])
        return [peaked], "the state went from uniform to peaked"
    rng = np.random.default_rng(seed)
    moved = [
        (np.asarray(s) + 0.5 * rng.standard_normal(np.shape(s))).astype(np.float32) for s in initial
    ]
    return moved, "the state moved by half a unit per entry"


def _two_steps(x: np.ndarray) -> np.ndarray:
    """The case's first two steps (the first twice, for a one-step case)."""
    second = x[:, 1] if x.shape[1] > 1 else x[:, 0]
    return np.stack([x[:, 0], second], axis=1)


def _moved_step(x: np.ndarray, *, prices: bool) -> np.ndarray:
    """One step's input changed so that no healthy cell can miss it.

    Prices move by half (a zero by 1): they must stay positive, and a
    portfolio cell reads their ratios.  Any other input goes to -2x (a zero
    to 1): every entry changes both its sign and its magnitude, so a cell
    that reads its input only up to a positive scale (``x / |x|``) sees the
    change, and so does one that reads only magnitudes (``x**2``)."""
    if prices:
        return x + np.where(x == 0, 1.0, 0.5 * x)
    return np.where(x == 0, 1.0, -2.0 * x)


@invariant("state_matters", region=ROBUST_REGION, clauses=("effect", "carries"))
def state_matters(factory: CellFactory, case: Case) -> None:
    """Changing the previous state changes the output (the feedback is wired),
    and changing one step's input changes the next step's output (the state
    carries the past forward)."""
    batch = case.batch()
    cell = factory(case.cell)
    rnn = build_rnn(cell)
    x = batch.inputs[:, 0]
    initial = list(rnn.get_initial_state(x.shape[0]))
    others, change = _other_states(case, contract_of(factory), initial)
    out_u = np.asarray(cell(x, initial, training=False)[0])
    out_p = np.asarray(cell(x, others, training=False)[0])
    require_finite("the output from the initial state", out_u)
    require_finite("the output from another state", out_p)
    _require_effect(out_u, out_p, change, "effect")
    pair = _two_steps(batch.inputs)
    moved = pair.copy()
    moved[:, 0] = _moved_step(pair[:, 0], prices=isinstance(case.cell, CellConfig))
    after = outputs_of(rnn, pair, case)[:, 1]
    after_moved = outputs_of(rnn, moved, case)[:, 1]
    _require_effect(after, after_moved, "the input of the step before changed", "carries")


def _require_effect(before: np.ndarray, after: np.ndarray, change: str, clause: str) -> None:
    """The output moved by more than ``STATE_EFFECT_MIN`` (``effect``), or at
    all (``carries``): a state that never advances leaves the next step's
    output bit-identical, and a healthy one carries the past on however
    faintly (a portfolio cell's: 4.5e-8, two steps on, through its state
    weight)."""
    effect = float(np.max(np.abs(before - after)))
    least = STATE_EFFECT_MIN if clause == "effect" else 0.0
    if not effect > least:
        what = (
            "the previous state is not used" if clause == "effect" else "the state carries nothing"
        )
        fail(
            f"output {shape_of(before)} moved by {effect:.3g} when {change} "
            f"(needs > {least:g}): {what}",
            clause=clause,
        )


@invariant(
    "asset_permutation_equivariance",
    adversarial_inputs=True,
    clauses=("permuted",),
    needs=(Promise.EQUIVARIANT_AXIS,),
)
def asset_permutation_equivariance(factory: CellFactory, case: Case) -> None:
    """Permuting assets in the input permutes the output the same way.

    The convs are one row tall and shared across assets (EIIE's identical
    independent evaluators); the uniform initial state is unchanged by any
    permutation; cash, if present, stays first.
    """
    batch = case.batch()
    rnn = build_rnn(factory(case.cell))
    contract = contract_of(factory)
    axis = 2 + (contract.equivariant_axis or 0)
    size = batch.inputs.shape[axis]
    perm = np.random.default_rng(case.cell.seed).permutation(size)
    if np.array_equal(perm, np.arange(size)):
        perm = perm[::-1].copy()
    out = outputs_of(rnn, batch.inputs, case)
    fixed = out.shape[-1] - size if isinstance(case.cell, CellConfig) else contract.fixed_outputs
    out_index = np.concatenate([np.arange(fixed), fixed + perm])
    permuted = outputs_of(rnn, np.take(batch.inputs, perm, axis=axis), case)
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
        real=is_real(factory),
    )
