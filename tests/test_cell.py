from __future__ import annotations

import keras
import numpy as np
import pytest

from cellverify import CellConfig, ConvRNNCell, TrainConfig, batch_for, build_model
from cellverify.cell import LAYER_NAMES

pytestmark = pytest.mark.usefixtures("fresh_keras")

CONFIGS = [
    CellConfig(assets=4, window=8, kernels=(3, 4, 1)),
    CellConfig(assets=2, window=3, features=1, kernels=(1, 1, 1)),
    CellConfig(
        assets=5,
        window=12,
        features=4,
        kernels=(2, 6, 1),
        activation="tanh",
        output_activation="linear",
        initializer="glorot_uniform",
    ),
    CellConfig(assets=3, window=6, kernels=(2, 3, 1), dropout=0.5, dropout_after=(1, 2, 3)),
    CellConfig(assets=3, window=6, kernels=(2, 3, 1), output_activation="linear", cash_bias=True),
]


def run_model(config: CellConfig, steps: int = 3, batch: int = 2) -> tuple[keras.Model, np.ndarray]:
    data = batch_for(config, TrainConfig(batch_size=batch, steps=steps))
    model = build_model(ConvRNNCell(config), config)
    return model, np.asarray(model(data.inputs))


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c.assets}x{c.window}x{c.features}")
def test_model_output_is_batch_by_steps_by_outputs(config):
    _, out = run_model(config, steps=3, batch=2)
    assert out.shape == (2, 3, config.outputs)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c.assets}x{c.window}x{c.features}")
def test_step_activations_have_the_topology_of_the_question(config):
    cell = ConvRNNCell(config)
    data = batch_for(config, TrainConfig(batch_size=2, steps=1))
    x = data.inputs[:, 0]
    state = cell.get_initial_state(batch_size=2)[0]
    acts = cell.step_activations(x, state)
    k1, k2, _ = config.kernels
    assert tuple(acts) == LAYER_NAMES
    assert acts["conv1"].shape == (2, config.assets, config.window - 2, k1)
    assert acts["conv2"].shape == (2, config.assets, 1, k2)
    assert acts["logits"].shape == (2, config.outputs)
    assert acts["output"].shape == (2, config.outputs)


def test_initial_state_is_the_uniform_portfolio():
    cell = ConvRNNCell(CellConfig(assets=4, cash_bias=True))
    state = np.asarray(cell.get_initial_state(batch_size=3)[0])
    np.testing.assert_array_equal(state, np.full((3, 5), 1 / 5, dtype=np.float32))


def test_parameter_count_matches_the_topology():
    config = CellConfig()  # 15x100x3, kernels 5-20-1
    cell = ConvRNNCell(config)
    cell.build((None, 15, 100, 3))
    conv1 = 1 * 3 * 3 * 5 + 5
    conv2 = 1 * 98 * 5 * 20 + 20
    conv3 = 1 * 1 * 21 * 1 + 1
    assert cell.count_params() == conv1 + conv2 + conv3


def test_cash_bias_is_a_trainable_scalar_and_cash_comes_first():
    config = CellConfig(
        assets=3, window=5, kernels=(2, 2, 1), output_activation="linear", cash_bias=True
    )
    cell = ConvRNNCell(config)
    cell.build((None, 3, 5, 3))
    assert cell.cash_logit is not None and tuple(cell.cash_logit.shape) == ()
    cell.cash_logit.assign(50.0)  # a huge cash logit puts everything in cash
    x = batch_for(config, TrainConfig(batch_size=1, steps=1)).inputs[:, 0]
    out = np.asarray(cell.step_activations(x, cell.get_initial_state(1)[0])["output"])
    assert out[0, 0] > 0.999


def test_same_seed_gives_identical_weights_and_another_seed_different_ones():
    def weights(seed):
        cell = ConvRNNCell(CellConfig(assets=3, window=6, kernels=(2, 3, 1), seed=seed))
        cell.build((None, 3, 6, 3))
        return [np.asarray(w) for w in cell.weights]

    a, b, c = weights(1), weights(1), weights(2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("after", [(1,), (2,), (3,), (1, 2, 3)])
def test_adding_dropout_does_not_redraw_the_conv_weights(after):
    """The question's claim 3 came from TF1 op-count seeding; our seeds are per part."""

    def weights(config):
        cell = ConvRNNCell(config)
        cell.build((None, 3, 6, 3))
        return [np.asarray(w) for w in cell.weights]

    base = CellConfig(assets=3, window=6, kernels=(2, 3, 1), seed=5)
    plain = weights(base)
    dropped = weights(base.replace(dropout=0.3, dropout_after=after))
    assert len(plain) == len(dropped)
    assert all(np.array_equal(x, y) for x, y in zip(plain, dropped))


def test_dropout_is_active_in_training_and_off_at_inference():
    config = CellConfig(
        assets=3,
        window=6,
        kernels=(4, 4, 1),
        output_activation="linear",
        activation="tanh",
        dropout=0.5,
        dropout_after=(1,),
    )
    cell = ConvRNNCell(config)
    x = batch_for(config, TrainConfig(batch_size=4, steps=1)).inputs[:, 0]
    s = cell.get_initial_state(4)[0]
    infer_a = np.asarray(cell(x, [s], training=False)[0])
    infer_b = np.asarray(cell(x, [s], training=False)[0])
    trained = np.asarray(cell(x, [s], training=True)[0])
    np.testing.assert_array_equal(infer_a, infer_b)
    assert not np.allclose(trained, infer_a)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c.assets}x{c.window}x{c.features}")
def test_get_config_from_config_rebuilds_a_cell_with_the_same_outputs(config):
    cell = ConvRNNCell(config)
    data = batch_for(config, TrainConfig(batch_size=2, steps=2))
    model = build_model(cell, config)
    out = np.asarray(model(data.inputs))
    clone = ConvRNNCell.from_config(cell.get_config())
    assert clone.cell_config == config
    clone_model = build_model(clone, config)
    clone_model(data.inputs)
    clone_model.set_weights(model.get_weights())
    np.testing.assert_array_equal(np.asarray(clone_model(data.inputs)), out)


def test_model_saved_as_keras_file_reloads_with_identical_outputs(tmp_path):
    config = CellConfig(
        assets=3,
        window=6,
        kernels=(2, 3, 1),
        cash_bias=True,
        output_activation="linear",
        dropout=0.2,
        dropout_after=(2,),
    )
    model, out = run_model(config)
    path = tmp_path / "cell.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    data = batch_for(config, TrainConfig(batch_size=2, steps=3))
    np.testing.assert_array_equal(np.asarray(loaded(data.inputs)), out)


def test_cell_accepts_its_config_as_a_dict():
    config = CellConfig(assets=3, window=5, kernels=(1, 2, 1))
    assert ConvRNNCell(config.to_dict()).cell_config == config
