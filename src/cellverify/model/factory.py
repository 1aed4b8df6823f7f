"""Cell factories from anywhere: load ``MODULE:ATTRIBUTE`` and vet the cell.

A factory is any callable ``factory(cell_config) -> keras RNN cell``.  Errors
here are the user's, so they become :class:`BadCellFactory` with a message
saying what is wrong, what is expected and what was received, never a raw
TensorFlow stack trace.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from cellverify.config import CellConfig
from cellverify.errors import BadCellFactory, describe_exception

__all__ = [
    "DEFAULT_FACTORY",
    "CellFactory",
    "check_factory_name",
    "load_factory",
    "missing_package",
    "validate_factory",
]

#: A cell factory: ``factory(cell_config) -> keras RNN cell`` (docs/design.md,
#: "Cells from anywhere").
#: A cell factory: called with a :class:`~cellverify.CellConfig` (the
#: portfolio contract), or a :class:`~cellverify.CellSpec` called with its
#: :class:`~cellverify.contracts.Params`; returns a Keras RNN cell.
CellFactory = Callable[[Any], Any]

#: The shipped cell's factory, as named on the command line.
DEFAULT_FACTORY = "cellverify.cell:conv_rnn_cell"


def check_factory_name(spec: str) -> tuple[str, str]:
    """``spec``'s module and attribute, once it has the form ``MODULE:ATTRIBUTE``
    and its top-level package can be found (the current directory is
    importable), without importing anything: a worker checks this before it
    starts TensorFlow, so a mistyped name fails in a blink, not after a
    TensorFlow start-up (5-14 s)."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise BadCellFactory(
            f"a cell factory is named MODULE:ATTRIBUTE, such as {DEFAULT_FACTORY}. "
            f"Received: {spec!r}"
        )
    missing = missing_package(module_name)
    if missing is not None:
        raise BadCellFactory(_cannot_import(module_name, spec, missing))
    return module_name, attribute


def missing_package(module_name: str) -> ModuleNotFoundError | None:
    """The error importing ``module_name`` would raise if its top-level package
    cannot be found from here (the current directory importable), else None.
    Imports nothing: a dotted name's parents may import TensorFlow."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    top = module_name.split(".", 1)[0]
    try:
        found = importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        found = True  # let the import itself say what is wrong
    return None if found else ModuleNotFoundError(f"No module named {top!r}", name=top)


def _cannot_import(module_name: str, spec: str, exc: BaseException) -> str:
    return (
        f"cannot import module {module_name!r} of cell factory {spec!r}: {describe_exception(exc)}"
    )


def load_factory(spec: str) -> Callable[[CellConfig], Any]:
    """Import ``package.module:attribute`` (the current directory is importable)."""
    module_name, attribute = check_factory_name(spec)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any import-time error is the user's module's
        raise BadCellFactory(_cannot_import(module_name, spec, exc)) from exc
    try:
        factory = getattr(module, attribute)
    except AttributeError:
        raise BadCellFactory(
            f"module {module_name!r} has no attribute {attribute!r}. Received: {spec!r}"
        ) from None
    if not callable(factory):
        raise BadCellFactory(
            f"a cell factory must be callable as factory(cell_config). "
            f"Received: {spec} = {type(factory).__name__}"
        )
    return factory  # type: ignore[no-any-return]


def validate_factory(factory: Callable[[CellConfig], Any], config: CellConfig) -> Any:
    """Build a cell and run one step, checking the factory contract
    (docs/design.md, 'Cells from anywhere').

    Returns the cell.  Raises :class:`BadCellFactory` naming the broken part.
    """
    import keras

    name = getattr(factory, "__name__", repr(factory))
    try:
        cell = factory(config)
    except Exception as exc:
        raise BadCellFactory(
            f"cell factory {name} raised {describe_exception(exc)} when called with {config}"
        ) from exc
    if not isinstance(cell, keras.layers.Layer):
        raise BadCellFactory(
            f"cell factory {name} must return a keras.layers.Layer. Received: {type(cell).__name__}"
        )
    size = getattr(cell, "state_size", None)
    if size != config.outputs and size != [config.outputs]:
        raise BadCellFactory(
            f"the cell's state_size must be {config.outputs} (assets"
            f"{' + cash' if config.cash_bias else ''}). Received: state_size={size!r}"
        )
    batch = 2
    x = np.ones((batch, config.assets, config.window, config.features), np.float32)
    state = np.full((batch, config.outputs), 1.0 / config.outputs, np.float32)
    try:
        result = cell(x, [state])
        output, new_states = result
    except Exception as exc:
        raise BadCellFactory(
            f"calling the cell as cell(inputs, [state]) with inputs {x.shape} and state "
            f"{state.shape} failed: {describe_exception(exc)}"
        ) from exc
    expected = (batch, config.outputs)
    if tuple(output.shape) != expected:
        raise BadCellFactory(
            f"the cell's output must be [batch, outputs] = {list(expected)}. "
            f"Received: output shape {list(output.shape)}"
        )
    new_state = new_states[0] if isinstance(new_states, (list, tuple)) else new_states
    if tuple(new_state.shape) != expected:
        raise BadCellFactory(
            f"the cell's new state must be [batch, outputs] = {list(expected)}. "
            f"Received: state shape {list(new_state.shape)}"
        )
    return cell
