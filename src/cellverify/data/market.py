"""Seeded synthetic markets and the two training tasks, in plain NumPy.

The market has learnable structure: every asset's log-return follows the same
AR(1) process ``r[t] = momentum * r[t-1] + volatility * noise``, so the last
return in a window predicts the next one, and a cell whose weights are shared
across assets (as EIIE's are) can learn the rule.  Highs and lows bracket the
open-to-close move with a random wick.

* Portfolio task: inputs are price windows normalised by the latest close, the
  target is next period's price relatives ``close[t+1] / close[t]``.
* Supervised task: the target is a distribution over assets that depends on the
  input, ``softmax(last_return / volatility)``; a perfect learner's
  cross-entropy is the target's entropy.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from cellverify.config import CellConfig, TrainConfig
from cellverify.data.inputs import LARGE_VOLATILITY, NEAR_FLAT_RANGE, InputSpec
from cellverify.data.prices import PriceHistory, PricePaths, resolve_data, with_features
from cellverify.data.tasks import task as task_of
from cellverify.errors import InvalidConfig
from cellverify.vocabulary import DataSource

__all__ = [
    "DEFAULT_MOMENTUM",
    "DEFAULT_VOLATILITY",
    "Batch",
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

#: Strong enough that the cross-sectional signal is visible within a few
#: hundred small batches, weak enough that prices stay a random walk to the eye.
DEFAULT_MOMENTUM = 0.3
#: Per-period log-return scale, about a liquid asset's at half-hour periods.
DEFAULT_VOLATILITY = 0.01
# Spare periods beyond window + steps, so batches start at many places.
_POOL = 4096
# Wick size relative to volatility.
_WICK = 0.5


@dataclass(frozen=True)
class Market(PricePaths):
    """Price paths and the process that made them (for real prices: the
    volatility measured, the momentum NaN)."""

    log_returns: np.ndarray
    momentum: float
    volatility: float


@dataclass(frozen=True)
class Batch:
    """One batch of sequences.

    ``inputs`` ``[batch, steps, assets, window, features]`` (float32; features
    are close, high, low, each divided by the window's latest close, then
    repeated if more features are asked for), ``relatives`` ``[batch, steps,
    assets]`` next-period price relatives, ``targets`` ``[batch, steps, assets]``
    the supervised target distribution, and reference losses.
    """

    inputs: np.ndarray
    relatives: np.ndarray
    targets: np.ndarray

    def target(self, task: str, outputs: int | None = None) -> np.ndarray:
        """What the loss of ``task`` compares the output with (``outputs``,
        the output's size, is read off the batch for the portfolio tasks)."""
        return task_of(task).target(self)

    def uniform_loss(self, task: str, outputs: int | None = None) -> float:
        """Loss of the uniform output: what a dead cell scores."""
        return task_of(task).uniform_loss(self)

    def reference_loss(self, task: str, outputs: int | None = None) -> float:
        """Loss a learner that knows the process reaches on this batch
        (:meth:`cellverify.data.tasks.Task.reference_loss`)."""
        return task_of(task).reference_loss(self)


def synthetic_market(
    assets: int,
    periods: int,
    *,
    seed: int,
    momentum: float = DEFAULT_MOMENTUM,
    volatility: float = DEFAULT_VOLATILITY,
) -> Market:
    """A seeded market of ``assets`` AR(1) log-return paths of ``periods`` periods."""
    if not -1.0 < momentum < 1.0:
        raise InvalidConfig("synthetic_market", "momentum", "in (-1, 1) (stationary)", momentum)
    if not volatility > 0.0:
        raise InvalidConfig("synthetic_market", "volatility", "positive", volatility)
    if periods < 2 or assets < 1:
        raise InvalidConfig(
            "synthetic_market", "periods", "at least 2, with at least 1 asset", (periods, assets)
        )
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((periods, assets)) * volatility
    r = np.empty((periods, assets))
    r[0] = noise[0] / np.sqrt(1.0 - momentum**2)
    for t in range(1, periods):
        r[t] = momentum * r[t - 1] + noise[t]
    close = np.exp(np.cumsum(r, axis=0))
    opens = np.vstack([close[:1], close[:-1]])
    wick_up = np.abs(rng.standard_normal((periods, assets))) * volatility * _WICK
    wick_down = np.abs(rng.standard_normal((periods, assets))) * volatility * _WICK
    high = np.maximum(opens, close) * np.exp(wick_up)
    low = np.minimum(opens, close) * np.exp(-wick_down)
    return Market(close, high, low, r, momentum, volatility)


def sample_batch(
    market: Market,
    *,
    window: int,
    steps: int,
    batch_size: int,
    features: int,
    rng: np.random.Generator,
) -> Batch:
    """Draw ``batch_size`` sequences of ``steps`` consecutive windows from ``market``."""
    ends, relatives, targets = _draw(market, window, steps, batch_size, rng)
    return Batch(_normalised_windows(market, window, ends, features), relatives, targets)


def _draw(
    market: Market,
    window: int,
    steps: int,
    batch_size: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where the sequences end, and their relatives and supervised targets."""
    last_start = market.periods - window - steps  # the last target needs close[t + 1]
    if last_start < 0:
        raise InvalidConfig(
            "sample_batch",
            "market",
            f"at least window + steps + 1 = {window + steps + 1} periods",
            market.periods,
        )
    starts = rng.integers(0, last_start + 1, size=batch_size)
    # ends[b, s] is the index of the latest period seen by step s of sequence b.
    ends = starts[:, None] + window - 1 + np.arange(steps)[None, :]
    relatives = (market.close[ends + 1] / market.close[ends]).astype(np.float32)
    last = market.log_returns[ends] / market.volatility
    scores = np.exp(last - last.max(axis=-1, keepdims=True))
    targets = (scores / scores.sum(axis=-1, keepdims=True)).astype(np.float32)
    return ends, relatives, targets


#: The float64 windows normalised at a time: a few examples' worth, which
#: stays in cache while it is divided and cast (docs/performance.md, 'A diagnose run').
_CHUNK_BYTES = 2**21


def _normalised_windows(market: Market, window: int, ends: np.ndarray, features: int) -> np.ndarray:
    """``[batch, steps, assets, window, features]`` float32: each window
    divided by its latest close in float64, then cast.  One gather of
    contiguous blocks from a strided view of the prices per chunk of
    examples, divided in place and written into the batch: one float32 copy
    of the batch, where fancy indexing, a transpose and a tile made four."""
    batch, steps = ends.shape
    out = np.empty((batch, steps, market.assets, window, features), np.float32)
    view = market.windows(window)
    assets = np.arange(market.assets)[None, None, :]
    per_chunk = max(1, _CHUNK_BYTES // (steps * market.assets * window * 3 * 8))
    for i in range(0, batch, per_chunk):
        e = ends[i : i + per_chunk]
        chunk = view[assets, (e - (window - 1))[:, :, None]]
        chunk /= market.close[e][:, :, :, None, None]
        out[i : i + per_chunk] = with_features(chunk, features)
    return out


def market_for(cell: CellConfig, train: TrainConfig) -> Market:
    """The market a run with these configurations trains on (seeded by ``train.seed``)."""
    return markets_for(cell, train)[0]


def markets_for(cell: CellConfig, train: TrainConfig) -> tuple[Market, Market]:
    """The training and evaluation markets of a run.  Synthetic: one seeded
    market for both (the evaluation batch is a draw no training step takes).
    Real prices (``train.data``): the periods before and after the date split
    of :mod:`cellverify.data.prices`, never shuffled."""
    if train.data == DataSource.SYNTHETIC:
        market = synthetic_market(cell.assets, cell.window + train.steps + _POOL, seed=train.seed)
        return market, market
    history = resolve_data(train.data)
    assert history is not None
    check_prices_fit(history, cell, train)
    split = history.split()
    return (
        market_from_prices(history, cell.assets, 0, split),
        market_from_prices(history, cell.assets, split, history.periods),
    )


def check_prices_fit(history: PriceHistory, cell: CellConfig, train: TrainConfig) -> None:
    """InvalidConfig unless the prices have the assets, features and periods
    the configurations ask for, in both the training and evaluation periods."""
    source = history.source
    if cell.assets > history.assets:
        allowed = f"at most the {history.assets} assets of {source}"
        raise InvalidConfig("CellConfig", "assets", allowed, cell.assets)
    if cell.features > history.features:
        kind = "closes only" if history.features == 1 else "close, high and low"
        allowed = f"at most {history.features} ({source} has {kind})"
        raise InvalidConfig("CellConfig", "features", allowed, cell.features)
    need = cell.window + train.steps + 1
    shortest = min(history.split(), history.periods - history.split())
    if shortest < need:
        allowed = (
            f"a history whose training and evaluation periods each hold window + steps + 1 "
            f"= {need} rows ({source}: {history.split()} and {history.periods - history.split()})"
        )
        raise InvalidConfig("prices", "rows", allowed, history.periods)


def market_from_prices(history: PriceHistory, assets: int, start: int, end: int) -> Market:
    """Rows ``start:end`` of the first ``assets`` columns of a price history."""
    close = history.close[start:end, :assets]
    log_returns = np.vstack([np.zeros((1, assets)), np.diff(np.log(close), axis=0)])
    volatility = float(np.std(log_returns[1:])) or DEFAULT_VOLATILITY
    return Market(
        close,
        history.high[start:end, :assets],
        history.low[start:end, :assets],
        log_returns,
        float("nan"),
        volatility,
    )


def reference_loss(market: Market, batch: Batch, task: str) -> float:
    """The loss a learner should reach on ``batch`` drawn from ``market``
    (:meth:`cellverify.data.tasks.Task.market_reference_loss`: none for the
    portfolio task on real prices)."""
    return task_of(task).market_reference_loss(batch, market.momentum)


def batch_for(
    cell: CellConfig, train: TrainConfig, *, market: Market | None = None, draw: int = 0
) -> Batch:
    """The ``draw``-th batch of a run, reproducible from the two configurations alone."""
    market = market if market is not None else market_for(cell, train)
    return sample_batch(market, **_draw_arguments(cell, train, draw))


def _draw_arguments(cell: CellConfig, train: TrainConfig, draw: int) -> dict[str, Any]:
    return {
        "window": cell.window,
        "steps": train.steps,
        "batch_size": train.batch_size,
        "features": cell.features,
        "rng": np.random.default_rng([train.seed, draw]),
    }


def batch_from_spec(cell: CellConfig, train: TrainConfig, spec: InputSpec) -> Batch:
    """The batch ``spec`` describes, shaped for ``cell`` and ``train``."""
    volatility = LARGE_VOLATILITY if spec.kind == "large_moves" else DEFAULT_VOLATILITY
    market = synthetic_market(
        cell.assets, cell.window + train.steps + 8, seed=spec.seed, volatility=volatility
    )
    batch = sample_batch(
        market,
        window=cell.window,
        steps=train.steps,
        batch_size=train.batch_size,
        features=cell.features,
        rng=np.random.default_rng(spec.seed),
    )
    if spec.kind == "constant":
        return dataclasses.replace(batch, inputs=np.ones_like(batch.inputs))
    if spec.kind == "near_flat":
        return dataclasses.replace(batch, inputs=_nearly_flat(batch.inputs, spec.seed))
    if spec.kind == "scaled":
        # Undo the normalisation with a per-asset price level, then scale.
        level = market.close[-1][None, None, :, None, None]
        raw = (batch.inputs * level * spec.scale).astype(np.float32)
        return dataclasses.replace(batch, inputs=raw)
    return batch


def _nearly_flat(windows: np.ndarray, seed: int) -> np.ndarray:
    """``windows`` (normalised, ``[..., window, features]``) with each window's
    moves shrunk so that its relative range is drawn log-uniformly from
    :data:`NEAR_FLAT_RANGE`; the latest close stays exactly 1.  Computed in
    float64 and rounded once: a window that would round to exactly flat gets
    one value a float32 ulp above 1, so that none is."""
    low, high = NEAR_FLAT_RANGE
    rng = np.random.default_rng([seed, 1])
    shape = windows.shape[:-2]
    ranges = np.exp(rng.uniform(np.log(low), np.log(high), size=shape))[..., None, None]
    moves = windows.astype(np.float64) - 1.0
    spread = np.ptp(moves, axis=(-2, -1), keepdims=True)
    unit = np.divide(moves, spread, out=np.zeros_like(moves), where=spread > 0)
    flat: np.ndarray = (1.0 + unit * ranges).astype(np.float32)
    collapsed = np.ptp(flat, axis=(-2, -1)) == 0
    flat[collapsed, 0, 0] = np.nextafter(np.float32(1), np.float32(2))
    return flat
