"""The calibration's tables (``python -m cellverify.calibrate``): precision and
recall of "will not learn" over configurations, and each run judged as
itself, from the rows :mod:`cellverify.tools.calibrate` scores."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["column", "one_run_summary", "summary"]


def column(seeds: int, budget: int) -> str:
    return f"verdict_{seeds}s_{budget}"


def summary(
    rows: Sequence[Mapping[str, Any]], counts: Sequence[int], budgets: Sequence[int]
) -> dict[str, Any]:
    """Per number of seeds and budget: precision and recall of "will not
    learn" over configurations, and what the learners were called."""
    out: dict[str, Any] = {}
    learns = [r for r in rows if r["learns"]]
    fails = [r for r in rows if not r["learns"]]
    always = [r for r in rows if r["learned"] == r["of"]]
    never = [r for r in rows if r["learned"] == 0]
    for n in counts:
        for budget in budgets:
            key = column(n, budget)
            called = [r for r in rows if r[key] == "will not learn"]
            hit = [r for r in called if not r["learns"]]
            verdicts: dict[str, dict[str, int]] = {"learns": {}, "does not learn": {}}
            for r in rows:
                group = verdicts["learns" if r["learns"] else "does not learn"]
                group[r[key]] = group.get(r[key], 0) + 1
            failed = [r for r in fails if r["fails"]]
            out[f"{n} seeds, {budget} updates"] = {
                "will_not_learn_precision": len(hit) / len(called) if called else None,
                "will_not_learn_recall": len(hit) / len(fails) if fails else None,
                "flagged": len(hit),
                "failed_configs": len(failed),
                "flagged_of_failed": sum(r[key] == "will not learn" for r in failed),
                "undetermined_configs": len(fails) - len(failed),
                "false_will_not_learn": sum(r[key] == "will not learn" for r in learns),
                "will_not_learn_on_always_learned": sum(r[key] == "will not learn" for r in always),
                "never_learned_configs": len(never),
                "flagged_of_never_learned": sum(r[key] == "will not learn" for r in never),
                "learners_called_at_risk": sum(r[key] == "at risk" for r in learns),
                "learners_too_early": sum(r[key] == "too early to tell" for r in learns),
                "learning_configs": len(learns),
                "always_learned_configs": len(always),
                "failing_configs": len(fails),
                "verdicts": verdicts,
            }
    return out


def one_run_summary(
    runs: Sequence[Mapping[str, Any]], budgets: Sequence[int], label_seeds: int
) -> dict[str, Any]:
    """Each diagnosis seed's short run judged as itself, against its
    configuration's label and against its own run to LABEL_BUDGET updates:
    a "will not learn" on a configuration that learns is a dead start when
    that run did not learn either, a false alarm when it did."""
    out: dict[str, Any] = {}
    majority = label_seeds / 2
    for budget in budgets:
        key = f"verdict_{budget}"
        learns = [r for r in runs if r["config_learned"] > majority]
        fails = [r for r in runs if r["config_learned"] <= majority]
        called_learner = [r for r in learns if r[key] == "will not learn"]
        out[f"{budget} updates"] = {
            "runs": len(runs),
            "runs_of_failing_configs": len(fails),
            "called_will_not_learn_of_failing": sum(r[key] == "will not learn" for r in fails),
            "runs_of_learning_configs": len(learns),
            "will_not_learn_on_learning_config": len(called_learner),
            "of_which_dead_start": sum(r["run_learned"] is False for r in called_learner),
            "of_which_run_learned": sum(r["run_learned"] is True for r in called_learner),
            "will_not_learn_on_always_learned": sum(
                r[key] == "will not learn" for r in learns if r["config_learned"] == label_seeds
            ),
            "runs_that_learned_called_will_not_learn": sum(
                r["run_learned"] is True and r[key] == "will not learn" for r in runs
            ),
            "runs_that_did_not_learn": sum(r["run_learned"] is False for r in runs),
            "runs_that_did_not_learn_called_will_not_learn": sum(
                r["run_learned"] is False and r[key] == "will not learn" for r in runs
            ),
            "recall_by_seed": _recall_by_seed(fails, key),
        }
    return out


def _recall_by_seed(fails: Sequence[Mapping[str, Any]], key: str) -> dict[str, str]:
    """Each diagnosis seed as the one seed diagnosed: how many of the
    configurations that do not learn its run alone calls "will not learn"."""
    seeds = sorted({r["seed"] for r in fails})
    out = {}
    for seed in seeds:
        mine = [r for r in fails if r["seed"] == seed]
        out[str(seed)] = f"{sum(r[key] == 'will not learn' for r in mine)}/{len(mine)}"
    return out
