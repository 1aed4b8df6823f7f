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

__all__ = ["FastConvRNN"]


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

    def features(self, inputs: Any, training: Any = None) -> Any:
        """Steps 1-3: the state-free part, ``g`` of shape ``[batch, steps, assets]``."""
        cell, c = self.cell, self.cell.cell_config
        shape = tf.shape(inputs)
        batch, steps = shape[0], shape[1]
        flat = tf.reshape(inputs, [batch * steps, c.assets, c.window, c.features])
        h1 = cell.apply_dropout(1, cell.conv1(flat), training)
        k1, k2, _ = c.kernels
        rows = tf.reshape(h1, [-1, (c.window - 2) * k1])
        conv2 = cell.conv2
        pre = tf.matmul(rows, tf.reshape(conv2.kernel, [(c.window - 2) * k1, k2])) + conv2.bias
        h2 = cell.apply_dropout(2, conv2.activation(pre), training)
        w3 = tf.reshape(cell.conv3.kernel, [k2 + 1])
        g = tf.linalg.matvec(h2, w3[:k2]) + cell.conv3.bias[0]
        return tf.reshape(g, [batch, steps, c.assets])

    def call(self, inputs: Any, initial_state: Any = None, training: Any = None) -> Any:
        cell, c = self.cell, self.cell.cell_config
        g = self.features(inputs, training)
        if initial_state is None:
            state = cell.get_initial_state(tf.shape(inputs)[0])[0]
        else:
            state = initial_state[0]
        k2 = c.kernels[1]
        w_state = tf.reshape(cell.conv3.kernel, [k2 + 1])[k2]
        activation = cell.conv3.activation

        def step(previous: Any, g_t: Any) -> Any:
            z = activation(g_t + w_state * previous[:, -c.assets :])
            logits = cell.apply_dropout(3, z[:, :, None, None], training)[:, :, 0, 0]
            if cell.cash_logit is not None:
                cash = tf.ones_like(logits[:, :1]) * cell.cash_logit
                logits = tf.concat([cash, logits], axis=-1)
            return tf.nn.softmax(logits, axis=-1)

        outputs = tf.scan(step, tf.transpose(g, [1, 0, 2]), initializer=state)
        return tf.transpose(outputs, [1, 0, 2])
