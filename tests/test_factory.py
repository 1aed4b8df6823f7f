from __future__ import annotations

import keras
import pytest

from cellverify import BadCellFactory, CellConfig
from cellverify.cell import conv_rnn_cell
from cellverify.errors import BadInvariantModule
from cellverify.model.factory import load_factory, validate_factory

CONFIG = CellConfig(assets=3, window=5, kernels=(2, 2, 1))


def test_load_factory_finds_the_shipped_cell():
    assert load_factory("cellverify.cell:conv_rnn_cell") is conv_rnn_cell


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("cellverify.cell", "a cell factory is named MODULE:ATTRIBUTE"),
        ("no_such_module_xyz:f", "cannot import module 'no_such_module_xyz'"),
        ("cellverify.cell:nothing", "module 'cellverify.cell' has no attribute 'nothing'"),
        ("cellverify.cell:LAYER_NAMES", "must be callable as factory\\(cell_config\\)"),
    ],
)
def test_load_factory_explains_what_is_wrong(spec, message):
    with pytest.raises(BadCellFactory, match=message):
        load_factory(spec)


def test_load_factory_reports_an_error_raised_while_importing(tmp_path, monkeypatch):
    (tmp_path / "broken_cell.py").write_text("raise RuntimeError('boom')\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BadCellFactory, match="RuntimeError: boom"):
        load_factory("broken_cell:factory")


@pytest.mark.usefixtures("fresh_keras")
def test_validate_factory_accepts_the_shipped_cell():
    assert validate_factory(conv_rnn_cell, CONFIG).state_size == 3


class NotACell:
    pass


class WrongStateSize(keras.layers.Layer):
    state_size = 7

    def call(self, inputs, states):
        return inputs, states


class WrongOutput(keras.layers.Layer):
    def __init__(self, config):
        super().__init__()
        self.state_size = config.outputs

    def call(self, inputs, states):
        return inputs[:, :, 0, 0][:, :2], states


class Crashes(keras.layers.Layer):
    def __init__(self, config):
        super().__init__()
        self.state_size = config.outputs

    def call(self, inputs, states):
        raise ValueError("shapes do not match")


@pytest.mark.usefixtures("fresh_keras")
@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda c: NotACell(), "must return a keras.layers.Layer. Received: NotACell"),
        (lambda c: WrongStateSize(), "state_size must be 3 \\(assets\\). Received: state_size=7"),
        (
            WrongOutput,
            "output must be \\[batch, outputs\\] = \\[2, 3\\]. Received: output shape \\[2, 2\\]",
        ),
        (
            Crashes,
            "calling the cell as cell\\(inputs, \\[state\\]\\) .* ValueError: shapes do not match",
        ),
        (lambda c: 1 / 0, "raised ZeroDivisionError: division by zero when called"),
    ],
)
def test_validate_factory_explains_a_broken_contract(factory, message):
    with pytest.raises(BadCellFactory, match=message):
        validate_factory(factory, CONFIG)


@pytest.mark.parametrize("spec", ["cellverify.cell", "no_such_module_xyz:f", "no_such_xyz.cells:f"])
def test_a_mistyped_factory_fails_in_a_fresh_process_without_starting_tensorflow(spec, tmp_path):
    from .fresh_process import run_fresh

    code = (
        "from cellverify.errors import BadCellFactory\n"
        "from cellverify.model.factory import check_factory_name\n"
        "try:\n"
        f"    check_factory_name({spec!r})\n"
        "except BadCellFactory as exc:\n"
        "    print('refused' if 'no_such' in str(exc) or 'MODULE:ATTRIBUTE' in str(exc) else exc)\n"
    )
    words, err = run_fresh(code, tmp_path)
    assert words[-2:] == ["refused", "False"], err


def test_a_factory_that_exists_passes_the_name_check_with_its_parts():
    from cellverify.model.factory import check_factory_name

    assert check_factory_name("cellverify.cell:conv_rnn_cell") == (
        "cellverify.cell",
        "conv_rnn_cell",
    )


@pytest.mark.parametrize(
    ("module", "starts_tensorflow", "arguments", "error", "message"),
    [
        (
            "cellverify.training.runs",
            "pin_tensorflow_threads",
            ("no_such_module_xyz:f",),
            BadCellFactory,
            "cannot import module 'no_such_module_xyz'",
        ),
        (
            "cellverify.checks.runs.suite",
            "_init_worker",
            ([], "no_such_module_xyz:f"),
            BadCellFactory,
            "cannot import module 'no_such_module_xyz'",
        ),
        (
            "cellverify.checks.runs.suite",
            "_init_worker",
            (["no.such.module"], "cellverify.cell:conv_rnn_cell"),
            BadInvariantModule,
            r"cannot import invariant module 'no\.such\.module'",
        ),
    ],
)
def test_a_worker_refuses_a_mistyped_name_before_it_starts_tensorflow(
    module, starts_tensorflow, arguments, error, message, monkeypatch
):
    import importlib

    workers = importlib.import_module(module)

    def started():
        raise AssertionError("the worker started TensorFlow before checking the names it was given")

    monkeypatch.setattr(workers, starts_tensorflow, started)
    start = getattr(workers, "_start_worker", None) or workers.start_worker
    with pytest.raises(error, match=message):
        start(*arguments)
