"""A fragility map: the probability of learning over a grid of configurations.

Each grid point is trained on several seeds; a point's result is the share of
seeds that learned (with a 95 % Wilson interval), the share that died, and the
median step of death (:mod:`cellverify.diagnosis.outcome`).  A grid can be split into
shards (``K/N``) for CI matrix jobs and the shards' JSON merged afterwards
(read back by :mod:`cellverify.experiments.merge`).
No TensorFlow here: training goes through :mod:`cellverify.execution`.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from cellverify.config import CellConfig, TrainConfig, parse_value
from cellverify.contracts import Params
from cellverify.diagnosis.outcome import count_outcomes, outcome_of, wilson_interval
from cellverify.errors import InvalidConfig
from cellverify.execution import Executor, LocalExecutor
from cellverify.experiments.checkpoint import Checkpoint
from cellverify.experiments.merge import check_one_sweep
from cellverify.trace import Trace
from cellverify.training.runs import RunJob, run_job, run_job_here

__all__ = [
    "DEFAULT_GRID",
    "DEFAULT_SPEC_GRID",
    "aggregate",
    "parse_grid",
    "parse_shard",
    "run_key",
    "run_sweep",
    "sweep_header",
    "sweep_tasks",
]

#: The question's four claims in one grid: optimizer x learning rate x the
#: last conv's activation.
DEFAULT_GRID = (
    "optimizer=adam,nadam,adagrad,sgd",
    "learning_rate=0.001,0.01,0.1,1.0",
    "output_activation=relu,linear",
)
#: A spec's cell has its own keywords, not the portfolio cell's: optimizer x
#: learning rate.
DEFAULT_SPEC_GRID = DEFAULT_GRID[:2]

_CELL_FIELDS = {f.name: f for f in dataclasses.fields(CellConfig)}
_TRAIN_FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
_NOT_SWEPT = {"seed"}  # seeds are the replicate axis, not a grid axis


def _grid_value(field: str, text: str, any_keyword: bool) -> Any:
    try:
        return parse_value(field, text, any_keyword=any_keyword)
    except InvalidConfig as exc:
        raise InvalidConfig("sweep", "grid", exc.allowed + f" for {field}", text) from None


def parse_grid(specs: Sequence[str], *, any_keyword: bool = False) -> dict[str, list[Any]]:
    """``["optimizer=adam,sgd", "kernels=5-20-1,5-25-1"]`` -> ``{field: [values]}``.

    Tuples (kernels, dropout_after) are written with dashes.  With
    ``any_keyword`` (a cell that may be a spec's) any keyword is an axis too,
    its values read as :func:`cellverify.config.parse_keyword` reads them.
    """
    grid: dict[str, list[Any]] = {}
    for spec in specs:
        field, sep, values = spec.partition("=")
        field = field.strip().replace("-", "_")
        if not sep or not values:
            raise InvalidConfig("sweep", "grid", "FIELD=V1,V2,... such as optimizer=adam,sgd", spec)
        known = field in _CELL_FIELDS or field in _TRAIN_FIELDS
        if field in _NOT_SWEPT or not (known or any_keyword):
            allowed = sorted((set(_CELL_FIELDS) | set(_TRAIN_FIELDS)) - _NOT_SWEPT)
            raise InvalidConfig("sweep", "grid", f"a field among {', '.join(allowed)}", field)
        if field in grid:
            raise InvalidConfig("sweep", "grid", "each field once", field)
        grid[field] = [
            _grid_value(field, v.strip(), any_keyword) for v in values.split(",") if v.strip()
        ]
    return grid


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/4"`` -> (2, 4): the second of four shards."""
    k, sep, n = text.partition("/")
    try:
        shard, shards = int(k), int(n)
    except ValueError:
        shard, shards = 0, 0
    if not sep or shards < 1 or not 1 <= shard <= shards:
        raise InvalidConfig("sweep", "shard", "K/N with 1 <= K <= N, such as 1/4", text)
    return shard, shards


def _split(
    values: Mapping[str, Any], cell: CellConfig | Params
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A grid point's changes to the cell and to the training: a spec's
    cell takes every name that is not a training field."""
    train = {k: v for k, v in values.items() if k in _TRAIN_FIELDS}
    if isinstance(cell, Params):
        return {k: v for k, v in values.items() if k not in _TRAIN_FIELDS}, train
    return {k: v for k, v in values.items() if k in _CELL_FIELDS}, train


def sweep_tasks(
    grid: Mapping[str, Sequence[Any]],
    cell: CellConfig | Params,
    train: TrainConfig,
    seeds: Sequence[int],
    *,
    shard: tuple[int, int] = (1, 1),
) -> list[tuple[dict[str, Any], int, CellConfig | Params, TrainConfig]]:
    """Every (grid point, seed) of this shard, with its validated configurations."""
    names = list(grid)
    tasks = []
    for index, combo in enumerate(
        itertools.product(itertools.product(*(grid[n] for n in names)), seeds)
    ):
        if index % shard[1] != shard[0] - 1:
            continue
        point, seed = combo
        values = dict(zip(names, point, strict=True))
        cell_changes, train_changes = _split(values, cell)
        tasks.append(
            (
                values,
                seed,
                cell.replace(**cell_changes, seed=seed),
                train.replace(**train_changes, seed=seed),
            )
        )
    return tasks


def run_key(values: Mapping[str, Any], seed: int) -> str:
    """A run's identity within a sweep: its grid point and seed."""
    return f"{json.dumps(_jsonable(dict(values)), sort_keys=True)}|{seed}"


def sweep_header(
    factory: str,
    grid: Mapping[str, Sequence[Any]],
    cell: CellConfig | Params,
    train: TrainConfig,
    seeds: Sequence[int],
    shard: tuple[int, int],
    fast: bool,
) -> dict[str, Any]:
    """What identifies a sweep (its report's head, and its checkpoint's header)."""
    return {
        "factory": factory,
        "grid": {k: _jsonable(list(v)) for k, v in grid.items()},
        "base": {"cell": cell.to_dict(), "train": train.to_dict()},
        "seeds": len(seeds),
        "shard": list(shard),
        "fast": fast,
    }


def _run_record(key: str, values: Any, seed: int, trace: dict[str, Any]) -> dict[str, Any]:
    """One run as the report keeps it: its key, grid values, seed and outcome."""
    outcome = outcome_of(Trace.from_dict(trace)).to_dict()
    return {"key": key, "values": _jsonable(values), "seed": seed, **outcome}


def _execute(
    jobs: Sequence[RunJob],
    keep: Callable[[RunJob, dict[str, Any]], None],
    executor: Executor | None,
    workers: int,
) -> None:
    """The jobs on ``executor``, or on ``workers`` local processes."""
    if executor is not None:
        executor.map(run_job, jobs, keep, here=run_job_here)
        return
    with LocalExecutor(workers) as local:
        local.map(run_job, jobs, keep, here=run_job_here)


def run_sweep(
    factory: str,
    grid: Mapping[str, Sequence[Any]],
    cell: CellConfig | Params,
    train: TrainConfig,
    seeds: Sequence[int],
    *,
    shard: tuple[int, int] = (1, 1),
    executor: Executor | None = None,
    workers: int = 1,
    fast: bool = True,
    checkpoint: str | None = None,
    on_done: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Train this shard's runs and return the raw report (runs, not yet aggregated).

    Runs go to ``executor`` (default: ``workers`` local processes).  With a
    ``checkpoint`` path, every finished run is appended to it as it arrives,
    and the runs it already holds are not run again; ``executed`` and
    ``resumed`` in the report count both.
    """
    tasks = sweep_tasks(grid, cell, train, seeds, shard=shard)
    header = sweep_header(factory, grid, cell, train, seeds, shard, fast)
    record = Checkpoint(checkpoint, header) if checkpoint else None
    done: dict[str, dict[str, Any]] = record.load() if record is not None else {}
    # A sweep needs outcomes only, not per-step activation statistics: skip the
    # probe between the first and last steps (most of the recording cost).
    jobs = [
        RunJob.of(run_key(values, seed), factory, c, t, probe_every=0, fast=fast)
        for values, seed, c, t in tasks
        if run_key(values, seed) not in done
    ]
    by_key = {run_key(values, seed): (values, seed) for values, seed, _, _ in tasks}
    resumed = sum(1 for key in by_key if key in done)
    total = len(tasks)

    def keep(job: RunJob, trace: dict[str, Any]) -> None:
        run = done[job.key] = _run_record(job.key, *by_key[job.key], trace)
        if record is not None:
            record.append(run)
        if on_done is not None:
            on_done(len(done), total)

    if on_done is not None and resumed:
        on_done(resumed, total)
    _execute(jobs, keep, executor, workers)
    runs = [{k: v for k, v in done[key].items() if k != "key"} for key in by_key]
    return {**header, "runs": runs, "executed": len(jobs), "resumed": resumed}


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return "-".join(str(x) for x in value)
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _point(values: dict[str, Any], runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One grid point's rates from its runs."""
    count = count_outcomes(runs)
    n, learned, died, deaths = count.runs, count.learned, count.died, list(count.death_steps)
    low, high = wilson_interval(learned, n)
    return {
        "values": values,
        "runs": n,
        "learned": learned,
        "learned_rate": learned / n if n else float("nan"),
        "learned_ci": [low, high],
        "died": died,
        "died_rate": died / n if n else float("nan"),
        "median_death_step": float(np.median(deaths)) if deaths else None,
    }


def _shard_of(report: Mapping[str, Any]) -> tuple[int, int] | None:
    """``(K, N)`` of a shard's report; None for a merged report (or a malformed field)."""
    shard = report.get("shard")
    if isinstance(shard, list) and len(shard) == 2 and all(isinstance(x, int) for x in shard):
        return shard[0], shard[1]
    return None


def _completeness(
    reports: Sequence[Mapping[str, Any]], points: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """How many of the sweep's runs the reports hold, and which shards of
    one split are not among them: a merge that lacks a shard says so."""
    expected = len(points) * int(reports[0]["seeds"])
    missing = max(expected - sum(p["runs"] for p in points), 0)
    shards = {s for s in map(_shard_of, reports) if s is not None}
    splits = {n for _, n in shards}
    absent = []
    if missing and len(splits) == 1:
        (n,) = splits
        absent = [f"{k}/{n}" for k in range(1, n + 1) if (k, n) not in shards]
    return {"runs_expected": expected, "runs_missing": missing, "shards_missing": absent}


def aggregate(reports: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Merge shard reports and compute each point's rates, and what the
    merge lacks (docs/sweeps.md)."""
    if not reports:
        raise InvalidConfig("sweep", "merge", "at least one report", 0)
    check_one_sweep(reports)
    grid = reports[0]["grid"]
    # Each (point, seed) counts once, however many shards or checkpoints hold it.
    unique = {run_key(run["values"], run["seed"]): run for r in reports for run in r["runs"]}
    runs = list(unique.values())
    names = list(grid)
    by_point: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for run in runs:
        by_point.setdefault(tuple(run["values"][n] for n in names), []).append(run)
    points = [
        _point(dict(zip(names, combo, strict=True)), by_point.get(tuple(combo), []))
        for combo in itertools.product(*(grid[n] for n in names))
    ]
    return {
        "grid": grid,
        "base": reports[0]["base"],
        "seeds": reports[0]["seeds"],
        "points": points,
        "runs": runs,
        **_completeness(reports, points),
    }
