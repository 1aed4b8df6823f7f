"""Precision broken: numbers that float16 cannot hold, float32 written into a
graph, a variance that float16 rounds away, a gradient wrong in float16 only.

Each class changes one thing of the shipped cell (docs/invariants.md,
"Mutation testing"); each is right in float32, so only ``mixed_precision``
sees it.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf
from keras import ops

from cellverify.checks.mutants.base import register
from cellverify.model.cell import ConvRNNCell

__all__ = ["Float16Overflow", "Float32Constant", "HalfGradientScaled", "VarianceByHand"]


@register
class Float16Overflow(ConvRNNCell):
    """Scales the logits by 1e5 and back: exact in float32, +inf in float16
    (largest finite 65504), so the output is NaN there."""

    def logits(self, features: Any, state: Any, training: Any) -> Any:
        return super().logits(features, state, training) * 1e5 / 1e5


@register
class Float32Constant(ConvRNNCell):
    """Adds a float32 constant to the logits: a dtype clash in float16."""

    def logits(self, features: Any, state: Any, training: Any) -> Any:
        logits = super().logits(features, state, training)
        return tf.add(logits, tf.zeros(tf.shape(logits), tf.float32))


@register
class VarianceByHand(ConvRNNCell):
    """Standardises each window by a variance written as ``E[x^2] - E[x]^2``:
    prices near 1 with moves of 1 % have a variance of 1e-4, which float32
    resolves and float16 (spacing 1e-3 near 1) rounds to 0 or 1e-3."""

    def step_activations(self, inputs: Any, state: Any, training: Any = None) -> Any:
        mean = ops.mean(inputs, axis=(2, 3), keepdims=True)
        variance = ops.mean(inputs * inputs, axis=(2, 3), keepdims=True) - mean * mean
        scaled = (inputs - mean) / ops.sqrt(ops.abs(variance) + 1e-4)
        return super().step_activations(scaled, state, training)


@tf.custom_gradient  # type: ignore[untyped-decorator]
def _half_gradient_scaled(x: Any) -> Any:
    def grad(dy: Any) -> Any:
        return dy * (1024.0 if dy.dtype == tf.float16 else 1.0)

    return tf.identity(x), grad


@register
class HalfGradientScaled(ConvRNNCell):
    """A custom gradient that scales by 2**10 in float16 (a loss scale applied
    twice), and is right in float32."""

    def logits(self, features: Any, state: Any, training: Any) -> Any:
        return _half_gradient_scaled(
            ops.convert_to_tensor(super().logits(features, state, training))
        )
