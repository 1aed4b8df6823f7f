"""The cell's wiring broken: output and state shapes, the simplex, the state fed
back and used, the assets kept apart, the batch's examples kept apart.

Each class changes one thing of the shipped cell (docs/invariants.md, "Mutation testing").
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from cellverify.checks.mutants.base import register
from cellverify.model.cell import ConvRNNCell

__all__ = [
    "AssetsMixed",
    "BatchLeak",
    "LongShort",
    "NanOnLargeMoves",
    "NanOnNearlyFlat",
    "OutputDropoutInTraining",
    "PaddedSoftmax",
    "SoftmaxOverWrongAxis",
    "StateHasExtraSlot",
    "StateIgnored",
    "StateNotFedBack",
    "StepCounter",
    "WrongOutputShape",
]


@register
class WrongOutputShape(ConvRNNCell):
    """Drops the last asset from the output (the state keeps every asset)."""

    def call(self, inputs: Any, states: Any, training: Any = None) -> Any:
        output, new_states = super().call(inputs, states, training)
        return output[:, :-1], new_states


@register
class SoftmaxOverWrongAxis(ConvRNNCell):
    """Softmax over the batch instead of the assets."""

    def portfolio(self, logits: Any) -> Any:
        return ops.softmax(logits, axis=0)


@register
class NanOnLargeMoves(ConvRNNCell):
    """Outputs NaN for an example whose window holds a move of more than 10 %."""

    def step_activations(self, inputs: Any, state: Any, training: Any = None) -> Any:
        acts = super().step_activations(inputs, state, training)
        big = ops.max(ops.abs(inputs - 1.0), axis=(1, 2, 3)) > 0.1
        acts["output"] = ops.where(big[:, None], float("nan"), acts["output"])
        return acts


@register
class StateNotFedBack(ConvRNNCell):
    """Returns the incoming state as the new state instead of the output."""

    def call(self, inputs: Any, states: Any, training: Any = None) -> Any:
        output, _ = super().call(inputs, states, training)
        return output, [states[0]]


@register
class StateIgnored(ConvRNNCell):
    """Feeds zeros to conv3 where the previous portfolio belongs."""

    def logits(self, features: Any, state: Any, training: Any) -> Any:
        return super().logits(features, ops.zeros_like(state), training)


@register
class AssetsMixed(ConvRNNCell):
    """conv2 is two rows tall: each asset's features see its neighbour's."""

    def logits(self, features: Any, state: Any, training: Any) -> Any:
        neighbour = ops.concatenate([features[:, 1:], ops.zeros_like(features[:, :1])], axis=1)
        return super().logits(features + neighbour, state, training)


@register
class BatchLeak(ConvRNNCell):
    """Pulls each example's logits 30 % of the way to the batch's mean: exactly
    the shipped cell at batch 1 (the mean is the example), wrong above it, as
    batch statistics at inference or a reduction over the wrong axis are."""

    def logits(self, features: Any, state: Any, training: Any) -> Any:
        logits = super().logits(features, state, training)
        return logits + 0.3 * (ops.mean(logits, axis=0, keepdims=True) - logits)


@register
class StateHasExtraSlot(ConvRNNCell):
    """Carries one slot more in its state than it outputs (a 0 in front of the
    portfolio): the output is right, the final state is [batch, outputs + 1]."""

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.state_size = self.cell_config.outputs + 1

    def get_initial_state(self, batch_size: Any) -> list[Any]:
        uniform = super().get_initial_state(batch_size)[0]
        return [ops.concatenate([ops.zeros_like(uniform[:, :1]), uniform], axis=-1)]

    def call(self, inputs: Any, states: Any, training: Any = None) -> Any:
        state = states[0] if isinstance(states, (list, tuple)) else states
        output = self.step_activations(inputs, state[:, 1:], training=training)["output"]
        return output, [ops.concatenate([ops.zeros_like(output[:, :1]), output], axis=-1)]


@register
class LongShort(ConvRNNCell):
    """Sells the first asset short by 0.5 and buys the last with it: the rows
    still sum to 1, and the first weight is negative."""

    def portfolio(self, logits: Any) -> Any:
        weights = super().portfolio(logits)
        n = weights.shape[-1]
        shift = ops.one_hot(ops.full_like(weights[:, 0], n - 1, "int32"), n) - ops.one_hot(
            ops.zeros_like(weights[:, 0], "int32"), n
        )
        return weights + 0.5 * shift


@register
class PaddedSoftmax(ConvRNNCell):
    """A softmax over the assets and one padding slot (logit 0), which is then
    dropped: every row sums to less than 1, by the padding's share."""

    def portfolio(self, logits: Any) -> Any:
        padded = ops.concatenate([logits, ops.zeros_like(logits[:, :1])], axis=-1)
        return ops.softmax(padded, axis=-1)[:, :-1]


@register
class OutputDropoutInTraining(ConvRNNCell):
    """Dropout on the portfolio itself, in training only: at inference the
    output is right; in training its rows are rescaled and holed."""

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.output_dropout = keras.layers.Dropout(0.5, seed=self.cell_config.seed)

    def call(self, inputs: Any, states: Any, training: Any = None) -> Any:
        output, _ = super().call(inputs, states, training)
        output = self.output_dropout(output, training=training)
        return output, [output]


@register
class StepCounter(ConvRNNCell):
    """Counts its calls in a variable and tilts the first logit by 0.1 a call:
    inside one RNN run that is a step index, but a cell stepped by hand after
    it starts where the RNN stopped (a cell that remembers across calls)."""

    def build(self, input_shape: Any) -> None:
        super().build(input_shape)
        self.calls = self.add_weight(shape=(), initializer="zeros", trainable=False, name="calls")

    def logits(self, features: Any, state: Any, training: Any) -> Any:
        logits = super().logits(features, state, training)
        self.calls.assign_add(1.0)
        first = ops.one_hot(ops.zeros_like(logits[:, 0], "int32"), logits.shape[-1])
        return logits + 0.1 * self.calls * first


def _minmax_snapped(inputs: Any) -> Any:
    """Each window min-max scaled, its range snapped to 0 below 1e-4 of its
    size, exactly flat windows guarded: 0/0 on a nearly flat one."""
    low = ops.min(inputs, axis=(2, 3), keepdims=True)
    high = ops.max(inputs, axis=(2, 3), keepdims=True)
    spread = high - low
    snapped = ops.where(spread < 1e-4 * ops.abs(high), ops.zeros_like(spread), spread)
    scaled = (inputs - low) / snapped
    return ops.where(spread == 0, ops.zeros_like(inputs), scaled)


@register
class NanOnNearlyFlat(ConvRNNCell):
    """Min-max scales each window with its range snapped to 0 below 1e-4 of its
    size, and guards exactly flat windows (the usual fix after a NaN on flat
    prices): NaN on every nearly flat window, and on nothing else."""

    def step_activations(self, inputs: Any, state: Any, training: Any = None) -> Any:
        return super().step_activations(_minmax_snapped(inputs), state, training)
