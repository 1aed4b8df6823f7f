"""``cellverify.prices``, a public path: everything lives in :mod:`cellverify.data.prices`."""

from __future__ import annotations

from cellverify.data.prices import (
    DATA_SOURCES,
    EVAL_FRACTION,
    MAX_GAP,
    PriceHistory,
    PricePaths,
    describe,
    load_prices,
    resolve_data,
    sp500,
)
from cellverify.errors import BadPriceFile

__all__ = [
    "DATA_SOURCES",
    "EVAL_FRACTION",
    "MAX_GAP",
    "BadPriceFile",
    "PriceHistory",
    "PricePaths",
    "describe",
    "load_prices",
    "resolve_data",
    "sp500",
]
