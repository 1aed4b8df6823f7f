"""Work of the cell, for the performance floor (no TensorFlow): FLOPs and bytes.

Counts multiply-adds as 2 FLOPs; activations, softmax and bias adds are left
out (they are a few percent at the question's shape).  Bytes are each layer's
compulsory float32 traffic - the tensors it must read and write once, as a
fused kernel would - so that ``max(flops / matmul rate, bytes / bandwidth)``
is a floor no implementation can beat (docs/performance.md, 'The floor').
"""

from __future__ import annotations

from dataclasses import dataclass

from cellverify.config import CellConfig

__all__ = [
    "FLOAT32_BYTES",
    "TRAIN_FLOP_FACTOR",
    "LayerWork",
    "floor_matmul_shape",
    "layer_work",
    "lstm_step_flops",
    "step_flops",
]

FLOAT32_BYTES = 4

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


@dataclass(frozen=True)
class LayerWork:
    """One layer in one direction of a training step: its FLOPs and bytes."""

    layer: str
    direction: str  # "forward" or "backward"
    flops: int
    bytes: int

    def floor_seconds(self, flops_per_second: float, bytes_per_second: float) -> float:
        """The roofline floor: the slower of computing and moving the data."""
        return max(self.flops / flops_per_second, self.bytes / bytes_per_second)


def layer_work(config: CellConfig, batch: int, parameters: int) -> list[LayerWork]:
    """Each layer's work in one training step of one cell step at ``batch``.

    conv1 backward needs no input gradient (its input is data), only the
    activation's derivative and the filter's: it reads conv1's output, the
    gradient arriving at it, and the input.  conv2 backward computes both its
    filter's and its input's gradient.  ``update`` is the optimizer (Adam: read
    weight, gradient and two moments, write three)."""
    k1, k2, _ = config.kernels
    rows = batch * config.assets
    x = rows * config.window * config.features
    h1 = rows * (config.window - 2) * k1
    h2 = rows * k2
    flops = step_flops(config, batch)
    b = FLOAT32_BYTES
    return [
        LayerWork("conv1", "forward", flops["conv1"], b * (x + h1)),
        LayerWork("conv2", "forward", flops["conv2"], b * (h1 + h2)),
        LayerWork("conv3+softmax", "forward", flops["conv3"], b * (h2 + 3 * rows)),
        LayerWork("conv3+softmax", "backward", 2 * flops["conv3"], b * (2 * h2 + 3 * rows)),
        LayerWork("conv2", "backward", 2 * flops["conv2"], b * (2 * h1 + 2 * h2)),
        LayerWork("conv1", "backward", flops["conv1"], b * (x + 2 * h1)),
        LayerWork("update", "backward", 10 * parameters, b * 7 * parameters),
    ]
