"""PNG pictures of traces and sweeps (matplotlib, an optional extra: ``.[plot]``).

Takes plain data (traces, sweep reports), never TensorFlow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cellverify.errors import CellVerifyError
from cellverify.trace import Trace

__all__ = ["plot_sweep", "plot_traces"]


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only; no display on CI machines
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise CellVerifyError(
            "--plot needs matplotlib: pip install 'cellverify[plot]'. Received: no matplotlib"
        ) from exc
    return plt


def plot_traces(traces: Sequence[Trace], seeds: Sequence[int], path: str, title: str) -> None:
    """Loss and each kernel's gradient norm over steps, one line per seed."""
    plt = _pyplot()
    kernels = [i for i, n in enumerate(traces[0].variables) if n.endswith("kernel")]
    fig, axes = plt.subplots(
        1, 1 + len(kernels), figsize=(4 * (1 + len(kernels)), 3.4), sharex=True
    )
    for trace, seed in zip(traces, seeds, strict=True):
        steps = np.arange(trace.loss.shape[0])
        axes[0].plot(steps, trace.loss, lw=1, marker=".", ms=3, label=f"seed {seed}")
        for ax, i in zip(axes[1:], kernels, strict=True):
            norms = np.where(trace.grad_norm[:, i] > 0, trace.grad_norm[:, i], np.nan)
            ax.semilogy(steps, norms, lw=1, marker=".", ms=3)
    axes[0].set_title("training loss")
    for ax, i in zip(axes[1:], kernels, strict=True):
        ax.set_title(f"‖∂L/∂ {traces[0].variables[i]}‖ (gaps: exactly 0)")
    for ax in axes:
        ax.set_xlabel("step")
    if len(seeds) <= 10:
        axes[0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_sweep(report: Mapping[str, Any], path: str) -> None:
    """Heat-map of the learning rate per grid point: last grid axis across, the rest down."""
    plt = _pyplot()
    axes_spec = report["grid"]
    names = list(axes_spec)
    across = names[-1]
    columns = [str(v) for v in axes_spec[across]]
    rows: dict[str, dict[str, float]] = {}
    for point in report["points"]:
        key = ", ".join(f"{n}={point['values'][n]}" for n in names[:-1]) or "all"
        rows.setdefault(key, {})[str(point["values"][across])] = point["learned_rate"]
    grid = np.array([[rows[r].get(c, np.nan) for c in columns] for r in rows])
    fig, ax = plt.subplots(figsize=(1.2 * len(columns) + 3, 0.45 * len(rows) + 1.6))
    image = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(columns)), columns)
    ax.set_yticks(range(len(rows)), list(rows), fontsize=8)
    ax.set_xlabel(across)
    for (r, c), value in np.ndenumerate(grid):
        if not np.isnan(value):
            ax.text(
                c,
                r,
                f"{value:.1f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if value < 0.5 else "black",
            )
    fig.colorbar(image, ax=ax, label="P(learns)")
    ax.set_title(f"P(learns) over {report['seeds']} seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
