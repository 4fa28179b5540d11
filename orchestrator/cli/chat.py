"""`polymodal chat "..." [--image PATH] [--conversation FILE] [--plan-only] [--json]`: one agent turn
from the shell. With --conversation the turn continues (and is saved to) a conversation file, so
follow-ups like "make it bluer" work across invocations.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from orchestrator.cli._common import add_json_flag, config_from_args, emit

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("chat", help="ask the agent: it plans, runs the tools and answers")
    p.add_argument("text", help="the request")
    p.add_argument("--image", default=None, help="attach an image (path)")
    p.add_argument(
        "--conversation",
        default=None,
        metavar="FILE",
        help="continue the conversation saved in FILE (created if missing) and save it back",
    )
    p.add_argument("--plan-only", action="store_true", help="print the plan without running it")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from orchestrator.agent import Agent
    from orchestrator.events import AnswerToken, Done, StepFinished

    agent = Agent.from_config(config_from_args(args))
    conv = None
    if args.conversation:
        path = Path(args.conversation)
        conv = agent.load_conversation(path) if path.exists() else agent.conversation()
    if args.plan_only:
        plan = agent.plan(args.text, image=args.image, conversation=conv)
        emit(args, plan.to_dict())
        return 0
    result = None
    stream = conv.stream(args.text, image=args.image) if conv else agent.stream(args.text, image=args.image)
    for event in stream:
        if args.json:
            if isinstance(event, Done):
                result = event.result
            continue
        if isinstance(event, StepFinished):
            r = event.result
            status = "ok" if r.ok else f"failed: {r.error}"
            print(f"[step {r.step_id} {r.tool}: {status} in {r.seconds:.2f}s]", file=sys.stderr)
        elif isinstance(event, AnswerToken):
            sys.stdout.write(event.text)
            sys.stdout.flush()
        elif isinstance(event, Done):
            result = event.result
    if conv is not None:
        conv.save(args.conversation)
    assert result is not None
    if args.json:
        emit(
            args,
            {
                "ok": result.ok and result.plan.source != "error",
                "answer": result.answer,
                "plan": result.plan.to_dict(),
                "steps": result.steps,
                "citations": result.citations,
                "artifacts": result.artifacts,
                "timings": result.timings,
                "unavailable_tools": agent.problems,
            },
        )
    else:
        print()
        for i, c in enumerate(result.citations, start=1):
            print(f"  [{i}] {getattr(c, 'source', c)}")
        for a in result.artifacts:
            print(f"  -> {a}")
    return 0 if result.plan.source != "error" and result.ok else 1
