"""Regions of the configuration space, where invariants are claimed (no TensorFlow).

A :class:`Region` says which values each field may take.  Every invariant is
claimed on one region: the structural ones on :data:`WHOLE_SPACE`, the
robustness ones on the measured :data:`ROBUST_REGION` or
:data:`LEARNABLE_REGION` (docs/design.md, "Regions"; ``python -m
cellverify.tools.measure_region`` measures them).  The strategies draw from a region; a
configuration pinned outside one is flagged in reports, since a failure there
is no fault of the cell.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cellverify.vocabulary import (
    ACTIVATIONS,
    ADAPTIVE_OPTIMIZERS,
    GRADIENT_SCALED_OPTIMIZERS,
    INITIALIZERS,
)

__all__ = [
    "INIT_REGION",
    "LEARNABLE_REGION",
    "REGIONS",
    "ROBUST_REGION",
    "WHOLE_SPACE",
    "Region",
    "learning_rate_range",
    "place_of",
    "rate_at",
]


@dataclass(frozen=True)
class Region:
    """A named region of the configuration space: the values each field may take.

    ``learning_rates`` maps each optimizer to its (low, high) range, since a
    sensible rate depends on the optimizer (SGD and Adagrad scale their step by
    the gradient, Adam-likes do not).  Choices are listed simplest first.
    """

    name: str
    activations: tuple[str, ...]
    output_activations: tuple[str, ...]
    initializers: tuple[str, ...]
    learning_rates: dict[str, tuple[float, float]]
    tasks: tuple[str, ...] = ("supervised", "portfolio")  # simplest (larger gradient) first
    max_dropout: float = 0.5
    cash_bias: tuple[bool, ...] = (False, True)
    min_kernels: tuple[int, int] = (1, 1)
    min_assets: int = 2
    min_window: int = 3
    #: The longest window claimed (None: any).  The kit's strategies draw
    #: windows up to 12, and the question's 100 under the thorough profile.
    max_window: int | None = None
    why: str = field(default="", compare=False)

    def holds(self, field_name: str, value: Any, optimizer: str | None = None) -> bool:
        """Whether this region lets ``field_name`` take ``value`` (a learning
        rate is judged against ``optimizer``'s range, or any range)."""
        choices: dict[str, tuple[Any, ...]] = {
            "activation": self.activations,
            "output_activation": self.output_activations,
            "initializer": self.initializers,
            "optimizer": tuple(self.learning_rates),
            "task": self.tasks,
            "cash_bias": self.cash_bias,
        }
        if field_name in choices:
            return value in choices[field_name]
        if field_name == "dropout":
            return bool(value <= self.max_dropout)
        if field_name == "assets":
            return bool(value >= self.min_assets)
        if field_name == "window":
            longest = self.max_window
            return bool(value >= self.min_window and (longest is None or value <= longest))
        if field_name == "kernels":
            return all(k >= m for k, m in zip(tuple(value)[:2], self.min_kernels, strict=True))
        if field_name == "learning_rate":
            ranges = [self.learning_rates[optimizer]] if optimizer in self.learning_rates else []
            return any(low <= value <= high for low, high in ranges or self.learning_rates.values())
        return True  # assets' upper end, features, seeds, batch: any value

    def outside(self, pinned: Mapping[str, Any]) -> list[str]:
        """``field=value`` for each pinned value this region does not hold."""
        optimizer = pinned.get("optimizer")
        return [
            f"{name}={value!r}"
            for name, value in pinned.items()
            if not self.holds(name, value, optimizer)
        ]


WHOLE_SPACE = Region(
    name="any",
    activations=ACTIVATIONS,
    output_activations=ACTIVATIONS,
    initializers=INITIALIZERS,
    learning_rates={
        **{name: (1e-3, 1.0) for name in GRADIENT_SCALED_OPTIMIZERS},
        **{name: (1e-4, 1e-1) for name in ADAPTIVE_OPTIMIZERS},
    },
    why="every configuration the cell allows, the question's fragile one included",
)

#: Where the robustness invariants are claimed.  Measured (docs/invariants.md,
#: "Regions, and what was left out"): no ReLU before the softmax (it zeroes logits: exactly uniform
#: output, zero gradient); no ReLU in the convs (a conv with few kernels can
#: lose all of them at birth); no tanh in the convs (with one or two kernels it
#: saturates and the loss does not move in 20 steps); no tanh last conv either
#: (1 of 2500 generated cells - ELU convs, He-normal init, a 4-period window -
#: had every logit at tanh's float32 ceiling, exactly 1, at birth: a uniform
#: output and no gradient); dropout layers only at rate 0 (a fixed batch's loss
#: under dropout noise can rise while the cell is healthy); small_normal init
#: left out (outputs start almost exactly uniform).
ROBUST_REGION = Region(
    name="robust",
    activations=("elu", "selu", "leaky_relu"),
    output_activations=("linear", "elu", "selu", "leaky_relu"),
    initializers=tuple(i for i in INITIALIZERS if i != "small_normal"),
    learning_rates={
        "rmsprop": (1e-3, 1e-2),
        "adam": (1e-3, 1e-2),
        "nadam": (1e-3, 1e-2),
        "adamw": (1e-3, 1e-2),
        "adamax": (3e-3, 3e-2),
    },
    max_dropout=0.0,
    why="no ReLU, no tanh, no small-normal init, no dropout, Adam-likes at 1e-3..1e-2",
)

#: Where ``loss_decreases`` is claimed: the robust region on the supervised
#: task, with some capacity and a learning rate that moves in 20 steps, and
#: windows up to 12 periods.  At the question's 100-period window (conv2 reads
#: 98 x k1 inputs, so one Adam-like step of lr per weight moves its sum ~98 k1
#: lr) a correct cell can die or overshoot on one example: the thorough
#: profile found Adam at 3e-2 frozen after its first step (loss 2.706 ->
#: 2.708), and 4 of 101 full-shape cases at lr 3e-3..1e-2 rose (AdamW 7.3e-3,
#: RMSprop 8.4e-3); none of 19 above 1e-2 did, so no lower ceiling mends it.  On
#: the portfolio task the gradient is ~200x smaller: 1 of 93 portfolio cases
#: rose in 20 steps (RMSprop's first steps overshoot).  With one kernel per
#: conv, 2-3 assets and a 3-period window, the cross-asset signal (1 % price
#: moves) barely reaches the logits: measured drops of 1e-7 of the loss in 20
#: Adam steps at 1e-3, indistinguishable from rounding.
LEARNABLE_REGION = dataclasses.replace(
    ROBUST_REGION,
    name="robust-supervised",
    tasks=("supervised",),
    min_kernels=(2, 4),
    min_assets=3,
    min_window=5,
    max_window=12,
    learning_rates={name: (3e-3, 3e-2) for name in ROBUST_REGION.learning_rates},
    why=(
        "the robust region on the supervised task, kernels >= 2-4, >= 3 assets, "
        "a 5- to 12-period window, lr 3e-3..3e-2"
    ),
)

#: Where ``init_near_uniform`` is claimed: the robust region without the cash
#: bias.  The untrained cash logit is 0 while the asset logits share an offset
#: set by the price level (prices near 1, not centred): Hypothesis found a
#: correct 2-asset SELU cell with He-normal init whose assets start at -5.7
#: against cash's 0, putting 0.9935 on cash.  Without cash the common offset
#: cancels in the softmax.
INIT_REGION = dataclasses.replace(
    ROBUST_REGION,
    name="robust-no-cash",
    cash_bias=(False,),
    why="the robust region without the cash bias (its logit is not on the assets' scale)",
)

#: Regions by name.
REGIONS: dict[str, Region] = {
    r.name: r for r in (WHOLE_SPACE, ROBUST_REGION, LEARNABLE_REGION, INIT_REGION)
}


def learning_rate_range(region: Region, optimizer: str) -> tuple[float, float]:
    """The (low, high) learning rate of ``optimizer`` in ``region`` (the whole
    space's where the region does not list it: a pinned optimizer)."""
    ranges = region.learning_rates
    return ranges[optimizer] if optimizer in ranges else WHOLE_SPACE.learning_rates[optimizer]


def rate_at(region: Region, optimizer: str, place: float) -> float:
    """The rate at ``place`` (0 the lowest, 1 the highest) of ``optimizer``'s
    range in ``region``, on a log scale: rates span decades."""
    low, high = learning_rate_range(region, optimizer)
    return float(low * (high / low) ** place)


def place_of(region: Region, optimizer: str, rate: float) -> float:
    """Where ``rate`` sits in ``optimizer``'s log range in ``region`` (0 for a
    range of one rate: a user's region may have one)."""
    low, high = learning_rate_range(region, optimizer)
    return math.log(rate / low) / math.log(high / low) if high > low else 0.0
