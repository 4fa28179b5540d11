"""Loaders for the shared evaluation data (read in place from ../shared/data; never copied)."""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["default_data_dir", "load_vaswani", "load_seed_articles"]


def default_data_dir() -> Path:
    here = Path(__file__).resolve().parent.parent
    return (here.parent / "shared" / "data").resolve()


def load_vaswani(data: Path) -> tuple[dict[str, str], dict[str, str], dict[str, set[str]]]:
    """(docs id->text, queries id->text, qrels query id -> relevant doc ids)."""
    root = Path(data) / "vaswani"
    raw = (root / "doc-text.trec").read_text(encoding="utf-8", errors="replace")
    docs = {
        m.group(1).strip(): " ".join(m.group(2).split())
        for m in re.finditer(r"<DOCNO>(.*?)</DOCNO>(.*?)</DOC>", raw, flags=re.S)
    }
    rawq = (root / "query-text.trec").read_text(encoding="utf-8", errors="replace")
    queries = {
        m.group(1).strip(): " ".join(m.group(2).split()).lower()
        for m in re.finditer(r"<num>(.*?)</num>\s*<title>(.*?)</title>", rawq, flags=re.S)
    }
    qrels: dict[str, set[str]] = {}
    for line in (root / "qrels").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 4 and int(parts[3]) > 0:
            qrels.setdefault(parts[0], set()).add(parts[2])
    return docs, queries, qrels


def load_seed_articles(data: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted((Path(data) / "seed-articles").glob("*.txt"))}
