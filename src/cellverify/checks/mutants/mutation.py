"""Mutation testing as a public API: deliberately broken cells.

An invariant that no broken cell can fail tests nothing.  A :class:`Mutant`
is a cell factory that breaks one thing, the invariants it is written to
break (``kills``), and the case it is run on.
:func:`~cellverify.checks.mutants.kill_matrix.kill_matrix` runs invariants against
mutants and says which ones caught which; ``cellverify
mutants`` prints it and exits 1 when an invariant is caught by no mutant, or
a mutant escapes the invariant it targets.

The built-in mutants each change one thing of the shipped cell, so that the
rest of the kit still runs on them.  Register your own next to your own
invariants (``--invariants MODULE`` imports both)::

    from cellverify.mutation import Mutant, register_mutant

    register_mutant(Mutant("ShortSells", make_short_selling_cell, kills=("long_only",)))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cellverify.checks.cases.case import Case
from cellverify.checks.judges.registry import NON_FINITE
from cellverify.checks.mutants import gradients, precision, reproducibility, sequence, wiring
from cellverify.config import CellConfig, TrainConfig
from cellverify.contracts import Params
from cellverify.data.inputs import InputSpec
from cellverify.model.cell import ConvRNNCell
from cellverify.model.factory import CellFactory

__all__ = [
    "DEFAULT_CASE",
    "MUTANTS",
    "Mutant",
    "mutant_factory",
    "register_mutant",
]

#: The case every mutant is run on unless it names its own: inside the robust
#: region, small, with a cash-free ELU cell and a linear last conv (REMEDIED
#: at a small shape).
DEFAULT_CASE = Case(
    CellConfig(
        assets=4, window=8, kernels=(3, 4, 1), activation="elu", output_activation="linear", seed=1
    ),
    TrainConfig(batch_size=3, steps=2, task="supervised", seed=1),
)


@dataclass(frozen=True)
class Mutant:
    """A deliberately broken cell factory, what it should be caught by, and
    the case to run it on."""

    name: str
    factory: CellFactory
    kills: tuple[str, ...]
    case: Case = DEFAULT_CASE
    description: str = ""
    #: For each invariant it kills, the clause (:attr:`Invariant.clauses`) it
    #: is written to break; an invariant not named here may fail on any.
    clauses: Mapping[str, str] = field(default_factory=dict)


#: Every registered mutant by name, the built-in ones first.
MUTANTS: dict[str, Mutant] = {}


def register_mutant(mutant: Mutant) -> Mutant:
    """Add ``mutant`` to :data:`MUTANTS` (re-registering a name replaces it)."""
    MUTANTS[mutant.name] = mutant
    return mutant


def mutant_factory(cls: type[ConvRNNCell]) -> CellFactory:
    """A cell factory building ``cls``, named after it."""

    def build(config: CellConfig) -> ConvRNNCell:
        return cls(config)

    build.__name__ = build.__qualname__ = cls.__name__
    return build


def _builtin(
    cls: type[Any],
    clauses: Mapping[str, str],
    *,
    cell: Mapping[str, Any] | None = None,
    train: Mapping[str, Any] | None = None,
    inputs: InputSpec | None = None,
) -> None:
    """Register ``cls`` (a cell class is itself a factory, with an import
    path for reproductions) as a mutant killing the ``clauses`` named."""
    case = Case(
        DEFAULT_CASE.cell.replace(**(cell or {})),
        DEFAULT_CASE.train.replace(**(train or {})),
        inputs or DEFAULT_CASE.inputs,
    )
    doc = " ".join((cls.__doc__ or "").split())
    register_mutant(Mutant(cls.__name__, cls, tuple(clauses), case, doc, dict(clauses)))


_NEAR_FLAT = InputSpec(kind="near_flat", seed=1)
_CASH = {"cash_bias": True}

# The cell's wiring (checks/mutants/wiring.py).
_builtin(wiring.WrongOutputShape, {"output_shape": "output"})
_builtin(wiring.StateHasExtraSlot, {"output_shape": "state"})
_builtin(wiring.SoftmaxOverWrongAxis, {"simplex_output": "sum"})
_builtin(wiring.PaddedSoftmax, {"simplex_output": "sum"})
_builtin(wiring.OutputDropoutInTraining, {"simplex_output": "sum"})
_builtin(wiring.LongShort, {"simplex_output": "negative"})
# NaN only on large moves, or on nearly flat windows: they need inputs that have them.
_builtin(
    wiring.NanOnLargeMoves,
    {"simplex_output": NON_FINITE},
    inputs=InputSpec(kind="large_moves", seed=1),
)
_builtin(
    wiring.NanOnNearlyFlat,
    {"simplex_output": NON_FINITE, "gradients_finite": NON_FINITE, "state_is_output": NON_FINITE},
    inputs=_NEAR_FLAT,
)
_builtin(wiring.StateNotFedBack, {"state_is_output": "state", "state_matters": "carries"})
_builtin(wiring.StepCounter, {"state_is_output": "rnn_loop"})
_builtin(wiring.StateIgnored, {"state_matters": "effect"})
_builtin(wiring.AssetsMixed, {"asset_permutation_equivariance": "permuted"})
_builtin(wiring.BatchLeak, {"batch_independence": "example_alone"})
# Training (checks/mutants/gradients.py).
_builtin(gradients.NanGradient, {"gradients_finite": "gradient"})
_builtin(gradients.ZeroPortfolio, {"gradients_finite": "loss"}, train={"task": "portfolio"})
_builtin(gradients.Frozen, {"gradients_nonzero": "no_variables"})
_builtin(gradients.DeadConv1, {"gradients_nonzero": "dead_units"})
_builtin(
    gradients.StopGradientConv1,
    {"gradients_nonzero": "logits_move", "gradient_check": "derivative"},
)
_builtin(gradients.StopGradientConv1Opaque, {"gradients_nonzero": "output_moves"})
_builtin(gradients.GradientSignFlipped, {"gradient_check": "derivative", "loss_decreases": "drop"})
# The units at its kink move every asset's logit alike: only a cash logit shows them.
_builtin(gradients.WrongGradientAtKink, {"gradient_check": "derivative"}, cell=_CASH)
_builtin(gradients.SaturatedAtInit, {"init_near_uniform": "saturated"})
_builtin(
    gradients.DeadAtBirth,
    {"init_near_uniform": "exactly_uniform", "gradients_nonzero": "all_zero"},
)
_builtin(gradients.OutputStopsGradient, {"init_near_uniform": "zero_gradient"})
_builtin(gradients.WeightsUnused, {"loss_decreases": "drop"})
# Reproducibility (checks/mutants/reproducibility.py).
_builtin(
    reproducibility.DropoutOnAtInference,
    {"deterministic": "inference_repeat", "gradient_check": "noisy_loss"},
)
_builtin(reproducibility.SeedIgnored, {"deterministic": "rebuild"})
_builtin(reproducibility.UnseededTrainingDropout, {"deterministic": "training"})
_builtin(reproducibility.DropoutRedrawsWeights, {"dropout_zero_is_identity": "output"})
_builtin(reproducibility.RateZeroDropoutBendsGradient, {"dropout_zero_is_identity": "gradient"})
_builtin(reproducibility.ConfigRejected, {"serialization_roundtrip": "from_config_fails"})
_builtin(reproducibility.ConfigForgetsKernels, {"serialization_roundtrip": "other_weights"})
_builtin(reproducibility.ConfigForgetsActivation, {"serialization_roundtrip": "rebuilt_differs"})
_builtin(reproducibility.NotRegistered, {"serialization_roundtrip": "save_fails"})
_builtin(
    reproducibility.SavesWrongCashBias, {"serialization_roundtrip": "reloaded_differs"}, cell=_CASH
)
_builtin(reproducibility.EagerGraphDiffer, {"execution_modes_agree": "mode_differs"})
_builtin(reproducibility.XlaUncompilable, {"execution_modes_agree": "mode_fails"})
# Precision (checks/mutants/precision.py).
_builtin(precision.Float32Constant, {"mixed_precision": "builds"})
_builtin(precision.Float16Overflow, {"mixed_precision": NON_FINITE})
_builtin(precision.VarianceByHand, {"mixed_precision": "outputs"})
_builtin(precision.HalfGradientScaled, {"mixed_precision": "gradients"})


#: The case every mutant of another kind is run on: the small recurrent cell
#: of checks/mutants/sequence.py over 3 steps of 2-vectors, a batch of 3.
SEQUENCE_CASE = Case(
    Params(sequence.SEQUENCE_CASE_PARAMS, features=2, seed=1),
    TrainConfig(batch_size=3, steps=3, task="regression", seed=1),
    InputSpec("normal", seed=1),
)


def _of_another_kind(cls: type[Any], clauses: Mapping[str, str], *, simplex: bool = False) -> None:
    """Register a twin of the small recurrent cell, described by its spec."""
    spec = sequence.classifier_spec(cls) if simplex else sequence.sequence_spec(cls)
    task = "distribution" if simplex else "regression"
    case = Case(SEQUENCE_CASE.cell, SEQUENCE_CASE.train.replace(task=task), SEQUENCE_CASE.inputs)
    doc = " ".join((cls.__doc__ or "").split())
    register_mutant(Mutant(cls.__name__, spec, tuple(clauses), case, doc, dict(clauses)))


# Cells of another kind (checks/mutants/sequence.py): every invariant that
# runs on any cell fails on one of them too.
_of_another_kind(sequence.SeqDropsAUnit, {"output_shape": "output"})
_of_another_kind(sequence.SeqStateStuck, {"state_matters": "carries"})
_of_another_kind(sequence.SeqNanGradient, {"gradients_finite": "gradient"})
_of_another_kind(sequence.SeqCutGradient, {"gradients_nonzero": "output_moves"})
_of_another_kind(
    sequence.SeqSignFlipped, {"gradient_check": "derivative", "loss_decreases": "drop"}
)
_of_another_kind(sequence.SeqTrainingScales, {"dropout_zero_is_identity": "output"})
_of_another_kind(sequence.SeqEagerDiffers, {"execution_modes_agree": "mode_differs"})
_of_another_kind(sequence.SeqDropoutAtInference, {"deterministic": "inference_repeat"})
_of_another_kind(sequence.SeqConfigForgetsUnits, {"serialization_roundtrip": "other_weights"})
_of_another_kind(sequence.SeqBatchLeak, {"batch_independence": "example_alone"})
_of_another_kind(sequence.SeqFloat16Overflow, {"mixed_precision": NON_FINITE})
_of_another_kind(sequence.SeqSoftmaxOverBatch, {"simplex_output": "sum"}, simplex=True)
_of_another_kind(sequence.SeqSaturated, {"init_near_uniform": "saturated"}, simplex=True)
