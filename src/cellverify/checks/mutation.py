"""Mutation testing as a public API: deliberately broken cells.

An invariant that no broken cell can fail tests nothing.  A :class:`Mutant`
is a cell factory that breaks one thing, the invariants it is written to
break (``kills``), and the case it is run on.
:func:`~cellverify.checks.kill_matrix.kill_matrix` runs invariants against
mutants and says which ones caught which; ``cellverify
mutants`` prints it and exits 1 when an invariant is caught by no mutant, or
a mutant escapes the invariant it targets.

The built-in mutants each change one thing of the shipped cell, so that the
rest of the kit still runs on them.  Register your own next to your own
invariants (``--invariants MODULE`` imports both)::

    from cellverify.mutation import Mutant, register_mutant

    register_mutant(Mutant("ShortSells", make_short_selling_cell, kills=("long_only",)))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import keras
import tensorflow as tf
from keras import ops

from cellverify.checks.case import Case
from cellverify.config import CellConfig, TrainConfig
from cellverify.data.market import InputSpec
from cellverify.model.cell import ConvRNNCell, initializer, slot_seed
from cellverify.model.factory import CellFactory

__all__ = [
    "DEFAULT_CASE",
    "MUTANTS",
    "Mutant",
    "mutant_factory",
    "register_mutant",
]

#: The case every mutant is run on unless it names its own: inside the robust
#: region, small, with a cash-free ELU cell and a linear last conv (REMEDIED
#: at a small shape).
DEFAULT_CASE = Case(
    CellConfig(
        assets=4, window=8, kernels=(3, 4, 1), activation="elu", output_activation="linear", seed=1
    ),
    TrainConfig(batch_size=3, steps=2, task="supervised", seed=1),
)


@dataclass(frozen=True)
class Mutant:
    """A deliberately broken cell factory, what it should be caught by, and
    the case to run it on."""

    name: str
    factory: CellFactory
    kills: tuple[str, ...]
    case: Case = DEFAULT_CASE
    description: str = ""


#: Every registered mutant by name, the built-in ones first.
MUTANTS: dict[str, Mutant] = {}


def register_mutant(mutant: Mutant) -> Mutant:
    """Add ``mutant`` to :data:`MUTANTS` (re-registering a name replaces it)."""
    MUTANTS[mutant.name] = mutant
    return mutant


def mutant_factory(cls: type[ConvRNNCell]) -> CellFactory:
    """A cell factory building ``cls``, named after it."""

    def build(config: CellConfig) -> ConvRNNCell:
        return cls(config)

    build.__name__ = build.__qualname__ = cls.__name__
    return build


def _register(cls: type[ConvRNNCell]) -> type[ConvRNNCell]:
    register = keras.saving.register_keras_serializable(package="cellverify_mutants")
    return register(cls)  # type: ignore[no-any-return]


@_register
class WrongOutputShape(ConvRNNCell):
    """Drops the last asset from the output (the state keeps every asset)."""

    def call(self, inputs: Any, states: Any, training: Any = None) -> Any:
        output, new_states = super().call(inputs, states, training)
        return output[:, :-1], new_states


@_register
class SoftmaxOverWrongAxis(ConvRNNCell):
    """Softmax over the batch instead of the assets."""

    def portfolio(self, logits: Any) -> Any:
        return ops.softmax(logits, axis=0)


@_register
class NanOnLargeMoves(ConvRNNCell):
    """Outputs NaN for an example whose window holds a move of more than 10 %."""

    def step_activations(self, inputs: Any, state: Any, training: Any = None) -> Any:
        acts = super().step_activations(inputs, state, training)
        big = ops.max(ops.abs(inputs - 1.0), axis=(1, 2, 3)) > 0.1
        acts["output"] = ops.where(big[:, None], float("nan"), acts["output"])
        return acts


@_register
class StateNotFedBack(ConvRNNCell):
    """Returns the incoming state as the new state instead of the output."""

    def call(self, inputs: Any, states: Any, training: Any = None) -> Any:
        output, _ = super().call(inputs, states, training)
        return output, [states[0]]


@_register
class StateIgnored(ConvRNNCell):
    """Feeds zeros to conv3 where the previous portfolio belongs."""

    def logits(self, features: Any, state: Any, training: Any) -> Any:
        return super().logits(features, ops.zeros_like(state), training)


@_register
class AssetsMixed(ConvRNNCell):
    """conv2 is two rows tall: each asset's features see its neighbour's."""

    def logits(self, features: Any, state: Any, training: Any) -> Any:
        neighbour = ops.concatenate([features[:, 1:], ops.zeros_like(features[:, :1])], axis=1)
        return super().logits(features + neighbour, state, training)


@_register
class NanGradient(ConvRNNCell):
    """Adds sqrt(h - h) = 0 to the logits: finite forward, NaN gradient."""

    def logits(self, features: Any, state: Any, training: Any) -> Any:
        logits = super().logits(features, state, training)
        return logits + ops.sqrt(logits - logits)


@_register
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


@_register
class BatchLeak(ConvRNNCell):
    """Pulls each example's logits 30 % of the way to the batch's mean: exactly
    the shipped cell at batch 1 (the mean is the example), wrong above it, as
    batch statistics at inference or a reduction over the wrong axis are."""

    def logits(self, features: Any, state: Any, training: Any) -> Any:
        logits = super().logits(features, state, training)
        return logits + 0.3 * (ops.mean(logits, axis=0, keepdims=True) - logits)


@_register
class GradientSignFlipped(ConvRNNCell):
    """The gradient through the logits has the wrong sign: training ascends."""

    def logits(self, features: Any, state: Any, training: Any) -> Any:
        return _flip_gradient(super().logits(features, state, training))


@_register
class DropoutOnAtInference(ConvRNNCell):
    """Always drops half the conv1 units, in training and at inference alike."""

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.always = keras.layers.Dropout(0.5, seed=self.cell_config.seed)

    def apply_dropout(self, layer: Any, x: Any, training: Any) -> Any:
        x = super().apply_dropout(layer, x, training)
        return self.always(x, training=True) if layer == 1 else x


@_register
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


@_register
class SeedIgnored(ConvRNNCell):
    """Initializers without a seed: every build draws new weights."""

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        for conv in (self.conv1, self.conv2, self.conv3):
            conv.kernel_initializer = keras.initializers.HeNormal(seed=None)


@_register
class ConfigForgetsKernels(ConvRNNCell):
    """get_config() leaves out the kernel counts, so from_config() uses the defaults."""

    def get_config(self) -> Any:
        config = super().get_config()
        config["config"] = {k: v for k, v in config["config"].items() if k != "kernels"}
        return config


@_register
class EagerGraphDiffer(ConvRNNCell):
    """Adds 0.1 to the first logit when running eagerly, and nothing in a graph."""

    def logits(self, features: Any, state: Any, training: Any) -> Any:
        logits = super().logits(features, state, training)
        eager = 0.1 if tf.executing_eagerly() else 0.0
        return logits + ops.one_hot(ops.zeros_like(logits[:, 0], "int32"), logits.shape[-1]) * eager


@_register
class SaturatedAtInit(ConvRNNCell):
    """Logits scaled by 1000: the softmax is one-hot from birth."""

    def logits(self, features: Any, state: Any, training: Any) -> Any:
        return super().logits(features, state, training) * 1000.0


@_register
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


@_register
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


def _builtin(
    cls: type[ConvRNNCell],
    kills: tuple[str, ...],
    *,
    cell: Mapping[str, Any] | None = None,
    inputs: InputSpec | None = None,
) -> None:
    case = Case(
        DEFAULT_CASE.cell.replace(**(cell or {})), DEFAULT_CASE.train, inputs or DEFAULT_CASE.inputs
    )
    doc = " ".join((cls.__doc__ or "").split())
    register_mutant(Mutant(cls.__name__, mutant_factory(cls), kills, case, doc))


_builtin(WrongOutputShape, ("output_shape",))
_builtin(SoftmaxOverWrongAxis, ("simplex_output",))
# NaN only on large moves: it needs inputs that have them.
_builtin(NanOnLargeMoves, ("simplex_output",), inputs=InputSpec(kind="large_moves", seed=1))
_builtin(StateNotFedBack, ("state_is_output",))
_builtin(StateIgnored, ("state_matters",))
_builtin(AssetsMixed, ("asset_permutation_equivariance",))
_builtin(NanGradient, ("gradients_finite",))
_builtin(StopGradientConv1, ("gradients_nonzero", "gradient_check"))
_builtin(GradientSignFlipped, ("gradient_check", "loss_decreases"))
# The units at its kink move every asset's logit alike: only a cash logit shows them.
_builtin(WrongGradientAtKink, ("gradient_check",), cell={"cash_bias": True})
_builtin(BatchLeak, ("batch_independence",))
_builtin(DropoutOnAtInference, ("deterministic",))
_builtin(DropoutRedrawsWeights, ("dropout_zero_is_identity",))
_builtin(SeedIgnored, ("deterministic",))
_builtin(ConfigForgetsKernels, ("serialization_roundtrip",))
_builtin(EagerGraphDiffer, ("execution_modes_agree",))
_builtin(SaturatedAtInit, ("init_near_uniform",))
_builtin(DeadAtBirth, ("init_near_uniform", "gradients_nonzero"))
