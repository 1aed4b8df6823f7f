"""The roofline of the training step (docs/performance.md, 'The floor'):
each layer alone, the matmul rate, and the bandwidth, in one run."""

from __future__ import annotations

import pytest

from cellverify import CellConfig
from cellverify.model.flops import layer_work
from cellverify.training.devices import benchmark_devices

from . import roofline as r
from .test_cell_step import timed

CPU = [d for d in benchmark_devices() if d.name == "cpu"]


@pytest.mark.parametrize("device", CPU, ids=lambda d: d.name)
@pytest.mark.parametrize(("layer", "direction"), r.PARTS)
def test_layer(benchmark, device, layer, direction):
    benchmark.group = "roofline: each layer of the training step alone"
    workload = timed(benchmark, device, lambda: r.layer_part(layer, direction))
    work = {
        (w.layer, w.direction): w
        for w in layer_work(CellConfig(), 100, workload.info["parameters"])
    }
    this = work[(layer, direction)]
    benchmark.extra_info.update(flops=this.flops, bytes=this.bytes)


@pytest.mark.parametrize("device", CPU, ids=lambda d: d.name)
@pytest.mark.parametrize("size", list(r.STREAM_BYTES))
def test_stream(benchmark, device, size):
    benchmark.group = "roofline: bandwidth"
    timed(benchmark, device, lambda: r.stream(size))


@pytest.mark.parametrize("device", CPU, ids=lambda d: d.name)
def test_dispatch(benchmark, device):
    benchmark.group = "roofline: bandwidth"
    timed(benchmark, device, r.dispatch)
