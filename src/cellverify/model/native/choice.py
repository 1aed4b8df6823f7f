"""Whether the fast path runs conv1 through the native kernel or TensorFlow's.

Kept apart from the kernel so that the rule can be tested on any machine: a
GPU runs TensorFlow's kernels (the native one is CPU code), XLA cannot
compile a custom op, and a dropout layer after conv1 draws its mask over
TensorFlow's channels-last layout, which the native kernel does not write.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cellverify.config import CellConfig

__all__ = ["CONV1_KERNELS", "NATIVE_ENV", "Conv1Choice", "choose_conv1"]

#: What a caller may ask for: the native kernel where it applies ("auto"),
#: the native kernel or an error ("native"), or TensorFlow's ("stock").
CONV1_KERNELS = ("auto", "native", "stock")
#: ``CELLVERIFY_NATIVE=0`` makes "auto" choose TensorFlow's kernels.
NATIVE_ENV = "CELLVERIFY_NATIVE"
#: Input channels (``features``) the native kernel is compiled for.
NATIVE_MAX_FEATURES = 8


@dataclass(frozen=True)
class Conv1Choice:
    native: bool
    why: str


def _not_applicable(config: CellConfig, gpus: int, jit_compile: bool) -> str | None:
    if gpus:
        return f"{gpus} GPU(s) visible: TensorFlow's kernels run there"
    if jit_compile:
        return "XLA compiles TensorFlow's kernels, not a custom op"
    if 1 in config.dropout_after:
        return "a dropout layer after conv1 masks TensorFlow's channels-last layout"
    if config.features > NATIVE_MAX_FEATURES:
        return (
            f"the native kernel takes up to {NATIVE_MAX_FEATURES} features; "
            f"this cell has {config.features}"
        )
    return None


def choose_conv1(
    config: CellConfig,
    *,
    request: str = "auto",
    gpus: int | None = None,
    jit_compile: bool = False,
) -> Conv1Choice:
    """The kernel conv1 runs on, and why.  ``gpus`` defaults to the number
    TensorFlow sees; "native" raises ``ValueError`` where it cannot be had."""
    if request not in CONV1_KERNELS:
        raise ValueError(f"conv1 must be one of {', '.join(CONV1_KERNELS)}. Received: {request!r}")
    if request == "stock":
        return Conv1Choice(False, "TensorFlow's kernels were asked for")
    if request == "auto" and os.environ.get(NATIVE_ENV) == "0":
        return Conv1Choice(False, f"{NATIVE_ENV}=0")
    if gpus is None:
        import tensorflow as tf

        gpus = len(tf.config.list_logical_devices("GPU"))
    why = _not_applicable(config, gpus, jit_compile)
    if why is None:
        from cellverify.model.native.build import native_library

        library = native_library()
        why = None if library.available else library.why
    if why is None:
        return Conv1Choice(True, "the native kernel")
    if request == "native":
        raise ValueError(f"conv1='native' cannot run here: {why}")
    return Conv1Choice(False, why)
