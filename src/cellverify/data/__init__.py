"""Data: the synthetic market and real prices, and the two tasks (NumPy only).

Re-exports :mod:`cellverify.data.market`'s names."""

from __future__ import annotations

from cellverify.data.market import (
    DEFAULT_MOMENTUM,
    DEFAULT_VOLATILITY,
    INPUT_KINDS,
    SCALES,
    Batch,
    InputSpec,
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
