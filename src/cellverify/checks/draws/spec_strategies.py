"""Drawing a :class:`~cellverify.checks.draws.spec_space.SpecSpace`'s cases: a
Hypothesis strategy for searches, and a plain generator's draw for covering
cases (docs/design.md, "Coverage").  No TensorFlow.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any, Protocol

from hypothesis import strategies as st

from cellverify.checks.cases.case import Case
from cellverify.checks.cases.regions import Region, rate_at
from cellverify.checks.cases.sizes import MAX_BATCH
from cellverify.checks.draws.strategies import MAX_SEED
from cellverify.checks.judges.registry import Invariant
from cellverify.config import TrainConfig
from cellverify.contracts import Params
from cellverify.data.inputs import SEQUENCE_KINDS, SEQUENCE_SCALES, InputSpec
from cellverify.spec import CellSpec, Domain, domain_of, simplest


class SpecSpace(Protocol):
    """What drawing needs of a :class:`~cellverify.checks.draws.spec_space.SpecSpace`
    (a protocol, so that the space may import this module)."""

    @property
    def spec(self) -> CellSpec: ...
    @property
    def invariant(self) -> Invariant: ...
    @property
    def pinned(self) -> Mapping[str, Any]: ...
    @property
    def region(self) -> Region: ...
    @property
    def domains(self) -> dict[str, Domain]: ...
    @property
    def fixed(self) -> dict[str, Any]: ...
    def steps_range(self) -> tuple[int, int]: ...


__all__ = [
    "SEQUENCE_INPUT_LABELS",
    "drawn_case",
    "input_label",
    "input_spec_of",
    "spec_cases",
]

_SCALED = "scaled"
#: The input variants a spec's adversarial invariants reach, simplest first.
SEQUENCE_INPUT_LABELS: tuple[str, ...] = tuple(
    label
    for kind in SEQUENCE_KINDS
    for label in ([f"{_SCALED} x{s:g}" for s in SEQUENCE_SCALES] if kind == _SCALED else [kind])
)


def input_label(spec: InputSpec) -> str:
    return f"{_SCALED} x{spec.scale:g}" if spec.kind == _SCALED else spec.kind


def input_spec_of(label: str, seed: int) -> InputSpec:
    """The inputs spelled ``label`` (``normal``, ``scaled x10000``...)."""
    kind, _, scale = label.partition(" x")
    return InputSpec(kind, float(scale) if scale else 1.0, seed)


# -- drawing --------------------------------------------------------------


def spec_cases(
    space: SpecSpace, pins: Mapping[str, Any], inputs: tuple[str, float] | None = None
) -> st.SearchStrategy[Case]:
    """The cases of ``space``: its spec's parameters (``pins`` held), the
    training its region allows, the inputs its invariant reaches."""
    return st.builds(
        Case,
        cell=_params_strategy(space, pins),
        train=_train_strategy(space, pins),
        inputs=_inputs_strategy(space, inputs),
    )


def _param_strategy(space: SpecSpace, name: str, pins: Mapping[str, Any]) -> st.SearchStrategy[Any]:
    if name in pins:
        return st.just(pins[name])
    d = space.domains[name]
    if name in (space.spec.dropout or ()) and d.choices:
        return st.sampled_from(d.choices)
    return space.spec.params[name]  # type: ignore[no-any-return]


def _params_strategy(space: SpecSpace, pins: Mapping[str, Any]) -> st.SearchStrategy[Params]:
    drawn = {n: _param_strategy(space, n, pins) for n in space.domains}
    values = st.fixed_dictionaries({**drawn, **{n: st.just(v) for n, v in space.fixed.items()}})
    features = st.just(pins["features"]) if "features" in pins else space.spec.features_strategy()
    return st.builds(Params, values, features, st.integers(0, MAX_SEED))


def _train_strategy(space: SpecSpace, pins: Mapping[str, Any]) -> st.SearchStrategy[TrainConfig]:
    region = space.region
    optimizers = sorted(region.learning_rates)

    @st.composite
    def draw(draw: Any) -> TrainConfig:
        optimizer = pins.get("optimizer") or draw(st.sampled_from(optimizers))
        place = draw(st.floats(0.0, 1.0))
        rate = pins.get("learning_rate") or rate_at(region, optimizer, place)
        low_steps, high_steps = space.steps_range()
        return TrainConfig(
            optimizer=optimizer,
            learning_rate=rate,
            batch_size=pins.get("batch_size")
            or draw(st.integers(space.invariant.min_batch, MAX_BATCH)),
            steps=pins.get("steps") or draw(st.integers(low_steps, high_steps)),
            train_steps=0,
            task=space.spec.training_task,
            seed=pins.get("seed", draw(st.integers(0, MAX_SEED))),
        )

    return draw()


def _inputs_strategy(
    space: SpecSpace, only: tuple[str, float] | None
) -> st.SearchStrategy[InputSpec]:
    if only is not None:
        kind, scale = only
        return st.builds(InputSpec, st.just(kind), st.just(scale), st.integers(0, MAX_SEED))
    labels = SEQUENCE_INPUT_LABELS if space.invariant.adversarial_inputs else ("normal",)
    return st.builds(input_spec_of, st.sampled_from(labels), st.integers(0, MAX_SEED))


def drawn_case(space: SpecSpace, rng: random.Random) -> Case:
    """A case of ``space`` drawn from ``rng``, each listed parameter at its
    first value (a covering case then sets the dimensions it claims)."""
    values = dict(space.fixed)
    for name, d in space.domains.items():
        if name in space.pinned:
            values[name] = space.pinned[name]
        elif d.choices:
            values[name] = d.choices[0]
        elif d.low is not None:
            values[name] = _between(rng, d.low, d.high)
        else:
            values[name] = simplest(space.spec.params[name])
    features = domain_of("features", space.spec.features_strategy())
    width = space.pinned.get("features") or (
        _between(rng, features.low, features.high)
        if features.low is not None
        else features.choices[0]
    )
    optimizer = sorted(space.region.learning_rates)[0]
    low_steps, high_steps = space.steps_range()
    train = TrainConfig(
        optimizer=space.pinned.get("optimizer", optimizer),
        learning_rate=space.pinned.get("learning_rate")
        or rate_at(space.region, optimizer, rng.random()),
        batch_size=space.pinned.get("batch_size")
        or rng.randint(space.invariant.min_batch, MAX_BATCH),
        steps=space.pinned.get("steps") or rng.randint(low_steps, high_steps),
        train_steps=0,
        task=space.spec.training_task,
        seed=space.pinned.get("seed", rng.randint(0, MAX_SEED)),
    )
    params = Params(values, int(width), rng.randint(0, MAX_SEED))
    return Case(params, train, InputSpec("normal", 1.0, rng.randint(0, MAX_SEED)))


def _between(rng: random.Random, low: Any, high: Any) -> Any:
    if isinstance(low, int) and isinstance(high, int):
        return rng.randint(low, high)
    return low + (high - low) * rng.random()
