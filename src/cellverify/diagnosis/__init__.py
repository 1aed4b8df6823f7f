"""Why a configuration is fragile: symptoms read off traces, their likely causes,
and the remedies to verify by re-running (NumPy only: no TensorFlow here).

Each detector reads one :class:`~cellverify.trace.Trace` and returns a
:class:`Symptom` with its severity and evidence (layer, step, number,
threshold and where the threshold comes from) or nothing.  Severities:

* ``fatal`` - the run cannot learn from here (the whole gradient exactly 0
  to the end, every output row exactly uniform at the end or nearly every
  one for UNIFORM_HOLD_UPDATES updates to the end, a non-finite loss);
* ``warning`` - learning is impaired (dead units, a tiny update ratio, a
  stalled loss);
* ``info`` - worth knowing, impairs nothing by itself.

:func:`diagnose` runs every detector on the traces of several seeds, decides
each seed (dead, failing, learned, stalled or undecided), adds the across-seed symptom
(outcome variance, only among decided seeds), gives the configuration one
:class:`Verdict`, and maps the findings to causes and remedies.  Re-running
the remedies is the job of :mod:`cellverify.experiments.verify`.  docs/design.md,
"Verdicts", says how the rules were measured.

The diagnosis is split by stage: :mod:`~cellverify.diagnosis.findings`
(thresholds, vocabularies, result types), :mod:`~cellverify.diagnosis.detectors`,
:mod:`~cellverify.diagnosis.causes`, :mod:`~cellverify.diagnosis.verdict` and
:mod:`~cellverify.diagnosis.diagnose`; this package re-exports their public names.
"""

from __future__ import annotations

from cellverify.diagnosis.causes import (
    CAUSE_RULES,
    REMEDIES,
    CauseRule,
    likely_causes,
)
from cellverify.diagnosis.detectors import (
    DETECTORS,
    FINDING_NAMES,
    detect_dead_units,
    detect_exploding_gradient,
    detect_optimizer_step,
    detect_saturated_softmax,
    detect_saturated_tanh,
    detect_stalled_loss,
    detect_update_ratio,
    detect_vanishing_gradient,
    detect_vanishing_through_time,
    detect_zero_gradient,
    detect_zero_gradient_entries,
    detect_zero_logits,
)
from cellverify.diagnosis.diagnose import (
    Diagnosis,
    diagnose,
)
from cellverify.diagnosis.findings import (
    DEAD_UNIT_SHARE,
    EXPLODING_RATIO,
    FALSE_ALARM_RISK,
    LEARNER_DEATH_RATE,
    LEARNER_STALL_RATE,
    NEARLY_UNIFORM_SHARE,
    OUTCOME_VARIANCE,
    PREDICTIVE_WARNINGS,
    SATURATED_UNIT_SHARE,
    SEED_STATES,
    SEVERITIES,
    STEP_GAIN_LIMIT,
    UNIFORM_HOLD_UPDATES,
    UPDATE_RATIO_RANGE,
    VANISHING_FIRST_NORM,
    VANISHING_RATIO,
    VANISHING_TIME_RATIO,
    VERDICTS,
    Cause,
    Detector,
    Finding,
    Remedy,
    SeedState,
    Severity,
    Symptom,
    Verdict,
    VerdictName,
)
from cellverify.diagnosis.verdict import (
    binomial_tail,
    rules_out_learning,
    seed_state,
)
from cellverify.trace import SATURATED_MAX_WEIGHT

__all__ = [
    "CAUSE_RULES",
    "DEAD_UNIT_SHARE",
    "DETECTORS",
    "EXPLODING_RATIO",
    "FALSE_ALARM_RISK",
    "FINDING_NAMES",
    "LEARNER_DEATH_RATE",
    "LEARNER_STALL_RATE",
    "NEARLY_UNIFORM_SHARE",
    "OUTCOME_VARIANCE",
    "PREDICTIVE_WARNINGS",
    "REMEDIES",
    "SATURATED_MAX_WEIGHT",
    "SATURATED_UNIT_SHARE",
    "SEED_STATES",
    "SEVERITIES",
    "STEP_GAIN_LIMIT",
    "UNIFORM_HOLD_UPDATES",
    "UPDATE_RATIO_RANGE",
    "VANISHING_FIRST_NORM",
    "VANISHING_RATIO",
    "VANISHING_TIME_RATIO",
    "VERDICTS",
    "Cause",
    "CauseRule",
    "Detector",
    "Diagnosis",
    "Finding",
    "Remedy",
    "SeedState",
    "Severity",
    "Symptom",
    "Verdict",
    "VerdictName",
    "binomial_tail",
    "detect_dead_units",
    "detect_exploding_gradient",
    "detect_optimizer_step",
    "detect_saturated_softmax",
    "detect_saturated_tanh",
    "detect_stalled_loss",
    "detect_update_ratio",
    "detect_vanishing_gradient",
    "detect_vanishing_through_time",
    "detect_zero_gradient",
    "detect_zero_gradient_entries",
    "detect_zero_logits",
    "diagnose",
    "likely_causes",
    "rules_out_learning",
    "seed_state",
]
