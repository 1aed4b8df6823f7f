"""Hypothesis strategies for configurations, shapes and input windows.

Strategies only draw plain data (configs and input descriptions); models are
built in the test body.  Every strategy takes keyword-only bounds and checks
them, in Hypothesis's style (``min_assets=6 is larger than max_assets=3``).

Two regions of the configuration space:

* :func:`any_cases` - everything :class:`~cellverify.config.CellConfig` allows
  (at small shapes), including the question's fragile cell.  The structural
  invariants must hold here.
* :func:`robust_cases` - the region on which the robustness invariants
  (``gradients_nonzero``, ``loss_decreases``, ``init_near_uniform``) are
  claimed; measured, see :data:`ROBUST_REGION` and docs/invariants.md,
  "Regions, and what was left out".

Choices are listed simplest first, because Hypothesis shrinks towards the
first: a falsifying case shrinks to the plainest configuration that still
fails, so the field left standing is the cause.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st

from cellverify.checks.cases.case import Case
from cellverify.checks.cases.regions import (
    ROBUST_REGION,
    WHOLE_SPACE,
    Region,
    rate_at,
)
from cellverify.checks.cases.sizes import (
    MAX_BATCH,
    MAX_K1,
    MAX_K2,
    MAX_STEPS,
    kernel_ranges,
    shape_ranges,
)
from cellverify.checks.draws.profiles import current_profile
from cellverify.config import CellConfig, TrainConfig
from cellverify.data.inputs import INPUT_KINDS, SCALES, InputSpec
from cellverify.errors import InvalidConfig
from cellverify.vocabulary import DROPOUT_LAYERS

__all__ = [
    "MAX_SEED",
    "any_cases",
    "cases",
    "cell_configs",
    "full_shape_allowed",
    "input_specs",
    "robust_cases",
    "shapes",
    "train_configs",
]

#: Seeds are drawn from 0 to this.
MAX_SEED = 2**16


def _check_range(name: str, low: float, high: float, floor: float) -> None:
    """Validate bounds when the strategy is defined, not when it is drawn from."""
    if low < floor:
        raise InvalidConfig(
            "strategies",
            f"min_{name}",
            f"at least {floor}",
            low,
            message=f"min_{name}={low!r} is smaller than the least allowed, {floor!r}",
        )
    if low > high:
        raise InvalidConfig(
            "strategies",
            f"min_{name}",
            f"at most max_{name}",
            low,
            message=f"min_{name}={low!r} is larger than max_{name}={high!r}",
        )


def shapes(
    *,
    min_assets: int = 2,
    max_assets: int = 5,
    min_window: int = 3,
    max_window: int = 12,
    max_features: int = 3,
) -> st.SearchStrategy[dict[str, int]]:
    """``assets``, ``window`` and ``features``, small by default."""
    _check_range("assets", min_assets, max_assets, 2)
    _check_range("window", min_window, max_window, 3)
    _check_range("features", 1, max_features, 1)
    return st.fixed_dictionaries(
        {
            "assets": st.integers(min_assets, max_assets),
            "window": st.integers(min_window, max_window),
            "features": st.integers(1, max_features),
        }
    )


#: The question's shape, drawn under the thorough profile where a region claims it.
_FULL_SHAPE = {"assets": 15, "window": 100, "features": 3}


#: Field names a test may pin, and where each goes (``seed`` goes to both).
CELL_FIELDS: frozenset[str] = frozenset(f.name for f in dataclasses.fields(CellConfig))
TRAIN_FIELDS: frozenset[str] = frozenset(f.name for f in dataclasses.fields(TrainConfig))


def check_pinned(pinned: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split ``pinned`` into cell and training fields, each validated.

    Raises InvalidConfig naming an unknown field (with the known ones) or a
    value the configurations refuse.
    """
    unknown = sorted(set(pinned) - CELL_FIELDS - TRAIN_FIELDS)
    if unknown:
        known = ", ".join(sorted(CELL_FIELDS | TRAIN_FIELDS))
        raise InvalidConfig("pinned", unknown[0], f"a configuration field ({known})", unknown[0])
    cell = {k: v for k, v in pinned.items() if k in CELL_FIELDS}
    train = {k: v for k, v in pinned.items() if k in TRAIN_FIELDS}
    # Validate the values now, not when the first example is drawn.
    CellConfig().replace(**cell)
    TrainConfig().replace(**train)
    return cell, train


def full_shape_allowed(region: Region, full_shape: bool | None) -> bool:
    """Whether the question's 15x100x3 shape is drawn: asked for (by default
    under the thorough profile) and inside ``region``."""
    wanted = current_profile() == "thorough" if full_shape is None else full_shape
    return wanted and region.holds("window", _FULL_SHAPE["window"])


def cell_configs(
    *,
    region: Region = WHOLE_SPACE,
    max_k1: int = MAX_K1,
    max_k2: int = MAX_K2,
    full_shape: bool | None = None,
    pinned: Mapping[str, Any] | None = None,
) -> st.SearchStrategy[CellConfig]:
    """Cell configurations from ``region``, with the ``pinned`` fields held fixed.

    ``full_shape`` adds the question's 15x100x3 shape to the draw, where the
    region claims a 100-period window; by default it is on only under the
    ``thorough`` profile.
    """
    _check_range("k1", 1, max_k1, 1)
    _check_range("k2", 1, max_k2, 1)
    pins, _ = check_pinned({k: v for k, v in (pinned or {}).items() if k in CELL_FIELDS})
    ranges = shape_ranges(region)
    small = shapes(
        min_assets=ranges["assets"][0],
        max_assets=ranges["assets"][1],
        min_window=ranges["window"][0],
        max_window=ranges["window"][1],
    )
    full = full_shape_allowed(region, full_shape)
    shape_strategy = small | st.just(dict(_FULL_SHAPE)) if full else small
    (_, top1), (_, top2) = kernel_ranges(region, max_k1, max_k2)
    return _cell_configs(region, top1, top2, shape_strategy, pins)


@st.composite
def _cell_configs(
    draw: Any,
    region: Region,
    max_k1: int,
    max_k2: int,
    shape_strategy: st.SearchStrategy[dict[str, int]],
    pinned: Mapping[str, Any],
) -> CellConfig:
    def pick(name: str, strategy: st.SearchStrategy[Any]) -> Any:
        return pinned[name] if name in pinned else draw(strategy)

    shape = {k: v for k, v in draw(shape_strategy).items() if k not in pinned}
    after = pick(
        "dropout_after",
        st.lists(st.sampled_from(DROPOUT_LAYERS), unique=True, max_size=len(DROPOUT_LAYERS)),
    )
    rate = pick("dropout", st.sampled_from((0.0, region.max_dropout)) if after else st.just(0.0))
    kernels = pick(
        "kernels",
        st.tuples(
            st.integers(region.min_kernels[0], max_k1),
            st.integers(region.min_kernels[1], max_k2),
            st.just(1),
        ),
    )
    return CellConfig(
        **{**shape, **{k: pinned[k] for k in ("assets", "window", "features") if k in pinned}},
        kernels=kernels,
        activation=pick("activation", st.sampled_from(region.activations)),
        output_activation=pick("output_activation", st.sampled_from(region.output_activations)),
        initializer=pick("initializer", st.sampled_from(region.initializers)),
        dropout=rate,
        dropout_after=tuple(after),
        cash_bias=pick("cash_bias", st.sampled_from(region.cash_bias)),
        seed=pick("seed", st.integers(0, MAX_SEED)),
    )


def train_configs(
    *,
    region: Region = WHOLE_SPACE,
    min_batch: int = 1,
    max_batch: int = MAX_BATCH,
    max_steps: int = MAX_STEPS,
    train_steps: int = 0,
    pinned: Mapping[str, Any] | None = None,
) -> st.SearchStrategy[TrainConfig]:
    """Training configurations, with the ``pinned`` fields held fixed; the
    learning rate is log-uniform in the optimizer's range."""
    _check_range("batch", min_batch, max_batch, 1)
    _check_range("steps", 1, max_steps, 1)
    _, pins = check_pinned({k: v for k, v in (pinned or {}).items() if k in TRAIN_FIELDS})
    return _train_configs(region, (min_batch, max_batch), max_steps, train_steps, pins)


@st.composite
def _train_configs(
    draw: Any,
    region: Region,
    batch: tuple[int, int],
    max_steps: int,
    train_steps: int,
    pinned: Mapping[str, Any],
) -> TrainConfig:
    def pick(name: str, strategy: st.SearchStrategy[Any]) -> Any:
        return pinned[name] if name in pinned else draw(strategy)

    optimizer = pick("optimizer", st.sampled_from(sorted(region.learning_rates)))
    rate = pinned.get("learning_rate")
    if rate is None:
        rate = rate_at(region, optimizer, draw(st.floats(0.0, 1.0)))
    return TrainConfig(
        optimizer=optimizer,
        learning_rate=rate,
        batch_size=pick("batch_size", st.integers(*batch)),
        steps=pick("steps", st.integers(1, max_steps)),
        train_steps=pinned.get("train_steps", train_steps),
        task=pick("task", st.sampled_from(region.tasks)),
        seed=pick("seed", st.integers(0, MAX_SEED)),
    )


@st.composite
def input_specs(
    draw: Any, *, adversarial: bool = True, only: tuple[str, float] | None = None
) -> InputSpec:
    """Input windows: the synthetic market, or adversarial ones (constant
    prices, large moves, raw prices scaled by :data:`~cellverify.data.SCALES`).
    ``only`` fixes the ``(kind, scale)`` and draws the seed alone."""
    if only is not None:
        kind, scale = only
    else:
        kind = draw(st.sampled_from(INPUT_KINDS if adversarial else INPUT_KINDS[:1]))
        scale = draw(st.sampled_from(SCALES)) if kind == "scaled" else 1.0
    return InputSpec(kind=kind, scale=scale, seed=draw(st.integers(0, MAX_SEED)))


def cases(
    *,
    region: Region = WHOLE_SPACE,
    adversarial_inputs: bool = False,
    full_shape: bool | None = None,
    pinned: Mapping[str, Any] | None = None,
    inputs: tuple[str, float] | None = None,
    **train_kwargs: Any,
) -> st.SearchStrategy[Case]:
    """Whole test cases: cell, training and inputs (``full_shape`` and
    ``pinned`` as in :func:`cell_configs`, ``inputs`` as ``only`` in
    :func:`input_specs`, the rest as in :func:`train_configs`)."""
    check_pinned(pinned or {})
    return st.builds(
        Case,
        cell=cell_configs(region=region, full_shape=full_shape, pinned=pinned),
        train=train_configs(region=region, pinned=pinned, **train_kwargs),
        inputs=input_specs(adversarial=adversarial_inputs, only=inputs),
    )


def any_cases(**kwargs: Any) -> st.SearchStrategy[Case]:
    """Cases from the whole space (the question's cell included)."""
    return cases(region=WHOLE_SPACE, **kwargs)


def robust_cases(**kwargs: Any) -> st.SearchStrategy[Case]:
    """Cases from the robust region (see :data:`ROBUST_REGION`)."""
    return cases(region=ROBUST_REGION, **kwargs)
