"""Train a cell for N steps and record a :class:`~cellverify.trace.Trace`.

A :class:`Trainer` is a model and its optimizer, trained and measured
through compiled functions (:mod:`cellverify.training.steps`); :func:`train`
is a whole run of one, from its seeded batches to its trace.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from cellverify.config import CellConfig, TrainConfig
from cellverify.contracts import Params
from cellverify.data.market import Batch, batch_for, markets_for, reference_loss
from cellverify.data.sequences import training_sequences
from cellverify.data.stream import prefetched
from cellverify.errors import BadCellFactory, InvalidConfig
from cellverify.model.cell import ConvRNNCell, conv_rnn_cell
from cellverify.model.factory import CellFactory
from cellverify.model.fast import FastConvRNN
from cellverify.model.rnn import build_model, example_losses, loss_for, step_shape
from cellverify.spec import contract_of
from cellverify.trace import Trace, TraceRecorder, no_activations
from cellverify.training.steps import StepFunctions
from cellverify.vocabulary import OPTIMIZER_CLASSES

__all__ = [
    "EVAL_DRAW",
    "Feed",
    "Trainer",
    "TrainerReuse",
    "make_optimizer",
    "train",
]

#: The draw number of a run's fixed evaluation batch (never a training draw).
EVAL_DRAW = 2**31 - 1


def make_optimizer(name: str, learning_rate: float) -> keras.optimizers.Optimizer:
    """A Keras optimizer by name, with Keras's defaults for everything but the rate."""
    if name not in OPTIMIZER_CLASSES:
        allowed = f"one of {', '.join(OPTIMIZER_CLASSES)}"
        raise InvalidConfig("TrainConfig", "optimizer", allowed, name)
    return getattr(keras.optimizers, OPTIMIZER_CLASSES[name])(learning_rate=learning_rate)


@dataclass(frozen=True)
class Feed:
    """A batch's inputs and its task's target as tensors (:meth:`Trainer.feed`).

    Made once per batch, off the training thread: converting NumPy inputs at
    each call copied them, and took 0.7 s of a 4.4 s diagnose run."""

    inputs: Any
    target: Any


@dataclass(frozen=True)
class StepRecord:
    """One step's measurements as NumPy values."""

    loss: float
    grad_norm: np.ndarray
    grad_zero_fraction: np.ndarray
    weight_norm: np.ndarray
    state_grad_norm: np.ndarray
    update_ratio: np.ndarray | None
    #: Activation statistics, on a step asked to probe them.
    activations: dict[str, np.ndarray] | None = None


class Trainer:
    """A model and its optimizer for one pair of configurations, trained and
    measured through its compiled functions (:class:`StepFunctions`).

    ``jit_compile`` compiles the steps with XLA; ``compiled=False`` runs them
    eagerly, which at tiny shapes costs less than tracing them once (the
    property suite's examples: 0.41 s against 0.68 s); ``unroll`` unrolls
    ``keras.layers.RNN``'s loop over a sequence of ``train_config.steps``.
    Call :meth:`step` to update and measure, :meth:`measure` to measure
    without updating, and :meth:`activations` for the layer statistics (if
    the cell exposes ``step_activations``).
    """

    def __init__(
        self,
        factory: CellFactory,
        cell_config: CellConfig | Params,
        train_config: TrainConfig,
        *,
        jit_compile: bool = False,
        compiled: bool = True,
        fast: bool = False,
        unroll: bool = False,
    ) -> None:
        self.cell_config = cell_config
        self.train_config = train_config
        self.cell = factory(cell_config)
        steps = train_config.steps
        self.model = build_model(self.cell, cell_config, steps=steps, fast=fast, unroll=unroll)
        self.rnn = self.model.get_layer("rnn")
        #: Each output row's size: the portfolio's assets (and cash), or the cell's own.
        self.outputs = _check_outputs(self.model, self.cell, cell_config, steps)
        self.optimizer = make_optimizer(train_config.optimizer, train_config.learning_rate)
        self.variables = list(self.model.trainable_variables)
        self.optimizer.build(self.variables)
        self.compile_flags = (jit_compile, compiled, fast)
        self._optimizer_start = [v.numpy() for v in self.optimizer.variables]
        self.loss_fn = loss_for(train_config.task)
        self.probes_in_step = self._can_probe_in_step()
        self.functions = StepFunctions(
            self.rnn, self.cell, self.variables, self.optimizer, self.loss_fn,
            probes_in_step=self.probes_in_step, jit_compile=jit_compile, compiled=compiled,
            state_is_output=contract_of(factory).state_is_output,
        )  # fmt: skip
        #: The recorded step's compiled function (its tracing count is tested).
        self._step = self.functions.step

    def _can_probe_in_step(self) -> bool:
        """Whether a step can measure the activations from its own pass: the
        shipped cell through the fast path, and no dropout, whose training
        pass is not the inference pass the probe measures."""
        if not isinstance(self.rnn, FastConvRNN) or type(self.cell) is not ConvRNNCell:
            return False
        return not self.cell.dropouts or self.cell.cell_config.dropout == 0

    def restart(self, cell_config: CellConfig | Params, train_config: TrainConfig) -> bool:
        """Start over as a new Trainer of these configurations would, keeping
        the compiled steps; False, changing nothing, where that cannot be done.

        Another seed of the same configuration of the shipped cell needs no
        tracing: the weights (dropout's seed states included) are copied from
        a freshly built cell of the new seed, and the optimizer's variables
        are set back to their values after it was built.  Tracing was 0.5 s
        of a 4 s diagnose run (docs/performance.md, 'A diagnose run')."""
        if not isinstance(cell_config, CellConfig) or type(self.cell) is not ConvRNNCell:
            return False
        same_cell = cell_config.replace(seed=self.cell_config.seed) == self.cell_config
        same_run = train_config.replace(seed=self.train_config.seed) == self.train_config
        if not (same_cell and same_run):
            return False
        fresh = ConvRNNCell(cell_config)
        c = cell_config
        fresh.build((None, c.assets, c.window, c.features))
        for mine, theirs in zip(self.cell.variables, fresh.variables, strict=True):
            mine.assign(theirs)
        for variable, start in zip(self.optimizer.variables, self._optimizer_start, strict=True):
            variable.assign(start)
        self.cell_config, self.train_config = cell_config, train_config
        return True

    @property
    def variable_names(self) -> tuple[str, ...]:
        """Variable paths inside the cell (``conv1/kernel``), free of Keras's
        auto-numbered layer names, so that two runs compare equal."""
        marker = f"{self.cell.name}/"
        return tuple(v.path.split(marker, 1)[-1] for v in self.variables)

    def target(self, batch: Any) -> Any:
        """What the task's loss compares this cell's output on ``batch`` with."""
        return batch.target(self.train_config.task, self.outputs)

    def feed(self, batch: Any) -> Feed:
        """``batch`` as tensors, for any number of calls."""
        return Feed(tf.constant(batch.inputs), tf.constant(self.target(batch)))

    def _tensors(self, batch: Any) -> tuple[Any, Any]:
        if isinstance(batch, Feed):
            return batch.inputs, batch.target
        return batch.inputs, self.target(batch)

    def step(self, batch: Batch | Feed, *, update: bool = True, probe: bool = False) -> StepRecord:
        """One optimizer update on ``batch``, with the gradients measured before it.

        ``update=False`` measures without updating, like :meth:`measure`, but
        through the same compiled function: a run that ends on a measurement
        traces one step function, not two (0.24 s of a 2.6 s diagnose run).
        ``probe`` measures the activations too (:meth:`activations`), from the
        step's own pass where :attr:`probes_in_step`, which spares a second
        pass (docs/performance.md, 'A diagnose run')."""
        acts = self.activations(batch) if probe and not self.probes_in_step else None
        r = self.functions.step(*self._tensors(batch), tf.constant(update), tf.constant(probe))
        if probe and acts is None:
            acts = {k: np.asarray(v.numpy()) for k, v in r["activations"].items()}
        if not update:
            return _record(r, None, acts)
        update_norm = r["update_norm"].numpy()
        weight = r["weight_norm"].numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(weight > 0, update_norm / weight, np.nan)
        return _record(r, ratio, acts)

    def update(self, batch: Batch | Feed) -> float:
        """One optimizer update on ``batch``, measuring nothing but the loss
        before it (a fraction of :meth:`step`'s cost)."""
        return float(self.functions.update(*self._tensors(batch)))

    def measure(self, batch: Batch | Feed) -> StepRecord:
        """Loss and gradients on ``batch`` at the current weights, without updating."""
        return _record(self.functions.measure(*self._tensors(batch)), None)

    def activations(self, batch: Batch | Feed) -> dict[str, np.ndarray]:
        """Activation statistics on ``batch`` (NaN if the cell hides its layers)."""
        if not hasattr(self.cell, "step_activations"):
            return no_activations()
        stats = self.functions.activations(self._tensors(batch)[0])
        return {k: np.asarray(v.numpy()) for k, v in stats.items()}

    def loss(self, batch: Any) -> float:
        """Loss on ``batch`` without gradients (inference mode)."""
        return float(self.functions.evaluate(batch.inputs, self.target(batch))[0])

    def evaluate(self, batch: Any) -> tuple[float, np.ndarray]:
        """:meth:`loss` on ``batch`` and each example's loss ``[batch]``, from one
        compiled pass (an eager one for the example losses cost 2 % of a run)."""
        target = self.target(batch)
        loss, out = self.functions.evaluate(batch.inputs, target)
        return float(loss), example_losses(self.train_config.task, np.asarray(out), target)


def _check_outputs(model: keras.Model, cell: Any, c: CellConfig | Params, steps: int) -> int:
    """Each output row's size, or BadCellFactory unless the model's outputs
    are ``[batch, steps, outputs]``; the call also builds a user's cell that
    creates its weights lazily, on its first call."""
    out = model(np.zeros((1, steps, *step_shape(c)), np.float32))
    n = c.outputs if isinstance(c, CellConfig) else _output_size(cell)
    if tuple(out.shape) != (1, steps, n):
        raise BadCellFactory(
            f"the cell's outputs must be [batch, steps, outputs] = "
            f"{[1, steps, n]} in an RNN. Received: {list(out.shape)}"
        )
    return n


def _output_size(cell: Any) -> int:
    size = getattr(cell, "output_size", None)
    size = cell.state_size if size is None else size
    return int(size[0] if isinstance(size, (list, tuple)) else size)


def _record(
    r: dict[str, Any], ratio: np.ndarray | None, acts: dict[str, np.ndarray] | None = None
) -> StepRecord:
    """A compiled step's measurements as NumPy values."""
    return StepRecord(
        loss=float(r["loss"].numpy()),
        grad_norm=r["grad_norm"].numpy(),
        grad_zero_fraction=r["grad_zero_fraction"].numpy(),
        weight_norm=r["weight_norm"].numpy(),
        state_grad_norm=r["state_grad_norm"].numpy(),
        update_ratio=ratio,
        activations=acts,
    )


class TrainerReuse:
    """The last Trainer of a caller that runs seed after seed, restarted for
    the next run where :meth:`Trainer.restart` can: tracing was 0.5 s of a
    4 s diagnose run.  Whoever runs the runs owns one and passes it to
    :func:`train` (a worker process, :mod:`cellverify.training.runs`);
    nothing else keeps a trainer."""

    def __init__(self) -> None:
        self.last: Trainer | None = None

    def trainer(
        self,
        factory: CellFactory,
        cell_config: CellConfig | Params,
        train_config: TrainConfig,
        *,
        jit_compile: bool = False,
        fast: bool = False,
    ) -> Trainer:
        """The last trainer restarted for these configurations, else a new
        one, kept as the last.  Only the shipped factory's cells restart: a
        user's factory may build anything around them."""
        last = self.last
        if (
            factory is conv_rnn_cell
            and last is not None
            and last.compile_flags == (jit_compile, True, fast)
            and last.restart(cell_config, train_config)
        ):
            return last
        self.last = Trainer(factory, cell_config, train_config, jit_compile=jit_compile, fast=fast)
        return self.last


def train(
    factory: CellFactory,
    cell_config: CellConfig | Params,
    train_config: TrainConfig,
    *,
    jit_compile: bool = False,
    probe_every: int = 1,
    fast: bool = False,
    on_step: Callable[[int, int], None] | None = None,
    reuse: TrainerReuse | None = None,
) -> Trace:
    """Train a fresh cell from ``factory`` for ``train_config.train_steps`` and trace it.

    Reproducible: the same configurations (seeds included) give a bit-identical
    trace.  The activation probe (an extra forward pass, most of the recording
    cost) runs on step 0, every ``probe_every`` steps and the last step; other
    rows of the activation statistics are NaN; ``probe_every=0`` probes only
    the first and last steps.  ``on_step(done, total)`` is called after each
    step, for progress.  ``fast`` trains a ConvRNNCell through the fast path
    (:func:`cellverify.model.build_model`).  ``reuse``, kept by a caller
    that runs seed after seed, restarts its last Trainer where
    :meth:`Trainer.restart` can (the same trace, without tracing its steps
    again); without it every run builds its own.
    """
    if probe_every < 0:
        raise InvalidConfig("train", "probe_every", "0 or a positive step count", probe_every)
    reuse = reuse if reuse is not None else TrainerReuse()
    trainer = reuse.trainer(factory, cell_config, train_config, jit_compile=jit_compile, fast=fast)
    draw_batch, eval_batch, reference = _batches(cell_config, train_config, trainer.outputs)
    eval_start, eval_examples_start = trainer.evaluate(eval_batch)
    n = train_config.train_steps
    recorder = TraceRecorder(trainer.variable_names)
    recorder.eval_start = eval_start
    batches = prefetched(lambda draw: trainer.feed(draw_batch(draw)), n + 1)
    for k, batch in enumerate(batches):
        probe = k in (0, n) or (probe_every > 0 and k % probe_every == 0)
        recorder.record_step(k, trainer.step(batch, update=k < n, probe=probe))
        if on_step is not None:
            on_step(k + 1, n + 1)
    recorder.eval_end, eval_examples_end = trainer.evaluate(eval_batch)
    return recorder.trace(
        cell_config.to_dict(),
        train_config.to_dict(),
        reference_loss=reference,
        uniform_loss=eval_batch.uniform_loss(train_config.task, trainer.outputs),
        eval_example_loss=np.stack([eval_examples_start, eval_examples_end]),
    )


def _batches(
    cell_config: CellConfig | Params, train_config: TrainConfig, outputs: int
) -> tuple[Callable[[int], Any], Any, float]:
    """A run's training batch of each draw, its evaluation batch (a draw no
    training step takes), and the loss a learner reaches on it: from the
    market for the portfolio contract, from sequences for a spec'd cell."""
    if isinstance(cell_config, Params):
        params = cell_config
        sequences = training_sequences(params, train_config, EVAL_DRAW)
        reference = sequences.reference_loss(train_config.task, outputs)

        def draw_sequences(draw: int) -> Any:
            return training_sequences(params, train_config, draw)

        return draw_sequences, sequences, reference
    config = cell_config
    market, eval_market = markets_for(config, train_config)
    windows = batch_for(config, train_config, market=eval_market, draw=EVAL_DRAW)

    def draw_windows(draw: int) -> Any:
        return batch_for(config, train_config, market=market, draw=draw)

    return draw_windows, windows, reference_loss(eval_market, windows, train_config.task)
