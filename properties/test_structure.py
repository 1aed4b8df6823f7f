"""Structural invariants: shapes, the simplex, the state feedback, equivariance.

Claimed on every configuration (except state_matters, which a dead ReLU
before the softmax breaks by design); inputs include adversarial windows.
"""

from __future__ import annotations

from hypothesis import given

from cellverify.invariants import check
from cellverify.model import fresh_session
from cellverify.suite import cases_for


@given(cases_for("output_shape"))
def test_output_shape(factory, case):
    fresh_session()
    check("output_shape", factory, case)


@given(cases_for("simplex_output"))
def test_simplex_output(factory, case):
    fresh_session()
    check("simplex_output", factory, case)


@given(cases_for("state_is_output"))
def test_state_is_output(factory, case):
    fresh_session()
    check("state_is_output", factory, case)


@given(cases_for("state_matters"))
def test_state_matters(factory, case):
    fresh_session()
    check("state_matters", factory, case)


@given(cases_for("asset_permutation_equivariance"))
def test_asset_permutation_equivariance(factory, case):
    fresh_session()
    check("asset_permutation_equivariance", factory, case)
