"""Training broken: gradients that are NaN, cut, of the wrong sign or wrong at
a kink, and cells dead or saturated at birth.

Each class changes one thing of the shipped cell (docs/invariants.md, "Mutation testing").
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf
from keras import ops

from cellverify.checks.mutants.base import register
from cellverify.model.cell import ConvRNNCell

__all__ = [
    "DeadAtBirth",
    "DeadConv1",
    "Frozen",
    "GradientSignFlipped",
    "NanGradient",
    "OutputStopsGradient",
    "SaturatedAtInit",
    "StopGradientConv1",
    "StopGradientConv1Opaque",
    "WeightsUnused",
    "WrongGradientAtKink",
    "ZeroPortfolio",
]


@register
class NanGradient(ConvRNNCell):
    """Adds sqrt(h - h) = 0 to the logits: finite forward, NaN gradient."""

    def logits(self, features: Any, state: Any, training: Any) -> Any:
        logits = super().logits(features, state, training)
        return logits + ops.sqrt(logits - logits)


@register
class StopGradientConv1(ConvRNNCell):
    """A stop-gradient after conv1: its weights never learn."""

    def step_activations(self, inputs: Any, state: Any, training: Any = None) -> Any:
        if not self.built:
            self.build(tuple(inputs.shape))
        h1 = ops.stop_gradient(self.apply_dropout(1, self.conv1(inputs), training))
        h2 = self.apply_dropout(2, self.conv2(h1), training)
        logits = self.logits(h2, state, training)
        return {"conv1": h1, "conv2": h2, "logits": logits, "output": self.portfolio(logits)}


@tf.custom_gradient  # type: ignore[untyped-decorator]
def _flip_gradient(x: Any) -> Any:
    return tf.identity(x), lambda dy: -dy


@register
class GradientSignFlipped(ConvRNNCell):
    """The gradient through the logits has the wrong sign: training ascends."""

    def logits(self, features: Any, state: Any, training: Any) -> Any:
        return _flip_gradient(super().logits(features, state, training))


@register
class SaturatedAtInit(ConvRNNCell):
    """Logits scaled by 1000: the softmax is one-hot from birth."""

    def logits(self, features: Any, state: Any, training: Any) -> Any:
        return super().logits(features, state, training) * 1000.0


@register
class DeadAtBirth(ConvRNNCell):
    """The question's ReLU before the softmax with conv3's bias at -1000: every
    logit is exactly 0, the output exactly uniform, the gradient exactly 0."""

    def build(self, input_shape: Any) -> Any:
        super().build(input_shape)
        self.conv3.bias.assign(ops.full(self.conv3.bias.shape, -1000.0))

    def logits(self, features: Any, state: Any, training: Any) -> Any:
        return ops.relu(super().logits(features, state, training))


@tf.custom_gradient  # type: ignore[untyped-decorator]
def _relu_wrong_at_zero(x: Any) -> Any:
    """ReLU whose gradient at exactly 0 is 3, outside its subgradients [0, 1]."""

    def grad(dy: Any) -> Any:
        return dy * (tf.cast(x > 0, x.dtype) + 3.0 * tf.cast(tf.equal(x, 0), x.dtype))

    return tf.nn.relu(x), grad


@register
class WrongGradientAtKink(ConvRNNCell):
    """ReLU convs whose gradient at exactly 0 is 3, with conv1 dead (bias -1000) so
    that every conv2 unit sits exactly at its kink, as flat prices put
    PGPortfolio's cell: the gradient is wrong only there, and must be caught."""

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.conv1.activation = tf.nn.relu
        self.conv2.activation = _relu_wrong_at_zero

    def build(self, input_shape: Any) -> Any:
        super().build(input_shape)
        self.conv1.bias.assign(ops.full(self.conv1.bias.shape, -1000.0))


@register
class ZeroPortfolio(ConvRNNCell):
    """Outputs all zeros: finite, but the portfolio loss -log(sum(w * y)) of
    a portfolio that holds nothing is +inf."""

    def portfolio(self, logits: Any) -> Any:
        return ops.zeros_like(logits)


@register
class Frozen(ConvRNNCell):
    """Every weight frozen (``trainable = False``): nothing can learn."""

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.trainable = False


@register
class DeadConv1(ConvRNNCell):
    """ReLU conv1 with its bias at -1000: every conv1 unit is dead, so its
    weights get an exactly-zero gradient that no nudge revives."""

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.conv1.activation = tf.nn.relu

    def build(self, input_shape: Any) -> Any:
        super().build(input_shape)
        self.conv1.bias.assign(ops.full(self.conv1.bias.shape, -1000.0))


@register
class StopGradientConv1Opaque(keras.layers.Layer):  # type: ignore[misc]
    """:class:`StopGradientConv1` behind a plain RNN-cell face, without
    ``step_activations``: what depends on conv1 is seen from the outputs alone."""

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.inner = StopGradientConv1(config)
        self.state_size = self.output_size = self.inner.state_size

    def build(self, input_shape: Any) -> None:
        self.inner.build(input_shape)
        self.built = True

    def get_initial_state(self, batch_size: Any) -> list[Any]:
        return self.inner.get_initial_state(batch_size)

    def call(self, inputs: Any, states: Any, training: Any = None) -> Any:
        return self.inner.call(inputs, states, training)

    def get_config(self) -> dict[str, Any]:
        base: dict[str, Any] = super().get_config()
        return {**base, "config": self.inner.cell_config.to_dict()}


@register
class OutputStopsGradient(ConvRNNCell):
    """A stop-gradient on the portfolio: a healthy-looking output that no
    loss can train."""

    def portfolio(self, logits: Any) -> Any:
        return ops.stop_gradient(super().portfolio(logits))


@register
class WeightsUnused(ConvRNNCell):
    """Scores every asset by its previous weight alone, its convs multiplied
    by 0: the portfolio stays where it starts, and no weight can move the loss."""

    def logits(self, features: Any, state: Any, training: Any) -> Any:
        scores = super().logits(features, state, training) * 0.0
        return scores + ops.log(ops.maximum(state, 1e-6))
