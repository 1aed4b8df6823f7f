"""Options the commands share, and their parsing (no TensorFlow here).

Everything a user can get wrong on the command line is checked here, before
any work starts: values, presets, ``--set`` fields, output paths.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from typing import Any

from cellverify.cli.progress import Progress
from cellverify.config import (
    PRESETS,
    CellConfig,
    TrainConfig,
    field_names,
    parse_bool,
    parse_field,
    parse_value,
    preset,
)
from cellverify.contracts import Params
from cellverify.errors import InvalidConfig
from cellverify.model.factory import DEFAULT_FACTORY
from cellverify.render.outputs import check_writable, require_matplotlib
from cellverify.vocabulary import (
    ACTIVATIONS,
    BOOLEAN_WORDS,
    INITIALIZERS,
    OPTIMIZERS,
    PORTFOLIO_TASKS,
    DataSource,
    know_task_name,
)

__all__ = [
    "CELL_OPTIONS",
    "TRAIN_OPTIONS",
    "add_cell_option",
    "add_config_options",
    "add_fast_options",
    "add_training_options",
    "boolean",
    "check_outputs",
    "configs_from_args",
    "int_list",
    "parse_sets",
    "pinned_from_args",
    "progress",
    "quiet_tensorflow",
]


def quiet_tensorflow() -> None:
    # TensorFlow's C++ start-up chatter (oneDNN, CPU features) is noise to a
    # CLI user; only set it if the user has not chosen a level.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 5,20,1. Received: {text!r}"
        ) from None


def boolean(text: str) -> bool:
    try:
        return parse_bool(text, field="value")
    except InvalidConfig:
        raise argparse.ArgumentTypeError(
            f"expected one of {'/'.join(BOOLEAN_WORDS)}. Received: {text!r}"
        ) from None


CELL_OPTIONS: dict[str, dict[str, Any]] = {
    "assets": {"type": int},
    "window": {"type": int},
    "features": {"type": int},
    "kernels": {"type": int_list, "metavar": "K1,K2,K3"},
    "activation": {"choices": ACTIVATIONS},
    "output_activation": {"choices": ACTIVATIONS},
    "initializer": {"choices": INITIALIZERS},
    "dropout": {"type": float, "metavar": "RATE"},
    "dropout_after": {"type": int_list, "metavar": "LAYERS"},
    "cash_bias": {"type": boolean, "metavar": "BOOL"},
}
TRAIN_OPTIONS: dict[str, dict[str, Any]] = {
    "optimizer": {"choices": OPTIMIZERS},
    "learning_rate": {"type": float, "metavar": "LR"},
    "batch_size": {"type": int},
    "steps": {"type": int, "help": "sequence length"},
    "train_steps": {"type": int, "help": "optimizer updates"},
    "task": {"choices": PORTFOLIO_TASKS},
    "data": {
        "metavar": "sp500|PATH",
        "help": "prices: sp500 (the data extra) or a CSV file or directory (default synthetic)",
    },
}


def add_config_options(parser: argparse.ArgumentParser, default_preset: str) -> None:
    """``--preset`` and one option per configuration field (overriding the preset)."""
    parser.add_argument(
        "--preset", default=default_preset, choices=sorted(PRESETS), help="start from this preset"
    )
    group = parser.add_argument_group("configuration (overrides the preset)")
    for field, kwargs in {**CELL_OPTIONS, **TRAIN_OPTIONS}.items():
        group.add_argument("--" + field.replace("_", "-"), dest=field, default=None, **kwargs)


def add_set_option(parser: argparse.ArgumentParser) -> None:
    """``--set NAME=VALUE``, repeatable: a configuration field, or any
    keyword of a spec's factory."""
    parser.add_argument(
        "--set",
        action="append",
        metavar="NAME=VALUE",
        help="pin a configuration field, or any keyword of a spec's factory (repeatable; "
        "overrides --preset), e.g. kernels=5-20-1 or units=4",
    )


def add_cell_option(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument("--cell", default=DEFAULT_FACTORY, metavar="MODULE:FACTORY", help=help_text)


def add_fast_options(parser: argparse.ArgumentParser) -> None:
    """The fast path is the default; ``--plain`` opts out."""
    parser.add_argument(
        "--plain",
        dest="fast",
        action="store_false",
        help="train through keras.layers.RNN instead of the fast path (the default for the "
        "shipped cell: the same function within float32 rounding, several times faster)",
    )
    parser.add_argument("--fast", dest="fast", action="store_true", help=argparse.SUPPRESS)
    parser.set_defaults(fast=True)


def add_training_options(parser: argparse.ArgumentParser, *, plot: str) -> None:
    """Options shared by the commands that train across seeds (diagnose, sweep)."""
    add_cell_option(parser, "the cell factory to train (default: the shipped cell)")
    parser.add_argument(
        "--jobs", type=int, default=None, help="worker processes (default: one per core)"
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on Dask: a scheduler address (tcp://host:8786) or local[:N], a local "
        "cluster of N single-threaded workers (the dask extra)",
    )
    add_fast_options(parser)
    parser.add_argument("--json", metavar="PATH", help="also write the report as JSON")
    parser.add_argument("--plot", metavar="PATH", help=plot)


def check_outputs(args: argparse.Namespace) -> None:
    """Every output path the command will write, checked before any work."""
    for option in ("json", "plot"):
        path = getattr(args, option, None)
        if path:
            check_writable(path, f"--{option}")
    if getattr(args, "plot", None):
        require_matplotlib("--plot")


def configs_from_args(args: argparse.Namespace) -> tuple[CellConfig, TrainConfig]:
    """The preset with every given option applied; raises InvalidConfig."""
    base = preset(args.preset)
    cell = {k: getattr(args, k) for k in CELL_OPTIONS if getattr(args, k) is not None}
    train = {k: getattr(args, k) for k in TRAIN_OPTIONS if getattr(args, k) is not None}
    return fit_to_data(base.cell.replace(**cell), base.train.replace(**train), set(cell))


def fit_to_data(
    cell: CellConfig, train: TrainConfig, given: set[str]
) -> tuple[CellConfig, TrainConfig]:
    """With real prices, the preset's shape adapts to them unless set
    explicitly: features to what the prices have (closes only: 1), assets to
    at most as many as there are.  The prices are read and checked here,
    before any work; a bad file is an error naming file, row and column."""
    if train.data == DataSource.SYNTHETIC:
        return cell, train
    from cellverify.data.market import check_prices_fit
    from cellverify.data.prices import resolve_data

    history = resolve_data(train.data)
    assert history is not None
    if "features" not in given:
        cell = cell.replace(features=history.features)
    if "assets" not in given and cell.assets > history.assets:
        cell = cell.replace(assets=history.assets)
    check_prices_fit(history, cell, train)
    return cell, train


def parse_sets(specs: Sequence[str] | None, *, any_keyword: bool = False) -> dict[str, Any]:
    """``["activation=relu", "kernels=5-20-1"]`` -> ``{field: typed value}``
    (:func:`cellverify.config.parse_value`).  With ``any_keyword`` (a cell
    named by ``--cell``, which may be a spec's with keywords of its own), any
    name is kept; once the cell is known to be a portfolio cell,
    :func:`validate_portfolio_pins` judges the values."""
    pinned: dict[str, Any] = {}
    for spec in specs or ():
        field, sep, value = spec.partition("=")
        field = field.strip().replace("-", "_")
        if not sep or not field:
            raise InvalidConfig(
                "check", "set", "FIELD=VALUE, such as activation=relu or kernels=5-20-1", spec
            )
        pinned[field] = parse_value(field, value.strip(), any_keyword=any_keyword)
    return pinned


def validate_portfolio_pins(pinned: Mapping[str, Any]) -> dict[str, Any]:
    """``pinned`` typed as a portfolio cell's configuration fields; raises
    InvalidConfig for a name that is no field, a value a field does not
    allow, or a combination that cannot coexist."""
    cell_fields, train_fields = field_names()
    typed = {
        k: parse_field(k, str(v)) if isinstance(v, str) or k not in cell_fields | train_fields
        else v
        for k, v in pinned.items()
    }  # fmt: skip
    CellConfig().replace(**{k: v for k, v in typed.items() if k in cell_fields})
    TrainConfig().replace(**{k: v for k, v in typed.items() if k in train_fields})
    return typed


def configs_for_cell(
    executor: Any,
    args: argparse.Namespace,
    cell: CellConfig,
    train: TrainConfig,
    sets: Mapping[str, Any],
) -> tuple[CellConfig | Params, TrainConfig]:
    """The configurations ``diagnose`` and ``sweep`` run ``args.cell`` with,
    asked of the executor's workers as they start (this process never
    imports the cell): a portfolio cell's ``cell`` and ``train`` with
    ``sets`` applied; a spec's own configuration (``sets`` pinning its
    keywords, :meth:`cellverify.CellSpec.params_for`) on its own task."""
    from cellverify.training.runs import start_here, start_worker

    _, train_fields = field_names()
    own = {k: v for k, v in sets.items() if k not in train_fields}
    started = executor.start(start_worker, args.cell, own, here=start_here)
    if started is None:  # a portfolio cell
        typed = validate_portfolio_pins(sets)
        train_sets = {k: v for k, v in typed.items() if k in train_fields}
        cell_sets = {k: v for k, v in typed.items() if k not in train_fields}
        return cell.replace(**cell_sets), train.replace(**train_sets)
    given = [name for name in CELL_OPTIONS if getattr(args, name, None) is not None]
    if given:
        flag = "--" + given[0].replace("_", "-")
        allowed = "--set NAME=VALUE for a spec's own keywords (its cell has no portfolio fields)"
        raise InvalidConfig(args.cell, flag, allowed, getattr(args, given[0]))
    if train.data != DataSource.SYNTHETIC:
        allowed = "synthetic: a spec's cell trains on sequences of its own inputs"
        raise InvalidConfig(args.cell, "data", allowed, train.data)
    train_sets = {k: v for k, v in sets.items() if k in train_fields}
    know_task_name(started["task"])  # a spec's own task: its workers define it
    return Params.from_dict(started["params"]), train.replace(task=started["task"], **train_sets)


#: Fields a preset pins for ``check --preset``: its cell (shape, kernels,
#: activations, initializer, dropout, cash) and task.  Seeds, inputs, the
#: optimizer, learning rate, batch and sequence length stay drawn.
_PRESET_TRAIN_FIELDS = ("task",)


def pinned_from_args(
    preset_name: str | None, sets: Mapping[str, Any], *, validate: bool = True
) -> dict[str, Any]:
    """The fields ``check`` holds fixed: a preset's, then each ``--set``;
    ``validate=False`` leaves it to the caller, once it knows the cell's
    kind (:func:`validate_portfolio_pins`)."""
    pinned: dict[str, Any] = {}
    if preset_name:
        chosen = preset(preset_name)
        pinned.update({k: v for k, v in chosen.cell.to_dict().items() if k != "seed"})
        pinned["kernels"] = tuple(pinned["kernels"])
        pinned["dropout_after"] = tuple(pinned["dropout_after"])
        pinned.update({k: getattr(chosen.train, k) for k in _PRESET_TRAIN_FIELDS})
    pinned.update(sets)
    if validate:  # a shape and kernels that cannot coexist fail here
        validate_portfolio_pins(pinned)
    return pinned


def progress(label: str) -> Progress:
    """Progress of ``label``'s runs on stderr (:class:`cellverify.cli.progress.Progress`)."""
    return Progress(label)
