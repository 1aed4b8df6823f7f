"""The monitor on real Keras training: model.fit with the question's cell and
with the remedy, stopping on a finding, and a custom loop through observe()."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from cellverify import AS_ASKED, REMEDIED, InvalidConfig
from cellverify.cell import conv_rnn_cell
from cellverify.data import batch_for
from cellverify.keras import Monitor
from cellverify.model import build_model, fresh_session, keras_loss, loss_for
from tests.outside_cells import eiie_cell

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("fresh_keras")]

#: A small shape (8 assets, 20-period windows) so that a fit takes seconds.
SHAPE = {"assets": 8, "window": 20}
BATCH = 16
EXAMPLES = 320  # 20 batches an epoch


def fit_preset(preset, seed, *, epochs=2, every=5, **monitor_options):
    """model.fit of a preset's cell on the supervised task, with a monitor."""
    fresh_session()
    cell, train = preset.with_seed(seed)
    cell = cell.replace(**SHAPE)
    train = train.replace(task="supervised")
    data = batch_for(cell, train.replace(batch_size=EXAMPLES), draw=0)
    keras.utils.set_random_seed(seed)  # the fit's own shuffling, seeded per run
    model = build_model(conv_rnn_cell(cell), cell, steps=train.steps)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras_loss("supervised"))
    monitor = Monitor(every=every, verbose=0, **monitor_options)
    history = model.fit(
        data.inputs, data.targets, batch_size=BATCH, epochs=epochs, shuffle=False,
        callbacks=[monitor], verbose=0,
    )  # fmt: skip
    return monitor, history, model, data


def test_the_monitor_flags_a_dying_question_cell_and_its_verdict():
    dead = 0
    for seed in range(4):
        monitor, history, _, _ = fit_preset(AS_ASKED, seed)
        names = {f.name: f for f in monitor.diagnosis.findings}
        trace = monitor.trace()
        if trace.gradient_is_zero():
            dead += 1
            assert names["zero_gradient"].severity == "fatal"
            assert monitor.diagnosis.verdict.name == "will not learn"
            assert "cellverify/zero_gradient" in history.history
    assert dead >= 3  # the question's cell dies on most seeds under Adam


def test_the_monitor_finds_nothing_on_the_remedied_cell():
    for seed in range(3):
        monitor, history, _, _ = fit_preset(REMEDIED, seed)
        assert monitor.diagnosis.findings == [], [f.detail for f in monitor.diagnosis.findings]
        assert monitor.diagnosis.verdict.name in ("healthy", "too early to tell")
        assert not [k for k in history.history if k.startswith("cellverify/")]


def test_stop_on_stops_the_fit_at_the_step_the_gradient_died():
    for seed in range(6):
        monitor, _, _, _ = fit_preset(AS_ASKED, seed, epochs=3, every=1, stop_on=("zero_gradient",))
        died = monitor.trace().first_zero_gradient_step()
        if died is None:
            continue
        assert monitor.stopped_by == ("zero_gradient", died)
        # As TerminateOnNaN: the batch whose probe showed it is the last one run.
        assert monitor.trace().steps == died + 1
        return
    pytest.fail("no seed of the question's cell died: nothing to stop on")


def test_observe_in_a_custom_loop_gives_the_findings_of_the_callback():
    seed = 1
    callback, _, _, data = fit_preset(AS_ASKED, seed, epochs=1, every=5)

    fresh_session()
    cell, train = AS_ASKED.with_seed(seed)
    cell, train = cell.replace(**SHAPE), train.replace(task="supervised")
    model = build_model(conv_rnn_cell(cell), cell, steps=train.steps)
    optimizer = keras.optimizers.Adam(1e-3)
    loss_fn = loss_for("supervised")
    monitor = Monitor(every=5, verbose=0)
    for step in range(EXAMPLES // BATCH):
        x = data.inputs[step * BATCH : (step + 1) * BATCH]
        y = data.targets[step * BATCH : (step + 1) * BATCH]
        with tf.GradientTape() as tape:
            loss = loss_fn(model(x, training=True), y)
        grads = tape.gradient(loss, model.trainable_variables)
        monitor.observe(step, loss, grads, model.trainable_variables, model=model, inputs=x)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
    result = monitor.finish()
    assert {f.name for f in result.findings} == {f.name for f in callback.diagnosis.findings}
    assert result.verdict.name == callback.diagnosis.verdict.name


def test_the_monitor_writes_tensorboard_scalars_and_findings(tmp_path):
    fit_preset(AS_ASKED, 1, epochs=1, log_dir=str(tmp_path / "logs"))
    tags = set()
    for path in (tmp_path / "logs").glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            tags |= {value.tag for value in event.summary.value}
    assert any(tag.startswith("grad_norm/") for tag in tags)
    assert any(tag.startswith("grad_zero_fraction/") for tag in tags)
    assert any(tag.startswith("update_ratio/") for tag in tags)
    assert "cellverify/zero_gradient" in tags


def test_the_monitor_diagnoses_an_outside_cell_without_step_activations():
    """No layer statistics, but the gradient findings and the verdict: the
    question's ReLU before the softmax, written by a user, dies the same way."""
    dead = 0
    for seed in range(3):
        fresh_session()
        cell, train = AS_ASKED.with_seed(seed)
        cell = cell.replace(**SHAPE)
        data = batch_for(cell, train.replace(batch_size=EXAMPLES, task="supervised"), draw=0)
        model = build_model(eiie_cell(cell), cell, steps=train.steps)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras_loss("supervised"))
        monitor = Monitor(every=5, verbose=0)
        model.fit(data.inputs, data.targets, batch_size=BATCH, epochs=1, callbacks=[monitor],
                  verbose=0, shuffle=False)  # fmt: skip
        trace = monitor.trace()
        assert np.isnan(trace.dead_fraction).all()  # nothing exposed, nothing made up
        names = {f.name for f in monitor.diagnosis.findings}
        if trace.gradient_is_zero():
            dead += 1
            assert "zero_gradient" in names and monitor.diagnosis.verdict.name == "will not learn"
        else:
            assert "zero_gradient" not in names
    assert dead >= 1


def _dense_model(last_bias: float) -> keras.Model:
    """No RNN at all: a linear layer, a ReLU, a softmax.  A last bias of -10
    clips every logit to 0 (uniform output, zero gradient); 0 does not."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((6,)),
        keras.layers.Dense(3, activation="relu",
                           bias_initializer=keras.initializers.Constant(last_bias)),
        keras.layers.Softmax(),
    ])  # fmt: skip
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="categorical_crossentropy")
    return model


def _fit_dense(last_bias: float, **monitor_options) -> Monitor:
    fresh_session()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 6)).astype("float32")
    y = keras.utils.to_categorical(np.argmax(x[:, :3], axis=1), 3)
    model = _dense_model(last_bias)
    monitor = Monitor(every=2, verbose=0, **monitor_options)
    model.fit(x, y, batch_size=32, epochs=2, callbacks=[monitor], verbose=0, shuffle=False)
    return monitor


@pytest.mark.parametrize(("last_bias", "dies"), [(-10.0, True), (0.0, False)])
def test_the_monitor_diagnoses_a_model_with_no_rnn(last_bias, dies):
    monitor = _fit_dense(last_bias, stop_on=("zero_gradient",))
    fatal = {f.name for f in monitor.diagnosis.by_severity("fatal")}
    if dies:
        assert "zero_gradient" in fatal
        assert monitor.stopped_by == ("zero_gradient", 0)
    else:
        assert not fatal and monitor.stopped_by is None
        assert monitor.diagnosis.verdict.name in ("healthy", "too early to tell")


def test_the_monitor_says_will_not_learn_at_the_first_probe_whose_evidence_allows_it():
    """Dead from step 0: "will not learn" at the first probe; alive: never."""
    assert _fit_dense(-10.0).will_not_learn_at == 0
    assert _fit_dense(0.0).will_not_learn_at is None


def test_the_monitor_rejects_bad_options():
    with pytest.raises(InvalidConfig, match=r"Monitor\.every must be a positive number of steps"):
        Monitor(every=0)
    with pytest.raises(InvalidConfig, match=r"Monitor\.stop_on must be finding names"):
        Monitor(stop_on=("zero_gradients",))
    with pytest.raises(InvalidConfig, match=r"Monitor\.probe must be a pair \(x, y\)"):
        Monitor(probe=np.zeros(3))


def test_share_counts_true_entries_exactly():
    from cellverify.training.probe import share

    mask = np.zeros((3, 4, 5), bool)
    mask[0, 1, 2] = mask[2, 3, 4] = mask[1, 0, 0] = True
    assert float(share(tf.constant(mask))) == 3 / 60
    assert float(share(tf.constant(True))) == 1.0


@pytest.mark.parametrize("shape", [(7, 4, 5, 3), (6, 20), (2, 1, 1, 1)])
def test_layer_statistics_are_the_exact_shares_of_zeros_dead_channels_and_saturation(shape):
    from cellverify.trace import ACTIVATION_LAYERS
    from cellverify.training.probe import SATURATION_LEVEL, activation_statistics

    rng = np.random.default_rng(len(shape))
    a = np.maximum(rng.standard_normal(shape), 0).astype(np.float32)  # ReLU-like: many zeros
    a[..., 0] = 0.0  # a dead channel
    a.flat[1] = np.nan  # NaN is not 0: it keeps its channel alive
    acts = {name: tf.constant(a) for name in ACTIVATION_LAYERS}
    acts["output"] = tf.nn.softmax(tf.constant(rng.standard_normal((5, 3)), tf.float32))
    stats = activation_statistics(acts)
    channels = a.reshape(-1, a.shape[-1])
    expected = {
        "dead_fraction": np.mean(~np.any(channels != 0, axis=0)),
        "zero_fraction": np.count_nonzero(a == 0) / a.size,
        "saturated_fraction": np.count_nonzero(np.abs(a) >= SATURATION_LEVEL) / a.size,
    }
    for key, value in expected.items():
        assert stats[key].numpy().tolist() == [value] * len(ACTIVATION_LAYERS), key
