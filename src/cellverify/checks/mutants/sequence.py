"""Broken cells of another kind: a small recurrent cell over input vectors,
described by a :class:`~cellverify.CellSpec`, and its twins, each broken in
one thing, so that every invariant that runs on any cell is shown to fail on
a broken cell that is not a portfolio cell (docs/invariants.md, "Mutation
testing").

:class:`TinyRNN` is ``h = tanh(W [x, h] + b)`` with dropout on the input in
training; its output and its state are ``h`` (a real output).
:class:`TinyClassifier` reads a softmax over ``units`` classes off ``h``.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf
from hypothesis import strategies as st
from keras import ops

from cellverify.checks.mutants.base import register
from cellverify.spec import CellSpec

__all__ = [
    "SEQUENCE_CASE_PARAMS",
    "SeqBatchLeak",
    "SeqConfigForgetsUnits",
    "SeqCutGradient",
    "SeqDropoutAtInference",
    "SeqDropsAUnit",
    "SeqEagerDiffers",
    "SeqFloat16Overflow",
    "SeqNanGradient",
    "SeqSaturated",
    "SeqSignFlipped",
    "SeqSoftmaxOverBatch",
    "SeqStateStuck",
    "SeqTrainingScales",
    "TinyClassifier",
    "TinyRNN",
    "classifier_spec",
    "sequence_spec",
]

#: The parameters the twins are run with (see cellverify.checks.mutants.mutation).
SEQUENCE_CASE_PARAMS = {"units": 4, "dropout": 0.0}


@register
class TinyRNN(keras.layers.Layer):  # type: ignore[misc]
    """``h = tanh(W [x, h] + b)``: the healthy cell the twins break."""

    def __init__(
        self, units: int = 3, dropout: float = 0.0, seed: int | None = None, **kwargs: Any
    ):
        super().__init__(**kwargs)
        self.units, self.dropout, self.seed = units, dropout, seed
        self.state_size = self.output_size = units
        init = keras.initializers.GlorotUniform(seed)
        self.mixer = keras.layers.Dense(units, kernel_initializer=init, name="mixer")
        self.drop = keras.layers.Dropout(dropout, seed=seed)

    def build(self, input_shape: Any) -> None:
        self.mixer.build((input_shape[0], input_shape[-1] + self.units))
        self.built = True

    def mix(self, x: Any, h: Any, training: Any) -> Any:
        return self.mixer(ops.concatenate([self.drop(x, training=training), h], axis=-1))

    def squash(self, z: Any) -> Any:
        return ops.tanh(z)

    def call(self, inputs: Any, states: Any, training: Any = None) -> Any:
        h = states[0] if isinstance(states, (list, tuple)) else states
        h = self.squash(self.mix(inputs, h, training))
        return h, [h]

    def get_config(self) -> dict[str, Any]:
        base: dict[str, Any] = super().get_config()
        return {**base, "units": self.units, "dropout": self.dropout, "seed": self.seed}


@register
class TinyClassifier(TinyRNN):
    """:class:`TinyRNN` whose output is a softmax over its units (a simplex)."""

    def distribution(self, h: Any) -> Any:
        return ops.softmax(h, axis=-1)

    def call(self, inputs: Any, states: Any, training: Any = None) -> Any:
        h, new = super().call(inputs, states, training)
        return self.distribution(h), new


def sequence_spec(cls: type[TinyRNN] = TinyRNN) -> CellSpec:
    """The spec of :class:`TinyRNN` (or a twin): real output."""
    params = {"units": st.integers(2, 4), "dropout": [0.0, 0.3]}
    return CellSpec(cls, params, features=st.integers(1, 3), output="real", name=cls.__name__)


def classifier_spec(cls: type[TinyClassifier] = TinyClassifier) -> CellSpec:
    """The spec of :class:`TinyClassifier` (or a twin): simplex output."""
    params = {"units": st.integers(2, 4), "dropout": [0.0, 0.3]}
    return CellSpec(cls, params, features=st.integers(1, 3), output="simplex", name=cls.__name__)


@tf.custom_gradient  # type: ignore[untyped-decorator]
def _flipped(x: Any) -> Any:
    return tf.identity(x), lambda dy: -dy


@register
class SeqDropsAUnit(TinyRNN):
    """Outputs one unit fewer than its ``output_size`` says."""

    def call(self, inputs: Any, states: Any, training: Any = None) -> Any:
        h, new = super().call(inputs, states, training)
        return h[:, 1:], new


@register
class SeqStateStuck(TinyRNN):
    """Passes on the state it was given: the past never reaches the next step."""

    def call(self, inputs: Any, states: Any, training: Any = None) -> Any:
        h, _ = super().call(inputs, states, training)
        return h, list(states) if isinstance(states, (list, tuple)) else [states]


@register
class SeqNanGradient(TinyRNN):
    """Adds sqrt(h - h) = 0: a finite output, a NaN gradient."""

    def squash(self, z: Any) -> Any:
        h = super().squash(z)
        return h + ops.sqrt(h - h)


@register
class SeqCutGradient(TinyRNN):
    """A second mixer added behind a stop-gradient: the output depends on it,
    and its weights never get a gradient."""

    def build(self, input_shape: Any) -> None:
        super().build(input_shape)
        self.side = keras.layers.Dense(self.units, name="side")
        self.side.build((input_shape[0], input_shape[-1]))

    def mix(self, x: Any, h: Any, training: Any) -> Any:
        return super().mix(x, h, training) + ops.stop_gradient(self.side(x))


@register
class SeqSignFlipped(TinyRNN):
    """The gradient through the mixer has the wrong sign: training ascends."""

    def mix(self, x: Any, h: Any, training: Any) -> Any:
        return _flipped(super().mix(x, h, training))


@register
class SeqTrainingScales(TinyRNN):
    """Scales the input by 0.9 in training whatever the dropout rate, 0 included."""

    def mix(self, x: Any, h: Any, training: Any) -> Any:
        return super().mix(x * 0.9 if training else x, h, training)


@register
class SeqEagerDiffers(TinyRNN):
    """Adds 0.1 to the first unit when running eagerly, nothing in a graph."""

    def squash(self, z: Any) -> Any:
        eager = 0.1 if tf.executing_eagerly() else 0.0
        return super().squash(z) + ops.one_hot(ops.zeros_like(z[:, 0], "int32"), self.units) * eager


@register
class SeqDropoutAtInference(TinyRNN):
    """Drops half the input at inference too, unseeded."""

    def mix(self, x: Any, h: Any, training: Any) -> Any:
        return super().mix(keras.layers.Dropout(0.5)(x, training=True), h, training)


@register
class SeqConfigForgetsUnits(TinyRNN):
    """get_config() leaves out the units: from_config() builds the default 3."""

    def get_config(self) -> dict[str, Any]:
        return {k: v for k, v in super().get_config().items() if k != "units"}


@register
class SeqBatchLeak(TinyRNN):
    """Pulls each example 30 % toward the batch mean: exact at batch 1."""

    def squash(self, z: Any) -> Any:
        h = super().squash(z)
        return h + 0.3 * (ops.mean(h, axis=0, keepdims=True) - h)


@register
class SeqFloat16Overflow(TinyRNN):
    """Scales by 1e5 and back: exact in float32, +inf in float16."""

    def squash(self, z: Any) -> Any:
        return super().squash(z * 1e5 / 1e5)


@register
class SeqSoftmaxOverBatch(TinyClassifier):
    """The softmax over the batch instead of the classes."""

    def distribution(self, h: Any) -> Any:
        return ops.softmax(h, axis=0)


@register
class SeqSaturated(TinyClassifier):
    """Scores times 1000: the softmax is one-hot from birth."""

    def distribution(self, h: Any) -> Any:
        return super().distribution(h * 1000.0)
