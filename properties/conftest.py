"""The property suite runs against ``CELLVERIFY_CELL`` (MODULE:FACTORY), by
default the shipped cell: a team can point this suite at its own cell."""

from __future__ import annotations

import os

import pytest

from cellverify.factory import DEFAULT_FACTORY, load_factory


@pytest.fixture(scope="session")
def factory():
    return load_factory(os.environ.get("CELLVERIFY_CELL", DEFAULT_FACTORY))
