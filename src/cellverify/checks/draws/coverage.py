"""What an invariant's examples must cover, and what they did cover (plain data).

An invariant is claimed on a region (and on adversarial inputs or the
market's only).  Each categorical *dimension* of a case - the input kind,
the conv and output activations, the initializer, the optimizer, the cash
bias, dropout and the task - takes a few values there.  Each size (the
shape, the kernel counts, the batch and the sequence length) must reach both
ends of its range (:mod:`cellverify.checks.cases.sizes`), and the learning rate
both ends of its optimizer's range (``lowest``, ``highest``); a gate that
never drew one of them has not tested it.  :func:`dimensions` lists, for one
invariant's claim and a ``pinned`` mapping, the values each dimension must
reach and the values left out, each with its reason (outside the region,
pinned, market inputs only).  :class:`Coverage` tallies the values the
examples reached.  No TensorFlow, no Hypothesis: the report renders this.

docs/design.md, "Coverage", has the JSON form.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cellverify.checks.cases.case import Case, portfolio_config
from cellverify.checks.cases.regions import WHOLE_SPACE, Region, learning_rate_range, rate_at
from cellverify.checks.cases.sizes import SIZE_FIELDS, SIZES, size_ends, sizes_of, with_size
from cellverify.config import CellConfig
from cellverify.data.inputs import INPUT_KINDS, SCALES, InputSpec

__all__ = [
    "DIMENSIONS",
    "ENDED",
    "RATE_ENDS",
    "Coverage",
    "Dimension",
    "dimensions",
    "input_label",
    "label_pins",
    "labels_of",
    "with_label",
]

#: The dimensions, in the order the report shows them (and the covering
#: cases and the shrinker visit them).
DIMENSIONS: tuple[str, ...] = (
    "inputs",
    "activation",
    "output_activation",
    "initializer",
    "optimizer",
    "learning_rate",
    "cash_bias",
    "dropout",
    "task",
    *SIZES,
)
#: The dimensions whose values are the two ends of a range: the covering
#: cases set each end at a case of its own and draw the value at the others.
ENDED: tuple[str, ...] = ("learning_rate", *SIZES)
#: The learning rate's values: the ends of its optimizer's range in the region.
RATE_ENDS = ("lowest", "highest")
_BETWEEN = "between"
#: Relative distance at which a rate is taken for an end of its range: the
#: strategies' log-uniform draw, ``low * (high / low) ** 1``, lands within a
#: few float64 ulps (~1e-16) of ``high``, while the regions' ends are 10x
#: apart or more (docs/design.md, "Coverage").
_AT_END = 1e-9

_SCALED = "scaled"


def input_label(spec: InputSpec) -> str:
    """``market``, ``constant``, ``large_moves`` or ``scaled x<scale>``."""
    return f"{_SCALED} x{spec.scale:g}" if spec.kind == _SCALED else spec.kind


def _input_labels(adversarial: bool) -> tuple[str, ...]:
    kinds = INPUT_KINDS if adversarial else INPUT_KINDS[:1]
    return tuple(
        label
        for kind in kinds
        for label in (
            [input_label(InputSpec(_SCALED, s)) for s in SCALES] if kind == _SCALED else [kind]
        )
    )


def _dropout_label(cell: CellConfig) -> str:
    return f"rate {cell.dropout:g}" if cell.dropout_after else "off"


def _dropout_labels(region: Region, pinned: Mapping[str, Any]) -> tuple[str, ...]:
    """What the strategies can draw: no dropout layer, or layers at rate 0 or
    at the region's largest rate (a pinned rate or layer list narrows it)."""
    rates = (pinned["dropout"],) if "dropout" in pinned else (0.0, region.max_dropout)
    after = pinned.get("dropout_after")
    labels = ["off"] if not after else []
    if after is None or after:
        labels += [f"rate {r:g}" for r in rates]
    return tuple(dict.fromkeys(labels))


def _rate_label(case: Case, region: Region) -> str:
    low, high = learning_rate_range(region, case.train.optimizer)
    rate = case.train.learning_rate
    if math.isclose(rate, low, rel_tol=_AT_END):
        return RATE_ENDS[0]
    return RATE_ENDS[1] if math.isclose(rate, high, rel_tol=_AT_END) else _BETWEEN


def _rate_labels(region: Region, pinned: Mapping[str, Any]) -> tuple[str, ...]:
    """Both ends of the optimizer's range (one where every range is a single
    rate); none when the rate is pinned."""
    if "learning_rate" in pinned:
        return ()
    optimizers = [pinned["optimizer"]] if "optimizer" in pinned else list(region.learning_rates)
    ranges = [learning_rate_range(region, name) for name in optimizers]
    return RATE_ENDS if any(low < high for low, high in ranges) else RATE_ENDS[:1]


def labels_of(case: Case, region: Region = WHOLE_SPACE) -> dict[str, str]:
    """The value of each dimension in ``case``, as the report spells it (the
    learning rate's against its optimizer's range in ``region``)."""
    c, t = portfolio_config(case), case.train
    return {
        "inputs": input_label(case.inputs),
        "activation": c.activation,
        "output_activation": c.output_activation,
        "initializer": c.initializer,
        "optimizer": t.optimizer,
        "learning_rate": _rate_label(case, region),
        "cash_bias": str(c.cash_bias),
        "dropout": _dropout_label(c),
        "task": t.task,
        **{name: str(value) for name, value in sizes_of(case).items()},
    }


def label_pins(case: Case) -> dict[str, Any]:
    """The configuration fields that hold each dimension but the inputs at
    its value in ``case``: a ``pinned`` mapping for the strategies."""
    c, t = portfolio_config(case), case.train
    return {
        "activation": c.activation,
        "output_activation": c.output_activation,
        "initializer": c.initializer,
        "cash_bias": c.cash_bias,
        "dropout": c.dropout if c.dropout_after else 0.0,
        "dropout_after": c.dropout_after,
        "optimizer": t.optimizer,
        "task": t.task,
    }


def with_label(case: Case, dimension: str, label: str, region: Region = WHOLE_SPACE) -> Case:
    """``case`` with ``dimension`` set to the value spelled ``label`` (the
    learning rate's against its optimizer's range in ``region``)."""
    c, t = portfolio_config(case), case.train
    if dimension == "learning_rate":
        low, high = learning_rate_range(region, t.optimizer)
        # The ends exactly: rate_at(..., 1.0) lands a few ulps off the highest.
        ends = {RATE_ENDS[0]: low, RATE_ENDS[1]: high}
        rate = ends[label] if label in ends else rate_at(region, t.optimizer, 0.5)
        return Case(c, t.replace(learning_rate=float(rate)), case.inputs)
    if dimension == "inputs":
        kind, _, scale = label.partition(" x")
        spec = InputSpec(kind, float(scale) if scale else 1.0, case.inputs.seed)
        return Case(c, t, spec)
    if dimension == "dropout":
        if label == "off":
            return Case(c.replace(dropout=0.0, dropout_after=()), t, case.inputs)
        after = c.dropout_after or (1,)
        return Case(c.replace(dropout=float(label.split()[1]), dropout_after=after), t, case.inputs)
    if dimension in ("optimizer", "task"):
        return Case(c, t.replace(**{dimension: label}), case.inputs)
    if dimension in SIZES:
        return with_size(case, dimension, int(label))
    value: Any = label == "True" if dimension == "cash_bias" else label
    return Case(c.replace(**{dimension: value}), t, case.inputs)


@dataclass(frozen=True)
class Dimension:
    """The values one dimension must reach (simplest first), and those left
    out, each with why."""

    name: str
    values: tuple[str, ...]
    left_out: dict[str, str] = field(default_factory=dict)


#: Dimensions that are one configuration field each (``pinned`` may fix them).
_FIELDS = ("activation", "output_activation", "initializer", "optimizer", "cash_bias", "task")


def _choices(
    region: Region, adversarial: bool, pinned: Mapping[str, Any], min_batch: int = 1
) -> dict[str, tuple[str, ...]]:
    choices: dict[str, tuple[str, ...]] = {
        "inputs": _input_labels(adversarial),
        "activation": region.activations,
        "output_activation": region.output_activations,
        "initializer": region.initializers,
        "optimizer": tuple(sorted(region.learning_rates)),
        "learning_rate": _rate_labels(region, pinned),
        "cash_bias": tuple(str(b) for b in region.cash_bias),
        "dropout": _dropout_labels(region, pinned),
        "task": region.tasks,
        **{
            name: tuple(map(str, ends))
            for name, ends in size_ends(region, min_batch, pinned).items()
        },
    }
    return {**choices, **{name: (str(pinned[name]),) for name in _FIELDS if name in pinned}}


def dimensions(
    region: Region,
    adversarial: bool,
    pinned: Mapping[str, Any] | None = None,
    *,
    min_batch: int = 1,
) -> list[Dimension]:
    """Each dimension's values for an invariant claimed on ``region`` (and on
    adversarial inputs if ``adversarial``, on batches of ``min_batch`` or
    more), with ``pinned`` fields held fixed.

    A value of the whole space that the claim or the pins rule out is listed
    in ``left_out`` with the reason, never silently dropped.
    """
    pins = dict(pinned or {})
    everything = _choices(WHOLE_SPACE, True, {})
    claimed = _choices(region, adversarial, {}, min_batch)
    required = _choices(region, adversarial, pins, min_batch)
    result = []
    for name in DIMENSIONS:
        left_out = {
            value: _why_left_out(name, value, claimed, pins, region, min_batch)
            for value in everything[name]
            if value not in required[name]
        }
        result.append(Dimension(name, required[name], left_out))
    return result


def _why_left_out(
    name: str,
    value: str,
    claimed: Mapping[str, tuple[str, ...]],
    pins: Mapping[str, Any],
    region: Region,
    min_batch: int,
) -> str:
    if value in claimed[name]:
        return f"pinned ({_pin_text(name, pins)})"
    if name == "inputs":
        return "market inputs only"
    if name == "batch" and int(value) < min_batch:
        return f"the invariant needs batches of {min_batch} or more"
    return f"outside the region {region.name!r}"


def _pin_text(name: str, pins: Mapping[str, Any]) -> str:
    if name in SIZES:
        return f"{SIZE_FIELDS[name]}={pins[SIZE_FIELDS[name]]!r}"
    keys = ("dropout", "dropout_after") if name == "dropout" else (name,)
    return ", ".join(f"{k}={pins[k]!r}" for k in keys if k in pins)


@dataclass
class Coverage:
    """How often the examples reached each value of each dimension."""

    dims: list[Dimension]
    #: The region the learning rates' ends are read in (the claim's).
    region: Region = WHOLE_SPACE
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    #: How a case is spelled in the dimensions (default: the portfolio
    #: contract's :func:`labels_of`, in ``region``).
    labeller: Callable[[Case], dict[str, str]] | None = None

    def record(self, case: Case) -> None:
        labels = self.labeller(case) if self.labeller else labels_of(case, self.region)
        for name, label in labels.items():
            row = self.counts.setdefault(name, {})
            row[label] = row.get(label, 0) + 1

    def missing(self) -> dict[str, list[str]]:
        """Values that should have been reached and were not, by dimension."""
        gaps = {
            d.name: [v for v in d.values if not self.counts.get(d.name, {}).get(v)]
            for d in self.dims
        }
        return {name: values for name, values in gaps.items() if values}

    @property
    def complete(self) -> bool:
        return not self.missing()

    def summary(self) -> str:
        """``inputs 6/6 · activation 3/3 · ...``: reached of required."""
        missing = self.missing()
        return " · ".join(
            f"{d.name} {len(d.values) - len(missing.get(d.name, []))}/{len(d.values)}"
            for d in self.dims
        )

    def to_dict(self) -> dict[str, Any]:
        missing = self.missing()
        return {
            "complete": not missing,
            "dimensions": {
                d.name: {
                    "values": list(d.values),
                    "counts": {v: self.counts.get(d.name, {}).get(v, 0) for v in d.values},
                    "missing": missing.get(d.name, []),
                    "left_out": dict(d.left_out),
                }
                for d in self.dims
            },
        }
