from __future__ import annotations

import importlib
from pathlib import Path

import pytest

import cellverify


def test_every_name_in_all_resolves():
    for name in cellverify.__all__:
        assert getattr(cellverify, name) is not None, name


def test_all_has_no_duplicates():
    assert len(set(cellverify.__all__)) == len(cellverify.__all__)


def test_lazy_names_come_from_the_module_that_defines_them():
    for name, module in cellverify._LAZY.items():
        assert name in cellverify.__all__
        assert getattr(cellverify, name) is getattr(importlib.import_module(module), name)


def test_package_is_typed():
    assert (Path(cellverify.__file__).parent / "py.typed").exists()


def test_unknown_attribute_raises_attribute_error():
    with pytest.raises(AttributeError, match="does_not_exist"):
        cellverify.does_not_exist  # noqa: B018
