"""No error line from TensorFlow on a normal run: the graphs the remapper
fails on run without it (cellverify.training.compiled)."""

from __future__ import annotations

import re

import pytest

from .fresh_process import ERROR_LINE, stderr_of

pytestmark = pytest.mark.usefixtures("fresh_keras")

#: Two compiled updates of a leaky-ReLU cell, optionally with the guard off.
_TRAIN = """
import sys
if sys.argv[1] == "plain":
    import tensorflow as tf
    import cellverify.training.steps as steps
    steps.compile_step = lambda fn, jit_compile=False: tf.function(fn, autograph=False)
from cellverify import CellConfig, TrainConfig, batch_for, conv_rnn_cell
from cellverify.training.trainer import Trainer
cell = CellConfig(assets=3, window=6, kernels=(2, 3, 1), activation="leaky_relu")
train = TrainConfig(batch_size=2, steps=2, task="supervised")
t = Trainer(conv_rnn_cell, cell, train)
for _ in range(2):
    print(t.update(batch_for(cell, train)))
"""


def test_training_a_leaky_relu_cell_prints_no_tensorflow_error_line():
    assert not ERROR_LINE.search(stderr_of("-c", _TRAIN, "guarded")), "an E line on stderr"


def test_the_same_training_compiled_plainly_prints_the_remapper_error():
    """The control: without the guard the line is there, so the test above can fail."""
    stderr = stderr_of("-c", _TRAIN, "plain")
    assert re.search(r"^E\d{4} .*remapper failed: .*BiasAdd", stderr, re.M), stderr


def test_check_on_the_shipped_cell_prints_no_tensorflow_error_line():
    """loss_decreases trains compiled, on leaky-ReLU cells among others (its
    covering cases reach every activation of its region)."""
    stderr = stderr_of("-m", "cellverify.cli", "check", "--jobs", "1", "--profile", "dev",
                        "-k", "loss_decreases")  # fmt: skip
    assert not ERROR_LINE.search(stderr), stderr[-3000:]


def test_the_guard_turns_the_remapper_off_only_for_graphs_with_a_leaky_relu_gradient():
    import tensorflow as tf

    from cellverify.training.compiled import compile_step

    x = tf.ones((2, 3))
    v = tf.Variable(tf.ones((3, 3)))

    def step(activation):
        def grad(x):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(activation(x @ v))
            return tape.gradient(loss, v)

        return grad

    leaky, relu = compile_step(step(tf.nn.leaky_relu)), compile_step(step(tf.nn.relu))
    leaky(x), relu(x)
    assert (leaky.unfusable, relu.unfusable) == (True, False)
