"""The two training tasks, and everything that differs between them (NumPy only).

* ``portfolio``: the EIIE reward, ``-mean(log(sum(w * y)))`` with ``y`` the
  next period's price relatives.  A dead (uniform) cell scores the equal-
  weight portfolio's loss; the reference is the greedy momentum oracle, and
  on real prices, where that oracle is no target, none.
* ``supervised``: cross-entropy against ``softmax(last_return / volatility)``.
  A uniform cell scores ``log(n)``; the reference is the targets' entropy.

:func:`task` gives the :class:`Task` of a name in
:data:`cellverify.config.TASKS`; :data:`cellverify.model.LOSSES` holds the
differentiable losses, in Keras ops, under the same names.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from cellverify.config import TASKS
from cellverify.errors import InvalidConfig

__all__ = [
    "CROSS_ENTROPY_EPSILON",
    "TASK_OBJECTS",
    "PortfolioTask",
    "SupervisedTask",
    "Task",
    "task",
]

#: Output probabilities are clipped to this before the log, as Keras's own
#: categorical cross-entropy does, so a saturated output gives a large finite loss.
CROSS_ENTROPY_EPSILON = 1e-7


class Targets(Protocol):
    """What a task's loss compares with: a batch's next-period price
    relatives and its supervised targets (a :class:`cellverify.data.Batch`)."""

    @property
    def relatives(self) -> np.ndarray: ...
    @property
    def targets(self) -> np.ndarray: ...


class BatchArrays(Targets, Protocol):
    """What a task reads of a batch (:class:`cellverify.data.Batch`)."""

    @property
    def inputs(self) -> np.ndarray: ...


class Task:
    """What one task's loss compares with, and the losses that frame it."""

    name: str = ""

    def target(self, batch: Targets) -> np.ndarray:
        """What the loss compares the output with."""
        raise NotImplementedError

    def uniform_loss(self, batch: BatchArrays) -> float:
        """Loss of the uniform output: what a dead cell scores."""
        raise NotImplementedError

    def reference_loss(self, batch: BatchArrays) -> float:
        """Loss a learner that knows the process reaches on this batch."""
        raise NotImplementedError

    def market_reference_loss(self, batch: BatchArrays, momentum: float) -> float:
        """The reference on a market whose momentum is ``momentum`` (NaN for
        real prices, where it is not known)."""
        return self.reference_loss(batch)

    def example_losses(self, weights: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Each example's loss, averaged over its steps: the loss before its
        mean over the batch.  ``weights`` ``[batch, steps, outputs]``."""
        raise NotImplementedError


def _cash_padded(weights: np.ndarray, target: np.ndarray, fill: float) -> np.ndarray:
    """``target`` with cash's entry (first, ``fill``) where the weights have one."""
    extra = weights.shape[-1] - target.shape[-1]
    if not extra:
        return target
    return np.concatenate([np.full_like(weights[..., :extra], fill), target], axis=-1)


class PortfolioTask(Task):
    name = "portfolio"

    def target(self, batch: Targets) -> np.ndarray:
        return batch.relatives

    def uniform_loss(self, batch: BatchArrays) -> float:
        return float(-np.mean(np.log(batch.relatives.mean(axis=-1))))

    def reference_loss(self, batch: BatchArrays) -> float:
        """All weight on the asset whose last return is largest (for positive
        momentum, the highest expected next return): the greedy oracle, not
        the unreachable hindsight optimum."""
        signal = np.log(batch.inputs[:, :, :, -1, 0] / batch.inputs[:, :, :, -2, 0])
        pick = np.argmax(signal, axis=-1)[..., None]
        chosen = np.take_along_axis(batch.relatives, pick, axis=-1)[..., 0]
        return float(-np.mean(np.log(chosen)))

    def market_reference_loss(self, batch: BatchArrays, momentum: float) -> float:
        """NaN on real prices: there the momentum oracle is no target (on the
        S&P 500 it loses to the uniform portfolio), so learning is judged
        against the starting loss's magnitude (:meth:`cellverify.trace.Trace.gap`)."""
        return float("nan") if np.isnan(momentum) else self.reference_loss(batch)

    def example_losses(self, weights: np.ndarray, target: np.ndarray) -> np.ndarray:
        w = np.asarray(weights, np.float64)
        y = _cash_padded(w, np.asarray(target, np.float64), 1.0)  # cash's relative is 1
        return np.asarray(-np.mean(np.log(np.sum(w * y, axis=-1)), axis=-1))


class SupervisedTask(Task):
    name = "supervised"

    def target(self, batch: Targets) -> np.ndarray:
        return batch.targets

    def uniform_loss(self, batch: BatchArrays) -> float:
        return float(np.log(batch.relatives.shape[-1]))

    def reference_loss(self, batch: BatchArrays) -> float:
        """The targets' entropy: cross-entropy's minimum."""
        t = np.clip(batch.targets, 1e-12, 1.0)
        return float(-np.mean(np.sum(batch.targets * np.log(t), axis=-1)))

    def example_losses(self, weights: np.ndarray, target: np.ndarray) -> np.ndarray:
        w = np.asarray(weights, np.float64)
        y = _cash_padded(w, np.asarray(target, np.float64), 0.0)  # cash is never a target
        clipped = np.clip(w, CROSS_ENTROPY_EPSILON, 1.0)
        return np.asarray(-np.mean(np.sum(y * np.log(clipped), axis=-1), axis=-1))


#: Each task of :data:`cellverify.config.TASKS` by name.
TASK_OBJECTS: dict[str, Task] = {t.name: t for t in (PortfolioTask(), SupervisedTask())}


def task(name: str) -> Task:
    """The :class:`Task` called ``name``."""
    if name not in TASK_OBJECTS:
        raise InvalidConfig("TrainConfig", "task", f"one of {', '.join(TASKS)}", name)
    return TASK_OBJECTS[name]
