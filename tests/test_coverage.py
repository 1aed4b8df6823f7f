"""The gate covers what it claims: each invariant draws its own cases, the
covering cases reach every input kind and categorical value its claim allows,
the report shows it, and a value left out is named with its reason."""

from __future__ import annotations

import math

import pytest
from hypothesis import strategies as st

from cellverify.cell import conv_rnn_cell
from cellverify.checks.cases.case import Case
from cellverify.checks.cases.regions import ROBUST_REGION, WHOLE_SPACE, learning_rate_range
from cellverify.checks.cases.sizes import size_ranges
from cellverify.checks.draws.coverage import Coverage, dimensions, labels_of, with_label
from cellverify.checks.draws.covering_cases import covering_cases
from cellverify.checks.judges.invariants import INVARIANTS
from cellverify.checks.judges.registry import Invariant, fail
from cellverify.checks.runs.results import SuiteResult
from cellverify.checks.runs.search import search_seed, search_test
from cellverify.checks.runs.suite import run_invariant
from cellverify.errors import InvariantViolation
from cellverify.render.report import render_check
from cellverify.vocabulary import DROPOUT_LAYERS

from .outside_cells import eiie_cell, minmax_scaled_cell, pgportfolio_cell

pytestmark = pytest.mark.usefixtures("fresh_keras")


def _drawn(
    invariant: Invariant, profile: str = "ci", pinned=None, **search
) -> tuple[list[Case], Coverage]:
    """The cases ``invariant``'s search draws (``search``: a strategy and
    covering cases of the caller's), recorded by a check that passes."""
    seen: list[Case] = []
    recorder = Invariant(
        invariant.name,
        lambda factory, case: seen.append(case),
        invariant.region,
        invariant.adversarial_inputs,
        min_batch=invariant.min_batch,
    )
    test = search_test(recorder, conv_rnn_cell, profile=profile, pinned=pinned, **search)
    test()
    return seen, test.coverage


def test_two_invariants_of_one_region_draw_different_cases_under_ci():
    first, _ = _drawn(INVARIANTS["simplex_output"])
    second, _ = _drawn(INVARIANTS["gradients_finite"])
    assert first != second
    assert len({repr(c) for c in first} & {repr(c) for c in second}) <= 1  # the minimal case


def test_a_rerun_under_ci_draws_the_same_cases():
    assert _drawn(INVARIANTS["deterministic"])[0] == _drawn(INVARIANTS["deterministic"])[0]


def test_search_seeds_are_stable_and_differ_by_name():
    # The value is part of the contract "the same draws on every machine".
    assert search_seed("simplex_output") == search_seed("simplex_output")
    assert len({search_seed(name) for name in INVARIANTS}) == len(INVARIANTS)


@pytest.mark.parametrize("name", sorted(INVARIANTS))
def test_every_invariant_reaches_every_value_its_claim_allows_under_ci(name):
    cases, coverage = _drawn(INVARIANTS[name])
    assert coverage.missing() == {}
    assert len(cases) == 25  # the profile's examples in all, covering cases first


def test_covering_cases_come_first_and_reach_every_value_by_themselves():
    invariant = INVARIANTS["simplex_output"]
    cases, _ = _drawn(invariant)
    covering = covering_cases(
        region=invariant.region, adversarial_inputs=True, seed=search_seed(invariant.name)
    )
    assert cases[: len(covering)] == covering
    alone = Coverage(dimensions(WHOLE_SPACE, True))
    for case in covering:
        alone.record(case)
    assert alone.complete


def test_a_callers_strategy_runs_its_own_covering_cases_first_and_none_of_the_invariants():
    invariant = INVARIANTS["simplex_output"]
    own = covering_cases(region=WHOLE_SPACE, adversarial_inputs=True, seed=7)[:3]
    strategy = st.just(own[-1])
    alone, _ = _drawn(invariant, strategy=strategy)
    assert set(map(repr, alone)) == {repr(own[-1])}  # no covering cases of the invariant's
    cases, coverage = _drawn(invariant, strategy=strategy, covering=own)
    assert cases[:3] == own
    assert len(cases) > 3 and set(map(repr, cases[3:])) == {repr(own[-1])}
    assert sum(coverage.counts["inputs"].values()) == len(cases)


def test_batch_independence_draws_batches_of_two_or_more():
    cases, _ = _drawn(INVARIANTS["batch_independence"])
    assert min(c.train.batch_size for c in cases) == 2


def test_a_value_pinned_away_is_left_out_and_named_not_missed():
    pinned = {"activation": "relu", "task": "portfolio"}
    cases, coverage = _drawn(INVARIANTS["state_matters"], pinned=pinned)
    assert {c.cell.activation for c in cases} == {"relu"}
    assert coverage.complete
    activation = coverage.to_dict()["dimensions"]["activation"]
    assert activation["values"] == ["relu"]
    assert activation["left_out"]["elu"] == "pinned (activation='relu')"
    assert activation["left_out"]["tanh"] == "outside the region 'robust'"


def _covering(invariant: Invariant, pinned=None) -> list[Case]:
    """The covering cases ``invariant``'s search runs first."""
    return covering_cases(
        region=invariant.region,
        adversarial_inputs=invariant.adversarial_inputs,
        seed=search_seed(invariant.name),
        pinned=pinned,
        min_batch=invariant.min_batch,
    )


def test_covering_cases_reach_both_ends_of_every_size_by_themselves():
    for invariant in INVARIANTS.values():
        ranges = size_ranges(invariant.region, invariant.min_batch)
        covering = _covering(invariant)
        for size, (low, high) in ranges.items():
            reached = {int(labels_of(case)[size]) for case in covering}
            assert {low, high} <= reached <= set(range(low, high + 1)), (invariant.name, size)


def test_a_cell_broken_only_at_the_most_assets_fails_the_gate_with_that_case():
    def check(factory, case):
        if case.cell.assets == high:
            fail(f"broken at {case.cell.assets} assets")

    simplex = INVARIANTS["simplex_output"]
    high = size_ranges(simplex.region)["assets"][1]
    broken = Invariant("recorder", check, simplex.region, simplex.adversarial_inputs)
    # dev: 10 examples, the 7 covering cases among them, the rest random.
    result = run_invariant(broken, conv_rnn_cell, profile="dev")
    assert result.status == "failed"
    assert result.falsifying.cell.assets == high


def test_covering_cases_reach_both_ends_of_the_learning_rate_range_by_themselves():
    for invariant in INVARIANTS.values():
        covering = _covering(invariant)
        labels = [labels_of(case, invariant.region)["learning_rate"] for case in covering]
        assert {"lowest", "highest"} <= set(labels), (invariant.name, labels)
        for case in covering:
            low, high = learning_rate_range(invariant.region, case.train.optimizer)
            assert low <= case.train.learning_rate <= high, (invariant.name, case.train)


def test_a_rate_is_labelled_by_its_place_in_its_optimizers_range_in_the_region():
    case = covering_cases(region=ROBUST_REGION, adversarial_inputs=True, seed=0)[0]
    adam = Case(case.cell, case.train.replace(optimizer="adam"), case.inputs)

    def label(rate, region=ROBUST_REGION):
        at = Case(adam.cell, adam.train.replace(learning_rate=rate), adam.inputs)
        return labels_of(at, region)["learning_rate"]

    low, high = ROBUST_REGION.learning_rates["adam"]
    assert (label(low), label(high), label(2 * low)) == ("lowest", "highest", "between")
    # The strategies' log-uniform draw at its top lands a few ulps off the end.
    assert label(low * (high / low) ** 1.0) == "highest"
    assert label(high, WHOLE_SPACE) == "between"  # the whole space reaches 1e-1
    assert (
        labels_of(with_label(adam, "learning_rate", "highest", ROBUST_REGION), ROBUST_REGION)[
            "learning_rate"
        ]
        == "highest"
    )


def test_a_pinned_learning_rate_requires_no_end_and_names_the_pin():
    dims = {d.name: d for d in dimensions(ROBUST_REGION, True, {"learning_rate": 5e-3})}
    assert dims["learning_rate"].values == ()
    assert dims["learning_rate"].left_out == {
        "lowest": "pinned (learning_rate=0.005)",
        "highest": "pinned (learning_rate=0.005)",
    }


def test_a_cell_broken_only_at_the_highest_learning_rate_fails_the_gate_with_that_case():
    def check(factory, case):
        if labels_of(case, gradients.region)["learning_rate"] == "highest":
            fail(f"broken at learning rate {case.train.learning_rate}")

    gradients = INVARIANTS["gradients_nonzero"]
    broken = Invariant("recorder", check, gradients.region, gradients.adversarial_inputs)
    # dev: 10 examples, the covering cases among them, the rest random.
    result = run_invariant(broken, conv_rnn_cell, profile="dev")
    assert result.status == "failed"
    train = result.falsifying.train
    high = gradients.region.learning_rates[train.optimizer][1]
    assert math.isclose(train.learning_rate, high, rel_tol=1e-9), train


#: Every categorical field pinned, on market inputs in the robust region:
#: two covering cases (the sizes' two ends), one of them with dropout layers.
_FEW_CASES = {"activation": "elu", "output_activation": "linear", "initializer": "he_normal",
              "optimizer": "adam", "cash_bias": False, "task": "supervised"}  # fmt: skip


@pytest.mark.parametrize("pinned", [{}, _FEW_CASES], ids=["claimed", "few cases"])
def test_covering_cases_put_a_dropout_layer_after_every_conv_by_themselves(pinned):
    few = Invariant("few", lambda factory, case: None, ROBUST_REGION, adversarial_inputs=False)
    for invariant in [*INVARIANTS.values(), few]:
        covering = _covering(invariant, pinned)
        with_dropout = [c.cell.dropout_after for c in covering if c.cell.dropout_after]
        assert with_dropout and with_dropout[0] == DROPOUT_LAYERS, (invariant.name, with_dropout)


def test_a_pinned_size_is_required_alone_and_its_ends_named_pinned():
    dims = {d.name: d for d in dimensions(WHOLE_SPACE, True, {"kernels": (5, 20, 1)})}
    assert (dims["k1"].values, dims["k2"].values) == (("5",), ("20",))
    assert dims["k1"].left_out == {
        "1": "pinned (kernels=(5, 20, 1))",
        "4": "pinned (kernels=(5, 20, 1))",
    }
    assert dims["window"].values == ("3", "12")


def test_an_invariant_on_batches_of_two_says_why_a_batch_of_one_is_left_out():
    invariant = INVARIANTS["batch_independence"]
    dims = {d.name: d for d in dimensions(invariant.region, True, min_batch=invariant.min_batch)}
    assert dims["batch"].values == ("2", "4")
    assert dims["batch"].left_out == {"1": "the invariant needs batches of 2 or more"}


def test_market_only_invariants_name_the_input_kinds_they_leave_out():
    inputs = {d.name: d for d in dimensions(ROBUST_REGION, adversarial=False)}["inputs"]
    assert inputs.values == ("market",)
    assert inputs.left_out["constant"] == "market inputs only"
    assert set(inputs.left_out) == {
        "constant",
        "near_flat",
        "large_moves",
        "scaled x1",
        "scaled x0.0001",
        "scaled x10000",
    }


def test_coverage_names_a_value_no_example_reached():
    coverage = Coverage(dimensions(WHOLE_SPACE, True))
    for case in covering_cases(region=WHOLE_SPACE, adversarial_inputs=True, seed=0):
        flat = labels_of(case)["inputs"] == "constant"
        coverage.record(with_label(case, "inputs", "market") if flat else case)
    assert coverage.missing() == {"inputs": ["constant"]}
    assert "inputs 6/7 (MISSING constant)" in render_check(_report_with(coverage.to_dict()))


def _report_with(coverage: dict) -> dict:
    return {
        "cell": "c",
        "profile": "ci",
        "invariants": [
            {
                "name": "simplex_output",
                "status": "passed",
                "examples": 25,
                "seconds": 1.0,
                "falsifying": None,
                "message": "",
                "coverage": coverage,
            }
        ],
    }


def test_the_check_report_shows_each_invariants_coverage_as_text_and_json():
    result = run_invariant(INVARIANTS["simplex_output"], conv_rnn_cell, profile="ci")
    report = SuiteResult("shipped", "ci", [result]).to_dict()
    coverage = report["invariants"][0]["coverage"]
    assert coverage["complete"]
    assert coverage["dimensions"]["inputs"]["counts"]["constant"] >= 1
    text = render_check(report)
    assert "inputs 7/7 · activation 6/6 · output_activation 6/6 · initializer 7/7" in text


@pytest.mark.parametrize("name", ["simplex_output", "gradients_finite"])
def test_the_ci_gate_catches_a_cell_that_is_nan_on_flat_prices(name):
    """The issue's outside cell: min-max scaling is 0/0 on a constant window.
    The old gate never drew one and passed it; the failure shrinks to the
    simplest case that still has flat prices."""
    result = run_invariant(INVARIANTS[name], minmax_scaled_cell, profile="ci")
    assert result.status == "failed"
    case = result.falsifying
    assert case.inputs.kind == "constant"
    assert (case.cell.assets, case.cell.window, case.train.batch_size) == (2, 3, 1)
    assert case.cell.activation == "linear"  # the simplest value, not the covering case's


@pytest.mark.parametrize("factory", [conv_rnn_cell, eiie_cell, pgportfolio_cell])
def test_correct_cells_pass_batch_independence_under_ci(factory):
    result = run_invariant(INVARIANTS["batch_independence"], factory, profile="ci")
    assert result.status == "passed", result.message
    assert result.coverage["complete"]


def test_a_failing_covering_case_shrinks_in_a_region_with_one_learning_rate():
    """A user's region may give an optimizer a single rate; trying the failing
    case with the simplest optimizer must not divide by log(1)."""
    import dataclasses

    narrow = dataclasses.replace(
        WHOLE_SPACE, name="narrow", learning_rates={"adam": (1e-3, 1e-3), "sgd": (1e-2, 1e-2)}
    )

    def fails_on_sgd(factory, case):
        if case.train.optimizer == "sgd":
            fail("sgd")

    search = search_test(
        Invariant("sgd_only", fails_on_sgd, narrow, True), conv_rnn_cell, profile="ci"
    )
    # Called directly, to read the case it shrank to from its failures.
    with pytest.raises(InvariantViolation, match=r"\[sgd_only\] sgd"):
        search()
    case, _ = search.failures[-1]
    assert (case.train.optimizer, case.train.learning_rate) == ("sgd", 1e-2)
