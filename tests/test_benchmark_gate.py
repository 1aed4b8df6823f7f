"""The benchmark gate fails a run that got slower and passes one that did not.

A workload is benchmarked for a baseline, then gated twice: once as it was,
once with a sleep added.  The workload is mostly a sleep of its own, whose
duration varies by well under a percent, so the gate's verdict depends on the
added sleep and not on the machine's load.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from benchmarks.gate import (
    BASELINES,
    GATED,
    REGRESSION_BOUND_PERCENT,
    baseline_path,
    middle_runs,
)
from benchmarks.machine import kind_of

#: The workload's own time, and the sleep that slows it: three times the
#: bound above the baseline, so the slowed median is far past the gate's line.
WORKLOAD_SECONDS = 0.002
SLOWDOWN_SECONDS = 3 * WORKLOAD_SECONDS * REGRESSION_BOUND_PERCENT / 100

WORKLOAD = f"""
import os
import time


def work():
    sum(range(2000))
    time.sleep({WORKLOAD_SECONDS} + float(os.environ.get("SLOWDOWN_SECONDS", "0")))


def test_workload(benchmark):
    benchmark(work)
"""


def _gate(tmp_path: Path, *options: str, slowdown: float = 0.0) -> subprocess.CompletedProcess[str]:
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from benchmarks.gate import main; "
        "sys.exit(main(sys.argv[2:]))"
    )
    repo = str(Path(__file__).resolve().parents[1])
    env = {"SLOWDOWN_SECONDS": str(slowdown), "PATH": "/usr/bin:/bin"}
    args = [
        sys.executable,
        "-c",
        code,
        repo,
        "--baseline",
        "base.json",
        "--benchmarks",
        "test_workload.py",
        *options,
    ]
    return subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def baseline(tmp_path):
    (tmp_path / "test_workload.py").write_text(WORKLOAD)
    refreshed = _gate(tmp_path, "--refresh")
    assert refreshed.returncode == 0, refreshed.stdout + refreshed.stderr
    return tmp_path


def test_gate_passes_the_same_code_against_its_baseline(baseline):
    run = _gate(baseline)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "base.json" in run.stdout  # it compared, not just ran


def test_gate_fails_a_workload_slowed_by_a_sleep(baseline):
    run = _gate(baseline, slowdown=SLOWDOWN_SECONDS)
    assert run.returncode != 0
    assert "Performance has regressed" in run.stdout + run.stderr


def test_gate_without_a_baseline_says_how_to_write_one(tmp_path):
    (tmp_path / "test_workload.py").write_text(WORKLOAD)
    run = _gate(tmp_path)
    assert run.returncode == 2
    assert "no baseline" in run.stderr and "--refresh" in run.stderr


def test_refreshed_baseline_keeps_statistics_and_drops_raw_timings(baseline):
    data = json.loads((baseline / "base.json").read_text())
    stats = data["benchmarks"][0]["stats"]
    assert "median" in stats and "data" not in stats


def test_machine_kind_separates_avx512_from_avx2_only_and_names_a_gpu():
    model = "AMD EPYC"
    assert kind_of(model, frozenset({"avx", "avx2", "avx512f"}), []) == "cpu-amd-epyc-avx512"
    assert kind_of(model, frozenset({"avx", "avx2"}), []) == "cpu-amd-epyc-avx2"
    assert kind_of(model, frozenset(), []) == "cpu-amd-epyc-novector"
    assert kind_of(model, frozenset({"avx2"}), ["NVIDIA A10G"]) == "gpu-nvidia-a10g"


def test_every_baseline_is_named_for_a_machine_kind_and_gates_only_known_benchmarks():
    files = sorted(BASELINES.glob("*.json"))
    assert files, f"no baseline in {BASELINES}"
    for path in files:
        assert path == baseline_path(path.stem)
        device = "gpu" if path.stem.startswith("gpu-") else "cpu"
        names = {b["fullname"] for b in json.loads(path.read_text())["benchmarks"]}
        assert names == {g.format(device=device) for g in GATED}, path.name


def test_a_baseline_takes_each_benchmark_from_its_middle_run(tmp_path):
    paths = []
    for i, medians in enumerate([(1.0, 6.0), (3.0, 4.0), (2.0, 5.0)]):
        benchmarks = [
            {"fullname": name, "stats": {"median": m, "run": i, "data": [m]}}
            for name, m in zip(("a", "b"), medians, strict=True)
        ]
        paths.append(tmp_path / f"run{i}.json")
        paths[-1].write_text(json.dumps({"machine_info": {}, "benchmarks": benchmarks}))
    merged = middle_runs(paths)
    picked = {b["fullname"]: b["stats"] for b in merged["benchmarks"]}
    assert picked == {"a": {"median": 2.0, "run": 2}, "b": {"median": 5.0, "run": 2}}
    assert merged["baseline_runs"] == 3


def test_every_gated_benchmark_exists_on_cpu_and_on_gpu():
    repo = Path(__file__).resolve().parents[1]
    collect = [
        sys.executable,
        "-m",
        "pytest",
        "--collect-only",
        "-q",
        "benchmarks/test_cell_step.py",
    ]
    listed = subprocess.run(collect, cwd=repo, capture_output=True, text=True, timeout=300).stdout
    ids = set(listed.split())
    for device in ("cpu", "gpu"):
        missing = [g.format(device=device) for g in GATED if g.format(device=device) not in ids]
        assert not missing, f"gated but not collected on {device}: {missing}"
