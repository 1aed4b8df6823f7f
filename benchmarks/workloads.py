"""What the benchmarks time, built outside the timed region.

Each builder returns a zero-argument callable that runs the work once and
returns a tensor; the benchmark calls it once before timing (tracing, XLA
compilation) and synchronises the device after each call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from cellverify import CellConfig, ConvRNNCell, TrainConfig, batch_for
from cellverify.model import fresh_session, portfolio_loss
from cellverify.model.fast import FastConvRNN

#: The question's shape and batch, and a small one.
SHAPES = {
    "question": (CellConfig(), 100),
    "small": (CellConfig(assets=4, window=12, kernels=(3, 6, 1)), 8),
}
#: Units of the reference LSTM, run per asset on the flattened window like
#: EIIE's evaluators: 4*8*(300+8+1) = 9,888 weights against the cell's 9,892.
LSTM_UNITS = 8
MODES = ("eager", "function", "xla")


@dataclass
class Workload:
    run: Callable[[], Any]
    info: dict[str, Any]


def compile_mode(fn: Callable[..., Any], mode: str) -> Callable[..., Any]:
    if mode == "eager":
        return fn
    return tf.function(fn, jit_compile=(mode == "xla"))


def inputs(config: CellConfig, batch: int, steps: int) -> tuple[tf.Tensor, tf.Tensor]:
    data = batch_for(config, TrainConfig(batch_size=batch, steps=steps, seed=0))
    return tf.constant(data.inputs), tf.constant(data.relatives)


class LSTMReference(keras.layers.Layer):
    """A per-asset LSTM with a linear score and a softmax over assets."""

    def __init__(self, config: CellConfig) -> None:
        super().__init__()
        self.config = config
        self.lstm = keras.layers.LSTMCell(LSTM_UNITS, seed=0)
        self.score = keras.layers.Dense(1)

    def step(self, x: Any, states: list[Any]) -> tuple[Any, list[Any]]:
        c = self.config
        flat = tf.reshape(x, [-1, c.window * c.features])
        h, new = self.lstm(flat, states)
        logits = tf.reshape(self.score(h), [-1, c.assets])
        return tf.nn.softmax(logits, axis=-1), new

    def initial(self, batch: int) -> list[Any]:
        return [tf.zeros([batch * self.config.assets, LSTM_UNITS])] * 2

    def call(self, sequence: Any) -> Any:
        states = self.initial(tf.shape(sequence)[0])
        outputs = []
        for t in range(sequence.shape[1]):
            out, states = self.step(sequence[:, t], states)
            outputs.append(out)
        return tf.stack(outputs, axis=1)


def sequence_layer(impl: str, config: CellConfig, mode: str = "function") -> keras.layers.Layer:
    """``impl``: "lstm", "plain" (``keras.layers.RNN``) or "fast" (the fast path)."""
    if impl == "lstm":
        return LSTMReference(config)
    cell = ConvRNNCell(config)
    if impl == "fast":
        return FastConvRNN(cell)
    return keras.layers.RNN(cell, return_sequences=True)


def forward_step(impl: str, shape: str, mode: str) -> Workload:
    """One cell step: [batch, assets, window, features] and a state -> output."""
    fresh_session()
    config, batch = SHAPES[shape]
    x = inputs(config, batch, 1)[0][:, 0]
    if impl == "lstm":
        layer = LSTMReference(config)
        states = layer.initial(batch)
        fn = compile_mode(lambda: layer.step(x, states)[0], mode)
    else:
        cell = ConvRNNCell(config)
        state = cell.get_initial_state(batch)
        fn = compile_mode(lambda: cell(x, state)[0], mode)
    return Workload(fn, {"impl": impl, "shape": shape, "mode": mode, "batch": batch})


def train_step(impl: str, shape: str, mode: str, steps: int = 1, batch: int = 0) -> Workload:
    """Forward over the sequence, backward, and an Adam update (``batch`` 0: the shape's)."""
    fresh_session()
    config, default_batch = SHAPES[shape]
    batch = batch or default_batch
    x, y = inputs(config, batch, steps)
    layer = sequence_layer(impl, config, mode)
    layer(x)  # build the weights outside the timed region
    optimizer = keras.optimizers.Adam(1e-3)
    variables = layer.trainable_variables
    optimizer.build(variables)

    def step() -> Any:
        with tf.GradientTape() as tape:
            loss = portfolio_loss(layer(x, training=True), y)
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss

    info = {
        "impl": impl,
        "shape": shape,
        "mode": mode,
        "batch": batch,
        "steps": steps,
        "parameters": int(sum(np.prod(v.shape) for v in variables)),
    }
    return Workload(compile_mode(step, mode), info)


def sequence_forward(impl: str, mode: str, steps: int) -> Workload:
    """A whole sequence at the question's shape, inference."""
    fresh_session()
    config, batch = SHAPES["question"]
    x = inputs(config, batch, steps)[0]
    layer = sequence_layer(impl, config)
    layer(x[:, :1])
    fn = compile_mode(lambda: layer(x, training=False), mode)
    return Workload(fn, {"impl": impl, "mode": mode, "batch": batch, "steps": steps})


def floor_matmul(m: int, k: int, n: int) -> Workload:
    """The attainable rate for the step's kind of work: conv2's matmul alone."""
    a = tf.random.stateless_normal([m, k], seed=[0, 1])
    b = tf.random.stateless_normal([k, n], seed=[0, 2])
    return Workload(tf.function(lambda: tf.matmul(a, b)), {"m": m, "k": k, "n": n})


#: What a diagnose run does per update (question shape, batch 100, 4 steps).
DIAGNOSE_RUN = TrainConfig(batch_size=100, steps=4, train_steps=1)


def recorded_training(record: str) -> Workload:
    """One piece of a diagnose run at its defaults (:data:`DIAGNOSE_RUN`):
    ``bare`` (the update alone), ``recorded`` (the update with gradient
    statistics and the state-gradient norm, as ``train`` runs it),
    ``probed`` (that step with the activation probe taken from its own pass:
    what ``diagnose`` runs every 10th step for the shipped cell without
    dropout), ``probe`` (the probe as a pass of its own: what it runs instead
    for a cell with dropout, and what the Monitor runs), each on a batch
    already made; and
    ``batch`` (making one as ``train`` does, in a thread: drawing its
    windows and handing them to TensorFlow)."""
    from cellverify.data.market import market_for
    from cellverify.training.trainer import Trainer

    fresh_session()
    config, run = CellConfig(), DIAGNOSE_RUN
    info = {"record": record, "batch": run.batch_size, "steps": run.steps}
    trainer = Trainer(__import__("cellverify").conv_rnn_cell, config, run, fast=True)
    market = market_for(config, run)
    if record == "batch":
        return Workload(lambda: trainer.feed(batch_for(config, run, market=market)).inputs, info)
    feed = trainer.feed(batch_for(config, run, market=market))
    if record == "recorded":
        return Workload(lambda: trainer.step(feed).loss, info)
    if record == "probed":
        return Workload(lambda: trainer.step(feed, probe=True).loss, info)
    if record == "probe":
        return Workload(lambda: trainer.activations(feed)["uniform_rows"], info)
    return Workload(lambda: trainer.functions.update(feed.inputs, feed.target), info)


#: Distinct batches a run's parts cycle through: a run's worth of them (201
#: of 7.2 MB of windows) would not fit in cache either.
RUN_FEEDS = 25


def diagnose_run_parts(updates: int = 200) -> dict[str, Workload]:
    """A diagnose run at its defaults and what it is made of, each a whole
    run's worth of calls, on batches made beforehand: ``bare`` (the updates
    alone), ``recorded`` (the updates with their statistics, and the last
    measurement), ``probed`` (that, with the activation probe every
    ``DIAGNOSE_PROBE_EVERY`` steps); and ``run`` (``train`` itself, a new seed
    each call, which makes its batches as it goes, on the prefetch thread)."""
    import itertools

    from cellverify.data.market import market_for
    from cellverify.experiments.verify import DIAGNOSE_PROBE_EVERY
    from cellverify.model.cell import conv_rnn_cell
    from cellverify.training.trainer import Trainer, TrainerReuse, train

    fresh_session()
    config, run = CellConfig(), DIAGNOSE_RUN.replace(train_steps=updates)
    trainer = Trainer(conv_rnn_cell, config, run, fast=True)
    market = market_for(config, run)
    made = [trainer.feed(batch_for(config, run, market=market, draw=k)) for k in range(RUN_FEEDS)]
    feeds = [made[k % RUN_FEEDS] for k in range(updates + 1)]

    def bare() -> Any:
        for f in feeds[:-1]:
            loss = trainer.functions.update(f.inputs, f.target)
        return loss

    def recorded(probe_every: int = 0) -> float:
        for k, f in enumerate(feeds):
            probe = bool(probe_every) and (k in (0, updates) or k % probe_every == 0)
            record = trainer.step(f, update=k < updates, probe=probe)
        return record.loss

    seeds = itertools.count(1)
    reuse = TrainerReuse()  # as a diagnose worker restarts its trainer seed after seed

    def whole() -> int:
        s = next(seeds)
        trace = train(
            conv_rnn_cell,
            config.replace(seed=s),
            run.replace(seed=s),
            probe_every=DIAGNOSE_PROBE_EVERY,
            fast=True,
            reuse=reuse,
        )
        return len(trace.loss)

    info = {"batch": run.batch_size, "steps": run.steps, "updates": updates}
    return {
        "bare": Workload(bare, info),
        "recorded": Workload(recorded, info),
        "probed": Workload(lambda: recorded(DIAGNOSE_PROBE_EVERY), info),
        "run": Workload(whole, info),
    }


def diagnose_run_in_turns(rounds: int) -> dict[str, list[float]]:
    """:func:`diagnose_run_parts` timed in turns, one call a round each, in
    this process pinned to one thread as a diagnose worker is (call it in a
    fresh process: the pin holds only before TensorFlow starts)."""
    from cellverify.execution import pin_tensorflow_threads

    from .paired import in_turns

    pin_tensorflow_threads()
    return in_turns(diagnose_run_parts(), rounds, calls=1)
