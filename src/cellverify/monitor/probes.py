"""The monitor's measurements on a probe batch, each compiled once per model.

Gradient statistics and the training-mode loss, the inference-mode loss, and
the RNN cell's activation statistics at every step (where the model holds an
RNN whose cell exposes ``step_activations``); the update ratio between two
snapshots of the weights.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from cellverify.training.compiled import compile_step
from cellverify.training.probe import (
    dense_gradients,
    gradient_statistics,
    sequence_activation_statistics,
)

__all__ = ["CompiledProbes", "find_rnn", "snapshot", "update_ratios"]


def find_rnn(model: Any) -> Any:
    """The first RNN layer whose cell exposes ``step_activations``, or None."""
    for layer in getattr(model, "_flatten_layers", lambda: [])():
        cell = getattr(layer, "cell", None)
        if isinstance(layer, keras.layers.RNN) and hasattr(cell, "step_activations"):
            return layer
    return None


class _NoSequence(Exception):
    """The RNN does not return its whole sequence: no per-step activations."""


def _gradient_probe_fn(model: Any) -> Callable[[Any, Any], dict[str, Any]]:
    """The training-mode loss and gradient statistics on (x, y), compiled."""
    variables = list(model.trainable_variables)

    def measure(x: Any, y: Any) -> dict[str, Any]:
        with tf.GradientTape() as tape:
            y_pred = model(x, training=True)
            loss = model.compute_loss(x=x, y=y, y_pred=y_pred, training=True)
        grads = dense_gradients(tape.gradient(loss, variables), variables)
        return {"loss": tf.cast(loss, tf.float64), **gradient_statistics(grads, variables)}

    # Without the remapper where it would fail on the user's graph
    # (cellverify.training.compiled).
    return compile_step(measure, autograph=True, reduce_retracing=True)


def _inference_loss_fn(model: Any) -> Callable[[Any, Any], Any]:
    """The model's loss on (x, y) in inference mode, compiled."""

    def inference_loss(x: Any, y: Any) -> Any:
        y_pred = model(x, training=False)
        return model.compute_loss(x=x, y=y, y_pred=y_pred, training=False)

    return tf.function(inference_loss)  # type: ignore[no-any-return]


def _activation_fn(model: Any) -> Callable[[Any], dict[str, Any]] | None:
    """A compiled pass from the model's input to the RNN cell's activation
    statistics at every step of the probe, or None if there is no such cell."""
    rnn = find_rnn(model)
    if rnn is None:
        return None
    try:
        to_rnn = keras.Model(model.input, rnn.input)
    except Exception:  # a subclassed model: the RNN's input is not reachable
        if not (len(model.layers) and model.layers[0] is rnn):
            return None
        to_rnn = None

    def statistics(x: Any) -> dict[str, Any]:
        inputs = x if to_rnn is None else to_rnn(x, training=False)
        out = rnn(inputs, training=False)
        out = out[0] if isinstance(out, (list, tuple)) else out
        if len(out.shape) != 3:
            raise _NoSequence
        s0 = rnn.get_initial_state(int(inputs.shape[0]))[0]
        return sequence_activation_statistics(rnn.cell, inputs, out, s0)

    return tf.function(statistics)  # type: ignore[no-any-return]


class CompiledProbes:
    """The measurements, each built for a model once and kept, with the model
    it was made for, across fits of the same model: so each is traced once."""

    def __init__(self) -> None:
        self._compiled: dict[str, tuple[Any, Any]] = {}

    def _per_model(self, name: str, build: Callable[[Any], Any], model: Any) -> Any:
        cached = self._compiled.get(name)
        if cached is None or cached[0] is not model:
            cached = self._compiled[name] = (model, build(model))
        return cached[1]

    def gradients(self, model: Any, x: Any, y: Any) -> dict[str, np.ndarray]:
        """The training-mode loss and per-variable gradient statistics."""
        measure = self._per_model("probe", _gradient_probe_fn, model)
        return {k: np.asarray(v) for k, v in measure(x, y).items()}

    def loss(self, model: Any, x: Any, y: Any) -> float:
        """The inference-mode loss."""
        return float(self._per_model("loss", _inference_loss_fn, model)(x, y))

    def activations(self, model: Any, x: Any) -> dict[str, np.ndarray] | None:
        """Activation statistics on ``x``, or None when the model has no RNN
        whose cell exposes ``step_activations``.  Compiled: eager, the
        probe's RNN pass took about twice as long."""
        fn = self._per_model("activations", _activation_fn, model)
        if fn is None:
            return None
        try:
            stats = fn(x)
        except _NoSequence:
            self._compiled["activations"] = (model, None)
            return None
        return {k: np.asarray(v) for k, v in stats.items()}


def snapshot(variables: Sequence[Any]) -> list[np.ndarray]:
    """The variables' values as NumPy copies."""
    return [np.array(v.numpy() if hasattr(v, "numpy") else v) for v in variables]


def update_ratios(before: Sequence[np.ndarray], variables: Sequence[Any]) -> np.ndarray:
    """``‖after - before‖ / ‖before‖`` of each variable (NaN where before is 0)."""
    ratios = []
    for b, a in zip(before, snapshot(variables), strict=True):
        scale = float(np.linalg.norm(b))
        ratios.append(float(np.linalg.norm(a - b)) / scale if scale > 0 else float("nan"))
    return np.array(ratios)
