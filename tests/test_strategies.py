from __future__ import annotations

import pytest
from hypothesis import given, settings

from cellverify import InvalidConfig
from cellverify.checks.cases.case import Case
from cellverify.checks.cases.regions import LEARNABLE_REGION, ROBUST_REGION, WHOLE_SPACE
from cellverify.checks.draws.strategies import (
    cell_configs,
    input_specs,
    robust_cases,
    shapes,
    train_configs,
)


@pytest.mark.parametrize(
    ("strategy", "message"),
    [
        (lambda: shapes(min_assets=6, max_assets=3), "^min_assets=6 is larger than max_assets=3$"),
        (lambda: shapes(min_assets=1), "^min_assets=1 is smaller than the least allowed, 2$"),
        (lambda: shapes(min_window=2), "^min_window=2 is smaller than the least allowed, 3$"),
        (lambda: cell_configs(max_k1=0), "^min_k1=1 is larger than max_k1=0$"),
        (lambda: train_configs(max_batch=0), "^min_batch=1 is larger than max_batch=0$"),
    ],
)
def test_strategy_bounds_are_checked_when_the_strategy_is_defined(strategy, message):
    with pytest.raises(InvalidConfig, match=message):
        strategy()


@settings(max_examples=30, derandomize=True, database=None)
@given(cell_configs(region=ROBUST_REGION))
def test_robust_cells_have_no_relu_and_no_dropout_noise(config):
    assert config.activation != "relu"
    assert config.output_activation != "relu"
    assert config.dropout == 0.0


@settings(max_examples=30, derandomize=True, database=None)
@given(cell_configs(region=WHOLE_SPACE, full_shape=False))
def test_whole_space_cells_are_small_by_default(config):
    assert config.assets <= 5
    assert config.window <= 12
    assert config.kernels[2] == 1


def test_full_shape_is_drawn_when_asked():
    from hypothesis import find

    full = find(
        cell_configs(full_shape=True),
        lambda c: (c.assets, c.window, c.features) == (15, 100, 3),
        settings=settings(max_examples=200, derandomize=True, database=None),
    )
    assert full.window == 100


@settings(max_examples=100, derandomize=True, database=None)
@given(cell_configs(region=LEARNABLE_REGION, full_shape=True))
def test_a_region_with_a_window_ceiling_never_draws_a_longer_window(config):
    """loss_decreases is not claimed at the question's 100-period window, so
    even a draw that asks for the full shape stays within 12 periods there."""
    assert config.window <= LEARNABLE_REGION.max_window


def test_a_window_beyond_the_ceiling_is_flagged_outside_the_region():
    assert LEARNABLE_REGION.outside({"window": 100}) == ["window=100"]
    assert LEARNABLE_REGION.outside({"window": 12}) == []
    assert ROBUST_REGION.outside({"window": 100}) == []


@settings(max_examples=50, derandomize=True, database=None)
@given(train_configs(region=ROBUST_REGION))
def test_learning_rates_stay_in_the_optimizers_range(train):
    low, high = ROBUST_REGION.learning_rates[train.optimizer]
    assert low <= train.learning_rate <= high * (1 + 1e-12)


def test_learnable_region_is_the_robust_region_on_the_supervised_task():
    assert LEARNABLE_REGION.tasks == ("supervised",)
    assert LEARNABLE_REGION.activations == ROBUST_REGION.activations


@settings(max_examples=30, derandomize=True, database=None)
@given(input_specs())
def test_input_windows_are_finite_and_positive(spec):
    from cellverify import CellConfig, TrainConfig

    case = Case(CellConfig(assets=3, window=5), TrainConfig(batch_size=2, steps=2), spec)
    x = case.batch().inputs
    assert x.shape == (2, 2, 3, 5, 3)
    assert (x > 0).all()
    assert (x < float("inf")).all()


@settings(max_examples=10, derandomize=True, database=None)
@given(robust_cases())
def test_a_case_round_trips_through_its_dict(case):
    assert Case.from_dict(case.to_dict()) == case
