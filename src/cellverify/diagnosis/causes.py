"""Likely causes, as rules over the findings, and the remedies they propose
(each verified by re-running: :mod:`cellverify.experiments.verify`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cellverify.diagnosis.findings import (
    OUTCOME_VARIANCE,
    Cause,
    Remedy,
)
from cellverify.vocabulary import ADAPTIVE_OPTIMIZERS, GRADIENT_SCALED_OPTIMIZERS

__all__ = ["CAUSE_RULES", "REMEDIES", "CauseRule", "likely_causes", "remedy_applies"]

# -- causes and remedies ---------------------------------------------------------

REMEDIES: dict[str, Remedy] = {
    r.name: r
    for r in (
        Remedy(
            "linear_last_conv",
            "a linear last conv (the paper's design)",
            cell={"output_activation": "linear"},
        ),
        Remedy("elu_convs", "ELU in the convs", cell={"activation": "elu"}),
        Remedy(
            "leaky_relu_convs",
            "leaky ReLU (slope 0.2) in the convs",
            cell={"activation": "leaky_relu"},
        ),
        Remedy(
            "elu_and_linear",
            "ELU in the convs and a linear last conv (REMEDIED)",
            cell={"activation": "elu", "output_activation": "linear"},
        ),
        Remedy(
            "tanh_glorot",
            "tanh everywhere with Glorot init",
            cell={
                "activation": "tanh",
                "output_activation": "tanh",
                "initializer": "glorot_uniform",
            },
        ),
        Remedy(
            "adagrad",
            "Adagrad, whose step scales with the gradient",
            train={"optimizer": "adagrad"},
        ),
        Remedy("lower_learning_rate", "a learning rate 10x lower", train={"learning_rate": 0.1}),
        Remedy("higher_learning_rate", "a learning rate 10x higher", train={"learning_rate": 10.0}),
        Remedy("glorot_init", "Glorot-uniform init", cell={"initializer": "glorot_uniform"}),
        # For any cell whose factory takes these keywords (a spec's cell, a
        # Keras cell): Keras's own defaults, and its own activation.
        Remedy(
            "keras_default_init",
            "Keras's default initializers: Glorot-uniform kernels, orthogonal recurrent kernels",
            cell={"kernel_initializer": "glorot_uniform", "recurrent_initializer": "orthogonal"},
        ),
        Remedy("tanh_activation", "a tanh activation", cell={"activation": "tanh"}),
    )
}
"""Known remedies.  ``learning_rate`` values in ``train`` are *factors*."""


def _always(cell: dict[str, Any], train: dict[str, Any]) -> bool:
    return True


def _relu_before_softmax(cell: dict[str, Any], train: dict[str, Any]) -> bool:
    return bool(cell.get("output_activation") == "relu")


def _relu_convs(cell: dict[str, Any], train: dict[str, Any]) -> bool:
    return bool(cell.get("activation") == "relu")


def _adam_like(cell: dict[str, Any], train: dict[str, Any]) -> bool:
    return train.get("optimizer") in ADAPTIVE_OPTIMIZERS


def _not_adam_like(cell: dict[str, Any], train: dict[str, Any]) -> bool:
    return not _adam_like(cell, train)


def _gradient_scaled(cell: dict[str, Any], train: dict[str, Any]) -> bool:
    return train.get("optimizer") in GRADIENT_SCALED_OPTIMIZERS


def _not_gradient_scaled(cell: dict[str, Any], train: dict[str, Any]) -> bool:
    return not _gradient_scaled(cell, train)


def _own(cell: dict[str, Any]) -> dict[str, Any]:
    """A spec'd cell's keyword arguments (its diagnosis's ``cell`` is
    ``{"params": ..., "features": ..., "seed": ...}``); a portfolio cell: none."""
    params = cell.get("params")
    return dict(params) if isinstance(params, dict) else {}


def _zero_kernels(cell: dict[str, Any], train: dict[str, Any]) -> bool:
    return any(
        k.endswith("initializer") and not k.startswith("bias") and v == "zeros"
        for k, v in _own(cell).items()
    )


def _relu_activation(cell: dict[str, Any], train: dict[str, Any]) -> bool:
    return _own(cell).get("activation") == "relu"


def remedy_applies(remedy: Remedy, cell: dict[str, Any]) -> bool:
    """Whether ``remedy`` can be tried on this configuration: any on a
    portfolio cell; on a spec'd cell, one that changes only training, or
    only keywords its configuration sets (a GRU has no ``output_activation``)."""
    if "params" not in cell:
        return not set(remedy.cell) & {"kernel_initializer", "recurrent_initializer"}
    return set(remedy.cell) <= set(_own(cell))


@dataclass(frozen=True)
class CauseRule:
    """A likely cause: it applies when any of its ``triggers`` was found and
    ``when(cell, train)`` holds; a ``fallback`` rule applies only when no
    other rule does.  ``explanation`` may name ``{optimizer}``."""

    name: str
    triggers: frozenset[str]
    explanation: str
    remedies: tuple[str, ...]
    when: Callable[[dict[str, Any], dict[str, Any]], bool] = _always
    fallback: bool = False

    def cause(self, names: set[str], cell: dict[str, Any], train: dict[str, Any]) -> Cause | None:
        found = sorted(self.triggers & names)
        if not (found and self.when(cell, train)):
            return None
        text = self.explanation.format(optimizer=train.get("optimizer"))
        remedies = [r for r in self.remedies if remedy_applies(REMEDIES[r], cell)]
        return Cause(self.name, text, found, remedies)


_STEP_INDEPENDENT = (
    "{optimizer} steps each weight by about lr whatever the gradient's scale; conv2's "
    "inputs are all >= 0 after ReLU, so the steps add up and push the single output unit "
    "below 0 within a few steps"
)

#: Every cause rule, in the order causes are reported.
CAUSE_RULES: tuple[CauseRule, ...] = (
    CauseRule(
        "relu_before_softmax",
        frozenset({"zero_gradient", "zero_logits"}),
        "a ReLU before the softmax clips every negative logit to exactly 0; when all "
        "are, the output is exactly uniform and the gradient exactly 0, for good",
        ("linear_last_conv", "elu_and_linear"),
        when=_relu_before_softmax,
    ),
    CauseRule(
        "step_independent_of_gradient",
        frozenset({"optimizer_step"}),
        _STEP_INDEPENDENT,
        ("linear_last_conv", "adagrad"),
        when=_adam_like,
    ),
    CauseRule(
        "step_independent_of_gradient",
        frozenset({"optimizer_step"}),
        _STEP_INDEPENDENT,
        ("linear_last_conv",),
        when=_not_adam_like,
    ),
    CauseRule(
        "dying_relu",
        frozenset({"dead_units", "zero_gradient_entries"}),
        "ReLU conv units whose pre-activation is negative on every input output 0 and get "
        "no gradient; with few kernels a whole layer can die at birth",
        ("elu_convs", "leaky_relu_convs"),
        when=_relu_convs,
    ),
    CauseRule(
        "zero_initial_kernels",
        frozenset({"zero_gradient", "dead_units", "zero_gradient_entries"}),
        "kernels that start at exactly 0 make every unit compute the same thing, and a "
        "candidate through a ReLU at exactly 0 passes no gradient: nothing ever moves",
        ("keras_default_init", "tanh_activation"),
        when=_zero_kernels,
    ),
    CauseRule(
        "relu_activation",
        frozenset({"zero_gradient", "dead_units", "zero_gradient_entries"}),
        "ReLU units whose pre-activation is negative (or exactly 0) on every input output "
        "0 and get no gradient",
        ("tanh_activation",),
        when=_relu_activation,
    ),
    CauseRule(
        "vanishing_gradient",
        frozenset({"vanishing_gradient", "vanishing_through_time"}),
        "the gradient shrinks through the layers (or steps) to nothing",
        ("elu_convs", "tanh_glorot"),
    ),
    CauseRule(
        "step_too_large",
        frozenset({"exploding_gradient", "update_ratio_high"}),
        "the updates are large next to the weights",
        ("lower_learning_rate",),
    ),
    CauseRule(
        "step_too_small",
        frozenset({"update_ratio_low"}),
        "the updates barely move the weights",
        ("higher_learning_rate",),
    ),
    CauseRule(
        "saturated_tanh",
        frozenset({"saturated_tanh"}),
        "tanh units sit on their flat ends, where almost no gradient passes",
        ("glorot_init", "elu_convs"),
    ),
    CauseRule(
        "saturated_softmax",
        frozenset({"saturated_softmax"}),
        "the softmax is near one-hot, where its gradient w(1-w) vanishes",
        ("glorot_init", "lower_learning_rate"),
    ),
    CauseRule(
        "steps_too_small",
        frozenset({"stalled_loss"}),
        "the cell is alive but its gradient is tiny (about 3e-3 on the portfolio loss) and "
        "this optimizer's step scales with it, so nothing visible happens",
        ("higher_learning_rate", "elu_and_linear"),
        when=_gradient_scaled,
    ),
    CauseRule(
        "not_learning",
        frozenset({"stalled_loss"}),
        "the cell is alive but the loss does not move enough",
        ("elu_and_linear",),
        when=_not_gradient_scaled,
    ),
    CauseRule(
        "fragile_initialisation",
        frozenset({OUTCOME_VARIANCE}),
        "whether the cell learns depends on the seed: the initial weights are a coin flip",
        ("elu_and_linear",),
        fallback=True,
    ),
)


def likely_causes(names: set[str], cell: dict[str, Any], train: dict[str, Any]) -> list[Cause]:
    """The causes the findings ``names`` point to, for this configuration."""
    found = [c for r in CAUSE_RULES if not r.fallback if (c := r.cause(names, cell, train))]
    if found:
        return found
    return [c for r in CAUSE_RULES if r.fallback if (c := r.cause(names, cell, train))]
