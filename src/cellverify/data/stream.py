"""A run's batches, each made one step ahead in a thread while the model trains.

Making a batch is NumPy and TensorFlow work that releases the GIL (a gather,
a division, a copy into a tensor), so where a core is idle between a
training step's ops it overlaps with the step; on a machine whose every core
runs a worker it only moves the work off the training thread.  The batches
are the same as made in turn: each depends on its draw number alone
(docs/performance.md, 'A diagnose run').
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

__all__ = ["prefetched"]

T = TypeVar("T")


def prefetched(make: Callable[[int], T], count: int) -> Iterator[T]:
    """``make(0), ..., make(count - 1)``, each made while the previous one is used."""
    if count <= 0:
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="cellverify-batches") as pool:
        upcoming = pool.submit(make, 0)
        for draw in range(count):
            batch = upcoming.result()
            if draw + 1 < count:
                upcoming = pool.submit(make, draw + 1)
            yield batch
