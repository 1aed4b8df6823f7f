"""What each part of a recorded training step costs: the step as ``train``
runs it, and the same step with one measurement taken out at a time.

Each variant is a Trainer whose step was traced with that measurement
replaced by zeros (the trace is made once, inside the patch, and the patch
is undone before anything is timed); docs/performance.md, 'A diagnose run'.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import tensorflow as tf

from cellverify import CellConfig
from cellverify.model import fresh_session

from .workloads import DIAGNOSE_RUN, Workload

#: A configuration that stays alive (as-asked dies within a few steps, and a
#: dead cell's optimizer has nothing to apply): ELU convs, a linear last conv.
ALIVE = CellConfig(activation="elu", output_activation="linear")
#: The measurements a recorded step takes beyond its update, each removable.
PARTS = ("last-step state gradient", "gradient statistics", "update norms")


def _zero_statistics(grads: Any, variables: Any) -> dict[str, Any]:
    zeros = tf.zeros([len(variables)], tf.float64)
    return {"grad_norm": zeros, "grad_zero_fraction": zeros, "weight_norm": zeros}


def _apply_without_norms(self: Any, grads: Any) -> Any:
    self.optimizer.apply_gradients(zip(grads, self.variables, strict=True))
    return tf.zeros([len(self.variables)], tf.float64)


@contextlib.contextmanager
def _without(part: str | None) -> Iterator[None]:
    from cellverify.training import steps

    target, name, replacement = {
        None: (None, "", None),
        "last-step state gradient": (
            steps,
            "last_state_gradient_norm",
            lambda *_: tf.constant(0.0, tf.float64),
        ),
        "gradient statistics": (steps, "gradient_statistics", _zero_statistics),
        "update norms": (steps.StepFunctions, "_apply", _apply_without_norms),
    }[part]
    if target is None:
        yield
        return
    saved = getattr(target, name)
    setattr(target, name, replacement)
    try:
        yield
    finally:
        setattr(target, name, saved)


def recording_parts() -> dict[str, Workload]:
    """``update`` (the bare update), ``recorded`` (the step ``train`` takes),
    ``without <part>`` for each of :data:`PARTS`, and ``probed`` (the
    recorded step with the activation probe from its own pass), each on
    one batch of the question's shape at the diagnose defaults."""
    from cellverify.data.market import batch_for, market_for
    from cellverify.model.cell import conv_rnn_cell
    from cellverify.training.trainer import Trainer

    fresh_session()
    market = market_for(ALIVE, DIAGNOSE_RUN)
    info = {"batch": DIAGNOSE_RUN.batch_size, "steps": DIAGNOSE_RUN.steps}

    def traced(part: str | None) -> tuple[Trainer, Any]:
        with _without(part):
            trainer = Trainer(conv_rnn_cell, ALIVE, DIAGNOSE_RUN, fast=True)
            feed = trainer.feed(batch_for(ALIVE, DIAGNOSE_RUN, market=market))
            trainer.step(feed, probe=True)  # traces the step, the probe's branch included
            trainer.update(feed)
        return trainer, feed

    trainer, feed = traced(None)
    workloads = {
        "update": Workload(lambda: trainer.update(feed), info),
        "recorded": Workload(lambda: trainer.step(feed).loss, info),
    }
    for part in PARTS:
        lean, lean_feed = traced(part)
        workloads[f"without {part}"] = Workload(
            lambda t=lean, f=lean_feed: t.step(f).loss, {**info, "without": part}
        )
    workloads["probed"] = Workload(lambda: trainer.step(feed, probe=True).loss, info)
    return workloads


def recording_parts_in_turns(rounds: int, calls: int) -> dict[str, list[float]]:
    """:func:`recording_parts` timed in turns in this process, pinned to one
    thread as a diagnose worker is (call it in a fresh process)."""
    from cellverify.execution import pin_tensorflow_threads

    from .paired import in_turns

    pin_tensorflow_threads()
    return in_turns(recording_parts(), rounds, calls)
