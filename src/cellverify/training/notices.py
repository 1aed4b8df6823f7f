"""TensorFlow's once-per-process notices that read as errors, spent quietly.

On a CPU whose oneDNN has no float16 kernels (no AVX512-FP16, AMX-FP16 or
AVX-NE-CONVERT: every AVX2-only machine, and AVX-512 ones before Sapphire
Rapids), the first float16 op of a process logs ``E ... util.cc] oneDNN
supports DT_HALF only on platforms with AVX-512. Falling back to the default
Eigen-based implementation if present.`` It is informational: the op runs,
through Eigen, and every later float16 op stays silent (an ``absl::call_once``
in ``DataTypeUnsupportedWarning``). The mixed-precision invariant runs
float16 on purpose, so a user who runs ``cellverify check`` would read an
error line on every run.

:func:`spend_float16_notice` runs one float16 op with the process's stderr
(file descriptor 2, where TensorFlow's C++ writes) sent to a temporary file,
and writes back everything it caught except that one notice. The notice is
then spent, as TensorFlow would have spent it at the invariant's first op;
any other line, from TensorFlow or another thread, still reaches stderr
(docs/design.md, "TensorFlow's error lines").
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sys
import tempfile
from collections.abc import Iterator

__all__ = ["FLOAT16_NOTICE", "spend_float16_notice", "stderr_caught", "without_float16_notice"]

#: TensorFlow's notice at the first float16 op on a CPU without oneDNN float16.
FLOAT16_NOTICE = re.compile(r"^E\d{4} .*oneDNN supports DT_HALF only on platforms with AVX-512")


@contextlib.contextmanager
def stderr_caught() -> Iterator[list[str]]:
    """Inside the block, file descriptor 2 goes to a temporary file; after
    it, the list holds the lines written there."""
    lines: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield lines
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            lines.extend(caught.read().decode(errors="replace").splitlines(keepends=True))


def without_float16_notice(lines: list[str]) -> list[str]:
    """``lines`` but TensorFlow's float16 notice; every other line, error or not."""
    return [line for line in lines if not FLOAT16_NOTICE.match(line)]


@functools.cache
def spend_float16_notice() -> bool:
    """Run one float16 op with stderr caught, and pass on every line but the
    float16 notice; whether the notice was there (once per process)."""
    import tensorflow as tf

    with stderr_caught() as lines:
        tf.add(tf.ones((1,), tf.float16), tf.ones((1,), tf.float16)).numpy()
    kept = without_float16_notice(lines)
    if kept:
        os.write(2, "".join(kept).encode())
    return len(kept) < len(lines)
