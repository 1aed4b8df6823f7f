"""Every invariant claimed on any inputs holds on the shipped cell for raw
prices scaled by 1e-4 and 1e4, with 16 examples in each of two runs,
under both of TensorFlow's CPU kernel families: oneDNN's and the plain Eigen
ones (``TF_ENABLE_ONEDNN_OPTS=0``), which round differently.  At each scale
the examples reach every value of every dimension the invariant's region
allows, by construction (covering cases first, then the random search).

The invariants left out claim something about the market distribution, not
any input: ``state_matters``, ``init_near_uniform`` (with prices at 1e4 the
softmax is one-hot by design), ``loss_decreases`` and ``gradients_nonzero``
(they train on market batches).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cellverify.checks.draws.coverage import dimensions, input_label, labels_of
from cellverify.checks.judges.invariants import INVARIANTS
from cellverify.data import InputSpec

from .scaled_inputs import EXAMPLES, SCALES, claimed_on_any_inputs, scaled_covering_cases

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_invariants_hold_on_scaled_prices_with_onednn_on_and_off(tmp_path):
    runs = {}
    for onednn in ("1", "0"):
        out = tmp_path / f"onednn{onednn}.json"
        env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": onednn, "TF_CPP_MIN_LOG_LEVEL": "2"}
        command = [sys.executable, "-m", "tests.scaled_inputs", "--json", str(out)]
        runs[onednn] = (out, subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE))
    for onednn, (out, process) in runs.items():
        _, err = process.communicate(timeout=1800)
        assert process.returncode == 0, err.decode()[-2000:]
        report = json.loads(out.read_text())
        assert report["onednn"] == onednn
        results = {r["name"]: r for r in report["results"]}
        assert list(results) == claimed_on_any_inputs()
        for name, r in results.items():
            assert (r["status"], r["examples"]) == ("passed", EXAMPLES), (onednn, name, r)
            _assert_covered_every_value_on_scaled_inputs_only(r["coverage"], (onednn, name))


def _assert_covered_every_value_on_scaled_inputs_only(coverage, where):
    dims = coverage["dimensions"]
    missing = {name: d["missing"] for name, d in dims.items() if name != "inputs" and d["missing"]}
    assert not missing, (where, missing)
    drawn = {label for label, n in dims["inputs"]["counts"].items() if n}
    assert drawn == {input_label(InputSpec("scaled", s)) for s in SCALES}, (where, drawn)


def test_the_covering_cases_reach_every_value_of_every_dimension_at_each_scale():
    for name in claimed_on_any_inputs():
        invariant = INVARIANTS[name]
        cases = scaled_covering_cases(invariant)
        assert len(cases) <= EXAMPLES, (name, len(cases))
        for scale in SCALES:
            at_scale = [c for c in cases if c.inputs == InputSpec("scaled", scale, c.inputs.seed)]
            assert at_scale, (name, scale)
            for d in dimensions(invariant.region, True, min_batch=invariant.min_batch):
                if d.name != "inputs":
                    reached = {labels_of(c, invariant.region)[d.name] for c in at_scale}
                    assert set(d.values) <= reached, (name, scale, d.name)
