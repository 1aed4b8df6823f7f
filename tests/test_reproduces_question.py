"""The central measured fact (docs/design.md, 'Measured facts'), reproduced with the kit's own code.

On the supervised task with Adam at 1e-3, the question's cell (AS_ASKED) ends
with an exactly-zero gradient on nearly every seed, and the remedy keeps a
nonzero gradient and lowers the loss on every seed.
"""

from __future__ import annotations

import keras
import pytest

from cellverify import AS_ASKED, REMEDIED, Trace, conv_rnn_cell, train
from cellverify.diagnosis.outcome import LEARNED_GAP_FRACTION

SEEDS = range(5)
#: The issue's bar: at least 4 of 5 seeds of AS_ASKED die.  Measured: 10 of 10
#: (seeds 0-9, this run's shape), 7 of them already dead at step 0.
MIN_DEAD_AS_ASKED = 4
#: (A run "lowers the loss" when it closes LEARNED_GAP_FRACTION of the gap to
#: the reference; cellverify.diagnosis.outcome says how that was measured.)
#: Full question shape (15x100x3); a small batch and short sequences keep the
#: ten runs to about 25 s on two cores.
RUN = {"task": "supervised", "batch_size": 16, "steps": 2, "train_steps": 40}


def run_preset(p, seed: int) -> Trace:
    keras.backend.clear_session(free_memory=False)
    cell, train_config = p.with_seed(seed)
    return train(conv_rnn_cell, cell, train_config.replace(**RUN))


@pytest.mark.slow
def test_as_asked_with_adam_ends_with_an_exactly_zero_gradient_on_most_seeds():
    traces = [run_preset(AS_ASKED, seed) for seed in SEEDS]
    dead = [t.gradient_is_zero() for t in traces]
    assert sum(dead) >= MIN_DEAD_AS_ASKED, f"dead per seed: {dead}"
    for t in traces:
        if t.gradient_is_zero():
            # Dead means every logit is exactly 0 and every output row uniform.
            assert t.uniform_rows[-1] == 1.0
            assert t.zero_fraction[-1, t.layer("logits")] == 1.0


@pytest.mark.slow
def test_remedied_keeps_a_nonzero_gradient_and_lowers_the_loss_on_every_seed():
    traces = [run_preset(REMEDIED, seed) for seed in SEEDS]
    assert [t.first_zero_gradient_step() for t in traces] == [None] * len(SEEDS)
    closed = [t.eval_improvement() for t in traces]
    assert all(c >= LEARNED_GAP_FRACTION for c in closed), f"gap closed per seed: {closed}"
