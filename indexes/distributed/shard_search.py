"""One shard of a ShardedTextIndex, as the router sees it (in this process or as a Ray actor):
dense and BM25 candidates with raw scores, the BM25 statistics needed to score them as one
unsharded index would, and the rows of the chunks that win.

BM25 is SQLite FTS5's `bm25()` (k1 1.2, b 0.75, sqlite fts5_aux.c), but computed on the router
from the shards' summed statistics (rows, tokens, rows per term), not each shard's own: a shard's
IDF and mean length would rank its chunks on a scale the others do not share.
"""

from __future__ import annotations

import math
import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from indexes.fts import bm25_search
from indexes.text import Document, Hit, TextIndex
from polymodal.errors import PolymodalError, StoreCorrupt, StoreError

__all__ = ["Candidates", "ShardServer", "ShardEmbedder", "bm25_global", "K1", "B"]

K1, B = 1.2, 0.75  # FTS5 bm25() defaults
_ONE_TOKEN = re.compile(r"[^\W_]+")  # an FTS5 unicode61 token (the analyser's tokens are ASCII words or CJK)


@dataclass
class Candidates:
    """What one shard returns for a query (ids are the shard's chunk row ids)."""

    dense: list[tuple[int, float]] = field(default_factory=list)  # (id, inner product), best first
    bm25: list[tuple[int, list[int], int]] = field(default_factory=list)  # (id, frequency per term, tokens)
    rows: int = 0  # BM25 rows (chunks) in the shard
    tokens: int = 0  # their tokens
    df: list[int] = field(default_factory=list)  # rows holding each term


def bm25_global(parts: Sequence[Candidates], per_shard: bool = False) -> dict[tuple[int, int], float]:
    """(shard, id) -> BM25 score over the union of the shards, as FTS5 scores one table.
    `per_shard`: each shard's own statistics instead (what merging FTS5's scores would give)."""
    groups = [[p] for p in parts] if per_shard else [list(parts)]
    out: dict[tuple[int, int], float] = {}
    s = 0
    for group in groups:
        out.update(_score(group, s))
        s += len(group)
    return out


def _score(parts: Sequence[Candidates], first: int) -> dict[tuple[int, int], float]:
    rows = sum(p.rows for p in parts)
    if not rows:
        return {}
    avgdl = sum(p.tokens for p in parts) / rows
    n_terms = max((len(p.df) for p in parts), default=0)
    df = [sum(p.df[j] for p in parts if j < len(p.df)) for j in range(n_terms)]
    idf = [max(math.log((rows - d + 0.5) / (d + 0.5)), 1e-6) for d in df]
    out: dict[tuple[int, int], float] = {}
    for s, p in enumerate(parts, start=first):
        for rowid, tfs, dl in p.bm25:
            norm = K1 * (1 - B + B * dl / avgdl)
            out[(s, rowid)] = sum(idf[j] * tf * (K1 + 1) / (tf + norm) for j, tf in enumerate(tfs) if tf)
    return out


def _varints(blob: bytes) -> list[int]:
    """FTS5's varints (SQLite's: big-endian 7-bit groups, a 9th byte of 8 bits)."""
    out, i = [], 0
    while i < len(blob):
        v = 0
        for n in range(9):
            b = blob[i]
            i += 1
            if n == 8:
                v = (v << 8) | b
                break
            v = (v << 7) | (b & 0x7F)
            if not b & 0x80:
                break
        out.append(v)
    return out


class ShardEmbedder:
    """The shard's recorded embedder: its name and dimension come from the manifest, so a shard
    opens without loading the model; the model loads on the first write that embeds."""

    def __init__(self, name: str, dim: int, backend: str = "onnx") -> None:
        self.name, self._dim, self.backend = name, dim, backend

    @property
    def dim(self) -> int:
        return self._dim

    def _real(self) -> Any:
        from indexes.embedders import get_embedder

        return get_embedder(self.name, backend=self.backend)

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        return self._real().embed_documents(texts)

    def embed_query(self, text: str) -> np.ndarray:
        return self._real().embed_query(text)

    def count_tokens(self, text: str) -> int:
        return self._real().count_tokens(text)


class ShardServer:
    """A shard's TextIndex behind the calls the router makes; the same class runs in-process or
    as a Ray actor (`ray.remote(ShardServer)`), so both modes share one code path."""

    def __init__(self, folder: str, embedder: Any, read_only: bool, create: bool, defer_errors: bool = False) -> None:
        """`defer_errors`: keep a failure to open for `ping` to raise (an actor whose constructor
        raised would only say that it died), instead of raising it here."""
        self._index: TextIndex | None = None
        self._error: PolymodalError | None = None
        self._vocab = False
        try:
            self._index = TextIndex.open(
                Path(folder), embedder, read_only=read_only, create=create, show_progress=False
            )
        except sqlite3.DatabaseError as exc:
            self._error = StoreCorrupt(f"unreadable SQLite database in {folder}: {exc}")
        except PolymodalError as exc:
            self._error = exc
        if self._error is not None and not defer_errors:
            raise self._error

    @property
    def index(self) -> TextIndex:
        if self._index is None:
            raise self._error or StoreError("shard not open")
        return self._index

    def ping(self) -> int:
        """This shard's process id, once its index is open (else the error that stopped it)."""
        import os

        _ = self.index
        return os.getpid()

    # -- searching ------------------------------------------------------------------------------
    def candidates(
        self, qvec: np.ndarray | None, terms: list[str], n: int, depth: int, filter: dict | None
    ) -> Candidates:
        """Top-`n` dense candidates, and the top-`depth` BM25 matches by this shard's own scores
        with what the router needs to rescore them globally (term frequencies, row lengths)."""
        ix = self.index
        with ix._reading():
            out = Candidates()
            if terms:  # statistics of the whole shard, filter or not, as FTS5 keeps them
                out.rows, out.tokens = self._totals()
                out.df = self._df(terms)
            allowed = ix._allowed_ids(filter) if filter else None
            if allowed is not None and len(allowed) == 0:
                return out
            if qvec is not None:
                D, I = ix.store.search(qvec, n, allowed)
                out.dense = [(int(i), float(s)) for i, s in zip(I[0], D[0]) if i >= 0]
            if terms:
                out.bm25 = self._bm25_rows(terms, depth, filter)
            live = self._live({i for i, _ in out.dense})  # FTS rows go with their chunk, in one transaction
            out.dense = [c for c in out.dense if c[0] in live]
            return out

    def _bm25_rows(self, terms: list[str], depth: int, filter: dict | None) -> list[tuple[int, list[int], int]]:
        conn = self.index._conn
        ids = list(bm25_search(conn, terms, depth, filter))  # this shard's best, by its own statistics
        q = f"SELECT rowid, tokens FROM chunks_fts WHERE rowid IN ({','.join('?' * len(ids))})"
        rows = conn.execute(q, ids).fetchall() if ids else []  # the text of these rows only, not of every match
        out = []
        for rowid, tokens in rows:
            words = tokens.split()  # the analyser's tokens; FTS5 may split one further (o'neil: 2)
            out.append((int(rowid), [words.count(t) for t in terms], len(_ONE_TOKEN.findall(tokens))))
        return out

    def _totals(self) -> tuple[int, int]:
        """(rows, tokens) of the FTS table: FTS5's averages record (id 1 of its data table)."""
        r = self.index._conn.execute("SELECT block FROM chunks_fts_data WHERE id = 1").fetchone()
        if r is None or not r[0]:
            return 0, 0
        vals = _varints(bytes(r[0]))
        return vals[0], sum(vals[1:])

    def _df(self, terms: list[str]) -> list[int]:
        """Rows holding each term: FTS5's vocabulary for one-token terms, a MATCH count otherwise."""
        conn = self.index._conn
        if not self._vocab:  # a temp table: fine on a read-only connection
            conn.execute(
                "CREATE VIRTUAL TABLE IF NOT EXISTS temp.chunks_fts_rows USING fts5vocab(main, chunks_fts, row)"
            )
            self._vocab = True
        single = [t for t in terms if _ONE_TOKEN.fullmatch(t)]
        found: dict[str, int] = {}
        for s in range(0, len(single), 500):
            part = single[s : s + 500]
            q = f"SELECT term, doc FROM temp.chunks_fts_rows WHERE term IN ({','.join('?' * len(part))})"
            found.update((r[0], int(r[1])) for r in conn.execute(q, part))
        out = []
        for t in terms:
            if _ONE_TOKEN.fullmatch(t):
                out.append(found.get(t, 0))
            else:
                q = "SELECT COUNT(*) FROM chunks_fts WHERE chunks_fts MATCH ?"
                out.append(int(conn.execute(q, ['"' + t.replace('"', '""') + '"']).fetchone()[0]))
        return out

    def _live(self, ids: set[int]) -> set[int]:
        """Those of `ids` still stored (a FAISS view may hold tombstones until it is rebuilt)."""
        out: set[int] = set()
        id_list = list(ids)
        for s in range(0, len(id_list), 900):
            part = id_list[s : s + 900]
            q = f"SELECT id FROM chunks WHERE id IN ({','.join('?' * len(part))})"
            out.update(r[0] for r in self.index._conn.execute(q, part))
        return out

    def hits(self, ids: list[int]) -> dict[int, Hit]:
        """The chunks `ids` as hits (scores are the router's to fill); ids gone since are skipped."""
        ix = self.index
        with ix._reading():
            rows = ix._chunk_rows(set(ids))
            return {i: ix._hit(rows[i], 0.0, None, None) for i in ids if i in rows}

    # -- writing and listing (TextIndex's own calls) -------------------------------------------
    def upsert(self, docs: list[Document]) -> dict[str, int]:
        return self.index.upsert(docs)

    def add(self, docs: list[Document]) -> dict[str, int]:
        return self.index.add(docs)

    def existing(self, doc_ids: list[str]) -> list[str]:
        return sorted(self.index._existing(doc_ids))

    def delete(self, doc_ids: list[str]) -> int:
        return self.index.delete(doc_ids)

    def count(self) -> int:
        return self.index.count()

    def count_chunks(self) -> int:
        return self.index.count_chunks()

    def get_by_ids(self, doc_ids: list[str]) -> list[Document]:
        return self.index.get_by_ids(doc_ids)

    def list_documents(self, source_prefix: str = "") -> list[Any]:
        return self.index.list_documents(source_prefix)

    def content_hashes(self, source_prefix: str = "") -> dict[str, str]:
        return self.index.content_hashes(source_prefix)

    def save(self) -> None:
        self.index.save()

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
