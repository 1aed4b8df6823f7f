"""The model: the cell, its fast path, the RNN wrapper and losses, cell factories.

Re-exports :mod:`cellverify.model.rnn`'s names."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cellverify.model.rnn import (
        LOSSES,
        build_model,
        cross_entropy_loss,
        example_losses,
        fresh_session,
        keras_loss,
        loss_for,
        portfolio_loss,
    )

# Lazily, as the package's own face does: importing a light submodule (the
# factory, the FLOP count) must not import TensorFlow through this package.
__all__ = [
    "LOSSES",
    "build_model",
    "cross_entropy_loss",
    "example_losses",
    "fresh_session",
    "keras_loss",
    "loss_for",
    "portfolio_loss",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("cellverify.model.rnn"), name)
    raise AttributeError(f"module 'cellverify.model' has no attribute {name!r}")
