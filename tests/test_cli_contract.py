"""The command line never passes by mistake, never loses work at the end, and
never answers a user's mistake with a traceback."""

from __future__ import annotations

import argparse
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cellverify import InvalidConfig
from cellverify.cell import conv_rnn_cell
from cellverify.checks.draws.strategies import any_cases
from cellverify.checks.judges.invariants import INVARIANTS
from cellverify.checks.runs.results import InvariantResult, SuiteResult
from cellverify.checks.runs.suite import run_invariant
from cellverify.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, build_parser, main
from cellverify.config import parse_bool

from .traces import healthy_trace

pytestmark = pytest.mark.usefixtures("fresh_keras")


def test_a_selection_that_matches_no_invariant_exits_2_listing_the_names(capsys):
    # In this process: the workers' route to the same exit is tested in
    # tests/test_check.py, and two of them are two TensorFlow start-ups.
    assert main(["check", "--jobs", "1", "-k", "nosuch"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "-k 'nosuch' matches no invariant" in err
    assert all(name in err for name in INVARIANTS)


def test_a_run_that_checked_nothing_does_not_pass():
    skipped = [InvariantResult(name, "skipped", 0, 0.0) for name in INVARIANTS]
    assert not SuiteResult("cell", "ci", skipped).passed
    assert not SuiteResult("cell", "ci", []).passed


def test_a_health_check_is_an_error_not_a_violation():
    nothing = any_cases().filter(lambda case: False)
    result = run_invariant(
        INVARIANTS["output_shape"], conv_rnn_cell, profile="ci", strategy=nothing
    )
    assert result.status == "error"
    assert "FailedHealthCheck" in result.message
    assert result.falsifying is None


def test_a_failure_that_does_not_reproduce_exits_2_as_an_error(tmp_path, capsys):
    report = tmp_path / "check.json"
    code = main(
        ["check", "--cell", "tests.cli_cells:flaky_cell", "-k", "output_shape",
         "--profile", "ci", "--json", str(report)]
    )  # fmt: skip
    assert code == EXIT_USAGE
    rows = {r["name"]: r for r in json.loads(report.read_text())["invariants"]}
    assert rows["output_shape"]["status"] == "error"
    assert "not deterministic" in rows["output_shape"]["message"]
    assert "no verdict" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["diagnose", "--json", "/no/such/dir/report.json"],
        ["diagnose", "--plot", "/no/such/dir/loss.png"],
        ["sweep", "--json", "/no/such/dir/map.json"],
        ["check", "--json", "/no/such/dir/check.json"],
        ["compare", "--json", "/no/such/dir/traces.json"],
    ],
)
def test_an_unwritable_output_exits_2_before_any_work(argv, capsys, monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError("work started before the output path was checked")

    for target in (
        "cellverify.experiments.verify.run_seeds",
        "cellverify.experiments.sweep.run_sweep",
        "cellverify.checks.runs.suite.run_suite",
        "cellverify.training.trainer.train",
    ):
        monkeypatch.setattr(target, no_work)
    assert main(argv) == EXIT_USAGE
    assert "the directory '/no/such/dir' does not exist" in capsys.readouterr().err


def test_a_directory_is_not_an_output_file(tmp_path, capsys):
    assert main(["sweep", "--json", str(tmp_path)]) == EXIT_USAGE
    assert "a file path, not a directory" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["maybe", "", "2", "tru"])
def test_booleans_accept_only_true_false_1_0_yes_no(text, capsys):
    with pytest.raises(InvalidConfig, match="one of true/false/1/0/yes/no"):
        parse_bool(text, field="cash_bias")
    assert main(["diagnose", "--cash-bias", text]) == EXIT_USAGE
    assert "expected one of true/false/1/0/yes/no" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "value"), [("TRUE", True), ("yes", True), ("1", True), ("No", False), ("0", False)]
)
def test_the_accepted_boolean_spellings(text, value):
    assert parse_bool(text, field="cash_bias") is value


# -- the command line under generated argument lists ------------------------------


def _stub_work(monkeypatch):
    """Replace the training and searching behind each command with instant,
    plausible results, so that generated command lines exercise the parsing,
    validation and reporting around them."""
    from cellverify.checks.runs.suite import select_invariants

    def run_suite(factory, *, cell, profile, select=None, **kwargs):
        return SuiteResult(
            cell, profile, [InvariantResult(n, "passed", 1, 0.0) for n in select_invariants(select)]
        )

    def run_seeds(factory, cell, train, seeds, **kwargs):
        return [healthy_trace(cell=cell, train=train) for _ in seeds]

    def run_sweep(factory, grid, cell, train, seeds, *, shard=(1, 1), **kwargs):
        from cellverify.experiments.sweep import sweep_tasks

        tasks = sweep_tasks(grid, cell, train, seeds, shard=shard)
        runs = [
            {"values": {k: str(v) for k, v in values.items()}, "seed": seed, "died": False,
             "death_step": None, "learned": True, "gap_closed": 0.1}
            for values, seed, _, _ in tasks
        ]  # fmt: skip
        return {
            "grid": {k: [str(v) for v in vs] for k, vs in grid.items()},
            "base": {"cell": cell.to_dict(), "train": train.to_dict()},
            "seeds": len(seeds),
            "shard": list(shard),
            "runs": runs,
            "executed": len(runs),
            "resumed": 0,
        }

    def train(factory, cell, train_config, **kwargs):
        return healthy_trace(cell=cell, train=train_config)

    monkeypatch.setattr("cellverify.checks.runs.suite.run_suite", run_suite)
    monkeypatch.setattr("cellverify.experiments.verify.run_seeds", run_seeds)
    monkeypatch.setattr("cellverify.experiments.verify.verify_remedies", lambda *a, **k: [])
    monkeypatch.setattr("cellverify.experiments.sweep.run_sweep", run_sweep)
    monkeypatch.setattr("cellverify.training.trainer.train", train)

    def kill_matrix(invariants=None, mutants=None, profile=None, **kwargs):
        from cellverify.mutation import KillMatrix

        names = list(invariants or [])
        return KillMatrix(names, ["M"], {"M": tuple(names)}, {("M", n): "killed" for n in names})

    monkeypatch.setattr("cellverify.checks.mutants.kill_matrix.kill_matrix", kill_matrix)


_VALUES = st.sampled_from(
    ["0", "1", "-1", "2", "3", "1e-3", "nan", "inf", "relu", "linear", "adam", "true", "maybe",
     "5,20,1", "2,2,1", "1,2", "as-asked", "remedied", "x", "", "1/2", "3/2", "ci", "dev",
     "optimizer=adam,sgd", "kernels=2-2-1", "colour=red", "cash_bias=yes,no",
     "out.json", "out.png", "/no/such/dir/x.json", ".",
     "cellverify.cell:conv_rnn_cell", "no.such:cell", "builtins:repr", "activation=relu",
     "kernels=5-20-1", "colour=blue", "window=2", "pgportfolio", "no.such.module"]
)  # fmt: skip


def _actions_by_command() -> dict[str, list[argparse.Action]]:
    """Every option of every command, read from the parser itself: an option
    added tomorrow is in this contract the day it exists."""
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {
        command: [a for a in parser._actions if a.option_strings]
        for command, parser in sub.choices.items()
    }


_ACTIONS = _actions_by_command()
#: Every option of every command, and one that is none.
_OPTION_NAMES = sorted(
    {o for actions in _ACTIONS.values() for a in actions for o in a.option_strings}
)
_OPTIONS = st.sampled_from([*_OPTION_NAMES, "--bogus"])
_SMALL = ["--assets", "2", "--window", "3", "--kernels", "1,1,1", "--seeds", "1", "--jobs", "1"]


#: Every command, and a name that is none.
_COMMANDS = ["check", "mutants", "diagnose", "sweep", "compare", "nosuch", "--help"]


@st.composite
def command_lines(draw):
    command = draw(st.sampled_from(_COMMANDS))
    words = draw(st.lists(st.one_of(_OPTIONS, _VALUES), max_size=8))
    small = _SMALL if command in ("diagnose", "sweep") and draw(st.booleans()) else []
    return [command, *small, *words]


#: The commands that start worker processes unless told ``--jobs 1``: two
#: TensorFlow start-ups (8.2 CPU-s here) that these examples do not need
#: (the workers' route is tested in test_check.py and test_executors.py).
_IN_PROCESS = {"check": ["--jobs", "1"], "diagnose": _SMALL, "sweep": _SMALL}


def _flags(command: str) -> list[str]:
    return [a.option_strings[-1] for a in _ACTIONS[command] if a.nargs == 0]


def _each_command_and_flag(test):
    """Each command once, and once with each of its flags, by construction, in
    this process; the random command lines follow."""
    for command in _COMMANDS:
        flags = _flags(command) if command in _ACTIONS else []
        for extra in [[], *([flag] for flag in flags)]:
            test = example(argv=[command, *_IN_PROCESS.get(command, []), *extra])(test)
    return test


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@_each_command_and_flag
@given(argv=command_lines())
def test_every_command_line_exits_0_1_or_2_and_never_raises(argv, monkeypatch, capsys, tmp_path):
    _stub_work(monkeypatch)
    # Output paths are relative, so they land here, not in the checkout; "."
    # is an existing directory where a file is expected.
    monkeypatch.chdir(tmp_path)
    code = main(argv)
    assert code in (EXIT_OK, EXIT_FAILED, EXIT_USAGE), (argv, code)
    err = capsys.readouterr().err
    assert "Traceback" not in err, (argv, err)


#: The value no option allows.  A file of this name exists in the test's
#: directory, holding another command's report, so that the options that read
#: a file (--merge, --data) get the harder case: a file that is there but wrong.
_WRONG = "not-a-value"
#: Options naming a file to write, where any name is allowed: their wrong
#: value is a path in a directory that does not exist.
_OUTPUTS = {"--json", "--plot", "--checkpoint"}


def _valued_options() -> list[Any]:
    return [
        pytest.param(command, a.option_strings[-1], id=f"{command} {a.option_strings[-1]}")
        for command, actions in _ACTIONS.items()
        for a in actions
        if a.nargs != 0
    ]


def test_every_command_has_options_that_take_values():
    # Guards the parametrization below against reading an empty parser.
    assert {command for command, *_ in (p.values for p in _valued_options())} == set(_ACTIONS)


@pytest.mark.parametrize(("command", "option"), _valued_options())
def test_every_option_of_every_command_refuses_a_wrong_value_naming_it(
    command, option, monkeypatch, capsys, tmp_path
):
    _stub_work(monkeypatch)
    monkeypatch.chdir(tmp_path)
    (tmp_path / _WRONG).write_text(json.dumps({"profile": "ci", "invariants": []}))
    wrong = "/no/such/dir/out" if option in _OUTPUTS else _WRONG
    code = main([command, *_IN_PROCESS.get(command, []), option, wrong])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE, (command, option, code, err)
    assert wrong in err and "Traceback" not in err, err


def test_a_crash_of_the_search_after_a_failure_is_an_error_not_that_failure(monkeypatch):
    """The shrinker's own bug must not pass off the last failure seen as the
    search's verdict: the user would be shown a case nobody shrank."""
    from cellverify.checks.draws import space
    from cellverify.mutation import WrongOutputShape, mutant_factory

    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(space, "label_pins", broken)  # used only once a case failed
    result = run_invariant(
        INVARIANTS["output_shape"], mutant_factory(WrongOutputShape), profile="ci"
    )
    assert result.status == "error"
    assert "ZeroDivisionError" in result.message
    assert "the failure seen last" in result.message
    assert result.falsifying is None


def test_a_prefix_of_an_option_is_a_usage_error_not_that_option(capsys):
    """`--seed 100` is not `--seeds 100`: a hundred seeds, unasked."""
    assert main(["diagnose", "--seed", "100"]) == EXIT_USAGE
    assert "unrecognized arguments: --seed 100" in capsys.readouterr().err
