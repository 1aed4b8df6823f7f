"""The losses: the kit's order (weights, target), Keras's order for compile
(y_true, y_pred), and the per-example NumPy losses behind the evaluation's
standard error."""

from __future__ import annotations

import numpy as np
import pytest

from cellverify.model import example_losses, keras_loss, loss_for

RNG = np.random.default_rng(0)
WEIGHTS = RNG.dirichlet(np.ones(4), size=(3, 2)).astype(np.float32)
RELATIVES = (1 + 0.01 * RNG.standard_normal((3, 2, 4))).astype(np.float32)
TARGETS = RNG.dirichlet(np.ones(4), size=(3, 2)).astype(np.float32)


@pytest.mark.parametrize(("task", "target"), [("portfolio", RELATIVES), ("supervised", TARGETS)])
def test_keras_loss_takes_the_target_first(task, target):
    kit = float(loss_for(task)(WEIGHTS, target))
    assert float(keras_loss(task)(target, WEIGHTS)) == kit
    if task == "supervised":  # cross-entropy is not symmetric: the order matters
        assert float(loss_for(task)(target, WEIGHTS)) != pytest.approx(kit)


@pytest.mark.parametrize(("task", "target"), [("portfolio", RELATIVES), ("supervised", TARGETS)])
def test_example_losses_average_to_the_batch_loss(task, target):
    per_example = example_losses(task, WEIGHTS, target)
    assert per_example.shape == (3,)
    assert per_example.mean() == pytest.approx(float(loss_for(task)(WEIGHTS, target)), rel=1e-5)


def test_every_configured_task_has_its_task_object_and_loss():
    from cellverify.data.tasks import TASK_OBJECTS, task
    from cellverify.model import LOSSES
    from cellverify.vocabulary import TASKS

    assert set(TASK_OBJECTS) == set(TASKS) == set(LOSSES)
    assert all(task(name).name == name for name in TASKS)


def test_an_unknown_task_is_a_config_error_naming_the_tasks():
    from cellverify.errors import InvalidConfig
    from cellverify.model import loss_for

    tasks = "one of portfolio, supervised, regression, distribution"
    with pytest.raises(InvalidConfig, match=rf"{tasks}\. Received: task='ce'"):
        loss_for("ce")
