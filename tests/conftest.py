"""Shared fixtures for the kit's own tests."""

from __future__ import annotations

import pytest

from cellverify.config import CellConfig, TrainConfig

#: A shape small enough that building and running a model takes milliseconds.
SMALL_CELL = CellConfig(assets=4, window=8, features=3, kernels=(3, 4, 1))
SMALL_TRAIN = TrainConfig(batch_size=4, steps=3, train_steps=3)


@pytest.fixture
def fresh_keras():
    """A clean Keras state (layer names, graphs) for tests that build models."""
    from cellverify.model import fresh_session

    fresh_session()


@pytest.fixture
def small_cell() -> CellConfig:
    return SMALL_CELL


@pytest.fixture
def small_train() -> TrainConfig:
    return SMALL_TRAIN


@pytest.fixture
def small_cli_args() -> list[str]:
    """Command-line options for a run that takes well under a second."""
    from .cli_cells import SMALL_SHAPE_ARGS

    return [*SMALL_SHAPE_ARGS, "--steps", "1", "--train-steps", "2", "--jobs", "1"]
