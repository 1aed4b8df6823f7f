"""``cellverify compare``, ``diagnose`` and ``sweep``: the commands that train."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cellverify.cli.codes import EXIT_OK
from cellverify.cli.options import (
    TRAIN_OPTIONS,
    add_config_options,
    add_fast_options,
    add_set_option,
    add_training_options,
    check_outputs,
    configs_for_cell,
    configs_from_args,
    fit_to_data,
    parse_sets,
    progress,
    quiet_tensorflow,
)
from cellverify.config import PRESETS, CellConfig, preset
from cellverify.errors import InvalidConfig
from cellverify.model.factory import DEFAULT_FACTORY
from cellverify.render.outputs import check_writable, write_json
from cellverify.vocabulary import TASKS

__all__ = ["add_parsers"]


def cmd_compare(args: argparse.Namespace) -> int:
    """Train AS_ASKED and REMEDIED side by side on a short run and print both traces."""
    names = args.presets or ["as-asked", "remedied"]
    overrides = {
        "train_steps": args.train_steps,
        "batch_size": args.batch_size,
        "steps": args.steps,
        "task": args.task,
        "data": args.data,
    }
    runs = {}
    for name in names:
        p = preset(name)
        cell, train_cfg = p.with_seed(args.seed)
        train_cfg = train_cfg.replace(**{k: v for k, v in overrides.items() if v})
        runs[name] = fit_to_data(cell, train_cfg, set())
    check_outputs(args)
    quiet_tensorflow()
    from cellverify.model.cell import conv_rnn_cell
    from cellverify.render.report import render_trace_comparison
    from cellverify.training.trainer import train

    traces = {
        name: train(conv_rnn_cell, cell, t, on_step=progress(name), fast=args.fast)
        for name, (cell, t) in runs.items()
    }
    print(render_trace_comparison(traces))
    if args.json:
        write_json(args.json, {name: t.to_dict() for name, t in traces.items()})
    return EXIT_OK


def cmd_diagnose(args: argparse.Namespace) -> int:
    """Train across seeds, report symptoms and causes, verify remedies by re-running
    (:func:`cellverify.experiments.verify.diagnose_and_verify`)."""
    cell, train_cfg = configs_from_args(args)
    sets = parse_sets(args.set, any_keyword=args.cell != DEFAULT_FACTORY)
    if args.seeds < 1:
        raise InvalidConfig("diagnose", "seeds", "at least 1", args.seeds)
    check_outputs(args)
    seeds = list(range(args.seeds))
    quiet_tensorflow()
    from cellverify.execution import make_executor
    from cellverify.experiments.verify import diagnose_and_verify
    from cellverify.render.report import render_diagnosis

    with make_executor(args.scheduler, args.jobs) as executor:
        config, train_cfg = configs_for_cell(executor, args, cell, train_cfg, sets)
        result = diagnose_and_verify(
            args.cell, config, train_cfg, seeds, executor=executor, fast=args.fast,
            verify=not args.no_verify, on_progress=progress("diagnose"),
        )  # fmt: skip
    report = result.to_dict()
    print(render_diagnosis(report))
    if args.json:
        write_json(args.json, report)
    if args.plot:
        from cellverify.render.plots import plot_traces

        plot_traces(result.traces, seeds, args.plot, f"{args.preset}: loss and gradient norms")
    return EXIT_OK


def cmd_sweep(args: argparse.Namespace) -> int:
    """Map the probability of learning over a grid, or merge shards' reports
    (:func:`cellverify.experiments.sweep.run_sweep`, then ``aggregate``)."""
    from cellverify.experiments.sweep import aggregate

    check_outputs(args)
    if args.merge:
        reports = _merged(args)
    else:
        raw = _sweep_run(args)
        if raw["shard"] != [1, 1]:  # a shard's raw runs are merged later
            _write_shard(args, raw)
            return EXIT_OK
        reports = [raw]
    from cellverify.render.report import render_sweep

    report = aggregate(reports)
    print(render_sweep(report))
    if args.json:
        write_json(args.json, report)
    if args.plot:
        from cellverify.render.plots import plot_sweep

        plot_sweep(report, args.plot)
    return EXIT_OK


def _merged(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The reports ``--merge`` names, read before the options are refused:
    a wrong file is named before moot options."""
    from cellverify.experiments.merge import load_reports

    reports = load_reports(args.merge)
    _refuse_run_options(args)
    return reports


def _sweep_run(args: argparse.Namespace) -> dict[str, Any]:
    """This shard's runs (raw, not aggregated), every option checked first."""
    from cellverify.experiments.sweep import (
        DEFAULT_GRID,
        DEFAULT_SPEC_GRID,
        parse_grid,
        parse_shard,
        sweep_tasks,
    )

    cell, train_cfg = configs_from_args(args)
    named = args.cell != DEFAULT_FACTORY  # may be a spec's cell, with keywords of its own
    sets = parse_sets(args.set, any_keyword=named)
    grid = parse_grid(args.grid or DEFAULT_GRID, any_keyword=named)
    shard = parse_shard(args.shard)
    if args.seeds < 1:
        raise InvalidConfig("sweep", "seeds", "at least 1", args.seeds)
    seeds = list(range(args.seeds))
    if not named:
        sweep_tasks(grid, cell, train_cfg, seeds, shard=shard)  # validates every point
    if args.checkpoint:
        check_writable(args.checkpoint, "--checkpoint")
    quiet_tensorflow()
    from cellverify.execution import make_executor
    from cellverify.experiments.sweep import run_sweep

    with make_executor(args.scheduler, args.jobs) as executor:
        # A bad factory fails here, before any run; so does a bad grid.
        config, train_cfg = configs_for_cell(executor, args, cell, train_cfg, sets)
        if isinstance(config, CellConfig):
            grid = parse_grid(args.grid or DEFAULT_GRID)
        elif not args.grid:  # a spec's cell has no output_activation
            grid = parse_grid(DEFAULT_SPEC_GRID)
        sweep_tasks(grid, config, train_cfg, seeds, shard=shard)
        raw = run_sweep(
            args.cell, grid, config, train_cfg, seeds, shard=shard, executor=executor,
            fast=args.fast, checkpoint=args.checkpoint, on_done=progress("sweep"),
        )  # fmt: skip
    if raw["resumed"]:
        done, now = raw["resumed"], raw["executed"]
        print(f"resumed {args.checkpoint}: {done} runs done before, {now} now", file=sys.stderr)
    return raw


def _write_shard(args: argparse.Namespace, raw: dict[str, Any]) -> None:
    """A shard's raw runs, for a later ``--merge``."""
    if args.json:
        write_json(args.json, raw)
    written = f" written to {args.json}" if args.json else ""
    k, n = raw["shard"]
    print(f"shard {k}/{n}: {len(raw['runs'])} runs{written}")


def add_parsers(sub: Any) -> None:
    _add_compare(sub)
    _add_diagnose(sub)
    _add_sweep(sub)


def _add_compare(sub: Any) -> None:
    compare = sub.add_parser(
        "compare",
        help="train presets side by side (default: as-asked vs remedied) and print traces",
    )
    compare.add_argument(
        "presets", nargs="*", metavar="PRESET", help=f"any of {', '.join(sorted(PRESETS))}"
    )
    compare.add_argument("--seed", type=int, default=0)
    compare.add_argument("--train-steps", type=int, default=20)
    compare.add_argument("--batch-size", type=int, default=32)
    compare.add_argument("--steps", type=int, default=None)
    compare.add_argument("--task", choices=TASKS, default="supervised")
    compare.add_argument("--data", default=None, **TRAIN_OPTIONS["data"])
    add_fast_options(compare)
    compare.add_argument("--json", metavar="PATH", help="also write the traces as JSON")
    compare.set_defaults(func=cmd_compare)


def _add_diagnose(sub: Any) -> None:
    diagnose = sub.add_parser(
        "diagnose",
        help="train across seeds, explain why a configuration is fragile, verify remedies",
    )
    add_config_options(diagnose, "as-asked")
    diagnose.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1 (default 10)")
    diagnose.add_argument("--no-verify", action="store_true", help="skip re-running the remedies")
    add_set_option(diagnose)
    add_training_options(diagnose, plot="PNG of loss and gradient norms per seed")
    diagnose.set_defaults(func=cmd_diagnose)


def _add_sweep(sub: Any) -> None:
    sweep = sub.add_parser(
        "sweep", help="fragility map: P(learns) over a grid of configurations, across seeds"
    )
    add_config_options(sweep, "as-asked")
    sweep.add_argument(
        "--grid",
        action="append",
        metavar="FIELD=V1,V2",
        help="a grid axis (repeatable; tuples with dashes, kernels=5-20-1,5-25-1); "
        "default: optimizer x learning rate x output activation",
    )
    sweep.add_argument("--seeds", type=int, default=5, help="seeds per grid point (default 5)")
    add_set_option(sweep)
    sweep.add_argument(
        "--shard",
        default="1/1",
        metavar="K/N",
        help="run only the K-th of N slices of the runs (CI matrix jobs)",
    )
    sweep.add_argument(
        "--merge",
        nargs="+",
        metavar="FILE",
        help="merge shards' JSON reports or checkpoints instead of running",
    )
    sweep.add_argument(
        "--checkpoint",
        metavar="PATH",
        help="append each finished run to PATH (JSON lines) and skip the runs it holds",
    )
    add_training_options(sweep, plot="heat-map PNG of P(learns)")
    sweep.set_defaults(func=cmd_sweep, run_options=_run_options(sweep))


#: What ``sweep --merge`` uses; every other option configures a run.
_MERGE_OPTIONS = ("merge", "json", "plot", "help")


def _run_options(parser: argparse.ArgumentParser) -> dict[str, tuple[str, Any]]:
    """Each option that configures a run, by destination: its name and default."""
    options: dict[str, tuple[str, Any]] = {}
    for action in parser._actions:
        if action.option_strings and action.dest not in _MERGE_OPTIONS:
            options.setdefault(action.dest, (action.option_strings[-1], action.default))
    return options


def _refuse_run_options(args: argparse.Namespace) -> None:
    """A merge reads its grid, seeds and configurations from the reports: an
    option for a run would be ignored silently, so it is an error."""
    given = [name for dest, (name, default) in args.run_options.items()
             if getattr(args, dest) != default]  # fmt: skip
    if given:
        raise InvalidConfig(
            "sweep",
            "merge",
            "used without the options of a run: the grid, seeds and configurations "
            "come from the reports (only --json and --plot apply)",
            " ".join(given),
        )
