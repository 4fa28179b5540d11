"""The final answer: one rag answer is used as is; one other result is summarised without the LLM;
several results are combined by the LLM, keeping citation markers and device reading times.
Failed steps are always named, whatever the LLM writes.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Iterator, Mapping

from orchestrator.events import StepResult
from orchestrator.prompts import answer_messages, chat_messages
from polymodal.errors import PolymodalError
from tools.base import read_result

__all__ = ["collect_citations", "compose_answer"]

_MARK = re.compile(r"\[(\d+)\]")


def collect_citations(results: list[StepResult]) -> tuple[list[Any], dict[int, int]]:
    """All citations in step order, and the marker offset of each step (for renumbering)."""
    cites: list[Any] = []
    offsets: dict[int, int] = {}
    for r in results:
        offsets[r.step_id] = len(cites)
        cites += r.citations
    return cites, offsets


def _shift(text: str, offset: int) -> str:
    return _MARK.sub(lambda m: f"[{int(m.group(1)) + offset}]", text) if offset else text


def compose_answer(
    request: str,
    results: list[StepResult],
    llm: Callable[[], Any] | None,
    history: list[dict[str, str]] | None = None,
    tools: Mapping[str, Any] | None = None,
    direct: str = "",
) -> Iterator[str]:
    """Yield the answer in pieces (tokens when the LLM writes it)."""
    if direct:
        yield direct
        return
    if not results:
        yield from _chat(request, llm, history, tools)
        return
    ok = [r for r in results if r.ok]
    failed = [r for r in results if not r.ok]
    if len(results) == 1 and ok:
        yield ok[0].summary()
        return
    if ok:
        _, offsets = collect_citations(results)
        lines = [f"[step {r.step_id}: {r.tool}] {_shift(r.summary(), offsets[r.step_id])}" for r in results]
        yield from _combine(request, lines, ok, offsets, llm)
    for r in failed:
        yield f"{chr(10) * 2 if ok else ''}{r.tool} (step {r.step_id}) did not complete: {r.error}"


def _combine(
    request: str, lines: list[str], ok: list[StepResult], offsets: dict[int, int], llm: Callable[[], Any] | None
) -> Iterator[str]:
    fallback = "\n\n".join(_shift(r.summary(), offsets[r.step_id]) for r in ok)
    if llm is None:
        yield fallback
        return
    try:
        model = llm()
        written = ""
        for piece in model.stream(answer_messages(request, lines), max_tokens=300, temperature=0.0):
            written += piece
            yield piece
        if not written.strip():
            yield fallback
            return
    except PolymodalError:
        yield fallback
        return
    # A small model may drop what matters: put back lost citations and reading times.
    for r in ok:
        marks = {f"[{i + 1 + offsets[r.step_id]}]" for i in range(len(r.citations))}
        if marks and not any(m in written for m in marks):
            yield "\n\n" + _shift(r.summary(), offsets[r.step_id])
        prov = read_result(r.value).provenance  # a device reading: name the device and the time
        if prov.get("device") and prov.get("time") and prov["time"] not in written:
            yield f"\n({prov['device']}, reading at {prov['time']})"


def _chat(
    request: str, llm: Callable[[], Any] | None, history: list[dict[str, str]] | None, tools: Mapping[str, Any] | None
) -> Iterator[str]:
    canned = "Hello! Ask me about your documents, photos, image generation or devices."
    if llm is None:
        yield canned
        return
    try:
        yield from llm().stream(chat_messages(request, history, tools), max_tokens=160, temperature=0.0)
    except PolymodalError:
        yield canned
