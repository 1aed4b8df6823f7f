"""Training batches as price spans: the same draws, the same windows within
float32 rounding, conv1 from spans within its derived rounding, and the
fast path and the trainer the same function either way."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cellverify import CellConfig, ConvRNNCell, TrainConfig
from cellverify.data.market import batch_for, market_for, spans_for, synthetic_market
from cellverify.model import fresh_session, loss_for
from cellverify.model.cell import conv_rnn_cell
from cellverify.model.fast import FastConvRNN
from cellverify.training.trainer import Trainer
from tests.test_fast import GRADIENT_ATOL_PER_INPUT, GRADIENT_RTOL, OUTPUT_ATOL_PER_INPUT
from tests.test_native import EPS32, needs_native

#: (batch, steps, assets, window, features, k1): one step and many, windows
#: of 3 (one output) to 100, every feature count up to the kernel's 8, and
#: span lengths that are and are not multiples of the kernel's 8 lanes, and
#: k1 within one block of output channels (5) and across blocks (7, 11).
SPAN_SHAPES = [
    (1, 1, 1, 3, 1, 1),
    (2, 4, 3, 100, 3, 5),
    (3, 7, 2, 17, 8, 3),
    (5, 2, 4, 9, 5, 2),
    (4, 9, 3, 24, 3, 4),
    (2, 3, 2, 12, 3, 7),
    (3, 2, 3, 10, 4, 11),
    (2, 3, 2, 9, 2, 3),
    (3, 2, 2, 11, 6, 5),
    (2, 5, 3, 16, 7, 2),
]


def test_the_span_shapes_reach_every_feature_count_the_kernel_compiles():
    from cellverify.model.native.choice import NATIVE_MAX_FEATURES

    assert sorted({shape[4] for shape in SPAN_SHAPES}) == list(range(1, NATIVE_MAX_FEATURES + 1))


def _windows(prices: np.ndarray, closes: np.ndarray, window: int) -> np.ndarray:
    """``[batch, steps, assets, window, features]`` in float64."""
    steps = closes.shape[1]
    p, c = prices.astype(np.float64), closes.astype(np.float64)
    return np.stack([p[:, :, s : s + window] / c[:, s, :, None, None] for s in range(steps)], 1)


def test_spans_are_the_batch_s_draw_and_its_windows_within_two_roundings():
    cell, train = CellConfig(features=5), TrainConfig(batch_size=30, steps=4)
    market = market_for(cell, train)
    batch = batch_for(cell, train, market=market, draw=7)
    spans = spans_for(cell, train, market=market, draw=7)
    np.testing.assert_array_equal(spans.relatives, batch.relatives)
    np.testing.assert_array_equal(spans.targets, batch.targets)
    prices, closes = spans.spans
    assert prices.shape == (30, cell.assets, cell.window + 3, 5) and closes.shape == (30, 4, 15)
    # A window's entry was one float64 quotient rounded to float32; from the
    # spans it is the quotient of a rounded price and a rounded close, so the
    # two differ by at most those two roundings and the first: 3 half-ulps.
    ratio = _windows(prices, closes, cell.window) / batch.inputs.astype(np.float64)
    assert np.max(np.abs(ratio - 1.0)) <= 1.5 * EPS32


@needs_native
@pytest.mark.parametrize(("shape", "relu"), list(itertools.product(SPAN_SHAPES, [True, False])))
def test_conv1_from_spans_matches_the_float64_convolution_of_each_window(shape, relu):
    from cellverify.model.native.ops import conv_spans
    from tests.test_native import conv1_reference

    b, s, a, window, c, k = shape
    rng = np.random.default_rng(sum(shape))
    prices = rng.uniform(0.5, 2.0, (b, a, window + s - 1, c)).astype(np.float32)
    closes = rng.uniform(0.5, 2.0, (b, s, a)).astype(np.float32)
    w = rng.normal(size=(3, c, k)).astype(np.float32)
    bias = rng.normal(size=k).astype(np.float32)
    g = rng.normal(size=(b * s * a, k, window - 2)).astype(np.float32)
    wv, bv = tf.Variable(w), tf.Variable(bias)
    with tf.GradientTape() as tape:
        y = conv_spans(tf.constant(prices), tf.constant(closes), wv, bv, relu=relu)
        total = tf.reduce_sum(y * g)
    dw, db = tape.gradient(total, [wv, bv])
    rows = _windows(prices, closes, window).reshape(-1, window, c)
    pre, taps, size = conv1_reference(rows, w.astype(np.float64), bias.astype(np.float64))
    # Z = 3c products summed in float32 (3c roundings of the raw terms),
    # times 1/close (two more), plus the bias (one): (3c + 3) half-ulps of
    # the terms' magnitudes, with the windows' terms being the raw ones
    # divided by the close.
    forward_tol = (3 * c + 3) / 2 * EPS32 * size
    expected = np.maximum(pre, 0) if relu else pre
    assert np.all(np.abs(np.asarray(y) - expected) <= forward_tol), f"conv1 {shape}"
    mask = (pre > forward_tol) if relu else np.ones_like(pre, bool)
    ambiguous = relu & (np.abs(pre) <= forward_tol)
    g64 = np.where(mask, g, 0.0)
    # dZ[p] sums a position's `steps` terms, each times 1/close (two
    # roundings); the sum over positions passes ceil(P/8) vector additions,
    # 8 lanes and a conversion; spans are summed in float64.
    positions = window + s - 3
    roundings = s + 2 + -(-positions // 8) + 8 + 1
    slack = np.einsum("ntjc,nkt->jck", np.abs(taps), np.where(ambiguous | mask, np.abs(g), 0.0))
    expected_dw = np.einsum("ntjc,nkt->jck", taps, g64)
    assert np.all(np.abs(np.asarray(dw) - expected_dw) <= roundings * EPS32 * slack + 1e-30)
    bias_slack = np.where(ambiguous | mask, np.abs(g), 0.0).sum(axis=(0, 2))
    bias_roundings = -(-(window - 2) // 8) + 8 + 1
    np.testing.assert_array_less(
        np.abs(np.asarray(db) - g64.sum(axis=(0, 2))), bias_roundings * EPS32 * bias_slack + 1e-30
    )


def _scaled(market, level):
    return dataclasses.replace(
        market, close=market.close * level, high=market.high * level, low=market.low * level
    )


def _outputs_and_gradients(layer, x, y, task):
    variables = layer.cell.trainable_variables
    with tf.GradientTape() as tape:
        out = layer.passes(x, layer.initial(x))[-1]
        loss = loss_for(task)(out, y)
    return np.asarray(out), [np.asarray(g) for g in tape.gradient(loss, variables)]


#: Prices near 1 (the synthetic market) and far from it (an index near 3000),
#: each by construction: the spans carry them raw.
LEVELS = [1.0, 3000.0]


#: Every value of each sampled field below, and the extremes of the sizes, by
#: construction; Hypothesis runs them first, then draws more.
SPAN_EXAMPLES = [
    ("relu", "relu", (2, 3, 1), 3, 1, 1, "portfolio", ()),
    ("tanh", "linear", (5, 6, 1), 24, 8, 5, "supervised", (2,)),
    ("linear", "relu", (1, 1, 1), 9, 3, 3, "portfolio", (3,)),
]
_SPAN_FIELDS = ("activation", "output_activation", "kernels", "window", "features", "steps",
                "task", "dropout_after")  # fmt: skip


def _with_span_examples(test):
    for values in SPAN_EXAMPLES:
        test = example(**dict(zip(_SPAN_FIELDS, values, strict=True)))(test)
    return test


@needs_native
@pytest.mark.parametrize("level", LEVELS)
@settings(max_examples=12, derandomize=True, database=None, deadline=None)
@_with_span_examples
@given(
    activation=st.sampled_from(["relu", "tanh", "linear"]),
    output_activation=st.sampled_from(["relu", "linear"]),
    kernels=st.tuples(st.integers(1, 5), st.integers(1, 6), st.just(1)),
    window=st.integers(3, 24),
    features=st.integers(1, 8),
    steps=st.integers(1, 5),
    task=st.sampled_from(["portfolio", "supervised"]),
    dropout_after=st.sampled_from([(), (2,), (3,)]),
)
def test_fast_path_from_spans_matches_it_from_the_windows(
    level, activation, output_activation, kernels, window, features, steps, task, dropout_after
):
    fresh_session()
    cell_config = CellConfig(
        assets=4,
        window=window,
        features=features,
        kernels=kernels,
        activation=activation,
        output_activation=output_activation,
        dropout=0.1 if dropout_after else 0.0,
        dropout_after=dropout_after,
    )
    train = TrainConfig(batch_size=3, steps=steps, task=task)
    market = _scaled(synthetic_market(4, window + steps + 50, seed=steps), level)
    batch = batch_for(cell_config, train, market=market, draw=1)
    spans = spans_for(cell_config, train, market=market, draw=1)
    cell = ConvRNNCell(cell_config)
    cell.build((None, 4, window, features))
    layer = FastConvRNN(cell)
    assert layer.reads_spans
    y = batch.target(task)
    out_w, grads_w = _outputs_and_gradients(layer, batch.inputs, y, task)
    out_s, grads_s = _outputs_and_gradients(layer, spans.spans, y, task)
    # Inputs are normalised prices (magnitude about 1); the spans' windows
    # differ from the batch's by 1.5 ulps (test above), within the fast
    # path's reordering tolerances.
    activations = max(
        float(np.max(np.abs(v)))
        for k, v in layer.sequence_activations(batch.inputs).items()
        if k in ("conv1", "conv2")
    )
    np.testing.assert_allclose(out_s, out_w, rtol=0, atol=OUTPUT_ATOL_PER_INPUT)
    for v, gs, gw in zip(cell.trainable_variables, grads_s, grads_w, strict=True):
        np.testing.assert_allclose(
            gs,
            gw,
            rtol=GRADIENT_RTOL,
            atol=GRADIENT_ATOL_PER_INPUT * max(1.0, activations),
            err_msg=f"gradient of {v.path} {gw.shape}",
        )


@needs_native
def test_trainer_reads_spans_on_the_native_kernel_and_windows_elsewhere(monkeypatch):
    from cellverify.data.market import Batch
    from cellverify.data.spans import SpanBatch

    cell, train = CellConfig(assets=3, window=6, kernels=(2, 3, 1)), TrainConfig(batch_size=2)
    market = market_for(cell, train)
    fast = Trainer(conv_rnn_cell, cell, train, fast=True)
    assert fast.reads_spans and isinstance(fast.draw(market, 0), SpanBatch)
    plain = Trainer(conv_rnn_cell, cell, train)
    assert not plain.reads_spans and isinstance(plain.draw(market, 0), Batch)
    monkeypatch.setenv("CELLVERIFY_NATIVE", "0")
    stock = Trainer(conv_rnn_cell, cell, train, fast=True)
    assert not stock.reads_spans and isinstance(stock.draw(market, 0), Batch)


@needs_native
def test_trainer_step_from_spans_is_its_step_from_the_windows_within_tolerance():
    cell = CellConfig(assets=3, window=8, kernels=(2, 3, 1), output_activation="linear")
    train = TrainConfig(batch_size=4, steps=3)
    market = market_for(cell, train)
    trainer = Trainer(conv_rnn_cell, cell, train, fast=True)
    from_spans = trainer.step(trainer.draw(market, 0), update=False, probe=True)
    from_windows = trainer.step(batch_for(cell, train, market=market), update=False, probe=True)
    np.testing.assert_allclose(
        from_spans.loss, from_windows.loss, rtol=0, atol=OUTPUT_ATOL_PER_INPUT
    )
    np.testing.assert_allclose(
        from_spans.grad_norm,
        from_windows.grad_norm,
        rtol=GRADIENT_RTOL,
        atol=GRADIENT_ATOL_PER_INPUT,
    )
    assert from_spans.activations is not None and from_windows.activations is not None
    for name, value in from_spans.activations.items():
        np.testing.assert_allclose(
            value,
            from_windows.activations[name],
            rtol=0,
            atol=OUTPUT_ATOL_PER_INPUT,
            err_msg=name,
        )


def test_fast_path_on_tensorflow_s_kernel_refuses_spans_saying_why():
    from cellverify.data.spans import PriceSpans

    cell = ConvRNNCell(CellConfig(assets=3, window=6, kernels=(2, 3, 1)))
    layer = FastConvRNN(cell, conv1="stock")
    assert not layer.reads_spans
    spans = PriceSpans(np.ones((1, 3, 7, 3), np.float32), np.ones((1, 2, 3), np.float32))
    with pytest.raises(ValueError, match=r"price spans need the native conv1 kernel.*asked for"):
        layer.hidden(spans)


def test_spans_from_a_market_too_short_say_what_it_needs():
    from cellverify.data.market import sample_spans
    from cellverify.errors import InvalidConfig

    market = synthetic_market(2, 10, seed=0)
    with pytest.raises(InvalidConfig, match=r"sample_spans.*window \+ steps \+ 1 = 12.*10"):
        sample_spans(
            market, window=8, steps=3, batch_size=1, features=3, rng=np.random.default_rng(0)
        )
