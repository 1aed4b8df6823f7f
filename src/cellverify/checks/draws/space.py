"""The space one invariant's cases are drawn from, for one kind of cell.

:class:`SearchTest <cellverify.checks.runs.search.SearchTest>` draws, covers,
labels and shrinks cases through a :class:`CaseSpace`, which knows the
dimensions of the claim and how a case is spelled in them.  Two kinds:

* :class:`PortfolioSpace` - the portfolio contract: a
  :class:`~cellverify.CellConfig` drawn within the invariant's region, price
  windows of every kind (:mod:`cellverify.checks.draws.strategies`,
  :mod:`cellverify.checks.draws.coverage`, :mod:`cellverify.checks.draws.covering_cases`);
* :class:`~cellverify.checks.draws.spec_space.SpecSpace` - a
  :class:`~cellverify.CellSpec`'s own parameters, sequences of input vectors.

:func:`space_for` picks the one a factory needs.  No TensorFlow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from hypothesis import strategies as st

from cellverify.checks.cases.case import Case
from cellverify.checks.cases.regions import Region, place_of, rate_at
from cellverify.checks.draws.coverage import (
    ENDED,
    Dimension,
    dimensions,
    label_pins,
    labels_of,
    with_label,
)
from cellverify.checks.draws.covering_cases import covering_cases
from cellverify.checks.draws.strategies import cases
from cellverify.checks.judges.registry import Invariant

__all__ = ["CaseSpace", "PortfolioSpace", "space_for"]


class CaseSpace(Protocol):
    """What a search needs to know of the cases an invariant is claimed on."""

    @property
    def ended(self) -> tuple[str, ...]:
        """The dimensions whose values are the two ends of a range."""
        ...

    def dimensions(self) -> list[Dimension]: ...
    def labels_of(self, case: Case) -> dict[str, str]: ...
    def with_label(self, case: Case, dimension: str, label: str) -> Case: ...
    def label_pins(self, case: Case) -> dict[str, Any]: ...
    def strategy(
        self, pinned: Mapping[str, Any] | None = None, inputs: tuple[str, float] | None = None
    ) -> st.SearchStrategy[Case]: ...
    def covering_cases(self, seed: int) -> list[Case]: ...
    def outside(self) -> list[str]:
        """``name=value`` for each pinned value outside the claim: a failure
        there is no fault of the cell."""
        ...


@dataclass(frozen=True)
class PortfolioSpace:
    """The portfolio contract's cases for one invariant (module doc)."""

    region: Region
    adversarial: bool
    min_batch: int = 1
    full_shape: bool = False
    pinned: Mapping[str, Any] = field(default_factory=dict)
    ended: tuple[str, ...] = ENDED

    def dimensions(self) -> list[Dimension]:
        return dimensions(self.region, self.adversarial, self.pinned, min_batch=self.min_batch)

    def labels_of(self, case: Case) -> dict[str, str]:
        return labels_of(case, self.region)

    def with_label(self, case: Case, dimension: str, label: str) -> Case:
        """``case`` with one dimension changed; a new optimizer's learning rate
        sits at the same place in its own (log) range, unless it is pinned."""
        changed = with_label(case, dimension, label, self.region)
        if dimension != "optimizer" or "learning_rate" in self.pinned:
            return changed
        place = place_of(self.region, case.train.optimizer, case.train.learning_rate)
        rate = rate_at(self.region, label, min(max(place, 0.0), 1.0))
        return Case(changed.cell, changed.train.replace(learning_rate=rate), case.inputs)

    def label_pins(self, case: Case) -> dict[str, Any]:
        return {**self.pinned, **label_pins(case)}

    def strategy(
        self, pinned: Mapping[str, Any] | None = None, inputs: tuple[str, float] | None = None
    ) -> st.SearchStrategy[Case]:
        return cases(
            region=self.region,
            adversarial_inputs=self.adversarial,
            full_shape=self.full_shape,
            pinned=self.pinned if pinned is None else pinned,
            inputs=inputs,
            min_batch=self.min_batch,
        )

    def outside(self) -> list[str]:
        return self.region.outside(self.pinned)

    def covering_cases(self, seed: int) -> list[Case]:
        return covering_cases(
            region=self.region,
            adversarial_inputs=self.adversarial,
            seed=seed,
            pinned=self.pinned,
            min_batch=self.min_batch,
        )


def space_for(
    invariant: Invariant,
    factory: Any,
    pinned: Mapping[str, Any] | None = None,
    *,
    full_shape: bool = False,
) -> CaseSpace:
    """The space ``invariant``'s cases are drawn from for cells made by
    ``factory``: a :class:`~cellverify.CellSpec`'s own, else the portfolio
    contract's."""
    from cellverify.spec import CellSpec

    if isinstance(factory, CellSpec):
        from cellverify.checks.draws.spec_space import SpecSpace

        return SpecSpace(factory, invariant, dict(pinned or {}))
    return PortfolioSpace(
        invariant.region,
        invariant.adversarial_inputs,
        invariant.min_batch,
        full_shape,
        dict(pinned or {}),
    )
