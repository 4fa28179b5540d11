"""The BM25 side of a TextIndex: FTS5 queries over the analysed chunk tokens, and re-analysis
(the FTS rows rebuilt from the stored chunk text when the analyzer changes; vectors untouched)."""

from __future__ import annotations

import sys
from typing import Any

from indexes.analyzer import get_analyzer
from indexes.hybrid import filter_sql
from polymodal.fsutil import atomic_write_json

__all__ = ["bm25_search", "reanalyze"]


def bm25_search(conn: Any, terms: list[str], n: int, filter: dict[str, Any] | None) -> dict[int, float]:
    """chunk id -> BM25 score (higher is better) of the top `n` chunks matching any of `terms`."""
    if not terms:
        return {}
    match = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
    if not filter:
        # The FTS table alone: joining every matching row to chunks and documents tripled the
        # cost (11.6 vs 3.7 ms at 200k chunks) and only filters need it; rows of deleted
        # chunks never get here (their FTS rows go in the same transaction).
        sql = "SELECT rowid, bm25(chunks_fts) AS s FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY s LIMIT ?"
        return {int(r[0]): -float(r[1]) for r in conn.execute(sql, [match, n])}
    where, args = filter_sql(filter)
    sql = (
        "SELECT chunks_fts.rowid AS id, bm25(chunks_fts) AS s FROM chunks_fts "
        "JOIN chunks c ON c.id = chunks_fts.rowid JOIN documents d ON d.doc_id = c.doc_id "
        f"WHERE chunks_fts MATCH ? AND {where} ORDER BY s LIMIT ?"
    )
    return {int(r[0]): -float(r[1]) for r in conn.execute(sql, [match, *args, n])}


def reanalyze(index: Any, analyzer: str, show_progress: bool | None = None) -> int:
    """Rebuild the BM25 rows of `index` from its stored chunk text with `analyzer` (vectors are
    untouched), in one transaction, then record the analyzer in the manifest. Returns the chunks done."""
    from tqdm import tqdm

    analyze = get_analyzer(analyzer)
    total = index.count_chunks()
    show = sys.stderr.isatty() if show_progress is None else show_progress
    bar = tqdm(total=total, unit="chunk", desc=f"re-analysing BM25 ({analyzer})", disable=not show, file=sys.stderr)
    with index._transaction() as tx:
        tx.conn.execute("DELETE FROM chunks_fts")
        rows = tx.conn.execute("SELECT id, text FROM chunks ORDER BY id")  # streamed: chunks is not written
        while part := rows.fetchmany(2048):
            tx.conn.executemany(
                "INSERT INTO chunks_fts(rowid, tokens) VALUES(?,?)", [(r[0], " ".join(analyze(r[1]))) for r in part]
            )
            bar.update(len(part))
    bar.close()
    # after the commit: a crash in between only means re-analysing again on the next open
    index.manifest = {**index.manifest, "analyzer": analyzer}
    atomic_write_json(index.folder / "manifest.json", index.manifest)
    return total
