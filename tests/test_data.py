from __future__ import annotations

import numpy as np
import pytest

from cellverify import CellConfig, InvalidConfig, TrainConfig, batch_for, synthetic_market
from cellverify.data import sample_batch


def test_same_seed_gives_the_same_market_and_another_seed_a_different_one():
    a = synthetic_market(4, 50, seed=1)
    b = synthetic_market(4, 50, seed=1)
    c = synthetic_market(4, 50, seed=2)
    np.testing.assert_array_equal(a.close, b.close)
    np.testing.assert_array_equal(a.high, b.high)
    assert not np.array_equal(a.close, c.close)


def test_highs_and_lows_bracket_the_open_and_close():
    m = synthetic_market(5, 200, seed=0)
    opens = np.vstack([m.close[:1], m.close[:-1]])
    assert np.all(m.high >= np.maximum(opens, m.close))
    assert np.all(m.low <= np.minimum(opens, m.close))
    assert np.all(m.low > 0)


def test_market_has_the_momentum_it_was_built_with():
    m = synthetic_market(20, 5000, seed=0, momentum=0.3)
    r = m.log_returns
    lag1 = np.mean([np.corrcoef(r[:-1, a], r[1:, a])[0, 1] for a in range(20)])
    # 20 x 5000 samples: the standard error of the mean autocorrelation is ~0.003.
    assert lag1 == pytest.approx(0.3, abs=0.02)


def test_batch_shapes_and_dtypes():
    cell = CellConfig(assets=4, window=10, features=3)
    b = batch_for(cell, TrainConfig(batch_size=6, steps=5))
    assert b.inputs.shape == (6, 5, 4, 10, 3) and b.inputs.dtype == np.float32
    assert b.relatives.shape == (6, 5, 4)
    assert b.targets.shape == (6, 5, 4)


def test_windows_are_normalised_by_their_latest_close():
    b = batch_for(CellConfig(assets=3, window=7), TrainConfig(batch_size=4, steps=2))
    np.testing.assert_array_equal(b.inputs[:, :, :, -1, 0], np.ones((4, 2, 3), np.float32))
    high, low, close = b.inputs[..., 1], b.inputs[..., 2], b.inputs[..., 0]
    assert np.all(high >= close) and np.all(low <= close)


def test_relatives_are_the_next_close_over_the_latest_close():
    m = synthetic_market(2, 40, seed=3)
    rng = np.random.default_rng(0)
    b = sample_batch(m, window=5, steps=3, batch_size=2, features=3, rng=rng)
    # The next step's window ends one period later: its second-to-last close,
    # over its last close, is the inverse of this step's relative.
    ratio = b.inputs[:, 1:, :, -2, 0]
    np.testing.assert_allclose(b.relatives[:, :-1], 1.0 / ratio, rtol=1e-6)


def test_extra_features_repeat_close_high_low():
    b = batch_for(CellConfig(assets=2, window=4, features=5), TrainConfig(batch_size=1, steps=1))
    np.testing.assert_array_equal(b.inputs[..., 3:5], b.inputs[..., 0:2])


def test_supervised_targets_are_distributions_that_depend_on_the_input():
    b = batch_for(CellConfig(assets=5, window=6), TrainConfig(batch_size=32, steps=2))
    np.testing.assert_allclose(b.targets.sum(axis=-1), 1.0, rtol=1e-6)
    last_return = np.log(b.inputs[:, :, :, -1, 0] / b.inputs[:, :, :, -2, 0])
    # The target ranks assets as their last return does.
    assert np.array_equal(np.argmax(b.targets, -1), np.argmax(last_return, -1))


def test_reference_losses_beat_the_uniform_output():
    cell = CellConfig(assets=8, window=10)
    b = batch_for(cell, TrainConfig(batch_size=512, steps=4))
    assert b.reference_loss("supervised") < b.uniform_loss("supervised") == pytest.approx(np.log(8))
    # With momentum, buying the last winner beats holding everything.
    assert b.reference_loss("portfolio") < b.uniform_loss("portfolio")


def test_batches_are_reproducible_from_the_configs_and_differ_by_draw():
    cell, train = CellConfig(assets=3, window=6), TrainConfig(batch_size=4, steps=2, seed=9)
    a, b, c = batch_for(cell, train), batch_for(cell, train), batch_for(cell, train, draw=1)
    np.testing.assert_array_equal(a.inputs, b.inputs)
    assert not np.array_equal(a.inputs, c.inputs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"momentum": 1.0}, "synthetic_market.momentum must be in \\(-1, 1\\)"),
        ({"volatility": 0.0}, "synthetic_market.volatility must be positive"),
    ],
)
def test_market_rejects_a_non_stationary_or_degenerate_process(kwargs, message):
    with pytest.raises(InvalidConfig, match=message):
        synthetic_market(2, 10, seed=0, **kwargs)


def test_sampling_from_too_short_a_market_says_how_long_it_must_be():
    m = synthetic_market(2, 5, seed=0)
    with pytest.raises(InvalidConfig, match=r"at least window \+ steps \+ 1 = 8 periods"):
        sample_batch(m, window=5, steps=2, batch_size=1, features=3, rng=np.random.default_rng(0))


@pytest.mark.parametrize("features", [1, 3, 5])
def test_each_window_is_its_asset_s_prices_over_the_latest_close(features):
    # The batch is gathered from a strided view; check it against the plain
    # definition, element by element, on a small market.
    m = synthetic_market(3, 30, seed=4)
    window, steps = 6, 2
    b = sample_batch(
        m,
        window=window,
        steps=steps,
        batch_size=3,
        features=features,
        rng=np.random.default_rng(5),
    )
    starts = np.random.default_rng(5).integers(0, m.periods - window - steps + 1, size=3)
    prices = (m.close, m.high, m.low)
    for i, start in enumerate(starts):
        for s in range(steps):
            end = start + s + window - 1
            for a in range(3):
                for f in range(features):
                    expected = prices[f % 3][end - window + 1 : end + 1, a] / m.close[end, a]
                    np.testing.assert_array_equal(
                        b.inputs[i, s, a, :, f], expected.astype(np.float32)
                    )
    assert b.inputs.flags["C_CONTIGUOUS"]


@pytest.mark.parametrize("features", [3, 5])
def test_a_batch_made_in_chunks_is_the_batch_made_at_once(monkeypatch, features):
    from cellverify.data import market as market_module

    m = synthetic_market(3, 60, seed=6)

    def made(chunk_bytes: int) -> np.ndarray:
        monkeypatch.setattr(market_module, "_CHUNK_BYTES", chunk_bytes)
        rng = np.random.default_rng(7)
        return sample_batch(m, window=6, steps=2, batch_size=7, features=features, rng=rng).inputs

    one_example = 2 * 3 * 6 * 3 * 8  # float64 bytes of one example's windows
    at_once = made(2**30)
    for examples in (1, 2, 3):  # 3 leaves a remainder of 1
        np.testing.assert_array_equal(made(examples * one_example), at_once)
