"""Every invariant fails on some deliberately broken cell, each mutant is
caught by the invariants it targets, and the shipped cell passes them all."""

from __future__ import annotations

import re

import pytest

from cellverify.cell import conv_rnn_cell
from cellverify.checks.judges.invariants import INVARIANTS
from cellverify.errors import InvariantViolation
from cellverify.mutation import DEFAULT_CASE, KILLED, MUTANTS, KillMatrix, Mutant, kill_matrix

pytestmark = pytest.mark.usefixtures("fresh_keras")

TARGETS = [(m.name, name) for m in MUTANTS.values() for name in m.kills]

#: What each mutant's violation says, clause by clause: the message of the
#: clause it is written to break, not just the invariant's name.  Taking a
#: clause out of its invariant makes its row here fail (docs/invariants.md,
#: "A mutant per clause").
CLAUSE_MESSAGES = {
    ("WrongOutputShape", "output_shape"): r"RNN output has shape \[3, 2, 3\], expected",
    ("StateHasExtraSlot", "output_shape"): r"final state has shape \[3, 5\], expected .* \[3, 4\]",
    ("SoftmaxOverWrongAxis", "simplex_output"): r"training=False.*a row sums to 1\.3",
    ("PaddedSoftmax", "simplex_output"): r"training=False.*a row sums to 0\.8",
    ("OutputDropoutInTraining", "simplex_output"): r"\(training=True, .*a row sums to",
    ("LongShort", "simplex_output"): r"has a negative entry -0\.",
    ("NanOnLargeMoves", "simplex_output"): r"output .* is NaN .* on windows with 20 % moves",
    ("NanOnNearlyFlat", "simplex_output"): r"output .* is NaN .* on a nearly flat window",
    ("NanOnNearlyFlat", "gradients_finite"): r"output \(training\) .* is NaN .* nearly flat",
    ("NanOnNearlyFlat", "state_is_output"): r"output .* is NaN .* on a nearly flat window",
    ("StateNotFedBack", "state_is_output"): r"at step 0 the new state .* differs",
    ("StateNotFedBack", "state_matters"): r"moved by 0 when the input of the step before changed",
    ("StepCounter", "state_is_output"): r"RNN output at step 0, against stepping the cell",
    ("StateIgnored", "state_matters"): r"moved by 0 when the state went from uniform",
    ("AssetsMixed", "asset_permutation_equivariance"): r"for assets permuted by .* differs by",
    ("BatchLeak", "batch_independence"): r"example 0's output run alone, against its row",
    ("NanGradient", "gradients_finite"): r"gradient of .*conv1/kernel .* non-finite entries",
    ("ZeroPortfolio", "gradients_finite"): r"portfolio loss is inf on finite outputs",
    ("Frozen", "gradients_nonzero"): r"the cell has no trainable variables",
    ("DeadConv1", "gradients_nonzero"): r"conv1/kernel .* moves no logit \(its units are dead\)",
    ("StopGradientConv1", "gradients_nonzero"): r"conv1/kernel .* moves the logits unevenly",
    ("StopGradientConv1Opaque", "gradients_nonzero"): r"conv1/kernel .* moves the output by",
    ("DeadAtBirth", "gradients_nonzero"): r"the whole gradient is exactly 0",
    ("StopGradientConv1", "gradient_check"): r"conv1/kernel .*autodiff must lie between them",
    ("GradientSignFlipped", "gradient_check"): r"autodiff must lie between them",
    ("WrongGradientAtKink", "gradient_check"): r"conv2/bias .*autodiff must lie between them",
    ("DropoutOnAtInference", "gradient_check"): r"cannot be checked: .* random in inference",
    ("GradientSignFlipped", "loss_decreases"): r"loss on a fixed batch .* in 20 adam steps",
    ("WeightsUnused", "loss_decreases"): r"loss on a fixed batch .* in 200 adam steps",
    ("DropoutRedrawsWeights", "dropout_zero_is_identity"): r"training-mode output .* differs",
    ("RateZeroDropoutBendsGradient", "dropout_zero_is_identity"): r"gradient 0 with rate-0",
    ("EagerGraphDiffer", "execution_modes_agree"): r"the tf\.function output, against eager",
    ("XlaUncompilable", "execution_modes_agree"): r"XLA failed on inputs",
    ("DropoutOnAtInference", "deterministic"): r"one model's output, called twice at inference",
    ("SeedIgnored", "deterministic"): r"the output of two cells built with seed 1",
    ("UnseededTrainingDropout", "deterministic"): r"the losses of two 2-step runs",
    ("ConfigRejected", "serialization_roundtrip"): r"from_config\(cell\.get_config\(\)\) failed",
    ("ConfigForgetsKernels", "serialization_roundtrip"): r"rebuilt from get_config\(\) has other",
    ("ConfigForgetsActivation", "serialization_roundtrip"): r"output of the cell rebuilt by",
    ("NotRegistered", "serialization_roundtrip"): r"saving to / loading from \.keras failed",
    ("SavesWrongCashBias", "serialization_roundtrip"): r"model reloaded from \.keras .* differs",
    ("SaturatedAtInit", "init_near_uniform"): r"the softmax is saturated at birth",
    ("DeadAtBirth", "init_near_uniform"): r"6 of 6 untrained output rows .* are exactly uniform",
    ("OutputStopsGradient", "init_near_uniform"): r"the untrained gradient is exactly 0",
    ("Float32Constant", "mixed_precision"): r"cannot be built and run under mixed_float16",
    ("Float16Overflow", "mixed_precision"): r"the output under mixed_float16 .* is NaN",
    ("VarianceByHand", "mixed_precision"): r"output .* under mixed_float16 differs from float32",
    ("HalfGradientScaled", "mixed_precision"): r"gradient of .* under mixed_float16 differs",
    ("SeqDropsAUnit", "output_shape"): r"RNN output has shape \[3, 3, 3\], expected .* \[3, 3, 4\]",
    ("SeqStateStuck", "state_matters"): r"when the input of the step before changed",
    ("SeqNanGradient", "gradients_finite"): r"gradient of .*mixer/kernel .* non-finite entries",
    ("SeqCutGradient", "gradients_nonzero"): r"side/kernel .* moves the output by",
    ("SeqSignFlipped", "gradient_check"): r"regression loss .* autodiff must lie between them",
    ("SeqSignFlipped", "loss_decreases"): r"regression loss on a fixed batch .* in 20 adam steps",
    (
        "SeqTrainingScales",
        "dropout_zero_is_identity",
    ): r"every dropout rate at 0, against inference",
    ("SeqEagerDiffers", "execution_modes_agree"): r"the tf\.function output, against eager",
    ("SeqDropoutAtInference", "deterministic"): r"called twice at inference",
    ("SeqConfigForgetsUnits", "serialization_roundtrip"): r"rebuilt from get_config\(\) has other",
    ("SeqBatchLeak", "batch_independence"): r"example 0's output run alone",
    ("SeqFloat16Overflow", "mixed_precision"): r"the output under mixed_float16 .* is NaN",
    ("SeqSoftmaxOverBatch", "simplex_output"): r"a row sums to 1\.8",
    ("SeqSaturated", "init_near_uniform"): r"the softmax is saturated at birth",
}


def test_every_invariant_is_targeted_by_some_mutant():
    targeted = {name for m in MUTANTS.values() for name in m.kills}
    assert targeted == set(INVARIANTS)


def test_every_clause_of_every_invariant_is_the_aim_of_some_mutant():
    aimed = {(i, c) for m in MUTANTS.values() for i, c in m.clauses.items()}
    declared = {(i, c) for i, inv in INVARIANTS.items() for c in inv.clauses}
    assert declared <= aimed, sorted(declared - aimed)


def test_every_built_in_mutant_target_has_its_clause_message():
    assert set(CLAUSE_MESSAGES) == set(TARGETS)


@pytest.mark.parametrize(("mutant", "invariant"), TARGETS)
def test_mutant_is_caught_by_the_clause_it_targets(mutant, invariant):
    m = MUTANTS[mutant]
    with pytest.raises(InvariantViolation) as info:
        INVARIANTS[invariant](m.factory, m.case)
    assert info.value.invariant == invariant
    assert str(info.value).startswith(f"[{invariant}] ")
    assert info.value.clause == m.clauses[invariant]
    assert re.search(CLAUSE_MESSAGES[mutant, invariant], str(info.value)), str(info.value)


@pytest.mark.parametrize(("mutant", "invariant"), TARGETS)
def test_mutant_is_caught_by_its_invariant_under_the_ci_gate(mutant, invariant):
    """Not just on the case the mutant was written with: the gate's own
    search (covering cases, then the random search) finds and shrinks it."""
    from cellverify.checks.runs.suite import run_invariant

    result = run_invariant(INVARIANTS[invariant], MUTANTS[mutant].factory, profile="ci")
    assert result.status == "failed", result.message
    assert result.message.startswith(f"[{invariant}] ")
    assert result.clause == MUTANTS[mutant].clauses[invariant], result.message
    assert result.falsifying.train.batch_size <= MUTANTS[mutant].case.train.batch_size


@pytest.mark.parametrize("invariant", sorted(INVARIANTS))
def test_shipped_cell_passes_every_invariant_on_the_mutants_case(invariant):
    INVARIANTS[invariant](conv_rnn_cell, DEFAULT_CASE)


@pytest.mark.parametrize("simplex", [False, True])
@pytest.mark.parametrize("invariant", sorted(INVARIANTS))
def test_the_healthy_cell_of_another_kind_passes_every_applicable_invariant(invariant, simplex):
    """So that a kill of its twins is the twin's doing, not the case's."""
    from cellverify.checks.cases.case import Case
    from cellverify.checks.mutants import sequence
    from cellverify.checks.mutants.mutation import SEQUENCE_CASE

    spec = sequence.classifier_spec() if simplex else sequence.sequence_spec()
    task = "distribution" if simplex else "regression"
    case = Case(SEQUENCE_CASE.cell, SEQUENCE_CASE.train.replace(task=task), SEQUENCE_CASE.inputs)
    if INVARIANTS[invariant].why_not_applicable(spec.contract) is None:
        INVARIANTS[invariant](spec, case)


def test_every_invariant_that_runs_on_any_cell_is_killed_by_a_cell_of_another_kind():
    from cellverify.spec import CellSpec

    aimed = {i for m in MUTANTS.values() if isinstance(m.factory, CellSpec) for i in m.kills}
    generic = {
        name
        for name, inv in INVARIANTS.items()
        if inv.why_not_applicable(MUTANTS["SeqDropsAUnit"].factory.contract) is None
    }
    assert generic <= aimed, sorted(generic - aimed)


def test_kill_matrix_reports_an_invariant_no_mutant_breaks():
    matrix = kill_matrix(["state_matters", "output_shape"], ["StateIgnored"])
    assert matrix.cells["StateIgnored", "state_matters"] == KILLED
    assert matrix.unkilled() == ["output_shape"]
    assert not matrix.complete
    assert matrix.to_dict()["unkilled"] == ["output_shape"]


def test_kill_matrix_reports_a_mutant_that_escapes_its_target():
    harmless = Mutant("Harmless", conv_rnn_cell, kills=("output_shape",))
    from cellverify.mutation import register_mutant

    register_mutant(harmless)
    try:
        matrix = kill_matrix(["output_shape"], ["Harmless"])
    finally:
        del MUTANTS["Harmless"]
    assert matrix.escaped() == [("Harmless", "output_shape")]
    assert isinstance(matrix, KillMatrix)


def test_a_batch_leak_is_caught_by_batch_independence_alone():
    """BatchLeak equals the shipped cell at batch 1: every invariant that
    compares a batch with itself passes it."""
    matrix = kill_matrix(mutants=["BatchLeak"])
    killed = [i for i in matrix.invariants if matrix.cells["BatchLeak", i] == KILLED]
    assert killed == ["batch_independence"]


@pytest.mark.parametrize("mutant", ["DeadAtBirth", "WeightsUnused", "Frozen"])
def test_a_cell_that_cannot_learn_fails_loss_decreases_even_trained_longer(mutant):
    """Slow is trained longer (LOSS_EXTENDED_STEPS); dead stays dead."""
    with pytest.raises(InvariantViolation, match=r"in 200 adam steps") as info:
        INVARIANTS["loss_decreases"](MUTANTS[mutant].factory, DEFAULT_CASE)
    assert info.value.clause == "drop"
