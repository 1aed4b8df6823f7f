"""The built-in invariants (docs/design.md, 'Invariants').

Each check takes a cell factory and a :class:`~cellverify.checks.cases.case.Case`
and returns nothing when the invariant holds; otherwise it calls
:func:`~cellverify.checks.judges.registry.fail`, as a user's invariant does,
with a message that names the tensors, their shapes and the tolerance.  Each
registers itself, with the :class:`~cellverify.checks.cases.regions.Region`
where it is claimed, in :data:`~cellverify.checks.judges.registry.INVARIANTS`;
:func:`cellverify.checks.judges.catalog.registered` imports this module to get
them.

Tolerances are named constants; the comment beside each says how it was chosen.

The invariants are grouped by what they check, one module each (in
``cellverify.checks.judges.invariants``): ``structure``, ``gradients``,
``learning``, ``equivalence``, ``initial`` and ``mixed``, with what they
share in ``harness``.  They are imported here in the order they are reported.
"""

from __future__ import annotations

from cellverify.checks.judges.registry import INVARIANTS, Invariant

# Importing a module registers its invariants, and the registry reports them
# in the order registered: keep these imports in this order.
# isort: off
from cellverify.checks.judges.invariants.harness import COMPILE_FROM_UPDATES, PERMUTATION_FLOOR
from cellverify.checks.judges.invariants.structure import (
    STATE_EFFECT_MIN,
    asset_permutation_equivariance,
    output_shape,
    simplex_output,
    state_is_output,
    state_matters,
)
from cellverify.checks.judges.invariants.gradients import (
    GRADIENT_TRAIN_STEPS,
    SHIFT_PROBE,
    SHIFT_UNIFORMITY,
    gradient_check,
    gradients_finite,
    gradients_nonzero,
)
from cellverify.checks.judges.invariants.learning import (
    LOSS_DECREASE_MARGIN,
    LOSS_DROP_FLOOR_ULPS,
    LOSS_TRAIN_STEPS,
    loss_decreases,
    loss_drop,
)
from cellverify.checks.judges.invariants.equivalence import (
    DETERMINISM_TRAIN_STEPS,
    MODE_FLOOR,
    batch_independence,
    deterministic,
    dropout_zero_is_identity,
    execution_modes_agree,
    serialization_roundtrip,
)
from cellverify.checks.judges.invariants.initial import (
    INIT_SATURATION,
    init_near_uniform,
)
from cellverify.checks.judges.invariants.mixed import (
    FLOAT16_EPS,
    mixed_precision,
)
# isort: on

__all__ = [
    "COMPILE_FROM_UPDATES",
    "DETERMINISM_TRAIN_STEPS",
    "FLOAT16_EPS",
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
    "asset_permutation_equivariance",
    "batch_independence",
    "deterministic",
    "dropout_zero_is_identity",
    "execution_modes_agree",
    "gradient_check",
    "gradients_finite",
    "gradients_nonzero",
    "init_near_uniform",
    "loss_decreases",
    "loss_drop",
    "mixed_precision",
    "output_shape",
    "serialization_roundtrip",
    "simplex_output",
    "state_is_output",
    "state_matters",
]
