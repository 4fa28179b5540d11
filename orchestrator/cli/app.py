"""`polymodal app`: serve the Gradio app. Loopback only unless `--host` says otherwise; a public
share link only with `--share`; optional `--auth user:pass` (or `--auth-env VAR` holding it)."""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys

from orchestrator.cli._common import add_json_flag, config_from_args, emit, fail, wait_for_stop

__all__ = ["register", "parse_auth"]


def register(sub: argparse._SubParsersAction) -> None:
    p = add_json_flag(sub.add_parser("app", help="open the Gradio app (default http://127.0.0.1:7860)"))
    p.add_argument("--host", default=None, help="bind address (default: [app] host, 127.0.0.1); 0.0.0.0 exposes it")
    p.add_argument("--port", type=int, default=None, help="port (default: [app] port, 7860)")
    p.add_argument("--auth", default=None, metavar="USER:PASS", help="require this username and password")
    p.add_argument("--auth-env", default=None, metavar="VAR", help="read USER:PASS from this environment variable")
    p.add_argument("--share", action="store_true", help="also open a public gradio.live link (off by default)")
    p.add_argument("--no-warm-up", action="store_true", help="do not load the models before the first message")
    p.set_defaults(func=cmd_app)


def parse_auth(value: str | None) -> tuple[str, str] | None:
    from polymodal.errors import InputError

    if not value:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise InputError("--auth takes USER:PASS with both parts non-empty")
    return user, password


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_app(args: argparse.Namespace) -> int:
    from polymodal.errors import require

    config = config_from_args(args)
    require("gradio", "ui", "the app")
    auth = parse_auth(os.environ.get(args.auth_env, "") if args.auth_env else args.auth)
    if args.auth_env and auth is None:
        return fail(args, f"environment variable {args.auth_env} is empty: set it to USER:PASS")
    host = args.host or config.app.host
    port = args.port or config.app.port
    if not _is_loopback(host) and auth is None:
        print(
            f"warning: serving on {host} without --auth: anyone who can reach this port can use the app",
            file=sys.stderr,
        )
    if args.share and auth is None:
        print("warning: --share without --auth makes the app public to anyone with the link", file=sys.stderr)
    from orchestrator.ui import build_app, serve, warm_up

    demo = build_app(config)
    url = serve(demo, host, port, auth=auth, share=args.share, block=False, quiet=args.json)
    if not args.no_warm_up:
        warm_up(demo.services)
    emit(
        args,
        {"ok": True, "url": url, "share_url": getattr(demo, "share_url", None), "host": host, "port": port},
        f"polymodal app on {url} (Ctrl-C to stop)",
    )
    try:
        wait_for_stop()  # Ctrl-C or SIGTERM, also when started in the background with SIGINT ignored
    finally:
        demo.close()
    return 0
