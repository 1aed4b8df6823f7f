"""Floating-point work of the cell, for the performance floor (no TensorFlow).

Counts multiply-adds as 2 FLOPs; activations, softmax and bias adds are left
out (they are a few percent at the question's shape).
"""

from __future__ import annotations

from cellverify.config import CellConfig

__all__ = ["TRAIN_FLOP_FACTOR", "floor_matmul_shape", "lstm_step_flops", "step_flops"]

#: A training step costs about 3 forward passes: the forward, and a backward
#: that computes gradients for both the inputs and the weights of each layer.
TRAIN_FLOP_FACTOR = 3


def step_flops(config: CellConfig, batch: int) -> dict[str, int]:
    """FLOPs of one forward cell step, per layer and in total."""
    k1, k2, k3 = config.kernels
    positions = batch * config.assets
    conv1 = 2 * positions * (config.window - 2) * k1 * 3 * config.features
    conv2 = 2 * positions * k2 * (config.window - 2) * k1
    conv3 = 2 * positions * k3 * (k2 + 1)
    return {"conv1": conv1, "conv2": conv2, "conv3": conv3, "total": conv1 + conv2 + conv3}


def floor_matmul_shape(config: CellConfig, batch: int) -> tuple[int, int, int]:
    """(m, k, n) of the matmul that is conv2, the step's largest piece of work."""
    k1, k2, _ = config.kernels
    return batch * config.assets, (config.window - 2) * k1, k2


def lstm_step_flops(config: CellConfig, batch: int, units: int) -> int:
    """FLOPs of one forward step of a per-asset LSTM with ``units`` units and a
    linear score: four gates over [window*features + units] inputs."""
    rows = batch * config.assets
    inputs = config.window * config.features + units
    return 2 * rows * inputs * 4 * units + 2 * rows * units
