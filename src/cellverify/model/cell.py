"""The question's conv-RNN cell (EIIE with a portfolio-vector memory) as a Keras layer.

Topology (docs/design.md, 'The cell'), per example, channels last::

    input   [assets, window, features]
    conv1   1x3, k1 kernels, valid, activation            -> [assets, window-2, k1]
    conv2   1x(window-2), k2 kernels, valid, activation   -> [assets, 1, k2]
    concat  previous state, one value per asset           -> [assets, 1, k2+1]
    conv3   1x1, 1 kernel, output activation              -> [assets, 1, 1]
    softmax over assets (and cash, if ``cash_bias``)      -> [outputs]

The output is also the next state.  Convs are 1 row tall, so weights are shared
across assets and the cell is permutation-equivariant in the assets.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from cellverify.config import CellConfig
from cellverify.trace import ACTIVATION_LAYERS
from cellverify.vocabulary import INITIALIZER_CLASSES

__all__ = [
    "LAYER_NAMES",
    "PART_SLOTS",
    "SEED_SLOTS",
    "ConvRNNCell",
    "conv_rnn_cell",
    "initializer",
    "slot_seed",
]

#: Names of the intermediate tensors :meth:`ConvRNNCell.step_activations` returns,
#: in the order data flows.
LAYER_NAMES: tuple[str, ...] = (*ACTIVATION_LAYERS, "output")

# Each random part draws from its own seed, derived from the cell's seed and a
# fixed slot number.  A part's slot never depends on which other parts exist,
# so adding a dropout layer leaves every conv's initial weights unchanged -
# unlike TF1 graph-level seeding, which is how the question's "dropout with
# keep_prob 1.0 stops learning" came about (docs/design.md, 'Measured facts').
SEED_SLOTS = 8
#: Each random part's slot.
PART_SLOTS = {"conv1": 0, "conv2": 1, "conv3": 2, "dropout1": 3, "dropout2": 4, "dropout3": 5}


def slot_seed(cell_seed: int, slot: int) -> int:
    """The seed of the random part in ``slot`` of a cell seeded ``cell_seed``."""
    return cell_seed * SEED_SLOTS + slot


def _part_seed(cell_seed: int, part: str) -> int:
    return slot_seed(cell_seed, PART_SLOTS[part])


def initializer(name: str, seed: int) -> keras.initializers.Initializer:
    """The Keras initializer called ``name`` in :data:`~cellverify.config.INITIALIZERS`, seeded."""
    class_name, extra = INITIALIZER_CLASSES[name]
    return keras.initializers.get({"class_name": class_name, "config": {"seed": seed, **extra}})


@keras.saving.register_keras_serializable(package="cellverify")
class ConvRNNCell(keras.layers.Layer):  # type: ignore[misc]
    """The EIIE conv-RNN cell of the question, configured by a :class:`CellConfig`.

    Call it as an RNN cell: ``cell(inputs, [state], training=...)`` with inputs
    ``[batch, assets, window, features]`` and state ``[batch, outputs]``; it
    returns ``(output, [output])``.  :meth:`step_activations` exposes the
    intermediate tensors for diagnosis.

    Subclasses (the fast path, the mutants of :mod:`cellverify.checks.mutants.mutation`, a
    user's variant) change one stage by overriding its hook:
    :meth:`apply_dropout`, :meth:`logits` and :meth:`portfolio`.
    """

    def __init__(self, config: CellConfig | dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if config is None:
            config = CellConfig()
        elif not isinstance(config, CellConfig):
            config = CellConfig.from_dict(config)
        self.cell_config = config
        self.state_size = config.outputs
        self.output_size = config.outputs
        k1, k2, k3 = config.kernels
        seed = config.seed
        self.conv1 = self._conv(k1, (1, 3), config.activation, _part_seed(seed, "conv1"), "conv1")
        self.conv2 = self._conv(
            k2, (1, config.window - 2), config.activation, _part_seed(seed, "conv2"), "conv2"
        )
        self.conv3 = self._conv(
            k3, (1, 1), config.output_activation, _part_seed(seed, "conv3"), "conv3"
        )
        self.dropouts = {
            layer: keras.layers.Dropout(
                config.dropout, seed=_part_seed(seed, f"dropout{layer}"), name=f"dropout{layer}"
            )
            for layer in config.dropout_after
        }
        self.cash_logit: keras.Variable | None = None

    def _conv(
        self, filters: int, size: tuple[int, int], activation: str, seed: int, name: str
    ) -> keras.layers.Conv2D:
        return keras.layers.Conv2D(
            filters,
            size,
            padding="valid",
            activation=activation,
            kernel_initializer=initializer(self.cell_config.initializer, seed),
            bias_initializer="zeros",
            name=name,
        )

    def build(self, input_shape: Any) -> None:
        batch, assets, window, _ = input_shape
        k1, k2, _ = self.cell_config.kernels
        self.conv1.build(input_shape)
        self.conv2.build((batch, assets, window - 2, k1))
        self.conv3.build((batch, assets, 1, k2 + 1))
        if self.cell_config.cash_bias:
            self.cash_logit = self.add_weight(shape=(), initializer="zeros", name="cash_bias")
        self.built = True

    def get_initial_state(self, batch_size: Any) -> list[Any]:
        """The uniform portfolio ``1/outputs`` for every example."""
        n = self.cell_config.outputs
        return [ops.full((batch_size, n), 1.0 / n, dtype=self.compute_dtype)]

    def apply_dropout(self, layer: int, x: Any, training: Any) -> Any:
        """The dropout after ``layer`` (1, 2 or 3) if the config asks for one, else ``x``."""
        if layer in self.dropouts:
            return self.dropouts[layer](x, training=training)
        return x

    def step_activations(self, inputs: Any, state: Any, training: Any = None) -> dict[str, Any]:
        """One step's intermediate tensors, keyed by :data:`LAYER_NAMES`.

        ``conv1`` ``[batch, assets, window-2, k1]``, ``conv2`` ``[batch, assets,
        1, k2]``, ``logits`` ``[batch, outputs]`` (the softmax's input), and
        ``output`` ``[batch, outputs]``.
        """
        if not self.built:  # called directly, not through __call__
            self.build(tuple(inputs.shape))
        h1 = self.apply_dropout(1, self.conv1(inputs), training)
        h2 = self.apply_dropout(2, self.conv2(h1), training)
        logits = self.logits(h2, state, training)
        return {"conv1": h1, "conv2": h2, "logits": logits, "output": self.portfolio(logits)}

    def logits(self, features: Any, state: Any, training: Any) -> Any:
        """conv3 over [features, previous state], then the cash logit if any: [batch, outputs]."""
        assets = self.cell_config.assets
        previous = ops.reshape(state[:, -assets:], (-1, assets, 1, 1))
        h3 = self.conv3(ops.concatenate([features, ops.cast(previous, features.dtype)], axis=-1))
        logits = ops.reshape(self.apply_dropout(3, h3, training), (-1, assets))
        if self.cash_logit is not None:
            cash = ops.ones_like(logits[:, :1]) * self.cash_logit
            logits = ops.concatenate([cash, logits], axis=-1)
        return logits

    def portfolio(self, logits: Any) -> Any:
        """Softmax over assets (and cash)."""
        return ops.softmax(logits, axis=-1)

    def call(self, inputs: Any, states: Any, training: Any = None) -> tuple[Any, list[Any]]:
        state = states[0] if isinstance(states, (list, tuple)) else states
        output = self.step_activations(inputs, state, training=training)["output"]
        return output, [output]

    def get_config(self) -> dict[str, Any]:
        base: dict[str, Any] = super().get_config()
        return {**base, "config": self.cell_config.to_dict()}


def conv_rnn_cell(cell_config: CellConfig) -> ConvRNNCell:
    """The shipped cell factory, ``cellverify.cell:conv_rnn_cell`` (docs/design.md,
    'Cells from anywhere')."""
    return ConvRNNCell(cell_config)
