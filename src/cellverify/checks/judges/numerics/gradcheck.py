"""Check autodiff gradients against finite differences, kinks included (NumPy only).

The check runs in float64, first along one random unit direction per variable.
At a smooth point the central difference must match autodiff.  Two kinds of
point need more care (docs/design.md, "Gradient check at kinks"):

* **Near a kink** - a unit whose pre-activation lies within one step of a
  ReLU/ELU/SELU kink is crossed by the finite difference, which then measures
  a mixture of two slopes; autodiff, which sees only the side the unit is on,
  is right.  While the one-sided differences disagree (a kink inside the
  step), the step is shrunk tenfold (:data:`GRADIENT_CHECK_STEPS`), and the
  check is made at the first step where they agree.
* **Exactly at a kink** - units whose pre-activation is exactly 0 (a zero
  bias behind a dead layer, or behind flat prices) stay at the kink however
  small the step.  Along a random direction they move to both sides at once;
  the forward and backward differences then sum over different units, may
  even agree by chance, and no rule relates them to autodiff's ``relu'(0) =
  0``.  So when the random direction does not match, the check falls back to
  coordinate directions.  A unit sits exactly at 0 only when everything it
  reads is exactly 0 and its bias is exactly 0: along a kernel coordinate it
  does not move, and along a bias coordinate every unit of that filter moves
  the same way.  Along a coordinate the one-sided differences therefore
  bracket every subgradient, and autodiff must lie between them (at a smooth
  point they coincide, and the rule is the match again).  A wrong gradient
  fails on the coordinates too; a right one at a kink passes.

Tolerances: ``rtol`` and ``atol`` for the comparison, plus the rounding of the
float64 loss, which a difference quotient divides by the step.  That rounding
is first taken as :data:`LOSS_ROUNDING_ULPS` ulps of ``max(1, |loss|)``.  But a
loss is rounded at the magnitude of what it is computed from, not its own: at
prices x1e4 the logits are ~1e4 and a loss of 1 carries noise of ~1e-12.  So
before a mismatch is reported, the loss's noise at the point is measured
(:func:`loss_noise`, the ECnoise estimate of Moré and Wild) and the check is
made again with that noise as the rounding.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cellverify.checks.judges.numerics.tolerances import FLOAT64_EPS

__all__ = [
    "GRADIENT_CHECK_ATOL",
    "GRADIENT_CHECK_KINK",
    "GRADIENT_CHECK_RTOL",
    "GRADIENT_CHECK_STEPS",
    "LOSS_ROUNDING_ULPS",
    "MAX_KINK_COORDINATES",
    "MAX_NOISE",
    "NOISE_POINTS",
    "NOISE_SIGMAS",
    "NOISE_SPACING",
    "Mismatch",
    "NoisyLoss",
    "check_variable",
    "loss_noise",
]

#: Steps tried in turn while the one-sided differences disagree (a kink within
#: the step).  1e-5: truncation error ~ step**2 = 1e-10 relative.  Each tenfold
#: shrink crosses ten times fewer units; below 1e-7 the loss's rounding,
#: divided by the step, would swamp derivatives of 1e-6.
GRADIENT_CHECK_STEPS = (1e-5, 1e-6, 1e-7)
#: Relative and absolute tolerance of the comparison with autodiff.
GRADIENT_CHECK_RTOL = 1e-4
GRADIENT_CHECK_ATOL = 1e-8
#: One-sided differences further apart than this share of the larger (beyond
#: rounding) mark a kink within the step; at a smooth point they differ by
#: ~step * curvature, far less.
GRADIENT_CHECK_KINK = 0.1
#: Rounding of a float64 loss, in ulps of max(1, |loss|).  Measured: the
#: jitter of the loss around a straight line over steps of 1e-10 was at most
#: 3.6 ulps (60 generated cases, adversarial inputs included, every variable);
#: 64 leaves a margin of 16.
LOSS_ROUNDING_ULPS = 64.0
#: ECnoise (Moré and Wild, "Estimating computational noise", SIAM J. Sci.
#: Comput. 33, 2011): the loss at NOISE_POINTS points NOISE_SPACING apart along
#: a unit direction.  At that spacing the k-th differences of the smooth loss
#: (about spacing**k times its k-th derivative) vanish for k >= 3 even for
#: derivatives of 1e12, while rounding, which changes with every perturbed
#: bit, stays; so they estimate the noise's standard deviation.
NOISE_POINTS = 8
NOISE_SPACING = 1e-9
#: A loss evaluation's rounding is taken as at most this many standard
#: deviations of the measured noise (rounding errors are bounded, and their
#: largest over a handful of evaluations is a few deviations at most).
NOISE_SIGMAS = 8.0
#: Measured noise above this share of max(1, |loss|) is not rounding: a float64
#: loss that noisy has lost half its digits, past what any conditioning seen
#: here comes near (at most 284 ulps, 6e-14, at prices x1e4), and no step
#: resolves its derivative.  sqrt(eps64) = 1.5e-8.
MAX_NOISE = math.sqrt(FLOAT64_EPS)
#: Coordinates checked when a variable sits exactly at a kink (all of them if
#: it has fewer; a seeded sample otherwise).
MAX_KINK_COORDINATES = 32


@dataclass(frozen=True)
class Mismatch:
    """Autodiff disagrees with the finite differences along a random direction
    and then along ``direction``, a coordinate."""

    direction: str
    autodiff: float
    forward: float
    backward: float
    step: float
    at_kink: bool
    along_random: tuple[float, float, float]
    #: The coordinate as a unit array, for re-measuring along it: not part of
    #: the value (an array field would make the mismatch unhashable and its
    #: == ambiguous), nor of the description.
    unit: np.ndarray | None = field(default=None, compare=False, repr=False)

    def describe(self) -> str:
        where = "a kink within the smallest step" if self.at_kink else "no kink within the step"
        auto, forward, backward = self.along_random
        return (
            f"along {self.direction}: autodiff {self.autodiff:.6g}, one-sided differences "
            f"{self.forward:.6g} (forward) and {self.backward:.6g} (backward) at step "
            f"{self.step:g} ({where}); autodiff must lie between them.  Along a random "
            f"direction first: autodiff {auto:.6g}, differences {forward:.6g} and {backward:.6g}"
        )


@dataclass(frozen=True)
class NoisyLoss:
    """The loss moved between evaluations a hair apart by more than rounding
    can: it is not a function of the weights alone (something random runs in
    inference mode), and no finite difference can check its gradient."""

    noise: float
    loss: float

    def describe(self) -> str:
        allowed = MAX_NOISE * max(1.0, abs(self.loss))
        return (
            f"cannot be checked: the loss ({self.loss:.6g}) moves with a standard deviation of "
            f"{self.noise:.3g} between evaluations {NOISE_SPACING:g} apart, more than rounding "
            f"can ({allowed:.3g}, sqrt(eps) of max(1, |loss|)); is the forward pass random in "
            f"inference mode?"
        )


@dataclass(frozen=True)
class _Probe:
    forward: float
    backward: float
    step: float
    kink: bool
    slack: float


def _ulps_rounding(loss: float) -> float:
    """A loss evaluation's rounding, taken from its own magnitude."""
    return LOSS_ROUNDING_ULPS * FLOAT64_EPS * max(1.0, abs(loss))


def loss_noise(loss_of: Callable[[], float], variable: Any, direction: np.ndarray) -> float:
    """The standard deviation of the rounding noise of ``loss_of`` at the
    variable's current value, measured along the unit ``direction`` (ECnoise:
    the root mean square of k-th differences, scaled by ``(k!)^2/(2k)!``, the
    largest over k = 3 .. NOISE_POINTS - 1)."""
    original = variable.numpy()
    try:
        values = []
        for i in range(NOISE_POINTS):
            variable.assign(original + (i - NOISE_POINTS // 2) * NOISE_SPACING * direction)
            values.append(loss_of())
    finally:
        variable.assign(original)
    table = np.asarray(values, np.float64)
    estimates = []
    for k in range(1, NOISE_POINTS):
        table = np.diff(table)
        if k >= 3:  # lower differences still carry the slope and curvature
            gamma = math.factorial(k) ** 2 / math.factorial(2 * k)
            estimates.append(math.sqrt(gamma * float(np.mean(table**2))))
    return max(estimates)


def _differences(
    loss_of: Callable[[], float],
    variable: Any,
    direction: np.ndarray,
    centre: float,
    noise: float,
) -> Iterator[_Probe]:
    """One-sided differences along ``direction`` at each step of the ladder."""
    original = variable.numpy()
    try:
        for step in GRADIENT_CHECK_STEPS:
            variable.assign(original + step * direction)
            up = loss_of()
            variable.assign(original - step * direction)
            down = loss_of()
            forward, backward = (up - centre) / step, (centre - down) / step
            rounding = 2.0 * noise / step  # two rounded evaluations per quotient
            gap = abs(forward - backward)
            kink = gap > GRADIENT_CHECK_KINK * max(abs(forward), abs(backward)) + 2 * rounding
            yield _Probe(forward, backward, step, kink, rounding)
    finally:
        variable.assign(original)


def _slack(autodiff: float, probe: _Probe) -> float:
    f, b = probe.forward, probe.backward
    return (
        GRADIENT_CHECK_RTOL * max(abs(autodiff), abs(f), abs(b)) + GRADIENT_CHECK_ATOL + probe.slack
    )


def _matches(autodiff: float, probe: _Probe) -> bool:
    return abs(autodiff - (probe.forward + probe.backward) / 2) <= _slack(autodiff, probe)


def _between(autodiff: float, probe: _Probe) -> bool:
    low, high = sorted((probe.forward, probe.backward))
    slack = _slack(autodiff, probe)
    return low - slack <= autodiff <= high + slack


def _along_random_direction(
    loss_of: Callable[[], float],
    variable: Any,
    autodiff: float,
    direction: np.ndarray,
    centre: float,
    noise: float,
) -> tuple[bool, _Probe]:
    """Whether autodiff matches at the first step with no kink inside it."""
    probe = None
    for probe in _differences(loss_of, variable, direction, centre, noise):
        if not probe.kink:
            return _matches(autodiff, probe), probe
    assert probe is not None
    return False, probe


def _along_coordinate(
    loss_of: Callable[[], float],
    variable: Any,
    autodiff: float,
    unit: np.ndarray,
    centre: float,
    noise: float,
) -> tuple[bool, _Probe]:
    """Whether autodiff lies between the one-sided differences, at the first
    step with no kink inside it, else at the smallest."""
    probe = None
    for probe in _differences(loss_of, variable, unit, centre, noise):
        if not probe.kink:
            break
    assert probe is not None
    return _between(autodiff, probe), probe


def check_variable(
    loss_of: Callable[[], float],
    variable: Any,
    gradient: np.ndarray,
    rng: np.random.Generator,
) -> Mismatch | NoisyLoss | None:
    """Check ``gradient`` (autodiff's, float64) of ``loss_of`` with respect to ``variable``.

    ``variable`` has ``numpy()`` and ``assign()``; ``loss_of()`` evaluates the
    loss at its current value.  Returns the first disagreement, or None.  A
    disagreement is checked again with the loss's measured noise as its
    rounding before it is returned (module doc).
    """
    centre = loss_of()
    direction = rng.standard_normal(variable.shape)
    direction /= max(float(np.linalg.norm(direction)), 1e-300)
    picks = _kink_coordinates(variable, rng)
    rounding = _ulps_rounding(centre)
    mismatch = _check(loss_of, variable, gradient, direction, picks, centre, rounding)
    if mismatch is None:
        return None
    noise = loss_noise(loss_of, variable, direction)
    if mismatch.unit is not None:
        noise = max(noise, loss_noise(loss_of, variable, mismatch.unit))
    if noise > MAX_NOISE * max(1.0, abs(centre)):
        return NoisyLoss(noise, centre)
    if NOISE_SIGMAS * noise <= rounding:
        return mismatch
    return _check(loss_of, variable, gradient, direction, picks, centre, NOISE_SIGMAS * noise)


def _kink_coordinates(variable: Any, rng: np.random.Generator) -> np.ndarray:
    size = int(np.prod(variable.shape))
    if size > MAX_KINK_COORDINATES:
        return np.sort(rng.choice(size, MAX_KINK_COORDINATES, replace=False))
    return np.arange(size)


def _check(
    loss_of: Callable[[], float],
    variable: Any,
    gradient: np.ndarray,
    direction: np.ndarray,
    picks: np.ndarray,
    centre: float,
    noise: float,
) -> Mismatch | None:
    """Along ``direction``, then (if it does not match) along each picked
    coordinate, with ``noise`` as a loss evaluation's rounding."""
    auto = float(np.sum(gradient * direction))
    matched, first = _along_random_direction(loss_of, variable, auto, direction, centre, noise)
    if matched:
        return None
    # No match: a wrong gradient, or a point exactly at a kink.  Coordinates tell.
    size = int(np.prod(variable.shape))
    flat_gradient = np.reshape(gradient, -1)
    for k in picks:
        unit = np.zeros(size)
        unit[k] = 1.0
        unit = unit.reshape(variable.shape)
        ok, probe = _along_coordinate(
            loss_of, variable, float(flat_gradient[k]), unit, centre, noise
        )
        if not ok:
            index = [int(i) for i in np.unravel_index(k, variable.shape)]
            return Mismatch(
                f"coordinate {index}",
                float(flat_gradient[k]),
                probe.forward,
                probe.backward,
                probe.step,
                probe.kink,
                along_random=(auto, first.forward, first.backward),
                unit=unit,
            )
    return None
