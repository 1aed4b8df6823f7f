"""Shards' reports and checkpoints read back for ``sweep --merge`` (no TensorFlow).

A file given to ``--merge`` may be anything a user had at hand: another
command's JSON report, a list, a shard of another sweep.  Each is checked
for what merging reads from it (a grid, a base, a seed count, runs with
their values and outcomes), and all of them for being one sweep, before
anything is merged; an error names the file and what it lacks.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from cellverify.errors import InvalidConfig
from cellverify.experiments.checkpoint import is_checkpoint, read_checkpoint

__all__ = ["REPORT_KEYS", "RUN_KEYS", "check_one_sweep", "load_report", "load_reports"]

#: What :func:`cellverify.experiments.sweep.aggregate` reads from a report,
#: and from each of its runs.
REPORT_KEYS = ("grid", "base", "seeds", "runs")
RUN_KEYS = ("values", "seed", "learned", "died", "death_step")

_ALLOWED = "sweep reports or checkpoints (a JSON object with " + ", ".join(REPORT_KEYS) + ")"
#: What must agree between the files of one sweep.
_SAME = ("grid", "base")


def _read(path: str) -> Any:
    if is_checkpoint(path):
        header, runs = read_checkpoint(path)
        return {**header, "runs": [{k: v for k, v in r.items() if k != "key"} for r in runs]}
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        reason = " ".join(str(exc).split())[:120]
        raise InvalidConfig("sweep", "merge", _ALLOWED, f"{path} ({reason})") from None


def _run_problem(index: int, run: Any, grid: Mapping[str, Any]) -> str | None:
    if not isinstance(run, dict):
        return f"run {index} is a JSON {type(run).__name__}, not an object"
    missing = [k for k in RUN_KEYS if k not in run]
    if missing:
        return f"run {index} has no {', '.join(missing)}"
    if not isinstance(run["values"], dict) or set(run["values"]) != set(grid):
        return f"run {index}'s values {run['values']!r} do not name the grid's {sorted(grid)}"
    return None


def _problem(data: Any) -> str | None:
    """What ``data`` lacks to be merged, or None."""
    if not isinstance(data, dict):
        return f"a JSON {type(data).__name__}"
    missing = [k for k in REPORT_KEYS if k not in data]
    if missing:
        return f"a JSON object without {', '.join(missing)}; its keys: {', '.join(data) or 'none'}"
    grid, runs = data["grid"], data["runs"]
    if not isinstance(grid, dict) or not all(isinstance(v, list) for v in grid.values()):
        return f"its grid is not a map from field to values: {grid!r}"
    if not isinstance(runs, list):
        return f"its runs are a JSON {type(runs).__name__}, not a list"
    problems = (_run_problem(i, run, grid) for i, run in enumerate(runs, 1))
    return next((p for p in problems if p), None)


def load_report(path: str) -> dict[str, Any]:
    """A sweep report from ``path`` (a JSON report, or a checkpoint's runs),
    checked for everything merging reads from it."""
    data = _read(path)
    problem = _problem(data)
    if problem:
        raise InvalidConfig("sweep", "merge", _ALLOWED, f"{path} ({problem})")
    report: dict[str, Any] = data
    return report


def check_one_sweep(
    reports: Sequence[Mapping[str, Any]], names: Sequence[str] | None = None
) -> None:
    """Refuse reports of more than one sweep (the same grid and base
    configurations), naming the first that differs: by ``names`` (the files),
    else by position."""
    names = names or [f"report {i}" for i in range(1, len(reports) + 1)]
    for name, report in zip(names[1:], reports[1:], strict=True):
        differ = [k for k in _SAME if report[k] != reports[0][k]]
        if differ:
            raise InvalidConfig(
                "sweep",
                "merge",
                f"reports of one sweep: the same grid and base as {names[0]}",
                f"{name} (its {' and '.join(differ)} {'differ' if len(differ) > 1 else 'differs'})",
            )


def load_reports(paths: Sequence[str]) -> list[dict[str, Any]]:
    """Every file's report, refused unless all are of one sweep."""
    reports = [load_report(path) for path in paths]
    check_one_sweep(reports, paths)
    return reports
