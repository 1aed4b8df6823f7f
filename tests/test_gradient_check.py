"""The gradient check at smooth points, near kinks and exactly at kinks.

Plain-NumPy functions pin the rule down exactly; the cells reproduce the two
false alarms the old rule raised, and the mutant a wrong gradient at a kink.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from cellverify.cell import conv_rnn_cell
from cellverify.checks.cases.case import Case
from cellverify.checks.judges.catalog import check
from cellverify.checks.judges.numerics.gradcheck import (
    GRADIENT_CHECK_STEPS,
    NoisyLoss,
    check_variable,
    loss_noise,
)
from cellverify.config import CellConfig, TrainConfig
from cellverify.data import InputSpec
from cellverify.errors import InvariantViolation
from cellverify.mutation import MUTANTS


class Variable:
    """The two methods of a Keras variable the check uses."""

    def __init__(self, value):
        self.value = np.asarray(value, np.float64)
        self.shape = self.value.shape

    def numpy(self):
        return self.value.copy()

    def assign(self, value):
        self.value = np.asarray(value, np.float64)


def relu_sum(variable, weights):
    """sum_i w_i relu(v_i): every unit at v_i = 0 is exactly at its kink."""
    return lambda: float(np.sum(weights * np.maximum(variable.value, 0.0)))


def test_a_correct_gradient_passes_at_a_smooth_point():
    v = Variable([0.3, -1.2, 2.0])
    assert check_variable(lambda: float(np.sum(v.value**2)), v, 2 * v.numpy(), RNG()) is None


def test_a_wrong_gradient_fails_at_a_smooth_point():
    v = Variable([0.3, -1.2, 2.0])
    mismatch = check_variable(lambda: float(np.sum(v.value**2)), v, -2 * v.numpy(), RNG())
    assert mismatch is not None and not mismatch.at_kink  # fails on its coordinates too


def test_many_units_exactly_at_a_kink_pass_with_autodiffs_zero_subgradient():
    """A random direction moves the units to both sides: the one-sided
    differences sum over different units and 0 need not lie between them.
    Coordinate by coordinate it does."""
    weights = np.array([1.0, -2.0, 0.5, 3.0, -1.0])
    v = Variable(np.zeros(5))
    assert check_variable(relu_sum(v, weights), v, np.zeros(5), RNG()) is None


def test_a_coordinate_mismatch_is_a_plain_value_that_compares_and_hashes():
    weights = np.array([1.0, -2.0, 0.5, 3.0, -1.0])
    v = Variable(np.zeros(5))
    mismatch = check_variable(relu_sum(v, weights), v, 3.0 * weights, RNG())
    assert mismatch is not None and mismatch.unit is not None
    assert mismatch == mismatch and hash(mismatch) == hash(mismatch)


def test_a_wrong_gradient_exactly_at_a_kink_is_caught():
    weights = np.array([1.0, -2.0, 0.5, 3.0, -1.0])
    v = Variable(np.zeros(5))
    mismatch = check_variable(relu_sum(v, weights), v, 3.0 * weights, RNG())
    assert mismatch is not None
    assert mismatch.direction.startswith("coordinate")
    assert mismatch.backward == 0.0 or mismatch.forward == 0.0  # the unit's inactive side


def test_units_within_one_step_of_a_kink_are_resolved_by_a_smaller_step():
    """Units 3e-6 from their kink: the first step crosses them and the
    differences disagree; a tenfold smaller one does not, and matches autodiff."""
    weights = np.array([1.0, -2.0, 0.5, 3.0])
    v = Variable(np.array([3e-6, -3e-6, 3e-6, -3e-6]))
    gradient = weights * (v.numpy() > 0)
    assert GRADIENT_CHECK_STEPS[0] > 3e-6 > GRADIENT_CHECK_STEPS[-1]
    assert check_variable(relu_sum(v, weights), v, gradient, RNG()) is None
    assert check_variable(relu_sum(v, weights), v, weights, RNG()) is not None


def RNG():  # noqa: N802 - reads as the generator it returns
    return np.random.default_rng(0)


@pytest.mark.usefixtures("fresh_keras")
def test_gradient_check_passes_the_selu_cell_whose_units_sit_within_a_step_of_the_kink():
    """The issue's case: SELU's slope jumps at 0 and small-normal weights put
    conv2's units within 1e-5 of it, both ways; the old rule failed it."""
    case = Case(
        CellConfig(
            assets=4, window=7, features=1, kernels=(2, 4, 1), activation="selu",
            output_activation="linear", initializer="small_normal", seed=64100,
        ),
        TrainConfig(optimizer="adagrad", batch_size=1, steps=1, train_steps=0, task="supervised"),
        InputSpec(kind="market", seed=17488),
    )  # fmt: skip
    check("gradient_check", conv_rnn_cell, case)


@pytest.mark.usefixtures("fresh_keras")
def test_gradient_check_catches_a_relu_whose_gradient_is_wrong_only_at_its_kink():
    mutant = MUTANTS["WrongGradientAtKink"]
    with pytest.raises(InvariantViolation, match=r"conv2/bias \[4\] along coordinate"):
        check("gradient_check", mutant.factory, mutant.case)


def noisy(function, variable, sigma):
    """``function`` plus rounding-like noise of deviation ``sigma``: a fixed
    pseudo-random value for each bit pattern of the variable (as rounding is)."""

    def loss():
        digest = hashlib.blake2b(variable.value.tobytes(), digest_size=8).digest()
        seed = int.from_bytes(digest, "little")
        return function() + sigma * np.random.default_rng(seed).standard_normal()

    return loss


def test_loss_noise_measures_the_noise_it_is_given_and_none_on_a_smooth_loss():
    v = Variable([0.3, -1.2, 2.0])
    direction = np.ones(3) / np.sqrt(3)
    smooth = lambda: float(np.sum(v.value**3))  # noqa: E731
    assert loss_noise(smooth, v, direction) < 1e-14
    estimate = loss_noise(noisy(smooth, v, 1e-11), v, direction)
    assert 0.3e-11 < estimate < 3e-11  # eight samples: within a factor of ~3


#: A point where the loss's size alone (64 ulps of 1) allowed too little for
#: the noise below and failed a correct gradient on a coordinate.
NOISY_POINT = np.array([0.3, -1.2, 2.0])


def test_a_correct_gradient_passes_when_the_loss_is_noisier_than_its_size_suggests():
    """A loss of ~1 computed from logits of ~1e4 carries noise of ~1e-11, far
    above 64 ulps of 1; with derivatives of ~1e-6 that noise, divided by the
    step, is as large as they are.  The measured noise, not the loss's size,
    bounds it."""
    v = Variable(NOISY_POINT)
    loss = noisy(lambda: 1.0 + 1e-6 * float(np.sum(v.value**2)), v, 1e-11)
    assert check_variable(loss, v, 2e-6 * v.numpy(), RNG()) is None


def test_a_wrong_gradient_at_a_noisy_point_is_still_caught():
    """The noise allows ~4e-5 at the largest step; an error of 1e-3 is caught."""
    v = Variable(NOISY_POINT)
    loss = noisy(lambda: 1.0 + 1e-6 * float(np.sum(v.value**2)), v, 1e-11)
    assert check_variable(loss, v, 2e-6 * v.numpy() + 1e-3, RNG()) is not None


def test_gradient_check_passes_a_leaky_relu_cell_at_prices_x1e4():
    """Found by the scaled-input run at 200 examples: logits ~1e4 leave the
    float64 loss with noise of ~280 ulps of its size, which divided by the
    smallest step looked like a wrong derivative of conv1's bias."""
    case = Case(
        CellConfig(
            assets=2, window=6, features=1, kernels=(1, 5, 1), activation="leaky_relu",
            output_activation="linear", initializer="orthogonal", seed=1,
        ),
        TrainConfig(optimizer="adagrad", batch_size=1, steps=2, train_steps=0, task="supervised"),
        InputSpec(kind="scaled", scale=1e4, seed=33560),
    )  # fmt: skip
    check("gradient_check", conv_rnn_cell, case)


def test_a_loss_noisier_than_rounding_can_be_is_reported_not_excused():
    """Noise of 1e-3 on a loss of 1 is no rounding: a forward pass that is
    random at inference.  The check says so instead of widening its bound."""
    v = Variable(NOISY_POINT)
    loss = noisy(lambda: 1.0 + float(np.sum(v.value**2)), v, 1e-3)
    result = check_variable(loss, v, 2 * v.numpy(), RNG())
    assert isinstance(result, NoisyLoss)
    assert "more than rounding can" in result.describe()


@pytest.mark.usefixtures("fresh_keras")
def test_gradient_check_reports_dropout_left_on_at_inference_as_a_random_loss():
    mutant = MUTANTS["DropoutOnAtInference"]
    with pytest.raises(InvariantViolation, match="is the forward pass random in inference mode"):
        check("gradient_check", mutant.factory, mutant.case)
