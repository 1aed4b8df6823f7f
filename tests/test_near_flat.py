"""Nearly flat windows, an input kind of their own: their ranges are what the
kind claims, and a cell that breaks only on them is caught only on them."""

from __future__ import annotations

import numpy as np
import pytest

from cellverify import Case, CellConfig, InputSpec, TrainConfig
from cellverify.checks.judges.catalog import check
from cellverify.checks.judges.registry import NON_FINITE
from cellverify.data.inputs import INPUT_KINDS, NEAR_FLAT_RANGE, SCALES
from cellverify.data.market import batch_from_spec
from cellverify.errors import InvariantViolation
from cellverify.mutation import DEFAULT_CASE, NanOnNearlyFlat

pytestmark = pytest.mark.usefixtures("fresh_keras")

#: The strategies' smallest and largest shapes, and one between.
SHAPES = [(2, 3, 1), (3, 5, 3), (5, 12, 2)]


@pytest.mark.parametrize(("assets", "window", "features"), SHAPES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nearly_flat_windows_have_a_relative_range_inside_the_kinds_range(
    assets, window, features, seed
):
    cell = CellConfig(assets=assets, window=window, features=features, kernels=(1, 1, 1))
    inputs = batch_from_spec(
        cell, TrainConfig(batch_size=4, steps=3), InputSpec("near_flat", seed=seed)
    ).inputs
    x = inputs.astype(np.float64)
    spread = np.ptp(x, axis=(-2, -1)) / x[..., -1, 0]
    low, high = NEAR_FLAT_RANGE
    # Rounded to float32 near 1, a range moves by at most one ulp of 1.
    ulp = float(np.finfo(np.float32).eps)
    assert inputs.dtype == np.float32
    assert np.all(x[..., -1, 0] == 1.0)  # normalised by the latest close
    assert spread.min() >= low - ulp > 0 and spread.max() <= high + ulp


def _other_inputs():
    for kind in INPUT_KINDS:
        if kind == "near_flat":
            continue
        for scale in SCALES if kind == "scaled" else (1.0,):
            for seed in range(3):
                yield InputSpec(kind, scale, seed)


@pytest.mark.parametrize("spec", list(_other_inputs()), ids=str)
def test_the_nearly_flat_mutant_passes_on_every_other_input_kind(spec):
    check("simplex_output", NanOnNearlyFlat, Case(DEFAULT_CASE.cell, DEFAULT_CASE.train, spec))


def test_the_nearly_flat_mutant_fails_on_nearly_flat_windows_naming_them():
    case = Case(DEFAULT_CASE.cell, DEFAULT_CASE.train, InputSpec("near_flat", seed=5))
    with pytest.raises(InvariantViolation, match=r"is NaN .* on a nearly flat window") as info:
        check("simplex_output", NanOnNearlyFlat, case)
    assert info.value.clause == NON_FINITE
