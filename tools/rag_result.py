"""What rag_answer returns: the answer, the passages it cites (document offsets), timings and
every signal behind the decision; and the small rules that decline or quote an answer."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from indexes.readers.base import describe_location
from tools.base import ToolResult
from tools.rag_prompt import not_found_text

__all__ = ["Citation", "RagTimings", "RagAnswer", "citation", "declines", "quote", "retract"]


@dataclass
class Citation:
    """A passage shown to the model: document `doc_id` (file `source`), characters [start, end),
    and where in the file it is (`metadata`: page (1-based), slide, sheet/row, heading path)."""

    number: int
    chunk_id: str
    doc_id: str
    source: str
    start: int
    end: int
    text: str
    score: float = 0.0
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def where(self) -> str:
        """ "report.pdf p. 12:340-610": file, location, characters."""
        loc = describe_location(self.metadata)
        return f"{Path(self.source).name}{' ' + loc if loc else ''}:{self.start}-{self.end}"


@dataclass
class RagTimings:
    retrieve: float = 0.0
    rerank: float = 0.0
    prompt: float = 0.0
    prefill: float = 0.0  # time to the first token
    decode: float = 0.0
    recheck: float = 0.0  # the re-ask over the answer's source sentence (late checks)
    type_check: float = 0.0  # the answer-type question (late checks)
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total(self) -> float:
        return self.retrieve + self.rerank + self.prompt + self.prefill + self.decode + self.recheck + self.type_check


@dataclass
class RagAnswer(ToolResult):
    question: str
    answer: str
    found: bool
    citations: list[Citation] = field(default_factory=list)  # the passages the answer cites
    unsupported_sentences: list[str] = field(default_factory=list)
    passages: list[Citation] = field(default_factory=list)  # every passage shown to the model
    timings: RagTimings = field(default_factory=RagTimings)
    model: str = ""
    kb: str = ""
    language: str = "en"
    reason: str = ""  # why nothing was found: "no passages", "off-topic retrieval", "model: not in evidence", ...
    removed_citations: list[int] = field(default_factory=list)
    draft: str = ""  # the model's raw text when it was not accepted as an answer
    coverage: float = 0.0  # share of the question's content features found in the best passage
    not_found_probability: float | None = None  # P(the reply starts with NOT_FOUND), where the backend exposes logits
    grounding: float | None = None  # question coverage around the answer's source sentence (tools.rag_prompt.grounding)
    source_not_found_probability: float | None = None  # P(NOT_FOUND) given only the answer's source sentence
    answer_type_probability: float | None = None  # P(yes): the answer is the kind of thing the question asks for
    answer_score: float | None = None  # tools.answer_score over all the signals above (concise answers)
    quote: Citation | None = None  # the document span the answer is a verbatim copy of (extractive answers)
    checks: list[str] = field(default_factory=list)  # what could decline this answer (depends on the backend)

    def summary(self) -> str:
        if not self.found:
            return self.answer
        refs = "; ".join(f"[{c.number}] {c.where}" for c in self.citations)
        return f"{self.answer}\n\nSources: {refs}" if refs else self.answer


_DECLINE = {
    "zh": re.compile(
        r"^(?:根据|按照)?(?:所给|提供的|以上)?(?:资料|材料|段落|文本)?中?[，,]?\s*(?:无法|没有|未)(?:找到|提及|提到|回答|给出|说明)"
    ),
    "en": re.compile(
        r"^(?:the )?(?:passages?|evidence|context)\s+(?:do(?:es)?\s+not|don't)\s+(?:contain|mention|say)", re.I
    ),
}


def retract(res: RagAnswer, reason: str) -> None:
    """A late check declined the accepted answer `res`: keep its text as the draft."""
    res.found, res.draft, res.answer = False, res.answer, not_found_text(res.language)
    res.citations, res.quote = [], None
    res.reason = reason


def declines(text: str, lang: str) -> bool:
    return bool(_DECLINE.get(lang, _DECLINE["en"]).search(text.strip()))


def quote(span: str, passages: list[Citation]) -> Citation | None:
    """Where `span` occurs verbatim (cited passages first), with document offsets."""
    for p in passages if span else ():
        at = p.text.find(span)
        if at >= 0:
            return Citation(
                number=p.number,
                chunk_id=p.chunk_id,
                doc_id=p.doc_id,
                source=p.source,
                start=p.start + at,
                end=p.start + at + len(span),
                text=span,
                score=p.score,
                metadata=dict(p.metadata),
            )
    return None


def citation(number: int, hit: Any, start: int, end: int, text: str) -> Citation:
    return Citation(
        number=number,
        chunk_id=hit.chunk_id,
        doc_id=hit.doc_id,
        source=hit.source,
        start=start,
        end=end,
        text=text,
        score=float(hit.score),
        metadata=dict(hit.location),
    )
