"""The Monitor: a Keras callback, and ``observe()`` for custom loops
(the package doc, :mod:`cellverify.monitor`, says what it records)."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import keras
import numpy as np

from cellverify.diagnosis import Diagnosis, diagnose
from cellverify.errors import InvalidConfig
from cellverify.monitor.probes import CompiledProbes, find_rnn, snapshot, update_ratios
from cellverify.monitor.tensorboard import TensorBoardLog
from cellverify.trace import Trace, TraceRecorder
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
        self._probes = CompiledProbes()
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
        self._log = TensorBoardLog(None)
        self._cell: dict[str, Any] = {}
        self._train: dict[str, Any] = {}

    # -- measurements -----------------------------------------------------------

    def _measure(self, step: int) -> float:
        """Gradient and activation statistics on the probe at the current weights."""
        x, y = self.probe  # type: ignore[misc]
        r = self._probes.gradients(self.model, x, y)
        self._recorder.rows[step] = r
        stats = self._probes.activations(self.model, x)
        if stats is not None:
            self._recorder.acts[step] = stats
        self._log.gradients(step, self._recorder.names, r)
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
            self._snapshot = snapshot(model.trainable_variables)
            model.train_function = original
            return model.train_step(data)

        model.train_function = first_call

    # -- Keras callback hooks ------------------------------------------------------

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        self._reset()
        self._describe_run()
        self._log = TensorBoardLog(self.log_dir)
        if self.probe is None:
            self._capture_first_batch()
        else:
            self._begin_probe()

    def _begin_probe(self) -> None:
        self._recorder.names = tuple(v.path for v in self.model.trainable_variables)
        x, y = self.probe  # type: ignore[misc]
        self._recorder.eval_start = self._probe_loss(x, y)

    def _probe_loss(self, x: Any, y: Any) -> float:
        return self._probes.loss(self.model, x, y)

    def on_train_batch_begin(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        if self.probe is None or (self._step == 0 and 0 in self._recorder.rows):
            return  # the first batch is captured (and measured) inside the train function
        if self._step % self.every == 0:
            self._measure(self._step)
            self._snapshot = snapshot(self.model.trainable_variables)

    def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        self._recorder.loss.append(self._batch_loss(batch, logs or {}))
        if self._snapshot is not None:
            variables = self.model.trainable_variables
            ratio = self._recorder.ratios[self._step] = update_ratios(self._snapshot, variables)
            self._log.ratios(self._step, self._recorder.names, ratio)
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
        self._log.flush()

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
            ratio = self._recorder.ratios[step - 1] = update_ratios(self._snapshot, variables)
            self._log.ratios(step - 1, self._recorder.names, ratio)
            self._snapshot = None
        self._recorder.loss.append(float(loss))
        if step % self.every == 0:
            grads = dense_gradients(gradients, variables)
            r = {k: np.asarray(v) for k, v in gradient_statistics(grads, variables).items()}
            self._recorder.rows[step] = r
            has_inputs = model is not None and inputs is not None
            stats = self._probes.activations(model, inputs) if has_inputs else None
            if stats is not None:
                self._recorder.acts[step] = stats
            self._log.gradients(step, self._recorder.names, r)
            self._snapshot = snapshot(variables)
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
        rnn = find_rnn(model)
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
            self._log.text(finding.name, finding.detail, self._step)
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


def _until_last_measured(trace: Trace) -> Trace:
    """The trace cut after its last measured row, so that "the end" is a
    measured step (a run still in progress)."""
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
