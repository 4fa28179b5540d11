"""Split documents into chunks sized in the embedder's tokens, keeping character offsets.

Sentences end at Chinese (。！？；) and Western (. ! ? ;) punctuation or blank lines; Markdown
headings start a new section (a chunk never spans two sections) and the heading is kept with the
chunk. Consecutive chunks overlap by whole sentences worth at most `overlap` tokens.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import Callable, Sequence

__all__ = ["Span", "split_sentences", "split_sections", "chunk_text"]


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    heading: str = ""


_SENT_END = re.compile(
    r"(?:[。！？；!?;]+[”’」』）)\"']*)"  # CJK / Western terminal punctuation (+ closing quotes)
    r"|(?:\.(?=\s|$)[”’\"')]*)"  # a full stop followed by space or end (not 3.14, e.g. URLs)
    r"|(?:\n\s*\n)"  # blank line
)
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.M)


def split_sections(text: str, markdown: bool, breaks: Sequence[int] = ()) -> list[Span]:
    """Markdown: one span per heading-led section; otherwise the whole text. Each span is cut again
    at `breaks` (page, slide or row starts), so no chunk spans one."""
    spans = _markdown_sections(text) if markdown else [Span(0, len(text))]
    if not breaks:
        return spans
    out: list[Span] = []
    for s in spans:
        cuts = breaks[bisect_right(breaks, s.start) : bisect_left(breaks, s.end)]
        edges = [s.start, *cuts, s.end]
        out.extend(Span(a, b, s.heading) for a, b in zip(edges, edges[1:]) if text[a:b].strip())
    return out


def _markdown_sections(text: str) -> list[Span]:
    spans: list[Span] = []
    matches = list(_HEADING.finditer(text))
    if not matches or matches[0].start() > 0:
        end = matches[0].start() if matches else len(text)
        spans.append(Span(0, end))
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        spans.append(Span(m.start(), end, m.group(2).strip()))
    return [s for s in spans if text[s.start : s.end].strip()]


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Sentence spans (offsets into `text`) inside text[start:end], whitespace trimmed."""
    end = len(text) if end is None else end
    out: list[Span] = []
    pos = start
    for m in _SENT_END.finditer(text, start, end):
        _push(text, pos, m.end(), out)
        pos = m.end()
    _push(text, pos, end, out)
    return out


def _push(text: str, a: int, b: int, out: list[Span]) -> None:
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    if b > a:
        out.append(Span(a, b))


def _hard_split(text: str, span: Span, max_tokens: int, count: Callable[[str], int]) -> list[Span]:
    """Cut a sentence longer than the budget into windows of about `max_tokens` tokens."""
    n = count(text[span.start : span.end])
    if n <= max_tokens:
        return [span]
    parts = -(-n // max_tokens)
    width = -(-(span.end - span.start) // parts)
    out = []
    for a in range(span.start, span.end, width):
        b = min(span.end, a + width)
        # prefer cutting at a space so English words stay whole
        if b < span.end:
            sp = text.rfind(" ", a + width // 2, b)
            b = sp if sp > a else b
        out.append(Span(a, b))
    # merge a tiny tail
    fixed: list[Span] = []
    for s in out:
        if fixed and s.start < fixed[-1].end:
            s = Span(fixed[-1].end, s.end)
        if s.end > s.start:
            fixed.append(s)
    return fixed


def chunk_text(
    text: str,
    count_tokens: Callable[[str], int],
    chunk_tokens: int = 200,
    overlap: int = 30,
    markdown: bool = False,
    breaks: Sequence[int] = (),
) -> list[Span]:
    """Chunk spans of `text`. `chunk_tokens <= 0` keeps the text whole (one chunk); `breaks` are
    offsets no chunk spans (sorted)."""
    if not text.strip():
        return []
    if chunk_tokens <= 0:
        s = split_sentences(text)
        return [Span(s[0].start, s[-1].end)] if s else []
    chunks: list[Span] = []
    for section in split_sections(text, markdown, breaks):
        sents: list[Span] = []
        for s in split_sentences(text, section.start, section.end):
            sents.extend(_hard_split(text, s, chunk_tokens, count_tokens))
        sizes = [count_tokens(text[s.start : s.end]) for s in sents]
        i = 0
        while i < len(sents):
            j, total = i, 0
            while j < len(sents) and (j == i or total + sizes[j] <= chunk_tokens):
                total += sizes[j]
                j += 1
            chunks.append(Span(sents[i].start, sents[j - 1].end, section.heading))
            if j >= len(sents):
                break
            # step back over trailing sentences worth <= overlap tokens (always advance by one)
            back, k = 0, j
            while k - 1 > i and back + sizes[k - 1] <= overlap:
                k -= 1
                back += sizes[k]
            i = k
    return chunks
