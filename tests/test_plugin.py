"""The kit as a user gets it: the installed pytest plugin, a test file in an
empty directory (no conftest), an outside cell, their own invariant."""

from __future__ import annotations

import json
import os
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from cellverify.checks.judges.registry import INVARIANTS
from cellverify.checks.runs.search import COVERAGE_EVENT
from cellverify.cli import main
from cellverify.mutation import MUTANTS
from cellverify.testing import COVERAGE_PROPERTY, EXAMPLES_PROPERTY

from .fresh_process import run_pytest

ROOT = Path(__file__).resolve().parents[1]

USER_TEST = '''
    """A user's test file: their own cell, their own invariant, the kit's plugin."""
    import keras
    import numpy as np
    from keras import ops

    import cellverify
    from cellverify.testing import CellInvariants


    class MyCell(keras.layers.Layer):
        """An EIIE-style cell written from scratch: one conv per asset row, a vote
        with the previous weights, a softmax; no step_activations."""

        def __init__(self, config, **kwargs):
            super().__init__(**kwargs)
            self.spec = config
            self.state_size = self.output_size = config.outputs
            self.conv = keras.layers.Conv2D(
                3, (1, config.window), activation=config.activation,
                kernel_initializer=keras.initializers.GlorotUniform(seed=config.seed),
            )
            glorot = keras.initializers.GlorotUniform(seed=config.seed + 1)
            self.vote = keras.layers.Dense(1, kernel_initializer=glorot)

        def call(self, inputs, states, training=None):
            h = ops.reshape(self.conv(inputs), (-1, self.spec.assets, 3))
            w = ops.expand_dims(states[0], -1)
            out = ops.softmax(ops.squeeze(self.vote(ops.concatenate([h, w], axis=-1)), -1), axis=-1)
            return out, [out]


    def make_cell(config):
        return MyCell(config)


    @cellverify.invariant()
    def weights_below_one(factory, case):
        """No single asset takes the whole portfolio."""
        rnn = keras.layers.RNN(factory(case.cell), return_sequences=True)
        weights = np.asarray(rnn(case.batch().inputs))
        if (weights >= 1.0).any():
            cellverify.fail(f"a weight reached {weights.max()}")


    class TestMyCell(CellInvariants):
        factory = staticmethod(make_cell)
        pinned = {"activation": "elu", "cash_bias": False}
        only = ("output_shape", "simplex_output", "state_is_output", "weights_below_one")
'''


@pytest.mark.slow
def test_a_users_test_file_runs_through_the_installed_plugin_without_a_conftest(tmp_path):
    (tmp_path / "test_my_cell.py").write_text(textwrap.dedent(USER_TEST))
    report = tmp_path / "junit.xml"
    result = run_pytest(
        tmp_path, "-v", "--hypothesis-show-statistics", f"--junitxml={report}", env={"CI": "true"}
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    # Coverage through Hypothesis's own statistics, covering cases included;
    # the pinned activation is all there is to reach.
    assert (
        f"{COVERAGE_EVENT}: inputs 7/7 · activation 1/1 · output_activation 6/6" in result.stdout
    ), result.stdout[-3000:]
    assert "inputs: market" in result.stdout
    assert not list(tmp_path.glob("conftest.py"))
    assert "Hypothesis profile ci" in result.stdout  # the plugin's default under CI
    cases = {c.get("name"): c for c in ET.parse(report).getroot().iter("testcase")}
    assert set(cases) == {
        "test_output_shape", "test_simplex_output", "test_state_is_output",
        "test_weights_below_one",
    }  # fmt: skip
    for case in cases.values():
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        assert int(props[EXAMPLES_PROPERTY]) >= 1
        assert json.loads(props[COVERAGE_PROPERTY])["complete"] is True


def test_an_unknown_name_in_only_or_pinned_is_a_collection_error(tmp_path):
    (tmp_path / "test_bad.py").write_text(
        textwrap.dedent(
            """
            from cellverify.testing import CellInvariants

            class TestTypo(CellInvariants):
                only = ("output_shapes",)
            """
        )
    )
    result = run_pytest(tmp_path)
    assert result.returncode != 0
    assert "TestTypo.only must be invariant names" in result.stdout
    assert "Received: only=('output_shapes',)" in result.stdout

    (tmp_path / "test_bad.py").write_text(
        textwrap.dedent(
            """
            from cellverify.testing import CellInvariants

            class TestTypo(CellInvariants):
                pinned = {"activations": "relu"}
            """
        )
    )
    result = run_pytest(tmp_path)
    assert "pinned.activations must be a configuration field" in result.stdout


def test_the_cell_option_beats_the_ini_key_which_beats_the_environment(tmp_path):
    (tmp_path / "test_which.py").write_text(
        "def test_which(cell_factory):\n    print('FACTORY', cell_factory.__name__)\n"
    )
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\ncellverify_cell = cellverify.mutation:mutant_factory\n"
    )
    env = {"CELLVERIFY_CELL": "cellverify.testing:CellInvariants"}
    by_ini = run_pytest(tmp_path, "-s", env=env)
    assert "FACTORY mutant_factory" in by_ini.stdout, by_ini.stdout[-2000:]
    by_option = run_pytest(
        tmp_path, "-s", "--cellverify-cell", "cellverify.cell:conv_rnn_cell", env=env
    )
    assert "FACTORY conv_rnn_cell" in by_option.stdout
    (tmp_path / "pytest.ini").unlink()
    by_env = run_pytest(tmp_path, "-s", env=env)
    assert "FACTORY CellInvariants" in by_env.stdout


def test_hypothesis_profile_option_wins_over_the_plugins_default(tmp_path):
    (tmp_path / "test_profile.py").write_text(
        "from cellverify.checks.draws.profiles import current_profile\n"
        "def test_profile():\n    print('PROFILE', current_profile())\n"
    )
    default = run_pytest(tmp_path, "-s", env={"CI": "true"})
    assert "PROFILE ci" in default.stdout
    chosen = run_pytest(tmp_path, "-s", "--hypothesis-profile", "thorough", env={"CI": "true"})
    assert "PROFILE thorough" in chosen.stdout


@pytest.fixture
def user_module():
    """Import the user's invariant module for one test, then forget it."""
    invariants, mutants = dict(INVARIANTS), dict(MUTANTS)
    yield "tests.user_invariants"
    INVARIANTS.clear()
    INVARIANTS.update(invariants)
    MUTANTS.clear()
    MUTANTS.update(mutants)
    sys.modules.pop("tests.user_invariants", None)


@pytest.mark.usefixtures("fresh_keras")
def test_check_runs_a_users_invariant_from_a_module_and_reports_it(user_module, tmp_path):
    path = tmp_path / "check.json"
    argv = ["check", "--invariants", user_module, "-k", "long_only", "--profile", "ci"]
    assert main([*argv, "--jobs", "1", "--json", str(path)]) == 0
    rows = {r["name"]: r for r in json.loads(path.read_text())["invariants"]}
    assert rows["long_only"]["status"] == "passed"
    assert rows["long_only"]["examples"] >= 1


@pytest.mark.usefixtures("fresh_keras")
def test_the_mutation_matrix_includes_a_users_invariant_and_mutant(user_module, tmp_path):
    path = tmp_path / "matrix.json"
    assert (
        main(["mutants", "--invariants", user_module, "-k", "long_only", "--json", str(path)]) == 0
    )
    report = json.loads(path.read_text())
    short = next(m for m in report["mutants"] if m["name"] == "ShortSelling")
    assert short["cells"]["long_only"] == "killed"
    assert report["complete"] is True


def test_a_missing_invariant_module_exits_2(capsys):
    assert main(["check", "--invariants", "no.such.module", "-k", "output_shape"]) == 2
    assert "cannot import invariant module 'no.such.module'" in capsys.readouterr().err


@pytest.mark.slow
def test_xdist_gives_the_serial_results_under_ci(tmp_path):
    """pytest -n 2 runs the same derandomized examples as a serial run."""
    selection = ["-k", "output_shape or simplex or state_is_output or permutation"]
    results = {}
    for label, extra in (("serial", []), ("xdist", ["-n", "2"])):
        report = tmp_path / f"{label}.xml"
        run = run_pytest(
            ROOT, "properties", *selection, *extra, f"--junitxml={report}", env={"CI": "true"}
        )
        assert run.returncode == 0, run.stdout[-2000:]
        results[label] = {
            c.get("name"): {p.get("name"): p.get("value") for p in c.iter("property")}
            for c in ET.parse(report).getroot().iter("testcase")
        }
    assert results["serial"] == results["xdist"]
    assert len(results["serial"]) == 4


USER_SET = "TF_NUM_INTRAOP_THREADS"


@pytest.mark.parametrize(
    ("environ", "cores", "expected"),
    [
        ({}, 2, {}),  # not under xdist: TensorFlow keeps its own pools
        ({"PYTEST_XDIST_WORKER": "gw0", "PYTEST_XDIST_WORKER_COUNT": "1"}, 2, {}),  # a core free
        (
            {"PYTEST_XDIST_WORKER": "gw1", "PYTEST_XDIST_WORKER_COUNT": "2"},
            2,
            {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"},
        ),
        (  # the user's own setting stays
            {"PYTEST_XDIST_WORKER": "gw0", "PYTEST_XDIST_WORKER_COUNT": "4", USER_SET: "2"},
            2,
            {"TF_NUM_INTEROP_THREADS": "1"},
        ),
    ],
)
def test_xdist_workers_get_one_tensorflow_thread_only_when_they_fill_the_cores(
    environ, cores, expected
):
    from cellverify.pytest_plugin import xdist_worker_threads

    assert xdist_worker_threads(environ, cores) == expected


def test_each_xdist_worker_of_a_users_run_starts_tensorflow_with_one_thread(tmp_path):
    workers = os.cpu_count() or 1
    (tmp_path / "test_threads.py").write_text(
        "import os\n\n\n"
        "def test_tensorflow_threads_are_pinned_before_it_starts():\n"
        "    assert os.environ['PYTEST_XDIST_WORKER']\n"
        "    assert os.environ['TF_NUM_INTRAOP_THREADS'] == '1'\n"
        "    assert os.environ['TF_NUM_INTEROP_THREADS'] == '1'\n"
    )
    result = run_pytest(tmp_path, "-n", str(workers))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "1 passed" in result.stdout
