"""The Monitor: a Keras callback, and ``observe()`` for custom loops
(the package doc, :mod:`cellverify.monitor`, says what it records).

The Monitor holds the options and the hooks; what a run recorded is a
:class:`~cellverify.monitor.recording.Recording`, and what is said and
stopped on is :mod:`cellverify.monitor.reporting`'s.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras
import numpy as np

from cellverify.diagnosis import Diagnosis, diagnose
from cellverify.errors import InvalidConfig
from cellverify.monitor.probes import CompiledProbes, find_rnn
from cellverify.monitor.recording import Recording, until_last_measured
from cellverify.monitor.reporting import FindingReporter, StopRule
from cellverify.monitor.tensorboard import TensorBoardLog
from cellverify.trace import Trace
from cellverify.training.probe import dense_gradients, gradient_statistics

__all__ = ["DEFAULT_EVERY", "Monitor"]

#: Steps between two probes.  One probe costs about one training step (a
#: forward and backward pass on the probe batch, plus the activation pass);
#: measured overhead against a bare fit at the question's shape: docs/monitor.md,
#: "Diagnosing your own training".
DEFAULT_EVERY = 50

#: Findings' severities as numbers, for Keras's numeric logs.
_SEVERITY_RANK = {"fatal": 2.0, "warning": 1.0, "info": 0.0}


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
        self._stop_rule = StopRule(stop_on)
        self.every = every
        self.stop_on = self._stop_rule.names
        self.log_dir = log_dir
        self.reference_loss = float("nan") if reference_loss is None else float(reference_loss)
        self.verbose = verbose
        self.print_fn = print_fn or (lambda text: print(text, file=sys.stderr))
        self.probe = None if probe is None else _as_probe(probe)
        self.diagnosis: Diagnosis | None = None
        #: (finding, step) that stopped training, if one did.
        self.stopped_by: tuple[str, int] | None = None
        #: The first probed step at which the run so far was judged "will not
        #: learn" (the evidence is checked at every probe), if it was.
        self.will_not_learn_at: int | None = None
        self._probes = CompiledProbes()
        self._reset(log_dir=None)

    def _reset(self, *, log_dir: str | None) -> None:
        self.will_not_learn_at = None
        self._recording = Recording(TensorBoardLog(log_dir))
        self._reporter = FindingReporter()
        self._step = 0
        self._losses = _BatchLosses()

    # -- Keras callback hooks ------------------------------------------------------

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        self._reset(log_dir=self.log_dir)
        self._recording.cell, self._recording.train = _describe(self.model)
        if self.probe is None:
            self._capture_first_batch()
        else:
            self._begin_probe()

    def on_train_batch_begin(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        if self.probe is None or (self._step == 0 and self._recording.measured(0)):
            return  # the first batch is captured (and measured) inside the train function
        if self._step % self.every == 0:
            self._measure(self._step)
            self._recording.keep_weights(self.model.trainable_variables)

    def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        self._recording.loss(self._losses.of(self.model, batch, logs or {}))
        self._recording.update_ratio(self._step, self.model.trainable_variables)
        measured_now = self._recording.measured(self._step)
        self._step += 1
        if measured_now:
            self._judge()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        result = self._diagnose(final=False)
        if result is not None and logs is not None:
            for finding in result.findings:
                logs[f"cellverify/{finding.name}"] = _SEVERITY_RANK[finding.severity]

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        if self.probe is None:
            return
        self._recording.loss(self._measure(self._step))
        self._recording.end(self._probes.loss(self.model, *self.probe))
        self._diagnose(final=True)
        self._recording.log.flush()

    def _begin_probe(self) -> None:
        names = [v.path for v in self.model.trainable_variables]
        self._recording.begin(names, self._probes.loss(self.model, *self.probe))  # type: ignore[misc]

    def _measure(self, step: int) -> float:
        """Gradient and activation statistics on the probe at the current weights."""
        x, y = self.probe  # type: ignore[misc]
        r = self._probes.gradients(self.model, x, y)
        self._recording.measurement(step, r, self._probes.activations(self.model, x))
        return float(r["loss"])

    def _capture_first_batch(self) -> None:
        """The first training batch as the probe: taken, and measured before
        its update, inside the train function's first call."""
        model = self.model
        original = model.train_function

        def first_call(iterator: Any) -> Any:
            data = next(iter(iterator)) if not hasattr(iterator, "get_next") else next(iterator)
            x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
            self.probe = (np.asarray(x), np.asarray(y))
            self._begin_probe()
            self._measure(0)
            self._recording.keep_weights(model.trainable_variables)
            model.train_function = original
            return model.train_step(data)

        model.train_function = first_call

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
        recording = self._recording
        if not recording.names:
            recording.begin_loop(variables, float(loss))
        recording.update_ratio(step - 1, variables)
        recording.loss(float(loss))
        if step % self.every == 0:
            grads = dense_gradients(gradients, variables)
            r = {k: np.asarray(v) for k, v in gradient_statistics(grads, variables).items()}
            shows = model is not None and inputs is not None
            recording.measurement(
                step, r, self._probes.activations(model, inputs) if shows else None
            )
            recording.keep_weights(variables)
            self._judge()
        self._step = step + 1

    def finish(self, loss: Any | None = None) -> Diagnosis | None:
        """End a custom loop: diagnose what :meth:`observe` saw (``loss``: the
        final loss, by default the last observed)."""
        losses = self._recording.losses
        last = losses[-1] if losses else float("nan")
        self._recording.end(float(loss) if loss is not None else last)
        return self._diagnose(final=True)

    # -- the diagnosis -------------------------------------------------------------

    def trace(self) -> Trace:
        """What the monitor has recorded so far, as a Trace."""
        return self._recording.trace(self.reference_loss)

    def _diagnose(self, *, final: bool) -> Diagnosis | None:
        if not self._recording.losses or not self._recording.any_measured:
            return None
        trace = self.trace()
        if not final:  # mid-run: the last measured row stands for the end
            trace = until_last_measured(trace)
        self.diagnosis = diagnose([trace], [0])
        say = self.print_fn if self.verbose else None
        log = self._recording.log
        self._reporter.report(self.diagnosis, step=self._step, log=log, say=say, final=final)
        return self.diagnosis

    def _judge(self) -> None:
        """At a probe: diagnose the run so far (NumPy only), say "will not
        learn" the first time the evidence does, and stop on a finding named
        in ``stop_on``."""
        trace = until_last_measured(self.trace())
        result = diagnose([trace], [0])
        if result.verdict.name == "will not learn" and self.will_not_learn_at is None:
            self.will_not_learn_at = trace.steps
            if self.verbose:
                self.print_fn(
                    f"cellverify: WILL NOT LEARN from step {trace.steps}: {result.verdict.reason}"
                )
        stop = self._stop_rule.check(result, self._step)
        if stop is None:
            return
        self.stopped_by = (stop.finding, stop.step)
        self.print_fn(f"cellverify: stopping at step {stop.step}: {stop.finding} ({stop.detail})")
        if getattr(self, "model", None) is not None:
            self.model.stop_training = True


def _as_probe(probe: Any) -> tuple[Any, Any]:
    if not isinstance(probe, (tuple, list)) or len(probe) < 2:
        received = type(probe).__name__
        raise InvalidConfig("Monitor", "probe", "a pair (x, y) of arrays", received)
    return probe[0], probe[1]


def _describe(model: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """What a trace says of a Keras model: its cell's configuration (else
    its name), and its optimizer, learning rate and sequence length."""
    optimizer = getattr(model, "optimizer", None)
    rate = getattr(optimizer, "learning_rate", float("nan"))
    try:
        rate = float(rate)
    except (TypeError, ValueError):  # a schedule
        rate = float("nan")
    rnn = find_rnn(model)
    config = getattr(getattr(rnn, "cell", None), "cell_config", None)
    cell = config.to_dict() if config is not None else {"model": model.name}
    train = {
        "optimizer": type(optimizer).__name__.lower() if optimizer is not None else "none",
        "learning_rate": rate,
        "steps": int(rnn.input.shape[1]) if rnn is not None and rnn.input.shape[1] else 1,
    }
    return cell, train


class _BatchLosses:
    """Each batch's own loss: Keras logs the running mean over the epoch,
    so read the loss tracker's total and count and take the difference."""

    def __init__(self) -> None:
        self._tracker: tuple[float, float] | None = None

    def of(self, model: Any, batch: int, logs: Mapping[str, Any]) -> float:
        tracker = getattr(model, "_loss_tracker", None)
        total = getattr(tracker, "total", None)
        count = getattr(tracker, "count", None)
        if total is not None and count is not None:
            now = (float(total), float(count))
            before = self._tracker if self._tracker is not None and batch > 0 else (0.0, 0.0)
            self._tracker = now
            if now[1] > before[1]:
                return (now[0] - before[0]) / (now[1] - before[1])
        return float(logs.get("loss", float("nan")))  # no tracker: the running mean is the best
