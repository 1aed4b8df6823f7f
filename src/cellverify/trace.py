"""The record of a training run, in plain NumPy (no TensorFlow here).

A :class:`Trace` is what the diagnosis and the report read, so it must be
cheap to save and load, and comparable bit for bit.  Row ``k`` of the per-step
arrays describes the model after ``k`` optimizer updates, measured on batch
``k``; there are ``train_steps + 1`` rows (the last one after the final update)
and ``train_steps`` rows of update ratios.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

__all__ = [
    "ACTIVATION_LAYERS",
    "ACTIVATION_STATISTICS",
    "CONV_LAYERS",
    "GRADIENT_STATISTICS",
    "LAYER_STATISTICS",
    "OUTPUT_STATISTICS",
    "SATURATED_MAX_WEIGHT",
    "Trace",
    "TraceRecorder",
    "no_activations",
]

#: The cell's convolutional layers, in the order data flows.
CONV_LAYERS: tuple[str, ...] = ("conv1", "conv2")
#: Layers whose activation statistics a trace holds (when the cell exposes
#: them through ``step_activations``, which returns these and ``output``).
ACTIVATION_LAYERS: tuple[str, ...] = (*CONV_LAYERS, "logits")
#: Statistics with one value per layer of ACTIVATION_LAYERS.
LAYER_STATISTICS: tuple[str, ...] = ("dead_fraction", "zero_fraction", "saturated_fraction")
#: Statistics of the output rows, one value each.
OUTPUT_STATISTICS: tuple[str, ...] = ("uniform_rows", "max_uniform_deviation", "max_weight")
#: A softmax whose rows' largest weight (``max_weight``) averages at least
#: this is saturated: its gradient scales with w(1 - w) <= 0.01 there.  The
#: diagnosis flags it during training; init_near_uniform refuses it at birth.
SATURATED_MAX_WEIGHT = 0.99
ACTIVATION_STATISTICS: tuple[str, ...] = LAYER_STATISTICS + OUTPUT_STATISTICS
#: Per-variable gradient statistics of a step
#: (:func:`cellverify.training.probe.gradient_statistics`).
GRADIENT_STATISTICS: tuple[str, ...] = ("grad_norm", "grad_zero_fraction", "weight_norm")


def no_activations() -> dict[str, np.ndarray]:
    """NaN statistics: for steps not probed, or a cell that hides its layers."""
    return {
        **{key: np.full(len(ACTIVATION_LAYERS), np.nan) for key in LAYER_STATISTICS},
        **{key: np.array(np.nan) for key in OUTPUT_STATISTICS},
    }


_ARRAYS = (
    "loss",
    "grad_norm",
    "grad_zero_fraction",
    "update_ratio",
    "weight_norm",
    *ACTIVATION_STATISTICS,
    "state_grad_norm",
    "eval_example_loss",
    "measured",
)


@dataclass(frozen=True, eq=False)
class Trace:
    """Per-step losses, gradient, update and activation statistics of one run.

    Arrays (``n = train_steps + 1`` rows, ``v`` variables, ``l`` layers):

    * ``loss`` ``[n]``: loss on the step's training batch.
    * ``grad_norm``, ``grad_zero_fraction`` ``[n, v]``: L2 norm of each
      variable's gradient, and the share of its entries that are exactly 0.
    * ``update_ratio`` ``[n-1, v]``: ``‖W_after - W_before‖ / ‖W_before‖``
      (NaN where the weight is all zero, as a fresh bias is).
    * ``weight_norm`` ``[n, v]``.
    * ``dead_fraction``, ``zero_fraction`` ``[n, l]`` over :data:`ACTIVATION_LAYERS`:
      share of channels (for logits: of output columns) that are exactly 0 on
      every example, step and position; share of entries exactly 0.  NaN when
      the cell does not expose its activations.
    * ``saturated_fraction`` ``[n, l]``: share of entries with ``|a| >=
      probe.SATURATION_LEVEL`` (tanh's slope there is under 0.02).
    * ``uniform_rows`` ``[n]``: share of output rows that are exactly uniform.
    * ``max_uniform_deviation`` ``[n]``: largest ``|w - 1/outputs|``.
    * ``max_weight`` ``[n]``: mean over rows of the row's largest weight.
    * ``state_grad_norm`` ``[n, 2]``: ``‖∂L/∂s_0‖`` (initial state) and
      ``‖∂L_last/∂s_last‖`` (the state entering the last step, last step's
      loss only); their ratio measures vanishing through time.
    * ``eval_example_loss`` ``[2, e]``: each evaluation example's loss before
      and after training (``eval_loss`` is their means), so that the change
      has a standard error; ``[2, 0]`` when unknown.
    * ``measured`` ``[n]``: 1 where the gradient statistics of that row were
      measured, 0 where they were not (a monitor of a user's training probes
      every few steps); empty means every row was.  Rows not measured hold
      NaN, which is not a non-finite gradient.
    * ``reference_loss`` may be NaN (a user's own model): then the gap to
      close is the starting evaluation loss's magnitude.
    """

    cell: dict[str, Any]
    train: dict[str, Any]
    variables: tuple[str, ...]
    loss: np.ndarray
    grad_norm: np.ndarray
    grad_zero_fraction: np.ndarray
    update_ratio: np.ndarray
    weight_norm: np.ndarray
    dead_fraction: np.ndarray
    zero_fraction: np.ndarray
    saturated_fraction: np.ndarray
    uniform_rows: np.ndarray
    max_uniform_deviation: np.ndarray
    max_weight: np.ndarray
    state_grad_norm: np.ndarray
    eval_loss: tuple[float, float]
    uniform_loss: float
    reference_loss: float
    eval_example_loss: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((2, 0)))
    measured: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))

    @property
    def steps(self) -> int:
        """Optimizer updates made."""
        return int(self.loss.shape[0]) - 1

    def measured_rows(self) -> np.ndarray:
        """Boolean ``[n]``: rows whose gradient statistics were measured."""
        if self.measured.size == 0:
            return np.ones(self.loss.shape[0], dtype=bool)
        return self.measured.astype(bool)

    def gap(self) -> float:
        """What a learner can gain on the evaluation batch: the distance from
        the starting loss to the reference, or, with no reference known, the
        starting loss's magnitude."""
        start = self.eval_loss[0]
        if np.isnan(self.reference_loss):
            return float(abs(start))
        return float(start - self.reference_loss)

    def gradient_is_zero(self, step: int | None = None) -> bool:
        """True when every entry of every gradient was exactly 0 at ``step``
        (by default the last measured one)."""
        if step is None:
            rows = np.flatnonzero(self.measured_rows())
            if rows.size == 0:
                return False
            step = int(rows[-1])
        return bool(np.all(self.grad_zero_fraction[step] == 1.0))

    def first_zero_gradient_step(self) -> int | None:
        """The first step at which the whole gradient was exactly 0, if any."""
        dead = np.all(self.grad_zero_fraction == 1.0, axis=1)
        hits = np.flatnonzero(dead)
        return int(hits[0]) if hits.size else None

    def eval_improvement(self) -> float:
        """Relative drop of the evaluation loss from start to end, measured
        against :meth:`gap` (1.0 = reached the reference)."""
        start, end = self.eval_loss
        gap = self.gap()
        return float((start - end) / gap) if gap > 0 else float("nan")

    def eval_improvement_se(self) -> float:
        """Standard error of the evaluation loss's drop, from the paired
        per-example differences (NaN when they were not recorded)."""
        per = self.eval_example_loss
        if per.shape[1] < 2:
            return float("nan")
        diff = per[0] - per[1]
        return float(np.std(diff, ddof=1) / np.sqrt(diff.size))

    def layer(self, name: str) -> int:
        return ACTIVATION_LAYERS.index(name)

    def same_as(self, other: Trace) -> bool:
        """Bit-for-bit equality of every number and label (NaN equals NaN)."""
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if f.name in _ARRAYS:
                if a.shape != b.shape or a.tobytes() != b.tobytes():
                    return False
            elif a != b:
                return False
        return True

    def first(self, updates: int) -> Trace:
        """The run as it stood after its first ``updates`` updates: every
        per-step row up to then, and no evaluation (none was made then)."""
        rows = updates + 1
        cut: dict[str, Any] = {
            name: getattr(self, name)[: updates if name == "update_ratio" else rows]
            for name in _ARRAYS
            if name != "eval_example_loss"
        }
        return dataclasses.replace(
            self,
            **cut,
            train={**self.train, "train_steps": min(updates, self.steps)},
            eval_loss=(float("nan"), float("nan")),
            eval_example_loss=np.zeros((2, 0)),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; arrays become nested lists (NaN as null)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _ARRAYS:
                value = np.where(np.isnan(value), None, value).tolist()  # type: ignore[attr-defined]
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, float) and np.isnan(value):
                value = None
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trace:
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in data and f.default_factory is not dataclasses.MISSING:
                continue  # written before the field existed
            if f.name == "reference_loss" and data[f.name] is None:
                kwargs[f.name] = float("nan")
                continue
            value = data[f.name]
            if f.name in _ARRAYS:
                value = np.array(value, dtype=np.float64)
                if f.name == "eval_example_loss":
                    value = value.reshape(2, -1)
            elif f.name in ("variables", "eval_loss"):
                value = tuple(value)
            kwargs[f.name] = value
        return cls(**kwargs)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


class TraceRecorder:
    """The rows of a :class:`Trace`, recorded one training step at a time.

    ``loss`` has every step's loss; ``rows`` (gradient statistics: each of
    ``grad_norm``, ``grad_zero_fraction``, ``weight_norm``), ``acts``
    (activation statistics), ``state`` (the two state-gradient norms) and
    ``ratios`` (update ratios, by the update's step) hold the steps where
    they were measured; :meth:`trace` fills the rest with NaN.  The kit's
    own runs (:func:`cellverify.training.trainer.train`) measure every step; a monitor of
    a user's training every few.
    """

    def __init__(self, variables: tuple[str, ...] = ()) -> None:
        self.loss: list[float] = []
        self.rows: dict[int, dict[str, np.ndarray]] = {}
        self.acts: dict[int, dict[str, np.ndarray]] = {}
        self.state: dict[int, np.ndarray] = {}
        self.ratios: dict[int, np.ndarray] = {}
        self.names: tuple[str, ...] = variables
        self.eval_start = float("nan")
        self.eval_end = float("nan")

    def record_step(self, step: int, record: Any) -> None:
        """Step ``step`` of the kit's own run, as measured by
        :meth:`cellverify.training.trainer.Trainer.step` (a ``StepRecord``)."""
        self.loss.append(record.loss)
        self.rows[step] = {key: getattr(record, key) for key in GRADIENT_STATISTICS}
        self.state[step] = record.state_grad_norm
        if record.update_ratio is not None:
            self.ratios[step] = record.update_ratio
        if record.activations is not None:
            self.acts[step] = record.activations

    def _rows(self, source: dict[int, np.ndarray], n: int, width: int) -> np.ndarray:
        out = np.full((n, width), np.nan)
        for k, row in source.items():
            if k < n:
                out[k] = row
        return out

    def trace(
        self,
        cell: dict[str, Any],
        train: dict[str, Any],
        *,
        reference_loss: float,
        uniform_loss: float = float("nan"),
        eval_example_loss: np.ndarray | None = None,
        with_measured: bool = False,
    ) -> Trace:
        """The Trace of the steps recorded; ``with_measured`` writes which
        rows' gradients were measured (else every row is taken to be)."""
        n, width = len(self.loss), len(self.names)
        grads = {key: {k: r[key] for k, r in self.rows.items()} for key in GRADIENT_STATISTICS}
        acts = [self.acts.get(k, no_activations()) for k in range(n)]
        measured = np.array([float(k in self.rows) for k in range(n)])
        extra: dict[str, Any] = {"measured": measured} if with_measured else {}
        if eval_example_loss is not None:
            extra["eval_example_loss"] = eval_example_loss
        return Trace(
            cell=cell,
            train={**train, "train_steps": max(n - 1, 0)},
            variables=self.names,
            loss=np.array(self.loss, np.float64),
            **{key: self._rows(grads[key], n, width) for key in GRADIENT_STATISTICS},
            update_ratio=self._rows(self.ratios, max(n - 1, 0), width),
            **{key: np.array([a[key] for a in acts], np.float64) for key in ACTIVATION_STATISTICS},
            state_grad_norm=self._rows(self.state, n, 2),
            eval_loss=(self.eval_start, self.eval_end),
            uniform_loss=uniform_loss,
            reference_loss=reference_loss,
            **extra,
        )
