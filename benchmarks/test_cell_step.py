"""Timings of the cell step (docs/design.md, 'Benchmarks'): ``pytest --benchmark-only``.

Tracing and XLA compilation happen in a warm-up call outside the timed
region; each timed call ends by synchronising the device.
"""

from __future__ import annotations

import pytest

from cellverify.model.flops import (
    TRAIN_FLOP_FACTOR,
    floor_matmul_shape,
    lstm_step_flops,
    step_flops,
)
from cellverify.training.devices import benchmark_devices, synchronize

from . import workloads as w

DEVICES = [
    pytest.param(d, id=d.name, marks=[] if d.available else pytest.mark.skip(reason=d.reason))
    for d in benchmark_devices()
]


def flops(impl, shape, batch=None):
    """Forward FLOPs of one step of ``impl`` at ``shape``."""
    config, default_batch = w.SHAPES[shape]
    batch = batch or default_batch
    if impl == "lstm":
        return lstm_step_flops(config, batch, w.LSTM_UNITS)
    return step_flops(config, batch)["total"]


def timed(benchmark, device, build):
    import tensorflow as tf

    with tf.device(device.tf_name):
        workload = build()
        workload.run()  # trace / compile outside the timed region
        synchronize(device)

        def once():
            result = workload.run()
            synchronize(device)
            return result

        benchmark.extra_info.update(workload.info, device=device.name)
        benchmark(once)
    return workload


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", w.MODES)
@pytest.mark.parametrize("shape", list(w.SHAPES))
@pytest.mark.parametrize("impl", ["cell", "lstm"])
def test_forward_step(benchmark, device, mode, shape, impl):
    benchmark.group = f"forward step, {shape}"
    benchmark.extra_info["flops"] = flops(impl, shape)
    timed(benchmark, device, lambda: w.forward_step(impl, shape, mode))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", w.MODES)
@pytest.mark.parametrize("shape", list(w.SHAPES))
@pytest.mark.parametrize("impl", ["plain", "fast", "lstm"])
def test_train_step(benchmark, device, mode, shape, impl):
    benchmark.group = f"training step, {shape}"
    benchmark.extra_info["flops"] = TRAIN_FLOP_FACTOR * flops(impl, shape)
    timed(benchmark, device, lambda: w.train_step(impl, shape, mode))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", w.MODES)
@pytest.mark.parametrize("steps", [1, 8, 32, 100])
@pytest.mark.parametrize("impl", ["plain", "fast"])
def test_sequence(benchmark, device, mode, steps, impl):
    benchmark.group = f"sequence forward, question shape, {steps} steps"
    config, batch = w.SHAPES["question"]
    benchmark.extra_info["flops"] = steps * step_flops(config, batch)["total"]
    timed(benchmark, device, lambda: w.sequence_forward(impl, mode, steps))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", list(w.SHAPES))
def test_floor_matmul(benchmark, device, shape):
    benchmark.group = "floor: conv2 as one matmul"
    config, batch = w.SHAPES[shape]
    m, k, n = floor_matmul_shape(config, batch)
    benchmark.extra_info["flops"] = 2 * m * k * n
    timed(benchmark, device, lambda: w.floor_matmul(m, k, n))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("batch", [25, 50, 100, 200])
def test_train_step_batch_growth(benchmark, device, batch):
    benchmark.group = "training step, fast path, tf.function, by batch"
    config, _ = w.SHAPES["question"]
    benchmark.extra_info["flops"] = TRAIN_FLOP_FACTOR * step_flops(config, batch)["total"]

    timed(benchmark, device, lambda: w.train_step("fast", "question", "function", batch=batch))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("record", ["bare", "recorded", "probed", "probe", "batch"])
def test_recording_overhead(benchmark, device, record):
    benchmark.group = "a diagnose run's parts (question shape, batch 100, 4 steps)"
    timed(benchmark, device, lambda: w.recorded_training(record))
