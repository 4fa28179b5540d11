"""The `polymodal` command. Each command group lives in its own module with `register(sub)`.

Every command takes `--json` (machine-readable output on stdout) and exits non-zero on failure;
a `PolymodalError` is printed as one line on stderr, never as a stack trace. So is a usage error
(exit 2); options must be spelled out in full (no prefix matching: `--k` is not `--kb`). Logs go to
stderr only (`-v`, `-vv`, `--log-level`), never into stdout.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from orchestrator.cli._common import CliParser, fail
from orchestrator.cli._logging import add_logging_flags, configure_logging
from polymodal.errors import InputError, PolymodalError

__all__ = ["main", "build_parser"]

# Command-group modules, in help order. A module exposes `register(subparsers)`, which adds its
# commands and sets `func(args) -> int` on each.
COMMAND_MODULES = (
    "orchestrator.cli.app",
    "orchestrator.cli.serve",
    "orchestrator.cli.chat",
    "orchestrator.cli.kb",
    "orchestrator.cli.ask",
    "orchestrator.cli.images",
    "orchestrator.cli.generate",
    "orchestrator.cli.edge",
    "orchestrator.cli.models",
    "orchestrator.cli.doctor",
)


def build_parser() -> argparse.ArgumentParser:
    parser = CliParser(
        prog="polymodal", description="Route requests to RAG, image search, generation and edge devices."
    )
    parser.add_argument(
        "--config", default=None, help="config TOML (default: $POLYMODAL_CONFIG or ~/.polymodal/config.toml)"
    )
    parser.add_argument("--version", action="version", version=f"polymodal {_version()}")
    add_logging_flags(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    for command in _subcommands(parser):
        add_logging_flags(command, top=False)
    return parser


def _subcommands(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):  # aliases share a parser
                found += [child, *_subcommands(child)]
    return found


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("polymodal")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except InputError as exc:  # a usage error (CliParser.error): no namespace yet
        return fail(argparse.Namespace(json="--json" in argv), str(exc), code=2)
    configure_logging(args)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except PolymodalError as exc:
        return fail(args, str(exc))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
