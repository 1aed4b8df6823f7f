from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cellverify.cli import main


def test_help_does_not_import_tensorflow():
    code = (
        "import sys\n"
        "from cellverify.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
        "assert 'keras' not in sys.modules, 'keras was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "usage: cellverify" in result.stdout


def test_importing_the_package_does_not_import_tensorflow():
    code = "import sys, cellverify; cellverify.CellConfig(); assert 'tensorflow' not in sys.modules"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_unknown_preset_exits_2_with_the_allowed_names(capsys):
    assert main(["compare", "best"]) == 2
    err = capsys.readouterr().err
    assert "Preset.name must be one of as-asked, remedied, pgportfolio" in err


@pytest.mark.usefixtures("fresh_keras")
def test_compare_prints_both_presets_and_writes_json(tmp_path, capsys):
    path = tmp_path / "traces.json"
    code = main(
        ["compare", "--train-steps", "2", "--batch-size", "2", "--steps", "1", "--json", str(path)]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "as-asked loss" in out and "remedied loss" in out
    data = json.loads(path.read_text())
    assert set(data) == {"as-asked", "remedied"}
    assert len(data["remedied"]["loss"]) == 3


@pytest.mark.usefixtures("fresh_keras")
def test_diagnose_prints_a_report_and_writes_json_and_a_plot(tmp_path, capsys, small_cli_args):
    report, plot = tmp_path / "d.json", tmp_path / "d.png"
    code = main(
        [
            "diagnose",
            *small_cli_args,
            "--seeds",
            "2",
            "--no-verify",
            "--json",
            str(report),
            "--plot",
            str(plot),
        ]
    )
    assert code == 0
    assert "outcome: learned on" in capsys.readouterr().out
    data = json.loads(report.read_text())
    assert data["diagnosis"]["seeds"] == [0, 1]
    assert len(data["diagnosis"]["outcomes"]) == 2
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["diagnose", "--kernels", "5,20,3"], "CellConfig.kernels must be (k1, k2, 1)"),
        (["diagnose", "--seeds", "0"], "diagnose.seeds must be at least 1"),
        (["diagnose", "--learning-rate", "-1"], "TrainConfig.learning_rate must be"),
    ],
)
def test_diagnose_rejects_bad_configuration_with_exit_2(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_computation_free_modules_do_not_import_tensorflow():
    """Rendering and diagnosis read plain data: they must not pull TensorFlow in."""
    modules = [
        "config", "trace", "diagnosis.outcome", "diagnosis", "render.report",
        "experiments.sweep", "experiments.verify", "model.flops",
    ]  # fmt: skip
    code = (
        "import sys, importlib\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module('cellverify.' + m)\n"
        "loaded = [m for m in ('tensorflow', 'keras') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_an_interrupted_command_ends_the_process_at_once_with_130(monkeypatch):
    """No interpreter shutdown after an interruption: it once turned the 130
    into death by SIGINT.  Any other code exits the ordinary way."""
    from cellverify.cli import EXIT_INTERRUPTED, interrupt

    class Ended(Exception):
        pass

    ended: list[int] = []

    def end_now(code: int) -> None:
        ended.append(code)
        raise Ended

    monkeypatch.setattr(interrupt.os, "_exit", end_now)
    with pytest.raises(Ended):
        interrupt.exit_with(EXIT_INTERRUPTED)
    assert ended == [EXIT_INTERRUPTED]
    with pytest.raises(SystemExit) as exited:
        interrupt.exit_with(0)
    assert exited.value.code == 0 and ended == [EXIT_INTERRUPTED]
