"""The `livemig` command.  Each subcommand lives in its own module with a `register(subparsers)` function.

This module only composes them; it holds no subcommand logic.  A subcommand's parser sets
`handler=FUNCTION(args) -> int`; a handler raises `SpecError` for bad input, which exits 2 naming the field.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from livemig.core.errors import SpecError, SpecErrors

# Subcommand modules, in the order `livemig --help` lists them.
_SUBCOMMANDS = ("predict", "plan", "operator", "sim", "lab", "devcluster", "demo")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the flag (`--help` shows the usage); subcommands inherit it."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="livemig", description=__doc__.splitlines()[0] if __doc__ else None)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in _SUBCOMMANDS:
        try:
            module = importlib.import_module(f"livemig.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"livemig.cli.{name}":
                continue  # not built yet
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = args.handler
    try:
        return int(handler(args) or 0)
    except (SpecError, SpecErrors) as exc:
        # Bad input: exit 2 naming the field, as argparse does for its own errors.
        print(f"livemig {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        sys.stderr.close()
        return 0


__all__ = ["build_parser", "main"]
