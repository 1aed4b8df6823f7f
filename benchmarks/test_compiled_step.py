"""The remapper guard's cost (cellverify.training.compiled; docs/performance.md,
"The remapper guard"): a diagnose run's update, compiled as the Trainer
compiles it, against a plain ``tf.function`` of the same step, in turns.

For a ReLU cell the guard finds nothing to guard and only asks a flag per
call; for a leaky-ReLU cell, whose graph the remapper fails on, it runs every
call with the remapper off (the graph TensorFlow ran anyway after the failed
rewrite) and pays for turning it off and on.
"""

from __future__ import annotations

import pytest
import tensorflow as tf

from cellverify import CellConfig, conv_rnn_cell
from cellverify.data.market import market_for
from cellverify.model.rnn import fresh_session
from cellverify.training.trainer import Trainer

from .paired import in_turns, round_ratios
from .workloads import DIAGNOSE_RUN, Workload

ROUNDS = 7
CALLS = 20


def _plain(fn, *, jit_compile=False, **_):
    return tf.function(fn, jit_compile=jit_compile, autograph=False)


def _update(activation: str, guarded: bool) -> Workload:
    fresh_session()
    config = CellConfig(activation=activation, output_activation="linear")
    with pytest.MonkeyPatch.context() as patch:
        if not guarded:
            patch.setattr("cellverify.training.steps.compile_step", _plain)
        trainer = Trainer(conv_rnn_cell, config, DIAGNOSE_RUN, fast=True)
    feed = trainer.feed(trainer.draw(market_for(config, DIAGNOSE_RUN), 0))
    step = trainer.functions.update  # the update a diagnose run makes 200 times
    return Workload(lambda: step(feed.inputs, feed.target), {"activation": activation})


@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
def test_remapper_guard_against_a_plain_function_in_turns(benchmark, activation):
    benchmark.group = "in turns: the remapper guard, a diagnose run's update"
    workloads = {"guarded": _update(activation, True), "plain": _update(activation, False)}
    result = {}

    def once():
        result.update(in_turns(workloads, ROUNDS, CALLS))

    benchmark.pedantic(once, rounds=1, iterations=1)
    benchmark.extra_info["medians"] = result
    benchmark.extra_info["guarded / plain"] = round_ratios(result, "guarded", "plain")
