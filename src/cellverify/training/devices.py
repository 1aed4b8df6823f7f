"""Which devices to time on, and how to wait for them (benchmarks).

The CPU is always there; a GPU parameter is offered on every machine and
skipped, with the reason, where TensorFlow sees no GPU.  The selection logic
takes the visible device types as an argument, so it is tested on CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Device", "benchmark_devices", "synchronize", "visible_device_types"]


@dataclass(frozen=True)
class Device:
    """A device to time on: ``name`` for test ids, ``tf_name`` for ``tf.device``."""

    name: str
    tf_name: str
    available: bool
    reason: str = ""


def visible_device_types() -> list[str]:
    """Device types TensorFlow sees (``CPU``, ``GPU``, ...)."""
    import tensorflow as tf

    return [d.device_type for d in tf.config.list_physical_devices()]


def benchmark_devices(visible: Sequence[str] | None = None) -> list[Device]:
    """The CPU, and the first GPU (available only if one is visible)."""
    types = list(visible) if visible is not None else visible_device_types()
    has_gpu = "GPU" in types
    return [
        Device("cpu", "/CPU:0", "CPU" in types, "" if "CPU" in types else "no CPU visible"),
        Device(
            "gpu",
            "/GPU:0",
            has_gpu,
            ""
            if has_gpu
            else "no GPU visible to TensorFlow (tf.config.list_physical_devices('GPU') is empty)",
        ),
    ]


def synchronize(device: Device) -> None:
    """Wait until queued work on ``device`` is done, so the clock stops after it.

    CPU kernels finish before an op returns; a GPU's run asynchronously.
    """
    if device.name == "gpu":
        import tensorflow as tf

        tf.test.experimental.sync_devices()
