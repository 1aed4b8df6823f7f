"""Files the commands write: checked before any work, written whole.

A run that trains for minutes must not die at the end because ``--json``
names a directory that does not exist, so every output path is checked when
the command starts, and a report is written to a temporary file beside its
target and renamed into place, so a reader never sees half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from cellverify.errors import InvalidConfig

__all__ = ["check_writable", "require_matplotlib", "write_json"]


def check_writable(path: str | os.PathLike[str], option: str) -> Path:
    """``path`` as a Path, if a file can be written there; else InvalidConfig
    naming ``option`` (``--json``), what is wrong and the path received."""
    target = Path(path)
    parent = target.parent
    if target.is_dir():
        raise InvalidConfig("option", option, "a file path, not a directory", str(path))
    if not parent.is_dir():
        raise InvalidConfig(
            "option",
            option,
            "a path in an existing directory",
            str(path),
            message=f"{option}: the directory {str(parent)!r} does not exist. Received: "
            f"{option}={str(path)!r}",
        )
    if not os.access(parent, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise InvalidConfig("option", option, "a path this user may write", str(path))
    return target


def require_matplotlib(option: str) -> None:
    """Fail before any work when a picture is asked for and matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise InvalidConfig(
            "option",
            option,
            "used with matplotlib installed (pip install 'cellverify[plot]')",
            "no matplotlib",
        ) from None


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    """Write ``data`` as JSON, atomically (a temporary file renamed over ``path``)."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
