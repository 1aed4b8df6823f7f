"""A training run as a job: plain data for any executor (:mod:`cellverify.execution`).

A :class:`RunJob` names the factory, holds the two configurations and what
to probe, never a model; :func:`run_job` is the task that trains it in a
worker and returns the trace as plain data; :func:`start_worker` is a
worker's start-up for such runs.  :func:`run_jobs` runs many on an executor
and gives the traces back in order.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cellverify.config import CellConfig, TrainConfig
from cellverify.contracts import Params, cell_from_dict
from cellverify.execution import Executor, LocalExecutor, pin_tensorflow_threads
from cellverify.trace import Trace

__all__ = ["RunJob", "run_job", "run_job_here", "run_jobs", "start_here", "start_worker"]


@dataclass(frozen=True)
class RunJob:
    """One training run as plain data: ``key`` names it uniquely."""

    key: str
    factory: str
    cell: dict[str, Any]
    train: dict[str, Any]
    probe_every: int = 1
    fast: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        key: str,
        factory: str,
        cell: CellConfig | Params,
        train: TrainConfig,
        *,
        probe_every: int = 1,
        fast: bool = True,
    ) -> RunJob:
        return cls(key, factory, cell.to_dict(), train.to_dict(), probe_every, fast)


def start_worker(factory: str, pinned: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """A worker's start-up for training runs: the factory's name checked
    before TensorFlow starts (a typo fails at once), TensorFlow pinned to
    one thread, the factory loaded (a bad one raises here).  Returns what
    :func:`start_here` returns."""
    from cellverify.model.factory import check_factory_name

    check_factory_name(factory)
    pin_tensorflow_threads()
    return start_here(factory, pinned)


def start_here(factory: str, pinned: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """:func:`start_worker` in the caller's process: its threads left as
    they are.  For a spec's cell, the configuration to run with ``pinned``
    and its task (:meth:`cellverify.CellSpec.params_for`), as plain data;
    for a portfolio cell factory, None."""
    from cellverify.model.factory import load_factory
    from cellverify.spec import CellSpec

    loaded = load_factory(factory)
    if not isinstance(loaded, CellSpec):
        return None
    return {"params": loaded.params_for(pinned or {}).to_dict(), "task": loaded.training_task}


@functools.cache
def _worker_trainers() -> Any:
    """The trainer this process restarts from one job to the next (a
    ``TrainerReuse``): a worker runs seed after seed, so the worker process
    owns it; ``train`` itself keeps none."""
    from cellverify.training.trainer import TrainerReuse

    return TrainerReuse()


def run_job(job: RunJob, *, single_thread: bool = True) -> dict[str, Any]:
    """Train one job and return its trace as plain data (the task function;
    in a worker process TensorFlow is pinned to one thread)."""
    from cellverify.model.factory import load_factory
    from cellverify.model.rnn import fresh_session
    from cellverify.training.trainer import train

    if single_thread:
        pin_tensorflow_threads()
    fresh_session()
    trace = train(
        load_factory(job.factory),
        cell_from_dict(job.cell),
        TrainConfig.from_dict(job.train),
        probe_every=job.probe_every,
        fast=job.fast,
        reuse=_worker_trainers(),
    )
    return trace.to_dict()


def run_jobs(
    jobs: Sequence[tuple[str, CellConfig | Params, TrainConfig]],
    *,
    workers: int = 1,
    probe_every: int = 1,
    fast: bool = True,
    executor: Executor | None = None,
    on_done: Callable[[int, int], None] | None = None,
    on_result: Callable[[int, Trace], None] | None = None,
) -> list[Trace]:
    """Train every ``(factory, cell, train)`` and return the traces in order
    (on ``executor``, else local processes); ``on_result(index, trace)`` sees
    each as soon as it is done."""
    run = [
        RunJob.of(str(i), spec, cell, train, probe_every=probe_every, fast=fast)
        for i, (spec, cell, train) in enumerate(jobs)
    ]
    results: dict[int, Trace] = {}

    def keep(job: RunJob, data: dict[str, Any]) -> None:
        index = int(job.key)
        results[index] = Trace.from_dict(data)
        if on_result is not None:
            on_result(index, results[index])
        if on_done is not None:
            on_done(len(results), len(run))

    if executor is not None:
        executor.map(run_job, run, keep, here=run_job_here)
    else:
        with LocalExecutor(workers) as local:
            local.map(run_job, run, keep, here=run_job_here)
    return [results[i] for i in range(len(run))]


def run_job_here(job: RunJob) -> dict[str, Any]:
    """:func:`run_job` in the caller's process: its threads left as they are."""
    return run_job(job, single_thread=False)
