"""Hybrid retrieval helpers: metadata filters as SQL, and fusion of dense and BM25 rankings
(reciprocal rank fusion, or a weighted sum of min-max normalised scores)."""

from __future__ import annotations

from typing import Any

from polymodal.errors import InputError

__all__ = ["filter_sql", "fuse", "like_escape", "like_prefix"]


def filter_sql(filter: dict[str, Any]) -> tuple[str, list[Any]]:
    """SQL WHERE clause (over documents `d`) and its arguments for a metadata filter."""
    where, args = [], []
    known = {"source", "source_prefix", "type", "tags", "doc_id"}
    unknown = set(filter) - known
    if unknown:
        raise InputError(f"unknown filter key(s): {', '.join(sorted(unknown))} (use {', '.join(sorted(known))})")
    for key, col in (("source", "d.source"), ("type", "d.type"), ("doc_id", "d.doc_id")):
        if key in filter:
            vals = filter[key] if isinstance(filter[key], (list, tuple)) else [filter[key]]
            where.append(f"{col} IN ({','.join('?' * len(vals))})")
            args.extend(vals)
    if "source_prefix" in filter:
        where.append("d.source LIKE ? ESCAPE '\\'")
        args.append(like_prefix(filter["source_prefix"]))
    if "tags" in filter:
        tags = filter["tags"] if isinstance(filter["tags"], (list, tuple)) else [filter["tags"]]
        where.append(f"d.doc_id IN (SELECT doc_id FROM doc_tags WHERE tag IN ({','.join('?' * len(tags))}))")
        args.extend(tags)
    return " AND ".join(where) or "1", args


def fuse(dense: dict[int, float], bm25: dict[int, float], mode: str, fusion: str, alpha: float) -> dict[int, float]:
    if mode == "dense":
        return dense
    if mode == "bm25":
        return bm25
    if fusion == "weighted":

        def norm(d: dict[int, float]) -> dict[int, float]:
            if not d:
                return {}
            lo, hi = min(d.values()), max(d.values())
            return {i: (s - lo) / (hi - lo) if hi > lo else 1.0 for i, s in d.items()}

        nd, nb = norm(dense), norm(bm25)
        return {i: alpha * nd.get(i, 0.0) + (1 - alpha) * nb.get(i, 0.0) for i in set(nd) | set(nb)}
    out: dict[int, float] = {}
    for ranking in (dense, bm25):
        for rank, i in enumerate(sorted(ranking, key=lambda j: -ranking[j])):
            out[i] = out.get(i, 0.0) + 1.0 / (60 + rank + 1)
    return out


def like_escape(s: str) -> str:
    """`s` as a literal inside a LIKE pattern with ESCAPE '\\'."""
    return s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def like_prefix(prefix: str) -> str:
    """A LIKE pattern (ESCAPE '\\') matching strings that start with `prefix`."""
    return like_escape(prefix) + "%"
