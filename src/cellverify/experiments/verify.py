"""A configuration diagnosed across seeds, and its remedies verified by
re-running them on the same seeds (:func:`diagnose_and_verify`, what
``cellverify diagnose`` runs).

Trains through :mod:`cellverify.execution`; what counts as learning is
:mod:`cellverify.diagnosis.outcome`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cellverify.config import CellConfig, TrainConfig
from cellverify.contracts import Params, cell_from_dict
from cellverify.diagnosis import Diagnosis, Remedy, diagnose
from cellverify.diagnosis.outcome import count_outcomes
from cellverify.execution import Executor, LocalExecutor
from cellverify.trace import Trace
from cellverify.training.runs import run_jobs, start_here, start_worker

__all__ = [
    "DIAGNOSE_PROBE_EVERY",
    "DiagnosisReport",
    "RemedyResult",
    "Tally",
    "apply_remedy",
    "diagnose_and_verify",
    "run_seeds",
    "tally",
    "verify_remedies",
]


@dataclass(frozen=True)
class Tally:
    """How many seeds learned and died, and the verdict."""

    seeds: int
    learned: int
    died: int
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "seeds": self.seeds,
            "learned": self.learned,
            "died": self.died,
            "verdict": self.verdict,
        }


def tally(diagnosis: Diagnosis) -> Tally:
    count = count_outcomes(diagnosis.outcomes)
    return Tally(count.runs, count.learned, count.died, diagnosis.verdict.name)


@dataclass(frozen=True)
class RemedyResult:
    """A remedy re-run over the same seeds, with its own diagnosis."""

    remedy: Remedy
    before: Tally
    after: Tally
    diagnosis: Diagnosis

    @property
    def verified(self) -> bool:
        """The re-run's verdict is ``healthy``: nothing fatal on any seed, and
        every seed decided so far learned."""
        return self.after.verdict == "healthy"

    def to_dict(self) -> dict[str, Any]:
        return {
            "remedy": self.remedy.to_dict(),
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
            "verified": self.verified,
            "remaining_findings": [f.name for f in self.diagnosis.findings],
        }


def apply_remedy(
    remedy: Remedy, cell: CellConfig | Params, train: TrainConfig
) -> tuple[CellConfig | Params, TrainConfig]:
    """The configurations with ``remedy``'s changes (learning-rate entries are factors)."""
    changes = dict(remedy.train)
    if "learning_rate" in changes:
        changes["learning_rate"] = train.learning_rate * float(changes["learning_rate"])
    return cell.replace(**remedy.cell), train.replace(**changes)


#: Steps between activation probes in a diagnosis run: the first, every
#: tenth and the last.  The probe is most of the recording cost; gradient
#: statistics are still taken every step, and the findings that need
#: activations (dead units, zero logits) read the probed steps.
DIAGNOSE_PROBE_EVERY = 10


def run_seeds(
    factory: str,
    cell: CellConfig | Params,
    train: TrainConfig,
    seeds: Sequence[int],
    *,
    executor: Executor | None = None,
    workers: int = 1,
    fast: bool = True,
    probe_every: int = DIAGNOSE_PROBE_EVERY,
    on_done: Callable[[int, int], None] | None = None,
) -> list[Trace]:
    """Train once per seed (the seed set on both the cell and the run)."""
    jobs = [(factory, cell.replace(seed=s), train) for s in seeds]
    return run_seeds_of(jobs, executor, workers, fast, probe_every, on_done)


def run_seeds_of(
    jobs: Sequence[tuple[str, CellConfig | Params, TrainConfig]],
    executor: Executor | None,
    workers: int,
    fast: bool,
    probe_every: int,
    on_done: Callable[[int, int], None] | None,
) -> list[Trace]:
    """Train each ``(factory, cell, train)``, the cell's seed set on the run too."""
    seeded = [(spec, cell, train.replace(seed=cell.seed)) for spec, cell, train in jobs]
    return run_jobs(
        seeded,
        executor=executor,
        workers=workers,
        fast=fast,
        probe_every=probe_every,
        on_done=on_done,
    )


def verify_remedies(
    diagnosis: Diagnosis,
    factory: str,
    *,
    executor: Executor | None = None,
    workers: int = 1,
    fast: bool = True,
    probe_every: int = DIAGNOSE_PROBE_EVERY,
    on_done: Callable[[int, int], None] | None = None,
) -> list[RemedyResult]:
    """Re-run every proposed remedy over the diagnosis's seeds, all the runs
    of all the remedies as one batch of jobs."""
    cell = cell_from_dict(diagnosis.cell).replace(seed=0)
    train = TrainConfig.from_dict(diagnosis.train).replace(seed=0)
    remedies = diagnosis.remedies()
    jobs = []
    for remedy in remedies:
        fixed_cell, fixed_train = apply_remedy(remedy, cell, train)
        # One cell configuration per seed, the remedy's changes kept.
        jobs += [(factory, fixed_cell.replace(seed=s), fixed_train) for s in diagnosis.seeds]
    traces = run_seeds_of(jobs, executor, workers, fast, probe_every, on_done)
    before = tally(diagnosis)
    n = len(diagnosis.seeds)
    results = []
    for i, remedy in enumerate(remedies):
        after = diagnose(traces[i * n : (i + 1) * n], diagnosis.seeds)
        results.append(RemedyResult(remedy, before, tally(after), after))
    return results


@dataclass(frozen=True)
class DiagnosisReport:
    """What :func:`diagnose_and_verify` found: the runs, their diagnosis,
    and each proposed remedy re-run (none when not verified)."""

    traces: list[Trace]
    diagnosis: Diagnosis
    remedies: list[RemedyResult]

    def to_dict(self) -> dict[str, Any]:
        """The report ``cellverify diagnose --json`` writes (docs/design.md,
        "The diagnosis report")."""
        return {
            "diagnosis": self.diagnosis.to_dict(),
            "remedies": [r.to_dict() for r in self.remedies],
        }


def diagnose_and_verify(
    factory: str,
    cell: CellConfig | Params,
    train: TrainConfig,
    seeds: Sequence[int],
    *,
    executor: Executor | None = None,
    workers: int = 1,
    fast: bool = True,
    verify: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
) -> DiagnosisReport:
    """Train the configuration once per seed, diagnose the runs, then re-run
    every remedy the diagnosis proposes on the same seeds (unless not
    ``verify``).

    Everything runs on ``executor`` (default: ``workers`` local processes),
    which loads the factory first, so that a bad one fails before any run.
    ``on_progress(done, total)`` counts every run: the seeds', then the
    remedies' too, once the diagnosis has proposed them.
    """
    if executor is None:
        with LocalExecutor(workers) as local:
            return diagnose_and_verify(
                factory, cell, train, seeds, executor=local, fast=fast, verify=verify,
                on_progress=on_progress,
            )  # fmt: skip
    seeds = list(seeds)
    counted = [0, len(seeds)]  # runs done before this batch, runs in all

    def on_done(done: int, total: int) -> None:
        if on_progress is not None:
            on_progress(counted[0] + done, counted[1])

    executor.start(start_worker, factory, here=start_here)
    traces = run_seeds(factory, cell, train, seeds, executor=executor, fast=fast, on_done=on_done)
    diagnosis = diagnose(traces, seeds)
    results: list[RemedyResult] = []
    if verify and diagnosis.remedies():
        counted[:] = [len(seeds), len(seeds) * (1 + len(diagnosis.remedies()))]
        results = verify_remedies(diagnosis, factory, executor=executor, fast=fast, on_done=on_done)
    return DiagnosisReport(traces, diagnosis, results)
