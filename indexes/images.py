"""ImageIndex: a persistent, incremental photo index searchable by text or by example image.

    with ImageIndex.open("photos.idx", encoder="auto", config=cfg.images) as idx:
        report = idx.index_folder("~/Pictures")          # new/changed files only (content hash)
        hits = idx.search("a cat sleeping", k=5)          # text -> image (joint space)
        hits = idx.search(image="query.jpg", folder="~/Pictures/2024")   # image -> image

On disk: `manifest.json` (encoder name and how to rebuild it, dimensions), `index.sqlite` (one row
per image, tags, and the float32 vectors: the truth), `joint.<gen>.faiss` and, for encoders with a
separate visual space (ConSE), `visual.<gen>.faiss` (rebuildable views, see indexes/store.py), and
`thumbs/` (256 px JPEG thumbnails named by content hash). One writer at a time across processes.

Beside each embedding the index keeps the photo's signals (indexes/photo_signals.py: faces, OCR
text, folder and file words, EXIF date/camera/place) and a BM25 table over them; text search is
hybrid: the embedding's ranking fused with BM25's (indexes/hybrid.py), after query understanding
(indexes/photo_query.py) has turned dates into a filter and people into the face signal.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from indexes.analyzer import analyze
from indexes.ann import IndexParams
from indexes.base import BaseIndex, Transaction
from indexes.hybrid import fuse, like_prefix
from indexes.image_encoders import ImageEncoder, Tag, encoder_from_spec, encoder_spec, get_image_encoder
from indexes.image_encoders.loading import as_pil
from indexes.image_files import (
    Batch,
    ImageHit,
    ImageInfo,
    IndexReport,
    Progress,
    Skipped,
    drop_orphan_thumbnails,
    hit_from_row,
    prepare,
    progress_bar,
    walk,
)
from indexes.photo_query import PersonDetector, PhotoQuery, understand
from indexes.photo_search import (
    SIGNALS_SCHEMA,
    allowed_ids,
    bm25,
    delete_signals,
    paths_without_signals,
    signal_report,
    signal_state,
    signals_of,
)
from indexes.photo_search import store_signals as _store_signals
from indexes.photo_signals import PhotoSignals, extract
from indexes.store import VectorTable
from polymodal.errors import Cancelled, InputError, UnsupportedFile

__all__ = ["ImageIndex", "ImageHit", "ImageInfo", "IndexReport", "Skipped", "SEARCH_MODES"]

FORMAT = 1
AUTO_TAG_MIN_PROB = 0.1
SEARCH_MODES = ("hybrid", "dense", "bm25")
FUSION, ALPHA = "rrf", 0.5  # how hybrid search fuses the two rankings (indexes.hybrid.fuse)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL UNIQUE, folder TEXT NOT NULL, sha256 TEXT NOT NULL,
    size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL,
    format TEXT NOT NULL, thumbnail TEXT NOT NULL, added_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS images_folder ON images(folder);
CREATE INDEX IF NOT EXISTS images_sha ON images(sha256);
CREATE TABLE IF NOT EXISTS image_tags (
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    tag TEXT NOT NULL, score REAL NOT NULL DEFAULT 1.0, source TEXT NOT NULL DEFAULT 'user');
CREATE INDEX IF NOT EXISTS image_tags_image ON image_tags(image_id);
CREATE INDEX IF NOT EXISTS image_tags_tag ON image_tags(tag COLLATE NOCASE);
"""


class ImageIndex(BaseIndex):
    """Image rows with tags and thumbnails; vectors in table `joint` and, for encoders with a
    separate visual space, `visual`."""

    kind = "images"
    noun = "image index"
    model_role = "encoder"
    FORMAT = FORMAT
    SCHEMA = _SCHEMA + SIGNALS_SCHEMA
    TABLES = {"joint": "dim", "visual": "visual_dim"}

    def __init__(
        self, folder: Path, encoder: ImageEncoder, manifest: dict, read_only: bool, params: IndexParams
    ) -> None:
        self.encoder = encoder
        super().__init__(folder, manifest, read_only, params)
        self.joint = self.tables["joint"]
        self.visual = self.tables.get("visual")
        self.has_signals = signal_state(self._conn)["tables"]  # False: an older index, opened read-only
        self.signals_enabled, self.faces_enabled, self.ocr_enabled = True, True, False
        self._persons = PersonDetector(encoder.embed_texts)
        self._face_counter: Any = None

    @classmethod
    def open(
        cls,
        path: str | Path,
        encoder: ImageEncoder | str | None = None,
        *,
        config: Any = None,
        read_only: bool = False,
        create: bool = True,
        params: IndexParams | None = None,
        signals: bool = True,
        faces: bool | None = None,
        ocr: bool | None = None,
    ) -> "ImageIndex":
        """Open the index at `path`, creating it if absent.

        `encoder`: an encoder, a registry name ("auto", "conse", "open_clip", "fake", "mod:Class"),
        or None: an existing index then uses the encoder recorded in its manifest, a new one the
        configured encoder (`config` is an ImagesConfig). Another encoder raises EmbedderMismatch.
        `signals`: store photo signals when indexing; `faces` / `ocr` (default: the config's
        `faces` / `ocr`) switch face counting and OCR.
        """
        folder, manifest = cls._find_manifest(path, read_only, create)
        if encoder is None and manifest is not None:
            enc = encoder_from_spec(manifest["encoder_spec"])
        else:
            ref = "auto" if encoder is None else encoder
            enc = get_image_encoder(ref, config) if isinstance(ref, str) else ref
        manifest = cls._adopt_model(
            folder,
            manifest,
            enc,
            encoder_spec=encoder_spec(enc),
            visual_dim=int(enc.visual_dim) if enc.visual_dim else None,
        )
        idx = cls(folder, enc, manifest, read_only, params or IndexParams())
        idx.signals_enabled = signals
        idx.faces_enabled = getattr(config, "faces", True) if faces is None else faces
        idx.ocr_enabled = getattr(config, "ocr", False) if ocr is None else ocr
        return idx

    # -- indexing -------------------------------------------------------------------------------
    def index_folder(
        self,
        folder: str | Path,
        *,
        recursive: bool = True,
        prune: bool = True,
        progress: Progress | None = None,
        show_progress: bool = False,
        cancel: threading.Event | None = None,
        batch_size: int = 16,
        within: Sequence[str | Path] | None = None,
        runner: Any = None,
    ) -> IndexReport:
        """Index every image under `folder`: new and changed files (by content hash) are embedded,
        unchanged ones skipped cheaply (size + mtime), and with `prune` rows of deleted files removed.
        With `within`, a file whose real path lies outside those folders (a symlink out) is skipped."""
        root = Path(folder).expanduser().resolve()
        if not root.is_dir():
            raise InputError(f"not a folder: {folder}")
        files, ignored = walk(root, recursive)
        escaped: list[Path] = []
        if within is not None:
            bounds = [Path(w).expanduser().resolve() for w in within]
            kept = {f: any(f.resolve().is_relative_to(b) for b in bounds) for f in files}
            files, escaped = [f for f in files if kept[f]], [f for f in files if not kept[f]]
        report = self.add(
            files,
            progress=progress,
            show_progress=show_progress,
            cancel=cancel,
            batch_size=batch_size,
            root=root,
            runner=runner,
        )
        report.skipped += [Skipped(str(f), f"{f.name}: links outside the allowed folders") for f in escaped]
        report.ignored = ignored
        if prune:
            present = {str(p) for p in files}
            gone = [r["path"] for r in self._rows_under(root) if r["path"] not in present]
            report.removed += self.delete(gone)
        return report

    def add(
        self,
        paths: Sequence[str | Path],
        *,
        progress: Progress | None = None,
        show_progress: bool = False,
        cancel: threading.Event | None = None,
        batch_size: int = 16,
        root: Path | None = None,
        runner: Any = None,
    ) -> IndexReport:
        """Index the given image files (incrementally). Unreadable files are reported, not raised.
        `root`: the folder they were found under (its path is not a word of the photos). `runner`:
        prepares and encodes the batches elsewhere (`indexes.distributed.images.RayImageRunner`).

        Reading, hashing, decoding and thumbnailing the next batch (a worker thread: libjpeg and file
        I/O release the GIL) overlaps with encoding and storing the current one."""
        self._check_writable()
        start = time.time()
        report = IndexReport(encoder=self.encoder.name)
        paths = list(dict.fromkeys(Path(p).expanduser().resolve() for p in paths))
        known = self._rows_by_path([str(p) for p in paths])
        signals = functools.partial(self._signals, root=root) if self.signals_enabled else None
        needs = paths_without_signals(self._conn) if signals is not None and known else frozenset()
        batches = [paths[s : s + batch_size] for s in range(0, len(paths), batch_size)]
        bar = progress_bar(len(paths), show_progress)
        done = 0
        try:
            if runner is not None:  # elsewhere (indexes/distributed/images.py): prepared and encoded batches
                stream = runner.run(self, batches, {p: dict(r) for p, r in known.items()}, needs, root)
            else:
                stream = _local(batches, known, self.folder, signals, needs)
            for size, batch, encoded in stream:
                if cancel is not None and cancel.is_set():
                    raise Cancelled(f"indexing cancelled after {done} of {len(paths)} files")
                self._commit(batch, report, encoded)
                done += size
                if bar is not None:
                    bar.update(size)
                if progress:
                    progress(done, len(paths))
        finally:
            if bar is not None:
                bar.close()
            if not self.read_only and (report.added or report.updated or report.removed):
                self.save()
            if report.removed:
                self._drop_orphan_thumbnails()
            report.seconds = time.time() - start
        return report

    def _commit(self, batch: Batch, report: IndexReport, enc: Any = None) -> None:
        """Encode the batch's new images (unless `enc` holds them) and store rows, tags and vectors
        in one transaction."""
        report.skipped.extend(batch.skipped)
        report.unchanged += batch.unchanged
        todo = batch.todo
        if todo and enc is None:
            enc = self.encoder.encode([t[2].image for t in todo])
        with self._transaction() as tx:
            c = tx.conn
            c.executemany("UPDATE images SET size=?, mtime_ns=? WHERE id=?", [(s, m, i) for i, s, m in batch.touch])
            replaced = self._delete_rows(tx, [str(t[0]) for t in todo])
            dropped = self._delete_rows(tx, batch.stale)
            new_ids = []
            for j, (p, st, li, thumb, sig) in enumerate(todo):
                cur = c.execute(
                    "INSERT INTO images(path, folder, sha256, size, mtime_ns, width, height, format, thumbnail, "
                    "added_at) VALUES(?,?,?,?,?,?,?,?,?,?)",
                    (
                        str(p),
                        str(p.parent),
                        li.sha256,
                        st.st_size,
                        st.st_mtime_ns,
                        li.width,
                        li.height,
                        li.format,
                        thumb,
                        time.time(),
                    ),
                )
                new_ids.append(int(cur.lastrowid))
                labels = (enc.labels or [[]] * len(todo))[j]
                kept = [(name, prob) for name, prob in labels if prob >= AUTO_TAG_MIN_PROB]
                c.executemany(
                    "INSERT INTO image_tags(image_id, tag, score, source) VALUES(?,?,?, 'auto')",
                    [(new_ids[-1], name, prob) for name, prob in kept],
                )
                if sig is not None:
                    _store_signals(c, new_ids[-1], sig, [name for name, _ in kept])
            for image_id, sig in batch.backfill:
                _store_signals(c, image_id, sig, self._tags_of([image_id]).get(image_id, []))
            if new_ids:
                tx.write("joint", new_ids, enc.joint)
                if self.visual is not None:
                    tx.write("visual", new_ids, enc.visual)
        report.updated += len(replaced)
        report.removed += len(dropped)
        report.added += len(todo) - len(replaced)
        report.signals_added += len(batch.backfill)

    def _signals(self, path: Path, loaded: Any, root: Path | None = None) -> PhotoSignals:
        """On the decode worker: every signal of one photo."""
        if self.faces_enabled and self._face_counter is None:
            from indexes.faces import FaceCounter, available

            self._face_counter = FaceCounter() if available() else False
        return extract(path, loaded, self._face_counter or None, self.ocr_enabled, root)

    # -- deleting -------------------------------------------------------------------------------
    def delete(self, paths: Sequence[str | Path]) -> int:
        """Remove images by path (a folder path removes everything under it). Returns rows removed."""
        targets = [r["path"] for p in paths for r in self._rows_under(Path(p).expanduser().resolve())]
        if not targets:
            return 0
        with self._transaction() as tx:
            ids = self._delete_rows(tx, targets)
        if ids:
            self.save()
        self._drop_orphan_thumbnails()
        return len(ids)

    def _delete_rows(self, tx: Transaction, paths: Sequence[str]) -> list[int]:
        """Inside a transaction: remove rows, tags and vectors of these paths. Returns their ids."""
        ids = [r["id"] for r in self._rows_by_path(paths).values()]
        if ids:
            tx.conn.executemany("DELETE FROM images WHERE id=?", [(i,) for i in ids])
            delete_signals(tx.conn, ids)
            tx.erase(ids)
        return ids

    def _drop_orphan_thumbnails(self) -> None:
        drop_orphan_thumbnails(self.folder, {r[0] for r in self._conn.execute("SELECT thumbnail FROM images")})

    # -- searching ------------------------------------------------------------------------------
    def search(
        self,
        query: str = "",
        image: Any = None,
        k: int = 5,
        *,
        folder: str | Path = "",
        tag: str = "",
        filters: dict[str, Any] | None = None,
        mode: str = "hybrid",
        understand: bool = True,
        fusion: str = FUSION,
        alpha: float = ALPHA,
    ) -> list[ImageHit]:
        """Top-k images for a text `query`, an example `image` (path, PIL image or array), or both.

        Text searches the joint space; an image alone searches the visual space when the encoder has
        one; text and image together search the joint space with the mean of both vectors.
        `mode`: "hybrid" fuses the embedding's ranking with BM25 over the photo signals (after query
        understanding: see `understand()`), "dense" is the embedding alone, "bm25" the signals alone.
        Filters: `folder` (images under it), `tag` (word match, any case), and `filters` with
        date_from / date_to (YYYY-MM-DD), months, has_faces, min_faces.
        """
        query = (query or "").strip()
        if image is None and not query:
            raise InputError("image search needs a text query or an image")
        if mode not in SEARCH_MODES:
            raise InputError(f"unknown search mode '{mode}' ({', '.join(SEARCH_MODES)})")
        if k <= 0:
            return []
        f = {**(filters or {}), "folder": str(folder or ""), "tag": tag}
        pq = self.understand(query) if query and understand and mode != "dense" and self.has_signals else None
        with self._reading():
            allowed = allowed_ids(self._conn, f, self.has_signals, pq)
            if allowed is not None and not len(allowed):
                return []
            n = min(self.count(), max(10 * k, 200))
            dense: dict[int, float] = {}
            space = "joint"
            if mode != "bm25" or not query:
                vec, store = self._query_vector(pq.text if pq is not None else query, image)
                D, I = store.search(vec, n, allowed)
                dense = {int(i): float(s) for i, s in zip(I[0], D[0]) if i >= 0}
                space = store.name
            lexical: dict[int, float] = {}
            if mode != "dense" and query and self.has_signals:
                terms = pq.bm25_terms() if pq is not None else analyze(query)
                lexical = bm25(self._conn, terms, n, allowed)
            scores = fuse(dense, lexical, mode if query else "dense", fusion, alpha)
            rows = {r["id"]: r for r in self._rows_by_id(list(scores))}  # drops tombstoned ids
            ranked = sorted((i for i in scores if i in rows), key=lambda i: -scores[i])[:k]
            tags = self._tags_of(ranked)
            sigs = signals_of(self._conn, ranked) if self.has_signals else {}
            return [
                hit_from_row(rows[i], scores[i], self.folder, self.encoder.name, space, dense, lexical, tags, sigs)
                for i in ranked
            ]

    def understand(self, query: str) -> PhotoQuery:
        """What a text query asks for: its description, dates, people and quoted text."""
        return understand(query, self._persons)

    def _query_vector(self, query: str, image: Any) -> tuple[np.ndarray, VectorTable]:
        pil = None
        if image is not None:
            try:
                pil = as_pil(image)
            except UnsupportedFile as exc:
                raise InputError(f"query image: {exc}") from exc
        if pil is not None and not query:
            enc = self.encoder.encode([pil])
            if self.visual is not None and enc.visual is not None:
                return enc.visual[0], self.visual
            return enc.joint[0], self.joint
        vec = self.encoder.embed_texts([query])[0]
        if pil is not None:
            vec = vec + self.encoder.embed_images([pil])[0]
            vec = vec / max(float(np.linalg.norm(vec)), 1e-12)
        return vec.astype(np.float32), self.joint

    def tag(self, image: Any, labels: Sequence[str]) -> list[Tag]:
        """Zero-shot: rank `labels` for one image (path, PIL image or array) with this index's encoder."""
        return self.encoder.tag(as_pil(image), labels)

    def add_tags(self, path: str | Path, tags: Sequence[str]) -> None:
        """Attach user tags to an indexed image (searchable with the `tag` filter)."""
        rows = self._rows_by_path([str(Path(path).expanduser().resolve())])
        if not rows:
            raise InputError(f"not in the image index: {path}")
        image_id = next(iter(rows.values()))["id"]
        with self._transaction() as tx:
            tx.conn.executemany(
                "INSERT INTO image_tags(image_id, tag, source) VALUES(?,?, 'user')",
                [(image_id, t.strip()) for t in tags if t.strip()],
            )

    # -- reading --------------------------------------------------------------------------------
    def count(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM images").fetchone()[0])

    def list_images(self, folder: str | Path = "") -> list[ImageInfo]:
        rows = (
            self._rows_under(Path(folder).expanduser().resolve())
            if folder
            else self._conn.execute("SELECT * FROM images ORDER BY path").fetchall()
        )
        tags = self._tags_of([r["id"] for r in rows])
        return [
            ImageInfo(
                r["path"],
                r["sha256"],
                r["width"],
                r["height"],
                r["format"],
                str(self.folder / r["thumbnail"]),
                tags.get(r["id"], []),
                r["added_at"],
            )
            for r in rows
        ]

    def info(self) -> dict[str, Any]:
        return {
            "path": str(self.folder),
            "encoder": self.encoder.name,
            "images": self.count(),
            "dim": self.manifest["dim"],
            "visual_dim": self.manifest.get("visual_dim"),
            "index_type": self.joint.index_type,
            "signals": self.signal_info(),
        }

    def signal_info(self) -> dict[str, Any]:
        """What the photo signals hold, which are switched on, and whether OCR can run here."""
        return signal_report(self._conn, self.faces_enabled, self.ocr_enabled)

    def _rows_by_path(self, paths: Sequence[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for s in range(0, len(paths), 900):
            part = list(paths[s : s + 900])
            q = f"SELECT * FROM images WHERE path IN ({','.join('?' * len(part))})"
            out.update({r["path"]: r for r in self._conn.execute(q, part)})
        return out

    def _rows_by_id(self, ids: Sequence[int]) -> list[Any]:
        if not ids:
            return []
        q = f"SELECT * FROM images WHERE id IN ({','.join('?' * len(ids))})"
        return self._conn.execute(q, list(ids)).fetchall()

    def _rows_under(self, root: Path) -> list[Any]:
        r = str(root)
        return self._conn.execute(
            "SELECT * FROM images WHERE path = ? OR path LIKE ? ESCAPE '\\' ORDER BY path",
            (r, like_prefix(r.rstrip(os.sep) + os.sep)),
        ).fetchall()

    def _tags_of(self, ids: Sequence[int]) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for s in range(0, len(ids), 900):
            part = list(ids[s : s + 900])
            q = (
                f"SELECT image_id, tag FROM image_tags WHERE image_id IN ({','.join('?' * len(part))}) "
                "ORDER BY source DESC, score DESC"
            )
            for row in self._conn.execute(q, part):
                out.setdefault(row[0], []).append(row[1])
        return out


def _local(batches: list[list[Path]], known: dict, folder: Path, signals: Any, needs: frozenset[str]):
    """(files, prepared batch, None): the next batch read, hashed, decoded and thumbnailed on a worker
    thread (libjpeg and file I/O release the GIL) while the caller encodes and stores this one."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="image-decode") as pool:
        pending = pool.submit(prepare, batches[0], known, folder, signals, needs) if batches else None
        for i in range(len(batches)):
            batch = pending.result()
            nxt = batches[i + 1] if i + 1 < len(batches) else None
            pending = pool.submit(prepare, nxt, known, folder, signals, needs) if nxt else None
            yield len(batches[i]), batch, None
