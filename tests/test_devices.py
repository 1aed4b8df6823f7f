"""Device selection for benchmarks, tested on CPU with stated device lists."""

from __future__ import annotations

from cellverify import CellConfig
from cellverify.model.flops import floor_matmul_shape, step_flops
from cellverify.training.devices import benchmark_devices, synchronize


def test_cpu_only_machine_offers_a_skipped_gpu_with_the_reason():
    cpu, gpu = benchmark_devices(["CPU"])
    assert (cpu.name, cpu.tf_name, cpu.available) == ("cpu", "/CPU:0", True)
    assert (gpu.name, gpu.available) == ("gpu", False)
    assert "no GPU visible to TensorFlow" in gpu.reason


def test_a_visible_gpu_is_offered_for_timing():
    _, gpu = benchmark_devices(["CPU", "GPU", "GPU"])
    assert gpu.available
    assert gpu.tf_name == "/GPU:0"
    assert gpu.reason == ""


def test_this_machine_lists_its_own_devices():
    devices = {d.name: d for d in benchmark_devices()}
    assert devices["cpu"].available
    synchronize(devices["cpu"])  # a no-op on CPU, and must not fail


def test_step_flops_at_the_questions_shape():
    flops = step_flops(CellConfig(), batch=100)
    # conv1: 100*15 positions x 98 x 5 kernels x 9 taps x 2
    assert flops["conv1"] == 2 * 1500 * 98 * 5 * 9
    # conv2: 100*15 positions x 20 kernels x 490 inputs x 2
    assert flops["conv2"] == 2 * 1500 * 20 * 490
    assert flops["conv3"] == 2 * 1500 * 21
    assert flops["total"] == flops["conv1"] + flops["conv2"] + flops["conv3"]
    assert floor_matmul_shape(CellConfig(), 100) == (1500, 490, 20)
