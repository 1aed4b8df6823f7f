"""What every built-in mutant cell shares: Keras registration under a package
of their own, so that they save and reload like any user's cell."""

from __future__ import annotations

from typing import TypeVar

import keras

__all__ = ["register"]

_Cls = TypeVar("_Cls", bound=type)


def register(cls: _Cls) -> _Cls:
    """Register ``cls`` with Keras's serialization, as ``cellverify_mutants>Name``."""
    return keras.saving.register_keras_serializable(package="cellverify_mutants")(cls)  # type: ignore[no-any-return]
