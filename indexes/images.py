"""ImageIndex: a persistent, incremental photo index searchable by text or by example image.

    with ImageIndex.open("photos.idx", encoder="auto", config=cfg.images) as idx:
        report = idx.index_folder("~/Pictures")          # new/changed files only (content hash)
        hits = idx.search("a cat sleeping", k=5)          # text -> image (joint space)
        hits = idx.search(image="query.jpg", folder="~/Pictures/2024")   # image -> image

On disk: `manifest.json` (encoder name and how to rebuild it, dimensions), `index.sqlite` (one row
per image, tags, and the float32 vectors: the truth), `joint.<gen>.faiss` and, for encoders with a
separate visual space (ConSE), `visual.<gen>.faiss` (rebuildable views, see indexes/store.py), and
`thumbs/` (256 px JPEG thumbnails named by content hash). One writer at a time across processes.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from indexes.image_encoders import ImageEncoder, Tag, encoder_from_spec, encoder_spec, get_image_encoder
from indexes.image_encoders.loading import LoadedImage, as_pil, is_image_path, load_image
from indexes.store import IndexParams, VectorTable, connect_sqlite, exclusive_writer, read_manifest
from polymodal.errors import Cancelled, EmbedderMismatch, InputError, UnsupportedFile
from polymodal.fsutil import atomic_write_json, atomic_writer

__all__ = ["ImageIndex", "ImageHit", "ImageInfo", "IndexReport", "Skipped"]

FORMAT = 1
THUMB_SIZE = 256
AUTO_TAG_MIN_PROB = 0.1
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
Progress = Callable[[int, int], None]


@dataclass
class ImageHit:
    """One search result: which file, how close, its cached thumbnail, and which encoder said so."""

    path: str
    score: float
    thumbnail: str
    encoder: str
    space: str  # "joint" (text-comparable) or "visual" (image->image)
    width: int = 0
    height: int = 0
    tags: list[str] = field(default_factory=list)
    sha256: str = ""


@dataclass
class ImageInfo:
    path: str
    sha256: str
    width: int
    height: int
    format: str
    thumbnail: str
    tags: list[str]
    added_at: float


@dataclass
class Skipped:
    path: str
    reason: str  # one line


@dataclass
class _Batch:
    todo: list[tuple[Path, os.stat_result, LoadedImage, str]] = field(default_factory=list)  # + thumbnail
    touch: list[tuple[int, int, int]] = field(default_factory=list)  # (id, size, mtime_ns): same bytes
    skipped: list[Skipped] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)  # indexed paths that are no longer readable images
    unchanged: int = 0


@dataclass
class IndexReport:
    encoder: str
    added: int = 0
    updated: int = 0  # content changed: re-embedded
    unchanged: int = 0
    removed: int = 0  # files gone from disk
    ignored: int = 0  # files whose extension is not an image type
    skipped: list[Skipped] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        return (f"{self.added} added, {self.updated} updated, {self.unchanged} unchanged, {self.removed} removed, "
                f"{len(self.skipped)} skipped ({self.encoder}, {self.seconds:.1f} s)")


class ImageIndex:
    def __init__(self, folder: Path, encoder: ImageEncoder, manifest: dict, read_only: bool,
                 params: IndexParams) -> None:
        self.folder = folder
        self.encoder = encoder
        self.manifest = manifest
        self.read_only = read_only
        self._lock = threading.RLock()
        self._conn = connect_sqlite(folder / "index.sqlite", read_only=read_only)
        if not read_only:
            self._conn.executescript(_SCHEMA)
        self.joint = VectorTable(folder, self._conn, manifest["dim"], "joint", params, read_only)
        self.visual = (VectorTable(folder, self._conn, manifest["visual_dim"], "visual", params, read_only)
                       if manifest.get("visual_dim") else None)
        self.repair_report = {s.name: s.load() for s in self._stores()}
        self._seen = self._generations()
        self._closed = False

    # -- opening --------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path, encoder: ImageEncoder | str | None = None, *, config: Any = None,
             read_only: bool = False, create: bool = True, params: IndexParams | None = None) -> "ImageIndex":
        """Open the index at `path`, creating it if absent.

        `encoder`: an encoder, a registry name ("auto", "conse", "open_clip", "fake", "mod:Class"),
        or None: an existing index then uses the encoder recorded in its manifest, a new one the
        configured encoder (`config` is an ImagesConfig). Another encoder raises EmbedderMismatch.
        """
        folder = Path(path).expanduser()
        manifest_path = folder / "manifest.json"
        manifest = read_manifest(folder, "images", "an image index")
        if manifest is not None:
            enc = _resolve(encoder, config) if encoder is not None else encoder_from_spec(manifest["encoder_spec"])
            if enc.name != manifest["encoder"]:
                raise EmbedderMismatch(
                    f"image index {folder} was built with encoder '{manifest['encoder']}'; it cannot be searched or "
                    f"extended with '{enc.name}': open it without an encoder, or index into a new folder")
        else:
            if read_only or not create:
                raise InputError(f"no image index at {folder}")
            enc = _resolve(encoder if encoder is not None else "auto", config)
            folder.mkdir(parents=True, exist_ok=True)
            manifest = {"format": FORMAT, "kind": "images", "encoder": enc.name, "encoder_spec": encoder_spec(enc),
                        "dim": int(enc.dim), "visual_dim": int(enc.visual_dim) if enc.visual_dim else None,
                        "created": time.time()}
            atomic_write_json(manifest_path, manifest)
        if int(enc.dim) != manifest["dim"]:
            raise EmbedderMismatch(f"encoder '{enc.name}' gives dim {enc.dim}, index {folder} holds dim {manifest['dim']}")
        return cls(folder, enc, manifest, read_only, params or IndexParams())

    def __enter__(self) -> "ImageIndex":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            if not self.read_only:
                self.save()
            self._conn.close()
            self._closed = True

    def save(self) -> None:
        with self._write_lock():
            for s in self._stores():
                s.save()

    def _stores(self) -> list[VectorTable]:
        return [self.joint] + ([self.visual] if self.visual is not None else [])

    def _write_lock(self):
        return exclusive_writer(self.folder, self._lock, self.read_only, "image index")

    def _generations(self) -> tuple[int, ...]:
        return tuple(s.sqlite_generation() for s in self._stores())

    def _sync(self) -> None:
        """Pick up writes committed by another process (or another ImageIndex object)."""
        gens = self._generations()
        if gens != self._seen:
            for s in self._stores():
                s.repair()
            self._seen = gens

    # -- indexing -------------------------------------------------------------------------------
    def index_folder(self, folder: str | Path, *, recursive: bool = True, prune: bool = True,
                     progress: Progress | None = None, show_progress: bool = False,
                     cancel: threading.Event | None = None, batch_size: int = 16) -> IndexReport:
        """Index every image under `folder`: new and changed files (by content hash) are embedded,
        unchanged ones skipped cheaply (size + mtime), and with `prune` rows of deleted files removed."""
        root = Path(folder).expanduser().resolve()
        if not root.is_dir():
            raise InputError(f"not a folder: {folder}")
        files, ignored = _walk(root, recursive)
        report = self.add_paths(files, progress=progress, show_progress=show_progress, cancel=cancel,
                                batch_size=batch_size)
        report.ignored = ignored
        if prune:
            present = {str(p) for p in files}
            gone = [r["path"] for r in self._rows_under(root) if r["path"] not in present]
            report.removed += self.delete(gone)
        return report

    def add_paths(self, paths: Sequence[str | Path], *, progress: Progress | None = None,
                  show_progress: bool = False, cancel: threading.Event | None = None,
                  batch_size: int = 16) -> IndexReport:
        """Index the given image files (incrementally). Unreadable files are reported, not raised.

        Reading, hashing, decoding and thumbnailing the next batch (a worker thread: libjpeg and file
        I/O release the GIL) overlaps with encoding and storing the current one."""
        from concurrent.futures import ThreadPoolExecutor

        start = time.time()
        report = IndexReport(encoder=self.encoder.name)
        paths = list(dict.fromkeys(Path(p).expanduser().resolve() for p in paths))
        known = self._rows_by_path([str(p) for p in paths])
        batches = [paths[s : s + batch_size] for s in range(0, len(paths), batch_size)]
        bar = _bar(len(paths), show_progress)
        done = 0
        try:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="image-decode") as pool:
                pending = pool.submit(self._prepare, batches[0], known) if batches else None
                for i in range(len(batches)):
                    if cancel is not None and cancel.is_set():
                        raise Cancelled(f"indexing cancelled after {done} of {len(paths)} files")
                    batch = pending.result()
                    pending = pool.submit(self._prepare, batches[i + 1], known) if i + 1 < len(batches) else None
                    self._commit(batch, report)
                    done += len(batches[i])
                    if bar is not None:
                        bar.update(len(batches[i]))
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

    def _prepare(self, paths: list[Path], known: dict[str, Any]) -> "_Batch":
        """Everything before the encoder that needs no database: stat, read, hash, decode, thumbnail."""
        batch = _Batch()
        for p in paths:
            try:
                st = p.stat()
            except OSError as exc:
                batch.skipped.append(Skipped(str(p), f"{p.name}: cannot read ({exc.strerror or exc})"))
                continue
            row = known.get(str(p))
            if row is not None and row["size"] == st.st_size and row["mtime_ns"] == st.st_mtime_ns:
                batch.unchanged += 1
                continue
            if not is_image_path(p):
                batch.skipped.append(Skipped(str(p), f"{p.name}: not an image type ({p.suffix or 'no extension'})"))
                continue
            try:
                loaded = load_image(p)
            except UnsupportedFile as exc:
                batch.skipped.append(Skipped(str(p), str(exc)))
                if row is not None:  # it was a photo once: its old vectors no longer describe the file
                    batch.stale.append(str(p))
                continue
            if row is not None and row["sha256"] == loaded.sha256:
                batch.touch.append((row["id"], st.st_size, st.st_mtime_ns))
                batch.unchanged += 1
                continue
            batch.todo.append((p, st, loaded, self._thumbnail(loaded)))
        return batch

    def _commit(self, batch: "_Batch", report: IndexReport) -> None:
        """Encode the batch's new images and store rows, tags and vectors in one transaction."""
        report.skipped.extend(batch.skipped)
        report.unchanged += batch.unchanged
        todo = batch.todo
        enc = self.encoder.encode([t[2].image for t in todo]) if todo else None
        with self._write_lock():
            self._sync()
            c = self._conn
            c.execute("BEGIN IMMEDIATE")
            try:
                c.executemany("UPDATE images SET size=?, mtime_ns=? WHERE id=?",
                              [(s, m, i) for i, s, m in batch.touch])
                replaced = self._delete_rows([str(t[0]) for t in todo])
                dropped = self._delete_rows(batch.stale)
                new_ids = []
                for j, (p, st, li, thumb) in enumerate(todo):
                    cur = c.execute(
                        "INSERT INTO images(path, folder, sha256, size, mtime_ns, width, height, format, thumbnail, "
                        "added_at) VALUES(?,?,?,?,?,?,?,?,?,?)",
                        (str(p), str(p.parent), li.sha256, st.st_size, st.st_mtime_ns, li.width, li.height,
                         li.format, thumb, time.time()))
                    new_ids.append(int(cur.lastrowid))
                    labels = (enc.labels or [[]] * len(todo))[j]
                    c.executemany("INSERT INTO image_tags(image_id, tag, score, source) VALUES(?,?,?, 'auto')",
                                  [(new_ids[-1], name, prob) for name, prob in labels if prob >= AUTO_TAG_MIN_PROB])
                if new_ids:
                    self.joint.write(new_ids, enc.joint)
                    if self.visual is not None:
                        self.visual.write(new_ids, enc.visual)
                if new_ids or replaced or dropped:
                    for s in self._stores():
                        s.bump_generation()
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
            for s in self._stores():
                s.remove(replaced + dropped)
            if new_ids:
                self.joint.add(new_ids, enc.joint)
                if self.visual is not None:
                    self.visual.add(new_ids, enc.visual)
            self._seen = self._generations()
        report.updated += len(replaced)
        report.removed += len(dropped)
        report.added += len(todo) - len(replaced)

    def _thumbnail(self, li: LoadedImage) -> str:
        """Cached by content hash, inside the index folder; returns the path relative to it."""
        rel = f"thumbs/{li.sha256[:2]}/{li.sha256}.jpg"
        target = self.folder / rel
        if not target.exists():
            im = li.image.copy()
            im.thumbnail((THUMB_SIZE, THUMB_SIZE))

            def write(fh: Any) -> None:
                im.save(fh, "JPEG", quality=85)

            atomic_writer(target, write)
        return rel

    # -- deleting -------------------------------------------------------------------------------
    def delete(self, paths: Sequence[str | Path]) -> int:
        """Remove images by path (a folder path removes everything under it). Returns rows removed."""
        targets = [r["path"] for p in paths for r in self._rows_under(Path(p).expanduser().resolve())]
        if not targets:
            return 0
        with self._write_lock():
            self._sync()
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                ids = self._delete_rows(targets)
                if ids:
                    for s in self._stores():
                        s.bump_generation()
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            for s in self._stores():
                s.remove(ids)
            self._seen = self._generations()
        if ids:
            self.save()
        self._drop_orphan_thumbnails()
        return len(ids)

    def _delete_rows(self, paths: Sequence[str]) -> list[int]:
        """Inside a transaction: remove rows, tags and vectors of these paths. Returns their ids."""
        ids = [r["id"] for r in self._rows_by_path(paths).values()]
        if ids:
            self._conn.executemany("DELETE FROM images WHERE id=?", [(i,) for i in ids])
            for s in self._stores():
                s.erase(ids)
        return ids

    def _drop_orphan_thumbnails(self) -> None:
        live = {r[0] for r in self._conn.execute("SELECT thumbnail FROM images")}
        for f in (self.folder / "thumbs").glob("*/*.jpg"):
            if f"thumbs/{f.parent.name}/{f.name}" not in live:
                try:
                    f.unlink()
                except OSError:
                    pass

    # -- searching ------------------------------------------------------------------------------
    def search(self, query: str = "", image: Any = None, k: int = 5, *, folder: str | Path = "",
               tag: str = "") -> list[ImageHit]:
        """Top-k images for a text `query`, an example `image` (path, PIL image or array), or both.

        Text searches the joint space; an image alone searches the visual space when the encoder has
        one; text and image together search the joint space with the mean of both vectors.
        `folder` keeps images under that folder, `tag` images with that tag (word match, any case).
        """
        query = (query or "").strip()
        if image is None and not query:
            raise InputError("image search needs a text query or an image")
        if k <= 0:
            return []
        vec, store = self._query_vector(query, image)
        with self._lock:
            self._sync()
            allowed = self._allowed_ids(folder, tag) if (folder or tag) else None
            if allowed is not None and not len(allowed):
                return []
            D, I = store.search(vec, k, allowed)
            ids = [int(i) for i in I[0] if i >= 0]
            rows = {r["id"]: r for r in self._rows_by_id(ids)}  # drops tombstoned ids
            tags = self._tags_of(list(rows))
            hits = []
            for i, score in zip(I[0], D[0]):
                r = rows.get(int(i))
                if r is None:
                    continue
                hits.append(ImageHit(path=r["path"], score=float(score), thumbnail=str(self.folder / r["thumbnail"]),
                                     encoder=self.encoder.name, space=store.name, width=r["width"],
                                     height=r["height"], tags=tags.get(r["id"], []), sha256=r["sha256"]))
                if len(hits) == k:
                    break
            return hits

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

    def _allowed_ids(self, folder: str | Path, tag: str) -> np.ndarray:
        where, args = [], []
        if folder:
            root = str(Path(folder).expanduser().resolve())
            where.append("(i.folder = ? OR i.folder LIKE ? ESCAPE '\\')")
            args += [root, _like_prefix(root.rstrip(os.sep) + os.sep)]
        if tag:
            t = tag.strip().lower()
            where.append("i.id IN (SELECT image_id FROM image_tags WHERE lower(tag) = ? OR lower(tag) LIKE ? "
                         "ESCAPE '\\' OR lower(tag) LIKE ? ESCAPE '\\' OR lower(tag) LIKE ? ESCAPE '\\')")
            e = _like_escape(t)
            args += [t, f"{e} %", f"% {e}", f"% {e} %"]
        rows = self._conn.execute(f"SELECT i.id FROM images i WHERE {' AND '.join(where)}", args)
        return np.fromiter((r[0] for r in rows), dtype=np.int64)

    def tag(self, image: Any, labels: Sequence[str]) -> list[Tag]:
        """Zero-shot: rank `labels` for one image (path, PIL image or array) with this index's encoder."""
        return self.encoder.tag(as_pil(image), labels)

    def add_tags(self, path: str | Path, tags: Sequence[str]) -> None:
        """Attach user tags to an indexed image (searchable with the `tag` filter)."""
        rows = self._rows_by_path([str(Path(path).expanduser().resolve())])
        if not rows:
            raise InputError(f"not in the image index: {path}")
        image_id = next(iter(rows.values()))["id"]
        with self._write_lock():
            self._conn.executemany("INSERT INTO image_tags(image_id, tag, source) VALUES(?,?, 'user')",
                                   [(image_id, t.strip()) for t in tags if t.strip()])

    # -- reading --------------------------------------------------------------------------------
    def count(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM images").fetchone()[0])

    def list_images(self, folder: str | Path = "") -> list[ImageInfo]:
        rows = self._rows_under(Path(folder).expanduser().resolve()) if folder else \
            self._conn.execute("SELECT * FROM images ORDER BY path").fetchall()
        tags = self._tags_of([r["id"] for r in rows])
        return [ImageInfo(r["path"], r["sha256"], r["width"], r["height"], r["format"],
                          str(self.folder / r["thumbnail"]), tags.get(r["id"], []), r["added_at"]) for r in rows]

    def info(self) -> dict[str, Any]:
        return {"path": str(self.folder), "encoder": self.encoder.name, "images": self.count(),
                "dim": self.manifest["dim"], "visual_dim": self.manifest.get("visual_dim"),
                "index_type": self.joint.index_type}

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
        return self._conn.execute(f"SELECT * FROM images WHERE id IN ({','.join('?' * len(ids))})", list(ids)).fetchall()

    def _rows_under(self, root: Path) -> list[Any]:
        r = str(root)
        return self._conn.execute(
            "SELECT * FROM images WHERE path = ? OR path LIKE ? ESCAPE '\\' ORDER BY path",
            (r, _like_prefix(r.rstrip(os.sep) + os.sep))).fetchall()

    def _tags_of(self, ids: Sequence[int]) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for s in range(0, len(ids), 900):
            part = list(ids[s : s + 900])
            q = (f"SELECT image_id, tag FROM image_tags WHERE image_id IN ({','.join('?' * len(part))}) "
                 "ORDER BY source DESC, score DESC")
            for row in self._conn.execute(q, part):
                out.setdefault(row[0], []).append(row[1])
        return out


def _resolve(encoder: ImageEncoder | str, config: Any) -> ImageEncoder:
    return get_image_encoder(encoder, config) if isinstance(encoder, str) else encoder


def _walk(root: Path, recursive: bool) -> tuple[list[Path], int]:
    """Image files under `root` (sorted, hidden folders and our own index folders skipped)."""
    files: list[Path] = []
    ignored = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")
                             and not (Path(dirpath, d, "manifest.json").exists() and Path(dirpath, d, "index.sqlite").exists()))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            p = Path(dirpath, name)
            if is_image_path(p):
                files.append(p)
            else:
                ignored += 1
        if not recursive:
            break
    return files, ignored


def _bar(total: int, show: bool):
    if not show or total == 0:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="img", desc="indexing", leave=False)


def _like_escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _like_prefix(prefix: str) -> str:
    return _like_escape(prefix) + "%"
