"""The native conv1 kernel computes TensorFlow's conv1, and the fast path
takes it only where it applies (docs/design.md, "Native conv1")."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from cellverify import CellConfig, ConvRNNCell
from cellverify.model.fast import FastConvRNN
from cellverify.model.native import build
from cellverify.model.native.choice import NATIVE_ENV, choose_conv1

LIBRARY = build.native_library()
needs_native = pytest.mark.skipif(not LIBRARY.available, reason=f"no native kernel: {LIBRARY.why}")
EPS32 = float(np.finfo(np.float32).eps)
#: (rows, window, features, k1): one row, windows shorter than a vector of 8
#: time positions and not a multiple of it, every compiled feature count,
#: and k1 of one block of output channels (up to 5), two blocks and a part
#: of one (7 = 5 + 2), and three (11 = 5 + 5 + 1).
SHAPES = [(1, 3, 1, 1), (7, 4, 2, 2), (9, 11, 3, 5), (30, 100, 3, 5), (5, 17, 4, 3), (3, 9, 8, 2),
          (4, 13, 3, 7), (2, 10, 6, 11), (6, 7, 5, 4), (3, 15, 7, 6)]  # fmt: skip


def test_the_shapes_reach_every_feature_count_the_kernel_compiles():
    from cellverify.model.native.choice import NATIVE_MAX_FEATURES

    assert sorted({features for _, _, features, _ in SHAPES}) == list(
        range(1, NATIVE_MAX_FEATURES + 1)
    )


def conv1_reference(x, w, b):
    """conv1's pre-activation in float64 ``[n, K, T]``, its input taps ``[n,
    T, 3, C]``, and the sums of the terms' magnitudes that bound its float32
    rounding.  ``x`` is ``[n, window, features]``, ``w`` ``[3, features, K]``."""
    taps = np.stack([x[:, j : j + x.shape[1] - 2] for j in range(3)], axis=2)  # [n, T, 3, C]
    pre = np.einsum("ntjc,jck->nkt", taps, w) + b[None, :, None]
    size = np.einsum("ntjc,jck->nkt", np.abs(taps), np.abs(w)) + np.abs(b)[None, :, None]
    return pre, taps, size


def conv1_rounding(size, features):
    """How far a float32 conv1 may be from the exact one: each output is
    ``3 * features`` products and a bias summed in float32, in whatever order
    the kernel sums them, so it is within that many roundings of ``size``,
    the sum of its terms' magnitudes (:func:`conv1_reference`)."""
    return (3 * features + 1) * EPS32 * size


@needs_native
@pytest.mark.parametrize(("shape", "relu"), list(itertools.product(SHAPES, [True, False])))
def test_native_conv1_matches_the_float64_convolution_within_its_rounding(shape, relu):
    from cellverify.model.native.ops import conv_rows

    n, window, features, k1 = shape
    rng = np.random.default_rng(sum(shape))
    x = rng.normal(size=(n, window, features)).astype(np.float32)
    w = rng.normal(size=(3, features, k1)).astype(np.float32)
    b = rng.normal(size=k1).astype(np.float32)
    g = rng.normal(size=(n, k1, window - 2)).astype(np.float32)
    xt = tf.constant(x)
    wv, bv = tf.Variable(w), tf.Variable(b)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = conv_rows(xt, wv, bv, relu=relu)
        total = tf.reduce_sum(y * g)
    dx, dw, db = tape.gradient(total, [xt, wv, bv])
    pre, taps, size = conv1_reference(*(a.astype(np.float64) for a in (x, w, b)))
    forward_tol = conv1_rounding(size, features)
    expected = np.maximum(pre, 0) if relu else pre
    assert np.all(np.abs(np.asarray(y) - expected) <= forward_tol), f"conv1 {shape}, relu={relu}"
    mask = (pre > forward_tol) if relu else np.ones_like(pre, bool)
    # Where the sign is within rounding, ReLU's derivative may go either way.
    ambiguous = relu & (np.abs(pre) <= forward_tol)
    g64 = np.where(mask, g, 0.0)
    expected_dw = np.einsum("ntjc,nkt->jck", taps, g64)
    # Each row's sum over time passes through ceil(T/8) vector additions,
    # 8 lanes and one conversion; the rows are summed in float64.
    roundings = -(-(window - 2) // 8) + 8 + 1
    slack = np.einsum("ntjc,nkt->jck", np.abs(taps), np.where(ambiguous | mask, np.abs(g), 0.0))
    assert np.all(np.abs(np.asarray(dw) - expected_dw) <= roundings * EPS32 * slack + 1e-30), (
        f"filter gradient {shape}, relu={relu}"
    )
    bias_slack = np.where(ambiguous | mask, np.abs(g), 0.0).sum(axis=(0, 2))
    np.testing.assert_array_less(
        np.abs(np.asarray(db) - g64.sum(axis=(0, 2))), roundings * EPS32 * bias_slack + 1e-30
    )
    assert dx.shape == x.shape  # the input's gradient is TensorFlow's own (test below)


@needs_native
def test_native_conv1_input_gradient_is_the_stock_conv_s():
    config = CellConfig(assets=3, window=9, kernels=(2, 3, 1), output_activation="linear")
    cell = ConvRNNCell(config)
    x = tf.Variable(np.random.default_rng(0).normal(size=(2, 2, 3, 9, 3)).astype(np.float32))
    grads = []
    for conv1 in ("native", "stock"):
        with tf.GradientTape() as tape:
            out = FastConvRNN(cell, conv1=conv1)(x)
            loss = tf.reduce_sum(out * tf.range(3, dtype=tf.float32))
        grads.append(np.asarray(tape.gradient(loss, x)))
    scale = float(np.max(np.abs(grads[1])))
    np.testing.assert_allclose(grads[0], grads[1], rtol=0, atol=64 * EPS32 * scale)


@pytest.mark.parametrize(
    ("config", "kwargs", "why"),
    [
        (CellConfig(), {"gpus": 1}, "GPU"),
        (CellConfig(), {"gpus": 0, "jit_compile": True}, "XLA"),
        (CellConfig(dropout=0.1, dropout_after=(1,)), {"gpus": 0}, "dropout layer after conv1"),
        (CellConfig(features=9), {"gpus": 0}, "up to 8 features"),
        (CellConfig(), {"gpus": 0, "request": "stock"}, "asked for"),
    ],
)
def test_the_fast_path_keeps_tensorflows_conv1_where_the_native_one_does_not_apply(
    config, kwargs, why
):
    choice = choose_conv1(config, **kwargs)
    assert not choice.native and why in choice.why


def test_conv1_native_request_says_why_it_cannot_run():
    with pytest.raises(ValueError, match=r"conv1='native' cannot run here: 1 GPU\(s\) visible"):
        choose_conv1(CellConfig(), request="native", gpus=1)


def test_conv1_request_outside_its_choices_is_a_clear_error():
    expected = r"conv1 must be one of auto, native, stock\. Received: 'fast'"
    with pytest.raises(ValueError, match=expected):
        choose_conv1(CellConfig(), request="fast")


def test_the_environment_can_turn_the_native_kernel_off(monkeypatch):
    monkeypatch.setenv(NATIVE_ENV, "0")
    choice = choose_conv1(CellConfig(), gpus=0)
    assert (choice.native, choice.why) == (False, f"{NATIVE_ENV}=0")
    assert not FastConvRNN(ConvRNNCell(CellConfig())).native


@needs_native
def test_the_fast_path_takes_the_native_kernel_on_a_cpu_with_no_gpu():
    assert choose_conv1(CellConfig(), gpus=0).native


@pytest.mark.skipif(
    build.unavailable_because() is not None, reason=f"{build.unavailable_because()}"
)
def test_a_failed_compile_falls_back_with_the_compilers_complaint(tmp_path):
    env = {**os.environ, build.CACHE_ENV: str(tmp_path), "CXX": "false"}
    code = (
        "from cellverify.model.native.build import native_library\n"
        "from cellverify.model.native.choice import choose_conv1\n"
        "from cellverify import CellConfig\n"
        "lib = native_library()\n"
        "print(lib.available, repr(lib.why), choose_conv1(CellConfig(), gpus=0).native)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split(None, 1)[0] == "False" and "false failed" in run.stdout
    assert run.stdout.split()[-1] == "False"


def test_a_package_without_the_kernel_s_sources_falls_back_saying_which(monkeypatch, tmp_path):
    monkeypatch.setattr(build, "HEADERS", (tmp_path / "conv1_common.h",))
    library = build.native_library.__wrapped__()
    assert not library.available
    assert "lacks the kernel's sources conv1_common.h" in library.why


#: Run in a fresh interpreter on N threads: conv1's gradients on the question's
#: shape, as hex, and how the library was had.
_GRADIENT_ON_THREADS = """
import sys, numpy as np, tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads(int(sys.argv[1]))
from cellverify.model.native.build import native_library
from cellverify.model.native.ops import conv_rows
rng = np.random.default_rng(0)
x = tf.constant(rng.normal(size=(1500, 100, 3)).astype(np.float32))
w = tf.Variable(rng.normal(size=(3, 3, 5)).astype(np.float32))
b = tf.Variable(np.zeros(5, np.float32))
with tf.GradientTape() as t:
    s = tf.reduce_sum(conv_rows(x, w, b, relu=True) ** 2)
grads = [g.numpy().ravel() for g in t.gradient(s, [w, b])]
print(native_library().why, np.concatenate(grads).tobytes().hex())
"""


@needs_native
def test_the_kernel_compiles_into_an_empty_cache_and_gives_the_same_bits_on_any_thread_count(
    tmp_path,
):
    env = {**os.environ, build.CACHE_ENV: str(tmp_path)}
    script = tmp_path / "gradient.py"
    script.write_text(_GRADIENT_ON_THREADS)

    def run(threads, **extra):
        done = subprocess.run(
            [sys.executable, str(script), str(threads)],
            capture_output=True,
            text=True,
            env={**env, **extra},
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout.split()

    first = run(2)
    assert first[0] == "compiled"
    (library,) = tmp_path.glob("conv_rows-*.so")
    # No compiler at all: the second process can only load what the first built.
    no_compiler = tmp_path / "empty"
    no_compiler.mkdir()
    env.pop("CXX", None)
    again = run(1, PATH=str(no_compiler))
    assert again[0] == "compiled" and list(tmp_path.glob("conv_rows-*.so")) == [library]
    # Fixed shards summed in order: one thread gives two threads' bits.
    assert again[1] == first[1]


@needs_native
def test_activation_statistics_read_the_native_layout_as_they_read_the_cells():
    from cellverify import TrainConfig, batch_for
    from cellverify.training.probe import activation_statistics

    config = CellConfig(assets=4, window=12, kernels=(3, 4, 1))
    x = batch_for(config, TrainConfig(batch_size=3, steps=2)).inputs
    layer = FastConvRNN(ConvRNNCell(config))
    assert layer.channels_first == ("conv1",)
    layer(x)  # builds the cell
    # One channel dead everywhere, the others dead on some rows.
    layer.cell.conv1.bias.assign([1.0, -1e6, 0.0])
    kernel = np.asarray(layer.cell.conv1.kernel)
    kernel[..., 2] = 0.0
    kernel[0, 0, 0, 2], kernel[0, 1, 0, 2] = 1.0, -1.0  # close[t] - close[t+1]: alive half the time
    layer.cell.conv1.kernel.assign(kernel)
    last = activation_statistics(layer.sequence_activations(x))
    first = activation_statistics(
        layer.sequence_activations(x, channels_last=False), channels_first=layer.channels_first
    )
    dead, zeros = float(last["dead_fraction"][0]), float(last["zero_fraction"][0])
    assert 0 < dead < 1 and zeros > dead, (dead, zeros)  # statistics with something to count
    for name, value in last.items():
        np.testing.assert_array_equal(np.asarray(first[name]), np.asarray(value), err_msg=name)


@needs_native
def test_the_probes_native_counts_match_tensorflows_at_zeros_nans_infinities_and_the_level():
    from cellverify.model.native.ops import channel_counts
    from cellverify.training.probe import SATURATION_LEVEL

    rng = np.random.default_rng(3)
    a = rng.normal(size=(37, 5, 29)).astype(np.float32)
    a[:, 3] = 0.0  # a dead channel
    level = np.float32(SATURATION_LEVEL)
    edges = [0.0, -0.0, np.nan, np.inf, -np.inf, level, -level, np.nextafter(level, 0), 1e-45]
    a[0, 0, : len(edges)] = edges
    a[5, 2, -len(edges) :] = edges
    counts = np.asarray(channel_counts(tf.constant(a), level=SATURATION_LEVEL))
    zeros = tf.reduce_sum(tf.cast(tf.equal(a, 0), tf.int64), axis=[0, 2])
    saturated = tf.reduce_sum(tf.cast(tf.abs(a) >= SATURATION_LEVEL, tf.int64), axis=[0, 2])
    np.testing.assert_array_equal(counts, np.stack([zeros, saturated]))
    assert counts[0, 3] == 37 * 29 and counts[0, 0] >= 2 and counts[1, 0] >= 4
