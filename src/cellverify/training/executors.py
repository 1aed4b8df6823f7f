"""Where training runs execute: worker processes here, or a Dask cluster.

A run is plain data - a :class:`RunJob`: the factory's name, the two
configurations, what to probe - never a model, so that it can travel to
another process or machine.  An executor takes many jobs and hands each
finished run back as soon as it is done (``on_result``), so that callers can
stream progress and append to a checkpoint.

* :class:`LocalExecutor` - one single-threaded TensorFlow process per worker
  (two single-thread processes give about 20 % more throughput than one with
  two threads on a 2-core machine), or this process for one worker.  The
  default route.
* :class:`DaskExecutor` - tasks on a ``distributed`` cluster: an existing
  scheduler (``tcp://host:8786``) or ``local[:N]``, a ``LocalCluster`` of N
  single-threaded worker processes.  A worker that dies has its tasks re-run
  elsewhere by Dask; results are keyed, so each job counts once.

Both stop everything they started when closed or interrupted: worker
processes are terminated, Dask tasks cancelled, a local cluster shut down.
No TensorFlow here: it is imported inside the workers.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, TypeVar

from cellverify.config import CellConfig, TrainConfig
from cellverify.errors import InvalidConfig, SchedulerUnreachable
from cellverify.trace import Trace

__all__ = [
    "CONNECT_TIMEOUT",
    "DaskExecutor",
    "Executor",
    "LocalExecutor",
    "RunJob",
    "default_workers",
    "first_result",
    "make_executor",
    "pin_tensorflow_threads",
    "run_job",
    "run_jobs",
    "spawn_pool",
    "terminate_pool",
]

#: Seconds to wait for a Dask scheduler to answer before giving up.
CONNECT_TIMEOUT = 10.0
#: Seconds more for the handshake after the connection (see _connect).
_HANDSHAKE_GRACE = 2.0

OnResult = Callable[["RunJob", dict[str, Any]], None]


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
        cell: CellConfig,
        train: TrainConfig,
        *,
        probe_every: int = 1,
        fast: bool = True,
    ) -> RunJob:
        return cls(key, factory, cell.to_dict(), train.to_dict(), probe_every, fast)


def default_workers() -> int:
    """One worker per core."""
    return max(1, os.cpu_count() or 1)


def pin_tensorflow_threads() -> None:
    """Pin TensorFlow to one thread in this process, once, before it starts."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # TensorFlow already started in this process: keep its threads
        pass
    # Each job builds a new model, so its steps are traced anew; TensorFlow's
    # "retracing" warning assumes one model and is noise here.
    tf.get_logger().setLevel("ERROR")


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
        CellConfig.from_dict(job.cell),
        TrainConfig.from_dict(job.train),
        probe_every=job.probe_every,
        fast=job.fast,
        reuse=_worker_trainers(),
    )
    return trace.to_dict()


def _start_worker(factory: str) -> None:
    from cellverify.model.factory import check_factory_name, load_factory

    check_factory_name(factory)  # before TensorFlow starts: a typo fails at once
    pin_tensorflow_threads()
    load_factory(factory)


class Executor:
    """Runs jobs and hands back each trace as it finishes; a context manager
    that stops everything it started on the way out."""

    def start(self, factory: str) -> None:
        """Load the cell factory named ``factory`` where the jobs will run,
        before any job: a bad one raises :class:`BadCellFactory` here."""
        from cellverify.model.factory import load_factory

        load_factory(factory)

    def map(self, jobs: Sequence[RunJob], on_result: OnResult) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Stop every worker and task this executor started."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LocalExecutor(Executor):
    """This process for one worker, else a pool of spawned worker processes."""

    def __init__(self, workers: int = 1) -> None:
        if workers < 1:
            raise InvalidConfig("executor", "workers", "at least 1", workers)
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = spawn_pool(self.workers)
        return self._pool

    def start(self, factory: str) -> None:
        """With several workers, start them now, each importing TensorFlow and
        the factory, and wait for the first: this process then never imports
        TensorFlow.  When it loaded the factory itself, its import and then
        the workers' ran one after the other: 5 s of a 2-core start-up."""
        if self.workers == 1:
            super().start(factory)
            return
        pool = self._get_pool()
        first_result([pool.submit(_start_worker, factory) for _ in range(self.workers)])

    def map(self, jobs: Sequence[RunJob], on_result: OnResult) -> None:
        if self.workers == 1 or len(jobs) <= 1:
            for job in jobs:  # here, with this process's threads
                on_result(job, run_job(job, single_thread=False))
            return
        run_in_pool(self._get_pool(), run_job, jobs, on_result)

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            terminate_pool(pool)


def _ignore_interrupts() -> None:
    # Ctrl-C reaches every process of the terminal's group; the parent alone
    # handles it, and terminates its workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def spawn_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of spawned worker processes (TensorFlow does not survive fork)."""
    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(workers, mp_context=context, initializer=_ignore_interrupts)


Job = TypeVar("Job")
Result = TypeVar("Result")


def first_result(started: Sequence[Future[Result]]) -> Result:
    """The result of whichever of ``started`` finishes first, raising what it
    raised: each worker of a pool is told to start, and one that has tells
    what the others will."""
    done, _ = wait(started, return_when=FIRST_COMPLETED)
    return next(iter(done)).result()


def run_in_pool(
    pool: ProcessPoolExecutor,
    task: Callable[[Job], Result],
    jobs: Sequence[Job],
    on_result: Callable[[Job, Result], None],
) -> None:
    """Run ``task`` on each job in ``pool``, submitted in the order given;
    ``on_result(job, result)`` as each finishes.  The one pool loop of the
    kit: ``check``'s invariants and the runs of ``diagnose`` and ``sweep``."""
    pending: dict[Future[Result], Job] = {pool.submit(task, job): job for job in jobs}
    while pending:
        done, _ = wait(pending, return_when=FIRST_COMPLETED)
        for future in done:
            on_result(pending.pop(future), future.result())


def terminate_pool(pool: ProcessPoolExecutor) -> None:
    """Stop a pool now: cancel what has not started, terminate what has (a
    run in progress would otherwise go on for minutes)."""
    if hasattr(pool, "terminate_workers"):  # Python 3.14+
        pool.terminate_workers()
        return
    # Before 3.14 the executor has no public way to stop a running worker;
    # its process table is the only handle on them.
    processes = list(getattr(pool, "_processes", None) or {}).copy()
    handles = [pool._processes[pid] for pid in processes] if processes else []
    pool.shutdown(wait=False, cancel_futures=True)
    for process in handles:
        if process.is_alive():
            process.terminate()
    for process in handles:
        process.join(timeout=10)


def _require_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise InvalidConfig(
            "sweep",
            "scheduler",
            "used with the distributed package installed (pip install 'cellverify[dask]')",
            "no distributed",
        ) from None
    return distributed


def _local_workers(address: str) -> int | None:
    """``local`` -> the core count, ``local:N`` -> N, anything else -> None."""
    if address == "local":
        return default_workers()
    if address.startswith("local:"):
        text = address.split(":", 1)[1]
        if not text.isdigit() or int(text) < 1:
            allowed = "local, local:N with N >= 1, or a scheduler address"
            raise InvalidConfig("sweep", "scheduler", allowed, address)
        return int(text)
    return None


def _unreachable(address: str, timeout: float, why: str) -> SchedulerUnreachable:
    return SchedulerUnreachable(
        f"cannot reach the Dask scheduler at {address!r} within {timeout:g} s ({why}). "
        f"Received: --scheduler {address}"
    )


def _connect(distributed: Any, address: str, timeout: float) -> Any:
    """A client of the scheduler at ``address``, or SchedulerUnreachable.

    ``Client(timeout=...)`` bounds the TCP connection but not the handshake
    after it: a peer that accepts and then says nothing would hang it for
    ever.  So the client is made in a thread given the timeout (plus a grace
    for the handshake), and abandoned if it has not answered by then.
    """
    made: dict[str, Any] = {}

    def connect() -> None:
        try:
            made["client"] = distributed.Client(address, timeout=timeout)
        except BaseException as exc:  # reported to the caller below
            made["error"] = exc

    thread = threading.Thread(target=connect, name="cellverify-dask-connect", daemon=True)
    thread.start()
    thread.join(timeout + _HANDSHAKE_GRACE)
    if "client" in made:
        return made["client"]
    if thread.is_alive():
        raise _unreachable(address, timeout, "it accepted the connection but never answered")
    error = made.get("error")
    why = f"{type(error).__name__}: {' '.join(str(error).split())[:200]}"
    raise _unreachable(address, timeout, why) from None


class DaskExecutor(Executor):
    """Runs each job as one Dask task (module doc)."""

    def __init__(self, address: str, *, timeout: float = CONNECT_TIMEOUT) -> None:
        distributed = _require_distributed()
        self.address = address
        self._cluster: Any = None
        workers = _local_workers(address)
        if workers is not None:
            self._cluster = distributed.LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=40,  # logging.ERROR
                env={"TF_CPP_MIN_LOG_LEVEL": "2"},
            )
            self.client = distributed.Client(self._cluster, timeout=timeout)
        else:
            self.client = _connect(distributed, address, timeout)

    def map(self, jobs: Sequence[RunJob], on_result: OnResult) -> None:
        distributed = _require_distributed()
        futures = {}
        for job in jobs:
            # One task per job, keyed by the job: resubmitting it is harmless,
            # and a task re-run after a worker died still yields one result.
            future = self.client.submit(run_job, job, key=f"cellverify-{job.key}", pure=False)
            futures[future] = job
        seen: set[str] = set()
        try:
            for future in distributed.as_completed(list(futures)):
                job = futures[future]
                if job.key in seen:
                    continue
                seen.add(job.key)
                on_result(job, future.result())
        finally:
            self.client.cancel(list(futures), force=True)

    def close(self) -> None:
        client = getattr(self, "client", None)
        if client is not None:
            client.close()
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None


def make_executor(scheduler: str | None, workers: int | None = None) -> Executor:
    """``scheduler`` None: local processes (``workers``, default one per
    core); else a Dask cluster at that address, or ``local[:N]``."""
    if scheduler:
        return DaskExecutor(scheduler)
    return LocalExecutor(workers or default_workers())


def run_jobs(
    jobs: Sequence[tuple[str, CellConfig, TrainConfig]],
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
        executor.map(run, keep)
    else:
        with LocalExecutor(workers) as local:
            local.map(run, keep)
    return [results[i] for i in range(len(run))]
