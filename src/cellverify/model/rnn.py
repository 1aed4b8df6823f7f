"""The cell inside ``keras.layers.RNN``, and the two losses.

A model maps ``[batch, steps, assets, window, features]`` to ``[batch, steps,
outputs]``; each step's output is that step's portfolio.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
from keras import ops

from cellverify.config import CellConfig
from cellverify.contracts import Params
from cellverify.data.tasks import CROSS_ENTROPY_EPSILON
from cellverify.data.tasks import task as task_of

__all__ = [
    "LOSSES",
    "build_model",
    "cross_entropy_loss",
    "distribution_loss",
    "example_losses",
    "fresh_session",
    "keras_loss",
    "loss_for",
    "portfolio_loss",
    "regression_loss",
    "step_shape",
]


def step_shape(config: CellConfig | Params) -> tuple[int, ...]:
    """The shape of one step's input: ``[assets, window, features]`` for the
    portfolio contract, ``[features]`` for a spec'd cell."""
    if isinstance(config, Params):
        return (config.features,)
    return (config.assets, config.window, config.features)


def build_model(
    cell: Any,
    cell_config: CellConfig | Params,
    *,
    steps: int | None = None,
    fast: bool = False,
    unroll: bool = False,
) -> keras.Model:
    """Wrap ``cell`` in an RNN returning every step's output.

    ``steps`` fixes the sequence length in the input signature (``None`` leaves
    it free); a fixed length lets XLA compile the loop once.  ``fast`` runs a
    :class:`~cellverify.model.cell.ConvRNNCell` through :class:`~cellverify.model.fast.FastConvRNN`
    (the same function, about 4x faster to train at the question's shape);
    any other cell goes through ``keras.layers.RNN`` as usual, its loop
    unrolled if ``unroll`` (which needs ``steps``).
    """
    inputs = keras.Input(shape=(steps, *step_shape(cell_config)), name="windows")
    from cellverify.model.cell import ConvRNNCell

    if fast and isinstance(cell, ConvRNNCell):
        from cellverify.model.fast import FastConvRNN

        layer: keras.layers.Layer = FastConvRNN(cell, name="rnn")
    else:
        if unroll and steps is None:
            raise ValueError("an unrolled RNN needs a fixed sequence length. Received: steps=None")
        layer = keras.layers.RNN(cell, return_sequences=True, unroll=unroll, name="rnn")
    return keras.Model(inputs, layer(inputs), name="cellverify_model")


def fresh_session() -> None:
    """Clear Keras's global state (layer names, graphs) before building another model.

    Skips the full garbage collection (``free_memory=False``), which costs
    ~0.3 s and is not needed between the kit's small models.
    """
    keras.backend.clear_session(free_memory=False)


def _with_cash(relatives: Any, weights: Any) -> Any:
    """Prepend cash's price relative of 1 when the portfolio has a cash entry."""
    extra = weights.shape[-1] - relatives.shape[-1]
    if extra == 0:
        return relatives
    return ops.concatenate([ops.ones_like(relatives[..., :extra]), relatives], axis=-1)


def portfolio_loss(weights: Any, relatives: Any) -> Any:
    """EIIE's reward, negated: ``-mean(log(sum(w * y)))`` over batch and steps.

    ``relatives`` are next-period price relatives ``[batch, steps, assets]``;
    with a cash entry in ``weights`` (cash first) cash's relative is 1.
    """
    y = _with_cash(ops.cast(relatives, weights.dtype), weights)
    return -ops.mean(ops.log(ops.sum(weights * y, axis=-1)))


def cross_entropy_loss(weights: Any, targets: Any) -> Any:
    """Mean categorical cross-entropy of ``weights`` against target distributions."""
    t = ops.cast(targets, weights.dtype)
    extra = weights.shape[-1] - t.shape[-1]
    if extra:  # cash is never a target
        t = ops.concatenate([ops.zeros_like(t[..., :extra]), t], axis=-1)
    w = ops.clip(weights, CROSS_ENTROPY_EPSILON, 1.0)
    return -ops.mean(ops.sum(t * ops.log(w), axis=-1))


def regression_loss(outputs: Any, target: Any) -> Any:
    """The regression task's loss: the output read out as its mean over units,
    against ``target`` ``[batch, steps]`` (:class:`cellverify.data.tasks.RegressionTask`)."""
    prediction = ops.mean(outputs, axis=-1)
    return ops.mean(ops.square(prediction - ops.cast(target, prediction.dtype)))


def distribution_loss(outputs: Any, target: Any) -> Any:
    """The distribution task's loss: cross-entropy of a simplex output to
    target distributions (clipped as Keras's own is)."""
    t = ops.cast(target, outputs.dtype)
    w = ops.clip(outputs, CROSS_ENTROPY_EPSILON, 1.0)
    return -ops.mean(ops.sum(t * ops.log(w), axis=-1))


#: The differentiable loss of each task, called as ``loss(weights, target)``.
LOSSES: dict[str, Callable[[Any, Any], Any]] = {
    "portfolio": portfolio_loss,
    "supervised": cross_entropy_loss,
    "regression": regression_loss,
    "distribution": distribution_loss,
}


def example_losses(task: str, weights: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Each example's loss, averaged over its steps (NumPy): the losses above
    before their mean over the batch.  ``weights`` ``[batch, steps, outputs]``."""
    return task_of(task).example_losses(weights, target)


def loss_for(task: str) -> Callable[[Any, Any], Any]:
    """The loss of ``task`` (a built-in one, or a spec's own task's
    :meth:`~cellverify.data.tasks.Task.loss`), called as ``loss(weights, target)``."""
    found = task_of(task)  # an unknown task is an InvalidConfig, not a KeyError
    return LOSSES.get(task) or found.loss


def keras_loss(task: str) -> Callable[[Any, Any], Any]:
    """The loss of ``task`` for ``model.compile(loss=...)``, which calls it as
    ``loss(y_true, y_pred)``: the target first."""
    loss = loss_for(task)

    def compiled(y_true: Any, y_pred: Any) -> Any:
        return loss(y_pred, y_true)

    compiled.__name__ = f"{task}_loss"
    return compiled
