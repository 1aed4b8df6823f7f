"""Each symptom detector fires on a constructed trace that shows it, and not on a healthy one."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cellverify import AS_ASKED, CellConfig, TrainConfig
from cellverify import diagnosis as dx
from cellverify.diagnosis.outcome import (
    DECISION_HORIZON,
    MIN_TREND_UPDATES,
    TREND_Z,
    outcome_of,
    wilson_interval,
)
from cellverify.trace import ACTIVATION_LAYERS

from .traces import (
    dead_from,
    healthy_trace,
    noisy_flat_trace,
    probed_every,
    uniform_from,
    zero_gradient_at,
)

#: A one-run budget of the labelled sets (docs/verdicts.md, "One run").
EARLY = 20


@pytest.mark.parametrize("detect", dx.DETECTORS, ids=lambda d: d.__name__)
def test_no_detector_fires_on_a_healthy_trace(detect):
    assert detect(healthy_trace()) is None


def test_zero_gradient_fires_with_the_step_it_appeared():
    symptom = dx.detect_zero_gradient(dead_from(healthy_trace(), 3))
    assert symptom.name == "zero_gradient"
    assert symptom.evidence["step"] == 3
    assert symptom.evidence["to_the_end"] is True


def test_zero_logits_fires_on_exactly_uniform_rows():
    symptom = dx.detect_zero_logits(dead_from(healthy_trace(), 2))
    assert symptom.evidence["step"] == 2
    assert symptom.evidence["uniform_rows"] == 1.0


def test_dead_units_fires_at_the_autotrainer_share_and_not_below():
    dead = np.zeros((11, len(ACTIVATION_LAYERS)))
    dead[:, 1] = dx.DEAD_UNIT_SHARE
    symptom = dx.detect_dead_units(healthy_trace(dead_fraction=dead))
    assert symptom.evidence["layer"] == "conv2"
    dead[:, 1] = dx.DEAD_UNIT_SHARE - 0.05
    assert dx.detect_dead_units(healthy_trace(dead_fraction=dead)) is None


def test_zero_gradient_entries_fire_on_a_mostly_zero_kernel_gradient_of_a_live_run():
    zero = np.zeros((11, 6))
    zero[4:, 2] = dx.DEAD_UNIT_SHARE  # conv2/kernel
    symptom = dx.detect_zero_gradient_entries(healthy_trace(grad_zero_fraction=zero))
    assert (symptom.evidence["variable"], symptom.evidence["step"]) == ("conv2/kernel", 4)
    zero[4:, 2] = dx.DEAD_UNIT_SHARE - 0.05
    assert dx.detect_zero_gradient_entries(healthy_trace(grad_zero_fraction=zero)) is None


def test_vanishing_gradient_needs_both_the_ratio_and_a_tiny_first_layer():
    norms = np.full((11, 6), 0.05)
    norms[:, 0] = 1e-5  # conv1 kernel: ratio 2e-4, norm 1e-5
    symptom = dx.detect_vanishing_gradient(healthy_trace(grad_norm=norms))
    assert symptom.evidence["step"] == 0
    norms[:, 4] = 1e-3  # last layer small too: ratio 1e-2 -> not vanishing
    assert dx.detect_vanishing_gradient(healthy_trace(grad_norm=norms)) is None


def test_exploding_gradient_fires_on_a_large_ratio_or_a_nan():
    norms = np.full((11, 6), 0.05)
    norms[4, 0] = 0.05 * dx.EXPLODING_RATIO
    assert dx.detect_exploding_gradient(healthy_trace(grad_norm=norms)).evidence["step"] == 4
    loss = np.linspace(2.7, 2.5, 11)
    loss[6] = np.nan
    assert dx.detect_exploding_gradient(healthy_trace(loss=loss)).evidence["step"] == 6


def test_vanishing_through_time_fires_on_a_faded_state_and_ignores_one_step_runs():
    state = np.full((11, 2), 1e-2)
    state[:, 0] = 1e-6
    symptom = dx.detect_vanishing_through_time(healthy_trace(state_grad_norm=state))
    assert symptom.evidence["ratio"] == pytest.approx(1e-4)
    one_step = TrainConfig(train_steps=10, steps=1)
    assert (
        dx.detect_vanishing_through_time(healthy_trace(state_grad_norm=state, train=one_step))
        is None
    )


def test_saturated_softmax_fires_at_its_threshold():
    weights = np.full(11, 0.2)
    weights[5:] = dx.SATURATED_MAX_WEIGHT
    assert dx.detect_saturated_softmax(healthy_trace(max_weight=weights)).evidence["step"] == 5


def test_saturated_tanh_fires_only_for_tanh_convs():
    shares = np.zeros((11, len(ACTIVATION_LAYERS)))
    shares[3:, 0] = dx.SATURATED_UNIT_SHARE
    tanh = CellConfig(activation="tanh", output_activation="linear")
    symptom = dx.detect_saturated_tanh(healthy_trace(saturated_fraction=shares, cell=tanh))
    assert (symptom.evidence["layer"], symptom.evidence["step"]) == ("conv1", 3)
    assert dx.detect_saturated_tanh(healthy_trace(saturated_fraction=shares)) is None  # ELU


def test_stalled_loss_fires_when_the_trend_is_flat_beyond_its_noise():
    symptom = dx.detect_stalled_loss(noisy_flat_trace(200))
    assert symptom.name == "stalled_loss"
    trend = symptom.evidence["trend"]
    assert trend["slope"] - TREND_Z * trend["se"] > -trend["needed"]
    # A dead run is zero_gradient's finding, not a stall.
    assert dx.detect_stalled_loss(dead_from(noisy_flat_trace(200), 0)) is None


def test_stalled_loss_stays_quiet_when_the_budget_is_too_short_to_tell():
    """20 updates of the same flat, noisy run: the slope's uncertainty still
    allows the rate a learner needs, so it is too early, not stalled."""
    assert dx.detect_stalled_loss(noisy_flat_trace(20)) is None
    early = [noisy_flat_trace(20, seed=s) for s in range(3)]
    assert dx.diagnose(early, [0, 1, 2]).verdict.name == "too early to tell"


def test_stalled_loss_stays_quiet_on_a_loss_that_falls_fast_enough():
    falling = np.linspace(2.7, 2.6, 201) + 0.01 * np.random.default_rng(0).standard_normal(201)
    assert dx.detect_stalled_loss(noisy_flat_trace(200, loss=falling)) is None


def test_update_ratio_fires_above_and_below_its_range_with_opposite_remedies():
    ratios = np.full((10, 6), 1e-3)
    ratios[:, 2] = 1.0
    high = dx.detect_update_ratio(healthy_trace(update_ratio=ratios))
    assert (high.name, high.evidence["variable"]) == ("update_ratio_high", "conv2/kernel")
    ratios[:, 2] = dx.UPDATE_RATIO_RANGE[0] / 10
    low = dx.detect_update_ratio(healthy_trace(update_ratio=ratios))
    assert low.name == "update_ratio_low"
    remedies = {
        name: [r.name for r in dx.diagnose([healthy_trace(update_ratio=r)], [0]).remedies()]
        for name, r in (("high", np.full((10, 6), 1.0)), ("low", np.full((10, 6), 1e-7)))
    }
    assert remedies == {"high": ["lower_learning_rate"], "low": ["higher_learning_rate"]}


def test_optimizer_step_fires_when_a_large_step_precedes_death():
    # conv3/kernel moved 1e-2 with lr 1e-3 and gradient 1e-3: gain 10 000.
    ratios = np.full((10, 6), 1e-3)
    ratios[0, 4] = 1e-2
    norms = np.full((11, 6), 0.05)
    norms[0, 4] = 1e-3
    trace = dead_from(healthy_trace(update_ratio=ratios, grad_norm=norms), 2)
    symptom = dx.detect_optimizer_step(trace)
    assert symptom.evidence["gain"] == pytest.approx(1e4)
    assert symptom.evidence["death_step"] == 2
    # The same step without a death afterwards is not the symptom.
    assert dx.detect_optimizer_step(healthy_trace(update_ratio=ratios, grad_norm=norms)) is None


def test_question_cell_dying_is_blamed_on_relu_before_softmax_and_adam():
    cell, train = AS_ASKED.cell, AS_ASKED.train.replace(train_steps=10)
    ratios = np.full((10, 6), 1e-3)
    ratios[0, 2] = 5e-2
    norms = np.full((11, 6), 0.05)
    norms[0, 2] = 1e-3
    traces = [
        dead_from(healthy_trace(cell=cell, train=train, update_ratio=ratios, grad_norm=norms), s)
        for s in (1, 2, 3)
    ]
    result = dx.diagnose(traces, [0, 1, 2])
    names = {f.name for f in result.findings}
    assert {"zero_gradient", "zero_logits", "optimizer_step"} <= names
    causes = [c.name for c in result.causes]
    assert causes[:2] == ["relu_before_softmax", "step_independent_of_gradient"]
    assert "linear_last_conv" in [r.name for r in result.remedies()]


def test_outcome_variance_is_reported_when_some_seeds_learn_and_others_do_not():
    good, bad = healthy_trace(), dead_from(healthy_trace(), 0)
    result = dx.diagnose([good, bad, good], [0, 1, 2])
    variance = next(f for f in result.findings if f.name == "outcome_variance")
    assert variance.seeds == [1]
    assert variance.evidence[0]["learned_seeds"] == [0, 2]


def test_outcome_variance_is_silent_while_no_seed_is_decided():
    early = [noisy_flat_trace(20, seed=s) for s in range(3)]
    assert "outcome_variance" not in {f.name for f in dx.diagnose(early, [0, 1, 2]).findings}


def test_outcome_variance_ignores_undecided_seeds_beside_learned_ones():
    traces = [healthy_trace(), noisy_flat_trace(20), noisy_flat_trace(20, seed=1)]
    result = dx.diagnose(traces, [0, 1, 2])
    assert "outcome_variance" not in {f.name for f in result.findings}
    assert result.verdict.name == "healthy"
    assert result.verdict.states == {0: "learned", 1: "undecided", 2: "undecided"}


def test_healthy_seeds_give_no_finding_and_no_remedy():
    result = dx.diagnose([healthy_trace(), healthy_trace()], [0, 1])
    assert result.findings == []
    assert result.verdict.name == "healthy"
    assert result.remedies() == []


@pytest.mark.parametrize(
    ("dead", "of", "expected"),
    [
        (3, 3, "will not learn"),
        (2, 3, "at risk"),  # a learner loses 2 of 3 seeds 10 % of the time
        (1, 3, "at risk"),
        (0, 3, "healthy"),
        (6, 10, "will not learn"),
        (5, 10, "at risk"),
        (1, 1, "will not learn"),  # one run is judged as itself
    ],
)
def test_verdict_says_will_not_learn_only_when_that_many_deaths_are_unlikely_for_a_learner(
    dead, of, expected
):
    traces = [dead_from(healthy_trace(), 0) for _ in range(dead)]
    traces += [healthy_trace() for _ in range(of - dead)]
    assert dx.diagnose(traces, list(range(of))).verdict.name == expected


def test_a_majority_dead_on_too_few_seeds_says_to_run_more():
    traces = [dead_from(healthy_trace(), 0), dead_from(healthy_trace(), 0), healthy_trace()]
    verdict = dx.diagnose(traces, [0, 1, 2]).verdict
    assert verdict.name == "at risk"
    assert "too few seeds" in verdict.reason and "run more seeds" in verdict.reason


def test_false_alarm_rule_is_the_majority_rule_for_deaths_at_ten_seeds():
    """The binomial tail at the measured learner rates: docs/design.md, 'Verdicts'."""
    assert dx.binomial_tail(6, 10, dx.LEARNER_DEATH_RATE) <= dx.FALSE_ALARM_RISK
    assert dx.binomial_tail(5, 10, dx.LEARNER_DEATH_RATE) > dx.FALSE_ALARM_RISK
    assert dx.binomial_tail(3, 3, dx.LEARNER_STALL_RATE) > dx.FALSE_ALARM_RISK
    assert dx.binomial_tail(0, 7, 0.4) == pytest.approx(1.0)


def test_stalled_on_most_seeds_at_the_horizon_learned_on_none_will_not_learn():
    stalled = [noisy_flat_trace(DECISION_HORIZON, seed=s) for s in range(9)]
    verdict = dx.diagnose(stalled, list(range(9))).verdict
    assert set(verdict.states.values()) == {"stalled"}
    assert verdict.name == "will not learn"
    assert f"within {DECISION_HORIZON} updates" in verdict.reason
    undecided = noisy_flat_trace(DECISION_HORIZON, loss=np.linspace(2.7, 2.69, 201))
    with_one_undecided = dx.diagnose([*stalled, undecided], list(range(10))).verdict
    assert with_one_undecided.states[9] == "undecided"
    assert with_one_undecided.name == "will not learn"


def test_stalled_on_three_of_three_seeds_is_at_risk_not_will_not_learn():
    stalled = [noisy_flat_trace(DECISION_HORIZON, seed=s) for s in range(3)]
    verdict = dx.diagnose(stalled, [0, 1, 2]).verdict
    assert verdict.name == "at risk"
    assert "too few seeds" in verdict.reason


def test_stalled_before_the_horizon_or_beside_a_learner_is_at_risk():
    early = [noisy_flat_trace(150, seed=s) for s in range(3)]
    assert dx.diagnose(early, [0, 1, 2]).verdict.name == "at risk"
    mixed = [noisy_flat_trace(DECISION_HORIZON), healthy_trace(DECISION_HORIZON)]
    assert dx.diagnose(mixed, [0, 1]).verdict.name == "at risk"


def test_no_run_is_called_stalled_before_half_the_horizon():
    """Extrapolating a short slope called healthy runs stalled (docs/verdicts.md,
    'Can the verdict be trusted'): below MIN_TREND_UPDATES it is too early."""
    flat = noisy_flat_trace(MIN_TREND_UPDATES - 1, sigma=1e-9)
    assert dx.detect_stalled_loss(flat) is None
    assert dx.detect_stalled_loss(noisy_flat_trace(MIN_TREND_UPDATES, sigma=1e-9)) is not None


def test_dead_units_in_a_run_that_learns_are_a_warning_not_a_verdict():
    dead = np.zeros((11, len(ACTIVATION_LAYERS)))
    dead[:, 1] = 0.9
    result = dx.diagnose([healthy_trace(dead_fraction=dead)], [0])
    assert [(f.name, f.severity) for f in result.findings] == [("dead_units", "warning")]
    assert result.verdict.name == "healthy"


NAN_AT_THE_END = healthy_trace(loss=np.r_[np.linspace(2.7, 2.6, 10), np.nan])


@pytest.mark.parametrize(
    ("trace", "name", "severity"),
    [
        (dead_from(healthy_trace(), 3), "zero_gradient", "fatal"),
        (dead_from(healthy_trace(), 3), "zero_logits", "fatal"),
        (NAN_AT_THE_END, "exploding_gradient", "fatal"),
        (noisy_flat_trace(200), "stalled_loss", "warning"),
    ],
)
def test_findings_carry_their_severity(trace, name, severity):
    finding = next(f for f in dx.diagnose([trace], [0]).findings if f.name == name)
    assert finding.severity == severity
    assert finding.to_dict()["severity"] == severity


def test_a_gradient_that_comes_back_is_a_warning_that_says_when_it_came_back():
    zero = np.zeros((11, 6))
    zero[3:6] = 1.0
    symptom = dx.detect_zero_gradient(healthy_trace(grad_zero_fraction=zero))
    assert (symptom.severity, symptom.evidence["to_the_end"]) == ("warning", False)
    assert symptom.evidence["came_back_at"] == 6
    assert "came back at step 6 (exactly 0 at 3 of the 8 measured steps since)" in symptom.message


def test_a_gradient_that_stays_gone_is_fatal_and_says_so():
    symptom = dx.detect_zero_gradient(dead_from(healthy_trace(), 3))
    assert (symptom.severity, symptom.evidence["came_back_at"]) == ("fatal", None)
    assert symptom.message.endswith("from step 3 to the end")


def test_a_finding_whose_seeds_differ_in_severity_quotes_a_seed_of_its_own_severity():
    """The report agrees with itself: a fatal zero_gradient quotes the seed
    whose gradient stayed gone, not one whose gradient came back."""
    zero = np.zeros((11, 6))
    zero[3:6] = 1.0
    came_back = healthy_trace(grad_zero_fraction=zero)
    result = dx.diagnose([came_back, dead_from(healthy_trace(), 2)], [0, 1])
    finding = next(f for f in result.findings if f.name == "zero_gradient")
    assert finding.severity == "fatal"
    assert finding.message.startswith("2/2 seeds (fatal on 1, warning on 1); seed 1: ")
    assert finding.detail.endswith("to the end")


def test_the_report_json_names_the_verdict_and_each_findings_severity():
    dead = dead_from(healthy_trace(), 0)
    data = dx.diagnose([dead, dead, dead, dead, healthy_trace()], [0, 1, 2, 3, 4]).to_dict()
    assert data["verdict"]["name"] == "will not learn"  # 4 of 5: 0.7 % for a learner
    assert data["verdict"]["seeds"] == {**{str(s): "dead" for s in range(4)}, "4": "learned"}
    assert {f["severity"] for f in data["findings"]} <= set(dx.SEVERITIES)
    assert data["findings"][0]["severity"] == "fatal"  # most severe first


def test_diagnose_wants_one_trace_per_seed():
    with pytest.raises(ValueError, match="one trace per seed"):
        dx.diagnose([healthy_trace()], [0, 1])


def test_outcome_counts_dead_runs_as_not_learning():
    assert outcome_of(healthy_trace()).learned
    dead = outcome_of(dead_from(healthy_trace(), 4))
    assert dead.died
    assert dead.death_step == 4
    assert not dead.learned


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [(0, 10, 0.0, 0.278), (10, 10, 0.722, 1.0), (5, 10, 0.237, 0.763)],
)
def test_wilson_interval_matches_published_values(k, n, low, high):
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(low, abs=1e-3)
    assert hi == pytest.approx(high, abs=1e-3)


def test_remedy_factors_scale_the_learning_rate():
    from cellverify.experiments.verify import apply_remedy

    cell, train = apply_remedy(dx.REMEDIES["higher_learning_rate"], CellConfig(), TrainConfig())
    assert train.learning_rate == pytest.approx(1e-2)
    cell, _ = apply_remedy(dx.REMEDIES["elu_and_linear"], CellConfig(), TrainConfig())
    assert (cell.activation, cell.output_activation) == ("elu", "linear")


def test_every_cause_rules_trigger_is_a_finding_some_detector_emits():
    """A misspelled trigger would never fire; the names come from what the
    detectors declare (and check at run time) that they emit."""
    for rule in dx.CAUSE_RULES:
        assert rule.triggers <= set(dx.FINDING_NAMES), rule.name
        assert set(rule.remedies) <= set(dx.REMEDIES), rule.name
    assert set(dx.FINDING_NAMES) == {n for d in dx.DETECTORS for n in d.emits} | {
        dx.OUTCOME_VARIANCE
    }


def test_every_finding_triggers_some_cause():
    triggered = set().union(*(rule.triggers for rule in dx.CAUSE_RULES))
    assert set(dx.FINDING_NAMES) - triggered == set()


def test_a_detector_that_emits_an_undeclared_finding_is_a_kit_bug():
    liar = dx.Detector(dx.detect_zero_gradient, ("zero_logits",))
    with pytest.raises(RuntimeError, match="emitted 'zero_gradient', which it does not declare"):
        liar(dead_from(healthy_trace(), 3))


def test_the_fallback_cause_applies_only_when_nothing_else_explains_the_findings():
    relu = {"output_activation": "relu"}
    alone = dx.likely_causes({dx.OUTCOME_VARIANCE}, relu, {"optimizer": "adam"})
    assert [c.name for c in alone] == ["fragile_initialisation"]
    both = dx.likely_causes({dx.OUTCOME_VARIANCE, "zero_logits"}, relu, {"optimizer": "adam"})
    assert [c.name for c in both] == ["relu_before_softmax"]


# -- one run judged from its own evidence (docs/design.md, "Verdicts") -----------


def test_one_run_whose_rows_stay_nearly_uniform_is_called_will_not_learn():
    """The question's cell under SGD 0.1 on real prices: the gradient came
    back, but nearly every row stayed exactly uniform to the end."""
    start = EARLY - dx.UNIFORM_HOLD_UPDATES
    nearly = uniform_from(noisy_flat_trace(EARLY), start, dx.NEARLY_UNIFORM_SHARE)
    result = dx.diagnose([zero_gradient_at(nearly, [start])], [0])
    severity = {f.name: f.severity for f in result.findings if f.severity != "info"}
    assert severity == {"zero_logits": "fatal", "zero_gradient": "warning"}
    assert result.verdict.name == "will not learn"
    assert result.verdict.reason == "fatal on 1 of 1 seeds (zero_logits)"
    logits = next(f for f in result.findings if f.name == "zero_logits")
    assert f"at every step from {start}: too few rows carry a gradient" in logits.detail


def test_nearly_uniform_rows_held_one_update_too_few_are_not_dead_but_predict_failure():
    start = EARLY - dx.UNIFORM_HOLD_UPDATES + 1
    trace = uniform_from(noisy_flat_trace(EARLY), start, dx.NEARLY_UNIFORM_SHARE)
    symptom = dx.detect_zero_logits(trace)
    assert (symptom.severity, symptom.evidence["held"]) == (
        "warning",
        dx.UNIFORM_HOLD_UPDATES - 1,
    )
    verdict = dx.diagnose([trace], [0]).verdict
    assert (verdict.name, verdict.states) == ("will not learn", {0: "failing"})


def test_one_run_not_learned_with_one_uniform_row_will_not_learn_on_its_warning():
    """The question's cell under Adagrad 1e-3 on real prices, seed 100: one
    row of 200 exactly uniform once in 20 updates, the loss barely moving."""
    rows = np.zeros(EARLY + 1)
    rows[7] = 1 / 200
    trace = noisy_flat_trace(EARLY, uniform_rows=rows)
    result = dx.diagnose([trace], [100])
    logits = next(f for f in result.findings if f.name == "zero_logits")
    assert logits.severity == "warning"
    assert "these rows alone do not make the run dead" in logits.detail
    assert result.verdict.name == "will not learn"
    assert result.verdict.reason == (
        "failing on 1 of 1 seeds (not learned, showing zero_logits, which no configuration "
        "that learns showed on the labelled sets)"
    )


def test_the_same_run_without_a_uniform_row_is_too_early_to_tell():
    """The control: nothing but a slow loss says nothing about the configuration
    (the remedied cell under Adagrad 1e-3, which learns, looks the same at 20)."""
    result = dx.diagnose([noisy_flat_trace(EARLY)], [100])
    assert result.verdict.name == "too early to tell"


def test_a_run_that_learned_with_uniform_rows_is_at_risk_not_will_not_learn():
    trace = uniform_from(healthy_trace(EARLY), 3, 0.3)
    assert outcome_of(trace).learned
    verdict = dx.diagnose([trace], [0]).verdict
    assert (verdict.name, verdict.states) == ("at risk", {0: "learned"})
    assert "shows zero_logits" in verdict.reason


def test_failing_seeds_count_against_the_configuration_as_dead_ones_do():
    failing = uniform_from(noisy_flat_trace(EARLY), 5, 0.1)
    dead = dead_from(healthy_trace(EARLY), 0)
    all_failed = dx.diagnose([dead, dead, failing], [0, 1, 2]).verdict
    assert all_failed.name == "will not learn"
    assert all_failed.reason.startswith(
        "fatal on 2 of 3 seeds (zero_gradient, zero_logits); failing on 1 of 3 seeds"
    )
    beside_a_learner = dx.diagnose([healthy_trace(EARLY), failing, dead], [0, 1, 2]).verdict
    assert beside_a_learner.name == "at risk"
    assert beside_a_learner.states == {0: "learned", 1: "failing", 2: "dead"}


def test_a_cell_without_activation_statistics_never_shows_uniform_rows():
    """A user's cell that does not expose its activations records NaN rows."""
    trace = noisy_flat_trace(EARLY, uniform_rows=np.full(EARLY + 1, np.nan))
    assert dx.detect_zero_logits(trace) is None


def test_nearly_uniform_rows_in_a_run_that_already_learned_are_a_warning():
    """Its evaluation loss fell: the run has shown it is not dead (a run of
    the question's cell on real prices did, with 99 % of its rows uniform)."""
    trace = uniform_from(healthy_trace(EARLY), 0, dx.NEARLY_UNIFORM_SHARE)
    assert outcome_of(trace).learned
    assert dx.detect_zero_logits(trace).severity == "warning"


def test_rows_just_short_of_nearly_all_uniform_are_a_warning():
    trace = uniform_from(healthy_trace(EARLY), 0, dx.NEARLY_UNIFORM_SHARE - 0.01)
    assert dx.detect_zero_logits(trace).severity == "warning"


def test_uniform_rows_that_recover_before_the_end_are_a_warning():
    rows = uniform_from(healthy_trace(EARLY), 0, 1.0).uniform_rows
    rows[-1] = dx.NEARLY_UNIFORM_SHARE / 2
    symptom = dx.detect_zero_logits(healthy_trace(EARLY, uniform_rows=rows))
    assert (symptom.severity, symptom.evidence["held"]) == ("warning", None)


def test_every_row_uniform_at_the_end_is_fatal_at_once():
    trace = uniform_from(healthy_trace(EARLY), EARLY, 1.0)
    assert dx.detect_zero_logits(trace).severity == "fatal"


def test_a_zero_gradient_that_died_again_is_fatal_from_its_last_death():
    trace = dead_from(zero_gradient_at(healthy_trace(EARLY), [2, 3]), 10)
    symptom = dx.detect_zero_gradient(trace)
    assert (symptom.severity, symptom.evidence["step"]) == ("fatal", 2)
    assert symptom.message.startswith("the whole gradient is exactly 0 from step 10 to the end")


def test_a_monitor_probing_every_few_steps_holds_uniform_rows_between_its_probes():
    """Probes at 0 and 10, both with nearly every row uniform: held 10 updates."""
    every = 10
    nearly = uniform_from(noisy_flat_trace(every), 0, dx.NEARLY_UNIFORM_SHARE)
    symptom = dx.detect_zero_logits(probed_every(nearly, every))
    assert (symptom.severity, symptom.evidence["held"]) == ("fatal", every)


def test_the_first_updates_of_a_run_keep_their_rows_and_drop_the_evaluation():
    """How the calibration reads a label run's early updates (Trace.first)."""
    every = 5
    probed = probed_every(uniform_from(healthy_trace(EARLY), 15, 0.5), every)
    trace = dataclasses.replace(probed, eval_example_loss=np.ones((2, 8)))
    early = trace.first(10)
    assert (early.steps, early.train["train_steps"]) == (10, 10)
    for name in ("loss", "grad_norm", "grad_zero_fraction", "weight_norm", "uniform_rows",
                 "dead_fraction", "state_grad_norm", "measured"):  # fmt: skip
        np.testing.assert_array_equal(getattr(early, name), getattr(trace, name)[:11])
    np.testing.assert_array_equal(early.update_ratio, trace.update_ratio[:10])
    assert np.isnan(early.eval_loss).all() and early.eval_example_loss.shape == (2, 0)
    assert dx.detect_zero_logits(early) is None  # the rows went uniform at step 15
    assert dx.detect_zero_logits(trace.first(15)) is not None
    assert trace.first(10 * EARLY).steps == EARLY


def test_a_monitor_run_with_a_uniform_row_at_one_probe_will_not_learn():
    """The monitor has no evaluation batch: it judges on the evidence alone."""
    every = 10
    rows = np.zeros(EARLY + 1)
    rows[every] = 0.305
    trace = probed_every(healthy_trace(EARLY, uniform_rows=rows, eval_loss=(np.nan, np.nan)), every)
    verdict = dx.diagnose([trace], [0]).verdict
    assert (verdict.name, verdict.states) == ("will not learn", {0: "failing"})


def test_a_failing_seed_beside_a_learned_one_is_a_decided_failure_for_outcome_variance():
    failing = uniform_from(noisy_flat_trace(EARLY), 5, 0.1)
    result = dx.diagnose([healthy_trace(EARLY), failing], [0, 1])
    assert result.verdict.name == "at risk"
    variance = next(f for f in result.findings if f.name == dx.OUTCOME_VARIANCE)
    assert variance.evidence[0]["failed_seeds"] == [1]


def test_failing_comes_before_stalled_at_the_horizon():
    """A slow run that showed a uniform row is failing, not only stalled."""
    steps = DECISION_HORIZON
    stalled = noisy_flat_trace(steps)
    assert dx.diagnose([stalled], [0]).verdict.states == {0: "stalled"}
    rows = np.zeros(steps + 1)
    rows[40] = 0.01
    verdict = dx.diagnose([noisy_flat_trace(steps, uniform_rows=rows)], [0]).verdict
    assert (verdict.name, verdict.states) == ("will not learn", {0: "failing"})
