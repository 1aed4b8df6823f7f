"""Real price histories: CSV files, or the S&P 500 sample that skfolio ships.

* ``load_prices(path)`` reads a CSV with a date column and one column of
  positive prices per asset (close only: ``features = 1``), or a directory
  (or list) of one CSV per asset with ``date, close, high, low`` columns
  (``features = 3``).
* ``sp500()`` is the real default that needs no download: the daily closes
  of 20 S&P 500 stocks, 1990-2022, from the ``skfolio`` package (install the
  ``data`` extra).  It is found on disk without importing skfolio.

Windows are built as the question and PGPortfolio build them, each divided by
its latest close (:func:`cellverify.data.sample_batch`).  Training and
evaluation periods are split by date, never shuffled: the last
:data:`EVAL_FRACTION` of the dates are for evaluation only.

Policy for missing values: a gap of at most :data:`MAX_GAP` consecutive rows
in an asset is filled with the last price before it (forward fill); a longer
gap, or a missing first price, is an error.  Every error names the file, the
row (1-based, the header being row 1) and the column.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import importlib.util
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np

from cellverify.errors import BadPriceFile, InvalidConfig
from cellverify.vocabulary import DataSource

__all__ = [
    "EVAL_FRACTION",
    "MAX_GAP",
    "DataSource",
    "PriceHistory",
    "PricePaths",
    "load_prices",
    "resolve_data",
    "sp500",
    "with_features",
]

#: Consecutive missing prices forward-filled (a trading week); more is an error.
MAX_GAP = 5
#: The last share of the dates kept for evaluation.
EVAL_FRACTION = 0.2


_SP500 = ("datasets", "data", "sp500_dataset.csv.gz")
_DATE_NAMES = ("date", "datetime", "time", "timestamp", "day")


@dataclass(frozen=True)
class PricePaths:
    """Close, high and low prices, ``[periods, assets]`` each."""

    close: np.ndarray
    high: np.ndarray
    low: np.ndarray

    @property
    def periods(self) -> int:
        return int(self.close.shape[0])

    @property
    def assets(self) -> int:
        return int(self.close.shape[1])

    @cached_property
    def by_asset(self) -> np.ndarray:
        """Close, high and low as one ``[assets, periods, 3]`` array, built once
        per paths: each asset's window is one contiguous block of it, which is
        what every batch drawn from these paths reads."""
        return np.ascontiguousarray(
            np.stack([self.close, self.high, self.low], axis=-1).swapaxes(0, 1)
        )

    def windows(self, length: int) -> np.ndarray:
        """``view[a, s]`` is asset ``a``'s ``length`` periods from period ``s``,
        ``[length, 3]`` (close, high, low): a view of :attr:`by_asset`,
        nothing copied."""
        view = np.lib.stride_tricks.sliding_window_view(self.by_asset, length, axis=1)
        return view.transpose(0, 1, 3, 2)


def with_features(prices: np.ndarray, features: int) -> np.ndarray:
    """Close, high and low (the last axis) repeated until there are
    ``features`` of them, as a cell with more features sees them."""
    if features == 3:
        return prices
    reps = -(-features // 3)
    return np.tile(prices, (1,) * (prices.ndim - 1) + (reps,))[..., :features]


@dataclass(frozen=True)
class PriceHistory(PricePaths):
    """Prices by date (high and low equal to close when the source has
    closes only), and where they came from."""

    source: str
    dates: np.ndarray
    names: tuple[str, ...]
    features: int

    def split(self) -> int:
        """The first evaluation row: the last EVAL_FRACTION of the dates."""
        return round(self.periods * (1.0 - EVAL_FRACTION))


def _read_rows(path: Path) -> list[list[str]]:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", newline="") as f:
                rows = list(csv.reader(f))
        else:
            with open(path, newline="") as f:
                rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        problem = f"cannot be read ({exc})"
        raise BadPriceFile(str(path), None, None, problem, "a CSV file", str(path)) from None
    return [row for row in rows if row and any(cell.strip() for cell in row)]


def _dates(path: Path, rows: list[list[str]], column: int, name: str) -> np.ndarray:
    out = []
    for r, row in enumerate(rows[1:], start=2):
        text = row[column].strip() if column < len(row) else ""
        try:
            out.append(np.datetime64(text[:10], "D"))
        except ValueError:
            raise BadPriceFile(str(path), r, name, "not a date", "YYYY-MM-DD", text) from None
    dates = np.array(out)
    backwards = np.flatnonzero(np.diff(dates).astype(np.int64) <= 0)
    if backwards.size:
        r = int(backwards[0]) + 3
        later = "a later date than the row above"
        raise BadPriceFile(str(path), r, name, "dates must increase", later, str(dates[r - 2]))
    return dates


def _prices(path: Path, rows: list[list[str]], column: int, name: str) -> np.ndarray:
    values = np.full(len(rows) - 1, np.nan)
    for r, row in enumerate(rows[1:], start=2):
        text = row[column].strip() if column < len(row) else ""
        if text == "" or text.lower() in ("nan", "na", "null"):
            continue  # missing: forward-filled below, within MAX_GAP
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not math.isfinite(value) or value <= 0:
            raise BadPriceFile(
                str(path), r, name, "not a positive price", "a positive number", text
            )
        values[r - 2] = value
    return _forward_fill(path, values, name)


def _forward_fill(path: Path, values: np.ndarray, name: str) -> np.ndarray:
    missing = np.isnan(values)
    if not missing.any():
        return values
    if missing[0]:
        problem = "no price to carry forward into a gap at the start"
        raise BadPriceFile(str(path), 2, name, problem, "a price on the first row", "")
    out = values.copy()
    run = 0
    for i in range(1, len(out)):
        if not missing[i]:
            run = 0
            continue
        run += 1
        if run > MAX_GAP:
            first = i - run + 3  # the gap's first row, the header being row 1
            problem = f"a gap of more than {MAX_GAP} missing prices (up to {MAX_GAP} are filled)"
            allowed = f"at most {MAX_GAP} consecutive missing rows"
            found = f"{run} missing from row {first}"
            raise BadPriceFile(str(path), first, name, problem, allowed, found)
        out[i] = out[i - 1]
    return out


def _date_column(path: Path, header: list[str]) -> int:
    for i, name in enumerate(header):
        if name.strip().lower() in _DATE_NAMES:
            return i
    allowed = f"a column named one of {', '.join(_DATE_NAMES)}"
    raise BadPriceFile(str(path), 1, None, "no date column", allowed, header)


def _one_table(path: Path) -> PriceHistory:
    """A CSV of closes: a date column and one column per asset."""
    rows = _read_rows(path)
    if len(rows) < 3:
        allowed = "a header and at least 2 rows of prices"
        raise BadPriceFile(str(path), None, None, "too few rows", allowed, len(rows))
    header = [h.strip() for h in rows[0]]
    date_col = _date_column(path, header)
    dates = _dates(path, rows, date_col, header[date_col])
    columns = [i for i in range(len(header)) if i != date_col]
    if not columns:
        raise BadPriceFile(str(path), 1, None, "no price column", "one column per asset", header)
    close = np.stack([_prices(path, rows, i, header[i]) for i in columns], axis=1)
    names = tuple(header[i] for i in columns)
    return PriceHistory(close, close, close, str(path), dates, names, 1)


def _asset_file(path: Path) -> tuple[np.ndarray, dict[str, np.ndarray], str]:
    """One asset's file: its dates, close, high and low, and its date column."""
    rows = _read_rows(path)
    header = [h.strip().lower() for h in rows[0]] if rows else []
    date_col = _date_column(path, header)
    found: dict[str, np.ndarray] = {}
    for key in ("close", "high", "low"):
        if key not in header:
            allowed = "columns date, close, high, low"
            raise BadPriceFile(str(path), 1, key, "a column is missing", allowed, rows[0])
        found[key] = _prices(path, rows, header.index(key), key)
    return _dates(path, rows, date_col, header[date_col]), found, header[date_col]


def _per_asset(paths: Sequence[Path]) -> PriceHistory:
    """One CSV per asset with date, close, high and low columns, on the same dates."""
    columns: dict[str, list[np.ndarray]] = {"close": [], "high": [], "low": []}
    dates, first = None, None
    for path in paths:
        these, found, date_name = _asset_file(path)
        if dates is None:
            dates, first = these, path
        elif these.shape != dates.shape or not np.array_equal(these, dates):
            n = min(len(these), len(dates))
            differ = np.flatnonzero(these[:n] != dates[:n])
            index = int(differ[0]) if differ.size else n
            received = str(these[index]) if index < len(these) else "the end of the file"
            problem = f"the dates differ from {first}'s"
            allowed = "the same dates in every file"
            raise BadPriceFile(str(path), index + 2, date_name, problem, allowed, received)
        for key, values in found.items():
            columns[key].append(values)
    assert dates is not None
    names = tuple(p.stem for p in paths)
    stacked = {key: np.stack(values, axis=1) for key, values in columns.items()}
    source = ",".join(str(p) for p in paths)
    return PriceHistory(
        stacked["close"], stacked["high"], stacked["low"], source, dates, names, features=3
    )


def load_prices(path: str | Path | Sequence[str | Path]) -> PriceHistory:
    """Prices from a CSV of closes, or a directory (or list) of per-asset
    CSVs with close, high and low (module doc)."""
    if isinstance(path, (str, Path)):
        target = Path(path)
        if not target.exists():
            problem, allowed = "no such file or directory", "a CSV file or a directory of them"
            raise BadPriceFile(str(target), None, None, problem, allowed, str(target))
        if not target.is_dir():
            return _one_table(target)
        files = sorted(p for p in target.iterdir() if p.suffix in (".csv", ".gz"))
        if not files:
            problem = "no CSV file in the directory"
            raise BadPriceFile(str(target), None, None, problem, "one CSV per asset", [])
        return _per_asset(files)
    return _per_asset([Path(p) for p in path])


def _sp500_path() -> Path:
    spec = importlib.util.find_spec("skfolio")
    if spec is None or not spec.submodule_search_locations:
        allowed = "available: pip install 'cellverify[data]' (the skfolio package)"
        raise InvalidConfig("data", "sp500", allowed, "skfolio not installed")
    return Path(next(iter(spec.submodule_search_locations))).joinpath(*_SP500)


def sp500() -> PriceHistory:
    """Daily closes of 20 S&P 500 stocks, 1990-2022 (skfolio's sample; close only)."""
    history = _one_table(_sp500_path())
    return dataclasses.replace(history, source="sp500")


@lru_cache(maxsize=8)
def resolve_data(spec: str) -> PriceHistory | None:
    """``synthetic`` (None: the kit's generated market), ``sp500``, or a path."""
    if spec == DataSource.SYNTHETIC:
        return None
    if spec == DataSource.SP500:
        return sp500()
    return load_prices(spec)


def describe(history: PriceHistory) -> str:
    """One line about a history, for reports."""
    return (
        f"{history.source}: {history.assets} assets, {history.periods} periods "
        f"{history.dates[0]}..{history.dates[-1]}, features {history.features}"
    )
