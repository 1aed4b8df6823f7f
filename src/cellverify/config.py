"""Configurations of the cell and of a training run, and the named presets.

Plain frozen dataclasses that validate on construction and round-trip through
dicts and JSON.  This module must not import TensorFlow: the CLI parses and
validates configurations before deciding whether TensorFlow is needed at all.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from cellverify.errors import InvalidConfig
from cellverify.vocabulary import (
    ACTIVATIONS,
    BOOLEAN_WORDS,
    DROPOUT_LAYERS,
    INITIALIZERS,
    OPTIMIZERS,
    DataSource,
    task_names,
)

__all__ = [
    "AS_ASKED",
    "PGPORTFOLIO",
    "PRESETS",
    "REMEDIED",
    "CellConfig",
    "Preset",
    "TrainConfig",
    "field_names",
    "parse_bool",
    "parse_field",
    "parse_keyword",
    "parse_value",
    "preset",
]


_MAX_SEED = 2**31 - 1
_MAX_ASSETS = 1024
_MAX_WINDOW = 4096
_MAX_LEARNING_RATE = 100.0

_C = TypeVar("_C", "CellConfig", "TrainConfig")


def parse_bool(text: str, *, field: str) -> bool:
    """``true/false/1/0/yes/no`` (any case) as a bool; anything else is an error
    naming ``field`` - ``maybe`` must not quietly mean False."""
    key = text.strip().lower()
    if key not in BOOLEAN_WORDS:
        raise InvalidConfig("option", field, f"one of {'/'.join(BOOLEAN_WORDS)}", text)
    return BOOLEAN_WORDS[key]


def field_names() -> tuple[frozenset[str], frozenset[str]]:
    """The field names of :class:`CellConfig` and of :class:`TrainConfig`."""
    return (
        frozenset(f.name for f in dataclasses.fields(CellConfig)),
        frozenset(f.name for f in dataclasses.fields(TrainConfig)),
    )


def parse_field(field: str, text: str) -> Any:
    """``text`` as a value of configuration field ``field``, typed like its
    default: tuples written with dashes or commas (``kernels=5-20-1``),
    booleans as ``true/false/1/0/yes/no``.  Raises InvalidConfig."""
    cell_fields, train_fields = field_names()
    if field not in cell_fields | train_fields:
        known = ", ".join(sorted(cell_fields | train_fields))
        raise InvalidConfig("option", field, f"a configuration field ({known})", field)
    default = (
        getattr(CellConfig(), field) if field in cell_fields else getattr(TrainConfig(), field)
    )
    try:
        if isinstance(default, bool):
            return parse_bool(text, field=field)
        if isinstance(default, tuple):
            return tuple(int(x) for x in text.replace(",", "-").split("-") if x.strip())
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
    except ValueError:
        raise InvalidConfig("option", field, f"{type(default).__name__} values", text) from None
    return text


def parse_keyword(text: str) -> Any:
    """A value for a spec'd cell's own keyword, from the command line: a
    boolean word, a Python literal (``4``, ``0.3``, ``'tanh'``), else the text."""
    if text.lower() in BOOLEAN_WORDS and not text.isdigit():
        return BOOLEAN_WORDS[text.lower()]
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_value(field: str, text: str, *, any_keyword: bool = False) -> Any:
    """``text`` as the value of ``field``: a configuration field's typed like
    its default (:func:`parse_field`).  With ``any_keyword`` (a cell that may
    be a spec's), another name, or a value a configuration field refuses (a
    GRU's ``activation=softsign``), is read as a keyword's
    (:func:`parse_keyword`) and left to the cell's own checks."""
    cell_fields, train_fields = field_names()
    if any_keyword and field not in cell_fields | train_fields:
        return parse_keyword(text)
    try:
        return parse_field(field, text)
    except InvalidConfig:
        if not any_keyword:
            raise
        return text


def _is_int(value: Any) -> bool:
    # bool is an int subclass, but True as a kernel count is a mistake.
    return isinstance(value, int) and not isinstance(value, bool)


def _check_int(owner: str, field: str, value: Any, low: int, high: int) -> None:
    if not _is_int(value) or not low <= value <= high:
        raise InvalidConfig(owner, field, f"an integer in [{low}, {high}]", value)


def _check_choice(owner: str, field: str, value: Any, choices: Sequence[str]) -> None:
    if value not in choices:
        raise InvalidConfig(owner, field, f"one of {', '.join(choices)}", value)


def _plain(value: Any) -> Any:
    """A vocabulary's member as its string (configurations hold plain values,
    so that they print and paste as written)."""
    return value.value if isinstance(value, StrEnum) else value


def _int_tuple(value: Any) -> Any:
    """Accept any sequence of ints (a JSON list, say) and store a tuple."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        return tuple(value)
    return value


def _from_dict(cls: type[_C], data: Mapping[str, Any]) -> _C:
    if not isinstance(data, Mapping):
        raise InvalidConfig(cls.__name__, "<dict>", "a mapping of field names to values", data)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise InvalidConfig(
            cls.__name__,
            unknown[0],
            f"a field of {cls.__name__} ({', '.join(sorted(names))})",
            data[unknown[0]],
        )
    return cls(**data)


@dataclass(frozen=True)
class CellConfig:
    """The topology and options of the conv-RNN cell (docs/design.md, 'The cell').

    ``kernels`` are the kernel counts (k1, k2, k3) of the three convs; k3 must
    be 1 because the last conv scores each asset with one number.  ``dropout``
    is a *rate* (0.0 drops nothing) applied after each layer listed in
    ``dropout_after`` (1, 2 or 3; 3 is the logits before the softmax).
    ``cash_bias`` adds the paper's learnable cash logit: the output then has
    ``assets + 1`` entries, cash first.  ``seed`` seeds every random part of the
    cell (initializers, dropout); each part gets its own derived seed, so adding
    a dropout layer does not re-draw the other layers' weights.
    """

    assets: int = 15
    window: int = 100
    features: int = 3
    kernels: tuple[int, int, int] = (5, 20, 1)
    activation: str = "relu"
    output_activation: str = "relu"
    initializer: str = "he_normal"
    dropout: float = 0.0
    dropout_after: tuple[int, ...] = ()
    cash_bias: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("activation", "output_activation", "initializer"):
            object.__setattr__(self, name, _plain(getattr(self, name)))
        object.__setattr__(self, "kernels", _int_tuple(self.kernels))
        object.__setattr__(self, "dropout_after", _int_tuple(self.dropout_after))
        owner = "CellConfig"
        _check_int(owner, "assets", self.assets, 2, _MAX_ASSETS)
        # conv1 is 1x3 and conv2 spans the remaining window - 2 periods.
        _check_int(owner, "window", self.window, 3, _MAX_WINDOW)
        _check_int(owner, "features", self.features, 1, 64)
        k = self.kernels
        if not (
            isinstance(k, tuple) and len(k) == 3 and all(_is_int(x) and 1 <= x <= 4096 for x in k)
        ):
            raise InvalidConfig(
                owner, "kernels", "three integers (k1, k2, k3), each in [1, 4096]", self.kernels
            )
        if k[2] != 1:
            raise InvalidConfig(
                owner, "kernels", "(k1, k2, 1): the last conv gives one score per asset", k
            )
        _check_choice(owner, "activation", self.activation, ACTIVATIONS)
        _check_choice(owner, "output_activation", self.output_activation, ACTIVATIONS)
        _check_choice(owner, "initializer", self.initializer, INITIALIZERS)
        rate = self.dropout
        if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0.0 <= rate < 1.0:
            raise InvalidConfig(owner, "dropout", "a rate in [0.0, 1.0) (0.0 drops nothing)", rate)
        after = self.dropout_after
        if not (
            isinstance(after, tuple)
            and all(_is_int(x) and x in DROPOUT_LAYERS for x in after)
            and len(set(after)) == len(after)
        ):
            raise InvalidConfig(
                owner,
                "dropout_after",
                f"distinct layer numbers from {', '.join(map(str, DROPOUT_LAYERS))}",
                self.dropout_after,
            )
        object.__setattr__(self, "dropout_after", tuple(sorted(after)))
        object.__setattr__(self, "dropout", float(rate))
        if not isinstance(self.cash_bias, bool):
            raise InvalidConfig(owner, "cash_bias", "True or False", self.cash_bias)
        _check_int(owner, "seed", self.seed, 0, _MAX_SEED)

    @property
    def outputs(self) -> int:
        """Entries of the output (and state): the assets, plus cash if any."""
        return self.assets + int(self.cash_bias)

    def replace(self, **changes: Any) -> CellConfig:
        """A copy with ``changes`` applied and validated."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (tuples become lists)."""
        d = dataclasses.asdict(self)
        d["kernels"] = list(self.kernels)
        d["dropout_after"] = list(self.dropout_after)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CellConfig:
        """Build from a dict, rejecting unknown keys; missing keys take defaults."""
        return _from_dict(cls, data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> CellConfig:
        return cls.from_dict(json.loads(text))


@dataclass(frozen=True)
class TrainConfig:
    """How the cell is trained (docs/design.md, 'Configuration').

    ``steps`` is the sequence length fed to the RNN, ``train_steps`` the number
    of optimizer updates.  ``seed`` seeds the synthetic market, the batches and
    anything random in training; the cell's own seed is ``CellConfig.seed``.
    ``data`` is where the prices come from: ``synthetic`` (the kit's seeded
    market), ``sp500`` (real closes, the ``data`` extra) or a CSV path
    (:mod:`cellverify.data.prices`).
    """

    optimizer: str = "adam"
    learning_rate: float = 1e-3
    batch_size: int = 100
    steps: int = 4
    train_steps: int = 200
    task: str = "portfolio"
    seed: int = 0
    data: str = DataSource.SYNTHETIC.value

    def __post_init__(self) -> None:
        owner = "TrainConfig"
        for name in ("optimizer", "task", "data"):
            object.__setattr__(self, name, _plain(getattr(self, name)))
        _check_choice(owner, "optimizer", self.optimizer, OPTIMIZERS)
        lr = self.learning_rate
        if (
            not isinstance(lr, (int, float))
            or isinstance(lr, bool)
            or not math.isfinite(lr)
            or not 0.0 < lr <= _MAX_LEARNING_RATE
        ):
            raise InvalidConfig(
                owner, "learning_rate", f"a finite number in (0, {_MAX_LEARNING_RATE}]", lr
            )
        object.__setattr__(self, "learning_rate", float(lr))
        _check_int(owner, "batch_size", self.batch_size, 1, 65536)
        _check_int(owner, "steps", self.steps, 1, 10000)
        _check_int(owner, "train_steps", self.train_steps, 0, 10_000_000)
        _check_choice(owner, "task", self.task, task_names())
        _check_int(owner, "seed", self.seed, 0, _MAX_SEED)
        if not isinstance(self.data, str) or not self.data.strip():
            allowed = "synthetic, sp500 or the path of a CSV file or directory"
            raise InvalidConfig(owner, "data", allowed, self.data)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` applied and validated."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        return _from_dict(cls, data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        return cls.from_dict(json.loads(text))


@dataclass(frozen=True)
class Preset:
    """A named pair of configurations with a one-line account of where it comes from."""

    name: str
    cell: CellConfig
    train: TrainConfig
    summary: str

    def with_seed(self, seed: int) -> tuple[CellConfig, TrainConfig]:
        """Both configurations with ``seed`` for the cell and the run alike."""
        return self.cell.replace(seed=seed), self.train.replace(seed=seed)


AS_ASKED = Preset(
    name="as-asked",
    cell=CellConfig(),
    train=TrainConfig(),
    summary=(
        "The 2018 question's cell: ReLU convs, ReLU before the softmax, He-normal init, "
        "kernels 5-20-1, Adam at 1e-3."
    ),
)

REMEDIED = Preset(
    name="remedied",
    cell=CellConfig(activation="elu", output_activation="linear"),
    train=TrainConfig(),
    summary=(
        "ELU in the convs and a linear last conv, He-normal init, Adam at 1e-3: of six "
        "remedies measured over 8 seeds on both tasks, the only one that lowered the "
        "evaluation loss on every seed of both (docs/question.md, 'Which remedy')."
    ),
)
"""The fix our measurements show most robust; see docs/question.md "Which remedy".

ELU keeps every conv unit's gradient nonzero (no unit can die), and a linear
last conv keeps the logits from being clipped to exactly 0, which is what makes
the softmax exactly uniform and the gradient exactly zero (docs/design.md, 'Measured facts').
"""

PGPORTFOLIO = Preset(
    name="pgportfolio",
    cell=CellConfig(output_activation="linear", cash_bias=True),
    train=TrainConfig(),
    summary=(
        "The paper's EIIE (Jiang, Xu & Liang 2017): ReLU convs, a linear last conv and a "
        "learnable cash bias as an extra softmax input."
    ),
)

PRESETS: dict[str, Preset] = {p.name: p for p in (AS_ASKED, REMEDIED, PGPORTFOLIO)}


def preset(name: str) -> Preset:
    """The preset called ``name`` (``as-asked``, ``remedied``, ``pgportfolio``)."""
    key = name.lower().replace("_", "-")
    if key not in PRESETS:
        raise InvalidConfig("Preset", "name", f"one of {', '.join(PRESETS)}", name)
    return PRESETS[key]
