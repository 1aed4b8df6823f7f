"""A faster way to run :class:`~cellverify.model.cell.ConvRNNCell` over a sequence, same function.

Only conv3's state channel is recurrent: conv1 and conv2 see the price window
alone.  So the fast path

1. runs conv1 on every step of every sequence at once (``[batch*steps, ...]``),
2. runs conv2 - a ``1x(window-2)`` conv spanning the whole remaining width - as
   one matrix product ``[batch*steps*assets, (window-2)*k1] @ [(window-2)*k1, k2]``,
3. folds conv3's feature channels into that product's output (``g = h2 @ w + b``),
4. and scans over time only the cheap part: ``act(g_t + w_state * s_{t-1})``,
   dropout, cash logit and softmax, elementwise on ``[batch, assets]``.

It shares the cell's variables (no copy), so a model trained either way is the
same model; ``tests/test_fast.py`` checks that outputs and gradients agree with
``keras.layers.RNN(cell)`` within float32 tolerance on generated configurations.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from cellverify.model.cell import ConvRNNCell

__all__ = ["UNROLL_MAX_STEPS", "FastConvRNN"]

#: Sequences up to this many steps are unrolled, longer ones scanned: the
#: unrolled graph grows with the steps, and past a few dozen its tracing
#: costs more than the loop it saves.
UNROLL_MAX_STEPS = 16


class FastConvRNN(keras.layers.Layer):  # type: ignore[misc]
    """Sequence layer: ``[batch, steps, assets, window, features] -> [batch, steps, outputs]``.

    Drop-in for ``keras.layers.RNN(cell, return_sequences=True)`` when the cell
    is a :class:`ConvRNNCell`; accepts ``initial_state=[state]`` likewise.
    """

    def __init__(self, cell: ConvRNNCell, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(cell, ConvRNNCell):
            raise TypeError(f"FastConvRNN runs a ConvRNNCell. Received: {type(cell).__name__}")
        self.cell = cell

    def build(self, input_shape: Any) -> None:
        if not self.cell.built:
            self.cell.build((input_shape[0], *input_shape[2:]))
        self.built = True

    def get_initial_state(self, batch_size: Any) -> list[Any]:
        return self.cell.get_initial_state(batch_size)

    def hidden(self, inputs: Any, training: Any = None) -> tuple[Any, Any]:
        """Steps 1-2 on every window of every sequence at once: conv1's output
        ``[batch*steps, assets, window-2, k1]`` and conv2's, ``[batch*steps*assets, k2]``."""
        cell, c = self.cell, self.cell.cell_config
        k1, k2, _ = c.kernels
        flat = tf.reshape(inputs, [-1, c.assets, c.window, c.features])
        h1 = cell.apply_dropout(1, cell.conv1(flat), training)
        rows = tf.reshape(h1, [-1, (c.window - 2) * k1])
        pre = tf.matmul(rows, tf.reshape(cell.conv2.kernel, [-1, k2])) + cell.conv2.bias
        return h1, cell.apply_dropout(2, cell.conv2.activation(pre), training)

    def features(self, inputs: Any, training: Any = None) -> Any:
        """Steps 1-3: the state-free part, ``g`` of shape ``[batch, steps, assets]``."""
        return self._folded(inputs, self.hidden(inputs, training)[1])

    def _folded(self, inputs: Any, h2: Any) -> Any:
        c = self.cell.cell_config
        k2 = c.kernels[1]
        w3 = tf.reshape(self.cell.conv3.kernel, [k2 + 1])
        g = tf.linalg.matvec(h2, w3[:k2]) + self.cell.conv3.bias[0]
        shape = tf.shape(inputs)
        return tf.reshape(g, [shape[0], shape[1], c.assets])

    def step_logits(self, g_t: Any, previous: Any, training: Any = None) -> Any:
        """One step of the recurrence: the softmax's input ``[batch, outputs]``
        from that step's ``g`` and the state entering it."""
        cell, c = self.cell, self.cell.cell_config
        k2 = c.kernels[1]
        w_state = tf.reshape(cell.conv3.kernel, [k2 + 1])[k2]
        z = cell.conv3.activation(g_t + w_state * previous[:, -c.assets :])
        logits = cell.apply_dropout(3, z[:, :, None, None], training)[:, :, 0, 0]
        if cell.cash_logit is not None:
            cash = tf.ones_like(logits[:, :1]) * cell.cash_logit
            logits = tf.concat([cash, logits], axis=-1)
        return logits

    def recur(self, g: Any, state: Any, training: Any = None) -> Any:
        """Step 4 over the sequence: every step's output ``[batch, steps, outputs]``.

        A sequence of known length up to :data:`UNROLL_MAX_STEPS` is unrolled:
        a while loop's bookkeeping, forward and backward, cost 11 % of the
        question's training step (docs/performance.md, 'The fast path')."""
        steps = g.shape[1]
        if steps is not None and steps <= UNROLL_MAX_STEPS:
            outputs = []
            for t in range(steps):
                state = tf.nn.softmax(self.step_logits(g[:, t], state, training), axis=-1)
                outputs.append(state)
            return tf.stack(outputs, axis=1)

        def step(previous: Any, g_t: Any) -> Any:
            return tf.nn.softmax(self.step_logits(g_t, previous, training), axis=-1)

        outputs = tf.scan(step, tf.transpose(g, [1, 0, 2]), initializer=state)
        return tf.transpose(outputs, [1, 0, 2])

    def initial(self, inputs: Any, initial_state: Any = None) -> Any:
        """The state entering the first step: ``initial_state[0]``, or the cell's."""
        if initial_state is None:
            return self.cell.get_initial_state(tf.shape(inputs)[0])[0]
        return initial_state[0]

    def call(self, inputs: Any, initial_state: Any = None, training: Any = None) -> Any:
        g = self.features(inputs, training)
        return self.recur(g, self.initial(inputs, initial_state), training)

    def passes(self, inputs: Any, state: Any, training: Any = None) -> tuple[Any, Any, Any, Any]:
        """The sequence from ``state``, with what it passed through: conv1's
        and conv2's outputs (:meth:`hidden`), ``g`` (:meth:`features`) and
        every step's output (:meth:`recur`)."""
        h1, h2 = self.hidden(inputs, training)
        g = self._folded(inputs, h2)
        return h1, h2, g, self.recur(g, state, training)

    def sequence_activations(self, inputs: Any, training: Any = None) -> dict[str, Any]:
        """Every step's intermediate tensors at once, keyed like
        :meth:`ConvRNNCell.step_activations` (steps flattened into the batch;
        conv2's as ``[batch*steps*assets, k2]``), from one pass of the fast path."""
        state = self.initial(inputs)
        return self.activations_of(*self.passes(inputs, state, training), state, training)

    def activations_of(
        self, h1: Any, h2: Any, g: Any, outputs: Any, state: Any, training: Any = None
    ) -> dict[str, Any]:
        """:meth:`sequence_activations` from a pass already made (:meth:`passes`
        from ``state``): only every step's logits are computed again."""
        previous = tf.concat([state[:, None], outputs[:, :-1]], axis=1)
        logits = self.step_logits(
            tf.reshape(g, [-1, g.shape[-1]]),
            tf.reshape(previous, [-1, outputs.shape[-1]]),
            training,
        )
        return {"conv1": h1, "conv2": h2, "logits": logits, "output": tf.nn.softmax(logits, -1)}
