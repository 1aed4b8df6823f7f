"""Float tolerances derived from the magnitudes compared (NumPy only).

Two float32 evaluations of the same function - the assets permuted, another
execution mode, the RNN's loop against stepping the cell by hand - differ only
by rounding, and rounding scales with the numbers involved.  An absolute
tolerance that holds for prices near 1 fails a correct cell fed prices near
1e4, and one loose enough for 1e4 misses real faults near 1.  So every bound
here is a function of the magnitudes, with the derivation beside it
(docs/design.md, "Tolerances").

The outputs compared are probabilities ``p = softmax(z)``.  A perturbation
``dz`` of the logits moves them by ``dp_i = p_i (dz_i - sum_j p_j dz_j)``, so

    |dp_i| <= 2 p_i max_j |dz_j|.                                      (1)

Rounding perturbs the logits by about an ulp of Z, the magnitude at which they
are rounded, times the number of roundings that accumulate along the way to
them; call that factor ``ROUNDING_DEPTH``, so ``max |dz| <= ROUNDING_DEPTH *
eps * Z``.  Z is at least the largest logit, and more when the sums that make
the logits had larger terms: terms of 1e4 that cancel to a logit of 1 are
still rounded at 1e4 (:mod:`cellverify.checks.judges.numerics.precision` measures Z).  The
softmax adds its own rounding: the exponent ``z_i - max z`` carries an ulp of
the spread, the sum of n terms n ulps, the division one: ``(n + 4) eps p_i``
in all (a generous count).  Hence the bound of :func:`probability_tolerance`::

    tol_i = floor + p_i * eps * (2 * ROUNDING_DEPTH * max(Z, 1) + n + 4).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "FLOAT32_EPS",
    "FLOAT64_EPS",
    "ROUNDING_DEPTH",
    "SIMPLEX_SUM_FLOOR",
    "probability_tolerance",
    "real_tolerance",
    "simplex_sum_tolerance",
]

#: Machine epsilon (the gap between 1 and the next float): 2**-23 and 2**-52.
FLOAT32_EPS = float(np.finfo(np.float32).eps)
FLOAT64_EPS = float(np.finfo(np.float64).eps)

#: Ulps of the largest logit by which rounding may move a logit.  Measured on
#: the shipped cell (150 generated cells, raw prices x1e4 - logits up to 2e4 -
#: AVX-512 CPU): the largest permutation difference was 0.75 p * eps * Z, i.e.
#: the logits moved by well under an ulp; on an AVX2 machine the issue's case
#: (logits ~100, difference 3.4e-6) works out to 1-3.  Each logit is the end of
#: three accumulations (conv1, conv2, conv3), each of which may add a few ulps,
#: and an outside cell may have more: 32 leaves a margin of 10x over the worst
#: seen while staying 1e4x below the change a mis-wired cell makes (a logit
#: moved by 1e-2, against 32 * 1.2e-7 * Z for Z ~ 1).
ROUNDING_DEPTH = 32

#: |sum(row) - 1| never needs to be allowed less than this: the bound below is
#: smaller for short rows, but 1e-5 held on every case measured (docs/design.md,
#: "Tolerances") and still catches a row that is not normalised at all.
SIMPLEX_SUM_FLOOR = 1e-5


def probability_tolerance(
    p: np.ndarray, logit_scale: float, *, floor: float, eps: float = FLOAT32_EPS
) -> np.ndarray:
    """Elementwise bound on the rounding difference of probabilities ``p``.

    ``logit_scale`` is Z, the scale at which the logits behind ``p`` are
    rounded (at least 1 is assumed: below that the softmax's own rounding
    dominates), ``floor`` an absolute floor that held where it was measured.
    Derivation: module doc.
    """
    p = np.abs(np.asarray(p, np.float64))
    n = p.shape[-1] if p.ndim else 1
    relative = eps * (2.0 * ROUNDING_DEPTH * max(float(logit_scale), 1.0) + n + 4)
    return np.maximum(floor, p * relative)


def simplex_sum_tolerance(n: int, eps: float = FLOAT32_EPS) -> float:
    """|sum(row) - 1| allowed for a row of ``n`` rounded probabilities.

    Each ``p_i = e_i / S`` is rounded once (eps) and ``S`` is a sum of n
    rounded terms (at most (n - 1) eps relative, recursive summation), so the
    row sums to 1 within about (n + 1) eps; doubled for a backend that divides
    by multiplying with a rounded reciprocal, and never below
    :data:`SIMPLEX_SUM_FLOOR`.
    """
    return max(SIMPLEX_SUM_FLOOR, 2.0 * (n + 2) * eps)


def real_tolerance(scale: float, *, floor: float, eps: float = FLOAT32_EPS) -> float:
    """Bound on the rounding difference of two float32 evaluations of a real
    (unbounded) output, rounded at magnitude ``scale``.

    Derivation (docs/design.md, "Tolerances"): each evaluation is within
    ROUNDING_DEPTH ulps of S of the exact value, S the magnitude at which the
    output is rounded - at least its largest entry, and more where the sums
    behind it cancel; two evaluations are within twice that of each other.
    S is measured (:func:`cellverify.checks.judges.numerics.precision.real_scale`):
    the float32 output's largest error against the same cell in float64, in
    ulps, stands for the cancellation.  ``floor`` is an absolute floor that
    held where it was measured.
    """
    return max(floor, 2.0 * ROUNDING_DEPTH * eps * max(float(scale), 1.0))
