"""Sweeps on local processes and on Dask: the same results, nothing lost when
a worker dies, resumable from a checkpoint, and stopped cleanly."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from cellverify import CellConfig, InvalidConfig, TrainConfig
from cellverify.cli import EXIT_INTERRUPTED, main
from cellverify.execution import DaskExecutor, LocalExecutor, SchedulerUnreachable
from cellverify.experiments.sweep import aggregate, parse_grid, run_sweep
from cellverify.model.factory import DEFAULT_FACTORY

from .cli_cells import SMALL_SHAPE_ARGS
from .fresh_process import run_fresh

pytestmark = pytest.mark.slow
distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")

ROOT = Path(__file__).resolve().parents[1]
#: A tiny cell and short runs: what is tested is the plumbing, not the learning.
CELL = CellConfig(assets=3, window=6, kernels=(2, 3, 1))
TRAIN = TrainConfig(batch_size=2, steps=1, train_steps=3, task="supervised")
GRID = parse_grid(["output_activation=relu,linear", "optimizer=adam,sgd"])
SEEDS = [0, 1, 2]


def sweep(executor, **options):
    return run_sweep(DEFAULT_FACTORY, GRID, CELL, TRAIN, SEEDS, executor=executor, **options)


def outcomes(raw):
    """Each run's outcome, by grid point and seed."""
    return {
        (json.dumps(r["values"], sort_keys=True), r["seed"]): (
            r["died"],
            r["death_step"],
            r["learned"],
        )
        for r in raw["runs"]
    }


@pytest.fixture(scope="module")
def local_result():
    with LocalExecutor(1) as executor:
        return sweep(executor)


def test_a_sweep_on_an_existing_cluster_gives_the_local_outcomes_with_a_worker_killed(
    local_result,
):
    """The real-cluster route (dask scheduler + dask worker, then
    --scheduler tcp://HOST:8786), with a cluster this test starts itself: the
    route's results are the local route's, a worker killed mid-sweep loses and
    duplicates nothing, and closing the executor leaves the user's cluster
    running.  One cluster for all three: each of its workers is a TensorFlow
    start-up.  (``local:N``, the cluster the executor starts itself, is run
    and stopped by the SIGTERM test below.)"""
    done = []
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        assert cluster.scheduler_address.startswith("tcp://")
        with DaskExecutor(cluster.scheduler_address) as executor:
            killed, survivor = executor.client.run(os.getpid).values()

            def kill_one_worker(finished, total):
                done.append(finished)
                if len(done) == 2:  # mid-sweep: two runs in, ten to go
                    os.kill(killed, signal.SIGKILL)

            result = sweep(executor, on_done=kill_one_worker)
        with distributed.Client(cluster) as client:
            assert survivor in client.run(os.getpid).values()  # the executor closed only itself
    assert len(result["runs"]) == len(GRID["output_activation"]) * len(GRID["optimizer"]) * 3
    assert len(outcomes(result)) == len(result["runs"])  # each (point, seed) once
    assert outcomes(result) == outcomes(local_result)
    assert aggregate([result])["points"] == aggregate([local_result])["points"]


def test_a_resumed_sweep_runs_only_what_the_checkpoint_lacks(tmp_path, local_result):
    path = tmp_path / "sweep.jsonl"
    stopped_after = 5

    def interrupt(finished, total):
        if finished == stopped_after:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), LocalExecutor(1) as executor:
        sweep(executor, checkpoint=str(path), on_done=interrupt)
    lines = path.read_text().splitlines()
    assert len(lines) == 1 + stopped_after  # the header, then each finished run
    with LocalExecutor(1) as executor:
        resumed = sweep(executor, checkpoint=str(path))
    total = len(local_result["runs"])
    assert (resumed["resumed"], resumed["executed"]) == (stopped_after, total - stopped_after)
    assert outcomes(resumed) == outcomes(local_result)
    with LocalExecutor(1) as executor:
        again = sweep(executor, checkpoint=str(path))
    assert (again["resumed"], again["executed"]) == (total, 0)


def test_a_checkpoint_of_another_sweep_is_refused(tmp_path, capsys):
    path = tmp_path / "sweep.jsonl"
    with LocalExecutor(1) as executor:
        sweep(executor, checkpoint=str(path))
    other = parse_grid(["output_activation=relu,linear", "optimizer=adam,nadam"])
    with (
        pytest.raises(InvalidConfig, match="was written by another sweep: grid"),
        LocalExecutor(1) as ex,
    ):
        run_sweep(DEFAULT_FACTORY, other, CELL, TRAIN, SEEDS, executor=ex, checkpoint=str(path))
    argv = ["sweep", "--assets", "3", "--window", "6", "--kernels", "2,3,1", "--seeds", "1",
            "--checkpoint", str(path), "--jobs", "1"]  # fmt: skip
    assert main(argv) == 2
    assert "was written by another sweep" in capsys.readouterr().err


def test_a_checkpoint_merges_like_a_report(tmp_path, local_result):
    path = tmp_path / "sweep.jsonl"
    with LocalExecutor(1) as executor:
        sweep(executor, checkpoint=str(path))
    merged = tmp_path / "merged.json"
    assert main(["sweep", "--merge", str(path), "--json", str(merged)]) == 0
    assert json.loads(merged.read_text())["points"] == aggregate([local_result])["points"]


def test_an_address_that_refuses_is_a_clear_error(capsys):
    with pytest.raises(
        SchedulerUnreachable, match=r"cannot reach the Dask scheduler at 'tcp://127\.0\.0\.1:9'"
    ):
        DaskExecutor("tcp://127.0.0.1:9", timeout=3)
    argv = ["sweep", "--scheduler", "tcp://127.0.0.1:9", "--seeds", "1", "--assets", "3",
            "--window", "6", "--kernels", "2,3,1"]  # fmt: skip
    start = time.monotonic()
    assert main(argv) == 2
    assert time.monotonic() - start < 60
    err = capsys.readouterr().err
    assert "cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'" in err
    assert "Traceback" not in err


def test_a_scheduler_that_never_answers_times_out_with_the_address():
    """A socket that accepts connections and then says nothing."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    threading.Thread(target=lambda: server.accept(), daemon=True).start()
    address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
    start = time.monotonic()
    with pytest.raises(SchedulerUnreachable, match=f"at '{address}' within 3 s"):
        DaskExecutor(address, timeout=3)
    assert time.monotonic() - start < 30
    server.close()


def _session_processes(session: int) -> list[int]:
    """Processes still alive in a session (every child it started)."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session and fields[0] != "Z":  # field 6 of stat: session id
            alive.append(int(entry.name))
    return alive


SMALL = [*SMALL_SHAPE_ARGS, "--steps", "1"]
COMMANDS = {
    "sweep-local": ["sweep", *SMALL, "--train-steps", "40", "--seeds", "20", "--jobs", "2"],
    "sweep-dask": [
        "sweep",
        *SMALL,
        "--train-steps",
        "40",
        "--seeds",
        "20",
        "--scheduler",
        "local:2",
    ],
    "diagnose": ["diagnose", *SMALL, "--train-steps", "300", "--seeds", "8", "--jobs", "2"],
    "check": ["check", "--profile", "thorough", "--jobs", "2"],
}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_sigterm_stops_every_worker_flushes_the_checkpoint_and_exits_non_zero(tmp_path, name):
    checkpoint = tmp_path / "sweep.jsonl"
    command = [sys.executable, "-m", "cellverify.cli", *COMMANDS[name]]
    if name.startswith("sweep"):
        command += ["--checkpoint", str(checkpoint)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True, **pipes)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        working = len(_session_processes(process.pid)) >= 3  # the command and two workers
        if working and (not name.startswith("sweep") or len(_lines(checkpoint)) >= 2):
            break
        time.sleep(0.5)
    time.sleep(3)  # let the workers get into their runs
    assert process.poll() is None, process.communicate()
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == EXIT_INTERRUPTED, err[-2000:]
    assert "interrupted" in err
    time.sleep(2)
    assert _session_processes(process.pid) == []  # no worker outlives the command
    for line in _lines(checkpoint):
        json.loads(line)  # every line whole: nothing half-written


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@pytest.mark.parametrize("command", ["diagnose", "sweep"])
def test_a_bad_factory_fails_in_the_starting_workers_before_any_run(command, capsys):
    argv = [command, *SMALL_SHAPE_ARGS, "--seeds", "2", "--jobs", "2", "--cell", "builtins:nope"]
    assert main(argv) == 2
    assert "module 'builtins' has no attribute 'nope'" in capsys.readouterr().err


def test_local_workers_started_for_a_factory_leave_tensorflow_to_themselves(tmp_path):
    """Loading the factory in the command's process imported TensorFlow there
    first, and only then in the workers: one start-up after the other."""
    code = (
        "from cellverify.execution import LocalExecutor\n"
        "from cellverify.training.runs import start_worker\n"
        "executor = LocalExecutor(2)\n"
        "executor.start(start_worker, 'cellverify.cell:conv_rnn_cell')\n"
        "executor.close()"
    )
    words, err = run_fresh(code, tmp_path)
    assert words[-1:] == ["False"], err
