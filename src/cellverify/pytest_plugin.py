"""The ``cellverify`` pytest plugin, installed with the package (entry point ``pytest11``).

* Registers the Hypothesis profiles ``dev``, ``ci`` and ``thorough`` and loads
  the default: ``HYPOTHESIS_PROFILE``, else ``ci`` under ``CI``, else ``dev``.
  ``--hypothesis-profile`` still wins.
* Under pytest-xdist with a worker per core or more, gives each worker's
  TensorFlow one thread (``TF_NUM_INTRAOP_THREADS``/``TF_NUM_INTEROP_THREADS``,
  unless set): the workers already fill the cores, and their default thread
  pools would contend for them (docs/design.md, "Executing runs").
* Adds ``--cellverify-cell MODULE:FACTORY`` (ini key ``cellverify_cell``,
  environment variable ``CELLVERIFY_CELL``) and the session fixture
  ``cell_factory``: the named factory, by default the shipped cell.

So a user's repository needs no conftest: subclass
:class:`cellverify.checks.runs.testing.CellInvariants` in a test file and run pytest.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import pytest

__all__ = ["cell_factory", "factory_spec", "xdist_worker_threads"]

_OPTION = "--cellverify-cell"
_INI = "cellverify_cell"
_ENV = "CELLVERIFY_CELL"
#: TensorFlow's thread-pool sizes, read from the environment when it starts.
_THREAD_VARIABLES = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cellverify", "cellverify: invariants of recurrent cells")
    group.addoption(
        _OPTION,
        dest="cellverify_cell",
        default=None,
        metavar="MODULE:FACTORY",
        help=f"cell factory for the cell_factory fixture (also ini {_INI}, env {_ENV}; "
        "default: the shipped cell)",
    )
    parser.addini(_INI, "cell factory MODULE:FACTORY for the cell_factory fixture", default="")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # Before Hypothesis's own plugin, which loads --hypothesis-profile and
    # must find the kit's profiles registered.
    # TensorFlow's C++ log level must be set before it is first imported.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.update(xdist_worker_threads(os.environ, os.cpu_count() or 1))
    from hypothesis import settings

    from cellverify.checks.draws.profiles import default_profile, register_profiles

    register_profiles()
    # Hypothesis's own plugin loads --hypothesis-profile; leave that choice alone.
    if not config.getoption("hypothesis_profile", default=None):
        try:
            settings.load_profile(default_profile())
        except ValueError as exc:  # an unknown HYPOTHESIS_PROFILE
            raise pytest.UsageError(str(exc)) from None


def xdist_worker_threads(environ: Mapping[str, str], cores: int) -> dict[str, str]:
    """The thread-pool variables to set in this process: one thread each when
    it is a pytest-xdist worker and the workers are at least as many as the
    cores; nothing where the user set them, or outside xdist."""
    workers = environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    if not environ.get("PYTEST_XDIST_WORKER") or not workers.isdigit() or int(workers) < cores:
        return {}
    return {name: "1" for name in _THREAD_VARIABLES if name not in environ}


def factory_spec(config: pytest.Config) -> str:
    """The factory named by the option, the ini key or the environment, in that order."""
    from cellverify.model.factory import DEFAULT_FACTORY

    option = config.getoption("cellverify_cell", default=None)
    ini = str(config.getini(_INI) or "")
    return str(option or ini or os.environ.get(_ENV) or DEFAULT_FACTORY)


def pytest_report_header(config: pytest.Config) -> str:
    from cellverify.checks.draws.profiles import current_profile

    return f"cellverify: cell {factory_spec(config)}, Hypothesis profile {current_profile()}"


@pytest.fixture(scope="session")
def cell_factory(pytestconfig: pytest.Config) -> Callable[..., Any]:
    """The cell factory under test (``--cellverify-cell``, default the shipped cell)."""
    from cellverify.errors import BadCellFactory
    from cellverify.model.factory import load_factory

    try:
        return load_factory(factory_spec(pytestconfig))
    except BadCellFactory as exc:
        raise pytest.UsageError(str(exc)) from None
