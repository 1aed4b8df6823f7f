"""A batch as the raw prices its windows are cut from, not the windows.

A sequence of ``steps`` windows of ``window`` periods covers ``window + steps
- 1`` periods; each window is those prices divided by its latest close.  The
fast path's native conv1 reads the span once and divides after the
convolution (:func:`cellverify.model.native.ops.conv_spans`), so a training
batch need not hold ``steps`` normalised copies of the prices: 1.9 MB a
batch as asked, against 7.2 MB of windows, and a gather instead of a gather,
a division and a cast (docs/design.md, "Native conv1").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from cellverify.data.prices import PricePaths, with_features
from cellverify.data.tasks import task as task_of

__all__ = ["PriceSpans", "SpanBatch", "price_spans"]


class PriceSpans(NamedTuple):
    """``prices`` ``[batch, assets, window + steps - 1, features]`` raw
    (features as in the windows: close, high, low, repeated), ``closes``
    ``[batch, steps, assets]`` each window's latest close; NumPy arrays or,
    fed to a model, tensors."""

    prices: Any
    closes: Any


@dataclass(frozen=True)
class SpanBatch:
    """A :class:`~cellverify.data.market.Batch` whose inputs are kept as
    :class:`PriceSpans`: the same draw's ``relatives`` and ``targets``."""

    spans: PriceSpans
    relatives: np.ndarray
    targets: np.ndarray

    def target(self, task: str) -> np.ndarray:
        """What the loss of ``task`` compares the output with."""
        return task_of(task).target(self)


def price_spans(paths: PricePaths, window: int, ends: np.ndarray, features: int) -> PriceSpans:
    """The spans of the windows ending at ``ends`` ``[batch, steps]`` (each
    row consecutive periods): one contiguous block per example and asset."""
    starts = ends[:, 0] - (window - 1)
    view = paths.windows(window + ends.shape[1] - 1)
    prices = view[np.arange(paths.assets)[None, :], starts[:, None]].astype(np.float32)
    closes = paths.close[ends].astype(np.float32)
    return PriceSpans(np.ascontiguousarray(with_features(prices, features)), closes)
