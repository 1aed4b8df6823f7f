"""Any Keras recurrent cell: a ``CellSpec`` (or a bare cell class) is checked
by what it is.  Keras's own cells pass with derived specs; outside cells of
other kinds (tests/generic_cells.py) pass, and each of their broken twins
fails the invariant its defect breaks; an invariant that does not apply is
reported as such; coverage counts only the spec's own fields."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import pytest
from hypothesis import strategies as st

from cellverify import CellSpec, spec_from_class
from cellverify.checks.cases.case import Case
from cellverify.checks.draws.spec_space import SpecSpace
from cellverify.checks.judges.catalog import check
from cellverify.checks.judges.invariants import INVARIANTS
from cellverify.checks.judges.invariants.gradients import GRADIENTS_MIN_STEPS
from cellverify.checks.judges.invariants.learning import (
    LOSS_EXTENDED_STEPS,
    LOSS_TRAIN_STEPS,
    _needed,
    loss_drop,
)
from cellverify.checks.runs.results import CheckStatus
from cellverify.checks.runs.suite import run_invariant
from cellverify.config import CellConfig, TrainConfig
from cellverify.contracts import Params
from cellverify.data import InputSpec
from cellverify.errors import InvalidConfig

from .fresh_process import run_cli, run_pytest
from .generic_cells import BROKEN, CLASSIFIER, FORECASTER, GRU_EXAMPLE, LATE_INIT, lstm_scorer

pytestmark = pytest.mark.usefixtures("fresh_keras")

#: What a real output that is not its state promises nothing of.
NOT_FOR_A_REAL_OUTPUT = {
    "simplex_output",
    "state_is_output",
    "asset_permutation_equivariance",
    "init_near_uniform",
}
#: What a simplex output that is not its state, with no dropout rate among
#: its parameters, promises nothing of.
NOT_FOR_A_CLASSIFIER = {
    "state_is_output",
    "asset_permutation_equivariance",
    "dropout_zero_is_identity",
}
KERAS_CELLS = (keras.layers.SimpleRNNCell, keras.layers.GRUCell, keras.layers.LSTMCell)
#: The invariant each twin's defect breaks, and the clause that says so.
TWIN_TARGETS = {
    "ForecasterBatchLeak": ("batch_independence", "example_alone"),
    "ForecasterNanOnZeroStep": ("gradients_finite", "non_finite"),
    "ForecasterStateStuck": ("state_matters", "carries"),
    "ForecasterDropoutAtInference": ("deterministic", "inference_repeat"),
    "ForecasterWrongGradient": ("gradient_check", "derivative"),
    "ForecasterOverflow": ("gradients_finite", "non_finite"),
    "ClassifierBatchLeak": ("batch_independence", "example_alone"),
    "ClassifierNanOnZeroStep": ("gradients_finite", "non_finite"),
    "ClassifierStateStuck": ("state_matters", "carries"),
    "ClassifierDropoutAtInference": ("deterministic", "inference_repeat"),
    "ClassifierWrongGradient": ("gradient_check", "derivative"),
    "ClassifierOverflow": ("gradients_finite", "non_finite"),
    "ClassifierSoftmaxOverBatch": ("simplex_output", "sum"),
}


# -- the example, as a user runs it ----------------------------------


@pytest.mark.slow
def test_the_gru_example_passes_as_a_test_file_in_an_empty_directory(tmp_path):
    (tmp_path / "test_gru.py").write_text(GRU_EXAMPLE)
    result = run_pytest(tmp_path, "-rs", env={"CI": "true"})
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-2000:]
    applicable = len(INVARIANTS) - len(NOT_FOR_A_REAL_OUTPUT)
    assert f"{applicable} passed, {len(NOT_FOR_A_REAL_OUTPUT)} skipped" in out, out[-2000:]
    assert "not applicable: it needs simplex output" in out
    assert not list(tmp_path.glob("conftest.py"))


@pytest.mark.slow
def test_the_gru_example_runs_from_the_command_line_and_prints_its_spec(tmp_path):
    report = tmp_path / "check.json"
    selected = ["output_shape", "state_matters", "simplex_output", "mixed_precision"]
    run = run_cli(
        tmp_path, "check", "--cell", "mymodule:GRU", "--profile", "dev",
        *(a for name in selected for a in ("-k", name)), "--jobs", "1", "--json", str(report),
        module=GRU_EXAMPLE,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "spec GRUCell: draws units 1..16; activation tanh, elu; dropout 0.0, 0.3" in run.stdout
    data = json.loads(report.read_text())
    statuses = {r["name"]: r["status"] for r in data["invariants"]}
    assert statuses["simplex_output"] == CheckStatus.NOT_APPLICABLE
    assert {statuses[n] for n in ("output_shape", "state_matters", "mixed_precision")} == {
        CheckStatus.PASSED
    }
    assert data["spec"]["params"]["units"] == "1..16"


# -- Keras's own cells, with derived specs -----------------------------------


@pytest.mark.parametrize("cls", KERAS_CELLS, ids=lambda c: c.__name__)
def test_a_spec_derived_from_a_keras_cell_draws_its_own_parameters_and_names_the_rest(cls):
    spec, left = spec_from_class(cls)
    drawn = spec.describe()["params"]
    assert drawn["units"] == "1..8"
    assert drawn["activation"] == "tanh, sigmoid, elu, softsign, linear"
    assert drawn["dropout"] == drawn["recurrent_dropout"] == "0.0, 0.3"
    assert drawn["use_bias"] == "False, True"
    assert "bias_initializer" in left and "seed" not in drawn and "seed" not in left
    assert spec.contract.dropout == ("dropout", "recurrent_dropout")


@pytest.mark.slow
@pytest.mark.parametrize("cls", KERAS_CELLS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("invariant", sorted(INVARIANTS))
def test_keras_cells_pass_every_applicable_invariant_with_derived_specs(cls, invariant):
    spec, _ = spec_from_class(cls)
    result = run_invariant(INVARIANTS[invariant], spec, profile="ci")
    if invariant in NOT_FOR_A_REAL_OUTPUT:
        assert result.status == CheckStatus.NOT_APPLICABLE, result.message
    else:
        assert result.status == CheckStatus.PASSED, result.message
        assert result.coverage is not None and result.coverage["complete"], result.coverage


# -- outside cells of other kinds, and their broken twins ---------------------


@pytest.mark.slow
@pytest.mark.parametrize("invariant", sorted(INVARIANTS))
@pytest.mark.parametrize("spec", [FORECASTER, CLASSIFIER], ids=["forecaster", "classifier"])
def test_outside_cells_of_other_kinds_pass_every_applicable_invariant(spec, invariant):
    result = run_invariant(INVARIANTS[invariant], spec, profile="ci")
    skipped = NOT_FOR_A_REAL_OUTPUT if spec is FORECASTER else NOT_FOR_A_CLASSIFIER
    expected = CheckStatus.NOT_APPLICABLE if invariant in skipped else CheckStatus.PASSED
    assert result.status == expected, result.message


def test_each_outside_cell_has_at_least_six_broken_twins_each_aimed_at_an_invariant():
    assert set(TWIN_TARGETS) == set(BROKEN)
    for family in ("Forecaster", "Classifier"):
        assert sum(name.startswith(family) for name in BROKEN) >= 6
    defects = {defect for _, defect in BROKEN.values()}
    assert len(defects) == 7


@pytest.mark.slow
@pytest.mark.parametrize("twin", sorted(TWIN_TARGETS))
def test_each_broken_twin_fails_the_invariant_its_defect_breaks_under_the_ci_gate(twin):
    invariant, clause = TWIN_TARGETS[twin]
    spec, defect = BROKEN[twin]
    result = run_invariant(INVARIANTS[invariant], spec, profile="ci")
    assert result.status == CheckStatus.FAILED, f"{defect}: {result.status} {result.message}"
    assert result.clause == clause, result.message


def test_an_invariant_that_does_not_apply_is_reported_with_its_reason_and_does_not_run():
    result = run_invariant(INVARIANTS["simplex_output"], FORECASTER, profile="ci")
    assert result.status == CheckStatus.NOT_APPLICABLE
    assert result.examples == 0
    assert "needs simplex output" in result.message and "output='real'" in result.message


# -- coverage of the spec's own fields ----------------------------------------


def test_coverage_counts_the_specs_own_parameters_and_never_a_field_it_lacks():
    result = run_invariant(INVARIANTS["output_shape"], FORECASTER, profile="ci")
    assert result.status == CheckStatus.PASSED, result.message
    dims = result.coverage["dimensions"]
    assert set(dims) == {
        "inputs", "units", "dropout", "features", "optimizer", "learning_rate", "batch", "steps",
    }  # fmt: skip
    assert dims["units"]["values"] == ["1", "6"]  # both ends of st.integers(1, 6)
    assert dims["dropout"]["values"] == ["0.0", "0.3"]
    assert result.coverage["complete"]


def test_a_robust_region_holds_a_specs_dropout_at_zero_and_says_why():
    space = SpecSpace(FORECASTER, INVARIANTS["state_matters"])
    dropout = {d.name: d for d in space.dimensions()}["dropout"]
    assert dropout.values == ("0.0",)
    assert "outside the region" in dropout.left_out["0.3"]
    assert {c.cell.get("dropout") for c in space.covering_cases(0)} == {0.0}


def test_gradients_nonzero_draws_sequences_long_enough_for_a_recurrent_kernel():
    space = SpecSpace(FORECASTER, INVARIANTS["gradients_nonzero"])
    assert min(c.train.steps for c in space.covering_cases(0)) >= GRADIENTS_MIN_STEPS
    steps = {d.name: d for d in space.dimensions()}["steps"]
    assert steps.values[0] == str(GRADIENTS_MIN_STEPS)


# -- the spec: what it accepts, and how it pins and seeds ----------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"params": {"unitz": [1, 2]}}, "params"),
        ({"output": "probabilities"}, "output"),
        ({"features": 0}, "features"),
    ],
)
def test_a_spec_with_a_mistake_names_the_field_what_is_allowed_and_what_was_received(kwargs, field):
    with pytest.raises(InvalidConfig) as info:
        CellSpec(**{"factory": keras.layers.GRUCell, **kwargs})
    assert f"CellSpec.{field}" in str(info.value) and "Received" in str(info.value)


def test_a_class_with_a_required_keyword_the_kit_cannot_draw_asks_for_a_spec():
    class NeedsVocabulary(keras.layers.Layer):
        def __init__(self, vocabulary, units=4, **kwargs):
            super().__init__(**kwargs)

    with pytest.raises(InvalidConfig, match=r"write a CellSpec for this cell"):
        spec_from_class(NeedsVocabulary)


def test_a_pinned_keyword_outside_the_spec_is_passed_on_and_flagged():
    gru = CellSpec(keras.layers.GRUCell, {"units": st.integers(1, 4)}, features=2)
    space = SpecSpace(gru, INVARIANTS["output_shape"], {"units": 40, "reset_after": False})
    case = space.covering_cases(0)[0]
    assert case.cell.get("units") == 40 and case.cell.get("reset_after") is False
    assert space.outside() == ["units=40 (outside the spec's units)"]


def test_a_spec_builds_the_same_weights_from_the_same_seed():
    gru = CellSpec(keras.layers.GRUCell, {"units": [3]}, features=2)

    def weights(seed: int):
        cell = gru.build(Params({"units": 3}, features=2, seed=seed))
        cell.build((None, 2))
        return [w.numpy().tolist() for w in cell.weights]

    assert weights(5) == weights(5)
    assert weights(5) != weights(6)


# -- loss_decreases, fair to a slow healthy cell -------------------------------


@pytest.mark.slow
def test_loss_decreases_passes_the_lstm_scorer_that_is_slow_at_its_corner():
    """The corner the ci gate found: 3 assets, window 5, 1 feature, LSTM width
    4, RMSprop at 3e-3, batch 1, one step, supervised.  Its loss falls by
    16-19 ulps in 20 steps, which the 16-ulp floor of before called dead
    (docs/invariants.md, "loss_decreases on any cell"), and a little more
    in LOSS_EXTENDED_STEPS: slow, near the line, not dead."""
    cell = CellConfig(
        assets=3, window=5, features=1, kernels=(2, 4, 1), activation="elu",
        output_activation="linear",
    )  # fmt: skip
    train = TrainConfig(
        optimizer="rmsprop", learning_rate=3e-3, batch_size=1, steps=1, task="supervised"
    )
    case = Case(cell, train, InputSpec("market", 1.0, 0))
    start, best, gap = loss_drop(lstm_scorer, case, LOSS_TRAIN_STEPS)
    needed = _needed(start, gap, signed=False)
    assert start - best < 4 * needed  # the corner is near the line
    _, longer, _ = loss_drop(lstm_scorer, case, LOSS_EXTENDED_STEPS)
    assert longer < best  # still moving down after 20 steps, however slowly
    check("loss_decreases", lstm_scorer, case)


def test_the_docs_show_the_example_this_file_runs():
    """docs/gating.md and the README show the spec this file runs (as ruff
    formats it: compared without whitespace and trailing commas)."""

    def bare(text: str) -> str:
        return "".join(text.split()).replace(",}", "}").replace(",)", ")")

    spec = bare(GRU_EXAMPLE.split("class TestGRU")[0].split("GRU = ")[1])
    root = Path(__file__).resolve().parents[1]
    for page in (root / "docs" / "gating.md", root / "README.md"):
        assert spec in bare(page.read_text()), page


def test_a_cell_that_makes_its_weights_at_its_first_call_is_deterministic():
    """Its initializers draw from the global seed when it is built, at its
    first call: two cells built one after the other agree; built side by
    side before either is called, the second would draw from the state the
    first moved (a false failure a user met)."""
    result = run_invariant(INVARIANTS["deterministic"], LATE_INIT, profile="dev")
    assert result.status == CheckStatus.PASSED, result.message
