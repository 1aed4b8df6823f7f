"""The ``cellverify`` command line.

Parsing and configuration validation happen before TensorFlow is imported, so
``--help`` and usage errors are instant.  Exit codes: 0 success, 1 a check
failed, 2 a usage or configuration error.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from cellverify.config import (
    ACTIVATIONS,
    BOOLEAN_WORDS,
    INITIALIZERS,
    OPTIMIZERS,
    PRESETS,
    TASKS,
    CellConfig,
    TrainConfig,
    parse_bool,
    preset,
)
from cellverify.errors import CellVerifyError, InvalidConfig
from cellverify.outputs import check_writable, require_matplotlib, write_json

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def _quiet_tensorflow() -> None:
    # TensorFlow's C++ start-up chatter (oneDNN, CPU features) is noise to a
    # CLI user; only set it if the user has not chosen a level.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 5,20,1. Received: {text!r}"
        ) from None


def _bool(text: str) -> bool:
    try:
        return parse_bool(text, field="value")
    except InvalidConfig:
        raise argparse.ArgumentTypeError(
            f"expected one of {'/'.join(BOOLEAN_WORDS)}. Received: {text!r}"
        ) from None


_CELL_OPTIONS: dict[str, dict[str, Any]] = {
    "assets": {"type": int},
    "window": {"type": int},
    "features": {"type": int},
    "kernels": {"type": _int_list, "metavar": "K1,K2,K3"},
    "activation": {"choices": ACTIVATIONS},
    "output_activation": {"choices": ACTIVATIONS},
    "initializer": {"choices": INITIALIZERS},
    "dropout": {"type": float, "metavar": "RATE"},
    "dropout_after": {"type": _int_list, "metavar": "LAYERS"},
    "cash_bias": {"type": _bool, "metavar": "BOOL"},
}
_TRAIN_OPTIONS: dict[str, dict[str, Any]] = {
    "optimizer": {"choices": OPTIMIZERS},
    "learning_rate": {"type": float, "metavar": "LR"},
    "batch_size": {"type": int},
    "steps": {"type": int, "help": "sequence length"},
    "train_steps": {"type": int, "help": "optimizer updates"},
    "task": {"choices": TASKS},
}


def add_config_options(parser: argparse.ArgumentParser, default_preset: str) -> None:
    """``--preset`` and one option per configuration field (overriding the preset)."""
    parser.add_argument(
        "--preset", default=default_preset, choices=sorted(PRESETS), help="start from this preset"
    )
    group = parser.add_argument_group("configuration (overrides the preset)")
    for field, kwargs in {**_CELL_OPTIONS, **_TRAIN_OPTIONS}.items():
        group.add_argument("--" + field.replace("_", "-"), dest=field, default=None, **kwargs)


def add_training_options(parser: argparse.ArgumentParser, *, plot: str) -> None:
    """Options shared by the commands that train across seeds (diagnose, sweep)."""
    parser.add_argument("--cell", default="cellverify.cell:conv_rnn_cell", metavar="MODULE:FACTORY")
    parser.add_argument(
        "--jobs", type=int, default=None, help="worker processes (default: one per core)"
    )
    parser.add_argument(
        "--fast",
        action="store_true",
        help="train a ConvRNNCell through the fast path (same function within float32 "
        "rounding, ~4x faster at the question's shape)",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the report as JSON")
    parser.add_argument("--plot", metavar="PATH", help=plot)


def check_outputs(args: argparse.Namespace) -> None:
    """Every output path the command will write, checked before any work."""
    for option in ("json", "plot"):
        path = getattr(args, option, None)
        if path:
            check_writable(path, f"--{option}")
    if getattr(args, "plot", None):
        require_matplotlib("--plot")


def configs_from_args(args: argparse.Namespace) -> tuple[CellConfig, TrainConfig]:
    """The preset with every given option applied; raises InvalidConfig."""
    base = preset(args.preset)
    cell = {k: getattr(args, k) for k in _CELL_OPTIONS if getattr(args, k) is not None}
    train = {k: getattr(args, k) for k in _TRAIN_OPTIONS if getattr(args, k) is not None}
    return base.cell.replace(**cell), base.train.replace(**train)


def _progress(label: str) -> Any:
    """Progress on stderr: a live counter on a terminal, a line per tenth in a log."""
    tty = sys.stderr.isatty()

    def report(done: int, total: int) -> None:
        if tty:
            end = "\n" if done == total else "\r"
            print(f"{label}: {done}/{total}", end=end, file=sys.stderr, flush=True)
        elif done == total or done % max(1, total // 10) == 0:
            print(f"{label}: {done}/{total}", file=sys.stderr, flush=True)

    return report


def cmd_compare(args: argparse.Namespace) -> int:
    """Train AS_ASKED and REMEDIED side by side on a short run and print both traces."""
    names = args.presets or ["as-asked", "remedied"]
    overrides = {
        "train_steps": args.train_steps,
        "batch_size": args.batch_size,
        "steps": args.steps,
        "task": args.task,
    }
    runs = {}
    for name in names:
        p = preset(name)
        cell, train_cfg = p.with_seed(args.seed)
        runs[name] = (cell, train_cfg.replace(**{k: v for k, v in overrides.items() if v}))
    check_outputs(args)
    _quiet_tensorflow()
    from cellverify.cell import conv_rnn_cell
    from cellverify.report import render_trace_comparison
    from cellverify.run import train

    traces = {
        name: train(conv_rnn_cell, cell, t, on_step=_progress(name))
        for name, (cell, t) in runs.items()
    }
    print(render_trace_comparison(traces))
    if args.json:
        write_json(args.json, {name: t.to_dict() for name, t in traces.items()})
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    """Run every invariant through Hypothesis against a cell factory."""
    from cellverify.profiles import PROFILES, default_profile

    profile = args.profile or default_profile()
    if profile not in PROFILES:  # argparse checks --profile; this is the env var
        raise InvalidConfig("check", "profile", f"one of {', '.join(PROFILES)}", profile)
    check_outputs(args)
    _quiet_tensorflow()
    from cellverify.factory import load_factory, validate_factory
    from cellverify.report import render_check
    from cellverify.suite import run_suite, select_invariants

    select_invariants(args.select)  # an unmatched -k fails here, before any work

    factory = load_factory(args.cell)
    validate_factory(factory, CellConfig(assets=3, window=5, kernels=(2, 2, 1)))

    tty = sys.stderr.isatty()
    started: set[str] = set()

    def progress(name: str, examples: int) -> None:
        if tty:
            print(f"\r{name}: example {examples}   ", end="", file=sys.stderr, flush=True)
        elif name not in started:  # a log line per invariant
            started.add(name)
            print(f"checking {name} ...", file=sys.stderr, flush=True)

    result = run_suite(
        factory, cell=args.cell, profile=profile, select=args.select, on_progress=progress
    )
    if tty:
        print("\r" + " " * 60 + "\r", end="", file=sys.stderr)
    report = result.to_dict()
    print(render_check(report))
    if args.json:
        write_json(args.json, report)
    if result.errored:  # the search itself failed: no verdict either way
        return EXIT_USAGE
    return EXIT_OK if result.passed else EXIT_FAILED


def cmd_diagnose(args: argparse.Namespace) -> int:
    """Train across seeds, report symptoms and causes, verify remedies by re-running."""
    cell, train_cfg = configs_from_args(args)
    if args.seeds < 1:
        raise InvalidConfig("diagnose", "seeds", "at least 1", args.seeds)
    check_outputs(args)
    seeds = list(range(args.seeds))
    _quiet_tensorflow()
    from cellverify.diagnosis import diagnose
    from cellverify.factory import load_factory
    from cellverify.parallel import default_jobs
    from cellverify.report import render_diagnosis
    from cellverify.verify import run_seeds, verify_remedies

    load_factory(args.cell)  # a bad factory fails here, before any worker starts
    workers = args.jobs or default_jobs()
    traces = run_seeds(
        args.cell,
        cell,
        train_cfg,
        seeds,
        workers=workers,
        fast=args.fast,
        on_done=_progress("diagnose"),
    )
    diagnosis = diagnose(traces, seeds)
    results = []
    if not args.no_verify:
        results = verify_remedies(
            diagnosis,
            args.cell,
            workers=workers,
            fast=args.fast,
            on_done=lambda name, d, t: _progress(f"remedy {name}")(d, t),
        )
    report = {
        "diagnosis": diagnosis.to_dict(),
        "remedies": [r.to_dict() for r in results],
    }
    print(render_diagnosis(report))
    if args.json:
        write_json(args.json, report)
    if args.plot:
        from cellverify.plots import plot_traces

        plot_traces(traces, seeds, args.plot, f"{args.preset}: loss and gradient norms")
    return EXIT_OK


def cmd_sweep(args: argparse.Namespace) -> int:
    """Map the probability of learning over a grid, or merge shards' reports."""
    import json

    from cellverify.sweep import DEFAULT_GRID, aggregate, parse_grid, parse_shard

    check_outputs(args)
    if args.merge:
        reports = []
        for path in args.merge:
            try:
                with open(path) as f:
                    reports.append(json.load(f))
            except (OSError, json.JSONDecodeError) as exc:
                raise InvalidConfig("sweep", "merge", "readable JSON reports", path) from exc
    else:
        cell, train_cfg = configs_from_args(args)
        grid = parse_grid(args.grid or DEFAULT_GRID)
        shard = parse_shard(args.shard)
        if args.seeds < 1:
            raise InvalidConfig("sweep", "seeds", "at least 1", args.seeds)
        from cellverify.sweep import sweep_tasks

        sweep_tasks(grid, cell, train_cfg, range(args.seeds), shard=shard)  # validates every point
        _quiet_tensorflow()
        from cellverify.factory import load_factory
        from cellverify.parallel import default_jobs
        from cellverify.sweep import run_sweep

        load_factory(args.cell)
        raw = run_sweep(
            args.cell,
            grid,
            cell,
            train_cfg,
            list(range(args.seeds)),
            shard=shard,
            workers=args.jobs or default_jobs(),
            fast=args.fast,
            on_done=_progress("sweep"),
        )
        if shard != (1, 1):  # a shard's raw runs are merged later
            if args.json:
                write_json(args.json, raw)
            print(
                f"shard {shard[0]}/{shard[1]}: {len(raw['runs'])} runs"
                + (f" written to {args.json}" if args.json else "")
            )
            return EXIT_OK
        reports = [raw]
    from cellverify.report import render_sweep

    report = aggregate(reports)
    print(render_sweep(report))
    if args.json:
        write_json(args.json, report)
    if args.plot:
        from cellverify.plots import plot_sweep

        plot_sweep(report, args.plot)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cellverify",
        description="Property tests, diagnosis and benchmarks for Keras recurrent cells.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

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
    compare.add_argument("--json", metavar="PATH", help="also write the traces as JSON")
    compare.set_defaults(func=cmd_compare)

    check = sub.add_parser(
        "check", help="run every invariant on generated configurations against a cell factory"
    )
    check.add_argument(
        "--cell",
        default="cellverify.cell:conv_rnn_cell",
        metavar="MODULE:FACTORY",
        help="the cell factory to check (default: the shipped cell)",
    )
    check.add_argument(
        "--profile",
        choices=("dev", "ci", "thorough"),
        default=None,
        help="Hypothesis profile (default: $HYPOTHESIS_PROFILE, else ci under $CI, else dev)",
    )
    check.add_argument(
        "-k",
        dest="select",
        action="append",
        metavar="NAME",
        help="run only invariants whose name contains NAME (repeatable)",
    )
    check.add_argument("--json", metavar="PATH", help="also write the report as JSON")
    check.set_defaults(func=cmd_check)

    diagnose = sub.add_parser(
        "diagnose",
        help="train across seeds, explain why a configuration is fragile, verify remedies",
    )
    add_config_options(diagnose, "as-asked")
    diagnose.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1 (default 10)")
    diagnose.add_argument("--no-verify", action="store_true", help="skip re-running the remedies")
    add_training_options(diagnose, plot="PNG of loss and gradient norms per seed")
    diagnose.set_defaults(func=cmd_diagnose)

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
    sweep.add_argument(
        "--shard",
        default="1/1",
        metavar="K/N",
        help="run only the K-th of N slices of the runs (CI matrix jobs)",
    )
    sweep.add_argument(
        "--merge", nargs="+", metavar="JSON", help="merge shards' JSON reports instead of running"
    )
    add_training_options(sweep, plot="heat-map PNG of P(learns)")
    sweep.set_defaults(func=cmd_sweep)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line on ``argv``; returns the exit code (never raises
    for a user's mistake: argparse's own exits become return codes too)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        code: int = args.func(args)
    except CellVerifyError as exc:
        print(f"cellverify: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return code


if __name__ == "__main__":
    sys.exit(main())
