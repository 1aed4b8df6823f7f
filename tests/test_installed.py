"""The package as a user has it: built and installed from its sources (not
the repository's editable copy), run from a directory of its own, training
the shipped cell on the fast path with nothing compiled."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]

#: What the user's script does: import the installed package, train the
#: shipped cell on the fast path for a few steps, and report where the
#: package came from and whether the losses are finite.
SCRIPT = """
import math, cellverify
from cellverify import CellConfig, TrainConfig
from cellverify.model.cell import conv_rnn_cell
from cellverify.training.trainer import train
cell = CellConfig(assets=3, window=12, kernels=(2, 3, 1), activation="elu",
                  output_activation="linear")
run = TrainConfig(batch_size=4, steps=3, train_steps=3, task="supervised")
trace = train(conv_rnn_cell, cell, run, fast=True)
print(cellverify.__file__)
print(all(math.isfinite(x) for x in trace.loss))
"""


def test_the_installed_package_trains_the_shipped_cell_from_a_directory_of_its_own(tmp_path):
    site, work = tmp_path / "site", tmp_path / "work"
    work.mkdir()
    source = _source_copy(tmp_path / "source")
    # No build isolation: the build uses the setuptools already installed,
    # and nothing is fetched.
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--target", str(site), str(source)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-2000:]
    env = {**os.environ, "PYTHONPATH": str(site)}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=work, env=env, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    package, finite = done.stdout.split()[-2:]
    assert Path(package).is_relative_to(site), package
    assert finite == "True"


def _source_copy(into: Path) -> Path:
    """What a source distribution holds, copied: a build in place would leave
    its build/ and egg-info in the repository, and reuse them next time."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(REPOSITORY / "src", into / "src", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPOSITORY / name, into / name)
    return into
