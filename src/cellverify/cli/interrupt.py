"""Ctrl-C and SIGTERM stop everything a command started.

SIGTERM is turned into the KeyboardInterrupt that Ctrl-C raises, so that one
path handles both: the executors' ``close`` terminates worker processes and
cancels Dask tasks on the way out, a checkpoint already holds every finished
run (each is flushed as it arrives), and the command exits with 130.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import NoReturn

__all__ = ["EXIT_INTERRUPTED", "exit_with", "terminate_as_interrupt"]

#: The shell's code for a process ended by SIGINT (128 + 2).
EXIT_INTERRUPTED = 130


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises KeyboardInterrupt (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def exit_with(code: int) -> NoReturn:
    """End the process with ``code``; after an interruption at once, its
    output flushed.  The command has stopped its workers itself by then, and
    every run it finished is on disk; the interpreter's own shutdown after a
    signal (joining a terminated pool's threads, tearing down a module whose
    import the signal cut short) once ended such a run killed by SIGINT, not
    with its 130 (a loaded CI machine, ``check`` stopped while starting)."""
    if code == EXIT_INTERRUPTED:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
