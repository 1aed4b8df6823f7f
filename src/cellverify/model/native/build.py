"""Compile the native conv1 kernels once per machine, and load them.

The sources ship with the package (``conv_rows.cc`` for windows,
``conv_spans.cc`` for a sequence's raw prices, ``channel_counts.cc`` for
the activation probe's counts of conv1, ``conv1_common.h``); ``kernels.cc``
includes them all, and is compiled as one unit into one library against the
installed TensorFlow's headers on first use and cached, keyed by the sources,
TensorFlow's version and flags, and the compiler's flags, so a new TensorFlow
or a changed kernel compiles again.  Nothing is fetched.  Where it cannot be
built - no C++ compiler, no AVX2 and FMA, a source missing, a compiler error -
the fast path runs TensorFlow's own kernels and :func:`native_library` says
why (docs/design.md, "Native conv1").
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["CACHE_ENV", "NativeLibrary", "cache_dir", "compile_command", "native_library"]

HERE = Path(__file__).parent
#: The one file compiled: it includes every source (its comment says why).
UNIT = HERE / "kernels.cc"
#: The kernels' sources, which ``UNIT`` includes.
SOURCES = (HERE / "conv_rows.cc", HERE / "conv_spans.cc", HERE / "channel_counts.cc")
#: What the cache key reads besides the unit and the sources.
HEADERS = (HERE / "conv1_common.h",)
#: Where the compiled kernel is kept (default ``$XDG_CACHE_HOME/cellverify``
#: or ``~/.cache/cellverify``).
CACHE_ENV = "CELLVERIFY_CACHE_DIR"
#: AVX2 and FMA, not ``-march=native``: a cache on a shared home directory
#: serves every x86-64 machine of a cluster, and every machine computes the
#: same sums with the same instructions.
ISA_FLAGS = ("-mavx2", "-mfma")
#: A first compile took 13.7-15.3 s of the compiler's CPU here (docs/design.md);
#: a loaded machine can take several times that.
COMPILE_TIMEOUT_SECONDS = 600


@dataclass(frozen=True)
class NativeLibrary:
    """The loaded op library (``module``), or None and the reason (``why``)."""

    module: Any
    why: str
    path: Path | None = None

    @property
    def available(self) -> bool:
        return self.module is not None


def cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cellverify"


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def _compiler() -> str | None:
    return os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")


def compile_command(compiler: str, output: Path) -> list[str]:
    import tensorflow as tf

    return [
        compiler, "-O3", *ISA_FLAGS, "-shared", "-fPIC", "-w", str(UNIT),
        "-o", str(output),
        *tf.sysconfig.get_compile_flags(), *tf.sysconfig.get_link_flags(),
    ]  # fmt: skip


def _library_path() -> Path:
    import tensorflow as tf

    key = hashlib.sha256()
    for source in (UNIT, *SOURCES, *HEADERS):
        key.update(source.read_bytes())
    # Not the compiler: any that builds it with TensorFlow's flags will do.
    for part in (tf.__version__, *compile_command("", Path("-"))):
        key.update(part.encode())
    return cache_dir() / f"conv_rows-{key.hexdigest()[:16]}.so"


def _build(compiler: str, path: Path) -> str | None:
    """Compile to ``path``; the compiler's complaint, or None."""
    # Into a private file, then renamed: a process that loads the library
    # never sees half of it.
    with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
        partial = Path(scratch) / path.name
        try:
            done = subprocess.run(
                compile_command(compiler, partial),
                capture_output=True,
                text=True,
                timeout=COMPILE_TIMEOUT_SECONDS,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"{compiler} did not run: {error}"
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()
            return f"{compiler} failed: {lines[-1] if lines else f'exit {done.returncode}'}"
        os.replace(partial, path)
    return None


def _build_once(compiler: str, path: Path) -> str | None:
    """Build ``path`` unless it exists; a pool's workers starting together on
    a new machine wait for the first one's build instead of each compiling."""
    import fcntl  # POSIX only, and only reached on Linux (unavailable_because)

    if path.exists():
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return None if path.exists() else _build(compiler, path)


def unavailable_because() -> str | None:
    system, machine = platform.system(), platform.machine()
    if system != "Linux" or machine not in ("x86_64", "AMD64"):
        return f"the native kernel is built for x86-64 Linux; this is {system} {machine}"
    missing = {"avx2", "fma"} - _cpu_flags()
    if missing:
        return f"the CPU lacks {', '.join(sorted(missing))}"
    return None


def _missing_sources() -> str | None:
    missing = [p.name for p in (UNIT, *SOURCES, *HEADERS) if not p.is_file()]
    if missing:
        return f"the installed package lacks the kernel's sources {', '.join(missing)} in {HERE}"
    return None


@functools.cache
def native_library() -> NativeLibrary:
    """The native conv1 ops, compiled if need be (once per process)."""
    why = unavailable_because() or _missing_sources()
    if why:
        return NativeLibrary(None, why)
    path = _library_path()
    if not path.exists():  # a cached library needs no compiler
        compiler = _compiler()
        if compiler is None:
            return NativeLibrary(None, "no C++ compiler (g++ or c++ on PATH, or CXX)")
        why = _build_once(compiler, path)
        if why:
            return NativeLibrary(None, why)
    import tensorflow as tf

    try:
        module = tf.load_op_library(str(path))
    except (tf.errors.NotFoundError, OSError) as error:
        return NativeLibrary(None, f"loading {path} failed: {error}")
    return NativeLibrary(module, "compiled", path)
