"""Every invariant claimed on any inputs, on the shipped cell, fed raw prices
scaled by 1e-4 and by 1e4 - the magnitudes at which fixed absolute tolerances
failed a correct cell.  Run in a fresh process so that TensorFlow's kernels
can be chosen by the environment (``TF_ENABLE_ONEDNN_OPTS``)::

    python -m tests.scaled_inputs --examples 100 --json out.json   # more than the test's
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from hypothesis import strategies as st

from cellverify.cell import conv_rnn_cell
from cellverify.checks.cases.case import Case
from cellverify.checks.cases.regions import Region
from cellverify.checks.draws.covering_cases import covering_cases
from cellverify.checks.draws.strategies import cell_configs, train_configs
from cellverify.checks.judges.invariants import INVARIANTS
from cellverify.checks.judges.registry import Invariant
from cellverify.checks.runs.search import search_seed
from cellverify.checks.runs.suite import run_invariant
from cellverify.data import InputSpec

#: Examples per invariant in each of the two runs (oneDNN on and off): the
#: 14 covering cases (the largest categorical dimension's 7 values at each
#: of the 2 scales, so every value of every dimension at each scale, by
#: construction) and 2 drawn.  (Four times ci's 25 in each run took 317 s of
#: CI's 903 s test command on an AVX-512 machine; twice ci took 446 s on an
#: AVX2-only one, the slowest test of a 25-minute CI there; ci's 25 took
#: 123 s of a 1,047 s CI here on 2026-12-06, near the 20-minute budget.)
EXAMPLES = 16
SCALES = (1e-4, 1e4)


def scaled_cases(region: Region) -> st.SearchStrategy[Case]:
    return st.builds(
        Case,
        cell=cell_configs(region=region),
        train=train_configs(region=region),
        inputs=st.builds(
            InputSpec,
            kind=st.just("scaled"),
            scale=st.sampled_from(SCALES),
            seed=st.integers(0, 2**16),
        ),
    )


def scaled_covering_cases(invariant: Invariant) -> list[Case]:
    """At each scale, cases that reach every value of every other dimension
    the invariant's region allows, by construction: its covering cases with
    their inputs scaled.  Random draws alone left values out by chance (in
    one run, ``simplex_output`` never drew a SELU conv or an ELU last conv)."""
    cases = []
    for i, scale in enumerate(SCALES):
        covering = covering_cases(
            region=invariant.region,
            adversarial_inputs=True,
            seed=search_seed(invariant.name) + i,  # other pairings at each scale
            min_batch=invariant.min_batch,
        )
        for case in covering:
            cases.append(Case(case.cell, case.train, InputSpec("scaled", scale, case.inputs.seed)))
    return cases


def claimed_on_any_inputs() -> list[str]:
    return [name for name, inv in INVARIANTS.items() if inv.adversarial_inputs]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=EXAMPLES)
    parser.add_argument("--json", required=True)
    args = parser.parse_args(argv)
    from hypothesis import settings

    from cellverify.checks.draws.profiles import register_profiles

    register_profiles()
    settings.register_profile(
        "scaled", parent=settings.get_profile("ci"), max_examples=args.examples
    )
    results = []
    for name in claimed_on_any_inputs():
        invariant = INVARIANTS[name]
        result = run_invariant(
            invariant,
            conv_rnn_cell,
            profile="scaled",
            strategy=scaled_cases(invariant.region),
            covering=scaled_covering_cases(invariant),
        )
        results.append(result.to_dict())
        print(f"{name}: {result.status} ({result.examples} examples)", file=sys.stderr, flush=True)
    with open(args.json, "w") as f:
        json.dump(
            {"onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"), "results": results}, f
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
