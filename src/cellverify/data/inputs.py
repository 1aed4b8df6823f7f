"""Kinds of input a case runs on, and :class:`InputSpec`, the reproducible
description of one batch of them (plain data, JSON-friendly).

The portfolio contract's cases run on price windows (:data:`INPUT_KINDS`,
made by :mod:`cellverify.data.market`); any other cell's on sequences of
input vectors (:data:`SEQUENCE_KINDS`, made by
:mod:`cellverify.data.sequences`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cellverify.errors import InvalidConfig

__all__ = [
    "INPUT_KINDS",
    "LARGE_VOLATILITY",
    "NEAR_FLAT_RANGE",
    "SCALES",
    "SEQUENCE_KINDS",
    "SEQUENCE_SCALES",
    "InputKind",
    "InputSpec",
]


#: Kinds of input window an :class:`InputSpec` can describe.  ``market`` is the
#: training distribution; the rest are adversarial for numerics: ``constant``
#: (every price equal, so every normalised value is exactly 1), ``near_flat``
#: (windows whose relative range is tiny but not 0: :data:`NEAR_FLAT_RANGE`),
#: ``large_moves`` (20 % volatility per period), ``scaled`` (raw prices times
#: ``scale``, not normalised by the latest close: tiny or huge magnitudes).
class InputKind(StrEnum):
    """Every kind of input a case can run on, of both families."""

    MARKET = "market"
    CONSTANT = "constant"
    NEAR_FLAT = "near_flat"
    LARGE_MOVES = "large_moves"
    SCALED = "scaled"
    NORMAL = "normal"
    ZERO_STEP = "zero_step"
    ONES = "ones"


INPUT_KINDS: tuple[str, ...] = tuple(
    k.value
    for k in (
        InputKind.MARKET,
        InputKind.CONSTANT,
        InputKind.NEAR_FLAT,
        InputKind.LARGE_MOVES,
        InputKind.SCALED,
    )
)
#: The factors by which ``scaled`` multiplies raw prices, simplest first: the
#: raw level itself, then prices far below and far above 1 (float32 keeps
#: ~7 digits, so 1e-4 and 1e4 put the normalised moves of 1e-2 at the edges
#: of what a cell sees in practice, without overflowing a softmax of them).
SCALES: tuple[float, ...] = (1.0, 1e-4, 1e4)
#: The relative ranges ``(max - min) / latest close`` of ``near_flat``
#: windows, drawn log-uniformly per window between these ends.  The top,
#: 1e-4, is below every window of the market kinds: over 24,000 generated
#: windows per kind none had a range between 0 and 1e-4 (the smallest,
#: 1.57e-4), so a cell whose arithmetic breaks on nearly flat prices (a
#: min-max scaling whose range is snapped to 0 below a threshold, with only
#: exactly flat windows guarded) was never tried.  The bottom, 2**-22 =
#: 2.4e-7, is two float32 ulps of 1 (the normalised prices' magnitude): a
#: smaller range rounds to exactly flat windows, which ``constant`` covers.
#: Rounded to float32, a window's range moves by up to one ulp of 1, so the
#: ranges a cell sees lie within 1.2e-7 of these ends, and are never 0.
NEAR_FLAT_RANGE: tuple[float, float] = (2.0**-22, 1e-4)
#: The per-period volatility of ``large_moves`` windows: 20 % moves.
LARGE_VOLATILITY = 0.2

_DESCRIPTIONS = {
    "market": "market windows",
    "constant": "a constant window (every price equal)",
    "near_flat": "a nearly flat window (relative range 2.4e-7 to 1e-4)",
    "large_moves": "windows with 20 % moves",
}


#: Kinds of input sequence a spec'd cell's :class:`InputSpec` can describe:
#: ``normal`` (standard normal vectors, the training distribution),
#: ``zero_step`` (one step whose whole input is 0, as padding or a missing
#: observation gives: a division by a norm breaks there), ``ones`` (every
#: entry 1: no variation at all), ``scaled`` (normal vectors times ``scale``).
SEQUENCE_KINDS: tuple[str, ...] = tuple(
    k.value for k in (InputKind.NORMAL, InputKind.ZERO_STEP, InputKind.ONES, InputKind.SCALED)
)
#: The factors by which a sequence's ``scaled`` kind multiplies normal
#: vectors: the magnitudes at float32's comfortable edges, as for prices
#: (``scaled x1`` would be ``normal`` again).
SEQUENCE_SCALES: tuple[float, ...] = (1e-4, 1e4)

_SEQUENCE_DESCRIPTIONS = {
    "normal": "normal input vectors",
    "zero_step": "an all-zero step",
    "ones": "inputs that are all 1",
}


@dataclass(frozen=True)
class InputSpec:
    """A reproducible description of a batch of input windows (JSON-friendly)."""

    kind: str = "market"
    scale: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.kind, StrEnum):
            object.__setattr__(self, "kind", self.kind.value)
        kinds = [k.value for k in InputKind]
        if self.kind not in kinds:
            raise InvalidConfig("InputSpec", "kind", f"one of {', '.join(kinds)}", self.kind)
        if not (isinstance(self.scale, (int, float)) and 0 < self.scale < float("inf")):
            raise InvalidConfig("InputSpec", "scale", "a positive finite number", self.scale)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def describe(self) -> str:
        """The inputs in words, for a message: ``"a constant window (every price equal)"``."""
        if self.kind == "scaled":
            return f"inputs scaled by {self.scale:g}"
        return {**_DESCRIPTIONS, **_SEQUENCE_DESCRIPTIONS}[self.kind]
