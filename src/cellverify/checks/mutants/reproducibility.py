"""Reproducibility broken: randomness at inference, seeds ignored or shifted,
a configuration that forgets, a graph that computes something else.

Each class changes one thing of the shipped cell (docs/invariants.md, "Mutation testing").
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from cellverify.checks.mutants.base import register
from cellverify.model.cell import ConvRNNCell, initializer, slot_seed

__all__ = [
    "ConfigForgetsActivation",
    "ConfigForgetsKernels",
    "ConfigRejected",
    "DropoutOnAtInference",
    "DropoutRedrawsWeights",
    "EagerGraphDiffer",
    "NotRegistered",
    "RateZeroDropoutBendsGradient",
    "SavesWrongCashBias",
    "SeedIgnored",
    "UnseededTrainingDropout",
    "XlaUncompilable",
]


@register
class DropoutOnAtInference(ConvRNNCell):
    """Always drops half the conv1 units, in training and at inference alike."""

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.always = keras.layers.Dropout(0.5, seed=self.cell_config.seed)

    def apply_dropout(self, layer: Any, x: Any, training: Any) -> Any:
        x = super().apply_dropout(layer, x, training)
        return self.always(x, training=True) if layer == 1 else x


@register
class DropoutRedrawsWeights(ConvRNNCell):
    """Seeds parts by their position in the layer list, as TF1 graph seeding did:
    adding a dropout layer shifts every later conv's seed (the question's claim 3)."""

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        c = self.cell_config
        order = [
            "conv1",
            *(["dropout1"] if 1 in c.dropout_after else []),
            "conv2",
            *(["dropout2"] if 2 in c.dropout_after else []),
            "conv3",
        ]
        for name in ("conv2", "conv3"):
            conv = getattr(self, name)
            seed = slot_seed(c.seed, order.index(name))
            conv.kernel_initializer = initializer(c.initializer, seed)


@register
class SeedIgnored(ConvRNNCell):
    """Initializers without a seed: every build draws new weights."""

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        for conv in (self.conv1, self.conv2, self.conv3):
            conv.kernel_initializer = keras.initializers.HeNormal(seed=None)


@register
class ConfigForgetsKernels(ConvRNNCell):
    """get_config() leaves out the kernel counts, so from_config() uses the defaults."""

    def get_config(self) -> Any:
        config = super().get_config()
        config["config"] = {k: v for k, v in config["config"].items() if k != "kernels"}
        return config


@register
class EagerGraphDiffer(ConvRNNCell):
    """Adds 0.1 to the first logit when running eagerly, and nothing in a graph."""

    def logits(self, features: Any, state: Any, training: Any) -> Any:
        logits = super().logits(features, state, training)
        eager = 0.1 if tf.executing_eagerly() else 0.0
        return logits + ops.one_hot(ops.zeros_like(logits[:, 0], "int32"), logits.shape[-1]) * eager


@tf.custom_gradient  # type: ignore[untyped-decorator]
def _double_gradient(x: Any) -> Any:
    return tf.identity(x), lambda dy: 2.0 * dy


@register
class RateZeroDropoutBendsGradient(ConvRNNCell):
    """A dropout layer that, even at rate 0, doubles the gradient through it:
    the outputs are those without dropout, the gradients are not."""

    def apply_dropout(self, layer: int, x: Any, training: Any) -> Any:
        if layer not in self.dropouts:
            return x
        return _double_gradient(super().apply_dropout(layer, x, training))


@register
class XlaUncompilable(ConvRNNCell):
    """Adds 0 computed by ``tf.numpy_function``, which eager and ``tf.function``
    run and XLA cannot compile."""

    def logits(self, features: Any, state: Any, training: Any) -> Any:
        logits = super().logits(features, state, training)
        zero = tf.numpy_function(lambda a: a * 0, [logits], logits.dtype, stateful=False)
        return logits + tf.stop_gradient(tf.ensure_shape(zero, logits.shape))


@register
class UnseededTrainingDropout(ConvRNNCell):
    """A dropout after conv1 in training, with no seed: inference is
    reproducible, two training runs with the same seeds are not."""

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.unseeded = keras.layers.Dropout(0.5, seed=None)

    def apply_dropout(self, layer: int, x: Any, training: Any) -> Any:
        x = super().apply_dropout(layer, x, training)
        return self.unseeded(x, training=training) if layer == 1 else x


@register
class ConfigRejected(ConvRNNCell):
    """get_config() adds a key that the constructor does not take."""

    def get_config(self) -> Any:
        return {**super().get_config(), "cell_version": 2}


@register
class ConfigForgetsActivation(ConvRNNCell):
    """get_config() leaves out the activation: the rebuilt cell has the same
    weights under the default (ReLU), and computes something else."""

    def get_config(self) -> Any:
        config = super().get_config()
        config["config"] = {k: v for k, v in config["config"].items() if k != "activation"}
        return config


class NotRegistered(ConvRNNCell):
    """Not registered with Keras's serialization: from_config works on the
    class in hand, but a saved model cannot be loaded."""


@register
class SavesWrongCashBias(ConvRNNCell):
    """Saves its cash logit plus 1 to .keras: get_weights() is right, a model
    reloaded from the file is not (run it with ``cash_bias=True``)."""

    def save_own_variables(self, store: Any) -> None:
        if self.cash_logit is not None:
            store["0"] = np.asarray(self.cash_logit) + 1.0
