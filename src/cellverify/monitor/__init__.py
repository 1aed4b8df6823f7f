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

from cellverify.monitor.callback import DEFAULT_EVERY, Monitor

__all__ = ["DEFAULT_EVERY", "Monitor"]
