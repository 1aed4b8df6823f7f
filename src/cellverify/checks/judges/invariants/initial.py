"""The untrained cell: near uniform, but not exactly (exactly uniform rows are dead)."""

from __future__ import annotations

import numpy as np

from cellverify.checks.cases.case import Case
from cellverify.checks.cases.regions import INIT_REGION
from cellverify.checks.judges.invariants.harness import (
    build_rnn,
    loss_and_gradients,
    outputs_of,
    require_finite_gradients,
    shape_of,
    target_of,
)
from cellverify.checks.judges.registry import fail, invariant
from cellverify.contracts import Promise
from cellverify.model.factory import CellFactory
from cellverify.trace import SATURATED_MAX_WEIGHT

__all__ = ["INIT_SATURATION", "init_near_uniform"]

#: The untrained output must not be saturated: every row's largest weight
#: below this, the diagnosis's saturation level (the softmax's gradient
#: w(1 - w) is under 0.01 there), and no weight exactly 0.  "Roughly uniform"
#: in the question's answer means "neither 0/1 nor all exactly equal"; a
#: tighter bound (0.6 of the way from uniform to one-hot, the largest of 300
#: measured cases being 0.41) failed a correct 2-asset cell with cash at 0.685
#: (logits of a few units from fan-ins of 3): peaked is not saturated.
INIT_SATURATION = SATURATED_MAX_WEIGHT


@invariant(
    "init_near_uniform",
    region=INIT_REGION,
    clauses=("saturated", "exactly_uniform", "zero_gradient"),
    needs=(Promise.SIMPLEX_OUTPUT,),
)
def init_near_uniform(factory: CellFactory, case: Case) -> None:
    """Untrained outputs are roughly uniform but not exactly: not saturated,
    no row exactly uniform, and a nonzero gradient.

    Exactly uniform rows are the dead ones (docs/design.md, "Measured facts"):
    a ReLU before the softmax zeroes the logits, and the gradient with them.
    Logits all exactly 0 are not checked on their own: they make every row
    of a softmax exactly uniform, which the second check sees from the
    outputs alone, for any cell (docs/invariants.md, "A mutant per clause").
    """
    batch = case.batch()
    cell = factory(case.cell)
    rnn = build_rnn(cell)
    out = outputs_of(rnn, batch.inputs, case).astype(np.float64)
    largest = float(out.max())
    if largest >= INIT_SATURATION or np.any(out == 0):
        fail(
            f"untrained output {shape_of(out)} puts {largest:.4g} on one entry (saturation at "
            f"{INIT_SATURATION:g}) with {int(np.sum(out == 0))} entries exactly 0: the "
            "softmax is saturated at birth",
            clause="saturated",
        )
    exact = out.max(axis=-1) == out.min(axis=-1)
    if np.any(exact):
        fail(
            f"{int(exact.sum())} of {exact.size} untrained output rows {shape_of(out)} are exactly "
            "uniform: their logits are all equal (dead, docs/design.md, 'Measured facts')",
            clause="exactly_uniform",
        )
    y = target_of(case, batch, cell)
    loss, grads, _ = loss_and_gradients(rnn, case, batch.inputs, y)
    require_finite_gradients(loss, grads, rnn.trainable_variables)
    if all(g is None or not np.any(np.asarray(g)) for g in grads):
        fail("the untrained gradient is exactly 0 for every variable", clause="zero_gradient")
