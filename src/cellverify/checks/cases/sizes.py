"""The sizes a case is drawn at: the range of each within a region (plain
data: no TensorFlow, no Hypothesis).

The strategies draw shapes, kernel counts, batches and sequence lengths from
these ranges, and the coverage (:mod:`cellverify.checks.draws.coverage`) requires
both ends of each: a cell that breaks only at the shortest window or at a
batch of one is tried by construction (docs/design.md, "Coverage").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cellverify.checks.cases.case import Case, portfolio_config
from cellverify.checks.cases.regions import Region

__all__ = [
    "MAX_BATCH",
    "MAX_K1",
    "MAX_K2",
    "MAX_STEPS",
    "SIZES",
    "SIZE_FIELDS",
    "kernel_ranges",
    "shape_ranges",
    "size_ends",
    "size_ranges",
    "sizes_of",
    "with_size",
]

#: The largest conv kernel counts drawn by default (k3 is always 1).
MAX_K1, MAX_K2 = 4, 6
#: The largest batch and sequence length drawn by default.
MAX_BATCH, MAX_STEPS = 4, 3


def shape_ranges(region: Region) -> dict[str, tuple[int, int]]:
    """(low, high) of ``assets``, ``window`` and ``features`` at the small
    shapes drawn by default, within ``region``."""
    longest = max(12, region.min_window)
    if region.max_window is not None:
        longest = min(longest, region.max_window)
    return {
        "assets": (region.min_assets, max(5, region.min_assets)),
        "window": (region.min_window, longest),
        "features": (1, 3),
    }


def kernel_ranges(
    region: Region, max_k1: int = MAX_K1, max_k2: int = MAX_K2
) -> tuple[tuple[int, int], tuple[int, int]]:
    """(low, high) of k1 and k2 within ``region``."""
    k1, k2 = region.min_kernels
    return (k1, max(max_k1, k1)), (k2, max(max_k2, k2))


#: The sizes, in the order the coverage shows them.
SIZES: tuple[str, ...] = ("assets", "window", "features", "k1", "k2", "batch", "steps")
#: The configuration field that holds each size (k1 and k2: ``kernels``).
SIZE_FIELDS = {"assets": "assets", "window": "window", "features": "features", "k1": "kernels",
               "k2": "kernels", "batch": "batch_size", "steps": "steps"}  # fmt: skip
#: Where k1 and k2 sit in ``kernels``.
_KERNEL_INDEX = {"k1": 0, "k2": 1}


def size_ranges(region: Region, min_batch: int = 1) -> dict[str, tuple[int, int]]:
    """(low, high) of each of :data:`SIZES` within ``region``, for an
    invariant that needs batches of ``min_batch`` or more."""
    k1, k2 = kernel_ranges(region)
    return {
        **shape_ranges(region),
        "k1": k1,
        "k2": k2,
        "batch": (min_batch, MAX_BATCH),
        "steps": (1, MAX_STEPS),
    }


def size_ends(
    region: Region, min_batch: int = 1, pinned: Mapping[str, Any] | None = None
) -> dict[str, tuple[int, ...]]:
    """Both ends of each size's range, smallest first (one where they meet),
    and a pinned size's value alone."""
    pins = pinned or {}
    ends = {}
    for name, (low, high) in size_ranges(region, min_batch).items():
        pin = pins.get(SIZE_FIELDS[name])
        if pin is not None:
            low = high = pin[_KERNEL_INDEX[name]] if name in _KERNEL_INDEX else pin
        ends[name] = tuple(dict.fromkeys((low, high)))
    return ends


def sizes_of(case: Case) -> dict[str, int]:
    """Each of :data:`SIZES` in ``case``."""
    c, t = portfolio_config(case), case.train
    k1, k2, _ = c.kernels
    sizes = {"assets": c.assets, "window": c.window, "features": c.features, "k1": k1, "k2": k2}
    return {**sizes, "batch": t.batch_size, "steps": t.steps}


def with_size(case: Case, size: str, value: int) -> Case:
    """``case`` with one of :data:`SIZES` set to ``value``."""
    c, t = portfolio_config(case), case.train
    if size in _KERNEL_INDEX:
        kernels = list(c.kernels)
        kernels[_KERNEL_INDEX[size]] = value
        return Case(c.replace(kernels=tuple(kernels)), t, case.inputs)
    if size in ("batch", "steps"):
        return Case(c, t.replace(**{SIZE_FIELDS[size]: value}), case.inputs)
    return Case(c.replace(**{size: value}), t, case.inputs)
