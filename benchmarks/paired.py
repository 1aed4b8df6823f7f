"""Timings taken in turns, for ratios that the machine's drift cannot skew.

This machine is shared: within one ``pytest --benchmark-only`` run, the same
step measured 1.7 ms in one test and 4.5 ms in another minutes later.  A ratio
of two benchmarks' medians then says as much about the neighbours as about
the code.  :func:`in_turns` runs several workloads round after round, each
round timing every workload for a few dozen calls, so each round's ratios
compare timings taken within a second of each other; the spread of the
per-round ratios shows how far to trust them.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping

from .workloads import Workload

__all__ = ["in_turns", "round_ratios"]


def _median_seconds(workload: Workload, calls: int) -> float:
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        result = workload.run()
        if hasattr(result, "numpy"):
            result.numpy()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def in_turns(workloads: Mapping[str, Workload], rounds: int, calls: int) -> dict[str, list[float]]:
    """Each workload's median seconds per call, round by round (warmed up first)."""
    for w in workloads.values():
        w.run()
        w.run()
    medians: dict[str, list[float]] = {name: [] for name in workloads}
    for _ in range(rounds):
        for name, w in workloads.items():
            medians[name].append(_median_seconds(w, calls))
    return medians


def round_ratios(medians: Mapping[str, list[float]], top: str, bottom: str) -> list[float]:
    """``top / bottom`` in each round."""
    return [a / b for a, b in zip(medians[top], medians[bottom], strict=True)]
