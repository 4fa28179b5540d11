"""`polymodal ask "question" --kb DIR`: an answer from the knowledge base, streamed, with its sources."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from orchestrator.cli._common import add_json_flag, config_from_args, emit, positive_int

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = add_json_flag(sub.add_parser("ask", help="answer a question from the knowledge base, with citations"))
    p.add_argument("question")
    p.add_argument("--kb", default=None, help="knowledge-base folder (default: [kb] path, ~/.polymodal/kb)")
    p.add_argument("-k", type=positive_int, default=4, help="passages used as evidence (default 4)")
    p.add_argument(
        "--concise", action="store_true", help="a short answer copied verbatim from a passage (llama.cpp), still cited"
    )
    p.add_argument("--no-stream", action="store_true", help="print the answer when it is complete")
    p.add_argument("--reranker", default="none", help="none | llm | cross-encoder:PATH (default none)")
    p.add_argument("--mode", choices=("hybrid", "dense", "bm25"), default="hybrid")
    p.set_defaults(func=cmd_ask)


def cmd_ask(args: argparse.Namespace) -> int:
    from tools.rag import RagAnswer, RagAnswerTool

    config = config_from_args(args)
    tool = RagAnswerTool(
        Path(args.kb).expanduser() if args.kb else None, config=config, reranker=args.reranker, mode=args.mode
    )
    tool.ensure_setup()
    if args.json or args.no_stream:
        result = tool.run(args.question, k=args.k, concise=args.concise)
        emit(args, result, render(result))
        return 0
    result = None
    streamed = False
    for event in tool.stream(args.question, k=args.k, concise=args.concise):
        if isinstance(event, RagAnswer):
            result = event
        else:
            streamed = True
            sys.stdout.write(event)
            sys.stdout.flush()
    assert result is not None
    if streamed and result.found:
        print()
        print(render_sources(result))
    else:  # nothing (or a declined draft) was streamed: print the verdict
        if streamed:
            print()
        print(render(result))
    return 0


def render_sources(result) -> str:
    lines = [f"[{c.number}] {_where(c)}  {_clip(c.text)}" for c in result.citations]
    if result.quote is not None:
        lines.append(f"answer copied from {_where(result.quote)}")
    if result.unsupported_sentences:
        lines.append("unsupported (no citation): " + " | ".join(result.unsupported_sentences))
    t = result.timings
    lines.append(f"({result.model}; retrieve {t.retrieve:.2f}s, prefill {t.prefill:.2f}s, decode {t.decode:.2f}s)")
    return "\n".join(lines)


def render(result) -> str:
    if not result.found:
        return f"{result.answer} ({result.reason})"
    return f"{result.answer}\n{render_sources(result)}"


def _where(c) -> str:
    """ "/docs/report.pdf p. 12:340-610": the file, where in it (page, slide, row, heading), characters."""
    from indexes.readers.base import describe_location

    loc = describe_location(c.metadata)
    return f"{c.source}{' ' + loc if loc else ''}:{c.start}-{c.end}"


def _clip(text: str, n: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"
