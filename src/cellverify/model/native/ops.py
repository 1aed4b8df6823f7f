"""conv1 through the native kernel, with its gradient, and the probe's counts of
its output, as TensorFlow functions."""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from cellverify.model.native.build import native_library

__all__ = ["channel_counts", "conv_rows", "conv_spans"]


def conv_rows(rows: Any, kernel: Any, bias: Any, *, relu: bool) -> Any:
    """conv1 on ``rows`` ``[n, window, features]``: ``[n, k1, window-2]``,
    channels first, ReLU applied if ``relu`` (else linear).

    ``kernel`` is ``[3, features, k1]`` (conv1's ``[1, 3, features, k1]``
    without its height), ``bias`` ``[k1]``.  The filter's and the bias's
    gradients come from one native pass; the input's, rarely asked for, from
    TensorFlow's own kernel.
    """
    ops = _ops()

    @tf.custom_gradient  # type: ignore[untyped-decorator]
    def run(x: Any, w: Any, b: Any) -> Any:
        y = ops.cellverify_conv_rows(x, w, b, relu=relu)

        def gradient(g: Any) -> tuple[Any, Any, Any]:
            dw, db = ops.cellverify_conv_rows_filter_grad(x, g, y, relu=relu)
            return _input_gradient(x, w, g, y, relu), dw, db

        return y, gradient

    return run(rows, tf.convert_to_tensor(kernel), tf.convert_to_tensor(bias))


def conv_spans(prices: Any, closes: Any, kernel: Any, bias: Any, *, relu: bool) -> Any:
    """conv1 on every window of a sequence, from the raw prices the windows
    are cut from: what :func:`conv_rows` gives for the windows
    ``prices[b, a, s : s + window] / closes[b, s, a]``, ``[batch*steps*assets,
    k1, window-2]`` in (batch, step, asset) order, within float32 rounding.

    ``prices`` ``[batch, assets, window + steps - 1, features]``, ``closes``
    ``[batch, steps, assets]`` (each window's latest close).  Prices are data:
    only the filter and the bias have gradients (docs/design.md, "Native conv1").
    """
    ops = _ops()

    @tf.custom_gradient  # type: ignore[untyped-decorator]
    def run(w: Any, b: Any) -> Any:
        y = ops.cellverify_conv_spans(prices, closes, w, b, relu=relu)

        def gradient(g: Any) -> tuple[Any, Any]:
            return tuple(ops.cellverify_conv_spans_filter_grad(prices, closes, g, y, relu=relu))

        return y, gradient

    return run(tf.convert_to_tensor(kernel), tf.convert_to_tensor(bias))


def channel_counts(activations: Any, *, level: float) -> Any:
    """Per channel of ``activations`` ``[rows, channels, positions]`` (conv1's
    native layout), the entries exactly 0 and those with ``|a| >= level``:
    ``[2, channels]`` int64, from one pass (docs/design.md, "Native conv1")."""
    return _ops().cellverify_channel_counts(activations, level=level)


def _ops() -> Any:
    ops = native_library().module
    if ops is None:
        raise RuntimeError(f"the native conv1 kernel is not available: {native_library().why}")
    return ops


def _input_gradient(x: Any, w: Any, g: Any, y: Any, relu: bool) -> Any:
    if relu:
        g = tf.where(y > 0, g, tf.zeros_like(g))
    shape = tf.shape(x)
    out = tf.transpose(g, [0, 2, 1])[:, None]  # [n, 1, window-2, k1]
    dx = tf.nn.conv2d_transpose(
        out, w[None], tf.stack([shape[0], 1, shape[1], shape[2]]), strides=1, padding="VALID"
    )
    return tf.reshape(dx, shape)
