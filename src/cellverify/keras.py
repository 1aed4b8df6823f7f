"""Diagnose the user's own training: a Keras callback for ``model.fit``, and
``observe()`` for custom loops.

::

    from cellverify.keras import Monitor

    monitor = Monitor(every=25, stop_on=("zero_gradient",))
    model.fit(x, y, epochs=3, callbacks=[monitor])
    monitor.diagnosis.verdict.name      # "will not learn", "healthy", ...

The monitor fills the same :class:`~cellverify.trace.Trace` that ``cellverify
diagnose`` reads, so the findings, severities and verdict are the same
diagnosis (docs/design.md, "Diagnosis"):

* the loss of every batch (from Keras's loss tracker, without extra work);
* every ``every`` steps, on a probe batch: each variable's gradient norm and
  share of exactly-zero entries, the weight norms, the update ratio of the
  next update, and, when the model holds an RNN whose cell exposes
  ``step_activations`` (the shipped cell does), the activation statistics;
* the probe's loss at the start and the end, for the outcome.

The probe is ``probe=(x, y)``, or by default the first training batch, kept.
At the end of each epoch and of training the monitor diagnoses the trace,
puts each finding's name into the epoch's ``logs`` (``cellverify/NAME``: its
severity rank, 2 fatal, 1 warning, 0 info), prints each new finding once, and
keeps the result as :attr:`Monitor.diagnosis`.  ``stop_on`` names findings
that stop training, as ``TerminateOnNaN`` does: at the end of the batch whose
probe showed one (``stopped_by`` says which, and at which step); ``log_dir``
writes TensorBoard
scalars and the findings as text.

What it cannot see: a model without an RNN of an exposing cell gets no layer
statistics (dead units, zero logits are then not diagnosed), and the gradient
through the recurrent state is not measured (no vanishing-through-time); with
no ``reference_loss``, "learned" means the probe loss fell by 2 % of its
starting magnitude.  With ``steps_per_execution > 1`` pass ``probe=``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from cellverify.diagnosis import Diagnosis, diagnose
from cellverify.errors import InvalidConfig
from cellverify.probe import (
    dense_gradients,
    gradient_statistics,
    sequence_activation_statistics,
)
from cellverify.trace import Trace, TraceRecorder

__all__ = ["DEFAULT_EVERY", "Monitor"]

#: Steps between two probes.  One probe costs about one training step (a
#: forward and backward pass on the probe batch, plus the activation pass);
#: measured overhead against a bare fit at the question's shape: README,
#: "Diagnosing your own training".
DEFAULT_EVERY = 50

#: Findings' severities as numbers, for Keras's numeric logs.
_SEVERITY_RANK = {"fatal": 2.0, "warning": 1.0, "info": 0.0}


def _find_rnn(model: Any) -> Any:
    """The first RNN layer whose cell exposes ``step_activations``, or None."""
    for layer in getattr(model, "_flatten_layers", lambda: [])():
        cell = getattr(layer, "cell", None)
        if isinstance(layer, keras.layers.RNN) and hasattr(cell, "step_activations"):
            return layer
    return None


class _NoSequence(Exception):
    """The RNN does not return its whole sequence: no per-step activations."""


def _gradient_probe_fn(model: Any) -> Callable[[Any, Any], dict[str, Any]]:
    """The training-mode loss and gradient statistics on (x, y), compiled."""
    variables = list(model.trainable_variables)

    def measure(x: Any, y: Any) -> dict[str, Any]:
        with tf.GradientTape() as tape:
            y_pred = model(x, training=True)
            loss = model.compute_loss(x=x, y=y, y_pred=y_pred, training=True)
        grads = dense_gradients(tape.gradient(loss, variables), variables)
        return {"loss": tf.cast(loss, tf.float64), **gradient_statistics(grads, variables)}

    return tf.function(measure, reduce_retracing=True)  # type: ignore[no-any-return]


def _inference_loss_fn(model: Any) -> Callable[[Any, Any], Any]:
    """The model's loss on (x, y) in inference mode, compiled."""

    def inference_loss(x: Any, y: Any) -> Any:
        y_pred = model(x, training=False)
        return model.compute_loss(x=x, y=y, y_pred=y_pred, training=False)

    return tf.function(inference_loss)  # type: ignore[no-any-return]


def _activation_fn(model: Any) -> Callable[[Any], dict[str, Any]] | None:
    """A compiled pass from the model's input to the RNN cell's activation
    statistics at every step of the probe, or None if there is no such cell."""
    rnn = _find_rnn(model)
    if rnn is None:
        return None
    try:
        to_rnn = keras.Model(model.input, rnn.input)
    except Exception:  # a subclassed model: the RNN's input is not reachable
        if not (len(model.layers) and model.layers[0] is rnn):
            return None
        to_rnn = None

    def statistics(x: Any) -> dict[str, Any]:
        inputs = x if to_rnn is None else to_rnn(x, training=False)
        out = rnn(inputs, training=False)
        out = out[0] if isinstance(out, (list, tuple)) else out
        if len(out.shape) != 3:
            raise _NoSequence
        s0 = rnn.get_initial_state(int(inputs.shape[0]))[0]
        return sequence_activation_statistics(rnn.cell, inputs, out, s0)

    return tf.function(statistics)  # type: ignore[no-any-return]


class Monitor(keras.callbacks.Callback):  # type: ignore[misc]
    """Watch a training run and diagnose it (module doc).

    ``probe``: ``(x, y)`` to measure on (default: the first training batch).
    ``every``: steps between probes.  ``stop_on``: finding names that stop
    training.  ``log_dir``: TensorBoard output.  ``reference_loss``: the loss a
    learner should reach on the probe, if known.  ``verbose``: 0 silent, 1
    findings as they appear.  ``print_fn``: where the findings go.
    """

    def __init__(
        self,
        probe: tuple[Any, Any] | None = None,
        *,
        every: int = DEFAULT_EVERY,
        stop_on: Sequence[str] = (),
        log_dir: str | None = None,
        reference_loss: float | None = None,
        verbose: int = 1,
        print_fn: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise InvalidConfig("Monitor", "every", "a positive number of steps", every)
        self._check_stop_on(stop_on)
        self.every = every
        self.stop_on = tuple(stop_on)
        self.log_dir = log_dir
        self.reference_loss = float("nan") if reference_loss is None else float(reference_loss)
        self.verbose = verbose
        self.print_fn = print_fn or (lambda text: print(text, file=sys.stderr))
        self.probe = None if probe is None else self._as_probe(probe)
        self.diagnosis: Diagnosis | None = None
        #: (finding, step) that stopped training, if one did.
        self.stopped_by: tuple[str, int] | None = None
        # Compiled measurements by name, each with the model it was made for:
        # kept across fits of the same model, so each is traced once.
        self._compiled: dict[str, tuple[Any, Any]] = {}
        self._reset()

    # -- set-up -----------------------------------------------------------------

    @staticmethod
    def _check_stop_on(stop_on: Iterable[str]) -> None:
        from cellverify.diagnosis import FINDING_NAMES

        unknown = [name for name in stop_on if name not in FINDING_NAMES]
        if unknown:
            raise InvalidConfig(
                "Monitor", "stop_on", f"finding names ({', '.join(FINDING_NAMES)})", unknown
            )

    @staticmethod
    def _as_probe(probe: Any) -> tuple[Any, Any]:
        if not isinstance(probe, (tuple, list)) or len(probe) < 2:
            received = type(probe).__name__
            raise InvalidConfig("Monitor", "probe", "a pair (x, y) of arrays", received)
        return probe[0], probe[1]

    def _reset(self) -> None:
        self._recorder = TraceRecorder()
        self._step = 0
        self._snapshot: list[np.ndarray] | None = None
        self._reported: set[str] = set()
        self._tracker: tuple[float, float] | None = None
        self._writer: Any = None
        self._cell: dict[str, Any] = {}
        self._train: dict[str, Any] = {}

    # -- measurements -----------------------------------------------------------

    def _per_model(self, name: str, build: Callable[[Any], Any], model: Any = None) -> Any:
        """``build(model)``, made once per model and kept under ``name``."""
        model = model if model is not None else self.model
        cached = self._compiled.get(name)
        if cached is None or cached[0] is not model:
            cached = self._compiled[name] = (model, build(model))
        return cached[1]

    def _activations(self, x: Any, model: Any = None) -> dict[str, np.ndarray] | None:
        """Activation statistics on ``x``, or None when the model has no RNN
        whose cell exposes ``step_activations``.  Compiled once per model:
        eager, the probe's RNN pass took about twice as long."""
        model = model if model is not None else self.model
        fn = self._per_model("activations", _activation_fn, model)
        if fn is None:
            return None
        try:
            stats = fn(x)
        except _NoSequence:
            self._compiled["activations"] = (model, None)
            return None
        return {k: np.asarray(v) for k, v in stats.items()}

    def _measure(self, step: int) -> float:
        """Gradient and activation statistics on the probe at the current weights."""
        x, y = self.probe  # type: ignore[misc]
        measure = self._per_model("probe", _gradient_probe_fn)
        r = {k: np.asarray(v) for k, v in measure(x, y).items()}
        self._recorder.rows[step] = r
        stats = self._activations(x)
        if stats is not None:
            self._recorder.acts[step] = stats
        self._write_scalars(step, r)
        return float(r["loss"])

    # -- the first training batch as the default probe ---------------------------

    def _capture_first_batch(self) -> None:
        model = self.model
        original = model.train_function

        def first_call(iterator: Any) -> Any:
            data = next(iter(iterator)) if not hasattr(iterator, "get_next") else next(iterator)
            x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
            self.probe = (np.asarray(x), np.asarray(y))
            self._begin_probe()
            self._measure(0)
            self._snapshot = [_value(v) for v in model.trainable_variables]
            model.train_function = original
            return model.train_step(data)

        model.train_function = first_call

    # -- Keras callback hooks ------------------------------------------------------

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        self._reset()
        self._describe_run()
        if self.log_dir:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        if self.probe is None:
            self._capture_first_batch()
        else:
            self._begin_probe()

    def _begin_probe(self) -> None:
        self._recorder.names = tuple(v.path for v in self.model.trainable_variables)
        x, y = self.probe  # type: ignore[misc]
        self._recorder.eval_start = self._probe_loss(x, y)

    def _probe_loss(self, x: Any, y: Any) -> float:
        return float(self._per_model("loss", _inference_loss_fn)(x, y))

    def on_train_batch_begin(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        if self.probe is None or (self._step == 0 and 0 in self._recorder.rows):
            return  # the first batch is captured (and measured) inside the train function
        if self._step % self.every == 0:
            self._measure(self._step)
            self._snapshot = [_value(v) for v in self.model.trainable_variables]

    def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        self._recorder.loss.append(self._batch_loss(batch, logs or {}))
        if self._snapshot is not None:
            ratio = self._recorder.ratios[self._step] = self._update_ratio(self._snapshot)
            self._write_ratio(self._step, ratio)
            self._snapshot = None
        measured_now = self._step in self._recorder.rows
        self._step += 1
        if measured_now and self.stop_on:
            self._maybe_stop()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        result = self._diagnose(final=False)
        if result is not None and logs is not None:
            for finding in result.findings:
                logs[f"cellverify/{finding.name}"] = _SEVERITY_RANK[finding.severity]

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        if self.probe is None:
            return
        self._recorder.loss.append(self._measure(self._step))
        x, y = self.probe
        self._recorder.eval_end = self._probe_loss(x, y)
        self._diagnose(final=True)
        if self._writer is not None:
            self._writer.flush()

    # -- custom loops --------------------------------------------------------------

    def observe(
        self,
        step: int,
        loss: Any,
        gradients: Sequence[Any],
        variables: Sequence[Any],
        *,
        model: Any = None,
        inputs: Any = None,
    ) -> None:
        """Feed one step of a custom (``GradientTape``) loop: call it after
        computing ``gradients`` of ``loss`` and before applying them.

        Every ``every`` steps the gradients are summarised, and the weights
        kept so that the next call measures the update ratio; with the
        ``model`` and this step's ``inputs``, the activation statistics too
        (when the model holds an RNN of an exposing cell).  Call
        :meth:`finish` after the last step for the diagnosis.
        """
        if not self._recorder.names:
            names = (getattr(v, "path", f"variable{i}") for i, v in enumerate(variables))
            self._recorder.names = tuple(names)
            self._cell = {"model": "custom loop"}
            self._train = {"optimizer": "custom loop", "learning_rate": float("nan"), "steps": 1}
            self._recorder.eval_start = float(loss)
        if self._snapshot is not None:
            ratio = self._recorder.ratios[step - 1] = self._update_ratio(self._snapshot, variables)
            self._write_ratio(step - 1, ratio)
            self._snapshot = None
        self._recorder.loss.append(float(loss))
        if step % self.every == 0:
            grads = dense_gradients(gradients, variables)
            r = {k: np.asarray(v) for k, v in gradient_statistics(grads, variables).items()}
            self._recorder.rows[step] = r
            stats = None if model is None or inputs is None else self._activations(inputs, model)
            if stats is not None:
                self._recorder.acts[step] = stats
            self._write_scalars(step, r)
            self._snapshot = [_value(v) for v in variables]
            if self.stop_on:
                self._maybe_stop()
        self._step = step + 1

    def finish(self, loss: Any | None = None) -> Diagnosis | None:
        """End a custom loop: diagnose what :meth:`observe` saw (``loss``: the
        final loss, by default the last observed)."""
        last = self._recorder.loss[-1] if self._recorder.loss else float("nan")
        self._recorder.eval_end = float(loss) if loss is not None else last
        return self._diagnose(final=True)

    # -- reporting ---------------------------------------------------------------

    def _describe_run(self) -> None:
        model = self.model
        optimizer = getattr(model, "optimizer", None)
        rate = getattr(optimizer, "learning_rate", float("nan"))
        try:
            rate = float(rate)
        except (TypeError, ValueError):  # a schedule
            rate = float("nan")
        rnn = _find_rnn(model)
        config = getattr(getattr(rnn, "cell", None), "cell_config", None)
        self._cell = config.to_dict() if config is not None else {"model": model.name}
        self._train = {
            "optimizer": type(optimizer).__name__.lower() if optimizer is not None else "none",
            "learning_rate": rate,
            "steps": int(rnn.input.shape[1]) if rnn is not None and rnn.input.shape[1] else 1,
        }

    def trace(self) -> Trace:
        """What the monitor has recorded so far, as a Trace."""
        return self._recorder.trace(
            self._cell, self._train, reference_loss=self.reference_loss, with_measured=True
        )

    def _diagnose(self, *, final: bool) -> Diagnosis | None:
        if len(self._recorder.loss) < 1 or not self._recorder.rows:
            return None
        trace = self.trace()
        if not final:  # mid-run: the last measured row stands for the end
            trace = _until_last_measured(trace)
        self.diagnosis = diagnose([trace], [0])
        self._report(self.diagnosis, final)
        return self.diagnosis

    def _report(self, result: Diagnosis, final: bool) -> None:
        new = [f for f in result.findings if f.name not in self._reported]
        for finding in new:
            self._reported.add(finding.name)
            if self.verbose:
                self.print_fn(f"cellverify: {finding.severity} {finding.name}: {finding.detail}")
                for cause in result.causes:
                    if finding.name in cause.findings:
                        self.print_fn(f"  likely cause {cause.name}: {cause.explanation}")
            self._write_text(finding.name, finding.detail)
        if final and self.verbose:
            self.print_fn(
                f"cellverify: verdict {result.verdict.name.upper()} - {result.verdict.reason}"
            )

    def _maybe_stop(self) -> None:
        trace = _until_last_measured(self.trace())
        result = diagnose([trace], [0])
        for finding in result.findings:
            if finding.name in self.stop_on:
                step = int(finding.evidence[0].get("step", self._step))
                self.stopped_by = (finding.name, step)
                self.print_fn(
                    f"cellverify: stopping at step {step}: {finding.name} ({finding.detail})"
                )
                if getattr(self, "model", None) is not None:
                    self.model.stop_training = True
                return

    # -- helpers -----------------------------------------------------------------

    def _batch_loss(self, batch: int, logs: Mapping[str, Any]) -> float:
        """This batch's own loss: Keras logs the running mean over the epoch,
        so read the loss tracker's total and count and take the difference."""
        tracker = getattr(self.model, "_loss_tracker", None)
        total = getattr(tracker, "total", None)
        count = getattr(tracker, "count", None)
        if total is not None and count is not None:
            now = (float(total), float(count))
            before = self._tracker if self._tracker is not None and batch > 0 else (0.0, 0.0)
            self._tracker = now
            if now[1] > before[1]:
                return (now[0] - before[0]) / (now[1] - before[1])
        mean = float(logs.get("loss", float("nan")))
        return mean  # no tracker: the running mean is the best there is

    def _update_ratio(self, before: list[np.ndarray], variables: Any = None) -> np.ndarray:
        after = [_value(v) for v in (variables or self.model.trainable_variables)]
        ratios = []
        for b, a in zip(before, after, strict=True):
            scale = float(np.linalg.norm(b))
            ratios.append(float(np.linalg.norm(a - b)) / scale if scale > 0 else float("nan"))
        return np.array(ratios)

    def _write_scalars(self, step: int, r: Mapping[str, np.ndarray]) -> None:
        if self._writer is None:
            return
        with self._writer.as_default():
            for i, name in enumerate(self._recorder.names):
                _summary(f"grad_norm/{name}", float(r["grad_norm"][i]), step, "scalars")
                share = float(r["grad_zero_fraction"][i])
                _summary(f"grad_zero_fraction/{name}", share, step, "scalars")

    def _write_ratio(self, step: int, ratio: np.ndarray) -> None:
        if self._writer is None:
            return
        with self._writer.as_default():
            for i, name in enumerate(self._recorder.names):
                _summary(f"update_ratio/{name}", float(ratio[i]), step, "scalars")

    def _write_text(self, name: str, message: str) -> None:
        if self._writer is None:
            return
        with self._writer.as_default():
            _summary(f"cellverify/{name}", message, self._step, "text")


def _summary(tag: str, value: float | str, step: int, plugin: str) -> None:
    """What tf.summary.scalar and tf.summary.text write, without the
    tensorboard package (tensorflow-cpu does not bring it)."""
    from tensorflow.core.framework import summary_pb2

    data = summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin)
    metadata = summary_pb2.SummaryMetadata(plugin_data=data)
    tensor = tf.constant(value, dtype=tf.float32 if plugin == "scalars" else tf.string)
    tf.summary.write(tag, tensor, step=step, metadata=metadata)


def _value(variable: Any) -> np.ndarray:
    """A variable's value as a NumPy copy."""
    return np.array(variable.numpy() if hasattr(variable, "numpy") else variable)


def _until_last_measured(trace: Trace) -> Trace:
    """The trace cut after its last measured row, so that "the end" is a
    measured step (a run still in progress)."""
    import dataclasses

    rows = np.flatnonzero(trace.measured_rows())
    end = int(rows[-1]) + 1 if rows.size else trace.loss.shape[0]
    cut: dict[str, Any] = {}
    for f in dataclasses.fields(trace):
        value = getattr(trace, f.name)
        rows = trace.loss.shape[0]
        if isinstance(value, np.ndarray) and value.ndim >= 1 and value.shape[0] == rows:
            cut[f.name] = value[:end]
        elif f.name == "update_ratio":
            cut[f.name] = value[: max(end - 1, 0)]
    return dataclasses.replace(trace, **cut)
