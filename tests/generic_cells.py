"""Cells of other kinds, written as a user outside the project writes them:
plain Keras layers, none of them a portfolio cell, none sharing code with the
kit.  Each healthy cell has broken twins that differ from it in one thing.

* :class:`Forecaster` - a real output, and a state that is not its output:
  an ``[h, c]`` pair (an LSTM-like gate written by hand).
* :class:`Classifier` - a simplex output: a softmax over ``classes`` read
  from a tanh state.
* :class:`LSTMScorer` - a portfolio cell of another design: a per-asset LSTM
  over the window, scored with the previous weights fed back (the design of
  the LSTM baselines in the portfolio literature).

The twins (``BROKEN``) cover: a batch leak exact at batch 1, NaN on an
all-zero step, a state that never advances, dropout left on at inference, a
wrong custom gradient, an activation written by hand that overflows, and a
softmax over the wrong axis.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf
from hypothesis import strategies as st
from keras import ops

from cellverify import CellSpec
from cellverify.config import CellConfig

_PACKAGE = "generic_cells"


def _dense(units: int, seed: int | None, name: str) -> keras.layers.Dense:
    return keras.layers.Dense(
        units, kernel_initializer=keras.initializers.GlorotUniform(seed), name=name
    )


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Forecaster(keras.layers.Layer):
    """h, c = gate(x, h, c): a forget, input and output gate and a tanh
    candidate, written out by hand; the output is h (real), the state [h, c]."""

    def __init__(self, units: int, dropout: float = 0.0, seed: int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.units, self.dropout, self.seed = units, dropout, seed
        self.state_size = [units, units]
        self.output_size = units
        self.gates = _dense(4 * units, seed, "gates")
        self.drop = keras.layers.Dropout(dropout, seed=seed)

    def build(self, input_shape: Any) -> None:
        self.gates.build((input_shape[0], input_shape[-1] + self.units))

    def mix(self, x: Any, h: Any, training: Any) -> Any:
        return self.gates(ops.concatenate([self.drop(x, training=training), h], axis=-1))

    def squash(self, z: Any) -> Any:
        return ops.tanh(z)

    def call(self, inputs: Any, states: Any, training: Any = None) -> Any:
        h, c = states
        f, i, o, g = ops.split(self.mix(inputs, h, training), 4, axis=-1)
        c = ops.sigmoid(f + 1.0) * c + ops.sigmoid(i) * self.squash(g)
        h = ops.sigmoid(o) * self.squash(c)
        return h, [h, c]

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "units": self.units,
            "dropout": self.dropout,
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Classifier(keras.layers.Layer):
    """h = tanh(W x + U h); output softmax(V h) over ``classes``; state h."""

    def __init__(self, classes: int, units: int, seed: int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.classes, self.units, self.seed = classes, units, seed
        self.state_size = units
        self.output_size = classes
        self.recur = _dense(units, seed, "recur")
        self.read = _dense(classes, None if seed is None else seed + 1, "read")

    def build(self, input_shape: Any) -> None:
        self.recur.build((input_shape[0], input_shape[-1] + self.units))
        self.read.build((input_shape[0], self.units))

    def advance(self, x: Any, h: Any) -> Any:
        return ops.tanh(self.recur(ops.concatenate([x, h], axis=-1)))

    def distribution(self, scores: Any) -> Any:
        return ops.softmax(scores, axis=-1)

    def call(self, inputs: Any, states: Any, training: Any = None) -> Any:
        h = states[0] if isinstance(states, (list, tuple)) else states
        h = self.advance(inputs, h)
        return self.distribution(self.read(h)), [h]

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "classes": self.classes,
            "units": self.units,
            "seed": self.seed,
        }


# -- the twins ---------------------------------------------------------------


def _leak(h: Any) -> Any:
    """Pull each example 30 % toward the batch mean: exact at batch 1."""
    return h + 0.3 * (ops.mean(h, axis=0, keepdims=True) - h)


def _unit(x: Any) -> Any:
    """x / |x|: 0/0 on an all-zero step."""
    return x / ops.sqrt(ops.sum(x * x, axis=-1, keepdims=True))


@tf.custom_gradient  # type: ignore[untyped-decorator]
def _halved_gradient(x: Any) -> Any:
    return tf.identity(x), lambda dy: 0.5 * dy


def _tanh_by_hand(x: Any) -> Any:
    """(e^2x - 1) / (e^2x + 1): inf / inf = NaN once e^2x overflows."""
    e = ops.exp(2.0 * x)
    return (e - 1.0) / (e + 1.0)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ForecasterBatchLeak(Forecaster):
    def call(self, inputs: Any, states: Any, training: Any = None) -> Any:
        h, [_, c] = super().call(inputs, states, training)
        h = _leak(h)
        return h, [h, c]


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ForecasterNanOnZeroStep(Forecaster):
    def mix(self, x: Any, h: Any, training: Any) -> Any:
        return super().mix(_unit(x), h, training)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ForecasterStateStuck(Forecaster):
    def call(self, inputs: Any, states: Any, training: Any = None) -> Any:
        h, _ = super().call(inputs, states, training)
        return h, list(states)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ForecasterDropoutAtInference(Forecaster):
    def mix(self, x: Any, h: Any, training: Any) -> Any:
        return super().mix(keras.layers.Dropout(0.5)(x, training=True), h, training)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ForecasterWrongGradient(Forecaster):
    def mix(self, x: Any, h: Any, training: Any) -> Any:
        return _halved_gradient(super().mix(x, h, training))


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ForecasterOverflow(Forecaster):
    def squash(self, z: Any) -> Any:
        return _tanh_by_hand(z)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ClassifierBatchLeak(Classifier):
    def advance(self, x: Any, h: Any) -> Any:
        return _leak(super().advance(x, h))


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ClassifierNanOnZeroStep(Classifier):
    def advance(self, x: Any, h: Any) -> Any:
        return super().advance(_unit(x), h)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ClassifierStateStuck(Classifier):
    def call(self, inputs: Any, states: Any, training: Any = None) -> Any:
        out, _ = super().call(inputs, states, training)
        return out, list(states) if isinstance(states, (list, tuple)) else [states]


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ClassifierDropoutAtInference(Classifier):
    def advance(self, x: Any, h: Any) -> Any:
        return super().advance(keras.layers.Dropout(0.5)(x, training=True), h)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ClassifierWrongGradient(Classifier):
    def advance(self, x: Any, h: Any) -> Any:
        return _halved_gradient(super().advance(x, h))


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ClassifierOverflow(Classifier):
    def advance(self, x: Any, h: Any) -> Any:
        return _tanh_by_hand(self.recur(ops.concatenate([x, h], axis=-1)))


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ClassifierSoftmaxOverBatch(Classifier):
    def distribution(self, scores: Any) -> Any:
        return ops.softmax(scores, axis=0)


FORECASTER_PARAMS = {"units": st.integers(1, 6), "dropout": [0.0, 0.3]}
CLASSIFIER_PARAMS = {"classes": st.integers(2, 5), "units": st.integers(1, 6)}


def forecaster_spec(cls: type[Forecaster] = Forecaster) -> CellSpec:
    return CellSpec(cls, FORECASTER_PARAMS, features=st.integers(1, 4), output="real")


def classifier_spec(cls: type[Classifier] = Classifier) -> CellSpec:
    return CellSpec(cls, CLASSIFIER_PARAMS, features=st.integers(1, 4), output="simplex")


FORECASTER = forecaster_spec()
CLASSIFIER = classifier_spec()
#: Each broken twin's spec and the defect it carries.
BROKEN: dict[str, tuple[CellSpec, str]] = {
    "ForecasterBatchLeak": (forecaster_spec(ForecasterBatchLeak), "batch leak"),
    "ForecasterNanOnZeroStep": (
        forecaster_spec(ForecasterNanOnZeroStep),
        "NaN on an all-zero step",
    ),
    "ForecasterStateStuck": (forecaster_spec(ForecasterStateStuck), "state never advances"),
    "ForecasterDropoutAtInference": (
        forecaster_spec(ForecasterDropoutAtInference),
        "dropout at inference",
    ),
    "ForecasterWrongGradient": (forecaster_spec(ForecasterWrongGradient), "wrong custom gradient"),
    "ForecasterOverflow": (forecaster_spec(ForecasterOverflow), "activation that overflows"),
    "ClassifierBatchLeak": (classifier_spec(ClassifierBatchLeak), "batch leak"),
    "ClassifierNanOnZeroStep": (
        classifier_spec(ClassifierNanOnZeroStep),
        "NaN on an all-zero step",
    ),
    "ClassifierStateStuck": (classifier_spec(ClassifierStateStuck), "state never advances"),
    "ClassifierDropoutAtInference": (
        classifier_spec(ClassifierDropoutAtInference),
        "dropout at inference",
    ),
    "ClassifierWrongGradient": (classifier_spec(ClassifierWrongGradient), "wrong custom gradient"),
    "ClassifierOverflow": (classifier_spec(ClassifierOverflow), "activation that overflows"),
    "ClassifierSoftmaxOverBatch": (
        classifier_spec(ClassifierSoftmaxOverBatch),
        "softmax over the wrong axis",
    ),
}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class LSTMScorer(keras.layers.Layer):
    """A portfolio cell of another design (module doc): each asset's window
    through one LSTM of ``kernels[1]`` units, a linear score per asset plus
    a learned weight on its previous portfolio weight, a softmax over assets."""

    def __init__(self, config: CellConfig | dict[str, Any], **kwargs: Any):
        super().__init__(**kwargs)
        self.spec = config if isinstance(config, CellConfig) else CellConfig.from_dict(config)
        c = self.spec
        self.state_size = self.output_size = c.assets
        self.lstm = keras.layers.LSTM(c.kernels[1], seed=c.seed, name="lstm")
        self.score = _dense(1, c.seed + 1, "score")
        self.memory = None

    def build(self, input_shape: Any) -> None:
        c = self.spec
        self.lstm.build((None, c.window, c.features))
        self.score.build((None, c.kernels[1]))
        self.memory = self.add_weight(shape=(), initializer="ones", name="memory")

    def call(self, inputs: Any, states: Any, training: Any = None) -> Any:
        c = self.spec
        windows = ops.reshape(inputs, (-1, c.window, c.features))
        scores = ops.reshape(self.score(self.lstm(windows, training=training)), (-1, c.assets))
        out = ops.softmax(scores + self.memory * states[0], axis=-1)
        return out, [out]

    def get_initial_state(self, batch_size: Any) -> list[Any]:
        n = self.spec.assets
        return [ops.full((batch_size, n), 1.0 / n, dtype=self.compute_dtype)]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "config": self.spec.to_dict()}


def lstm_scorer(config: CellConfig) -> LSTMScorer:
    return LSTMScorer(config)


#: The example of the README and docs/gating.md, verbatim: a spec of Keras's
#: GRU cell and a test class, as a user's module (``mymodule.py``) or test file.
GRU_EXAMPLE = """
import keras
from hypothesis import strategies as st
from cellverify import CellSpec
from cellverify.testing import CellInvariants

GRU = CellSpec(
    factory=keras.layers.GRUCell,
    params={"units": st.integers(1, 16), "activation": st.sampled_from(["tanh", "elu"]), "dropout": st.sampled_from([0.0, 0.3])},
    features=st.integers(1, 6),
    output="real",
)

class TestGRU(CellInvariants):
    spec = GRU
"""  # noqa: E501


#: A spec with a task of its own (docs/gating.md, "A loss of your own"): the
#: regression's target, scored by log-cosh, on Keras's GRU cell.
OWN_TASK_EXAMPLE = '''
import keras
import numpy as np
from hypothesis import strategies as st
from keras import ops

from cellverify import CellSpec, RegressionTask


class LogCosh(RegressionTask):
    """The regression's target, scored by log(cosh(error)): squared near 0,
    absolute far from it."""

    name = "log_cosh"

    def loss(self, outputs, target):
        error = ops.mean(outputs, axis=-1) - ops.cast(target, outputs.dtype)
        return ops.mean(ops.log(ops.cosh(error)))

    def example_losses(self, weights, target):
        error = np.asarray(weights, np.float64).mean(axis=-1) - target
        return np.mean(np.log(np.cosh(error)), axis=-1)

    def uniform_loss(self, batch, outputs=None):
        # A dead cell's best: the constant c with sum(tanh(t - c)) = 0.
        t = self.target(batch).astype(np.float64).ravel()
        low, high = t.min(), t.max()
        for _ in range(60):
            c = (low + high) / 2
            low, high = (c, high) if np.tanh(t - c).sum() > 0 else (low, c)
        return float(np.mean(np.log(np.cosh(t - (low + high) / 2))))


GRU = CellSpec(
    factory=keras.layers.GRUCell,
    params={"units": st.integers(1, 8)},
    output="real",
    task=LogCosh(),
)
'''


@keras.saving.register_keras_serializable(package=_PACKAGE)
class LateInit(keras.layers.Layer):
    """A minimal gated cell that names its initializers in ``build()``, the
    usual Keras pattern: its weights come from the global seed at its first
    call, not at its construction."""

    def __init__(self, units: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units
        self.output_size = units

    def build(self, input_shape: Any) -> None:
        features = input_shape[-1]
        self.kernel = self.add_weight(
            shape=(features, 2 * self.units), initializer="glorot_uniform"
        )
        self.recurrent = self.add_weight(
            shape=(self.units, 2 * self.units), initializer="orthogonal"
        )

    def call(self, inputs: Any, states: Any, training: Any = None) -> Any:
        h = states[0] if isinstance(states, (list, tuple)) else states
        z, c = ops.split(ops.matmul(inputs, self.kernel) + ops.matmul(h, self.recurrent), 2, -1)
        gate = ops.sigmoid(z)
        h = gate * h + (1.0 - gate) * ops.tanh(c)
        return h, [h]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units}


LATE_INIT = CellSpec(LateInit, params={"units": st.integers(1, 4)}, features=st.integers(1, 3))
