"""The benchmark gate: this run's medians against the baseline of this kind of machine.

    python -m benchmarks.gate              # compare; exit non-zero on a regression
    python -m benchmarks.gate --refresh    # write this kind's baseline

The baseline is ``benchmarks/baselines/<kind>.json`` (:mod:`benchmarks.machine`
names the kind), a pytest-benchmark JSON of :data:`GATED` without the raw
timings.  The gate runs the same benchmarks with ``--benchmark-compare`` on
it and ``--benchmark-compare-fail=median:<bound>%``: a benchmark whose median
is more than :data:`REGRESSION_BOUND_PERCENT` above the baseline's fails the
run.  The bound and how it was measured: docs/performance.md, 'The benchmark gate'.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .machine import machine_kind, visible_gpus

__all__ = ["GATED", "REGRESSION_BOUND_PERCENT", "baseline_path", "main", "middle_runs"]

#: Regression bound on a benchmark's median, in percent above the baseline's:
#: twice the worst run-to-run noise measured on this project's shared 2-core
#: machine, rounded up.  Three back-to-back runs of the gated benchmarks moved
#: a median by up to +92 % (the fast training step, 1.69 to 3.23 ms), so a
#: median must be 3x its baseline to fail (docs/performance.md, 'The benchmark gate').
REGRESSION_BOUND_PERCENT = 200
#: The gated benchmarks, ``{device}`` being ``cpu`` or ``gpu``: the steps the
#: kit's every run is made of, the LSTM reference, the machine's matmul rate,
#: and the pieces of a diagnose run.
GATED = (
    "benchmarks/test_cell_step.py::test_train_step[fast-question-function-{device}]",
    "benchmarks/test_cell_step.py::test_train_step[plain-question-function-{device}]",
    "benchmarks/test_cell_step.py::test_train_step[lstm-question-function-{device}]",
    "benchmarks/test_cell_step.py::test_forward_step[cell-question-function-{device}]",
    "benchmarks/test_cell_step.py::test_floor_matmul[question-{device}]",
    "benchmarks/test_cell_step.py::test_recording_overhead[bare-{device}]",
    "benchmarks/test_cell_step.py::test_recording_overhead[recorded-{device}]",
    "benchmarks/test_cell_step.py::test_recording_overhead[probed-{device}]",
    "benchmarks/test_cell_step.py::test_recording_overhead[probe-{device}]",
    "benchmarks/test_cell_step.py::test_recording_overhead[batch-{device}]",
)
BASELINES = Path(__file__).parent / "baselines"
#: Runs of the gated benchmarks a refreshed baseline takes the middle of.
BASELINE_RUNS = 3


def baseline_path(kind: str) -> Path:
    """Where the baseline of machines of ``kind`` lives."""
    return BASELINES / f"{kind}.json"


def middle_runs(paths: Sequence[Path]) -> dict[str, Any]:
    """One pytest-benchmark JSON from several runs of the same benchmarks:
    each benchmark's entry from the run whose median is the middle one, and
    no raw timings (the comparison reads the statistics only).  A baseline
    from one run would carry that run's luck with the machine's load."""
    runs = [json.loads(p.read_text()) for p in paths]
    merged = runs[0]
    by_name = [{b["fullname"]: b for b in run["benchmarks"]} for run in runs]
    benchmarks = []
    for name in by_name[0]:
        entries = sorted((run[name] for run in by_name), key=lambda b: b["stats"]["median"])
        entry = entries[len(entries) // 2]
        entry["stats"].pop("data", None)
        benchmarks.append(entry)
    merged["benchmarks"] = benchmarks
    merged["baseline_runs"] = len(runs)
    return merged


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.gate", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--refresh", action="store_true", help="write the baseline instead of comparing"
    )
    parser.add_argument(
        "--baseline", type=Path, help="baseline file (default: this machine kind's)"
    )
    parser.add_argument(
        "--bound",
        type=float,
        default=REGRESSION_BOUND_PERCENT,
        help="percent above the baseline's median that fails",
    )
    parser.add_argument("--benchmarks", nargs="+", help="node ids to run (default: the gated ones)")
    parser.add_argument(
        "--runs", type=int, default=BASELINE_RUNS, help="runs a refreshed baseline is the middle of"
    )
    return parser


def _refresh(command: list[str], baseline: Path, kind: str, runs: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(tmp) / f"run{i}.json" for i in range(runs)]
        for path in paths:
            code = subprocess.call([*command, f"--benchmark-json={path}"])
            if code != 0:
                return code
        baseline.parent.mkdir(parents=True, exist_ok=True)
        baseline.write_text(json.dumps(middle_runs(paths), indent=1, sort_keys=True) + "\n")
    print(f"baseline for {kind} written to {baseline} (the middle of {runs} runs)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    gpus = [] if args.benchmarks else visible_gpus()
    kind = machine_kind(gpus)
    device = "gpu" if gpus else "cpu"
    baseline = args.baseline or baseline_path(kind)
    selected = args.benchmarks or [g.format(device=device) for g in GATED]
    command = [
        sys.executable,
        "-m",
        "pytest",
        *selected,
        "--benchmark-only",
        "-q",
        "-p",
        "no:cacheprovider",
    ]
    if args.refresh:
        return _refresh(command, baseline, kind, args.runs)
    if not baseline.exists():
        print(
            f"no baseline for this kind of machine ({kind}): expected {baseline}. "
            "Write one with: python -m benchmarks.gate --refresh",
            file=sys.stderr,
        )
        return 2
    print(f"comparing against {baseline} ({kind}): a median {args.bound:g} % above its own fails")
    return subprocess.call(
        [
            *command,
            f"--benchmark-compare={baseline}",
            f"--benchmark-compare-fail=median:{args.bound:g}%",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
