"""Running a snippet, or pytest, the way a user's process would: a new
interpreter, the package installed, nothing imported beforehand, none of
this suite's own environment."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path


def run_fresh(code: str, cwd: Path) -> tuple[list[str], str]:
    """Run ``code`` in a new interpreter in ``cwd``, then print whether it
    imported TensorFlow: the words it printed (the last is ``True`` or
    ``False``) and the end of its stderr, for the assertion's message."""
    check = f"{code}\nimport sys\nprint('tensorflow' in sys.modules)"
    run = subprocess.run(
        [sys.executable, "-c", check], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    return run.stdout.split(), run.stderr[-2000:]


#: What this suite's own run may have set that a user's shell would not: run
#: under pytest-xdist, its workers carry their id and pinned thread pools.
NOT_INHERITED = (
    "PYTEST_ADDOPTS",
    "PYTEST_XDIST_WORKER",
    "PYTEST_XDIST_WORKER_COUNT",
    "PYTEST_XDIST_TESTRUNUID",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
)


def run_pytest(directory: Path, *args: str, env: dict[str, str] | None = None):
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    for name in NOT_INHERITED:
        environment.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=directory,
        env=environment,
        capture_output=True,
        text=True,
        timeout=900,
    )


def run_cli(
    directory: Path, *args: str, module: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m cellverify.cli ARGS`` in ``directory``, as a user runs it
    there; ``module``, if given, is written first as ``mymodule.py``."""
    if module is not None:
        (directory / "mymodule.py").write_text(module)
    return subprocess.run(
        [sys.executable, "-m", "cellverify.cli", *args],
        cwd=directory, capture_output=True, text=True, timeout=900,
    )  # fmt: skip


#: An absl error line, as TensorFlow's C++ writes one to stderr.
ERROR_LINE = re.compile(r"^E\d{4} ", re.M)


def stderr_of(*args: str, env: dict[str, str] | None = None) -> str:
    """The stderr of ``python ARGS`` (which must exit 0), ``env`` added to
    this process's environment."""
    run = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=600, check=True,
        env={**os.environ, **env} if env else None,
    )  # fmt: skip
    return run.stderr
