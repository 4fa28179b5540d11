"""`polymodal serve` (an OpenAI-compatible HTTP API), `polymodal mcp` (an MCP server of the tools) and
`polymodal serve-llm` (the LLM alone, as Ray Serve replicas behind an OpenAI-compatible API).

Both build the agent from the config, or from `--agent module:factory` (a callable taking
`config=` and returning an Agent: e.g. `orchestrator.testing:fake_agent` for a demo without models).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from orchestrator.cli._common import add_json_flag, add_ray_flag, config_from_args, emit, positive_float, positive_int

__all__ = ["register", "resolve_api_key"]

AGENT_HELP = "module:callable building the Agent from config= (default: the configured tools and LLM)"


def register(sub: argparse._SubParsersAction) -> None:
    p = add_json_flag(
        sub.add_parser("serve", help="serve the agent as an OpenAI-compatible API (/v1/chat/completions)")
    )
    p.add_argument("--host", default=None, help="bind address (default: [serve] host, 127.0.0.1)")
    p.add_argument("--port", type=positive_int, default=None, help="port (default: [serve] port, 8000)")
    p.add_argument(
        "--api-key", default=None, help="require this bearer key (prefer $POLYMODAL_API_KEY: argv is visible)"
    )
    p.add_argument(
        "--api-key-env", default=None, metavar="VAR", help="read the key from VAR (default: [serve] api_key_env)"
    )
    p.add_argument("--max-body-mb", type=positive_float, default=None, help="largest request body (default 8)")
    p.add_argument("--max-concurrent", type=positive_int, default=None, help="agent runs at once (default: the tools')")
    p.add_argument("--model-id", default=None, help="the model id clients name (default: [serve] model_id, polymodal)")
    p.add_argument("--agent", default=None, metavar="MODULE:CALLABLE", help=AGENT_HELP)
    p.add_argument("--no-warm-up", action="store_true", help="do not load the models before the first request")
    p.set_defaults(func=cmd_serve)

    _register_serve_llm(sub)

    m = add_json_flag(sub.add_parser("mcp", help="offer the tools to MCP clients (stdio; --http PORT for HTTP)"))
    m.add_argument(
        "--http", type=positive_int, default=None, metavar="PORT", help="streamable HTTP on 127.0.0.1:PORT/mcp"
    )
    m.add_argument("--agent", default=None, metavar="MODULE:CALLABLE", help=AGENT_HELP)
    m.set_defaults(func=cmd_mcp)


def build_agent(config: Any, ref: str | None) -> Any:
    from polymodal.lazy import resolve

    if ref:
        return resolve(ref, "agent factory")(config=config)
    from orchestrator.agent import Agent

    return Agent.from_config(config)


def resolve_api_key(args: argparse.Namespace, config: Any) -> str:
    """The key from --api-key, else the environment variable, else [serve] api_key ("" for none)."""
    env = args.api_key_env or config.serve.api_key_env
    return (args.api_key or (os.environ.get(env, "") if env else "") or config.serve.api_key).strip()


def cmd_serve(args: argparse.Namespace) -> int:
    from orchestrator.cli.app import _is_loopback
    from polymodal.errors import InputError, require

    config = config_from_args(args)
    require("fastapi", "serve", "polymodal serve")
    require("uvicorn", "serve", "polymodal serve")
    s = config.serve
    host, port = args.host or s.host, args.port or s.port
    key = resolve_api_key(args, config)
    if not _is_loopback(host) and not key:
        env = args.api_key_env or s.api_key_env
        raise InputError(f"serving on {host} needs an API key: set ${env} (or --api-key, or [serve] api_key)")
    from orchestrator.serve.http import agent_slots, build_app, run_server

    agent = build_agent(config, args.agent)
    slots = args.max_concurrent or s.max_concurrent or agent_slots(agent)
    model_id = args.model_id or s.model_id
    max_body = int((args.max_body_mb or s.max_body_mb) * 2**20)
    app = build_app(agent, api_key=key, model_id=model_id, max_body_bytes=max_body, slots=slots)
    if not args.no_warm_up:
        print("loading the models before the first request (--no-warm-up skips this)...", file=sys.stderr, flush=True)
        agent.warm_up()
    url = f"http://{host}:{port}/v1"
    emit(
        args,
        {"ok": True, "url": url, "model": model_id, "auth": bool(key), "slots": slots},
        f"polymodal serve on {url} (model '{model_id}', {slots} at once{', API key required' if key else ''}); "
        "Ctrl-C stops",
    )
    run_server(app, host, port)
    return 0


def cmd_mcp(args: argparse.Namespace) -> int:
    from polymodal.errors import require

    config = config_from_args(args)
    require("mcp", "serve", "polymodal mcp")
    from orchestrator.serve.mcp_server import build_mcp_server, run_http, run_stdio

    agent = build_agent(config, args.agent)
    server = build_mcp_server(agent.tools)
    if args.http is None:
        print(f"polymodal mcp on stdio: {len(agent.tools)} tools", file=sys.stderr)  # stdout is the protocol
        run_stdio(server)
        return 0
    url = f"http://127.0.0.1:{args.http}/mcp"
    emit(args, {"ok": True, "url": url, "tools": sorted(agent.tools)}, f"polymodal mcp on {url}; Ctrl-C stops")
    run_http(server, "127.0.0.1", args.http)
    return 0


def _register_serve_llm(sub: argparse._SubParsersAction) -> None:
    p = add_json_flag(
        sub.add_parser("serve-llm", help="serve the LLM as Ray Serve replicas (OpenAI-compatible /v1/chat/completions)")
    )
    add_ray_flag(p, "serve the replicas", default="auto")
    p.add_argument("--replicas", type=positive_int, default=1, help="model copies, one request at a time each")
    p.add_argument("--threads", type=positive_int, default=None, help="threads per replica (default: CPUs / replicas)")
    p.add_argument("--host", default="127.0.0.1", help="bind address of Serve's HTTP proxy (default 127.0.0.1)")
    p.add_argument("--port", type=positive_int, default=None, help="port of Serve's HTTP proxy (default 8001)")
    p.add_argument("--backend", default=None, help="the backend each replica runs (default: [llm] backend)")
    p.add_argument("--model-id", default=None, help="the model id clients name (default: the [llm] model's name)")
    p.add_argument("--name", default=None, help="the Serve application (default polymodal-llm, at /; others at /NAME)")
    p.add_argument("--api-key-env", default="POLYMODAL_API_KEY", metavar="VAR", help="require the key in VAR")
    p.add_argument("--detach", action="store_true", help="leave the replicas running on the cluster and exit")
    p.set_defaults(func=cmd_serve_llm)


def cmd_serve_llm(args: argparse.Namespace) -> int:
    """Deploy, print the base URL, then serve until Ctrl-C (the app is deleted) or, with --detach, exit."""
    import dataclasses

    from orchestrator.cli._common import wait_for_stop
    from polymodal.cluster import connect, disconnect
    from polymodal.errors import InputError

    config = config_from_args(args)
    own_cluster = args.ray in ("auto", "local") and not os.environ.get("RAY_ADDRESS")  # it ends with this process
    if args.detach and own_cluster:
        raise InputError("--detach needs a running cluster to leave the replicas on: pass --ray HOST:PORT")
    ray = connect(args.ray)
    from tools.llm.ray_handle import DEFAULT_APP
    from tools.llm.ray_serve import DEFAULT_PORT, deploy_llm, undeploy_llm

    llm = dataclasses.replace(config.llm, backend=args.backend) if args.backend else config.llm
    app = args.name or DEFAULT_APP

    def progress(ready: int, total: int) -> None:
        print(f"{ready}/{total} replicas ready", file=sys.stderr, flush=True)

    print(f"starting {args.replicas} replica(s) of the {llm.backend} LLM on Ray...", file=sys.stderr, flush=True)
    served = deploy_llm(
        llm,
        config.paths.cache(),
        replicas=args.replicas,
        threads=args.threads or 0,
        host=args.host,
        port=args.port or DEFAULT_PORT,
        app=app,
        route_prefix="/" if app == DEFAULT_APP else f"/{app}",  # apps on one Serve need their own routes
        model_id=args.model_id or "",
        api_key=os.environ.get(args.api_key_env, "").strip() if args.api_key_env else "",
        progress=progress,
    )
    address = ray.get_runtime_context().gcs_address
    emit(
        args,
        {"ok": True, **dataclasses.asdict(served), "ray": address, "detached": args.detach},
        f"LLM on Ray Serve at {served.url} (model '{served.model}', {served.replicas} replica(s) x "
        f'{served.threads} thread(s), cluster {address}); agent config: [llm] backend = "openai", '
        f'base_url = "{served.url}", model = "{served.model}"' + ("" if args.detach else "; Ctrl-C stops"),
    )
    if args.detach:
        return 0
    try:
        wait_for_stop()
    finally:
        if not own_cluster:
            undeploy_llm(app)
        disconnect()
    return 0
