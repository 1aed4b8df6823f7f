"""A Trainer's compiled functions: the recorded step, the bare update, the
measurement, the activation probe and the evaluation.

Each is one ``tf.function`` per model, traced once (fixed shapes and
dtypes), not once per step.  Measurements are reductions computed inside the
same function, so recording adds little to a step (benchmarks/ measures it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import tensorflow as tf

from cellverify.model.fast import FastConvRNN
from cellverify.trace import no_activations
from cellverify.training.compiled import compile_step
from cellverify.training.probe import (
    activation_statistics,
    dense_gradients,
    gradient_statistics,
    last_state_gradient_norm,
    norm,
    sequence_activation_statistics,
)

__all__ = ["StepFunctions"]


class StepFunctions:
    """The graph code of one model's training, each function compiled once:
    :attr:`step` (an update, or a measurement without one, with every
    statistic a trace records), :attr:`update` (the update alone),
    :attr:`measure`, :attr:`activations` and :attr:`evaluate`.

    ``jit_compile`` compiles them with XLA; ``compiled=False`` runs them
    eagerly.  ``probes_in_step``: the step measures the activations from its
    own pass, before its update; otherwise they come from :attr:`activations`,
    a pass of their own.
    """

    def __init__(
        self,
        rnn: Any,
        cell: Any,
        variables: Sequence[Any],
        optimizer: Any,
        loss_fn: Callable[[Any, Any], Any],
        *,
        probes_in_step: bool,
        jit_compile: bool = False,
        compiled: bool = True,
        state_is_output: bool = True,
    ) -> None:
        self.rnn, self.cell, self.optimizer, self.loss_fn = rnn, cell, optimizer, loss_fn
        self.variables = list(variables)
        self.probes_in_step = probes_in_step
        #: Whether the state entering a step is the previous step's output,
        #: which the last step's state gradient is measured from.
        self.state_is_output = state_is_output

        def compile_(fn: Callable[..., Any]) -> Callable[..., Any]:
            # Without AutoGraph, as Keras's own fit() compiles its step: a cell
            # that trains under model.fit traces here too, and the conversion
            # was 90 % of the tracing (loss_decreases: 0.32 of 0.35 s per model).
            # Without grappler's remapping where it would fail on the graph
            # (cellverify.training.compiled).
            return compile_step(fn, jit_compile=jit_compile) if compiled else fn

        #: ``(x, y, update, probe) -> dict``: the recorded step.
        self.step = compile_(self._train_step)
        #: ``(x, y) -> loss``: an update and nothing else.
        self.update = compile_(self._lean_step)
        #: ``(x, y) -> dict``: the step's measurements, without updating.
        self.measure = compile_(self._measure_step)
        #: ``x -> dict``: the activation statistics, from an inference pass.
        self.activations = compile_(self._activation_stats)
        #: ``(x, y) -> (loss, outputs)``: inference.
        self.evaluate = compile_(self._evaluation)

    def _forward_and_gradients(self, x: Any, y: Any) -> tuple[Any, list[Any], Any, Any]:
        """Loss, gradients, state-gradient norms, and the fast path's pass
        (:meth:`FastConvRNN.passes` and the initial state; None through
        ``keras.layers.RNN``), which the last step and the probe reuse."""
        states = list(self.rnn.get_initial_state(tf.shape(x)[0]))
        s0 = states[0]
        with tf.GradientTape() as tape:
            tape.watch(s0)
            if isinstance(self.rnn, FastConvRNN):
                passes = self.rnn.passes(x, s0, training=True)
                *_, g, out = passes
            else:
                out, g, passes = self.rnn(x, initial_state=states, training=True), None, None
            loss = self.loss_fn(out, y)
        grads = tape.gradient(loss, [*self.variables, s0])
        weight_grads = dense_gradients(grads[:-1], self.variables)
        state_grad = tf.zeros_like(s0) if grads[-1] is None else grads[-1]
        if self.state_is_output:
            last = last_state_gradient_norm(self.rnn, self.loss_fn, x, y, out, g)
        else:  # the state entering the last step is not in the outputs: unmeasured
            last = tf.constant(float("nan"), tf.float64)
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
        if self.variables:  # a frozen cell trains to nothing, and that is its report
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
        if not self.variables:
            return tf.zeros([0], tf.float64)
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

    def _evaluation(self, x: Any, y: Any) -> tuple[Any, Any]:
        out = self.rnn(x, training=False)
        return self.loss_fn(out, y), out
