"""The step's ratios to its roofline floor and to the LSTM, from timings
taken in turns (benchmarks/paired.py says why); docs/performance.md, 'The floor'.

Each test is one pytest-benchmark round of the whole measurement, so that it
runs with ``--benchmark-only`` and lands in the JSON; the per-round medians
are in ``extra_info``.
"""

from __future__ import annotations

import pytest

from cellverify.model.flops import floor_matmul_shape, layer_work, step_flops

from . import recording
from . import roofline as r
from . import workloads as w
from .paired import in_turns

ROUNDS = 7
CALLS = 40
#: A diagnose run's parts take 2-3 s a call: one call a round, fewer rounds.
RUN_ROUNDS = 5


def _record(benchmark, measure):
    result = {}

    def once():
        result.update(measure())

    benchmark.pedantic(once, rounds=1, iterations=1)
    benchmark.extra_info["medians"] = result
    return result


@pytest.mark.parametrize("mode", ["function", "xla"])
def test_step_against_lstm_in_turns(benchmark, mode):
    benchmark.group = "in turns: training step, question shape"
    workloads = {impl: w.train_step(impl, "question", mode) for impl in ("fast", "lstm")}
    _record(benchmark, lambda: in_turns(workloads, ROUNDS, CALLS))


def test_step_against_its_roofline_in_turns(benchmark):
    benchmark.group = "in turns: training step and its layers"
    config, batch = w.SHAPES["question"]
    m, k, n = floor_matmul_shape(config, batch)
    workloads = {
        "step": w.train_step("fast", "question", "function"),
        "matmul": w.floor_matmul(m, k, n),
        "dispatch": r.dispatch(),
        **{f"stream {size}": r.stream(size) for size in r.STREAM_BYTES},
        **{f"{layer} {direction}": r.layer_part(layer, direction) for layer, direction in r.PARTS},
    }
    parameters = workloads["conv1 forward"].info["parameters"]
    benchmark.extra_info["work"] = {
        f"{x.layer} {x.direction}": {"flops": x.flops, "bytes": x.bytes}
        for x in layer_work(config, batch, parameters)
    }
    benchmark.extra_info["matmul_flops"] = 2 * m * k * n
    benchmark.extra_info["stream_bytes"] = {
        s: workloads[f"stream {s}"].info["bytes"] for s in r.STREAM_BYTES
    }
    benchmark.extra_info["step_flops"] = step_flops(config, batch)["total"]
    _record(benchmark, lambda: in_turns(workloads, ROUNDS, CALLS))


def test_diagnose_run_against_its_updates_in_turns(benchmark):
    """In a spawned process of one thread, as ``diagnose``'s workers run."""
    from cellverify.execution import spawn_pool

    benchmark.group = "in turns: a diagnose run and its parts"

    def measure():
        pool = spawn_pool(1)
        try:
            return pool.submit(w.diagnose_run_in_turns, RUN_ROUNDS).result()
        finally:
            pool.shutdown()

    _record(benchmark, measure)


#: The recorded step's parts take 10-13 ms a call.
RECORDING_ROUNDS = 10
RECORDING_CALLS = 30


def test_recording_parts_in_turns(benchmark):
    """In a spawned process of one thread, as ``diagnose``'s workers run."""
    from cellverify.execution import spawn_pool

    benchmark.group = "in turns: what each part of the recording costs"

    def measure():
        pool = spawn_pool(1)
        try:
            job = pool.submit(recording.recording_parts_in_turns, RECORDING_ROUNDS, RECORDING_CALLS)
            return job.result()
        finally:
            pool.shutdown()

    _record(benchmark, measure)
