"""The training tasks, and everything that differs between them (NumPy only).

* ``portfolio``: the EIIE reward, ``-mean(log(sum(w * y)))`` with ``y`` the
  next period's price relatives.  A dead (uniform) cell scores the equal-
  weight portfolio's loss; the reference is the greedy momentum oracle, and
  on real prices, where that oracle is no target, none.
* ``supervised``: cross-entropy against ``softmax(last_return / volatility)``.
  A uniform cell scores ``log(n)``; the reference is the targets' entropy.

Any other cell trains on a task fit for its output (docs/design.md, "Tasks"),
on sequences of its own inputs (:mod:`cellverify.data.sequences`), with a
target that depends on the previous step, so that memory matters:

* ``regression`` (a real output): the kit reads the output out as its mean
  over units and regresses it on ``0.5 * tanh(x[t-1, 0])`` (0 at the first
  step), a target every healthy recurrent cell can reach: it is bounded by
  0.5, so a tanh unit reaches it, and it is the previous step's input, so
  the state must carry it.  A dead (constant) cell at best predicts the
  mean: it scores the target's variance; the reference is 0.
* ``distribution`` (a simplex output): cross-entropy to ``softmax(x[t-1] @
  W)``, W a fixed seeded ``[features, outputs]`` projection (uniform at the
  first step).  A uniform cell scores ``log(n)``; the reference is the
  targets' entropy.

:func:`task` gives the :class:`Task` of a name in
:data:`cellverify.vocabulary.TASKS`; :data:`cellverify.model.LOSSES` holds the
differentiable losses, in Keras ops, under the same names.

A spec may bring its own task (``CellSpec(task=MyTask())``): a subclass of
:class:`Task` with a name of its own and a :meth:`Task.loss` in Keras ops
beside the NumPy methods; :func:`task` finds it by that name
(:data:`cellverify.vocabulary.OWN_TASKS`).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from cellverify.errors import InvalidConfig
from cellverify.vocabulary import OWN_TASKS, task_names

__all__ = [
    "CROSS_ENTROPY_EPSILON",
    "TASK_OBJECTS",
    "DistributionTask",
    "PortfolioTask",
    "RegressionTask",
    "SupervisedTask",
    "Task",
    "task",
]

#: Output probabilities are clipped to this before the log, as Keras's own
#: categorical cross-entropy does, so a saturated output gives a large finite loss.
CROSS_ENTROPY_EPSILON = 1e-7


class Targets(Protocol):
    """What a task's loss compares with: a batch's inputs, and for the
    portfolio contract its next-period price relatives and its supervised
    targets (a :class:`cellverify.data.Batch`; a
    :class:`cellverify.data.sequences.SequenceBatch` has inputs alone)."""

    @property
    def inputs(self) -> np.ndarray: ...


class MarketTargets(Targets, Protocol):
    @property
    def relatives(self) -> np.ndarray: ...
    @property
    def targets(self) -> np.ndarray: ...


BatchArrays = Targets


class Task:
    """What one task's loss compares with, and the losses that frame it.

    ``outputs`` is the cell's output size where a task needs it (a target
    distribution over the outputs); the portfolio tasks read it off the
    batch."""

    name: str = ""
    #: Whether an example's loss may be negative (the portfolio reward's log
    #: return), so that the mean can cancel; the others are means of
    #: nonnegative terms, rounded at their own magnitude.
    signed: bool = False

    def loss(self, outputs: Any, target: Any) -> Any:
        """The differentiable loss, in Keras ops, averaged over the batch and
        the steps: what training minimizes.  The built-in tasks' live in
        :data:`cellverify.model.LOSSES`; a spec's own task defines it here."""
        raise NotImplementedError(f"the task {self.name!r} defines no loss")

    def target(self, batch: Any, outputs: int | None = None) -> np.ndarray:
        """What the loss compares the output with."""
        raise NotImplementedError

    def uniform_loss(self, batch: Any, outputs: int | None = None) -> float:
        """Loss of the uniform output: what a dead cell scores."""
        raise NotImplementedError

    def reference_loss(self, batch: Any, outputs: int | None = None) -> float:
        """Loss a learner that knows the process reaches on this batch."""
        raise NotImplementedError

    def market_reference_loss(self, batch: Any, momentum: float) -> float:
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
    signed = True

    def target(self, batch: Any, outputs: int | None = None) -> np.ndarray:
        return np.asarray(batch.relatives)

    def uniform_loss(self, batch: Any, outputs: int | None = None) -> float:
        return float(-np.mean(np.log(batch.relatives.mean(axis=-1))))

    def reference_loss(self, batch: Any, outputs: int | None = None) -> float:
        """All weight on the asset whose last return is largest (for positive
        momentum, the highest expected next return): the greedy oracle, not
        the unreachable hindsight optimum."""
        signal = np.log(batch.inputs[:, :, :, -1, 0] / batch.inputs[:, :, :, -2, 0])
        pick = np.argmax(signal, axis=-1)[..., None]
        chosen = np.take_along_axis(batch.relatives, pick, axis=-1)[..., 0]
        return float(-np.mean(np.log(chosen)))

    def market_reference_loss(self, batch: Any, momentum: float) -> float:
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

    def target(self, batch: Any, outputs: int | None = None) -> np.ndarray:
        return np.asarray(batch.targets)

    def uniform_loss(self, batch: Any, outputs: int | None = None) -> float:
        return float(np.log(batch.relatives.shape[-1]))

    def reference_loss(self, batch: Any, outputs: int | None = None) -> float:
        """The targets' entropy: cross-entropy's minimum."""
        t = np.clip(batch.targets, 1e-12, 1.0)
        return float(-np.mean(np.sum(batch.targets * np.log(t), axis=-1)))

    def example_losses(self, weights: np.ndarray, target: np.ndarray) -> np.ndarray:
        w = np.asarray(weights, np.float64)
        y = _cash_padded(w, np.asarray(target, np.float64), 0.0)  # cash is never a target
        clipped = np.clip(w, CROSS_ENTROPY_EPSILON, 1.0)
        return np.asarray(-np.mean(np.sum(y * np.log(clipped), axis=-1), axis=-1))


def _previous(inputs: np.ndarray) -> np.ndarray:
    """Each step's previous input, zeros before the first: ``[batch, steps, features]``."""
    shifted = np.zeros_like(inputs, dtype=np.float64)
    shifted[:, 1:] = inputs[:, :-1]
    return shifted


class RegressionTask(Task):
    """A real output read out as its mean over units, regressed on the
    previous step's first input (module doc)."""

    name = "regression"
    #: The target's scale: 0.5 * tanh(x) lies in (-0.5, 0.5), inside what a
    #: tanh unit reaches.
    SCALE = 0.5

    def target(self, batch: Any, outputs: int | None = None) -> np.ndarray:
        previous = _previous(np.asarray(batch.inputs))[..., 0]
        return np.asarray(self.SCALE * np.tanh(previous), np.float32)

    def uniform_loss(self, batch: Any, outputs: int | None = None) -> float:
        """A dead cell's best: a constant prediction, the target's mean."""
        return float(np.var(self.target(batch).astype(np.float64)))

    def reference_loss(self, batch: Any, outputs: int | None = None) -> float:
        return 0.0

    def example_losses(self, weights: np.ndarray, target: np.ndarray) -> np.ndarray:
        prediction = np.asarray(weights, np.float64).mean(axis=-1)
        return np.asarray(np.mean((prediction - np.asarray(target, np.float64)) ** 2, axis=-1))


class DistributionTask(Task):
    """A simplex output's cross-entropy to ``softmax(x[t-1] @ W)`` (module doc)."""

    name = "distribution"
    #: The projection's seed: the target is a fixed function of the input,
    #: the same on every run.
    PROJECTION_SEED = 7

    def target(self, batch: Any, outputs: int | None = None) -> np.ndarray:
        if outputs is None:
            raise ValueError("the distribution task needs the output size. Received: None")
        previous = _previous(np.asarray(batch.inputs))
        features = previous.shape[-1]
        w = np.random.default_rng([self.PROJECTION_SEED, features, outputs]).standard_normal(
            (features, outputs)
        ) / np.sqrt(features)
        scores = previous @ w
        scores -= scores.max(axis=-1, keepdims=True)
        p = np.exp(scores)
        return np.asarray(p / p.sum(axis=-1, keepdims=True), np.float32)

    def uniform_loss(self, batch: Any, outputs: int | None = None) -> float:
        assert outputs is not None
        return float(np.log(outputs))

    def reference_loss(self, batch: Any, outputs: int | None = None) -> float:
        t = self.target(batch, outputs).astype(np.float64)
        return float(-np.mean(np.sum(t * np.log(np.clip(t, 1e-12, 1.0)), axis=-1)))

    def example_losses(self, weights: np.ndarray, target: np.ndarray) -> np.ndarray:
        w = np.clip(np.asarray(weights, np.float64), CROSS_ENTROPY_EPSILON, 1.0)
        y = np.asarray(target, np.float64)
        return np.asarray(-np.mean(np.sum(y * np.log(w), axis=-1), axis=-1))


#: Each task of :data:`cellverify.vocabulary.TASKS` by name.
TASK_OBJECTS: dict[str, Task] = {
    t.name: t for t in (PortfolioTask(), SupervisedTask(), RegressionTask(), DistributionTask())
}


def task(name: str) -> Task:
    """The :class:`Task` called ``name``: a built-in one, or a spec's own."""
    found = TASK_OBJECTS.get(name) or OWN_TASKS.get(name)
    if name in OWN_TASKS and not isinstance(found, Task):
        allowed = "a task defined in this process (import the module of the spec that brings it)"
        raise InvalidConfig("TrainConfig", "task", allowed, name)
    if not isinstance(found, Task):
        raise InvalidConfig("TrainConfig", "task", f"one of {', '.join(task_names())}", name)
    return found
