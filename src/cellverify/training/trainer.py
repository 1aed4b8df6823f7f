"""Train a cell for N steps and record a :class:`~cellverify.trace.Trace`.

The training step is one ``tf.function`` per model, traced once (fixed shapes
and dtypes), not once per step.  Measurements are reductions computed inside
the same function, so recording adds little to a step (benchmarks/ measures it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from cellverify.config import OPTIMIZER_CLASSES, CellConfig, TrainConfig
from cellverify.data.market import Batch, batch_for, markets_for, reference_loss
from cellverify.data.stream import prefetched
from cellverify.errors import BadCellFactory, InvalidConfig
from cellverify.model.cell import ConvRNNCell, conv_rnn_cell
from cellverify.model.fast import FastConvRNN
from cellverify.model.rnn import CellFactory, build_model, example_losses, loss_for
from cellverify.trace import Trace, TraceRecorder, no_activations
from cellverify.training.probe import (
    SATURATION_LEVEL,
    activation_statistics,
    dense_gradients,
    gradient_statistics,
    last_state_gradient_norm,
    norm,
    sequence_activation_statistics,
)

__all__ = ["EVAL_DRAW", "SATURATION_LEVEL", "Feed", "Trainer", "make_optimizer", "train"]

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
    """A model, its optimizer and its compiled steps, for one pair of configurations.

    ``jit_compile`` compiles the steps with XLA; ``compiled=False`` runs them
    eagerly, which at tiny shapes costs less than tracing them once (the
    property suite's examples: 0.41 s against 0.68 s); ``unroll`` unrolls
    ``keras.layers.RNN``'s loop over a sequence of ``train_config.steps``.
    Call :meth:`step` to update
    and measure, :meth:`measure` to measure without updating, and
    :meth:`activations` for the layer statistics (if the cell exposes
    ``step_activations``).
    """

    def __init__(
        self,
        factory: CellFactory,
        cell_config: CellConfig,
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
        self.model = build_model(
            self.cell,
            cell_config,
            steps=train_config.steps,
            fast=fast,
            unroll=unroll,
        )
        self.rnn = self.model.get_layer("rnn")
        # A user's cell may create its weights lazily, on its first call.
        c = cell_config
        probe = self.model(
            np.zeros((1, train_config.steps, c.assets, c.window, c.features), np.float32)
        )
        if tuple(probe.shape) != (1, train_config.steps, c.outputs):
            raise BadCellFactory(
                f"the cell's outputs must be [batch, steps, outputs] = "
                f"{[1, train_config.steps, c.outputs]} in an RNN. Received: {list(probe.shape)}"
            )
        self.optimizer = make_optimizer(train_config.optimizer, train_config.learning_rate)
        self.variables = list(self.model.trainable_variables)
        self.optimizer.build(self.variables)
        self.compile_flags = (jit_compile, compiled, fast)
        self._optimizer_start = [v.numpy() for v in self.optimizer.variables]
        self.loss_fn = loss_for(train_config.task)
        self.probes_in_step = self._can_probe_in_step()

        def compile_(fn: Callable[..., Any]) -> Callable[..., Any]:
            # Without AutoGraph, as Keras's own fit() compiles its step: a cell
            # that trains under model.fit traces here too, and the conversion
            # was 90 % of the tracing (loss_decreases: 0.32 of 0.35 s per model).
            return tf.function(fn, jit_compile=jit_compile, autograph=False) if compiled else fn

        self._step = compile_(self._train_step)
        self._update = compile_(self._lean_step)
        self._measure = compile_(self._measure_step)
        self._activations = compile_(self._activation_stats)
        self._evaluate = compile_(self._evaluation)

    def _can_probe_in_step(self) -> bool:
        """Whether a step can measure the activations from its own pass: the
        shipped cell through the fast path, and no dropout, whose training
        pass is not the inference pass the probe measures."""
        if not isinstance(self.rnn, FastConvRNN) or type(self.cell) is not ConvRNNCell:
            return False
        return not self.cell.dropouts or self.cell_config.dropout == 0

    def restart(self, cell_config: CellConfig, train_config: TrainConfig) -> bool:
        """Start over as a new Trainer of these configurations would, keeping
        the compiled steps; False, changing nothing, where that cannot be done.

        Another seed of the same configuration of the shipped cell needs no
        tracing: the weights (dropout's seed states included) are copied from
        a freshly built cell of the new seed, and the optimizer's variables
        are set back to their values after it was built.  Tracing was 0.5 s
        of a 4 s diagnose run (docs/performance.md, 'A diagnose run')."""
        same_cell = cell_config.replace(seed=self.cell_config.seed) == self.cell_config
        same_run = train_config.replace(seed=self.train_config.seed) == self.train_config
        if not (same_cell and same_run and type(self.cell) is ConvRNNCell):
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

    def _forward_and_gradients(self, x: Any, y: Any) -> tuple[Any, list[Any], Any, Any]:
        """Loss, gradients, state-gradient norms, and the fast path's pass
        (:meth:`FastConvRNN.passes` and the initial state; None through
        ``keras.layers.RNN``), which the last step and the probe reuse."""
        s0 = self.rnn.get_initial_state(tf.shape(x)[0])[0]
        with tf.GradientTape() as tape:
            tape.watch(s0)
            if isinstance(self.rnn, FastConvRNN):
                passes = self.rnn.passes(x, s0, training=True)
                *_, g, out = passes
            else:
                out, g, passes = self.rnn(x, initial_state=[s0], training=True), None, None
            loss = self.loss_fn(out, y)
        grads = tape.gradient(loss, [*self.variables, s0])
        weight_grads = dense_gradients(grads[:-1], self.variables)
        state_grad = tf.zeros_like(s0) if grads[-1] is None else grads[-1]
        last = last_state_gradient_norm(self.rnn, self.loss_fn, x, y, out, g)
        stats = tf.stack([norm(state_grad), last])
        return loss, weight_grads, stats, None if passes is None else (*passes, s0)

    def _summaries(self, loss: Any, grads: list[Any], state_stats: Any) -> dict[str, Any]:
        return {
            "loss": tf.cast(loss, tf.float64),
            **gradient_statistics(grads, self.variables),
            "state_grad_norm": state_stats,
        }

    def _measure_step(self, x: Any, y: Any) -> dict[str, Any]:
        loss, grads, state_stats, _ = self._forward_and_gradients(x, y)
        return self._summaries(loss, grads, state_stats)

    def _lean_step(self, x: Any, y: Any) -> Any:
        """An update and nothing else: for checks that need only the loss."""
        with tf.GradientTape() as tape:
            loss = self.loss_fn(self.rnn(x, training=True), y)
        grads = dense_gradients(tape.gradient(loss, self.variables), self.variables)
        self.optimizer.apply_gradients(zip(grads, self.variables, strict=True))
        return loss

    def _train_step(self, x: Any, y: Any, update: Any, probe: Any) -> dict[str, Any]:
        loss, grads, state_stats, passes = self._forward_and_gradients(x, y)
        summary = self._summaries(loss, grads, state_stats)
        if self.probes_in_step:
            # Before the update: the probe reads conv3's weights again.
            summary["activations"] = tf.cond(
                probe,
                lambda: activation_statistics(self.rnn.activations_of(*passes)),
                lambda: {k: tf.constant(v) for k, v in no_activations().items()},
            )
        summary["update_norm"] = tf.cond(
            update,
            lambda: self._apply(grads),
            lambda: tf.zeros([len(self.variables)], tf.float64),
        )
        return summary

    def _apply(self, grads: list[Any]) -> Any:
        """Apply ``grads``; each variable's update norm."""
        before = [tf.identity(v) for v in self.variables]
        self.optimizer.apply_gradients(zip(grads, self.variables, strict=True))
        return tf.stack([norm(v - b) for v, b in zip(self.variables, before, strict=True)])

    def _activation_stats(self, x: Any) -> dict[str, Any]:
        if isinstance(self.rnn, FastConvRNN):
            # One pass of the fast path, not a plain one and then the cell's
            # convs again over every step (docs/performance.md, 'A diagnose run').
            return activation_statistics(self.rnn.sequence_activations(x, training=False))
        out = self.rnn(x, training=False)
        s0 = self.rnn.get_initial_state(tf.shape(x)[0])[0]
        return sequence_activation_statistics(self.cell, x, out, s0)

    def feed(self, batch: Batch) -> Feed:
        """``batch`` as tensors, for any number of calls."""
        return Feed(tf.constant(batch.inputs), tf.constant(batch.target(self.train_config.task)))

    def _tensors(self, batch: Batch | Feed) -> tuple[Any, Any]:
        if isinstance(batch, Feed):
            return batch.inputs, batch.target
        return batch.inputs, batch.target(self.train_config.task)

    def step(self, batch: Batch | Feed, *, update: bool = True, probe: bool = False) -> StepRecord:
        """One optimizer update on ``batch``, with the gradients measured before it.

        ``update=False`` measures without updating, like :meth:`measure`, but
        through the same compiled function: a run that ends on a measurement
        traces one step function, not two (0.24 s of a 2.6 s diagnose run).
        ``probe`` measures the activations too (:meth:`activations`), from the
        step's own pass where :attr:`probes_in_step`, which spares a second
        pass (docs/performance.md, 'A diagnose run')."""
        acts = self.activations(batch) if probe and not self.probes_in_step else None
        r = self._step(*self._tensors(batch), tf.constant(update), tf.constant(probe))
        if probe and acts is None:
            acts = {k: np.asarray(v.numpy()) for k, v in r["activations"].items()}
        if not update:
            return self._record(r, None, acts)
        update_norm = r["update_norm"].numpy()
        weight = r["weight_norm"].numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(weight > 0, update_norm / weight, np.nan)
        return self._record(r, ratio, acts)

    def update(self, batch: Batch | Feed) -> float:
        """One optimizer update on ``batch``, measuring nothing but the loss
        before it (a fraction of :meth:`step`'s cost)."""
        return float(self._update(*self._tensors(batch)))

    def measure(self, batch: Batch | Feed) -> StepRecord:
        """Loss and gradients on ``batch`` at the current weights, without updating."""
        return self._record(self._measure(*self._tensors(batch)), None)

    @staticmethod
    def _record(
        r: dict[str, Any], ratio: np.ndarray | None, acts: dict[str, np.ndarray] | None = None
    ) -> StepRecord:
        return StepRecord(
            loss=float(r["loss"].numpy()),
            grad_norm=r["grad_norm"].numpy(),
            grad_zero_fraction=r["grad_zero_fraction"].numpy(),
            weight_norm=r["weight_norm"].numpy(),
            state_grad_norm=r["state_grad_norm"].numpy(),
            update_ratio=ratio,
            activations=acts,
        )

    def activations(self, batch: Batch | Feed) -> dict[str, np.ndarray]:
        """Activation statistics on ``batch`` (NaN if the cell hides its layers)."""
        if not hasattr(self.cell, "step_activations"):
            return no_activations()
        inputs = self._tensors(batch)[0]
        return {k: np.asarray(v.numpy()) for k, v in self._activations(inputs).items()}

    def loss(self, batch: Batch) -> float:
        """Loss on ``batch`` without gradients (inference mode)."""
        return float(self._evaluate(batch.inputs, batch.target(self.train_config.task))[0])

    def _evaluation(self, x: Any, y: Any) -> tuple[Any, Any]:
        out = self.rnn(x, training=False)
        return self.loss_fn(out, y), out

    def evaluate(self, batch: Batch) -> tuple[float, np.ndarray]:
        """:meth:`loss` on ``batch`` and each example's loss ``[batch]``, from one
        compiled pass (an eager one for the example losses cost 2 % of a run)."""
        task = self.train_config.task
        target = batch.target(task)
        loss, out = self._evaluate(batch.inputs, target)
        return float(loss), example_losses(task, np.asarray(out), target)


def train(
    factory: CellFactory,
    cell_config: CellConfig,
    train_config: TrainConfig,
    *,
    jit_compile: bool = False,
    probe_every: int = 1,
    fast: bool = False,
    on_step: Callable[[int, int], None] | None = None,
    reuse: bool = False,
) -> Trace:
    """Train a fresh cell from ``factory`` for ``train_config.train_steps`` and trace it.

    Reproducible: the same configurations (seeds included) give a bit-identical
    trace.  The activation probe (an extra forward pass, most of the recording
    cost) runs on step 0, every ``probe_every`` steps and the last step; other
    rows of the activation statistics are NaN; ``probe_every=0`` probes only
    the first and last steps.  ``on_step(done, total)`` is called after each
    step, for progress.  ``fast`` trains a ConvRNNCell through the fast path
    (:func:`cellverify.model.build_model`).  ``reuse`` restarts this
    process's last Trainer where :meth:`Trainer.restart` can (the same trace,
    without tracing its steps again): for workers that run seed after seed.
    """
    if probe_every < 0:
        raise InvalidConfig("train", "probe_every", "0 or a positive step count", probe_every)
    trainer = _trainer(factory, cell_config, train_config, (jit_compile, True, fast), reuse)
    market, eval_market = markets_for(cell_config, train_config)
    eval_batch = batch_for(cell_config, train_config, market=eval_market, draw=EVAL_DRAW)
    eval_start, eval_examples_start = trainer.evaluate(eval_batch)
    n = train_config.train_steps
    recorder = TraceRecorder(trainer.variable_names)
    recorder.eval_start = eval_start
    batches = prefetched(
        lambda draw: trainer.feed(batch_for(cell_config, train_config, market=market, draw=draw)),
        n + 1,
    )
    for k, batch in enumerate(batches):
        probe = k in (0, n) or (probe_every > 0 and k % probe_every == 0)
        recorder.record_step(k, trainer.step(batch, update=k < n, probe=probe))
        if on_step is not None:
            on_step(k + 1, n + 1)
    recorder.eval_end, eval_examples_end = trainer.evaluate(eval_batch)
    return recorder.trace(
        cell_config.to_dict(),
        train_config.to_dict(),
        reference_loss=reference_loss(eval_market, eval_batch, train_config.task),
        uniform_loss=eval_batch.uniform_loss(train_config.task),
        eval_example_loss=np.stack([eval_examples_start, eval_examples_end]),
    )


# This process's last Trainer, for train(reuse=True): at most one is kept.
_LAST_TRAINER: list[Trainer] = []


def _trainer(
    factory: CellFactory,
    cell_config: CellConfig,
    train_config: TrainConfig,
    flags: tuple[bool, bool, bool],
    reuse: bool,
) -> Trainer:
    for last in _LAST_TRAINER if reuse and factory is conv_rnn_cell else []:
        if last.compile_flags == flags and last.restart(cell_config, train_config):
            return last
    jit_compile, _, fast = flags
    trainer = Trainer(factory, cell_config, train_config, jit_compile=jit_compile, fast=fast)
    if reuse:
        _LAST_TRAINER[:] = [trainer]
    return trainer
