"""What a cell under test promises, and one configuration of a spec'd cell.

A cell is described by what it is (docs/design.md, "Any Keras recurrent
cell"), not squeezed into the portfolio cell's configuration:

* :class:`OutputKind` - what every output row satisfies: ``real`` (any
  finite numbers) or ``simplex`` (a probability distribution);
* :class:`Contract` - the promises an invariant may rely on: the output's
  kind, whether the state passed on is the output, an axis of the input the
  cell must be equivariant over, which parameters are dropout rates.  An
  invariant that needs a promise the contract does not make does not run on
  that cell, and says why;
* :class:`Params` - one configuration of a :class:`cellverify.CellSpec`'s
  cell: the factory's keyword arguments, the size of one step's input, the
  seed.  The counterpart of :class:`cellverify.CellConfig` for the portfolio
  contract, and plain data like it;
* :func:`adopt_task` - what a spec's own task must define, and its name
  registered, so that a configuration can carry it (docs/design.md, "Tasks").

No TensorFlow, no Hypothesis.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cellverify.config import CellConfig
from cellverify.errors import InvalidConfig
from cellverify.vocabulary import OWN_TASKS, TASKS, task_names

__all__ = [
    "MAX_FEATURES",
    "PORTFOLIO_PROMISES",
    "TASK_METHODS",
    "Contract",
    "OutputKind",
    "Params",
    "Promise",
    "adopt_task",
    "cell_from_dict",
]

#: The most input features a spec may draw: a step's input is a vector, and
#: the gate's cases are small (docs/design.md, "Cost of an example").
MAX_FEATURES = 4096
_MAX_SEED = 2**31 - 1


class OutputKind(StrEnum):
    """What every output row of a cell satisfies."""

    REAL = "real"
    SIMPLEX = "simplex"


class Promise(StrEnum):
    """A promise an invariant may need a cell's contract to make."""

    SIMPLEX_OUTPUT = "simplex output"
    STATE_IS_OUTPUT = "state is output"
    EQUIVARIANT_AXIS = "equivariant axis"
    DROPOUT = "dropout rates"


@dataclass(frozen=True)
class Contract:
    """The promises a cell makes beyond Keras's RNN-cell protocol.

    ``equivariant_axis`` is an axis of one step's input (0: its first axis)
    along which permuting the input permutes the output's last axis and the
    state the same way, after ``fixed_outputs`` leading outputs that stay put
    (the portfolio cell's cash).  ``dropout`` names the factory's parameters
    that are dropout rates.
    """

    output: OutputKind = OutputKind.REAL
    state_is_output: bool = False
    equivariant_axis: int | None = None
    fixed_outputs: int = 0
    dropout: tuple[str, ...] = ()

    def why_not(self, promise: Promise) -> str | None:
        """Why this contract does not make ``promise``, or None when it does."""
        if promise is Promise.SIMPLEX_OUTPUT and self.output is not OutputKind.SIMPLEX:
            return f"the output is {self.output}, not a simplex (output={str(self.output)!r})"
        if promise is Promise.STATE_IS_OUTPUT and not self.state_is_output:
            return "the state passed on is not promised to be the output (state_is_output=False)"
        if promise is Promise.EQUIVARIANT_AXIS and self.equivariant_axis is None:
            return "no axis is named that the cell must be equivariant over (equivariant_axis=None)"
        if promise is Promise.DROPOUT and not self.dropout:
            return "the cell has no dropout rate among the parameters drawn (dropout=())"
        return None

    def promises(self) -> dict[str, Any]:
        """The contract as plain data, for reports."""
        return {
            "output": str(self.output),
            "state_is_output": self.state_is_output,
            "equivariant_axis": self.equivariant_axis,
            "dropout": list(self.dropout),
        }


def _frozen(values: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    items = []
    for key, value in sorted(values.items()):
        if not isinstance(key, str):
            raise InvalidConfig("Params", "values", "keyword names (strings)", key)
        items.append((key, tuple(value) if isinstance(value, list) else value))
    return tuple(items)


@dataclass(frozen=True)
class Params:
    """One configuration of a spec'd cell: the keyword arguments its factory
    is called with, the size of one step's input (``features``) and the
    seed the kit seeds its build with.  Hashable, comparable, and a round
    trip through plain dicts and JSON."""

    values: tuple[tuple[str, Any], ...] = field(default=())
    features: int = 1
    seed: int = 0

    def __init__(self, values: Mapping[str, Any] | None = None, features: int = 1, seed: int = 0):
        frozen = _frozen(dict(values or {})) if not isinstance(values, tuple) else values
        object.__setattr__(self, "values", frozen)
        object.__setattr__(self, "features", features)
        object.__setattr__(self, "seed", seed)
        if not (isinstance(features, int) and not isinstance(features, bool)):
            raise InvalidConfig(
                "Params", "features", f"an integer in [1, {MAX_FEATURES}]", features
            )
        if not 1 <= features <= MAX_FEATURES:
            raise InvalidConfig(
                "Params", "features", f"an integer in [1, {MAX_FEATURES}]", features
            )
        if not (isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed <= _MAX_SEED):
            raise InvalidConfig("Params", "seed", f"an integer in [0, {_MAX_SEED}]", seed)

    @property
    def kwargs(self) -> dict[str, Any]:
        """The factory's keyword arguments."""
        return dict(self.values)

    def get(self, name: str, default: Any = None) -> Any:
        return self.kwargs.get(name, default)

    def replace(self, **changes: Any) -> Params:
        """A copy with keyword arguments (or ``features``, ``seed``) changed."""
        features = changes.pop("features", self.features)
        seed = changes.pop("seed", self.seed)
        return Params({**self.kwargs, **changes}, features, seed)

    def to_dict(self) -> dict[str, Any]:
        return {"params": self.kwargs, "features": self.features, "seed": self.seed}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Params:
        unknown = sorted(set(data) - {"params", "features", "seed"})
        if unknown:
            allowed = "a field of Params (params, features, seed)"
            raise InvalidConfig("Params", unknown[0], allowed, data[unknown[0]])
        return cls(data.get("params", {}), data.get("features", 1), data.get("seed", 0))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def __repr__(self) -> str:
        return f"Params({self.kwargs!r}, features={self.features}, seed={self.seed})"


#: The portfolio contract (docs/design.md, "Cells from anywhere"): a simplex
#: over the assets (cash first, where there is cash), fed back as the state,
#: equivariant in the assets, with dropout layers after any conv.
PORTFOLIO_PROMISES = Contract(
    output=OutputKind.SIMPLEX,
    state_is_output=True,
    equivariant_axis=0,
    dropout=("dropout",),
)


def cell_from_dict(data: Mapping[str, Any]) -> CellConfig | Params:
    """A cell's configuration read back from its dict: a spec's
    :class:`Params` (it has ``params``), else a portfolio
    :class:`~cellverify.CellConfig`."""
    return Params.from_dict(data) if "params" in data else CellConfig.from_dict(data)


#: What a spec's own task defines (cellverify.data.tasks.Task): the loss
#: training minimizes, in Keras ops, and the NumPy side the diagnosis reads.
TASK_METHODS = ("loss", "target", "example_losses", "uniform_loss", "reference_loss")


def _undefined(task: Any, method: str) -> bool:
    # Task's own methods only raise NotImplementedError: a subclass that
    # does not define one has not given it.
    found = getattr(type(task), method, None)
    return not callable(found) or getattr(found, "__qualname__", "") == f"Task.{method}"


def adopt_task(owner: str, task: Any) -> None:
    """Check ``task`` (a name, or a task of the spec's own) and register an
    own task under its name (docs/design.md, "Tasks")."""
    if task is None:
        return
    if isinstance(task, str):
        names = task_names()
        if task not in names:
            allowed = f"one of {', '.join(names)}, or an instance of a cellverify.Task subclass"
            raise InvalidConfig(owner, "task", allowed, task)
        return
    _check_task_object(owner, task)
    OWN_TASKS[task.name] = task


def _check_task_object(owner: str, task: Any) -> None:
    """A spec's own task: an instance, with a name of its own and every method."""
    if isinstance(task, type):
        allowed = f"an instance of a cellverify.Task subclass ({task.__name__}(), not the class)"
        raise InvalidConfig(owner, "task", allowed, task)
    if not any(callable(getattr(task, m, None)) for m in TASK_METHODS):
        allowed = "a task's name (a string) or an instance of a cellverify.Task subclass"
        raise InvalidConfig(owner, "task", allowed, task)
    name = getattr(task, "name", None)
    if not isinstance(name, str) or not name.strip():
        allowed = "a non-empty string: the name configurations and reports carry"
        raise InvalidConfig(owner, "task.name", allowed, name)
    missing = [m for m in TASK_METHODS if _undefined(task, m)]
    if missing:
        allowed = f"a task that defines {', '.join(TASK_METHODS)} (it lacks {', '.join(missing)})"
        raise InvalidConfig(owner, "task", allowed, task)
    if name in TASKS:
        allowed = f"a name other than a built-in task's ({', '.join(TASKS)})"
        raise InvalidConfig(owner, "task.name", allowed, name)
    known = OWN_TASKS.get(name)
    if known is not None and type(known).__qualname__ != type(task).__qualname__:
        allowed = f"a name no other task has ({name!r} names {type(known).__qualname__})"
        raise InvalidConfig(owner, "task.name", allowed, name)
