"""``cellverify.prices``, a public path: the prices live in
:mod:`cellverify.data.prices`, the named sources in :mod:`cellverify.config`."""

from __future__ import annotations

from cellverify.data.prices import (
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
from cellverify.vocabulary import DATA_SOURCES, DataSource

__all__ = [
    "DATA_SOURCES",
    "EVAL_FRACTION",
    "MAX_GAP",
    "BadPriceFile",
    "DataSource",
    "PriceHistory",
    "PricePaths",
    "describe",
    "load_prices",
    "resolve_data",
    "sp500",
]
