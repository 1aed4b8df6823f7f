"""Gradient invariants: finite everywhere, correct (float64 central differences),
and, on the robust region, alive after training and able to lower the loss."""

from __future__ import annotations

from hypothesis import given

from cellverify.invariants import check
from cellverify.model import fresh_session
from cellverify.suite import cases_for


@given(cases_for("gradients_finite"))
def test_gradients_finite(factory, case):
    fresh_session()
    check("gradients_finite", factory, case)


@given(cases_for("gradient_check"))
def test_gradient_check(factory, case):
    fresh_session()
    check("gradient_check", factory, case)


@given(cases_for("gradients_nonzero"))
def test_gradients_nonzero(factory, case):
    fresh_session()
    check("gradients_nonzero", factory, case)


@given(cases_for("loss_decreases"))
def test_loss_decreases(factory, case):
    fresh_session()
    check("loss_decreases", factory, case)
