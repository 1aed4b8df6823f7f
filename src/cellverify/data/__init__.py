"""Data: the synthetic market and real prices, sequences for any other cell,
the kinds of input, and the tasks (NumPy only).

Re-exports :mod:`cellverify.data.market`'s names and the input kinds."""

from __future__ import annotations

from cellverify.data.inputs import INPUT_KINDS, SCALES, InputSpec
from cellverify.data.market import (
    DEFAULT_MOMENTUM,
    DEFAULT_VOLATILITY,
    Batch,
    Market,
    batch_for,
    batch_from_spec,
    check_prices_fit,
    market_for,
    market_from_prices,
    markets_for,
    reference_loss,
    sample_batch,
    synthetic_market,
)

__all__ = [
    "DEFAULT_MOMENTUM",
    "DEFAULT_VOLATILITY",
    "INPUT_KINDS",
    "SCALES",
    "Batch",
    "InputSpec",
    "Market",
    "batch_for",
    "batch_from_spec",
    "check_prices_fit",
    "market_for",
    "market_from_prices",
    "markets_for",
    "reference_loss",
    "sample_batch",
    "synthetic_market",
]
