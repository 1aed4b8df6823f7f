"""The calibration's scoring, on constructed traces: configurations labelled by
their label seeds, verdicts on one seed and on several, and one run judged
as itself against its own long run (docs/verdicts.md, "One run")."""

from __future__ import annotations

import pytest

from cellverify.tools import calibrate
from cellverify.vocabulary import PORTFOLIO_TASKS

from .traces import dead_from, healthy_trace, noisy_flat_trace, uniform_from

LEARNER, FAILURE = calibrate.Labelled("learner"), calibrate.Labelled("failure")
SEEDS = (100, 101)


def _runs_file(data: str, *, label_learned: dict[str, int], runs: dict[tuple[str, int], tuple]):
    """Traces keyed as the runs file keys them.  ``label_learned``: how many
    label seeds of each configuration learned; ``runs``: each diagnosis
    seed's (short run dead?, own long run learned?)."""
    traces = {}
    for config in (LEARNER, FAILURE):
        for task in PORTFOLIO_TASKS:
            for i, seed in enumerate(calibrate.LABEL_SEEDS):
                learns = i < label_learned[config.name]
                trace = healthy_trace(20) if learns else dead_from(healthy_trace(20), 0)
                traces[calibrate._key(data, config.name, task, "label", 200, seed)] = trace
            for seed in SEEDS:
                dead_early, learned = runs[config.name, seed]
                for budget in calibrate.DIAGNOSIS_BUDGETS:
                    if budget < calibrate.LABEL_BUDGET:
                        short = healthy_trace(budget)
                        trace = dead_from(short, 0) if dead_early else short
                    else:
                        trace = healthy_trace(20) if learned else dead_from(healthy_trace(20), 0)
                    traces[calibrate._key(data, config.name, task, "diagnose", budget, seed)] = (
                        trace
                    )
    return traces


@pytest.fixture
def two_configurations(monkeypatch):
    monkeypatch.setattr(calibrate, "LABELLED_SET", (LEARNER, FAILURE))
    monkeypatch.setattr(calibrate, "REAL_PRICE_EXTRA", ())


def test_a_dead_start_on_a_learner_is_reported_apart_from_a_false_will_not_learn(
    two_configurations,
):
    traces = _runs_file(
        "sp500",
        label_learned={"learner": 4, "failure": 0},
        # The learner's seed 100 started dead and stayed so (a dead start);
        # its seed 101 looked dead early but learned (a false alarm).
        runs={
            ("learner", 100): (True, False),
            ("learner", 101): (True, True),
            ("failure", 100): (True, False),
            ("failure", 101): (True, False),
        },
    )
    result = calibrate.score(traces, SEEDS, data="sp500")
    one_run = result["one_run"]["20 updates"]
    assert one_run["will_not_learn_on_learning_config"] == 2 * len(PORTFOLIO_TASKS)
    assert one_run["of_which_dead_start"] == len(PORTFOLIO_TASKS)
    assert one_run["of_which_run_learned"] == len(PORTFOLIO_TASKS)
    assert one_run["called_will_not_learn_of_failing"] == 2 * len(PORTFOLIO_TASKS)
    tasks = len(PORTFOLIO_TASKS)
    # Label runs' first 20 updates: the failure's 5 and the learner's one dead
    # seed showed uniform rows; the learner's 4 that learned did not.
    early = result["predictive_warnings"]["supervised"]["20 updates"]
    assert early == {
        "label_runs": 10,
        "showed": 6,
        "showed_of_learning_configs": 1,
        "showed_and_run_learned": 0,
        "failing": 0,  # each of them dead, none failing
        "failing_of_learning_configs": 0,
        "failing_and_run_learned": 0,
        "quiet": 4,
        "quiet_of_learning_configs": 4,
    }
    assert result["predictive_warnings"]["supervised"]["200 updates"] == early
    assert one_run["recall_by_seed"] == {"100": f"{tasks}/{tasks}", "101": f"{tasks}/{tasks}"}
    one_seed = result["summary"]["1 seeds, 20 updates"]
    assert (one_seed["will_not_learn_recall"], one_seed["false_will_not_learn"]) == (1.0, 2)
    # The failure never learned on its label seeds; the learner did on 4 of 5.
    assert (one_seed["never_learned_configs"], one_seed["flagged_of_never_learned"]) == (
        tasks,
        tasks,
    )
    assert one_seed["always_learned_configs"] == 0


def test_real_price_runs_are_keyed_apart_and_synthetic_keys_keep_their_form():
    assert calibrate._key("synthetic", "as-asked", "portfolio", "label", 200, 0) == (
        "as-asked|portfolio|label|200|0"
    )
    assert calibrate._key("sp500", "as-asked", "portfolio", "label", 200, 0).startswith("sp500|")


def test_a_runs_file_without_the_10_update_runs_is_scored_at_the_budgets_it_holds(
    two_configurations,
):
    every_run_dead = {(c, s): (True, False) for c in ("learner", "failure") for s in SEEDS}
    traces = _runs_file(
        "synthetic", label_learned={"learner": 5, "failure": 0}, runs=every_run_dead
    )
    older = {key: trace for key, trace in traces.items() if "|diagnose|10|" not in key}
    assert calibrate.score(older, SEEDS)["budgets"] == [20, 200]


def test_real_prices_keep_closes_only_and_at_most_their_assets():
    pytest.importorskip("skfolio")
    cell, train = calibrate.Labelled("as-asked").configs("supervised", "sp500")
    assert (cell.features, cell.assets, train.data) == (1, 15, "sp500")


def test_a_label_run_failing_early_is_counted_apart_from_a_dead_one():
    """Read at 20 updates: a uniform row without a death is failing; a
    uniform row that comes only at update 25 is not seen yet."""
    failing = uniform_from(noisy_flat_trace(30), 5, 0.1)
    late = uniform_from(noisy_flat_trace(30), 25, 0.1)
    dead = dead_from(healthy_trace(30), 0)
    assert calibrate._early_state(failing, 20) == (True, "failing")
    assert calibrate._early_state(late, 20) == (False, "undecided")
    assert calibrate._early_state(dead, 20) == (True, "dead")
    counts = calibrate._warning_counts(
        [
            (0, calibrate._early_state(failing, 20), True),
            (4, calibrate._early_state(dead, 20), False),
        ]
    )
    assert (counts["showed"], counts["failing"], counts["failing_and_run_learned"]) == (2, 1, 1)
    assert (counts["showed_of_learning_configs"], counts["failing_of_learning_configs"]) == (1, 0)
