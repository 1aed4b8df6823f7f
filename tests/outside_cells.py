"""Cells written the way a user outside the project writes them: plain Keras
layers that share no code with :class:`cellverify.ConvRNNCell` and expose no
``step_activations``.  The kit must judge them from their outputs alone.

``eiie_cell`` is an EIIE-style cell; ``pgportfolio_cell`` follows the
PGPortfolio reference design more closely: prices divided by the last close
and shifted to 0 (so flat prices give exactly 0), ReLU convs, a linear vote
with the previous weights, and a cash bias.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from cellverify.config import CellConfig


@keras.saving.register_keras_serializable(package="outside_cells")
class EIIECell(keras.layers.Layer):
    """Conv 1x3, conv 1x(window-2), concat previous weights, conv 1x1, softmax."""

    def __init__(self, config: CellConfig, *, relative: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = config
        self.relative = relative
        self.state_size = config.outputs
        self.output_size = config.outputs
        k1, k2, _ = config.kernels
        init = {"seed": config.seed}
        self.c1 = keras.layers.Conv2D(
            k1, (1, 3), activation=config.activation,
            kernel_initializer=keras.initializers.HeNormal(**init),
        )  # fmt: skip
        self.c2 = keras.layers.Conv2D(
            k2, (1, config.window - 2), activation=config.activation,
            kernel_initializer=keras.initializers.HeNormal(seed=config.seed + 1),
        )  # fmt: skip
        self.c3 = keras.layers.Conv2D(
            1, (1, 1), activation=config.output_activation,
            kernel_initializer=keras.initializers.HeNormal(seed=config.seed + 2),
        )  # fmt: skip
        self.cash = None

    def build(self, input_shape: Any) -> None:
        batch, assets, window, features = input_shape
        k1, k2, _ = self.spec.kernels
        self.c1.build((batch, assets, window, features))
        self.c2.build((batch, assets, window - 2, k1))
        self.c3.build((batch, assets, 1, k2 + 1))
        if self.spec.cash_bias:
            self.cash = self.add_weight(shape=(1,), initializer="zeros", name="cash")

    def call(self, inputs: Any, states: Any, training: Any = None) -> Any:
        previous = states[0]
        x = inputs
        if self.relative:  # PGPortfolio: divide by the last close, 0 for a flat price
            x = x / x[:, :, -1:, :1] - 1.0
        h = self.c2(self.c1(x))
        assets = self.spec.assets
        w = ops.reshape(previous[:, -assets:], (-1, assets, 1, 1))
        votes = ops.reshape(self.c3(ops.concatenate([h, w], axis=-1)), (-1, assets))
        if self.cash is not None:
            votes = ops.concatenate([ops.ones_like(votes[:, :1]) * self.cash, votes], axis=-1)
        out = ops.softmax(votes, axis=-1)
        return out, [out]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "config": self.spec.to_dict(), "relative": self.relative}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> EIIECell:
        config = dict(config)
        return cls(CellConfig.from_dict(config.pop("config")), **config)

    def get_initial_state(self, batch_size: Any) -> list[Any]:
        n = self.spec.outputs
        return [ops.full((batch_size, n), 1.0 / n, dtype=self.compute_dtype)]


def eiie_cell(config: CellConfig) -> EIIECell:
    return EIIECell(config)


def pgportfolio_cell(config: CellConfig) -> EIIECell:
    return EIIECell(config.replace(activation="relu", output_activation="linear"), relative=True)


@keras.saving.register_keras_serializable(package="outside_cells")
class OffsetVotesCell(EIIECell):
    """EIIECell with one more variable, an offset added to the votes behind a
    stop-gradient, so its gradient is exactly 0 by construction.  Added to
    every vote alike (``per_asset=False``), the softmax cannot see it; scaled
    by the asset's index, it changes the output."""

    def __init__(self, config: CellConfig, *, per_asset: bool = False, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.per_asset = per_asset

    def build(self, input_shape: Any) -> None:
        super().build(input_shape)
        self.offset = self.add_weight(shape=(), initializer="zeros", name="offset")

    def call(self, inputs: Any, states: Any, training: Any = None) -> Any:
        out, _ = super().call(inputs, states, training)
        votes = ops.log(out)  # the votes, up to a shift
        spread = ops.arange(votes.shape[-1], dtype=votes.dtype) if self.per_asset else 1.0
        shifted = ops.softmax(votes + ops.stop_gradient(self.offset) * spread, axis=-1)
        return shifted, [shifted]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "per_asset": self.per_asset}


def offset_votes_cell(config: CellConfig) -> OffsetVotesCell:
    return OffsetVotesCell(config)


def asset_offset_cell(config: CellConfig) -> OffsetVotesCell:
    return OffsetVotesCell(config, per_asset=True)


@keras.saving.register_keras_serializable(package="outside_cells")
class MinMaxScaledCell(EIIECell):
    """EIIECell that min-max scales each asset's window, ``(x - min) / (max -
    min)``, a common normalisation: on flat prices that is 0/0, and the
    output NaN.  The old ``ci`` gate, which never drew a constant window,
    passed it."""

    def call(self, inputs: Any, states: Any, training: Any = None) -> Any:
        low = ops.min(inputs, axis=(2, 3), keepdims=True)
        high = ops.max(inputs, axis=(2, 3), keepdims=True)
        return super().call((inputs - low) / (high - low), states, training)


def minmax_scaled_cell(config: CellConfig) -> MinMaxScaledCell:
    return MinMaxScaledCell(config)


@keras.saving.register_keras_serializable(package="outside_cells")
class FixedRowCell(keras.layers.Layer):
    """Outputs the same row at every step, whatever it reads, plus a trainable
    offset that the row does not use: a cell whose every number a message
    prints can be worked out by hand."""

    def __init__(self, config: CellConfig, row: tuple[float, ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = config
        self.row = tuple(float(v) for v in row)
        self.state_size = self.output_size = len(self.row)

    def build(self, input_shape: Any) -> None:
        self.unused = self.add_weight(shape=(), initializer="zeros", name="unused")

    def call(self, inputs: Any, states: Any, training: Any = None) -> Any:
        row = ops.convert_to_tensor(self.row, dtype=self.compute_dtype)
        out = ops.zeros_like(states[0]) + row + 0.0 * self.unused
        return out, [out]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "config": self.spec.to_dict(), "row": list(self.row)}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> FixedRowCell:
        config = dict(config)
        return cls(CellConfig.from_dict(config.pop("config")), **config)

    def get_initial_state(self, batch_size: Any) -> list[Any]:
        n = len(self.row)
        return [ops.full((batch_size, n), 1.0 / n, dtype=self.compute_dtype)]


def fixed_row_factory(row: tuple[float, ...]) -> Any:
    """A factory of :class:`FixedRowCell` giving ``row``."""

    def factory(config: CellConfig) -> FixedRowCell:
        return FixedRowCell(config, row)

    return factory
