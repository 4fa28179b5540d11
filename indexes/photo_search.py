"""The SQL side of photo search: the signals table and its BM25 (FTS5) twin, filters (folder, tag,
date range, months, faces) as allowed ids, and BM25 rankings. ImageIndex fuses the BM25 ranking
with the embedding's through `indexes.hybrid.fuse`, as TextIndex does.

An image index written before these tables existed opens as it is: read-only it searches by the
embedding alone (`signal_state()` says so); the next writable open creates the tables and
`ImageIndex.index_folder` fills them in for photos already indexed (without re-embedding them).
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from indexes.analyzer import analyze
from indexes.hybrid import like_escape, like_prefix
from indexes.photo_signals import PhotoSignals, ocr_status, signal_document
from polymodal.errors import InputError

__all__ = [
    "SIGNALS_SCHEMA",
    "PhotoFilter",
    "store_signals",
    "delete_signals",
    "allowed_ids",
    "bm25",
    "signals_of",
    "check_filter",
    "signal_state",
    "signal_report",
    "paths_without_signals",
]

SIGNALS_SCHEMA = """
CREATE TABLE IF NOT EXISTS photo_signals (
    image_id INTEGER PRIMARY KEY REFERENCES images(id) ON DELETE CASCADE,
    faces INTEGER NOT NULL DEFAULT 0, face_score REAL NOT NULL DEFAULT 0,
    text TEXT NOT NULL DEFAULT '', ocr TEXT NOT NULL DEFAULT 'off', path_words TEXT NOT NULL DEFAULT '',
    taken_at TEXT NOT NULL DEFAULT '', date_source TEXT NOT NULL DEFAULT '', camera TEXT NOT NULL DEFAULT '',
    lat REAL, lon REAL, place TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS photo_signals_taken ON photo_signals(taken_at);
CREATE VIRTUAL TABLE IF NOT EXISTS photo_fts USING fts5(tokens, text);
"""
_COLUMNS = [f for f in PhotoSignals.__dataclass_fields__]

PhotoFilter = dict[str, Any]  # folder, tag, date_from, date_to, months, has_faces, min_faces
_KNOWN = {"folder", "tag", "date_from", "date_to", "months", "has_faces", "min_faces"}


def store_signals(conn: sqlite3.Connection, image_id: int, sig: PhotoSignals, tags: Sequence[str]) -> None:
    """Inside the writer's transaction: the photo's signals row and its BM25 tokens."""
    row = asdict(sig)
    conn.execute(
        f"INSERT OR REPLACE INTO photo_signals(image_id, {', '.join(_COLUMNS)}) "
        f"VALUES(?, {', '.join('?' * len(_COLUMNS))})",
        [image_id, *(row[c] for c in _COLUMNS)],
    )
    words, reserved, text = signal_document(sig, list(tags))
    conn.execute("DELETE FROM photo_fts WHERE rowid=?", (image_id,))
    conn.execute(
        "INSERT INTO photo_fts(rowid, tokens, text) VALUES(?,?,?)",
        (image_id, " ".join(analyze(words) + reserved), " ".join(analyze(text))),
    )


def delete_signals(conn: sqlite3.Connection, ids: Sequence[int]) -> None:
    """The FTS rows (a virtual table: no cascade) of deleted images."""
    conn.executemany("DELETE FROM photo_fts WHERE rowid=?", [(int(i),) for i in ids])


def signal_state(conn: sqlite3.Connection) -> dict[str, Any]:
    """Whether the signal tables exist, and how many indexed photos have no signals row yet."""
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
    if "photo_signals" not in names:
        return {"tables": False, "missing": int(conn.execute("SELECT COUNT(*) FROM images").fetchone()[0])}
    missing = conn.execute(
        "SELECT COUNT(*) FROM images WHERE id NOT IN (SELECT image_id FROM photo_signals)"
    ).fetchone()[0]
    counts = conn.execute(
        "SELECT SUM(faces > 0), SUM(taken_at != ''), SUM(place != ''), SUM(ocr = 'done'), SUM(text != '') "
        "FROM photo_signals"
    ).fetchone()
    return {
        "tables": True,
        "missing": int(missing),
        "with_faces": int(counts[0] or 0),
        "with_date": int(counts[1] or 0),
        "with_place": int(counts[2] or 0),
        "ocr_done": int(counts[3] or 0),
        "with_text": int(counts[4] or 0),
    }


def check_filter(f: PhotoFilter) -> PhotoFilter:
    unknown = set(f) - _KNOWN
    if unknown:
        raise InputError(f"unknown photo filter(s): {', '.join(sorted(unknown))} (use {', '.join(sorted(_KNOWN))})")
    from datetime import date

    for key in ("date_from", "date_to"):
        if f.get(key):
            try:
                date.fromisoformat(str(f[key])[:10])
            except ValueError as exc:
                raise InputError(f"{key} must be a date YYYY-MM-DD, got {f[key]!r}") from exc
    return {k: v for k, v in f.items() if v not in (None, "", (), [])}


def allowed_ids(conn: sqlite3.Connection, f: PhotoFilter, signals: bool, query: Any = None) -> np.ndarray | None:
    """Ids passing the filter (None: no filter). Date and face filters need the signal tables.
    `query` (a PhotoQuery) narrows the filter by what it names: its dates, then photos with faces
    when it asks for people (with at least as many faces as it counts). Each applies only if some
    photo passes it: a misread date or a missed face must not hide every photo."""
    if query is not None:
        wanted = []
        if query.date_from or query.months:
            wanted.append({"date_from": query.date_from, "date_to": query.date_to, "months": query.months})
        if query.people:
            wanted += [{"min_faces": query.people_count}] if query.people_count > 1 else []
            wanted.append({"has_faces": True})
        narrowed, best = dict(f), None
        for extra in wanted:
            if "has_faces" in extra and "min_faces" in narrowed:
                continue  # the face count already applied
            trial = allowed_ids(conn, {**narrowed, **extra}, True)
            if trial is not None and len(trial):
                narrowed, best = {**narrowed, **extra}, trial
        if best is not None:
            return best
    f = check_filter(f)
    if not f:
        return None
    where, args = [], []
    if f.get("folder"):
        root = str(Path(f["folder"]).expanduser().resolve())
        where.append("(i.folder = ? OR i.folder LIKE ? ESCAPE '\\')")
        args += [root, like_prefix(root.rstrip(os.sep) + os.sep)]
    if f.get("tag"):
        t = str(f["tag"]).strip().lower()
        e = like_escape(t)
        where.append(
            "i.id IN (SELECT image_id FROM image_tags WHERE lower(tag) = ? OR lower(tag) LIKE ? "
            "ESCAPE '\\' OR lower(tag) LIKE ? ESCAPE '\\' OR lower(tag) LIKE ? ESCAPE '\\')"
        )
        args += [t, f"{e} %", f"% {e}", f"% {e} %"]
    sig = []
    if f.get("date_from"):
        sig.append("s.taken_at >= ?")
        args.append(str(f["date_from"])[:10])
    if f.get("date_to"):
        sig.append("s.taken_at < ?")
        args.append(str(f["date_to"])[:10] + "T99")  # inclusive of the whole last day
    if f.get("months"):
        months = [int(m) for m in f["months"]]
        sig.append(f"s.taken_at != '' AND CAST(substr(s.taken_at, 6, 2) AS INTEGER) IN ({','.join('?' * len(months))})")
        args += months
    if f.get("has_faces") is not None:
        sig.append("s.faces > 0" if f["has_faces"] else "s.faces = 0")
    if f.get("min_faces"):
        sig.append("s.faces >= ?")
        args.append(int(f["min_faces"]))
    if sig and not signals:
        raise InputError(
            "date and face filters need photo signals, which this image index does not have yet: "
            "run 'polymodal images index FOLDER' once to add them"
        )
    if sig:
        where.append(f"i.id IN (SELECT s.image_id FROM photo_signals s WHERE {' AND '.join(sig)})")
    rows = conn.execute(f"SELECT i.id FROM images i WHERE {' AND '.join(where)}", args)
    return np.fromiter((r[0] for r in rows), dtype=np.int64)


def bm25(conn: sqlite3.Connection, terms: Sequence[str], n: int, allowed: np.ndarray | None) -> dict[int, float]:
    """BM25 over the photos' signal words: {image id: score (higher is better)}."""
    terms = list(dict.fromkeys(t for t in terms if t))[:64]
    if not terms:
        return {}
    match = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
    limit = n if allowed is None else -1
    rows = conn.execute(
        "SELECT rowid, bm25(photo_fts) AS s FROM photo_fts WHERE photo_fts MATCH ? ORDER BY s LIMIT ?", (match, limit)
    )
    out = {int(r[0]): -float(r[1]) for r in rows}
    if allowed is not None:
        keep = set(allowed.tolist())
        out = dict(list((i, s) for i, s in out.items() if i in keep)[:n])
    return out


def paths_without_signals(conn: sqlite3.Connection) -> frozenset[str]:
    """Photos indexed before the signals existed (their rows get signals on the next indexing)."""
    q = "SELECT path FROM images WHERE id NOT IN (SELECT image_id FROM photo_signals)"
    return frozenset(r[0] for r in conn.execute(q))


def signal_report(conn: sqlite3.Connection, faces: bool, ocr: bool) -> dict[str, Any]:
    """`signal_state` plus which signals are switched on and whether OCR can run here."""
    state = signal_state(conn)
    usable, why = ocr_status()
    state.update(faces=faces, ocr=ocr, ocr_available=usable, ocr_reason=why)
    if state["missing"]:
        state["note"] = (
            f"{state['missing']} photo(s) have no signals (indexed by an older version): run "
            "'polymodal images index FOLDER' to add them; until then they are found by the embedding only"
        )
    return state


def signals_of(conn: sqlite3.Connection, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for s in range(0, len(ids), 900):
        part = [int(i) for i in ids[s : s + 900]]
        q = f"SELECT * FROM photo_signals WHERE image_id IN ({','.join('?' * len(part))})"
        out.update({r["image_id"]: dict(r) for r in conn.execute(q, part)})
    return out
