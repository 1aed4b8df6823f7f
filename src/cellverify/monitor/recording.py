"""What the Monitor records of a run: the trace so far, the weights kept
for the next update's ratio, and their TensorBoard scalars."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cellverify.monitor.probes import snapshot, update_ratios
from cellverify.monitor.tensorboard import TensorBoardLog
from cellverify.trace import Trace, TraceRecorder

__all__ = ["Recording", "until_last_measured"]


class Recording:
    """One run's rows as the Monitor measures them, every few steps: the
    gradient statistics on the probe (with the activations, where the model
    shows them), each step's loss, and the ratio of the update that
    followed a measurement, each logged to TensorBoard as it comes."""

    def __init__(self, log: TensorBoardLog) -> None:
        self.recorder = TraceRecorder()
        self.log = log
        #: What the trace says of the model and of its training.
        self.cell: dict[str, Any] = {}
        self.train: dict[str, Any] = {}
        self._weights: list[np.ndarray] | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return self.recorder.names

    def begin(self, names: Sequence[str], loss: float) -> None:
        """The variables' names, and the loss before the first update."""
        self.recorder.names = tuple(names)
        self.recorder.eval_start = loss

    def begin_loop(self, variables: Sequence[Any], loss: float) -> None:
        """:meth:`begin` for a custom loop, which says nothing of its model."""
        self.begin([getattr(v, "path", f"variable{i}") for i, v in enumerate(variables)], loss)
        self.cell = {"model": "custom loop"}
        self.train = {"optimizer": "custom loop", "learning_rate": float("nan"), "steps": 1}

    def end(self, loss: float) -> None:
        """The loss after the last update."""
        self.recorder.eval_end = loss

    def measurement(
        self,
        step: int,
        gradients: Mapping[str, np.ndarray],
        activations: Mapping[str, np.ndarray] | None,
    ) -> None:
        """Step ``step``'s gradient statistics, and its activation statistics
        when the model shows them."""
        self.recorder.rows[step] = dict(gradients)
        if activations is not None:
            self.recorder.acts[step] = dict(activations)
        self.log.gradients(step, self.names, gradients)

    def measured(self, step: int) -> bool:
        return step in self.recorder.rows

    @property
    def any_measured(self) -> bool:
        return bool(self.recorder.rows)

    def loss(self, value: float) -> None:
        """The next step's training loss."""
        self.recorder.loss.append(value)

    @property
    def losses(self) -> list[float]:
        return self.recorder.loss

    def keep_weights(self, variables: Sequence[Any]) -> None:
        """The weights before an update, for its ratio (:meth:`update_ratio`)."""
        self._weights = snapshot(variables)

    def update_ratio(self, step: int, variables: Sequence[Any]) -> None:
        """The ratio of step ``step``'s update, if the weights before it were kept."""
        if self._weights is None:
            return
        ratio = self.recorder.ratios[step] = update_ratios(self._weights, variables)
        self.log.ratios(step, self.names, ratio)
        self._weights = None

    def trace(self, reference_loss: float) -> Trace:
        """What was recorded so far, as a Trace whose ``measured`` mask keeps
        an unmeasured step from reading as a non-finite gradient."""
        return self.recorder.trace(
            self.cell, self.train, reference_loss=reference_loss, with_measured=True
        )


def until_last_measured(trace: Trace) -> Trace:
    """The trace cut after its last measured row, so that "the end" is a
    measured step (a run still in progress)."""
    rows = np.flatnonzero(trace.measured_rows())
    end = int(rows[-1]) + 1 if rows.size else trace.loss.shape[0]
    cut: dict[str, Any] = {}
    for f in dataclasses.fields(trace):
        value = getattr(trace, f.name)
        rows = trace.loss.shape[0]
        if isinstance(value, np.ndarray) and value.ndim >= 1 and value.shape[0] == rows:
            cut[f.name] = value[:end]
        elif f.name == "update_ratio":
            cut[f.name] = value[: max(end - 1, 0)]
    return dataclasses.replace(trace, **cut)
