"""Sequences of input vectors for any cell that is not a portfolio cell
(docs/design.md, "Tasks"): a case's batch of one :class:`InputSpec`'s kind,
and a run's training batches (NumPy only).

A step's input is a vector of ``features`` numbers; a batch is ``[batch,
steps, features]`` float32.  Targets come from the task
(:mod:`cellverify.data.tasks`), which reads them off the inputs, so that a
batch is the same whatever the cell's output size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cellverify.config import TrainConfig
from cellverify.contracts import Params
from cellverify.data.inputs import InputSpec
from cellverify.data.tasks import task as task_of

__all__ = ["SequenceBatch", "sequence_batch", "training_sequences"]


@dataclass(frozen=True)
class SequenceBatch:
    """One batch of input sequences, ``[batch, steps, features]`` float32."""

    inputs: np.ndarray

    def target(self, task: str, outputs: int | None = None) -> np.ndarray:
        """What the loss of ``task`` compares an output of ``outputs`` entries with."""
        return task_of(task).target(self, outputs)

    def uniform_loss(self, task: str, outputs: int | None = None) -> float:
        return task_of(task).uniform_loss(self, outputs)

    def reference_loss(self, task: str, outputs: int | None = None) -> float:
        return task_of(task).reference_loss(self, outputs)


def _normal(rng: np.random.Generator, params: Params, train: TrainConfig) -> np.ndarray:
    return rng.standard_normal((train.batch_size, train.steps, params.features))


def sequence_batch(params: Params, train: TrainConfig, spec: InputSpec) -> SequenceBatch:
    """The batch ``spec`` describes, shaped by ``params`` and ``train``."""
    rng = np.random.default_rng([spec.seed, 11])
    x = _normal(rng, params, train)
    if spec.kind == "ones":
        x = np.ones_like(x)
    elif spec.kind == "zero_step":
        x[:, int(rng.integers(0, train.steps))] = 0.0
    elif spec.kind == "scaled":
        x = x * spec.scale
    return SequenceBatch(x.astype(np.float32))


def training_sequences(params: Params, train: TrainConfig, draw: int = 0) -> SequenceBatch:
    """The ``draw``-th training batch of a run: normal vectors, reproducible
    from the configurations alone (seeded by ``train.seed`` and ``draw``)."""
    rng = np.random.default_rng([train.seed, draw, 13])
    return SequenceBatch(_normal(rng, params, train).astype(np.float32))
