"""``diagnose`` and ``sweep`` on a spec's cell, from the command line as a
user runs them: ``--cell MODULE:SPEC``, ``--set`` on any keyword of its
factory, ``--grid`` over its keywords."""

from __future__ import annotations

import json
import subprocess

import pytest

from cellverify.config import parse_value
from cellverify.errors import InvalidConfig
from cellverify.experiments.sweep import parse_grid

from .fresh_process import run_cli
from .generic_cells import GRU_EXAMPLE

#: A gated cell with a ReLU candidate and zero kernels: every gradient is
#: exactly 0 from the first step.
DEAD_GRU = [
    "--set", "activation=relu", "--set", "kernel_initializer=zeros",
    "--set", "recurrent_initializer=zeros", "--set", "units=8",
]  # fmt: skip


def _cellverify(tmp_path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(tmp_path, *args, module=GRU_EXAMPLE)


@pytest.mark.slow
def test_diagnose_says_a_relu_gru_with_zero_kernels_will_not_learn_and_verifies_the_fixes(
    tmp_path,
):
    report = tmp_path / "diagnosis.json"
    run = _cellverify(
        tmp_path, "diagnose", "--cell", "mymodule:GRU", *DEAD_GRU, "--seeds", "3",
        "--train-steps", "30", "--jobs", "1", "--json", str(report),
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "verdict: WILL NOT LEARN" in run.stdout
    data = json.loads(report.read_text())
    d = data["diagnosis"]
    assert d["cell"]["params"]["activation"] == "relu"
    assert d["train"]["task"] == "regression"
    assert [f["name"] for f in d["findings"]] == ["zero_gradient"]
    assert {c["name"] for c in d["causes"]} == {"zero_initial_kernels", "relu_activation"}
    verified = {r["remedy"]["name"]: r["verified"] for r in data["remedies"]}
    assert verified == {"keras_default_init": True, "tanh_activation": True}


@pytest.mark.slow
def test_sweep_varies_a_specs_own_keywords(tmp_path):
    report = tmp_path / "sweep.json"
    run = _cellverify(
        tmp_path, "sweep", "--cell", "mymodule:GRU", "--grid", "activation=relu,tanh",
        *DEAD_GRU[:6], "--seeds", "1", "--train-steps", "20", "--jobs", "1",
        "--json", str(report),
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    points = {p["values"]["activation"]: p for p in json.loads(report.read_text())["points"]}
    assert points["relu"]["learned"] == 0 and points["tanh"]["learned"] == 1


def test_a_portfolio_option_on_a_specs_cell_is_refused_with_the_way_to_set_it(tmp_path):
    run = _cellverify(
        tmp_path, "diagnose", "--cell", "mymodule:GRU", "--activation", "elu", "--seeds", "1",
        "--jobs", "1",
    )  # fmt: skip
    assert run.returncode == 2, run.stdout[-2000:] + run.stderr[-2000:]
    assert "--set NAME=VALUE for a spec's own keywords" in run.stderr
    assert "Traceback" not in run.stderr


def test_a_grid_over_a_named_cell_takes_any_keyword_and_a_portfolio_grid_does_not():
    grid = parse_grid(["units=2,8", "activation=softsign,tanh"], any_keyword=True)
    assert grid == {"units": [2, 8], "activation": ["softsign", "tanh"]}
    with pytest.raises(InvalidConfig, match=r"sweep\.grid must be a field among"):
        parse_grid(["units=2,8"])


@pytest.mark.parametrize(
    ("field", "text", "value"),
    [("units", "4", 4), ("dropout", "0.3", 0.3), ("reset_after", "false", False),
     ("activation", "softsign", "softsign"), ("kernels", "5-20-1", (5, 20, 1))],
)  # fmt: skip
def test_a_keyword_of_a_named_cell_is_read_as_its_value(field, text, value):
    assert parse_value(field, text, any_keyword=True) == value
