"""The package as a user has it: built and installed from its sources (not
the repository's editable copy), run from a directory of its own, compiling
its native kernels from the files it ships and training through them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.test_native import needs_native

REPOSITORY = Path(__file__).resolve().parents[1]

#: What the user's script does: import the installed package, train the
#: shipped cell on the fast path for a few steps, and report where the
#: package and the compiled kernel came from and what the trainer read.
SCRIPT = """
import math, sys, cellverify
from cellverify import CellConfig, TrainConfig
from cellverify.model.cell import conv_rnn_cell
from cellverify.model.native.build import native_library
from cellverify.training.trainer import Trainer, train
cell = CellConfig(assets=3, window=12, kernels=(2, 3, 1), activation="elu",
                  output_activation="linear")
run = TrainConfig(batch_size=4, steps=3, train_steps=3, task="supervised")
trace = train(conv_rnn_cell, cell, run, fast=True)
print(cellverify.__file__)
print(native_library().path)
print("native kernel:", native_library().why, file=sys.stderr)
print(Trainer(conv_rnn_cell, cell, run, fast=True).reads_spans)
print(all(math.isfinite(x) for x in trace.loss))
"""


@needs_native
def test_installed_package_compiles_its_kernels_and_trains_through_them(tmp_path):
    site, cache, work = tmp_path / "site", tmp_path / "cache", tmp_path / "work"
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
    env = {**os.environ, "PYTHONPATH": str(site), "CELLVERIFY_CACHE_DIR": str(cache)}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=work, env=env, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    package, library, reads_spans, finite = done.stdout.split()[-4:]
    assert Path(package).is_relative_to(site), package
    assert Path(library).is_relative_to(cache), done.stderr[-2000:]
    assert (reads_spans, finite) == ("True", "True")


def _source_copy(into: Path) -> Path:
    """What a source distribution holds, copied: a build in place would leave
    its build/ and egg-info in the repository, and reuse them next time."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.so")
    shutil.copytree(REPOSITORY / "src", into / "src", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPOSITORY / name, into / name)
    return into
