"""Shared CLI plumbing: the --json flag, one-line errors, config loading."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable, NoReturn

from polymodal.config import Config, load_config
from polymodal.errors import InputError

__all__ = [
    "CliParser",
    "add_json_flag",
    "emit",
    "fail",
    "config_from_args",
    "positive_int",
    "non_negative_int",
    "positive_float",
    "non_negative_float",
]


class CliParser(argparse.ArgumentParser):
    """A parser without prefix matching (`--k` must not mean `--kb`) whose usage errors raise
    `InputError`, so `main` reports them as one line (JSON with --json). Subparsers inherit it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise InputError(f"{self.prog}: {message} (see {self.prog} --help)")


def _number(kind: type, lowest: float, strict: bool, what: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not (value > lowest if strict else value >= lowest):  # NaN fails too
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


positive_int = _number(int, 0, True, "a positive integer")
non_negative_int = _number(int, 0, False, "an integer >= 0")
positive_float = _number(float, 0, True, "a positive number")
non_negative_float = _number(float, 0, False, "a number >= 0")


def add_json_flag(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")
    return parser


def add_ray_flag(parser: argparse.ArgumentParser, work: str, default: str | None = None) -> None:
    """`--ray [ADDRESS]`: do `work` on a Ray cluster (HOST:PORT; "auto" or the bare flag: RAY_ADDRESS,
    else a local cluster in this process). Without the flag the value is `default`."""
    parser.add_argument(
        "--ray",
        nargs="?",
        const="auto",
        default=default,
        metavar="ADDRESS",
        help=f"{work} on a Ray cluster (HOST:PORT; 'auto' or nothing: RAY_ADDRESS, else a local one)",
    )


def config_from_args(args: argparse.Namespace) -> Config:
    return load_config(getattr(args, "config", None))


def emit(args: argparse.Namespace, data: Any, text: str | None = None) -> None:
    """Print `data` as JSON with --json, else `text` (or a readable rendering of `data`)."""
    from tools.base import to_plain

    if getattr(args, "json", False):
        json.dump(to_plain(data), sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        print(text if text is not None else json.dumps(to_plain(data), ensure_ascii=False, indent=2))
    sys.stdout.flush()


def fail(args: argparse.Namespace, message: str, code: int = 1) -> int:
    """Report a user-facing failure: JSON `{"ok": false, "error": ...}` with --json, one line on stderr."""
    message = " ".join(message.split())
    if getattr(args, "json", False):
        json.dump({"ok": False, "error": message}, sys.stdout, ensure_ascii=False)
        sys.stdout.write("\n")
    print(f"error: {message}", file=sys.stderr)
    return code


def wait_for_stop(duration: float = 0.0) -> None:
    """Until `duration` passes (0: forever), Ctrl-C or SIGTERM. The handlers are installed here
    because a process started in the background by a non-interactive shell inherits SIGINT
    ignored, and Python then never raises KeyboardInterrupt: Ctrl-C must still stop the command."""
    import signal
    import threading

    stop = threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    try:
        stop.wait(duration if duration > 0 else None)
    except KeyboardInterrupt:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
