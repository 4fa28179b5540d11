"""Preparing documents for a TextIndex apart from writing them: chunking, BM25 analysis, embedding.

The heavy work of a write can then run anywhere (this process, Ray workers: indexes/distributed/)
while the index's one writer only commits: `TextIndex.write_prepared(items)`. A `WriteSpec` is what
a worker needs to prepare documents exactly as the index itself would (`TextIndex.write_spec()`).

    spec = kb.write_spec()
    prep = Preparer(spec)                    # loads the embedder named in the spec
    items = prep.embed([prep.chunk(d) for d in docs])
    kb.write_prepared(items)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from indexes.analyzer import get_analyzer
from indexes.chunking import chunk_text
from indexes.embedders import Embedder, get_embedder
from indexes.readers.base import MARKDOWN_TYPES, Mark, heading_marks, location_at
from polymodal.errors import EmbedderMismatch, InputError

if TYPE_CHECKING:
    from indexes.text import Document

__all__ = ["WriteSpec", "Prepared", "Preparer", "chunk_spans"]

Span = tuple[int, int, str, dict[str, Any]]  # start, end, heading, location


@dataclass(frozen=True)
class WriteSpec:
    """How an index chunks, analyses and embeds (from its manifest)."""

    embedder: str
    dim: int
    chunk_tokens: int
    chunk_overlap: int
    analyzer: str
    backend: str = "onnx"


@dataclass
class Prepared:
    """One document ready to commit: its chunks' spans and texts, BM25 tokens and (once embedded) vectors."""

    doc: "Document"
    spans: list[Span]
    texts: list[str]
    tokens: list[str]
    vectors: np.ndarray | None = None
    content_hash: str = field(default="")

    def __post_init__(self) -> None:
        if not self.content_hash:
            self.content_hash = self.doc.content_hash()

    # A plain-data form (JSON text and raw float32 bytes) to move between processes.
    def to_row(self) -> dict[str, Any]:
        d = self.doc
        payload = {
            "doc": {
                "id": d.id,
                "text": d.text,
                "source": d.source,
                "type": d.type,
                "tags": list(d.tags),
                "metadata": d.metadata,
                "marks": [asdict(m) for m in d.marks],
            },
            "spans": [list(s) for s in self.spans],
            "tokens": self.tokens,
            "hash": self.content_hash,
        }
        return {"payload": json.dumps(payload, ensure_ascii=False, default=str), "vectors": self.vector_bytes()}

    def vector_bytes(self) -> bytes:
        """The vectors as raw float32 bytes (empty before embedding)."""
        return b"" if self.vectors is None else np.ascontiguousarray(self.vectors, dtype=np.float32).tobytes()

    @classmethod
    def from_row(cls, row: dict[str, Any], dim: int) -> "Prepared":
        from indexes.text import Document

        p = json.loads(row["payload"])
        raw = p["doc"]
        doc = Document(
            id=raw["id"],
            text=raw["text"],
            source=raw["source"],
            type=raw["type"],
            tags=raw["tags"],
            metadata=raw["metadata"],
            marks=[Mark(m["start"], m["meta"], m["section"]) for m in raw["marks"]],
        )
        spans = [(int(a), int(b), str(h), dict(w)) for a, b, h, w in p["spans"]]
        texts = [doc.text[a:b] for a, b, _, _ in spans]
        blob = row.get("vectors") or b""
        vectors = np.frombuffer(blob, dtype=np.float32).reshape(-1, dim).copy() if blob else None
        return cls(doc, spans, texts, p["tokens"], vectors, p["hash"])


def chunk_spans(doc: "Document", count_tokens: Callable[[str], int], chunk_tokens: int, overlap: int) -> list[Span]:
    """(start, end, heading, location) of each chunk of `doc`: Markdown by section, no chunk across
    a mark made with `section=True` (a page, a slide, a row)."""
    markdown = doc.type in MARKDOWN_TYPES or doc.source.lower().endswith((".md", ".markdown"))
    marks = list(doc.marks) + (heading_marks(doc.text) if markdown else [])
    breaks = sorted({m.start for m in doc.marks if m.section and 0 < m.start < len(doc.text)})
    spans = chunk_text(doc.text, count_tokens, chunk_tokens, overlap, markdown, breaks=breaks)
    return [(s.start, s.end, s.heading, location_at(marks, s.start, s.end) if marks else {}) for s in spans]


class Preparer:
    """Chunks, analyses and embeds documents as the index described by `spec` would. `embedder`:
    an instance to use (else the one the spec names, loaded here with `threads`)."""

    def __init__(self, spec: WriteSpec, embedder: Embedder | None = None, threads: int = 0) -> None:
        self.spec = spec
        self.embedder = embedder or get_embedder(spec.embedder, backend=spec.backend, threads=threads)
        if self.embedder.name != spec.embedder:
            raise EmbedderMismatch(f"the index uses embedder '{spec.embedder}', not '{self.embedder.name}'")
        self.analyze = get_analyzer(spec.analyzer)

    def chunk(self, doc: "Document") -> Prepared:
        if not isinstance(doc.id, str) or not doc.id:
            raise InputError("every document needs a non-empty string id")
        spans = chunk_spans(doc, self.embedder.count_tokens, self.spec.chunk_tokens, self.spec.chunk_overlap)
        texts = [doc.text[a:b] for a, b, _, _ in spans]
        return Prepared(doc, spans, texts, [" ".join(self.analyze(t)) for t in texts])

    def embed(self, items: Sequence[Prepared], progress: Callable[[int, int], None] | None = None) -> list[Prepared]:
        """Embed every chunk of `items` (in large slices: sentence-transformers sorts each call's texts by length)."""
        items = list(items)
        texts = [t for it in items for t in it.texts]
        parts, batch = [], 1024
        for i in range(0, len(texts), batch):
            parts.append(np.asarray(self.embedder.embed_documents(texts[i : i + batch]), dtype=np.float32))
            if progress:
                progress(min(i + batch, len(texts)), len(texts))
        vecs = np.concatenate(parts, axis=0) if parts else np.zeros((0, self.spec.dim), dtype=np.float32)
        if vecs.shape[1] != self.spec.dim:
            raise EmbedderMismatch(f"the embedder gives {vecs.shape[1]}-d vectors; the index holds {self.spec.dim}-d")
        pos = 0
        for it in items:
            it.vectors, pos = vecs[pos : pos + len(it.texts)], pos + len(it.texts)
        return items

    def prepare(self, docs: Sequence["Document"], progress: Callable[[int, int], None] | None = None) -> list[Prepared]:
        return self.embed([self.chunk(d) for d in docs], progress)
