"""`polymodal models build|status`: assemble the offline model files; show what each role uses."""

from __future__ import annotations

import argparse
import sys
import time

from orchestrator.cli._common import add_json_flag, config_from_args, emit

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    models = sub.add_parser("models", help="offline model files: build them, show their status")
    acts = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    p = add_json_flag(
        acts.add_parser(
            "build", help="join the offline LLM from its parts (sha256-checked, cached) and check the edge models"
        )
    )
    p.set_defaults(func=cmd_build)
    p = add_json_flag(acts.add_parser("status", help="per role: what is configured and whether it is present"))
    p.set_defaults(func=cmd_status)


def cmd_build(args: argparse.Namespace) -> int:
    from polymodal.models import OFFLINE_LLM_SHA256, offline_llm_path

    config = config_from_args(args)
    t0 = time.perf_counter()
    last = [-1]

    def progress(done: int, total: int) -> None:
        pct = done * 100 // max(1, total)
        if pct // 10 != last[0] and not args.json:
            last[0] = pct // 10
            print(f"joining the offline LLM: {pct}%", file=sys.stderr, flush=True)

    path = offline_llm_path(config.paths.cache(), progress=progress)
    out = {
        "ok": True,
        "llm": {
            "path": str(path),
            "bytes": path.stat().st_size,
            "sha256": OFFLINE_LLM_SHA256,
            "seconds": round(time.perf_counter() - t0, 2),
        },
    }
    lines = [f"LLM: {path} ({path.stat().st_size / 2**20:.0f} MiB, sha256 {OFFLINE_LLM_SHA256[:12]}...)"]
    try:
        from edge.models import ensure_models
    except ImportError:
        ensure_models = None
    if ensure_models is not None:
        edge = ensure_models()
        out["edge"] = edge
        lines.append(f"edge models: {edge}")
    emit(args, out, "\n".join(lines))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from polymodal.models import describe_models

    statuses = describe_models(config_from_args(args))
    lines = [
        f"{'ok ' if s.present else '-- '} {s.role:<24} {s.configured or '(none)':<40} {s.detail}" for s in statuses
    ]
    emit(args, {"ok": all(s.present for s in statuses), "models": statuses}, "\n".join(lines))
    return 0
