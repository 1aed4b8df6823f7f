from __future__ import annotations

import json

import pytest

from cellverify import (
    AS_ASKED,
    PGPORTFOLIO,
    PRESETS,
    REMEDIED,
    CellConfig,
    InvalidConfig,
    TrainConfig,
    preset,
)

# (field, bad value, fragment of "what is allowed")
CELL_REJECTS = [
    ("assets", 1, "an integer in [2, 1024]"),
    ("assets", 2.0, "an integer"),
    ("assets", True, "an integer"),
    ("window", 2, "an integer in [3, 4096]"),
    ("window", "100", "an integer"),
    ("features", 0, "an integer in [1, 64]"),
    ("kernels", (5, 20), "three integers"),
    ("kernels", (5, 0, 1), "three integers"),
    ("kernels", (5, 20, 2), "(k1, k2, 1)"),
    ("kernels", "5,20,1", "three integers"),
    ("activation", "gelu", "one of linear, tanh, elu, selu, leaky_relu, relu"),
    ("output_activation", "softmax", "one of linear, tanh"),
    ("initializer", "zeros", "one of glorot_uniform"),
    ("dropout", 1.0, "a rate in [0.0, 1.0)"),
    ("dropout", -0.1, "a rate in [0.0, 1.0)"),
    ("dropout", "0.5", "a rate"),
    ("dropout_after", (4,), "distinct layer numbers from 1, 2, 3"),
    ("dropout_after", (1, 1), "distinct layer numbers"),
    ("cash_bias", 1, "True or False"),
    ("seed", -1, "an integer in [0, 2147483647]"),
]

TRAIN_REJECTS = [
    ("optimizer", "lbfgs", "one of adam, nadam"),
    ("learning_rate", 0.0, "a finite number in (0, 100.0]"),
    ("learning_rate", float("nan"), "a finite number"),
    ("learning_rate", 1e3, "a finite number in (0, 100.0]"),
    ("learning_rate", "1e-3", "a finite number"),
    ("batch_size", 0, "an integer in [1, 65536]"),
    ("steps", 0, "an integer in [1, 10000]"),
    ("train_steps", -1, "an integer in [0, 10000000]"),
    ("task", "classification", "one of portfolio, supervised, regression, distribution"),
    ("seed", 2**31, "an integer in [0, 2147483647]"),
    ("data", "  ", "synthetic, sp500 or the path of a CSV file or directory"),
]


@pytest.mark.parametrize(("field", "value", "allowed"), CELL_REJECTS)
def test_cell_config_rejects_bad_value_naming_field_allowed_and_received(field, value, allowed):
    with pytest.raises(InvalidConfig) as info:
        CellConfig(**{field: value})
    message = str(info.value)
    assert message.startswith(f"CellConfig.{field} must be ")
    assert allowed in message
    assert f"Received: {field}={value!r}" in message
    assert info.value.field == field


@pytest.mark.parametrize(("field", "value", "allowed"), TRAIN_REJECTS)
def test_train_config_rejects_bad_value_naming_field_allowed_and_received(field, value, allowed):
    with pytest.raises(InvalidConfig) as info:
        TrainConfig(**{field: value})
    message = str(info.value)
    assert message.startswith(f"TrainConfig.{field} must be ")
    assert allowed in message
    assert "Received: " in message


def test_invalid_config_is_a_value_error():
    with pytest.raises(ValueError, match=r"CellConfig\.assets"):
        CellConfig(assets=0)


def test_every_cell_field_is_covered_by_a_rejection_case():
    covered = {case[0] for case in CELL_REJECTS}
    assert covered == set(CellConfig.__dataclass_fields__)


def test_every_train_field_is_covered_by_a_rejection_case():
    covered = {case[0] for case in TRAIN_REJECTS}
    assert covered == set(TrainConfig.__dataclass_fields__)


def test_lists_from_json_are_stored_as_sorted_tuples():
    config = CellConfig(kernels=[2, 3, 1], dropout_after=[3, 1])
    assert config.kernels == (2, 3, 1)
    assert config.dropout_after == (1, 3)


@pytest.mark.parametrize(
    "config",
    [
        CellConfig(),
        CellConfig(
            assets=3,
            window=5,
            kernels=(2, 3, 1),
            activation="tanh",
            dropout=0.5,
            dropout_after=(1, 3),
            cash_bias=True,
            seed=7,
        ),
        AS_ASKED.cell,
        REMEDIED.cell,
        PGPORTFOLIO.cell,
    ],
)
def test_cell_config_round_trips_through_dict_and_json(config):
    assert CellConfig.from_dict(config.to_dict()) == config
    assert CellConfig.from_json(config.to_json()) == config
    assert json.loads(config.to_json())["kernels"] == list(config.kernels)


@pytest.mark.parametrize(
    "config", [TrainConfig(), TrainConfig(optimizer="sgd", learning_rate=1, task="supervised")]
)
def test_train_config_round_trips_through_dict_and_json(config):
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert TrainConfig.from_json(config.to_json()) == config


def test_from_dict_rejects_unknown_key_and_names_the_known_ones():
    with pytest.raises(InvalidConfig, match=r"CellConfig\.kernel must be a field of CellConfig"):
        CellConfig.from_dict({"kernel": [5, 20, 1]})


def test_from_dict_rejects_a_non_mapping():
    with pytest.raises(InvalidConfig, match="a mapping of field names"):
        TrainConfig.from_dict([1, 2])  # type: ignore[arg-type]


def test_cash_bias_adds_one_output():
    assert CellConfig().outputs == 15
    assert CellConfig(cash_bias=True).outputs == 16


def test_presets_match_the_question_and_the_paper():
    assert AS_ASKED.cell == CellConfig(
        activation="relu", output_activation="relu", initializer="he_normal", kernels=(5, 20, 1)
    )
    assert AS_ASKED.train.optimizer == "adam"
    assert PGPORTFOLIO.cell.output_activation == "linear" and PGPORTFOLIO.cell.cash_bias
    assert REMEDIED.cell.output_activation != "relu"
    assert set(PRESETS) == {"as-asked", "remedied", "pgportfolio"}


def test_preset_lookup_accepts_underscores_and_rejects_unknown_names():
    assert preset("AS_ASKED") is AS_ASKED
    with pytest.raises(InvalidConfig, match=r"Preset\.name must be one of as-asked"):
        preset("best")


def test_with_seed_sets_the_cell_and_run_seed():
    cell, train = AS_ASKED.with_seed(3)
    assert (cell.seed, train.seed) == (3, 3)
