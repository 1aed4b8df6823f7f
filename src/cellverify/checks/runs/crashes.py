"""Where a crash came from: the cell's code, the invariant's, or the kit's.

An exception other than a violation, raised while an invariant checks a
case, is no verdict on the claim (:class:`~cellverify.errors.CheckCrashed`).
What the user needs next is whose code to read, so the report names the
innermost frame that is neither a library's (TensorFlow, Keras, NumPy,
Hypothesis, the standard library) nor a wrapper of the kit's, and says whose
it is.  Plain Python, no TensorFlow.
"""

from __future__ import annotations

import sys
from types import TracebackType

from cellverify.errors import CheckCrashed, describe_exception

__all__ = [
    "CELL_MODULES",
    "CELL_PACKAGES",
    "KIT_MUTANT_MODULES",
    "LIBRARIES",
    "crash_of",
    "crash_site",
]

#: Top-level packages whose frames are never the answer: the crash passed
#: through them on its way from the code that caused it.
LIBRARIES = frozenset(
    {
        "tensorflow",
        "keras",
        "tf_keras",
        "numpy",
        "hypothesis",
        "absl",
        "optree",
        "h5py",
        "ml_dtypes",
        "_pytest",
        "pytest",
        "pluggy",
    }
)
#: The kit's modules (and packages) that implement cells: the shipped cell,
#: its fast sequence layer, the mutants.  A crash there is the cell's.
CELL_MODULES = frozenset({"cellverify.model.cell", "cellverify.model.fast"})
CELL_PACKAGES = ("cellverify.checks.mutants.",)
#: The mutants' room also holds the kit's code that registers and runs them.
KIT_MUTANT_MODULES = frozenset(
    {"cellverify.checks.mutants.mutation", "cellverify.checks.mutants.kill_matrix"}
)


def _module_of(tb: TracebackType) -> str:
    return str(tb.tb_frame.f_globals.get("__name__", ""))


def _is_library(module: str) -> bool:
    top = module.split(".")[0]
    return top in LIBRARIES or top in sys.stdlib_module_names


def _owner(module: str, invariant_module: str) -> str:
    if module == invariant_module:
        return "the invariant's code"
    is_cell = module in CELL_MODULES or (
        module.startswith(CELL_PACKAGES) and module not in KIT_MUTANT_MODULES
    )
    if module.split(".")[0] == "cellverify" and not is_cell:
        return "the kit's code"
    return "the cell's code"


def crash_site(exc: BaseException, invariant_module: str) -> str:
    """``"the cell's code at cells.py:12 (call)"``: whose code raised ``exc``,
    and where, judged from its innermost frame outside the libraries; where
    the exception itself came from a library (a Keras cell's own code, a
    TensorFlow op), that frame is named too."""
    frames: list[TracebackType] = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(tb)
        tb = tb.tb_next
    inside = ""
    if frames and _is_library(_module_of(frames[-1])):
        top = _module_of(frames[-1]).split(".")[0]
        inside = f", inside {top} at {_place(frames[-1])}"
    for frame in reversed(frames):
        module = _module_of(frame)
        if _is_library(module):
            continue
        return f"{_owner(module, invariant_module)} at {_place(frame)}{inside}"
    return "a library, called from no code of the cell's, the invariant's or the kit's"


def _place(frame: TracebackType) -> str:
    code = frame.tb_frame.f_code
    return f"{code.co_filename.rsplit('/', 1)[-1]}:{frame.tb_lineno} ({code.co_name})"


def crash_of(invariant: str, invariant_module: str, exc: BaseException) -> CheckCrashed:
    """The :class:`CheckCrashed` that reports ``exc``, raised while checking ``invariant``."""
    return CheckCrashed(invariant, describe_exception(exc), crash_site(exc, invariant_module))
