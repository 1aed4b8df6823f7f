"""A spec that brings its own task: trained on its loss by every invariant
that trains, known by name in every process that imports the spec, and a
mistake in it named (cellverify.data.tasks, docs/design.md "Tasks")."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import ops

from cellverify import CellSpec, Params, RegressionTask, Task, TrainConfig
from cellverify.checks.judges.invariants import INVARIANTS
from cellverify.checks.runs.results import CheckStatus
from cellverify.checks.runs.suite import run_invariant
from cellverify.data.sequences import training_sequences
from cellverify.errors import InvalidConfig
from cellverify.model.rnn import loss_for
from cellverify.vocabulary import OWN_TASKS

from .fresh_process import run_cli
from .generic_cells import OWN_TASK_EXAMPLE


@pytest.fixture(autouse=True)
def _own_tasks_forgotten_after_each_test():
    """Each test's own tasks leave the process's registry with it, so that
    other tests see only the built-in task names."""
    before = dict(OWN_TASKS)
    yield
    OWN_TASKS.clear()
    OWN_TASKS.update(before)


#: The invariants that train or take gradients through the task's loss.
TRAINING_INVARIANTS = ("gradients_finite", "gradients_nonzero", "gradient_check", "loss_decreases")


def _example() -> dict:
    namespace: dict = {"__name__": "own_task_example"}
    exec(OWN_TASK_EXAMPLE, namespace)
    return namespace


class _OutputIgnored(RegressionTask):
    """A loss the output does not reach: nothing can learn it."""

    name = "output_ignored"

    def loss(self, outputs, target):
        return ops.mean(ops.square(ops.cast(target, outputs.dtype))) + 0.0 * ops.sum(
            ops.stop_gradient(outputs)
        )

    def example_losses(self, weights, target):
        return np.mean(np.square(target), axis=-1)


def test_a_spec_with_its_own_task_trains_on_that_tasks_loss():
    spec = _example()["GRU"]
    assert spec.training_task == "log_cosh"
    assert TrainConfig(task="log_cosh").task == "log_cosh"
    assert loss_for("log_cosh") == spec.task.loss


def test_an_own_tasks_numpy_losses_agree_with_its_keras_loss():
    task = _example()["GRU"].task
    batch = training_sequences(
        Params(features=3), TrainConfig(batch_size=4, steps=5, task="log_cosh"), 0
    )
    target = batch.target("log_cosh", 2)
    outputs = np.random.default_rng(0).standard_normal((4, 5, 2)).astype(np.float32)
    keras_value = float(task.loss(ops.convert_to_tensor(outputs), target))
    assert np.mean(task.example_losses(outputs, target)) == pytest.approx(keras_value, rel=1e-5)
    best = task.uniform_loss(batch)
    for c in (np.mean(target), np.median(target), 0.0):
        assert best <= np.mean(np.log(np.cosh(target - c))) + 1e-12


@pytest.mark.slow
@pytest.mark.parametrize("invariant", TRAINING_INVARIANTS)
def test_a_healthy_gru_passes_the_training_invariants_on_its_own_loss(invariant):
    result = run_invariant(INVARIANTS[invariant], _example()["GRU"], profile="ci")
    assert result.status == CheckStatus.PASSED, result.message


@pytest.mark.slow
def test_a_loss_the_output_does_not_reach_fails_gradients_nonzero():
    """The control: the invariants train on the spec's task, not on a
    built-in one, so a task whose loss ignores the output is caught."""
    spec = CellSpec(keras.layers.GRUCell, params={"units": [2, 4]}, task=_OutputIgnored())
    result = run_invariant(INVARIANTS["gradients_nonzero"], spec, profile="dev")
    assert result.status == CheckStatus.FAILED, result.message


@pytest.mark.slow
def test_workers_know_the_own_task_of_a_spec_named_on_the_command_line(tmp_path: Path):
    report = tmp_path / "check.json"
    run = run_cli(
        tmp_path, "check", "--cell", "mymodule:GRU", "--profile", "dev",
        "-k", "gradients_nonzero", "-k", "loss_decreases", "--jobs", "2", "--json", str(report),
        module=OWN_TASK_EXAMPLE,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "trains on task log_cosh" in run.stdout
    data = json.loads(report.read_text())
    assert data["spec"]["task"] == "log_cosh"
    statuses = {r["name"]: r["status"] for r in data["invariants"]}
    assert statuses["gradients_nonzero"] == statuses["loss_decreases"] == CheckStatus.PASSED


@pytest.mark.slow
def test_diagnose_trains_a_spec_on_its_own_task_though_this_process_never_imports_it(tmp_path):
    """The command line's process never imports the cell: it knows the
    spec's task by the name its workers report."""
    run = run_cli(
        tmp_path, "diagnose", "--cell", "mymodule:GRU", "--seeds", "2", "--train-steps", "20",
        "--jobs", "2", module=OWN_TASK_EXAMPLE,
    )  # fmt: skip
    assert run.returncode in (0, 1), run.stdout[-3000:] + run.stderr[-2000:]
    assert "log_cosh task" in run.stdout and "verdict:" in run.stdout, run.stdout[-3000:]


def test_a_task_known_here_by_name_only_says_where_it_is_defined():
    from cellverify.data.tasks import task
    from cellverify.vocabulary import know_task_name

    know_task_name("defined_in_workers")
    assert TrainConfig(task="defined_in_workers").task == "defined_in_workers"
    with pytest.raises(InvalidConfig, match="import the module of the spec that brings it"):
        task("defined_in_workers")


class _NoLoss(RegressionTask):
    name = "no_loss"


class _Clash(_OutputIgnored):
    name = "regression"


class _Unnamed(_OutputIgnored):
    name = ""


@pytest.mark.parametrize(
    ("task", "field", "words"),
    [
        ("nonesuch", "task", "one of portfolio, supervised, regression, distribution"),
        (RegressionTask, "task", "(RegressionTask(), not the class)"),
        (_NoLoss(), "task", "it lacks loss"),
        (Task(), "task.name", "a non-empty string"),
        (_Unnamed(), "task.name", "a non-empty string"),
        (42, "task", "a task's name (a string) or an instance of a cellverify.Task subclass"),
        (_Clash(), "task.name", "a name other than a built-in task's"),
        ("distribution", "task", "regression for a real output, or a task of the spec's own"),
        ("portfolio", "task", "regression for a real output"),
    ],
    ids=[
        "unknown-name", "a-class", "no-loss", "bare-task", "empty-name", "a-number",
        "built-in-name", "another-outputs-task", "a-portfolio-task",
    ],
)  # fmt: skip
def test_a_mistaken_task_names_what_is_wrong_allowed_and_received(task, field, words):
    with pytest.raises(InvalidConfig) as caught:
        CellSpec(keras.layers.GRUCell, task=task)
    assert caught.value.field == field and words in str(caught.value), str(caught.value)


def test_two_different_tasks_under_one_name_are_refused():
    class First(_OutputIgnored):
        name = "twice_named"

    class Second(_OutputIgnored):
        name = "twice_named"

    CellSpec(keras.layers.GRUCell, task=First())
    with pytest.raises(InvalidConfig) as caught:
        CellSpec(keras.layers.GRUCell, task=Second())
    assert "a name no other task has ('twice_named' names " in str(caught.value)
    assert "Received: task.name='twice_named'" in str(caught.value)


def test_the_docs_show_the_own_task_example_as_it_is_tested():
    gating = (Path(__file__).resolve().parents[1] / "docs" / "gating.md").read_text()
    missing = [line for line in OWN_TASK_EXAMPLE.strip().splitlines() if line not in gating]
    assert not missing, missing


def test_a_module_whose_spec_is_mistaken_is_named_as_such_not_as_unimportable(
    tmp_path, monkeypatch
):
    from cellverify.errors import BadCellFactory
    from cellverify.model.factory import load_factory

    (tmp_path / "mistaken_spec.py").write_text(
        "import keras\nfrom cellverify import CellSpec, RegressionTask\n"
        "SPEC = CellSpec(keras.layers.GRUCell, task=RegressionTask)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(BadCellFactory) as caught:
        load_factory("mistaken_spec:SPEC")
    message = str(caught.value)
    assert (
        "module 'mistaken_spec' of cell factory 'mistaken_spec:SPEC' makes a mistaken spec"
        in message
    )
    assert "(RegressionTask(), not the class)" in message and "cannot import" not in message
