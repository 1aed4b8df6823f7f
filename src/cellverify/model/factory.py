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
from cellverify.errors import BadCellFactory, InvalidConfig, describe_exception

__all__ = [
    "DEFAULT_FACTORY",
    "CellFactory",
    "as_factory",
    "check_factory_name",
    "load_factory",
    "missing_package",
    "takes_cell_config",
    "validate_factory",
    "validate_spec",
]

#: A cell factory (docs/design.md, "Cells from anywhere"): called with a
#: :class:`~cellverify.CellConfig` (the portfolio contract), or a
#: :class:`~cellverify.CellSpec` called with its
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
    if isinstance(exc, InvalidConfig):  # the module ran, and a spec in it is mistaken
        return f"module {module_name!r} of cell factory {spec!r} makes a mistaken spec: {exc}"
    return (
        f"cannot import module {module_name!r} of cell factory {spec!r}: {describe_exception(exc)}"
    )


def load_factory(spec: str) -> CellFactory:
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
            f"a cell factory must be callable as factory(cell_config), or be a CellSpec or a "
            f"cell class. Received: {spec} = {type(factory).__name__}"
        )
    return as_factory(factory)  # type: ignore[no-any-return]


#: The names by which a class's first parameter says it takes the portfolio
#: contract's CellConfig (ConvRNNCell's ``config``).
_CONFIG_PARAMETERS = ("config", "cell_config")


def takes_cell_config(cls: type[Any]) -> bool:
    """Whether a cell class is built from a :class:`~cellverify.CellConfig`
    (its first parameter is ``config`` or ``cell_config``), as the shipped
    cell and the portfolio contract's factories are."""
    import inspect

    try:
        parameters = list(inspect.signature(cls).parameters.values())
    except (TypeError, ValueError):
        return False
    return bool(parameters) and parameters[0].name in _CONFIG_PARAMETERS


def as_factory(obj: Any) -> Any:
    """What the kit checks for ``obj``: a :class:`~cellverify.CellSpec` as it
    is; a Keras cell class built from a CellConfig, or any other callable,
    as a portfolio factory; any other Keras layer class as the spec derived
    from its signature (:func:`cellverify.spec.spec_from_class`)."""
    from cellverify.spec import CellSpec, spec_from_class

    if isinstance(obj, CellSpec) or not isinstance(obj, type) or takes_cell_config(obj):
        return obj
    import keras

    if issubclass(obj, keras.layers.Layer):
        return spec_from_class(obj)[0]
    return obj


def validate_spec(spec: Any) -> Any:
    """Build a spec's cell at its simplest parameters and run one step through
    an RNN; returns the cell, or raises :class:`BadCellFactory` naming the
    broken part (the factory raised, returned no layer, or failed its step)."""
    import keras
    from hypothesis import find

    from cellverify.contracts import Params

    values = {name: find(s, lambda _: True) for name, s in spec.params.items()}
    features = find(spec.features_strategy(), lambda _: True)
    params = Params(values, features)
    try:
        cell = spec.build(params)
    except Exception as exc:
        raise BadCellFactory(
            f"{spec.name} raised {describe_exception(exc)} when built with {params.kwargs}"
        ) from exc
    if not isinstance(cell, keras.layers.Layer):
        raise BadCellFactory(
            f"{spec.name} must build a keras.layers.Layer. Received: {type(cell).__name__}"
        )
    x = np.ones((2, 1, features), np.float32)
    try:
        keras.layers.RNN(cell, return_sequences=True)(x)
    except Exception as exc:
        raise BadCellFactory(
            f"running {spec.name}({params.kwargs}) in keras.layers.RNN on inputs {list(x.shape)} "
            f"failed: {describe_exception(exc)}"
        ) from exc
    return cell


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
            f"a portfolio cell's state_size must be {config.outputs} (assets"
            f"{' + cash' if config.cash_bias else ''}). Received: state_size={size!r}. A cell "
            "of another kind is described by a cellverify.CellSpec (its factory, its own "
            "parameters, its output's contract), or named by its class (docs/gating.md)"
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
