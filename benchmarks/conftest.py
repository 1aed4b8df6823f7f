"""Benchmarks run only with ``pytest --benchmark-only``; a plain ``pytest`` skips them.

Machine, TensorFlow build and device information go into the benchmark JSON.
"""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config, items):
    if config.getoption("benchmark_only", default=False):
        return
    skip = pytest.mark.skip(reason="benchmarks run with pytest --benchmark-only")
    for item in items:
        if "benchmark" in getattr(item, "fixturenames", ()):
            item.add_marker(skip)


def pytest_benchmark_update_machine_info(config, machine_info):
    import tensorflow as tf

    import cellverify
    from cellverify.training.devices import benchmark_devices

    from .machine import visible_gpus

    build = tf.sysconfig.get_build_info()
    machine_info["tensorflow"] = {
        "version": tf.__version__,
        "cuda": build.get("cuda_version"),
        "cudnn": build.get("cudnn_version"),
        "is_cuda_build": build.get("is_cuda_build"),
    }
    machine_info["devices"] = [
        {"name": d.name, "tf_name": d.tf_name, "available": d.available}
        for d in benchmark_devices()
    ]
    machine_info["gpus"] = visible_gpus()
    machine_info["cpu_count"] = os.cpu_count()
    machine_info["cellverify"] = cellverify.__version__
