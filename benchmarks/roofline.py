"""Each layer of the fast path's training step, timed alone, for the roofline.

At the question's shape (batch 100, one step per sequence, ReLU everywhere,
as asked), each workload runs the very kernels the step's autodiff runs for
that layer, on tensors made outside the timed region: forward, conv1 is
oneDNN's fused convolution, conv2 a matmul; backward, conv1 is ReluGrad,
the filter's gradient and the bias's, conv2 its two matmuls.  Summed, they
account for the step; what the step costs beyond the sum is glue and
dispatch (docs/performance.md, 'The floor').
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf

from cellverify import CellConfig, ConvRNNCell
from cellverify.model import fresh_session

from .workloads import Workload, inputs

#: (layer, direction) pairs in the order data flows through a training step.
PARTS = (
    ("conv1", "forward"),
    ("conv2", "forward"),
    ("conv3+softmax", "forward"),
    ("conv3+softmax", "backward"),
    ("conv2", "backward"),
    ("conv1", "backward"),
    ("update", "backward"),
)
#: Sizes of the streaming copy that measures bandwidth: conv1's output (what
#: the step's largest tensors weigh, resident in cache) and one far larger
#: than any cache, for main memory.
STREAM_BYTES = {"conv1-sized": 0, "64MB": 64 * 2**20}


class _Tensors:
    """The step's tensors at the question's shape, made once."""

    def __init__(self) -> None:
        fresh_session()
        self.config = c = CellConfig()
        self.cell = cell = ConvRNNCell(c)
        x = inputs(c, 100, 1)[0]
        cell.build((None, c.assets, c.window, c.features))
        self.x = tf.reshape(x, [-1, c.assets, c.window, c.features])
        k1, k2, _ = c.kernels
        self.kernel2 = tf.reshape(cell.conv2.kernel, [(c.window - 2) * k1, k2])
        self.h1 = cell.conv1(self.x)
        self.rows = tf.reshape(self.h1, [-1, (c.window - 2) * k1])
        self.pre2 = self.rows @ self.kernel2 + cell.conv2.bias
        self.h2 = tf.nn.relu(self.pre2)
        self.state = cell.get_initial_state(100)[0]
        self.upstream2 = tf.ones_like(self.h2) * 1e-3
        self.upstream1 = tf.ones_like(self.h1) * 1e-3

    def head(self) -> Any:
        """conv3, the state channel and the softmax: ``[batch, assets]``."""
        c, cell = self.config, self.cell
        w3 = tf.reshape(cell.conv3.kernel, [-1])
        g = tf.reshape(tf.linalg.matvec(self.h2, w3[:-1]) + cell.conv3.bias[0], [-1, c.assets])
        return tf.nn.softmax(tf.nn.relu(g + w3[-1] * self.state), axis=-1)


def _conv1_backward(t: _Tensors) -> Callable[[], Any]:
    shape = tf.shape(t.cell.conv1.kernel)

    def run() -> Any:
        d_pre = tf.raw_ops.ReluGrad(gradients=t.upstream1, features=t.h1)
        d_kernel = tf.raw_ops.Conv2DBackpropFilter(
            input=t.x, filter_sizes=shape, out_backprop=d_pre, strides=[1, 1, 1, 1],
            padding="VALID",
        )  # fmt: skip
        return d_kernel, tf.reduce_sum(d_pre, axis=[0, 1, 2])

    return run


def _conv2_backward(t: _Tensors) -> Callable[[], Any]:
    def run() -> Any:
        d_pre = tf.raw_ops.ReluGrad(gradients=t.upstream2, features=t.h2)
        d_kernel = tf.matmul(t.rows, d_pre, transpose_a=True)
        d_rows = tf.matmul(d_pre, t.kernel2, transpose_b=True)
        return d_kernel, d_rows, tf.reduce_sum(d_pre, axis=0)

    return run


def _head_backward(t: _Tensors) -> Callable[[], Any]:
    h2 = t.h2

    def run() -> Any:
        with tf.GradientTape() as tape:
            tape.watch(h2)
            out = t.head()
        return tape.gradient(out, [h2, *t.cell.conv3.trainable_variables])

    return run


def _update(t: _Tensors) -> Callable[[], Any]:
    variables = t.cell.trainable_variables
    grads = [tf.ones_like(v) * 1e-3 for v in variables]
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build(variables)

    def run() -> Any:
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        return optimizer.iterations

    return run


def layer_part(layer: str, direction: str) -> Workload:
    """One (layer, direction) of :data:`PARTS`, compiled with ``tf.function``."""
    t = _Tensors()
    runs: dict[tuple[str, str], Callable[[], Any]] = {
        ("conv1", "forward"): lambda: t.cell.conv1(t.x),
        ("conv1", "backward"): _conv1_backward(t),
        ("conv2", "forward"): lambda: tf.nn.relu(t.rows @ t.kernel2 + t.cell.conv2.bias),
        ("conv3+softmax", "forward"): t.head,
        ("conv3+softmax", "backward"): _head_backward(t),
        ("conv2", "backward"): _conv2_backward(t),
        ("update", "backward"): _update(t),
    }
    parameters = sum(int(tf.size(v)) for v in t.cell.trainable_variables)
    info = {"layer": layer, "direction": direction, "parameters": parameters}
    return Workload(tf.function(runs[(layer, direction)]), info)


def stream(size: str) -> Workload:
    """Read and write a float32 tensor once (``x * c``): bandwidth, bytes moved = 2x its size."""
    nbytes = STREAM_BYTES[size] or _conv1_output_bytes()
    x = tf.random.stateless_uniform([nbytes // 4], seed=[0, 3])
    return Workload(tf.function(lambda: x * 1.0001), {"bytes": 2 * nbytes})


def dispatch() -> Workload:
    """A ``tf.function`` that does nothing: each timed call's fixed cost."""
    return Workload(tf.function(lambda: tf.constant(0.0)), {})


def _conv1_output_bytes() -> int:
    c = CellConfig()
    return 4 * 100 * c.assets * (c.window - 2) * c.kernels[0]
