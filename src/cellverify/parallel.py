"""Run many training jobs across processes, one TensorFlow thread each.

Two single-thread processes give about 20 % more throughput than one process
with two threads on a 2-core machine (docs/design.md, 'Measured facts'), and each process traces its
own functions, so jobs are independent.  ``jobs=1`` runs in this process.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from cellverify.config import CellConfig, TrainConfig
from cellverify.trace import Trace

__all__ = ["Job", "default_jobs", "run_jobs"]

#: (factory as MODULE:ATTRIBUTE, cell configuration, training configuration)
Job = tuple[str, CellConfig, TrainConfig]


def default_jobs() -> int:
    """One worker per core."""
    return max(1, os.cpu_count() or 1)


def _init_worker() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    # Each job builds a new model, so its steps are traced anew; TensorFlow's
    # "retracing" warning assumes one model and is noise here.
    tf.get_logger().setLevel("ERROR")


def _run_job(job: tuple[str, dict[str, Any], dict[str, Any], int, bool]) -> dict[str, Any]:
    from cellverify.factory import load_factory
    from cellverify.model import fresh_session
    from cellverify.run import train

    spec, cell, run, probe_every, fast = job
    fresh_session()
    trace = train(
        load_factory(spec),
        CellConfig.from_dict(cell),
        TrainConfig.from_dict(run),
        probe_every=probe_every,
        fast=fast,
    )
    return trace.to_dict()


def run_jobs(
    jobs: Sequence[Job],
    *,
    workers: int = 1,
    probe_every: int = 1,
    fast: bool = False,
    on_done: Callable[[int, int], None] | None = None,
    on_result: Callable[[int, Trace], None] | None = None,
) -> list[Trace]:
    """Train every job and return their traces in the order given
    (``probe_every`` and ``fast`` as in :func:`cellverify.run.train`).
    ``on_result(index, trace)`` sees each trace as soon as it is done."""
    payload = [(spec, cell.to_dict(), run.to_dict(), probe_every, fast) for spec, cell, run in jobs]
    results: list[dict[str, Any] | None] = [None] * len(payload)
    if workers <= 1 or len(payload) <= 1:
        for i, job in enumerate(payload):
            result = results[i] = _run_job(job)
            if on_result is not None:
                on_result(i, Trace.from_dict(result))
            if on_done is not None:
                on_done(i + 1, len(payload))
    else:
        context = multiprocessing.get_context("spawn")  # TensorFlow does not survive fork
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker) as pool:
            futures = {pool.submit(_run_job, job): i for i, job in enumerate(payload)}
            for done, future in enumerate(as_completed(futures), start=1):
                results[futures[future]] = future.result()
                if on_result is not None:
                    on_result(futures[future], Trace.from_dict(future.result()))
                if on_done is not None:
                    on_done(done, len(payload))
    return [Trace.from_dict(r) for r in results if r is not None]
