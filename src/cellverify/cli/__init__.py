"""The ``cellverify`` command line.

Parsing and configuration validation happen before TensorFlow is imported, so
``--help`` and usage errors are instant.  Exit codes (:mod:`cellverify.cli.codes`):
0 success, 1 a check failed, 2 a usage or configuration error.  One module per
family of commands: :mod:`~cellverify.cli.check` (check, mutants) and
:mod:`~cellverify.cli.train` (compare, diagnose, sweep).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cellverify.cli import check, train
from cellverify.cli.codes import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from cellverify.cli.interrupt import EXIT_INTERRUPTED, exit_with, terminate_as_interrupt
from cellverify.errors import CellVerifyError

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "build_parser",
    "main",
    "run",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cellverify",
        description="Property tests, diagnosis and benchmarks for Keras recurrent cells.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    check.add_parsers(sub)
    train.add_parsers(sub)
    # `--seed 100` must not pass for `--seeds 100` (a hundred seeds): a
    # prefix of an option is a usage error that names the options.
    for command in sub.choices.values():
        command.allow_abbrev = False
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
        with terminate_as_interrupt():
            code: int = args.func(args)
    except CellVerifyError as exc:
        print(f"cellverify: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("\ncellverify: interrupted; every worker it started is stopped", file=sys.stderr)
        return EXIT_INTERRUPTED
    return code


if __name__ == "__main__":
    sys.exit(main())


def run() -> None:
    """The ``cellverify`` command: :func:`main` on the process's arguments,
    then exit with its code (:func:`~cellverify.cli.interrupt.exit_with`)."""
    exit_with(main())
