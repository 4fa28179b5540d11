"""`-v/--verbose` and `--log-level` for every command, and the one log configuration: records go to
stderr (stdout stays for results and `--json`), WARNING by default, INFO with -v, DEBUG with -vv."""

from __future__ import annotations

import argparse
import logging
import sys

__all__ = ["add_logging_flags", "configure_logging", "LEVELS"]

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _StderrHandler(logging.StreamHandler):
    """Writes to the current `sys.stderr` (so a redirected or captured stderr gets the records)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def add_logging_flags(parser: argparse.ArgumentParser, top: bool = True) -> None:
    """On the top-level parser with defaults; on subcommands without (`polymodal ask -v` works too,
    and an absent flag there leaves the top-level value alone)."""
    default = {} if top else {"default": argparse.SUPPRESS}
    parser.add_argument(
        "-v", "--verbose", action="count", help="show progress logs on stderr (-v: INFO, -vv: DEBUG)", **default
    )
    parser.add_argument(
        "--log-level", type=str.upper, choices=LEVELS, help="log level on stderr (overrides -v)", **default
    )


def configure_logging(args: argparse.Namespace) -> int:
    """Send log records to stderr at the level the flags ask for; returns that level."""
    if getattr(args, "log_level", None):
        level = getattr(logging, args.log_level)
    else:
        level = {0: logging.WARNING, 1: logging.INFO}.get(getattr(args, "verbose", None) or 0, logging.DEBUG)
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(handler)  # main() called twice in one process: one handler, the new level
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter(_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
    return level
