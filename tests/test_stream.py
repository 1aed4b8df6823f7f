from __future__ import annotations

import threading

import numpy as np
import pytest

from cellverify import CellConfig, TrainConfig, batch_for
from cellverify.data.market import market_for
from cellverify.data.stream import prefetched


def test_prefetched_batches_are_the_ones_made_in_turn():
    cell, run = CellConfig(assets=3, window=6), TrainConfig(batch_size=2, steps=2)
    market = market_for(cell, run)

    def make(draw):
        return batch_for(cell, run, market=market, draw=draw)

    ahead = list(prefetched(make, 4))
    assert len(ahead) == 4
    for draw, batch in enumerate(ahead):
        np.testing.assert_array_equal(batch.inputs, make(draw).inputs)


def test_prefetched_makes_each_batch_outside_the_caller_s_thread_and_only_once():
    made = []

    def make(draw):
        made.append((draw, threading.current_thread().name))
        return draw

    assert list(prefetched(make, 3)) == [0, 1, 2]
    assert [d for d, _ in made] == [0, 1, 2]
    assert all(name.startswith("cellverify-batches") for _, name in made)


def test_prefetched_of_nothing_makes_nothing():
    assert list(prefetched(lambda draw: pytest.fail("made a batch"), 0)) == []


def test_prefetched_raises_the_maker_s_error_at_its_batch():
    def make(draw):
        if draw == 1:
            raise ValueError("draw 1 is bad")
        return draw

    stream = prefetched(make, 3)
    assert next(stream) == 0
    with pytest.raises(ValueError, match="draw 1 is bad"):
        next(stream)
