"""Constructed traces for testing the diagnosis without training anything."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import numpy as np

from cellverify.config import CellConfig, TrainConfig
from cellverify.trace import ACTIVATION_LAYERS, Trace

VARIABLES = (
    "conv1/kernel",
    "conv1/bias",
    "conv2/kernel",
    "conv2/bias",
    "conv3/kernel",
    "conv3/bias",
)


def healthy_trace(steps: int = 10, **overrides: Any) -> Trace:
    """A run that every detector should pass: alive, learning, moderate numbers.

    Keyword arguments replace fields; ``cell`` and ``train`` may be configs.
    """
    n, v, layers = steps + 1, len(VARIABLES), len(ACTIVATION_LAYERS)
    fields: dict[str, Any] = {
        "cell": CellConfig(activation="elu", output_activation="linear").to_dict(),
        "train": TrainConfig(train_steps=steps, task="supervised").to_dict(),
        "variables": VARIABLES,
        "loss": np.linspace(2.7, 2.5, n),
        "grad_norm": np.full((n, v), 0.05),
        "grad_zero_fraction": np.zeros((n, v)),
        "update_ratio": np.full((steps, v), 1e-3),
        "weight_norm": np.full((n, v), 1.0),
        "dead_fraction": np.zeros((n, layers)),
        "zero_fraction": np.zeros((n, layers)),
        "saturated_fraction": np.zeros((n, layers)),
        "uniform_rows": np.zeros(n),
        "max_uniform_deviation": np.full(n, 0.05),
        "max_weight": np.full(n, 0.2),
        "state_grad_norm": np.full((n, 2), 1e-2),
        "eval_loss": (2.7, 2.6),
        "uniform_loss": 2.708,
        "reference_loss": 2.3,
    }
    for key, value in overrides.items():
        fields[key] = value.to_dict() if hasattr(value, "to_dict") else value
    return Trace(**fields)


def noisy_flat_trace(steps: int, *, sigma: float = 0.01, seed: int = 0, **overrides: Any) -> Trace:
    """An alive run whose batch losses wander around a flat line (noise ``sigma``)
    and whose evaluation loss closed only 0.5 % of the gap: stalled, once there
    are enough updates to tell."""
    rng = np.random.default_rng(seed)
    fields: dict[str, Any] = {
        "loss": 2.7 + sigma * rng.standard_normal(steps + 1),
        "eval_loss": (2.7, 2.7 - 0.005 * (2.7 - 2.3)),
    }
    fields.update(overrides)
    return healthy_trace(steps, **fields)


def dead_from(trace: Trace, step: int) -> Trace:
    """``trace`` with every gradient, logit and output row dead from ``step`` on."""
    zero = trace.grad_zero_fraction.copy()
    zero[step:] = 1.0
    norms = trace.grad_norm.copy()
    norms[step:] = 0.0
    rows = trace.uniform_rows.copy()
    rows[step:] = 1.0
    logits = trace.zero_fraction.copy()
    logits[step:, ACTIVATION_LAYERS.index("logits")] = 1.0
    return healthy_trace(
        trace.steps,
        cell=trace.cell,
        train=trace.train,
        grad_zero_fraction=zero,
        grad_norm=norms,
        uniform_rows=rows,
        zero_fraction=logits,
        eval_loss=(2.72, 2.708),
        update_ratio=trace.update_ratio,
        weight_norm=trace.weight_norm,
    )


def uniform_from(trace: Trace, step: int, share: float) -> Trace:
    """``trace`` with ``share`` of its output rows exactly uniform from ``step``
    on, its gradient still alive (the few rows left carry it)."""
    rows = trace.uniform_rows.copy()
    rows[step:] = share
    return dataclasses.replace(trace, uniform_rows=rows)


def zero_gradient_at(trace: Trace, steps: Iterable[int]) -> Trace:
    """``trace`` with its whole gradient exactly 0 at ``steps`` only."""
    zero = trace.grad_zero_fraction.copy()
    zero[list(steps)] = 1.0
    return dataclasses.replace(trace, grad_zero_fraction=zero)


def probed_every(trace: Trace, every: int) -> Trace:
    """``trace`` as a monitor probing every ``every`` steps records it: the
    gradient and activation statistics of the other rows unmeasured (NaN)."""
    measured = np.arange(trace.loss.shape[0]) % every == 0
    hidden = {
        name: np.where(measured.reshape(-1, *[1] * (getattr(trace, name).ndim - 1)),
                       getattr(trace, name), np.nan)
        for name in ("grad_norm", "grad_zero_fraction", "weight_norm", "dead_fraction",
                     "zero_fraction", "saturated_fraction", "uniform_rows")
    }  # fmt: skip
    return dataclasses.replace(trace, measured=measured.astype(float), **hidden)
