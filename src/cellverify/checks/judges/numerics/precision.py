"""How precise a cell's outputs are: the logit scale behind them, measured.

The rounding bound of :func:`cellverify.checks.judges.numerics.tolerances.probability_tolerance`
needs Z, the magnitude at which the logits behind the probabilities are
rounded: at least the largest logit, and more when the sums that make them
had larger terms.  It is measured, never assumed:

* for the shipped cell (and any :class:`~cellverify.model.cell.ConvRNNCell`) the
  scale is propagated through its layers in float64 (:func:`propagated_scale`):
  rounding happens in each conv's sum, at the magnitude of its terms, which
  can be far larger than the logits (a tanh last conv at prices x1e4: terms
  ~1e4 that cancel, logits <= 1, and tanh's slope passes the sum's rounding
  on);
* a cell that exposes ``step_activations(inputs, state)`` gives its logits,
  a lower bound on Z;
* any other cell, and one that exposes ``step_activations`` but is not a
  ``ConvRNNCell``, is evaluated again in float64 with the same weights, and the
  float32 outputs' measured rounding, ``max |log p32 - log p64| / (2 eps)``,
  stands for Z (by (1) of :mod:`cellverify.checks.judges.numerics.tolerances`, the logits' rounding
  in ulps is at least half of that);
* the softmax's own spread, ``(max log p - min log p) / 2``, is a lower bound
  on Z for every cell;
* a cell that cannot run in float64 falls back to that spread times the
  inputs' magnitude, a generous guess (logits grow with the prices).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np

from cellverify.checks.cases.case import Case
from cellverify.checks.judges.numerics.tolerances import (
    FLOAT32_EPS,
    ROUNDING_DEPTH,
    probability_tolerance,
    real_tolerance,
)
from cellverify.contracts import OutputKind
from cellverify.model.cell import ConvRNNCell
from cellverify.model.factory import CellFactory

__all__ = [
    "float64_keras",
    "logit_scale",
    "output_tolerance",
    "propagated_scale",
    "real_scale",
    "sequence_logits",
    "states_of",
]

#: Probabilities below this are left out of log-ratios (exp(-69) in float32
#: is subnormal territory, where relative rounding means nothing).
_TINY = 1e-30
_UNDERFLOW_SPREAD = -float(np.log(np.finfo(np.float32).tiny))


@contextlib.contextmanager
def float64_keras() -> Iterator[None]:
    """Build and run Keras layers in float64 inside the block."""
    policy = keras.config.dtype_policy()
    floatx = keras.config.floatx()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    try:
        yield
    finally:
        keras.config.set_floatx(floatx)
        keras.config.set_dtype_policy(policy)


def states_of(rnn: Any, outputs: np.ndarray) -> np.ndarray:
    """The state entering each step: the initial state, then each step's output."""
    initial = np.asarray(rnn.get_initial_state(outputs.shape[0])[0], outputs.dtype)
    return np.concatenate([initial[:, None], outputs[:, :-1]], axis=1)


def sequence_logits(cell: Any, x: np.ndarray, states: np.ndarray) -> np.ndarray:
    """Every step's logits, through the cell's ``step_activations``: ``[batch*steps, outputs]``."""
    flat_x = np.reshape(x, (-1, *x.shape[2:]))
    flat_s = np.reshape(states, (-1, states.shape[-1]))
    return np.asarray(cell.step_activations(flat_x, flat_s, training=False)["logits"])


def _conv(h: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """A one-row-tall valid conv of ``h`` [..., assets, width, channels] (no bias)."""
    windows = np.lib.stride_tricks.sliding_window_view(h, kernel.shape[1], axis=-2)
    out: np.ndarray = np.einsum("...wck,kco->...wo", windows, kernel[0])
    return out


def _weights(conv: Any) -> tuple[np.ndarray, np.ndarray]:
    kernel = np.asarray(conv.kernel, np.float64)
    bias = np.zeros(kernel.shape[-1]) if conv.bias is None else np.asarray(conv.bias, np.float64)
    return kernel, bias


def _through_layer(conv: Any, h: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A conv layer's float64 output from ``h``, and its rounding scale given ``r``, h's.

    The float32 sum ``sum_i w_i h_i + b`` is wrong by a few ulps of
    ``sum_i |w_i h_i| + |b|`` (any summation order; Higham, "Accuracy and
    Stability of Numerical Algorithms", 3.1), and h's own error (a few ulps
    of r) enters it as ``sum_i |w_i| r_i``.  The activation f passes that on
    times its slope, taken as the largest secant over ROUNDING_DEPTH ulps
    either side (exact for the monotone activations; a saturated tanh passes
    nothing on), and rounds its own output, adding |f|.
    """
    kernel, bias = _weights(conv)
    pre = _conv(h, kernel) + bias
    scale = _conv(np.abs(h), np.abs(kernel)) + np.abs(bias) + _conv(r, np.abs(kernel))
    step = np.maximum(ROUNDING_DEPTH * FLOAT32_EPS * scale, np.finfo(np.float64).tiny)

    def f(z: np.ndarray) -> np.ndarray:
        return np.asarray(conv.activation(np.asarray(z, np.float64)), np.float64)

    out = f(pre)
    slope = np.maximum(np.abs(f(pre + step) - out), np.abs(f(pre - step) - out)) / step
    return out, slope * scale + np.abs(out)


def propagated_scale(cell: ConvRNNCell, x: np.ndarray, states: np.ndarray) -> float:
    """Z for a :class:`ConvRNNCell` run on ``x`` [batch, steps, assets, window,
    features] with ``states`` entering each step: the largest scale at which a
    logit is rounded, propagated through conv1, conv2 and conv3 in float64.

    The inputs are exact.  The initial state is exact; each later state is the
    previous output, whose error is at most ``2 p`` times the previous logits'
    (bound (1) of :mod:`cellverify.checks.judges.numerics.tolerances`) plus its own rounding.  A
    cash logit is a weight, exact.  Dropout is off (inference).
    """
    x = np.asarray(x, np.float64)
    h2, r2 = _through_layer(cell.conv1, x, np.zeros_like(x))
    h2, r2 = _through_layer(cell.conv2, h2, r2)  # [batch, steps, assets, 1, k2]
    assets = cell.cell_config.assets
    states = np.asarray(states, np.float64)
    state_error = np.zeros((states.shape[0], assets))
    largest = 0.0
    for t in range(x.shape[1]):
        previous = states[:, t, -assets:]
        h3_in = np.concatenate([h2[:, t], previous[:, :, None, None]], axis=-1)
        r3_in = np.concatenate([r2[:, t], state_error[:, :, None, None]], axis=-1)
        _, r3 = _through_layer(cell.conv3, h3_in, r3_in)
        logit_error = r3.reshape(r3.shape[0], -1).max(axis=-1, keepdims=True)
        largest = max(largest, float(logit_error.max()))
        if t + 1 < x.shape[1]:
            following = states[:, t + 1, -assets:]
            state_error = 2 * following * logit_error + following
    return largest


def _spread(p: np.ndarray) -> float:
    """Half the largest log-probability spread of a row: a lower bound on max |z|."""
    usable = np.isfinite(p) & (p > _TINY)
    logs = np.log(np.where(usable, p, 1.0))
    high = np.where(usable, logs, -np.inf).max(axis=-1)
    low = np.where(usable, logs, np.inf).min(axis=-1)
    # A probability that underflowed to exactly 0 sits at least -log of the
    # smallest normal float32 (87.3) below the row's largest log.
    underflow = np.any(np.isfinite(p) & (p == 0), axis=-1)
    spread = np.where(underflow, np.maximum(high - low, _UNDERFLOW_SPREAD), high - low)
    spread = spread[np.isfinite(spread)]
    return float(spread.max()) / 2 if spread.size else 0.0


def _float64_outputs(factory: CellFactory, case: Case, cell: Any, x: np.ndarray) -> np.ndarray:
    """The same cell (same weights) run in float64."""
    weights = cell.get_weights()
    x64 = np.asarray(x, np.float64)
    with float64_keras():
        twin = factory(case.cell)
        rnn = keras.layers.RNN(twin, return_sequences=True)
        rnn(x64)
        twin.set_weights(
            [w.astype(np.float64) if np.issubdtype(w.dtype, np.floating) else w for w in weights]
        )
        return np.asarray(rnn(x64), np.float64)


def logit_scale(
    factory: CellFactory, case: Case, cell: Any, rnn: Any, x: np.ndarray, outputs: np.ndarray
) -> float:
    """Z, the scale at which the logits behind ``outputs`` = ``rnn(x)`` are
    rounded: at least the largest of them (module doc)."""
    out = np.asarray(outputs, np.float64)
    spread = _spread(out)
    if hasattr(cell, "step_activations"):
        states = states_of(rnn, np.asarray(outputs))
        spread = max(spread, float(np.max(np.abs(sequence_logits(cell, x, states)))))
        if isinstance(cell, ConvRNNCell):
            return max(spread, propagated_scale(cell, x, states))
    try:
        reference = _float64_outputs(factory, case, cell, x)
    except Exception:  # the cell cannot run in float64: the generous guess
        return max(spread, 1.0) * max(1.0, float(np.max(np.abs(x))))
    both = (out > _TINY) & (reference > _TINY)
    if not both.any():
        return spread
    error = np.abs(np.log(np.where(both, out, 1.0)) - np.log(np.where(both, reference, 1.0)))
    return max(spread, float(np.max(error)) / (2 * FLOAT32_EPS))


def real_scale(
    factory: CellFactory, case: Case, cell: Any, x: np.ndarray, outputs: np.ndarray
) -> float:
    """S, the magnitude at which a real output is rounded: its largest entry,
    or more where the float32 output's error against the same cell in
    float64 says its sums cancelled (``max |y32 - y64| / eps``); a cell that
    cannot run in float64 gets its largest entry times the inputs' size."""
    out = np.asarray(outputs, np.float64)
    largest = float(np.max(np.abs(out))) if out.size else 0.0
    try:
        reference = _float64_outputs(factory, case, cell, x)
    except Exception:  # the cell cannot run in float64: the generous guess
        return max(largest, 1.0) * max(1.0, float(np.max(np.abs(x))))
    error = float(np.max(np.abs(out - reference))) if out.size else 0.0
    return max(largest, error / FLOAT32_EPS)


def output_tolerance(
    factory: CellFactory,
    case: Case,
    cell: Any,
    rnn: Any,
    x: np.ndarray,
    outputs: np.ndarray,
    *,
    floor: float,
) -> tuple[np.ndarray, float]:
    """Elementwise rounding bound for ``outputs``, and the scale it used: the
    logits' for probabilities, the output's own for a real output."""
    from cellverify.spec import contract_of

    out = np.asarray(outputs)
    if contract_of(factory).output is OutputKind.REAL:
        scale = real_scale(factory, case, cell, x, out)
        return np.full(out.shape, real_tolerance(scale, floor=floor)), scale
    scale = logit_scale(factory, case, cell, rnn, x, outputs)
    return probability_tolerance(out, scale, floor=floor), scale
