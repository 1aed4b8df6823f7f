"""The kind of machine a benchmark ran on, which names its baseline file.

Timings are compared only within a kind: the same benchmarks ran 3-6x
slower on an AVX2-only machine than on one with AVX-512, under the same
name of CPU.  A kind is the CPU's model and widest vector extension
(``cpu-amd-epyc-avx512``) or, where a GPU is visible, the GPU's name
(``gpu-nvidia-a10g``).
"""

from __future__ import annotations

import platform
import re
from pathlib import Path

__all__ = ["cpu_flags", "cpu_model", "kind_of", "machine_kind", "visible_gpus"]

#: Vector extensions that set the speed of TensorFlow's CPU kernels, widest first.
VECTOR_EXTENSIONS = ("avx512f", "avx2", "avx")
_CPUINFO = Path("/proc/cpuinfo")


def _cpuinfo_field(name: str) -> str:
    if not _CPUINFO.exists():
        return ""
    for line in _CPUINFO.read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return ""


def cpu_model() -> str:
    """The CPU's model name, as the OS reports it."""
    return _cpuinfo_field("model name") or platform.processor() or platform.machine()


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (empty where the OS does not list them)."""
    return frozenset(_cpuinfo_field("flags").split())


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def kind_of(model: str, flags: frozenset[str], gpus: list[str]) -> str:
    """The kind of a machine with this CPU, these flags and these GPUs."""
    if gpus:
        return f"gpu-{_slug(gpus[0])}"
    widest = next((f for f in VECTOR_EXTENSIONS if f in flags), "novector")
    return f"cpu-{_slug(model)}-{widest.removesuffix('f')}"


def visible_gpus() -> list[str]:
    """The names of the GPUs TensorFlow sees (imports TensorFlow)."""
    import tensorflow as tf

    return [
        tf.config.experimental.get_device_details(g).get("device_name", g.name)
        for g in tf.config.list_physical_devices("GPU")
    ]


def machine_kind(gpus: list[str] | None = None) -> str:
    """This machine's kind; ``gpus`` are the visible GPUs' names (none: CPU)."""
    return kind_of(cpu_model(), cpu_flags(), gpus or [])
