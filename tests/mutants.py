"""Deliberately broken cells, each a cell factory (SPEC §4.2).

Every invariant must be shown to fail on at least one of these; ``KILLS``
names the invariant(s) each mutant is written to break.  Each mutant changes
one thing of the shipped cell, so that the rest of the kit still runs on it.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf
from keras import ops

from cellverify.case import Case
from cellverify.cell import ConvRNNCell, _initializer
from cellverify.config import CellConfig, TrainConfig
from cellverify.data import InputSpec

#: The case every mutant is run on: inside the robust region, small, with a
#: cash-free ELU cell and a linear last conv (REMEDIED at a small shape).
CASE = Case(
    CellConfig(
        assets=4, window=8, kernels=(3, 4, 1), activation="elu", output_activation="linear", seed=1
    ),
    TrainConfig(batch_size=3, steps=2, task="supervised", seed=1),
)
#: Inputs some mutants need to show their fault (NaN only on large moves).
INPUTS_FOR = {"NanOnLargeMoves": InputSpec(kind="large_moves", seed=1)}
#: Cell changes some mutants need: the units at WrongGradientAtKink's kink move
#: every asset's logit alike, which only a cash logit makes visible.
CELL_FOR = {"WrongGradientAtKink": {"cash_bias": True}}


def _register(cls: type) -> type:
    return keras.saving.register_keras_serializable(package="cellverify_mutants")(cls)


@_register
class WrongOutputShape(ConvRNNCell):
    """Drops the last asset from the output (the state keeps every asset)."""

    def call(self, inputs, states, training=None):
        output, new_states = super().call(inputs, states, training)
        return output[:, :-1], new_states


@_register
class SoftmaxOverWrongAxis(ConvRNNCell):
    """Softmax over the batch instead of the assets."""

    def _portfolio(self, logits):
        return ops.softmax(logits, axis=0)


@_register
class NanOnLargeMoves(ConvRNNCell):
    """Outputs NaN for an example whose window holds a move of more than 10 %."""

    def step_activations(self, inputs, state, training=None):
        acts = super().step_activations(inputs, state, training)
        big = ops.max(ops.abs(inputs - 1.0), axis=(1, 2, 3)) > 0.1
        acts["output"] = ops.where(big[:, None], float("nan"), acts["output"])
        return acts


@_register
class StateNotFedBack(ConvRNNCell):
    """Returns the incoming state as the new state instead of the output."""

    def call(self, inputs, states, training=None):
        output, _ = super().call(inputs, states, training)
        return output, [states[0]]


@_register
class StateIgnored(ConvRNNCell):
    """Feeds zeros to conv3 where the previous portfolio belongs."""

    def _logits(self, features, state, training):
        return super()._logits(features, ops.zeros_like(state), training)


@_register
class AssetsMixed(ConvRNNCell):
    """conv2 is two rows tall: each asset's features see its neighbour's."""

    def _logits(self, features, state, training):
        neighbour = ops.concatenate([features[:, 1:], ops.zeros_like(features[:, :1])], axis=1)
        return super()._logits(features + neighbour, state, training)


@_register
class NanGradient(ConvRNNCell):
    """Adds sqrt(h - h) = 0 to the logits: finite forward, NaN gradient."""

    def _logits(self, features, state, training):
        logits = super()._logits(features, state, training)
        return logits + ops.sqrt(logits - logits)


@_register
class StopGradientConv1(ConvRNNCell):
    """A stop-gradient after conv1: its weights never learn."""

    def step_activations(self, inputs, state, training=None):
        if not self.built:
            self.build(tuple(inputs.shape))
        h1 = ops.stop_gradient(self._dropout(1, self.conv1(inputs), training))
        h2 = self._dropout(2, self.conv2(h1), training)
        logits = self._logits(h2, state, training)
        return {"conv1": h1, "conv2": h2, "logits": logits, "output": self._portfolio(logits)}


@tf.custom_gradient
def _flip_gradient(x):
    return tf.identity(x), lambda dy: -dy


@_register
class GradientSignFlipped(ConvRNNCell):
    """The gradient through the logits has the wrong sign: training ascends."""

    def _logits(self, features, state, training):
        return _flip_gradient(super()._logits(features, state, training))


@_register
class DropoutOnAtInference(ConvRNNCell):
    """Always drops half the conv1 units, in training and at inference alike."""

    def __init__(self, config=None, **kwargs):
        super().__init__(config, **kwargs)
        self.always = keras.layers.Dropout(0.5, seed=self.cell_config.seed)

    def _dropout(self, layer, x, training):
        x = super()._dropout(layer, x, training)
        return self.always(x, training=True) if layer == 1 else x


@_register
class DropoutRedrawsWeights(ConvRNNCell):
    """Seeds parts by their position in the layer list, as TF1 graph seeding did:
    adding a dropout layer shifts every later conv's seed (SPEC §9, claim 3)."""

    def __init__(self, config=None, **kwargs):
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
            conv.kernel_initializer = _initializer(c.initializer, c.seed * 8 + order.index(name))


@_register
class SeedIgnored(ConvRNNCell):
    """Initializers without a seed: every build draws new weights."""

    def __init__(self, config=None, **kwargs):
        super().__init__(config, **kwargs)
        for conv in (self.conv1, self.conv2, self.conv3):
            conv.kernel_initializer = keras.initializers.HeNormal(seed=None)


@_register
class ConfigForgetsKernels(ConvRNNCell):
    """get_config() leaves out the kernel counts, so from_config() uses the defaults."""

    def get_config(self):
        config = super().get_config()
        config["config"] = {k: v for k, v in config["config"].items() if k != "kernels"}
        return config


@_register
class EagerGraphDiffer(ConvRNNCell):
    """Adds 0.1 to the first logit when running eagerly, and nothing in a graph."""

    def _logits(self, features, state, training):
        logits = super()._logits(features, state, training)
        eager = 0.1 if tf.executing_eagerly() else 0.0
        return logits + ops.one_hot(ops.zeros_like(logits[:, 0], "int32"), logits.shape[-1]) * eager


@_register
class SaturatedAtInit(ConvRNNCell):
    """Logits scaled by 1000: the softmax is one-hot from birth."""

    def _logits(self, features, state, training):
        return super()._logits(features, state, training) * 1000.0


@_register
class DeadAtBirth(ConvRNNCell):
    """The question's ReLU before the softmax with conv3's bias at -1000: every
    logit is exactly 0, the output exactly uniform, the gradient exactly 0."""

    def build(self, input_shape):
        super().build(input_shape)
        self.conv3.bias.assign(ops.full(self.conv3.bias.shape, -1000.0))

    def _logits(self, features, state, training):
        return ops.relu(super()._logits(features, state, training))


@tf.custom_gradient
def _relu_wrong_at_zero(x):
    """ReLU whose gradient at exactly 0 is 3, outside its subgradients [0, 1]."""

    def grad(dy):
        return dy * (tf.cast(x > 0, x.dtype) + 3.0 * tf.cast(tf.equal(x, 0), x.dtype))

    return tf.nn.relu(x), grad


@_register
class WrongGradientAtKink(ConvRNNCell):
    """ReLU convs whose gradient at exactly 0 is 3, with conv1 dead (bias -1000) so
    that every conv2 unit sits exactly at its kink, as flat prices put
    PGPortfolio's cell: the gradient is wrong only there, and must be caught."""

    def __init__(self, config=None, **kwargs):
        super().__init__(config, **kwargs)
        self.conv1.activation = tf.nn.relu
        self.conv2.activation = _relu_wrong_at_zero

    def build(self, input_shape):
        super().build(input_shape)
        self.conv1.bias.assign(ops.full(self.conv1.bias.shape, -1000.0))


def factory(cls: type[ConvRNNCell]) -> Any:
    """A cell factory building ``cls``."""

    def build(config: CellConfig) -> ConvRNNCell:
        return cls(config)

    build.__name__ = cls.__name__
    return build


#: Mutant -> the invariants it is written to break.
KILLS: dict[type[ConvRNNCell], tuple[str, ...]] = {
    WrongOutputShape: ("output_shape",),
    SoftmaxOverWrongAxis: ("simplex_output",),
    NanOnLargeMoves: ("simplex_output",),
    StateNotFedBack: ("state_is_output",),
    StateIgnored: ("state_matters",),
    AssetsMixed: ("asset_permutation_equivariance",),
    NanGradient: ("gradients_finite",),
    StopGradientConv1: ("gradients_nonzero", "gradient_check"),
    GradientSignFlipped: ("gradient_check", "loss_decreases"),
    WrongGradientAtKink: ("gradient_check",),
    DropoutOnAtInference: ("deterministic",),
    DropoutRedrawsWeights: ("dropout_zero_is_identity",),
    SeedIgnored: ("deterministic",),
    ConfigForgetsKernels: ("serialization_roundtrip",),
    EagerGraphDiffer: ("execution_modes_agree",),
    SaturatedAtInit: ("init_near_uniform",),
    DeadAtBirth: ("init_near_uniform", "gradients_nonzero"),
}


def case_for(mutant: type[ConvRNNCell]) -> Case:
    """:data:`CASE`, with the inputs and cell changes that mutant needs."""
    name = mutant.__name__
    return Case(
        CASE.cell.replace(**CELL_FOR.get(name, {})),
        CASE.train,
        INPUTS_FOR.get(name, CASE.inputs),
    )


#: Importable as ``tests.mutants:softmax_over_wrong_axis`` for the CLI tests.
softmax_over_wrong_axis = factory(SoftmaxOverWrongAxis)
wrong_output_shape = factory(WrongOutputShape)
