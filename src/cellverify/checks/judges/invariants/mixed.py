"""Mixed precision: the cell under Keras's ``mixed_float16`` policy, as GPU
runners train it, against the same weights in float32.

Under ``mixed_float16`` the variables stay float32 and the computation runs
in float16 (10 bits of mantissa: eps16 = 2**-10 = 9.8e-4, largest finite
65504).  Keras's own layer tests build every layer under it; a cell that
writes a float32 constant into its graph, or a number float16 cannot hold,
breaks only there.  Gradients are taken as ``LossScaleOptimizer`` takes them:
the loss scaled up (2**15, halved while anything overflows), the gradients
scaled back.

Tolerances, derived from the magnitudes (docs/design.md, "Mixed
precision"), and measured on 60 generated cases (Keras's GRU, LSTM and
SimpleRNN cells with derived specs, the shipped cell on its robust region,
market and normal inputs):

* outputs: float16 rounds each number to a float16 ulp of its magnitude, and
  the cell's steps add a few such roundings; the outputs differed from
  float32's by at most 1.7 float16 ulps of ``max(1, max |y|)`` (median
  0.28).  Allowed: :data:`MIXED_OUTPUT_ULPS` = 8, a margin of 4.7.  A cell
  whose float16 arithmetic loses more than that (a sum that cancels at a
  magnitude above its result's) is a mixed-precision hazard, and reported.
* gradients: a gradient that is a small difference of large terms (a
  softmax's ``p - t`` near its target) is rounded at the terms' magnitude,
  not its own, so its magnitude is measured per variable against the same
  cell in float64: ``G = max(max |g32|, max |g32 - g64| / eps32)``.  The
  float16 gradients were within 20.5 float16 ulps of G; allowed: 2 x
  ROUNDING_DEPTH = 64.  On the portfolio loss G can exceed the gradient
  itself (its terms are ~0.05, its result ~5e-4): float16 cannot resolve
  that gradient, and the bound honestly says so by being looser than it.
  Where float32 happens to round a gradient that cancels exactly (a last
  conv's bias, which the softmax cannot see: 7e-10 in float32, 4.9e-4 in
  float16, found by a 150-example search of the shipped cell), its own
  measured error says nothing of the terms.  Every variable's gradient is
  made from the same upstream gradients, so G is taken as the largest over
  the model's variables; a gradient may also differ by 8 standard
  deviations of its float16 noise, measured at inputs moved by one float16
  ulp.  Both compare against float32 taken at float16's own roundings of
  the inputs and the weights.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from cellverify.checks.cases.case import Case
from cellverify.checks.judges.invariants.harness import (
    build_rnn,
    inputs_described,
    output_count,
    require_finite,
    shape_of,
    target_of,
)
from cellverify.checks.judges.numerics.precision import float64_keras
from cellverify.checks.judges.numerics.tolerances import FLOAT32_EPS, ROUNDING_DEPTH
from cellverify.checks.judges.registry import NON_FINITE, fail, invariant
from cellverify.errors import describe_exception
from cellverify.model.factory import CellFactory
from cellverify.model.rnn import loss_for
from cellverify.training.notices import spend_float16_notice

__all__ = [
    "FLOAT16_EPS",
    "LOSS_SCALES",
    "MIXED_FLOOR",
    "MIXED_OUTPUT_ULPS",
    "NOISE_DRAWS",
    "NOISE_SIGMAS",
    "mixed_precision",
]

#: float16's machine epsilon.
FLOAT16_EPS = 2.0**-10
#: The loss scales tried, largest first, as a dynamic ``LossScaleOptimizer``
#: does: 2**15 is its initial scale; it halves on overflow.
LOSS_SCALES = tuple(2.0**k for k in range(15, -1, -1))
#: The least difference ever allowed between float16 and float32 outputs:
#: float16's rounding of a number near 1.
MIXED_FLOOR = FLOAT16_EPS
#: Float16 ulps of ``max(1, max |y|)`` by which the outputs may differ from
#: float32's (module doc: 1.7 measured at most).
MIXED_OUTPUT_ULPS = 8
#: Evaluations at inputs moved by a float16 ulp that measure a gradient's
#: float16 noise, and the standard deviations of it a difference may reach
#: (as the gradient check's loss noise, cellverify.checks.judges.numerics.gradcheck).
NOISE_DRAWS = 4
NOISE_SIGMAS = 8


@contextlib.contextmanager
def mixed_float16() -> Iterator[None]:
    """Build and run Keras layers under the ``mixed_float16`` policy inside the block.

    TensorFlow's float16 notice is spent first, without its error line
    (cellverify.training.notices)."""
    spend_float16_notice()
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(policy)


def _outputs_and_gradients(
    rnn: Any, case: Case, x: Any, y: Any, scale: float
) -> tuple[Any, list[Any]]:
    loss_fn = loss_for(case.train.task)
    with tf.GradientTape() as tape:
        out = tf.cast(rnn(x, training=False), tf.float32)
        loss = loss_fn(out, y) * scale
    grads = tape.gradient(loss, rnn.trainable_variables)
    scaled = [None if g is None else np.asarray(tf.cast(g, tf.float64)) / scale for g in grads]
    return np.asarray(out, np.float64), scaled


def _halved(values: np.ndarray) -> np.ndarray:
    """``values`` as float16 holds them, back in their own type."""
    if not np.issubdtype(values.dtype, np.floating):
        return values
    return values.astype(np.float16).astype(values.dtype)


def _twin(factory: CellFactory, case: Case, x: np.ndarray, weights: list[np.ndarray]) -> Any:
    """The same cell, built under the policy in force, with ``weights``."""
    rnn = keras.layers.RNN(factory(case.cell), return_sequences=True)
    rnn(x)
    rnn.set_weights(weights)
    return rnn


def _scaled_half(factory: CellFactory, case: Case, x: Any, y: Any, weights: list[Any]) -> Any:
    """Outputs and gradients under mixed_float16, with the largest loss scale
    whose gradients are all finite (or the last tried)."""
    with mixed_float16():
        try:
            rnn = _twin(factory, case, x, weights)
        except Exception as exc:  # a cell that cannot be built under the policy
            fail(
                f"the cell cannot be built and run under mixed_float16 on inputs "
                f"{shape_of(x)}: {describe_exception(exc)}",
                clause="builds",
            )
        for scale in LOSS_SCALES:
            out, grads = _outputs_and_gradients(rnn, case, x, y, scale)
            if all(g is None or np.all(np.isfinite(g)) for g in grads):
                break
    return rnn, out, grads, scale


@invariant("mixed_precision", clauses=("builds", NON_FINITE, "outputs", "gradients"))
def mixed_precision(factory: CellFactory, case: Case) -> None:
    """Under Keras's mixed_float16 policy the cell builds, and its outputs and
    (loss-scaled) gradients are finite and within float16's rounding of the
    same weights' float32 ones (module doc)."""
    batch = case.batch()
    rnn32 = build_rnn(factory(case.cell))
    rnn32(batch.inputs)
    weights = [np.asarray(w) for w in rnn32.get_weights()]
    y = target_of(case, batch, rnn32.cell)
    # float16 computes on its own roundings of the inputs and the weights:
    # the float32 reference is taken there, so that only the arithmetic differs.
    x, halved = _halved(batch.inputs), [_halved(w) for w in weights]
    rnn32.set_weights(halved)
    out32 = np.asarray(rnn32(x)[0], np.float64)
    _, grads32 = _outputs_and_gradients(_twin(factory, case, x, halved), case, x, y, 1.0)
    rnn16, out16, grads16, scale = _scaled_half(factory, case, x, y, weights)
    noise = _gradient_noise(rnn16, case, x, y, scale)
    where = f"under mixed_float16 ({inputs_described()})"
    require_finite(f"the output {where}", out16)
    for v, g in zip(rnn16.trainable_variables, grads16, strict=True):
        if g is not None:
            require_finite(f"the gradient of {v.path} {where}, loss scale {scale:g}", g)
    _require_outputs_close(case, rnn32, out32, out16)
    with float64_keras():
        wide = [w.astype(np.float64) if np.issubdtype(w.dtype, np.floating) else w for w in halved]
        _, grads64 = _outputs_and_gradients(_twin(factory, case, x, wide), case, x, y, 1.0)
    _require_gradients_close(rnn32, grads32, grads64, grads16, noise)


def _require_outputs_close(case: Case, rnn32: Any, out32: np.ndarray, out16: np.ndarray) -> None:
    scale = max(1.0, float(np.max(np.abs(out32))))
    allowed = max(MIXED_FLOOR, MIXED_OUTPUT_ULPS * FLOAT16_EPS * scale)
    diff = np.abs(out16 - out32)
    if np.any(diff > allowed):
        worst = np.unravel_index(int(np.argmax(diff)), diff.shape)
        fail(
            f"the output {shape_of(out16)} under mixed_float16 differs from float32's by "
            f"{diff[worst]:.3g} at index {[int(i) for i in worst]}, where float16's rounding "
            f"allows {allowed:.3g} ({MIXED_OUTPUT_ULPS} float16 ulps of {scale:.3g}; value "
            f"{out32[worst]:.3g}, {output_count(case, rnn32.cell)} outputs)",
            clause="outputs",
        )


def _gradient_noise(rnn16: Any, case: Case, x: np.ndarray, y: Any, scale: float) -> list[float]:
    """Each gradient's float16 rounding noise, measured: its largest standard
    deviation over NOISE_DRAWS evaluations at inputs moved by one float16
    ulp each way at random (other roundings, the same function)."""
    rng = np.random.default_rng(case.cell.seed)
    draws = []
    with mixed_float16():
        for _ in range(NOISE_DRAWS):
            moved = x * (1.0 + FLOAT16_EPS * rng.choice([-1.0, 1.0], size=x.shape))
            draws.append(_outputs_and_gradients(rnn16, case, moved.astype(x.dtype), y, scale)[1])
    return [
        0.0 if column[0] is None else float(np.max(np.std(np.stack(column), axis=0)))
        for column in zip(*draws, strict=True)
    ]


def _require_gradients_close(
    rnn32: Any, grads32: list[Any], grads64: list[Any], grads16: list[Any], noise: list[float]
) -> None:
    rows = list(zip(rnn32.trainable_variables, grads32, grads64, grads16, noise, strict=True))
    # Every variable's gradient is made from the same upstream gradients,
    # rounded at their magnitude: the largest any variable's shows.
    magnitude = max(
        (
            max(float(np.max(np.abs(g32))), float(np.max(np.abs(g32 - g64))) / FLOAT32_EPS)
            for _, g32, g64, g16, _ in rows
            if g32 is not None and g64 is not None and g16 is not None and g32.size
        ),
        default=0.0,
    )
    for v, g32, g64, g16, sigma in rows:
        if g32 is None or g16 is None or g64 is None:
            continue
        allowed = max(2 * ROUNDING_DEPTH * FLOAT16_EPS * magnitude, NOISE_SIGMAS * sigma)
        diff = float(np.max(np.abs(g16 - g32)))
        if diff > allowed:
            fail(
                f"the gradient of {v.path} {shape_of(g32)} under mixed_float16 differs from "
                f"float32's by {diff:.3g}, where float16's rounding allows {allowed:.3g} "
                f"(64 float16 ulps of {magnitude:.3g}, the magnitude it is rounded at, or "
                f"{NOISE_SIGMAS} times its measured float16 noise {sigma:.3g})",
                clause="gradients",
            )
