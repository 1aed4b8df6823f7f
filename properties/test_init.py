"""Initialisation: near uniform but not exactly (exactly uniform rows are dead)."""

from __future__ import annotations

from hypothesis import given

from cellverify.invariants import check
from cellverify.model import fresh_session
from cellverify.suite import cases_for


@given(cases_for("init_near_uniform"))
def test_init_near_uniform(factory, case):
    fresh_session()
    check("init_near_uniform", factory, case)
