"""``from cellverify.keras import Monitor``: the public path of the training
monitor, which lives in :mod:`cellverify.monitor` (a module of the kit's own,
so that nothing in the kit is named after the keras package it imports)."""

from __future__ import annotations

from cellverify.monitor import DEFAULT_EVERY, Monitor

__all__ = ["DEFAULT_EVERY", "Monitor"]
