"""The diagnosis on real runs: the question's cell, and the remedy."""

from __future__ import annotations

import pytest

from cellverify import AS_ASKED, REMEDIED
from cellverify.diagnosis import diagnose
from cellverify.experiments.verify import run_seeds, verify_remedies
from cellverify.model.factory import DEFAULT_FACTORY

#: The question's full shape with a small batch: ~2.5 s a run (as in
#: test_reproduces_question.py).  Seeds 1 and 2 are alive at step 0 and die
#: under Adam at steps 3 and 1; the others are dead at birth.
RUN = {"task": "supervised", "batch_size": 16, "steps": 2, "train_steps": 40}
SEEDS = [0, 1, 2, 3]

pytestmark = pytest.mark.slow


def test_as_asked_is_diagnosed_dead_with_adams_step_to_blame_and_a_verified_remedy():
    traces = run_seeds(DEFAULT_FACTORY, AS_ASKED.cell, AS_ASKED.train.replace(**RUN), SEEDS)
    result = diagnose(traces, SEEDS)
    findings = {f.name: f for f in result.findings}
    assert findings["zero_gradient"].seeds == SEEDS
    steps = [e["step"] for e in findings["zero_gradient"].evidence]
    assert min(steps) == 0
    assert max(steps) > 0  # some seeds die during training, not at birth
    assert "zero_logits" in findings
    assert set(findings["optimizer_step"].seeds) <= {1, 2}
    assert [c.name for c in result.causes][:2] == [
        "relu_before_softmax",
        "step_independent_of_gradient",
    ]
    verified = {r.remedy.name: r for r in verify_remedies(result, DEFAULT_FACTORY)}
    assert verified["linear_last_conv"].verified
    assert verified["linear_last_conv"].after.died == 0
    assert verified["elu_and_linear"].diagnosis.verdict.name == "healthy"
    assert result.verdict.name == "will not learn"


def test_remedied_is_healthy_with_nothing_fatal():
    traces = run_seeds(DEFAULT_FACTORY, REMEDIED.cell, REMEDIED.train.replace(**RUN), SEEDS)
    result = diagnose(traces, SEEDS)
    assert result.verdict.name == "healthy", result.verdict.reason
    assert not result.by_severity("fatal"), [f.message for f in result.findings]
