"""Execution invariants: dropout at rate 0, eager/graph/XLA agreement,
determinism and serialization, on every configuration."""

from __future__ import annotations

from hypothesis import given

from cellverify.invariants import check
from cellverify.model import fresh_session
from cellverify.suite import cases_for


@given(cases_for("dropout_zero_is_identity"))
def test_dropout_zero_is_identity(factory, case):
    fresh_session()
    check("dropout_zero_is_identity", factory, case)


@given(cases_for("execution_modes_agree"))
def test_execution_modes_agree(factory, case):
    fresh_session()
    check("execution_modes_agree", factory, case)


@given(cases_for("deterministic"))
def test_deterministic(factory, case):
    fresh_session()
    check("deterministic", factory, case)


@given(cases_for("serialization_roundtrip"))
def test_serialization_roundtrip(factory, case):
    fresh_session()
    check("serialization_roundtrip", factory, case)
