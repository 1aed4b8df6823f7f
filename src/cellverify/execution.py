"""Where jobs execute: worker processes here, or a Dask cluster.

One interface serves ``check`` (an invariant's search a job), ``diagnose``
and ``sweep`` (a training run a job): a job is plain data, never a model, so
that it can travel to another process or machine, and a task is a
module-level function of one job.  An executor starts its workers once
(:meth:`Executor.start`: each runs the caller's start-up, which imports
TensorFlow and tries the cell there, never here) and then runs tasks on
jobs, handing each result back as soon as it is done (:meth:`Executor.map`),
so that callers can stream progress and append to a checkpoint.

* :class:`LocalExecutor` - one single-threaded TensorFlow process per worker
  (two single-thread processes give about 20 % more throughput than one with
  two threads on a 2-core machine), or this process for one worker.  The
  default route.
* :class:`DaskExecutor` - tasks on a ``distributed`` cluster: an existing
  scheduler (``tcp://host:8786``) or ``local[:N]``, a ``LocalCluster`` of N
  single-threaded worker processes.  A worker that dies has its tasks re-run
  elsewhere by Dask, and each task's future completes once.

Both are ``concurrent.futures`` executors underneath (a process pool, or
``distributed.Client.get_executor()``), so one loop (:func:`_run_all`) runs
both.  Both stop everything they started when closed or interrupted, in one
place (:meth:`Executor.close`, on leaving the ``with`` block): worker
processes are terminated, Dask tasks cancelled, a local cluster shut down.
No TensorFlow here: it is imported inside the workers.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures import Executor as FuturesExecutor
from typing import Any, TypeVar

from cellverify.errors import InvalidConfig, SchedulerUnreachable

__all__ = [
    "CONNECT_TIMEOUT",
    "DaskExecutor",
    "Executor",
    "LocalExecutor",
    "default_workers",
    "make_executor",
    "pin_tensorflow_threads",
    "spawn_pool",
]

#: Seconds to wait for a Dask scheduler to answer before giving up.
CONNECT_TIMEOUT = 10.0
#: Seconds more for the handshake after the connection (see _connect).
_HANDSHAKE_GRACE = 2.0

Job = TypeVar("Job")
Result = TypeVar("Result")


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


def _run_all(
    pool: FuturesExecutor,
    task: Callable[[Job], Result],
    jobs: Sequence[Job],
    on_result: Callable[[Job, Result], None],
) -> None:
    """Run ``task`` on each job in ``pool``, submitted in the order given;
    ``on_result(job, result)`` as each finishes.  The one loop of the kit,
    for a process pool and a Dask client alike; what has not finished when
    it stops (an error, an interrupt) is cancelled."""
    pending: dict[Future[Result], Job] = {pool.submit(task, job): job for job in jobs}
    try:
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                on_result(pending.pop(future), future.result())
    finally:
        for future in pending:
            future.cancel()


class Executor:
    """Runs tasks on jobs and hands back each result as it finishes; a
    context manager that stops everything it started on the way out."""

    def start(
        self, init: Callable[..., Result], *args: Any, here: Callable[..., Result] | None = None
    ) -> Result:
        """Run ``init(*args)`` in every worker before any job (a worker's
        start-up: TensorFlow, the cell, the invariants), and return the
        first one's result, raising what it raised (a bad factory raises
        here, before any work).  ``here`` is its variant for this process,
        as in :meth:`map`."""
        raise NotImplementedError

    def map(
        self,
        task: Callable[[Job], Result],
        jobs: Sequence[Job],
        on_result: Callable[[Job, Result], None],
        *,
        here: Callable[[Job], Result] | None = None,
    ) -> None:
        """``on_result(job, task(job))`` for every job, in the order they
        finish.  ``here`` is the task's variant for running in this process
        (one local worker), where a worker's set-up (one TensorFlow thread)
        must not be imposed on the caller."""
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

    def start(
        self, init: Callable[..., Result], *args: Any, here: Callable[..., Result] | None = None
    ) -> Result:
        """With several workers, start them now, each running ``init``, and
        wait for the first: this process then never imports TensorFlow.
        When it loaded the factory itself, its import and then the workers'
        ran one after the other: 5 s of a 2-core start-up.  With one, run
        ``here`` (default ``init``) in this process."""
        if self.workers == 1:
            return (here or init)(*args)
        pool = self._get_pool()
        started = [pool.submit(init, *args) for _ in range(self.workers)]
        done, _ = wait(started, return_when=FIRST_COMPLETED)
        return next(iter(done)).result()

    def map(
        self,
        task: Callable[[Job], Result],
        jobs: Sequence[Job],
        on_result: Callable[[Job, Result], None],
        *,
        here: Callable[[Job], Result] | None = None,
    ) -> None:
        if self.workers == 1 or (len(jobs) <= 1 and self._pool is None):
            for job in jobs:  # here, with this process's threads
                on_result(job, (here or task)(job))
            return
        _run_all(self._get_pool(), task, jobs, on_result)

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            _terminate(pool)


def _ignore_interrupts() -> None:
    # Ctrl-C reaches every process of the terminal's group; the parent alone
    # handles it, and terminates its workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def spawn_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of spawned worker processes (TensorFlow does not survive fork)."""
    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(workers, mp_context=context, initializer=_ignore_interrupts)


def _terminate(pool: ProcessPoolExecutor) -> None:
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

    def start(
        self, init: Callable[..., Result], *args: Any, here: Callable[..., Result] | None = None
    ) -> Result:
        """``init`` on every worker of the cluster (``Client.run``)."""
        results = self.client.run(init, *args)
        return next(iter(results.values()))  # type: ignore[no-any-return]

    def map(
        self,
        task: Callable[[Job], Result],
        jobs: Sequence[Job],
        on_result: Callable[[Job, Result], None],
        *,
        here: Callable[[Job], Result] | None = None,
    ) -> None:
        # Each job a task of its own (pure=False: never merged with an equal
        # one); a task re-run after its worker died still completes once.
        _run_all(self.client.get_executor(pure=False), task, jobs, on_result)

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
