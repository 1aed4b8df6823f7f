"""What watching costs: ``model.fit`` of the question's cell at its full shape
(15 assets x 100 periods x 3 features, batch 100, sequences of 4), bare and
with :class:`cellverify.keras.Monitor` at its default ``every`` and at
``every=1``.  Compare the three as ratios within one run (docs/monitor.md,
"Diagnosing your own training").

Each timed round is one fit of STEPS batches on the same model; tracing of
the train function and of the monitor's probe happens in a warm-up fit
outside the timed region.

The shared machine's load drifts between the bare and the monitored tests
(a bare fit ranged 7.5-12.5 s within one run), so each monitored fit also
times the monitor's own hooks: ``extra_info["hook_share"]`` is the share of
the fit spent inside them, and ``1 / (1 - hook_share)`` the overhead ratio
measured within the very same fits.
"""

from __future__ import annotations

import time

import keras
import pytest

from cellverify import AS_ASKED
from cellverify.cell import conv_rnn_cell
from cellverify.data import batch_for
from cellverify.keras import DEFAULT_EVERY, Monitor
from cellverify.model import build_model, fresh_session, keras_loss

#: Batches per timed fit: twice the default probe interval, so that the
#: default monitor probes as often as it would over a long run.
STEPS = 2 * DEFAULT_EVERY
BATCH = 100


class TimedMonitor(Monitor):
    """A Monitor that adds up the wall time spent in its training hooks."""

    HOOKS = ("on_train_begin", "on_train_batch_begin", "on_train_batch_end",
             "on_epoch_end", "on_train_end")  # fmt: skip

    def __init__(self, **options):
        super().__init__(**options)
        self.hook_seconds = 0.0
        for name in self.HOOKS:
            setattr(self, name, self._timed(getattr(self, name)))

    def _timed(self, hook):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return hook(*args, **kwargs)
            finally:
                self.hook_seconds += time.perf_counter() - start

        return timed


@pytest.mark.parametrize("every", [None, DEFAULT_EVERY, 1], ids=["bare", "default", "every-1"])
def test_fit_with_and_without_the_monitor(benchmark, every):
    fresh_session()
    cell, train = AS_ASKED.with_seed(0)
    # A remedied cell, so that the gradient stays alive and every probe does its work.
    cell = cell.replace(activation="elu", output_activation="linear")
    data = batch_for(cell, train.replace(batch_size=STEPS * BATCH), draw=0)
    model = build_model(conv_rnn_cell(cell), cell, steps=train.steps)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras_loss("portfolio"))
    monitor = None if every is None else TimedMonitor(every=every, verbose=0)
    callbacks = [] if monitor is None else [monitor]
    walls: list[float] = []

    def fit():
        start = time.perf_counter()
        model.fit(
            data.inputs, data.relatives, batch_size=BATCH, epochs=1, callbacks=callbacks,
            verbose=0, shuffle=False,
        )  # fmt: skip
        walls.append(time.perf_counter() - start)

    fit()  # traces the train function and the probe outside the timed region
    if monitor is not None:
        monitor.hook_seconds, walls[:] = 0.0, []
    benchmark.group = f"model.fit, {STEPS} batches at the question's shape"
    benchmark.extra_info.update(every=every, steps=STEPS, batch=BATCH)
    # Five rounds where a round is ~10 s (three for every=1, ~30 s): the shared
    # machine's load drifts, and three rounds of the bare fit spread 8-13 s.
    benchmark.pedantic(fit, rounds=3 if every == 1 else 5, iterations=1)
    if monitor is not None:
        share = monitor.hook_seconds / sum(walls)
        benchmark.extra_info.update(hook_share=share, overhead_within_fits=1 / (1 - share))
