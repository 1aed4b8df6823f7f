"""``cellverify.cell``, a public path: everything lives in :mod:`cellverify.model.cell`."""

from __future__ import annotations

from cellverify.model.cell import (
    LAYER_NAMES,
    PART_SLOTS,
    SEED_SLOTS,
    ConvRNNCell,
    conv_rnn_cell,
    initializer,
    slot_seed,
)

__all__ = [
    "LAYER_NAMES",
    "PART_SLOTS",
    "SEED_SLOTS",
    "ConvRNNCell",
    "conv_rnn_cell",
    "initializer",
    "slot_seed",
]
