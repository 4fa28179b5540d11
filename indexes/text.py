"""TextIndex: a persistent, crash-safe hybrid (dense + BM25) index of text documents.

    with TextIndex.open("kb/", embedder="all-MiniLM-L6-v2") as kb:
        kb.upsert([Document(id="a", text="...", source="/docs/a.md")])
        hits = kb.search("question", k=5)            # hybrid: FAISS dense + SQLite FTS5 BM25, fused by RRF

On disk: `manifest.json` (embedder name, dimension, BM25 analyzer), `index.sqlite` (documents,
chunks with offsets and locations (page, slide, sheet/row, heading), the FTS5 BM25 table and the
float32 vectors: the truth), `vectors.<gen>.faiss` (a
rebuildable view; see indexes/store.py). One writer at a time across processes, readers see each
committed write on their next search (indexes/base.py).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Literal, Sequence

import numpy as np

from indexes.analyzer import ANALYZER, LEGACY_ANALYZER, get_analyzer
from indexes.ann import IndexParams
from indexes.base import BaseIndex, Transaction
from indexes.embedders import Embedder, get_embedder
from indexes.fts import bm25_search, reanalyze
from indexes.hybrid import filter_sql, fuse, like_prefix
from indexes.prepare import Prepared, Preparer, WriteSpec
from indexes.readers.base import Mark
from polymodal.errors import InputError, StoreError

__all__ = ["TextIndex", "Document", "Hit", "DocumentInfo", "SearchMode"]

SearchMode = Literal["hybrid", "dense", "bm25"]
FORMAT = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY, source TEXT NOT NULL, type TEXT NOT NULL DEFAULT '',
    tags TEXT NOT NULL DEFAULT '[]', content_hash TEXT NOT NULL, text TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}', added_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS documents_source ON documents(source);
CREATE TABLE IF NOT EXISTS doc_tags (
    doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE, tag TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS doc_tags_tag ON doc_tags(tag);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
    ord INTEGER NOT NULL, start INTEGER NOT NULL, end INTEGER NOT NULL,
    heading TEXT NOT NULL DEFAULT '', text TEXT NOT NULL, metadata TEXT NOT NULL DEFAULT '{}');
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(tokens);
"""


@dataclass
class Document:
    """A document to index. `text` is chunked by the index; offsets refer to it. `marks` say where
    in the file each part of the text came from (page, slide, sheet/row...): each chunk stores the
    location of its start, and no chunk spans a mark made with `section=True`."""

    id: str
    text: str
    source: str = ""
    type: str = ""
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    marks: list[Mark] = field(default_factory=list)

    def content_hash(self) -> str:
        """Of the text, and of the marks when there are any (so locations added later re-chunk)."""
        h = hashlib.sha256(self.text.encode("utf-8"))
        if self.marks:
            marks = [[m.start, m.meta, m.section] for m in self.marks]
            h.update(b"\0" + json.dumps(marks, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8"))
        return h.hexdigest()


def _check_ids(ids: list[str]) -> None:
    if len(set(ids)) != len(ids):
        raise InputError("duplicate document ids in one call")
    if not all(isinstance(i, str) and i for i in ids):
        raise InputError("every document needs a non-empty string id")


@dataclass
class DocumentInfo:
    doc_id: str
    source: str
    type: str
    tags: list[str]
    content_hash: str
    chunks: int
    chars: int
    added_at: float
    metadata: dict[str, Any]


@dataclass
class Hit:
    """One retrieved chunk with its provenance: text[start:end] of document `doc_id` from `source`."""

    chunk_id: str
    doc_id: str
    source: str
    start: int
    end: int
    text: str
    score: float
    heading: str = ""
    dense_score: float | None = None
    bm25_score: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)  # the document's, then the chunk's location
    location: dict[str, Any] = field(default_factory=dict)  # page (1-based), slide, sheet/row, heading path


class TextIndex(BaseIndex):
    """Documents, their chunks (with offsets), BM25 and dense vectors of the chunks (table `vectors`)."""

    kind = "text"
    noun = "text index"
    model_role = "embedder"
    FORMAT = FORMAT
    SCHEMA = _SCHEMA
    TABLES = {"vectors": "dim"}

    def __init__(
        self,
        folder: Path,
        embedder: Embedder,
        manifest: dict,
        read_only: bool,
        params: IndexParams,
        chunk_tokens: int,
        chunk_overlap: int,
        analyzer: str = ANALYZER,
        show_progress: bool | None = None,
    ) -> None:
        self.embedder = embedder
        self.chunk_tokens = chunk_tokens
        self.chunk_overlap = chunk_overlap
        super().__init__(folder, manifest, read_only, params)
        self.store = self.tables["vectors"]
        self._chunk_meta = self._migrate_chunk_metadata()
        # read-only: queries are analysed as the stored rows were
        self.analyzer = manifest.get("analyzer", LEGACY_ANALYZER)
        self.analyze = get_analyzer(self.analyzer)
        if self.analyzer != analyzer and not read_only:
            self.reanalyze(analyzer, show_progress)

    def reanalyze(self, analyzer: str, show_progress: bool | None = None) -> int:
        """Rebuild the BM25 rows with `analyzer` (see `reanalyze`); queries use it from now on."""
        done = reanalyze(self, analyzer, show_progress)
        self.analyzer, self.analyze = analyzer, get_analyzer(analyzer)
        return done

    @classmethod
    def open(
        cls,
        path: str | Path,
        embedder: Embedder | str | None = None,
        *,
        read_only: bool = False,
        create: bool = True,
        params: IndexParams | None = None,
        chunk_tokens: int = 200,
        chunk_overlap: int = 30,
        embedder_backend: str = "onnx",
        analyzer: str = ANALYZER,
        show_progress: bool | None = None,
    ) -> "TextIndex":
        """Open the index at `path`, creating it (with `embedder`) if absent.

        An existing index remembers its embedder: pass none to use it, or the same one; another
        embedder (or dimension) raises EmbedderMismatch. Its chunk sizes are the recorded ones.
        An index built with another BM25 `analyzer` is re-analysed (its FTS rows rebuilt from the
        stored chunk text; vectors untouched) when opened writable, with a progress bar.
        """
        get_analyzer(analyzer)
        folder, manifest = cls._find_manifest(path, read_only, create)
        ref = embedder if embedder is not None else (manifest or {}).get("embedder")
        if ref is None:
            raise InputError(f"a new index at {folder} needs an embedder")
        emb = get_embedder(ref, backend=embedder_backend) if isinstance(ref, str) else ref
        if manifest is not None:
            chunk_tokens = manifest.get("chunk_tokens", chunk_tokens)
            chunk_overlap = manifest.get("chunk_overlap", chunk_overlap)
        manifest = cls._adopt_model(
            folder, manifest, emb, chunk_tokens=chunk_tokens, chunk_overlap=chunk_overlap, analyzer=analyzer
        )
        params = params or IndexParams()
        return cls(folder, emb, manifest, read_only, params, chunk_tokens, chunk_overlap, analyzer, show_progress)

    def _migrate_chunk_metadata(self) -> bool:
        """Knowledge bases made before chunk locations get the column (empty locations)."""

        def has_column() -> bool:
            return "metadata" in {r[1] for r in self._conn.execute("PRAGMA table_info(chunks)")}

        if has_column() or self.read_only:
            return has_column()
        with self._write_lock():
            if not has_column():  # another writer may have added it while we waited
                self._conn.execute("ALTER TABLE chunks ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}'")
        return True

    # -- writing --------------------------------------------------------------------------------
    def write_spec(self) -> WriteSpec:
        """How this index chunks, analyses and embeds: what a worker needs to prepare documents for it."""
        backend = getattr(self.embedder, "backend", "onnx")
        return WriteSpec(
            self.embedder.name, self.store.dim, self.chunk_tokens, self.chunk_overlap, self.analyzer, backend
        )

    def add(self, docs: Sequence[Document], progress: Callable[[int, int], None] | None = None) -> dict[str, int]:
        """Add new documents; an id already present raises StoreError (use `upsert`).
        Returns the number of chunks stored per document id."""
        return self._write(docs, replace=False, progress=progress)

    def upsert(self, docs: Sequence[Document], progress: Callable[[int, int], None] | None = None) -> dict[str, int]:
        """Add documents, replacing any stored document with the same id.
        Returns the number of chunks stored per document id."""
        return self._write(docs, replace=True, progress=progress)

    def _write(
        self, docs: Sequence[Document], replace: bool, progress: Callable[[int, int], None] | None
    ) -> dict[str, int]:
        self._check_writable()
        docs = list(docs)
        _check_ids([d.id for d in docs])
        # Heavy work (chunking, embedding) before taking the lock or opening a transaction.
        items = Preparer(self.write_spec(), self.embedder).prepare(docs, progress)
        return self.write_prepared(items, replace=replace)

    def write_prepared(self, items: Sequence[Prepared], replace: bool = True) -> dict[str, int]:
        """Commit documents prepared elsewhere (indexes/prepare.py) in one transaction, replacing stored
        documents with the same id unless `replace` is False. Returns chunks stored per document id."""
        self._check_writable()
        items = list(items)
        ids = [it.doc.id for it in items]
        _check_ids(ids)
        for it in items:
            n = len(it.spans)
            if it.vectors is None or it.vectors.shape != (n, self.store.dim) or len(it.tokens) != n:
                raise InputError(f"document {it.doc.id!r} is not prepared for this index (chunks, tokens, vectors)")
        vecs = np.concatenate([it.vectors for it in items]) if items else np.zeros((0, self.store.dim), np.float32)
        with self._transaction() as tx:
            existing = self._existing(ids)
            if existing and not replace:
                raise StoreError(f"document id(s) already in the index: {', '.join(sorted(existing)[:5])} (use upsert)")
            if existing:
                self._delete_rows(tx, existing)
            new_ids: list[int] = []
            now = time.time()
            c = tx.conn
            for it in items:
                d = it.doc
                c.execute(
                    "INSERT INTO documents(doc_id, source, type, tags, content_hash, text, metadata, added_at) "
                    "VALUES(?,?,?,?,?,?,?,?)",
                    (
                        d.id,
                        d.source,
                        d.type,
                        json.dumps(list(d.tags), ensure_ascii=False),
                        it.content_hash,
                        d.text,
                        json.dumps(d.metadata, ensure_ascii=False, default=str),
                        now,
                    ),
                )
                c.executemany("INSERT INTO doc_tags(doc_id, tag) VALUES(?,?)", [(d.id, t) for t in d.tags])
                for ord_, ((a, b, heading, where), text, tokens) in enumerate(zip(it.spans, it.texts, it.tokens)):
                    cur = c.execute(
                        "INSERT INTO chunks(doc_id, ord, start, end, heading, text, metadata) VALUES(?,?,?,?,?,?,?)",
                        (d.id, ord_, a, b, heading, text, json.dumps(where, ensure_ascii=False, default=str)),
                    )
                    rowid = int(cur.lastrowid)
                    c.execute("INSERT INTO chunks_fts(rowid, tokens) VALUES(?,?)", (rowid, tokens))
                    new_ids.append(rowid)
            tx.write("vectors", new_ids, vecs)
        self._maybe_save()
        return {it.doc.id: len(it.spans) for it in items}

    def _maybe_save(self) -> None:
        # Small indexes persist FAISS after every write (cheap); large ones on save()/close(),
        # since repair-on-open restores anything committed but not yet saved.
        if self.store.ntotal <= 200_000:
            self.save()

    def _existing(self, doc_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for i in range(0, len(doc_ids), 900):
            part = list(doc_ids[i : i + 900])
            q = f"SELECT doc_id FROM documents WHERE doc_id IN ({','.join('?' * len(part))})"
            found.update(r[0] for r in self._conn.execute(q, part))
        return found

    def _delete_rows(self, tx: Transaction, doc_ids: Iterable[str]) -> None:
        """Inside a transaction: remove documents, chunks, BM25 rows and vectors."""
        c = tx.conn
        chunk_ids: list[int] = []
        for doc_id in doc_ids:
            chunk_ids.extend(r[0] for r in c.execute("SELECT id FROM chunks WHERE doc_id=?", (doc_id,)))
            c.execute("DELETE FROM documents WHERE doc_id=?", (doc_id,))
        c.executemany("DELETE FROM chunks_fts WHERE rowid=?", [(i,) for i in chunk_ids])
        tx.erase(chunk_ids)

    def delete(self, doc_ids: Sequence[str]) -> int:
        """Delete documents by id from both the dense and the BM25 side; unknown ids are a no-op.
        Returns the number of documents deleted."""
        with self._transaction() as tx:
            existing = self._existing(list(doc_ids))
            self._delete_rows(tx, existing)
        if existing:
            self._maybe_save()
        return len(existing)

    # -- reading --------------------------------------------------------------------------------
    def count(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0])

    def count_chunks(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])

    def get_by_ids(self, doc_ids: Sequence[str]) -> list[Document]:
        """Documents by id, in the order asked; unknown ids are skipped."""
        out = []
        for doc_id in doc_ids:
            r = self._conn.execute("SELECT * FROM documents WHERE doc_id=?", (doc_id,)).fetchone()
            if r:
                out.append(
                    Document(
                        id=r["doc_id"],
                        text=r["text"],
                        source=r["source"],
                        type=r["type"],
                        tags=json.loads(r["tags"]),
                        metadata=json.loads(r["metadata"]),
                    )
                )
        return out

    def content_hashes(self, source_prefix: str = "") -> dict[str, str]:
        """source -> content hash, for incremental ingestion."""
        rows = self._conn.execute(
            "SELECT doc_id, content_hash FROM documents WHERE source LIKE ? ESCAPE '\\'",
            (like_prefix(source_prefix),),
        )
        return {r[0]: r[1] for r in rows}

    def list_documents(self, source_prefix: str = "") -> list[DocumentInfo]:
        rows = self._conn.execute(
            "SELECT d.*, COUNT(c.id) AS n, LENGTH(d.text) AS chars FROM documents d "
            "LEFT JOIN chunks c ON c.doc_id = d.doc_id WHERE d.source LIKE ? ESCAPE '\\' "
            "GROUP BY d.doc_id ORDER BY d.source",
            (like_prefix(source_prefix),),
        )
        return [
            DocumentInfo(
                r["doc_id"],
                r["source"],
                r["type"],
                json.loads(r["tags"]),
                r["content_hash"],
                r["n"],
                r["chars"],
                r["added_at"],
                json.loads(r["metadata"]),
            )
            for r in rows
        ]

    def search(
        self,
        query: str,
        k: int = 5,
        *,
        mode: SearchMode = "hybrid",
        filter: dict[str, Any] | None = None,
        fusion: Literal["rrf", "weighted"] = "rrf",
        alpha: float = 0.5,
    ) -> list[Hit]:
        """Top-k chunks for `query`.

        mode: "hybrid" (dense + BM25 fused), "dense" or "bm25". fusion: reciprocal rank fusion
        (default) or a weighted sum of min-max normalised scores with weight `alpha` on dense.
        filter: {"source": str|list, "source_prefix": str, "type": str|list, "tags": str|list (any),
        "doc_id": str|list}.
        """
        if mode not in ("hybrid", "dense", "bm25"):
            raise InputError(f"unknown search mode '{mode}' (hybrid, dense or bm25)")
        if k <= 0 or not query.strip():
            return []
        with self._reading():
            allowed = self._allowed_ids(filter) if filter else None
            if allowed is not None and len(allowed) == 0:
                return []
            n = max(k * 4, 20) if mode == "hybrid" else k
            dense: dict[int, float] = {}
            bm25: dict[int, float] = {}
            if mode in ("hybrid", "dense"):
                q = self.embedder.embed_query(query)
                D, I = self.store.search(q, n, allowed)
                dense = {int(i): float(s) for i, s in zip(I[0], D[0]) if i >= 0}
            if mode in ("hybrid", "bm25"):
                bm25 = self._bm25(query, n, filter)
            rows = self._chunk_rows(set(dense) | set(bm25))  # drops tombstoned ids
            dense = {i: s for i, s in dense.items() if i in rows}
            bm25 = {i: s for i, s in bm25.items() if i in rows}
            scores = fuse(dense, bm25, mode, fusion, alpha)
            ranked = sorted(scores, key=lambda i: -scores[i])[:k]
            return [self._hit(rows[i], scores[i], dense.get(i), bm25.get(i)) for i in ranked]

    def _hit(self, r: Any, score: float, dense: float | None, bm25: float | None) -> Hit:
        where = json.loads(r["metadata"]) if self._chunk_meta else {}
        return Hit(
            chunk_id=f"{r['doc_id']}#{r['ord']}",
            doc_id=r["doc_id"],
            source=r["source"],
            start=r["start"],
            end=r["end"],
            text=r["text"],
            score=float(score),
            heading=r["heading"],
            dense_score=dense,
            bm25_score=bm25,
            metadata={**json.loads(r["doc_metadata"]), **where},
            location=where,
        )

    def _chunk_rows(self, ids: set[int]) -> dict[int, Any]:
        out: dict[int, Any] = {}
        id_list = list(ids)
        for s in range(0, len(id_list), 900):
            part = id_list[s : s + 900]
            q = (
                "SELECT c.*, d.source, d.metadata AS doc_metadata "
                "FROM chunks c JOIN documents d ON d.doc_id = c.doc_id "
                f"WHERE c.id IN ({','.join('?' * len(part))})"
            )
            out.update({r["id"]: r for r in self._conn.execute(q, part)})
        return out

    def _allowed_ids(self, filter: dict[str, Any]) -> np.ndarray:
        where, args = filter_sql(filter)
        q = f"SELECT c.id FROM chunks c JOIN documents d ON d.doc_id=c.doc_id WHERE {where}"
        rows = self._conn.execute(q, args)
        return np.fromiter((r[0] for r in rows), dtype=np.int64)

    def _bm25(self, query: str, n: int, filter: dict[str, Any] | None) -> dict[int, float]:
        terms = list(dict.fromkeys(self.analyze(query)))[:64]
        return bm25_search(self._conn, terms, n, filter)
