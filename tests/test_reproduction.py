"""A failure's reproduction runs as printed: taken from a real failing run of
``cellverify check`` on a cell of the user's, written into an empty directory
with no conftest, it fails the same invariant under pytest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cellverify import Case, CellConfig, InputSpec, TrainConfig
from cellverify.checks.runs.reproduction import factory_path, reproduction
from cellverify.errors import InvariantViolation
from cellverify.mutation import PaddedSoftmax

#: A user's cell module: a per-asset dense score, then a softmax over the
#: assets and a padding slot that is dropped, so rows sum to less than 1.
USER_CELLS = textwrap.dedent(
    """
    import keras
    from keras import ops


    @keras.saving.register_keras_serializable(package="padcells")
    class PaddedScorer(keras.layers.Layer):
        def __init__(self, assets, seed=0, **kwargs):
            super().__init__(**kwargs)
            self.assets, self.seed = assets, seed
            self.state_size = self.output_size = assets
            init = keras.initializers.GlorotUniform(seed)
            self.score = keras.layers.Dense(1, kernel_initializer=init)

        def call(self, inputs, states, training=None):
            flat = ops.reshape(inputs, (-1, self.assets, inputs.shape[2] * inputs.shape[3]))
            logits = ops.squeeze(self.score(flat), -1) + states[0]
            padded = ops.concatenate([logits, ops.zeros_like(logits[:, :1])], axis=-1)
            out = ops.softmax(padded, axis=-1)[:, :-1]
            return out, [out]

        def get_config(self):
            return {**super().get_config(), "assets": self.assets, "seed": self.seed}


    def make_cell(config):
        return PaddedScorer(config.assets, seed=config.seed)
    """
)


def _run(args: list[str], cwd: Path, pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)} if pythonpath else dict(os.environ)
    env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )


def test_a_reproduction_from_a_real_failure_fails_the_same_invariant_in_an_empty_directory(
    tmp_path,
):
    project, empty = tmp_path / "project", tmp_path / "empty"
    project.mkdir()
    empty.mkdir()
    (project / "padcells.py").write_text(USER_CELLS)
    check = _run(
        ["-m", "cellverify.cli", "check", "--cell", "padcells:make_cell", "-k", "simplex_output",
         "--set", "cash_bias=false", "--profile", "ci", "--jobs", "1", "--json", "report.json"],
        project,
    )  # fmt: skip
    assert check.returncode == 1, check.stderr[-3000:]
    result = next(
        r for r in json.loads((project / "report.json").read_text())["invariants"]
        if r["name"] == "simplex_output"
    )  # fmt: skip
    assert result["status"] == "failed"
    source = result["reproduction"]
    assert "from padcells import make_cell" in source
    assert "\n".join(f"    {line}".rstrip() for line in source.splitlines()) in check.stdout
    (empty / "test_reproduce.py").write_text(source)
    # The user's package is importable (installed, or on the path), and
    # nothing else is there: no conftest, no cellverify checkout.
    run = _run(["-m", "pytest", "-q", "-p", "no:cacheprovider"], empty, pythonpath=project)
    assert run.returncode == 1, run.stdout[-3000:]
    assert "1 failed" in run.stdout
    assert "[simplex_output]" in run.stdout and "a row sums to" in run.stdout


def test_a_reproduction_runs_the_invariant_on_the_case_it_holds():
    case = Case(CellConfig(assets=3, window=5, kernels=(2, 2, 1)), TrainConfig(batch_size=2))
    path = factory_path(PaddedSoftmax)
    assert path == "cellverify.checks.mutants.wiring:PaddedSoftmax"
    source = reproduction("simplex_output", case, path)
    scope: dict[str, object] = {}
    exec(compile(source, "test_reproduce.py", "exec"), scope)
    assert scope["CASE"] == case
    with pytest.raises(InvariantViolation, match=r"\[simplex_output\] .*a row sums to"):
        scope["test_simplex_output_holds"]()


def test_a_reproduction_imports_the_invariant_modules_before_the_check():
    case = Case(CellConfig(), TrainConfig(), InputSpec("near_flat", seed=3))
    source = reproduction("long_only", case, "mycells:make_cell", ["myinvariants"])
    assert source.index("import myinvariants") < source.index('cellverify.check("long_only"')
    assert "inputs=InputSpec(**{'kind': 'near_flat', 'scale': 1.0, 'seed': 3})" in source


def test_a_factory_without_an_import_path_has_no_reproduction_path():
    assert factory_path(lambda config: None) is None
