"""Progress on stderr: rich's live bar on a terminal, plain lines in a log.

A live bar needs what rich does and a hand-drawn ``\\r`` line did not: the
terminal's width, a redraw in place, and the cursor given back however the
command ends (at exit too, so after Ctrl-C's exit 130).  A log gets lines
it can keep: one per tenth of the work, and the last, each with the time so
far and an estimate of the rest.  docs/design.md, "Layout", says why the
tables are not rich's.
"""

from __future__ import annotations

import atexit
import sys
import time
from typing import Any, TextIO

__all__ = ["Progress"]


def _duration(seconds: float) -> str:
    whole = max(0, round(seconds))
    return f"{whole // 60}m{whole % 60:02d}s" if whole >= 60 else f"{whole}s"


class Progress:
    """Call as ``progress(done, total)`` (with a ``note`` on what runs now)."""

    def __init__(self, label: str, unit: str = "runs", stream: TextIO | None = None) -> None:
        self.label = label
        self.unit = unit
        self._stream = stream if stream is not None else sys.stderr
        self._start = time.monotonic()
        self._shown = -1
        self._bar: Any = None
        self._task: Any = None
        self._last: tuple[int, int, str] | None = None
        self._finished = False

    def __call__(self, done: int, total: int, note: str = "") -> None:
        if self._finished or self._last == (done, total, note):
            return  # already at its total, or nothing new
        self._last = (done, total, note)
        self._finished = done >= total
        if self._stream.isatty():
            self._live(done, total, note)
        else:
            self._log(done, total)

    def _live(self, done: int, total: int, note: str) -> None:
        if self._bar is None:
            from rich import progress as rp
            from rich.console import Console

            self._bar = rp.Progress(
                rp.TextColumn("{task.description}"),
                rp.BarColumn(),
                rp.MofNCompleteColumn(),
                rp.TextColumn(self.unit),
                rp.TimeElapsedColumn(),
                rp.TimeRemainingColumn(),
                rp.TextColumn("{task.fields[note]}"),
                console=Console(file=self._stream),
            )
            self._bar.start()
            atexit.register(self.close)
            self._task = self._bar.add_task(self.label, total=total, note="")
        self._bar.update(self._task, completed=done, total=total, note=note)
        if done >= total:
            self.close()

    def _log(self, done: int, total: int) -> None:
        tenth = done // max(1, total // 10)
        if done != total and tenth == self._shown:
            return
        self._shown = tenth
        elapsed = time.monotonic() - self._start
        rest = elapsed / done * (total - done) if 0 < done < total else 0.0
        eta = f", about {_duration(rest)} left" if 0 < done < total else ""
        line = f"{self.label}: {done}/{total} {self.unit}, {_duration(elapsed)}{eta}"
        print(line, file=self._stream, flush=True)

    def close(self) -> None:
        """Stop the live bar (idempotent), leaving its last state on screen."""
        bar, self._bar = self._bar, None
        if bar is not None:
            bar.stop()
