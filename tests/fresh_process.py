"""Running a snippet the way a user's process would: a new interpreter, the
package installed, nothing imported beforehand."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def run_fresh(code: str, cwd: Path) -> tuple[list[str], str]:
    """Run ``code`` in a new interpreter in ``cwd``, then print whether it
    imported TensorFlow: the words it printed (the last is ``True`` or
    ``False``) and the end of its stderr, for the assertion's message."""
    check = f"{code}\nimport sys\nprint('tensorflow' in sys.modules)"
    run = subprocess.run(
        [sys.executable, "-c", check], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    return run.stdout.split(), run.stderr[-2000:]
