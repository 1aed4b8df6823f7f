"""What a training step measures, as TensorFlow reductions (shared by the
kit's :class:`~cellverify.training.trainer.Trainer` and the user-side monitor).

Each function returns a dict keyed as :mod:`cellverify.trace` names the
statistics, so a :class:`~cellverify.trace.Trace` is filled the same way
whoever trained.  The reductions are cheap enough to run inside a compiled
step (benchmarks/ measures their cost).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import tensorflow as tf

from cellverify.trace import ACTIVATION_LAYERS, LAYER_STATISTICS, OUTPUT_STATISTICS

__all__ = [
    "SATURATION_LEVEL",
    "activation_statistics",
    "dense_gradients",
    "gradient_statistics",
    "last_state_gradient_norm",
    "norm",
    "sequence_activation_statistics",
    "share",
    "zero_fraction",
]

#: An activation at least this large in magnitude counts as saturated: tanh's
#: slope 1 - tanh² is below 0.02 there.
SATURATION_LEVEL = 0.99


def norm(x: Any) -> Any:
    """L2 norm, accumulated in float64."""
    return tf.sqrt(tf.reduce_sum(tf.square(tf.cast(x, tf.float64))))


def zero_fraction(x: Any) -> Any:
    """Share of entries exactly 0."""
    return share(tf.equal(x, 0))


def share(mask: Any) -> Any:
    """Share of true entries, exact: counted in int32 per example, then summed
    in float64.  (A float64 mean of the whole mask made a copy 8x its size,
    most of the activation probe's cost; docs/performance.md, 'A diagnose run'.)"""
    if mask.shape.rank == 0:
        return tf.cast(mask, tf.float64)
    rows = tf.reshape(mask, [tf.shape(mask)[0], -1])
    counts = tf.reduce_sum(tf.cast(rows, tf.int32), axis=-1)
    total = tf.cast(tf.size(mask), tf.float64)
    return tf.reduce_sum(tf.cast(counts, tf.float64)) / total


def dense_gradients(grads: Sequence[Any], variables: Sequence[Any]) -> list[Any]:
    """One dense gradient per variable, zeros where the loss does not reach it:
    a zero, not no update (the optimizer's moments still decay), and counted
    as exactly-zero entries by the statistics."""
    return [
        tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)
        for g, v in zip(grads, variables, strict=True)
    ]


def gradient_statistics(grads: Sequence[Any], variables: Sequence[Any]) -> dict[str, Any]:
    """Per-variable gradient norm, share of exactly-zero gradient entries, weight norm."""
    return {
        "grad_norm": tf.stack([norm(g) for g in grads]),
        "grad_zero_fraction": tf.stack([zero_fraction(g) for g in grads]),
        "weight_norm": tf.stack([norm(v) for v in variables]),
    }


def last_state_gradient_norm(
    rnn: Any, loss_fn: Callable[[Any, Any], Any], x: Any, y: Any, out: Any, g: Any
) -> Any:
    """‖∂L_last/∂s‖ for the state entering the last step of ``x``, whose
    outputs are ``out``, by re-running that step: through ``keras.layers.RNN``
    (``g`` None) the cell's whole step; through the fast path only its
    recurrence from ``g``, whose convs do not see the state (a fifth of the
    recorded step, when it re-ran the convs)."""
    if out.shape[1] == 1:
        s = rnn.get_initial_state(tf.shape(out)[0])[0]
    else:
        s = tf.stop_gradient(out[:, -2])
    with tf.GradientTape() as tape:
        tape.watch(s)
        if g is None:
            last, _ = rnn.cell(x[:, -1], [s], training=True)
        else:
            logits = rnn.step_logits(tf.stop_gradient(g[:, -1]), s, training=True)
            last = tf.nn.softmax(logits, axis=-1)
        loss = loss_fn(last[:, None], y[:, -1:])
    grad = tape.gradient(loss, s)
    return tf.constant(0.0, tf.float64) if grad is None else norm(grad)


def activation_statistics(acts: Mapping[str, Any]) -> dict[str, Any]:
    """Layer and output statistics of one step's activations (keys of
    ``step_activations``: each of ACTIVATION_LAYERS, and ``output``)."""
    per_layer: dict[str, list[Any]] = {key: [] for key in LAYER_STATISTICS}
    for name in ACTIVATION_LAYERS:
        dead, zeros = _zero_statistics(acts[name])
        per_layer["dead_fraction"].append(dead)
        per_layer["zero_fraction"].append(zeros)
        per_layer["saturated_fraction"].append(share(tf.abs(acts[name]) >= SATURATION_LEVEL))
    w = tf.cast(acts["output"], tf.float64)
    n = tf.cast(tf.shape(w)[-1], tf.float64)
    largest = tf.reduce_max(w, -1)
    output = {
        "uniform_rows": tf.reduce_mean(
            tf.cast(tf.equal(largest, tf.reduce_min(w, -1)), tf.float64)
        ),
        "max_uniform_deviation": tf.reduce_max(tf.abs(w - 1.0 / n)),
        "max_weight": tf.reduce_mean(largest),
    }
    assert tuple(output) == OUTPUT_STATISTICS
    return {**{k: tf.stack(v) for k, v in per_layer.items()}, **output}


def _zero_statistics(a: Any) -> tuple[Any, Any]:
    """Share of channels (the last axis) that are 0 everywhere, and share of
    entries that are 0: both from one count of zeros per example and channel
    (int32 within it, float64 across them, so exact), where a pass for each
    cost a fifth more of the probe's statistics."""
    per_example = tf.reshape(a, [tf.shape(a)[0], -1, a.shape[-1]])
    zeros = tf.reduce_sum(tf.cast(tf.equal(per_example, 0), tf.int32), axis=1)
    per_channel = tf.reduce_sum(tf.cast(zeros, tf.float64), axis=0)
    positions = tf.shape(per_example)[0] * tf.shape(per_example)[1]
    dead = tf.reduce_mean(
        tf.cast(tf.equal(per_channel, tf.cast(positions, tf.float64)), tf.float64)
    )
    return dead, tf.reduce_sum(per_channel) / tf.cast(tf.size(a), tf.float64)


def sequence_activation_statistics(
    cell: Any, x: Any, outputs: Any, initial_state: Any
) -> dict[str, Any]:
    """:func:`activation_statistics` over every step of a sequence at once:
    each step's input ``x[:, t]`` with the state entering it (the initial
    state, then each output), flattened into one batch of the cell's
    ``step_activations``."""
    batch, steps = tf.shape(x)[0], tf.shape(x)[1]
    first = tf.cast(initial_state, outputs.dtype)[:, None]
    states = tf.concat([first, outputs[:, :-1]], axis=1)
    flat_x = tf.reshape(x, tf.concat([[batch * steps], tf.shape(x)[2:]], 0))
    flat_s = tf.reshape(states, [batch * steps, -1])
    return activation_statistics(cell.step_activations(flat_x, flat_s, training=False))
