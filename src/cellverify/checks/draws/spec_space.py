"""A :class:`~cellverify.CellSpec`'s cases: its own parameters, sequences of
input vectors, and the training the invariant's region allows.

The dimensions a search must reach (docs/design.md, "Coverage"): the input
kind (:data:`~cellverify.data.inputs.SEQUENCE_KINDS`), each of the spec's
parameters whose values can be seen (every listed value; both ends of a
range), the size of one step's input, the optimizer, both ends of its
learning rate's range, the batch and the sequence length.  Nothing else: the
report never names a field the spec does not have.  A parameter drawn from a
strategy the kit cannot see into is drawn, and claimed by nothing.

The region of the invariant gives the training (its optimizers and their
rates) and, for the robust invariants, dropout: a region without dropout
holds the spec's dropout parameters at 0.  No TensorFlow.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from hypothesis import strategies as st

from cellverify.checks.cases.case import Case
from cellverify.checks.cases.regions import Region, learning_rate_range, place_of, rate_at
from cellverify.checks.cases.sizes import MAX_BATCH, MAX_STEPS
from cellverify.checks.draws.coverage import RATE_ENDS, Dimension
from cellverify.checks.draws.spec_strategies import (
    SEQUENCE_INPUT_LABELS,
    drawn_case,
    input_label,
    input_spec_of,
    spec_cases,
)
from cellverify.checks.judges.registry import Invariant
from cellverify.config import TrainConfig
from cellverify.contracts import Params
from cellverify.errors import InvalidConfig
from cellverify.spec import CellSpec, Domain, domain_of

__all__ = ["SpecSpace"]

#: The training fields a spec's cases draw, and that ``pinned`` may hold.
TRAIN_KEYS = ("optimizer", "learning_rate", "batch_size", "steps", "seed")
#: Within this relative distance a rate is taken for an end of its range
#: (the log-uniform draw at its top lands a few ulps off it).
_AT_END = 1e-9


def _label(value: Any) -> str:
    return str(value)


@dataclass(frozen=True)
class SpecSpace:
    """The cases one invariant is claimed on for one spec (module doc)."""

    spec: CellSpec
    invariant: Invariant
    pinned: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        keywords = self.spec.keywords()
        known = {*self.spec.params, "features", *TRAIN_KEYS, *(keywords or ())}
        unknown = sorted(k for k in self.pinned if k not in known)
        if unknown and keywords is not None:
            names = ", ".join(sorted(known))
            allowed = f"a keyword of {self.spec.name} or a training field: {names}"
            raise InvalidConfig("pinned", unknown[0], allowed, self.pinned[unknown[0]])

    @property
    def fixed(self) -> dict[str, Any]:
        # Pinned keywords the spec does not draw: passed on, claimed by nothing.
        drawn = {*self.spec.params, "features", *TRAIN_KEYS}
        return {k: v for k, v in self.pinned.items() if k not in drawn}

    @property
    def region(self) -> Region:
        return self.invariant.region

    @property
    def ended(self) -> tuple[str, ...]:
        return tuple(name for name, d in self._ranged().items())

    @cached_property
    def domains(self) -> dict[str, Domain]:
        """Each parameter's domain within the region: dropout rates held to
        what the region allows."""
        domains = dict(self.spec.domains())
        limit = self.region.max_dropout
        for name in self.spec.dropout or ():
            d = domains.get(name)
            if d is not None and d.choices:
                domains[name] = Domain(name, tuple(v for v in d.choices if v <= limit) or (0.0,))
            elif d is not None:
                domains[name] = Domain(name, (0.0,)) if limit == 0 else d
        return domains

    def steps_range(self) -> tuple[int, int]:
        return (max(1, self.invariant.min_steps), max(MAX_STEPS, self.invariant.min_steps))

    def _ranged(self) -> dict[str, tuple[Any, Any]]:
        """The dimensions with two ends: ranged parameters, the features,
        the learning rate, the batch and the steps."""
        ranges: dict[str, tuple[Any, Any]] = {
            name: (d.low, d.high) for name, d in self.domains.items() if d.low is not None
        }
        features = domain_of("features", self.spec.features_strategy())
        if features.low is not None:
            ranges["features"] = (features.low, features.high)
        ranges["learning_rate"] = RATE_ENDS
        ranges["batch"] = (self.invariant.min_batch, MAX_BATCH)
        ranges["steps"] = self.steps_range()
        return ranges

    def outside(self) -> list[str]:
        """Pinned values outside the claim: a parameter outside what the spec
        draws, a dropout rate the region holds at 0, a learning rate outside
        the region's range for the optimizer."""
        found = []
        optimizer = self.pinned.get("optimizer")
        declared = self.spec.domains()
        for name, value in self.pinned.items():
            if name in declared and not _within(declared[name], value):
                found.append(f"{name}={value!r} (outside the spec's {name})")
            elif _outside_region(self, name, value, optimizer):
                found.append(f"{name}={value!r}")
        return found

    # -- dimensions and labels ------------------------------------------------

    def dimensions(self) -> list[Dimension]:
        dims = [self._inputs_dimension()]
        for name, d in self.domains.items():
            dims.append(self._pinned_or(name, tuple(_label(v) for v in d.values()), d))
        features = domain_of("features", self.spec.features_strategy())
        dims.append(self._pinned_or("features", tuple(_label(v) for v in features.values())))
        optimizers = tuple(sorted(self.region.learning_rates))
        dims.append(self._pinned_or("optimizer", optimizers))
        rate = () if "learning_rate" in self.pinned else RATE_ENDS
        dims.append(Dimension("learning_rate", rate, self._pin_reasons("learning_rate", RATE_ENDS)))
        dims.append(
            self._pinned_or("batch", tuple(map(str, self._ranged()["batch"])), key="batch_size")
        )
        dims.append(self._pinned_or("steps", tuple(map(str, self._ranged()["steps"]))))
        return dims

    def _inputs_dimension(self) -> Dimension:
        if self.invariant.adversarial_inputs:
            return Dimension("inputs", SEQUENCE_INPUT_LABELS)
        left = dict.fromkeys(SEQUENCE_INPUT_LABELS[1:], "normal inputs only")
        return Dimension("inputs", SEQUENCE_INPUT_LABELS[:1], left)

    def _pin_reasons(self, key: str, values: tuple[str, ...]) -> dict[str, str]:
        if key not in self.pinned:
            return {}
        return {v: f"pinned ({key}={self.pinned[key]!r})" for v in values}

    def _pinned_or(
        self, name: str, values: tuple[str, ...], domain: Domain | None = None, *, key: str = ""
    ) -> Dimension:
        key = key or name
        if key in self.pinned:
            held = _label(self.pinned[key])
            left = {v: f"pinned ({key}={self.pinned[key]!r})" for v in values if v != held}
            return Dimension(name, (held,), left)
        if domain is not None and name in (self.spec.dropout or ()):
            dropped = {
                _label(v): f"outside the region {self.region.name!r}"
                for v in domain_of(name, self.spec.params[name]).values()
                if _label(v) not in values
            }
            return Dimension(name, values, dropped)
        return Dimension(name, values)

    def labels_of(self, case: Case) -> dict[str, str]:
        params: Params = case.cell  # type: ignore[assignment]
        t = case.train
        labels = {"inputs": input_label(case.inputs)}
        labels.update({name: _label(params.get(name)) for name in self.domains})
        labels["features"] = str(params.features)
        labels["optimizer"] = t.optimizer
        labels["learning_rate"] = _rate_label(self.region, t)
        labels["batch"] = str(t.batch_size)
        labels["steps"] = str(t.steps)
        return labels

    def with_label(self, case: Case, dimension: str, label: str) -> Case:
        params: Params = case.cell  # type: ignore[assignment]
        t = case.train
        if dimension == "inputs":
            return Case(params, t, input_spec_of(label, case.inputs.seed))
        if dimension == "learning_rate":
            low, high = learning_rate_range(self.region, t.optimizer)
            rate = {RATE_ENDS[0]: low, RATE_ENDS[1]: high}.get(
                label, rate_at(self.region, t.optimizer, 0.5)
            )
            return Case(params, t.replace(learning_rate=float(rate)), case.inputs)
        if dimension == "optimizer":
            place = place_of(self.region, t.optimizer, t.learning_rate)
            rate = rate_at(self.region, label, min(max(place, 0.0), 1.0))
            if "learning_rate" in self.pinned:
                rate = t.learning_rate
            return Case(params, t.replace(optimizer=label, learning_rate=rate), case.inputs)
        if dimension in ("batch", "steps"):
            key = "batch_size" if dimension == "batch" else "steps"
            return Case(params, t.replace(**{key: int(label)}), case.inputs)
        if dimension == "features":
            return Case(params.replace(features=int(label)), t, case.inputs)
        value = _value_of(self, dimension, label)
        return Case(params.replace(**{dimension: value}), t, case.inputs)

    def label_pins(self, case: Case) -> dict[str, Any]:
        params: Params = case.cell  # type: ignore[assignment]
        chosen = {name: params.get(name) for name, d in self.domains.items() if d.choices}
        return {**self.pinned, **chosen, "optimizer": case.train.optimizer}

    # -- drawing (cellverify.checks.draws.spec_strategies) -------------------------

    def strategy(
        self, pinned: Mapping[str, Any] | None = None, inputs: tuple[str, float] | None = None
    ) -> st.SearchStrategy[Case]:
        return spec_cases(self, dict(self.pinned if pinned is None else pinned), inputs)

    # -- covering cases -------------------------------------------------------

    def covering_cases(self, seed: int) -> list[Case]:
        """Cases that together reach every value of every dimension: each
        categorical one's values in turn from an offset of its own, each
        ranged one's two ends at two cases of their own (drawn at the
        others), the rest drawn from a generator seeded by ``seed``."""
        dims = self.dimensions()
        rng = random.Random(seed)
        ended = set(self.ended)
        n = max(len(d.values) for d in dims)
        offsets = {d.name: rng.randrange(n if d.name in ended else len(d.values)) for d in dims}
        cases = []
        for i in range(n):
            case = drawn_case(self, rng)
            for d in dims:
                o = offsets[d.name]
                if d.name not in ended:
                    case = self.with_label(case, d.name, d.values[(i + o) % len(d.values)])
                elif (i - o) % n < len(d.values):
                    case = self.with_label(case, d.name, d.values[(i - o) % n])
            cases.append(case)
        return cases


def _within(domain: Domain, value: Any) -> bool:
    """Whether ``value`` is one ``domain`` draws (an opaque one: any)."""
    if domain.choices:
        return value in domain.choices
    if domain.low is not None:
        try:
            return bool(domain.low <= value <= domain.high)
        except TypeError:
            return False
    return True


def _outside_region(space: SpecSpace, name: str, value: Any, optimizer: str | None) -> bool:
    """A dropout rate the region holds at 0, an optimizer or a learning
    rate the region does not claim."""
    if name in space.domains:
        return not _within(space.domains[name], value)
    if name == "learning_rate":
        return not space.region.holds(name, value, optimizer)
    return name == "optimizer" and value not in space.region.learning_rates


def _rate_label(region: Region, train: TrainConfig) -> str:
    low, high = learning_rate_range(region, train.optimizer)
    rate = train.learning_rate
    if abs(rate - low) <= _AT_END * low:
        return RATE_ENDS[0]
    return RATE_ENDS[1] if abs(rate - high) <= _AT_END * high else "between"


def _value_of(space: SpecSpace, name: str, label: str) -> Any:
    d = space.domains.get(name)
    candidates = (*d.values(), *d.choices) if d is not None else ()
    if name in space.pinned:  # a pinned value outside the spec's own
        candidates = (space.pinned[name], *candidates)
    for value in candidates:
        if _label(value) == label:
            return value
    return int(label)  # a range's end: an integer
