"""The fast path computes what keras.layers.RNN(ConvRNNCell) computes.

Compared in inference mode: in training, dropout masks are drawn in another
order, so the two agree in distribution, not value by value.  The cases
reach every input kind and every value of each categorical field by
construction (covering cases), then Hypothesis draws more.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings

from cellverify import ConvRNNCell
from cellverify.checks.cases.regions import WHOLE_SPACE
from cellverify.checks.draws.coverage import labels_of
from cellverify.checks.draws.covering_cases import covering_cases
from cellverify.checks.draws.strategies import any_cases
from cellverify.model import fresh_session, loss_for
from cellverify.model.fast import FastConvRNN

EPS32 = float(np.finfo(np.float32).eps)

#: Outputs are probabilities; the fast path reorders float32 sums (conv2 as a
#: matmul, conv3 split in two), so a logit moves by ~ulp x its terms, which
#: scale with the inputs.  Per unit of input magnitude: a few ulps of 1.0 at
#: normalised prices; measured 6.7e-6 at raw prices x 1e4 (tolerance 1e-2).
OUTPUT_ATOL_PER_INPUT = 1e-6
#: Gradients are sums over batch, steps and positions in another order.
#: Where the softmax's gradient cancels over assets, a weight's gradient is
#: left with the rounding of each logit's gradient, not a fraction of its
#: own size.  That rounding: the loss's gradient at a logit is about
#: ``w_a / (batch * steps)`` in size (portfolio or cross-entropy), and
#: float32 leaves it within about ``2 eps`` of that; summed over the batch,
#: steps and assets (the ``w_a`` sum to 1), a weight's gradient is within
#: ``2 eps`` of exact per unit of ``|d logit / d weight|``, and two
#: computations differ by up to twice that: ``4 eps``.  That derivative
#: scales with the activations entering the layer, so the unit is the
#: largest of the inputs and the two convs' outputs.  Measured: at most
#: 0.23x this bound (conv1 on the AVX2-only machine, kernels 1-1-1,
#: linear; 1.3e-7 for conv2's kernel on AVX-512).
GRADIENT_RTOL = 1e-4
GRADIENT_ATOL_PER_INPUT = 4 * EPS32


def _outputs_and_gradients(layer, x, y, task, variables):
    with tf.GradientTape() as tape:
        out = layer(x, training=False)
        loss = loss_for(task)(out, y)
    return np.asarray(out), [np.asarray(g) for g in tape.gradient(loss, variables)]


#: Every input kind and every value of each categorical field of the whole
#: space, in 7 cases (:mod:`cellverify.checks.draws.covering_cases`).  Any fixed seed:
#: the same cases on every run.
COVERING = covering_cases(region=WHOLE_SPACE, adversarial_inputs=True, seed=17)
#: Drawn after them, for the rest of the ci profile's 25.
DRAWN = 25 - len(COVERING)


@pytest.mark.parametrize("case", COVERING, ids=lambda c: "-".join(labels_of(c).values()))
def test_fast_path_matches_the_plain_rnn_on_every_value_by_construction(case):
    _assert_fast_path_matches_the_plain_rnn(case)


@settings(max_examples=DRAWN, derandomize=True, database=None, deadline=None)
@given(any_cases(adversarial_inputs=True))
def test_fast_path_matches_the_plain_rnn_in_outputs_and_gradients(case):
    _assert_fast_path_matches_the_plain_rnn(case)


def _assert_fast_path_matches_the_plain_rnn(case):
    fresh_session()
    batch = case.batch()
    cell = ConvRNNCell(case.cell)
    cell.build((None, *batch.inputs.shape[2:]))
    plain = keras.layers.RNN(cell, return_sequences=True)
    fast = FastConvRNN(cell)
    y = batch.target(case.train.task)
    out_p, grads_p = _outputs_and_gradients(
        plain, batch.inputs, y, case.train.task, cell.trainable_variables
    )
    out_f, grads_f = _outputs_and_gradients(
        fast, batch.inputs, y, case.train.task, cell.trainable_variables
    )
    magnitude = max(1.0, float(np.max(np.abs(batch.inputs))))
    hidden = fast.sequence_activations(batch.inputs)
    activations = max(float(np.max(np.abs(hidden[name]))) for name in ("conv1", "conv2"))
    np.testing.assert_allclose(
        out_f,
        out_p,
        rtol=0,
        atol=OUTPUT_ATOL_PER_INPUT * magnitude,
        err_msg=f"outputs {out_p.shape}, inputs up to {magnitude:.3g}",
    )
    for v, gf, gp in zip(cell.trainable_variables, grads_f, grads_p, strict=True):
        np.testing.assert_allclose(
            gf,
            gp,
            rtol=GRADIENT_RTOL,
            atol=GRADIENT_ATOL_PER_INPUT * max(magnitude, activations),
            err_msg=f"gradient of {v.path} {gp.shape}, activations up to {activations:.3g}",
        )


def test_fast_path_refuses_another_cell():
    with pytest.raises(TypeError, match=r"FastConvRNN runs a ConvRNNCell\. Received: LSTMCell"):
        FastConvRNN(keras.layers.LSTMCell(2))


def test_fast_path_takes_an_initial_state():
    from cellverify import CellConfig, TrainConfig, batch_for

    config = CellConfig(assets=3, window=6, kernels=(2, 3, 1), output_activation="linear")
    x = batch_for(config, TrainConfig(batch_size=2, steps=3)).inputs
    cell = ConvRNNCell(config)
    state = np.array([[0.8, 0.1, 0.1], [0.1, 0.1, 0.8]], np.float32)
    plain = keras.layers.RNN(cell, return_sequences=True)(x, initial_state=[state])
    fast = FastConvRNN(cell)(x, initial_state=[state])
    np.testing.assert_allclose(np.asarray(fast), np.asarray(plain), atol=OUTPUT_ATOL_PER_INPUT)


def test_fast_path_scans_a_long_sequence_as_it_unrolls_a_short_one(monkeypatch):
    from cellverify import CellConfig, TrainConfig, batch_for
    from cellverify.model import fast as fast_module

    config = CellConfig(assets=3, window=6, kernels=(2, 3, 1), output_activation="linear")
    x = batch_for(config, TrainConfig(batch_size=2, steps=4)).inputs
    layer = FastConvRNN(ConvRNNCell(config))
    unrolled = np.asarray(layer(x))
    monkeypatch.setattr(fast_module, "UNROLL_MAX_STEPS", 0)
    scanned = np.asarray(layer(x))
    # The same float32 operations in the same order, in a loop or not.
    np.testing.assert_array_equal(scanned, unrolled)


def test_fast_path_activations_are_the_cell_s_at_every_step():
    from cellverify import CellConfig, TrainConfig, batch_for

    config = CellConfig(assets=3, window=6, kernels=(2, 3, 1), cash_bias=True)
    x = batch_for(config, TrainConfig(batch_size=2, steps=3)).inputs
    cell = ConvRNNCell(config)
    layer = FastConvRNN(cell)
    outputs = np.asarray(layer(x))
    fast = layer.sequence_activations(x)
    state = cell.get_initial_state(2)[0]
    for t in range(3):
        plain = cell.step_activations(x[:, t], state)
        rows = slice(t, None, 3)  # steps are flattened into the batch, example-major
        # The same (TensorFlow's) kernel on the same windows: the same bits.
        np.testing.assert_array_equal(
            np.asarray(fast["conv1"])[rows], np.asarray(plain["conv1"]), err_msg=f"conv1 at {t}"
        )
        np.testing.assert_allclose(
            np.asarray(fast["conv2"]).reshape(2, 3, 3, -1)[:, t],
            np.asarray(plain["conv2"])[:, :, 0],
            atol=OUTPUT_ATOL_PER_INPUT,
            err_msg=f"conv2 at step {t}",
        )
        for name in ("logits", "output"):
            np.testing.assert_allclose(
                np.asarray(fast[name])[rows],
                np.asarray(plain[name]),
                atol=OUTPUT_ATOL_PER_INPUT,
                err_msg=f"{name} at step {t}",
            )
        state = outputs[:, t]
