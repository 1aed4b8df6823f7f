"""An append-only record of a sweep's finished runs, for resuming (no TensorFlow).

The file is JSON lines: a header naming the sweep (grid, base configurations,
cell factory, seeds, shard, fast path), then one line per finished run,
written and flushed to disk as the run arrives.  Re-running the same sweep
with the same file skips what it holds; a file written by another sweep is
refused, never mixed in.  A last line cut short by a crash is dropped, and
that run is simply done again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cellverify.errors import InvalidConfig

__all__ = ["KIND", "Checkpoint", "is_checkpoint", "read_checkpoint"]

#: The header's ``kind``: what distinguishes a checkpoint from a JSON report.
KIND = "cellverify-sweep-checkpoint"


def _describe_difference(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> str:
    keys = [k for k in sorted(set(ours) | set(theirs)) if ours.get(k) != theirs.get(k)]
    return ", ".join(f"{k} (file: {theirs.get(k)!r}, this sweep: {ours.get(k)!r})" for k in keys)


def read_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The header and the complete run lines of a checkpoint file."""
    # A binary file (a plot given by mistake) reads as text that is no header.
    lines = Path(path).read_text(errors="replace").splitlines()
    if not lines:
        raise InvalidConfig("sweep", "checkpoint", "a checkpoint file with a header", str(path))
    try:
        header = json.loads(lines[0])
    except json.JSONDecodeError:
        header = None
    if not isinstance(header, dict) or header.get("kind") != KIND:
        raise InvalidConfig(
            "sweep", "checkpoint", f"a file that starts with a {KIND} header", str(path)
        )
    runs = []
    for line in lines[1:]:
        try:
            runs.append(json.loads(line))
        except json.JSONDecodeError:
            break  # cut short by a crash: that run is done again
    return header, runs


def is_checkpoint(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` starts with a checkpoint header (else: a JSON report)."""
    try:
        with open(path) as f:
            first = f.readline()
        return bool(json.loads(first).get("kind") == KIND)
    except (OSError, ValueError, AttributeError):  # ValueError: not JSON, or not text
        return False


class Checkpoint:
    """The checkpoint of one sweep at ``path``, identified by ``header``."""

    def __init__(self, path: str | os.PathLike[str], header: Mapping[str, Any]) -> None:
        self.path = Path(path)
        self.header = {"kind": KIND, **header}

    def load(self) -> dict[str, dict[str, Any]]:
        """The runs already recorded, by key; creates the file if it is new or
        empty.  Refuses a file written by another sweep."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            with self.path.open("w") as f:
                f.write(json.dumps(self.header) + "\n")  # keys in order: the grid's axes
                f.flush()
                os.fsync(f.fileno())
            return {}
        header, runs = read_checkpoint(self.path)
        if header != json.loads(json.dumps(self.header)):
            raise InvalidConfig(
                "sweep",
                "checkpoint",
                "a checkpoint of this very sweep, or a new path",
                str(self.path),
                message=f"--checkpoint {self.path} was written by another sweep: "
                f"{_describe_difference(json.loads(json.dumps(self.header)), header)}. "
                "Use a new path, or the command that wrote it",
            )
        self._drop_partial_line(len(runs))
        return {run["key"]: run for run in runs}

    def _drop_partial_line(self, complete: int) -> None:
        lines = self.path.read_text().splitlines(keepends=True)
        if len(lines) > complete + 1 or (lines and not lines[-1].endswith("\n")):
            kept = lines[: complete + 1]
            if kept and not kept[-1].endswith("\n"):
                kept[-1] += "\n"
            self.path.write_text("".join(kept))

    def append(self, run: Mapping[str, Any]) -> None:
        """Record one finished run (it must carry its ``key``), on disk at once."""
        with self.path.open("a") as f:
            f.write(json.dumps(run, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
