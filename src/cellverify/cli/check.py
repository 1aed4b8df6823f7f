"""``cellverify check`` and ``cellverify mutants``: the invariants, and what catches what."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from typing import Any

from cellverify.checks.draws.profiles import PROFILES
from cellverify.cli.codes import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from cellverify.cli.options import (
    add_cell_option,
    add_set_option,
    check_outputs,
    parse_sets,
    pinned_from_args,
    quiet_tensorflow,
    validate_portfolio_pins,
)
from cellverify.cli.progress import Progress
from cellverify.config import PRESETS
from cellverify.errors import InvalidConfig
from cellverify.model.factory import DEFAULT_FACTORY
from cellverify.render.outputs import write_json

__all__ = ["add_parsers"]


def _profile(args: argparse.Namespace) -> str:
    from cellverify.checks.draws.profiles import default_profile

    profile = args.profile or default_profile()
    if profile not in PROFILES:  # argparse checks --profile; this is the env var
        raise InvalidConfig("check", "profile", f"one of {', '.join(PROFILES)}", profile)
    return profile


def _progress(bar: Progress, total: int, parallel: bool) -> Callable[[str, int], None]:
    """Invariants finished, of ``total``: in parallel each call is one that
    finished; run here, each call is an example of the one now running."""
    seen: list[str] = []

    def report(name: str, examples: int) -> None:
        if name not in seen:
            seen.append(name)
        done = len(seen) if parallel else len(seen) - 1
        bar(done, total, "" if parallel else f"{name}: example {examples}")

    return report


def _jobs(args: argparse.Namespace) -> int:
    from cellverify.execution import default_workers as default_jobs

    jobs = default_jobs() if args.jobs is None else args.jobs
    if jobs < 1:
        raise InvalidConfig("check", "jobs", "at least 1", jobs)
    return jobs


def cmd_check(args: argparse.Namespace) -> int:
    """Run every invariant through Hypothesis against a cell factory."""
    profile = _profile(args)
    named = args.cell != DEFAULT_FACTORY  # may be a spec'd cell with keywords of its own
    pinned = pinned_from_args(
        args.preset, parse_sets(args.set, any_keyword=named), validate=not named
    )
    jobs = _jobs(args)
    check_outputs(args)
    quiet_tensorflow()
    from cellverify.checks.runs.suite import run_suite, select_invariants, start_check
    from cellverify.execution import LocalExecutor
    from cellverify.model.factory import load_factory
    from cellverify.render.report import render_check

    modules = args.invariants or ()
    bar = Progress("check", "invariants")
    # In parallel, this process never imports TensorFlow: the workers list
    # the invariants and try the factory as they start (start_check).  With
    # one job it all runs here, each example reported.
    try:
        with LocalExecutor(jobs) as executor:
            started = start_check(executor, args.cell, modules)
            if started["spec"] is None:  # a portfolio cell: its configuration's rules
                validate_portfolio_pins(pinned)
            regions = started["invariants"]
            total = len(select_invariants(args.select, regions))  # an unmatched -k fails first
            result = run_suite(
                load_factory(args.cell) if jobs == 1 else None,
                cell=args.cell,
                profile=profile,
                select=args.select,
                pinned=pinned,
                modules=modules,
                on_progress=_progress(bar, total, jobs > 1),
                executor=executor if jobs > 1 else None,
                regions=regions,
            )
            bar(total, total)
    finally:
        bar.close()
    report = dataclasses.replace(result, spec=started["spec"]).to_dict()
    print(render_check(report))
    if args.json:
        write_json(args.json, report)
    if result.errored:  # the search itself failed: no verdict either way
        return EXIT_USAGE
    return EXIT_OK if result.passed else EXIT_FAILED


def cmd_mutants(args: argparse.Namespace) -> int:
    """Print the kill matrix; exit 1 when an invariant is caught by no mutant."""
    profile = _profile(args) if args.profile else None
    check_outputs(args)
    quiet_tensorflow()
    from cellverify.checks.judges.catalog import load_invariant_modules
    from cellverify.checks.mutants.kill_matrix import kill_matrix
    from cellverify.checks.runs.suite import select_invariants
    from cellverify.render.report import render_kill_matrix

    load_invariant_modules(args.invariants or ())
    names = select_invariants(args.select)
    matrix = kill_matrix(names, profile=profile)
    report = matrix.to_dict()
    print(render_kill_matrix(report))
    if args.json:
        write_json(args.json, report)
    return EXIT_OK if matrix.complete else EXIT_FAILED


_PROFILE_HELP = "Hypothesis profile (default: $HYPOTHESIS_PROFILE, else ci under $CI, else dev)"
_MUTANTS_PROFILE_HELP = (
    "also search generated cases with this Hypothesis profile where the mutant's own case "
    "is not caught (default: the mutant's own case only)"
)


def _add_common(parser: argparse.ArgumentParser, profile_help: str = _PROFILE_HELP) -> None:
    parser.add_argument("--profile", choices=PROFILES, default=None, help=profile_help)
    parser.add_argument(
        "-k",
        dest="select",
        action="append",
        metavar="NAME",
        help="only invariants whose name contains NAME (repeatable)",
    )
    parser.add_argument(
        "--invariants",
        action="append",
        metavar="MODULE",
        help="import MODULE first: it registers invariants (and mutants) of its own (repeatable)",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the report as JSON")


def add_parsers(sub: Any) -> None:
    check = sub.add_parser(
        "check", help="run every invariant on generated configurations against a cell factory"
    )
    add_cell_option(check, "the cell factory to check (default: the shipped cell)")
    _add_common(check)
    check.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=None,
        help="pin the preset's cell and task; seeds, inputs, optimizer and rate stay drawn",
    )
    add_set_option(check)
    check.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="worker processes, one invariant each at a time (default: one per core)",
    )
    check.set_defaults(func=cmd_check)

    mutants = sub.add_parser(
        "mutants",
        help="the kill matrix: which invariant catches which deliberately broken cell",
    )
    _add_common(mutants, _MUTANTS_PROFILE_HELP)
    mutants.set_defaults(func=cmd_mutants)
