"""Measure a region of the configuration space: ``python -m cellverify.tools.measure_region``.

Draws cases from a region (derandomized, so the sample is reproducible) and
records, for each, the quantities the robustness invariants threshold: whether
any variable's gradient is exactly 0 after training, the loss drop on a fixed
batch as a share of the uniform-to-reference gap, and the untrained output's
largest distance from uniform.  This is how :data:`ROBUST_REGION` and the
constants of :mod:`cellverify.checks.judges.invariants` were chosen.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["main", "measure_case"]


def measure_case(factory: Any, case: Any) -> dict[str, Any]:
    """The robustness quantities of one case, as plain numbers."""
    import keras

    from cellverify.checks.judges.invariants import gradients_nonzero, init_near_uniform, loss_drop
    from cellverify.errors import InvariantViolation

    keras.backend.clear_session(free_memory=False)
    row: dict[str, Any] = {"case": case.to_dict()}
    start, best, gap = loss_drop(factory, case)
    row["loss_drop_share"] = (start - best) / gap if gap > 0 else float("nan")
    row["loss_drop_relative"] = (start - best) / max(abs(start), gap)
    for name, fn in (("gradients_nonzero", gradients_nonzero), ("init", init_near_uniform)):
        try:
            fn(factory, case)
            row[name] = "ok"
        except InvariantViolation as exc:
            row[name] = str(exc)
    out = np.asarray(
        keras.layers.RNN(factory(case.cell), return_sequences=True)(case.batch().inputs)
    )
    row["init_deviation"] = float(np.max(np.abs(out - 1.0 / case.cell.outputs)))
    return row


def _line(n: int, case: Any, r: dict[str, Any]) -> str:
    """One sampled case on one line, as it is measured."""
    c, t = case.cell, case.train
    return (
        f"{n:4d} drop {r['loss_drop_share']:+.4f} dev {r['init_deviation']:.3f} "
        f"| {c.activation}/{c.output_activation} {c.initializer} k{c.kernels[:2]} "
        f"{c.assets}x{c.window}x{c.features} drop{c.dropout}@{c.dropout_after} "
        f"cash={c.cash_bias} | {t.optimizer} {t.learning_rate:.2g} {t.task} "
        f"b{t.batch_size}x{t.steps} | grad {r['gradients_nonzero'][:60]} init {r['init'][:60]}"
    )


def _sample(region: Any, samples: int) -> list[dict[str, Any]]:
    """Measure ``samples`` derandomized draws from ``region`` (a line each on stderr)."""
    from hypothesis import HealthCheck, given, settings

    from cellverify.checks.draws.strategies import cases
    from cellverify.model.cell import conv_rnn_cell

    rows: list[dict[str, Any]] = []

    @settings(
        max_examples=samples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=["generate"],  # type: ignore[list-item]
        suppress_health_check=list(HealthCheck),
    )
    @given(cases(region=region))
    def sample(case: Any) -> None:
        rows.append(measure_case(conv_rnn_cell, case))
        print(_line(len(rows), case, rows[-1]), file=sys.stderr, flush=True)

    sample()
    return rows


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    drops = np.array([r["loss_drop_share"] for r in rows])
    devs = np.array([r["init_deviation"] for r in rows])
    relative = [r["loss_drop_relative"] for r in rows]
    return {
        "samples": len(rows),
        "gradients_nonzero_failures": sum(r["gradients_nonzero"] != "ok" for r in rows),
        "init_failures": sum(r["init"] != "ok" for r in rows),
        "loss_drop_share_quantiles": np.nanquantile(drops, [0, 0.01, 0.05, 0.5]).tolist(),
        "loss_drop_relative_quantiles": np.quantile(relative, [0, 0.01, 0.05, 0.5]).tolist(),
        "init_deviation_quantiles": np.quantile(devs, [0.5, 0.95, 0.99, 1.0]).tolist(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    from cellverify.checks.cases.regions import REGIONS

    parser = argparse.ArgumentParser(
        prog="python -m cellverify.tools.measure_region", description=__doc__
    )
    parser.add_argument("--region", choices=sorted(REGIONS), default="robust")
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    rows = _sample(REGIONS[args.region], args.samples)
    summary = _summary(rows)
    print(json.dumps(summary, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"summary": summary, "rows": rows}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
