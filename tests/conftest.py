"""Shared fixtures for the kit's own tests.

TensorFlow's C++ log level must be set before TensorFlow is first imported,
which is why it is set here and not in a test module.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

from cellverify.config import CellConfig, TrainConfig

#: A shape small enough that building and running a model takes milliseconds.
SMALL_CELL = CellConfig(assets=4, window=8, features=3, kernels=(3, 4, 1))
SMALL_TRAIN = TrainConfig(batch_size=4, steps=3, train_steps=3)


@pytest.fixture
def fresh_keras():
    """A clean Keras state (layer names, graphs) for tests that build models.

    ``free_memory=False`` skips the full garbage collection, which costs about
    0.3 s a test on these machines and is not needed between small models.
    """
    import keras

    keras.backend.clear_session(free_memory=False)


@pytest.fixture
def small_cell() -> CellConfig:
    return SMALL_CELL


@pytest.fixture
def small_train() -> TrainConfig:
    return SMALL_TRAIN
