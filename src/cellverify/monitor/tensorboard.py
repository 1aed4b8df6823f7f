"""The monitor's TensorBoard output: gradient scalars, update ratios, findings as text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

__all__ = ["TensorBoardLog"]


def _summary(tag: str, value: float | str, step: int, plugin: str) -> None:
    """What tf.summary.scalar and tf.summary.text write, without the
    tensorboard package (tensorflow-cpu does not bring it)."""
    from tensorflow.core.framework import summary_pb2

    data = summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin)
    metadata = summary_pb2.SummaryMetadata(plugin_data=data)
    tensor = tf.constant(value, dtype=tf.float32 if plugin == "scalars" else tf.string)
    tf.summary.write(tag, tensor, step=step, metadata=metadata)


class TensorBoardLog:
    """Summaries under ``log_dir``, or nothing when it is None."""

    def __init__(self, log_dir: str | None) -> None:
        self._writer: Any = tf.summary.create_file_writer(log_dir) if log_dir else None

    def gradients(self, step: int, names: Sequence[str], r: Mapping[str, np.ndarray]) -> None:
        if self._writer is None:
            return
        with self._writer.as_default():
            for i, name in enumerate(names):
                _summary(f"grad_norm/{name}", float(r["grad_norm"][i]), step, "scalars")
                share = float(r["grad_zero_fraction"][i])
                _summary(f"grad_zero_fraction/{name}", share, step, "scalars")

    def ratios(self, step: int, names: Sequence[str], ratio: np.ndarray) -> None:
        if self._writer is None:
            return
        with self._writer.as_default():
            for i, name in enumerate(names):
                _summary(f"update_ratio/{name}", float(ratio[i]), step, "scalars")

    def text(self, name: str, message: str, step: int) -> None:
        if self._writer is None:
            return
        with self._writer.as_default():
            _summary(f"cellverify/{name}", message, step, "text")

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()
