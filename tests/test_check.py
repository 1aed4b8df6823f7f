"""`cellverify check` and the suite runner behind it."""

from __future__ import annotations

import json

import pytest

from cellverify.cell import conv_rnn_cell
from cellverify.checks.cases.case import Case
from cellverify.checks.draws.strategies import any_cases
from cellverify.checks.judges.catalog import check
from cellverify.checks.judges.invariants import INVARIANTS
from cellverify.checks.runs.suite import run_invariant, run_suite
from cellverify.cli import main
from cellverify.config import CellConfig, TrainConfig
from cellverify.data import InputSpec
from cellverify.errors import InvariantViolation
from cellverify.mutation import MUTANTS

from .fresh_process import run_fresh

SOFTMAX_OVER_WRONG_AXIS = MUTANTS["SoftmaxOverWrongAxis"].factory

pytestmark = [
    pytest.mark.usefixtures("fresh_keras"),
    # The SoftmaxOverWrongAxis mutant makes Keras warn, rightly.
    pytest.mark.filterwarnings("ignore:You are using a softmax over axis 0"),
]


def test_a_failure_is_shrunk_to_a_minimal_case_with_its_message():
    result = run_invariant(INVARIANTS["simplex_output"], SOFTMAX_OVER_WRONG_AXIS, profile="ci")
    assert result.status == "failed"
    assert result.message.startswith("[simplex_output] ")
    # Shrinking drives every field it can to its simplest value.
    assert result.falsifying.cell.assets == 2
    assert result.falsifying.train.batch_size == 1


def test_ci_profile_gives_the_same_examples_and_result_twice():
    runs = [
        run_invariant(INVARIANTS["simplex_output"], SOFTMAX_OVER_WRONG_AXIS, profile="ci")
        for _ in range(2)
    ]
    assert runs[0].examples == runs[1].examples
    assert runs[0].falsifying == runs[1].falsifying
    assert runs[0].message == runs[1].message


def test_unselected_invariants_are_skipped_not_run():
    from cellverify.cell import conv_rnn_cell

    result = run_suite(conv_rnn_cell, cell="shipped", profile="dev", select=["output_shape"])
    statuses = {r.name: r.status for r in result.results}
    assert statuses.pop("output_shape") == "passed"
    assert set(statuses.values()) == {"skipped"}
    assert result.passed


def test_check_exits_1_and_writes_the_json_report_on_a_broken_cell(tmp_path, capsys):
    path = tmp_path / "report.json"
    code = main(
        [
            "check",
            "--cell",
            "tests.cli_cells:softmax_over_wrong_axis",
            "--profile",
            "ci",
            "-k",
            "simplex",
            "-k",
            "output_shape",
            "--json",
            str(path),
        ]
    )
    assert code == 1
    report = json.loads(path.read_text())
    assert set(report) == {"cell", "profile", "passed", "pinned", "invariants"}
    assert report["pinned"] == {}
    assert report["cell"] == "tests.cli_cells:softmax_over_wrong_axis"
    assert report["profile"] == "ci"
    assert report["passed"] is False
    rows = {r["name"]: r for r in report["invariants"]}
    assert list(rows) == list(INVARIANTS)
    failed = rows["simplex_output"]
    assert failed["status"] == "failed"
    assert set(failed["falsifying"]) == {"cell", "train", "inputs"}
    assert failed["examples"] >= 1
    assert rows["output_shape"]["status"] == "passed"
    assert rows["output_shape"]["falsifying"] is None
    out = capsys.readouterr().out
    assert "FAILED simplex_output" in out
    assert "minimal falsifying case (paste into a test)" in out


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_such_module_xyz:cell", "cannot import module"),
        ("builtins:repr", "must return a keras.layers.Layer. Received: str"),
        ("cellverify.cell", "MODULE:ATTRIBUTE"),
        (
            "tests.cli_cells:wrong_output_shape",
            "the cell's output must be [batch, outputs] = [2, 3]",
        ),
    ],
)
def test_check_exits_2_on_a_bad_factory(spec, message, capsys):
    # In this process; the same exit from the workers is tested below.
    assert main(["check", "--jobs", "1", "--cell", spec]) == 2
    assert message in capsys.readouterr().err


def test_check_exits_2_on_an_unknown_profile_in_the_environment(monkeypatch, capsys):
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "fast")
    assert main(["check"]) == 2
    assert "Received: value='fast'" in capsys.readouterr().err


@pytest.mark.slow
def test_hypothesis_finds_the_questions_fragility_and_shrinks_it_to_a_relu():
    """Searching the whole space with gradients_nonzero, Hypothesis finds a
    cell whose gradient dies and shrinks it: every field it can simplify goes
    to its simplest value, and what is left standing is the cause - a ReLU,
    before the softmax or in a conv with one kernel (docs/design.md, 'Measured facts')."""
    from cellverify.cell import conv_rnn_cell
    from cellverify.checks.cases.case import Case
    from cellverify.checks.judges.invariants import gradients_nonzero

    result = run_invariant(
        INVARIANTS["gradients_nonzero"], conv_rnn_cell, profile="ci", strategy=any_cases()
    )
    assert result.status == "failed"
    minimal = result.falsifying
    activations = (minimal.cell.activation, minimal.cell.output_activation)
    assert "relu" in activations
    # Everything else is at its simplest: no other field is needed to fail.
    assert set(activations) <= {"relu", "linear"}
    assert minimal.cell.kernels == (1, 1, 1)
    assert minimal.cell.assets == 2
    # The cause, verified: the same case without the ReLU keeps its gradient.
    fixed = minimal.cell.replace(
        activation="elu" if minimal.cell.activation == "relu" else minimal.cell.activation,
        output_activation="linear",
    )
    gradients_nonzero(conv_rnn_cell, Case(fixed, minimal.train, minimal.inputs))


def test_check_and_the_property_suite_draw_from_the_same_strategy_under_each_profile():
    """A case one of them can find, the other can find: ``check --profile P``
    and ``pytest --hypothesis-profile P`` search the same space."""
    from cellverify.checks.runs.search import cases_for, strategy_for

    for profile in ("dev", "ci", "thorough"):
        for name, invariant in INVARIANTS.items():
            assert repr(strategy_for(invariant, profile)) == repr(cases_for(name, profile))


def test_thorough_draws_the_questions_full_shape_and_ci_does_not():
    from hypothesis import find
    from hypothesis.errors import NoSuchExample

    from cellverify.checks.runs.search import strategy_for

    full = (15, 100, 3)

    def shape(case):
        return (case.cell.assets, case.cell.window, case.cell.features)

    invariant = INVARIANTS["output_shape"]
    assert shape(find(strategy_for(invariant, "thorough"), lambda c: shape(c) == full)) == full
    with pytest.raises(NoSuchExample):
        find(
            strategy_for(invariant, "ci"),
            lambda c: shape(c) == full,
            settings=__import__("hypothesis").settings(max_examples=300, database=None),
        )


@pytest.mark.slow
def test_the_questions_preset_fails_gradients_nonzero_and_says_it_is_outside_the_region(
    tmp_path, capsys
):
    path = tmp_path / "check.json"
    argv = ["check", "--preset", "as-asked", "-k", "gradients_nonzero", "--profile", "ci"]
    assert main([*argv, "--jobs", "1", "--json", str(path)]) == 1
    report = json.loads(path.read_text())
    assert report["pinned"]["activation"] == report["pinned"]["output_activation"] == "relu"
    row = next(r for r in report["invariants"] if r["name"] == "gradients_nonzero")
    assert row["status"] == "failed"
    assert row["falsifying"]["cell"]["output_activation"] == "relu"
    assert (row["falsifying"]["cell"]["assets"], row["falsifying"]["cell"]["window"]) == (15, 100)
    assert "activation='relu'" in row["outside_region"]
    assert "OUTSIDE the region" in capsys.readouterr().out


def test_execution_modes_agree_raises_no_retracing_warning_over_many_examples(caplog):
    """Each example compiles a new model; TensorFlow's retracing warning, meant
    for one function called again, would be printed on every run of the gate."""
    result = run_invariant(INVARIANTS["execution_modes_agree"], conv_rnn_cell, profile="ci")
    assert result.status == "passed" and result.examples > 5
    assert not [r for r in caplog.records if "retracing" in r.getMessage()]


def test_loss_decreases_passes_a_healthy_cell_whose_adam_oscillates():
    """Found by the thorough profile: Adam at 3e-2 takes the loss 2 % below its
    start by step 4 and back 0.1 % above it at step 20.  The lowest loss over
    the steps shows the progress; the last one alone called it a failure."""
    case = Case(
        CellConfig(
            assets=4, window=5, features=1, kernels=(4, 6, 1), activation="elu",
            output_activation="selu", initializer="glorot_normal", seed=1,
        ),
        TrainConfig(optimizer="adam", learning_rate=0.03, batch_size=1, steps=1, train_steps=0,
                    task="supervised"),
        InputSpec(kind="market", seed=0),
    )  # fmt: skip
    check("loss_decreases", conv_rnn_cell, case)


def test_loss_decreases_still_fails_an_ascent():
    mutant = MUTANTS["GradientSignFlipped"]
    with pytest.raises(InvariantViolation, match="to at best"):
        check("loss_decreases", mutant.factory, mutant.case)


@pytest.mark.parametrize("min_batch", [0, 5, 2.0])
def test_an_invariant_with_a_least_batch_outside_the_drawn_batches_is_rejected(min_batch):
    from cellverify.checks.judges.registry import invariant
    from cellverify.errors import InvalidConfig

    with pytest.raises(InvalidConfig, match=r"min_batch must be an integer from 1 to 4"):
        invariant("never_registered", min_batch=min_batch)


def test_the_builtin_invariants_are_reported_in_their_documented_order():
    """The order of README's table: importing the invariants' modules registers
    them, so a reordered import would reorder every report."""
    assert list(INVARIANTS)[:15] == [
        "output_shape", "simplex_output", "state_is_output", "state_matters",
        "asset_permutation_equivariance", "gradients_finite", "gradients_nonzero",
        "gradient_check", "loss_decreases", "dropout_zero_is_identity",
        "execution_modes_agree", "deterministic", "serialization_roundtrip",
        "batch_independence", "init_near_uniform",
    ]  # fmt: skip


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_bad_factory_module_or_selection_exits_2_in_this_process_or_the_workers(jobs, capsys):
    assert main(["check", "--jobs", jobs, "--cell", "builtins:repr"]) == 2
    assert "must return a keras.layers.Layer. Received: str" in capsys.readouterr().err
    assert main(["check", "--jobs", jobs, "--invariants", "no.such.module"]) == 2
    assert "cannot import invariant module 'no.such.module'" in capsys.readouterr().err
    assert main(["check", "--jobs", jobs, "-k", "nosuch"]) == 2
    assert "-k 'nosuch' matches no invariant" in capsys.readouterr().err


def test_a_parallel_check_leaves_tensorflow_to_its_workers(tmp_path):
    """The command's own process neither lists the invariants nor tries the
    factory: importing TensorFlow there too ran three start-ups on 2 cores."""
    argv = ["check", "-k", "output_shape", "--jobs", "2", "--profile", "ci"]
    words, err = run_fresh(f"from cellverify.cli import main\nprint(main({argv!r}))", tmp_path)
    assert words[-2:] == ["0", "False"], err
