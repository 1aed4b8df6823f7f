"""The example a user would copy runs: plain model.fit on real prices with the monitor."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("skfolio") is None,
        reason="the data extra (skfolio) is not installed",
    ),
]


#: Steps between the example's probes.
EVERY = 10
#: A short run of the example's default seed (dead from step 0 on these prices).
EXAMPLE_ARGS = ["--epochs", "1", "--examples", "1600", "--every", str(EVERY)]


def test_fit_with_monitor_shows_the_zero_gradient_and_its_step():
    command = [sys.executable, "examples/fit_with_monitor.py", *EXAMPLE_ARGS]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "sp500: 15 of 20 assets" in out
    assert "cellverify: fatal zero_gradient: the whole gradient is exactly 0 from step" in out
    assert "verdict WILL NOT LEARN" in out
    # As early as the evidence allows: the first probe, dead from birth.
    assert "cellverify: WILL NOT LEARN from step 0: fatal on 1 of 1 seeds" in out
    assert "the whole gradient became exactly 0 at step" in out
