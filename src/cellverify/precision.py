"""How precise a cell's outputs are: the logit scale behind them, measured.

The rounding bound of :func:`cellverify.tolerances.probability_tolerance`
needs Z, the largest logit magnitude behind the probabilities.  It is measured,
never assumed:

* a cell that exposes ``step_activations(inputs, state)`` (the shipped one
  does) gives its logits directly;
* any other cell is evaluated again in float64 with the same weights, and the
  float32 outputs' measured rounding, ``max |log p32 - log p64| / (2 eps)``,
  stands for Z (by (1) of :mod:`cellverify.tolerances`, the logits' rounding
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

from cellverify.case import Case
from cellverify.model import CellFactory
from cellverify.tolerances import FLOAT32_EPS, probability_tolerance

__all__ = ["float64_keras", "logit_scale", "output_tolerance", "sequence_logits", "states_of"]

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
    """Z, the largest logit magnitude behind ``outputs`` = ``rnn(x)`` (module doc)."""
    out = np.asarray(outputs, np.float64)
    spread = _spread(out)
    if hasattr(cell, "step_activations"):
        logits = sequence_logits(cell, x, states_of(rnn, np.asarray(outputs)))
        return max(spread, float(np.max(np.abs(logits))))
    try:
        reference = _float64_outputs(factory, case, cell, x)
    except Exception:  # the cell cannot run in float64: the generous guess
        return max(spread, 1.0) * max(1.0, float(np.max(np.abs(x))))
    both = (out > _TINY) & (reference > _TINY)
    if not both.any():
        return spread
    error = np.abs(np.log(np.where(both, out, 1.0)) - np.log(np.where(both, reference, 1.0)))
    return max(spread, float(np.max(error)) / (2 * FLOAT32_EPS))


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
    """Elementwise rounding bound for ``outputs``, and the logit scale it used."""
    scale = logit_scale(factory, case, cell, rnn, x, outputs)
    return probability_tolerance(np.asarray(outputs), scale, floor=floor), scale
