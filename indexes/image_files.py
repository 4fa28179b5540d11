"""The file side of the image index: which files under a folder are photos, and everything done to
them before the encoder (stat, read, hash, decode, thumbnail), plus the records indexing reports.

Nothing here touches the database, so it runs on a worker thread while the previous batch is
encoded and stored (libjpeg and file I/O release the GIL).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from indexes.image_encoders.loading import LoadedImage, is_image_path, load_image
from polymodal.errors import UnsupportedFile
from polymodal.fsutil import atomic_writer

__all__ = [
    "ImageHit",
    "ImageInfo",
    "Skipped",
    "IndexReport",
    "Batch",
    "prepare",
    "thumbnail",
    "drop_orphan_thumbnails",
    "hit_from_row",
    "walk",
    "progress_bar",
]

THUMB_SIZE = 256
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
    # photo signals (hybrid search): what else matched, and what the photo carries
    dense_score: float | None = None
    bm25_score: float | None = None
    faces: int = 0
    taken_at: str = ""
    place: str = ""
    camera: str = ""
    text: str = ""  # OCR, when it ran


def hit_from_row(
    r: Any,
    score: float,
    index_folder: Path,
    encoder: str,
    space: str,
    dense: dict,
    lexical: dict,
    tags: dict,
    sigs: dict,
) -> ImageHit:
    """One search result from its `images` row, its scores and (when stored) its photo signals."""
    sig = sigs.get(r["id"], {})
    return ImageHit(
        path=r["path"],
        score=float(score),
        thumbnail=str(index_folder / r["thumbnail"]),
        encoder=encoder,
        space=space,
        width=r["width"],
        height=r["height"],
        tags=tags.get(r["id"], []),
        sha256=r["sha256"],
        dense_score=dense.get(r["id"]),
        bm25_score=lexical.get(r["id"]),
        faces=int(sig.get("faces") or 0),
        taken_at=sig.get("taken_at") or "",
        place=sig.get("place") or "",
        camera=sig.get("camera") or "",
        text=sig.get("text") or "",
    )


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
class IndexReport:
    encoder: str
    added: int = 0
    updated: int = 0  # content changed: re-embedded
    unchanged: int = 0
    removed: int = 0  # files gone from disk
    ignored: int = 0  # files whose extension is not an image type
    skipped: list[Skipped] = field(default_factory=list)
    seconds: float = 0.0
    signals_added: int = 0  # photos indexed before photo signals existed, now given them

    def summary(self) -> str:
        return (
            f"{self.added} added, {self.updated} updated, {self.unchanged} unchanged, {self.removed} removed, "
            f"{len(self.skipped)} skipped"
            + (f", {self.signals_added} given photo signals" if self.signals_added else "")
            + f" ({self.encoder}, {self.seconds:.1f} s)"
        )


@dataclass
class Batch:
    """One batch of files, prepared: what to embed, what only changed its mtime, what to drop."""

    todo: list[tuple[Path, os.stat_result, LoadedImage, str, Any]] = field(default_factory=list)  # + thumb, signals
    backfill: list[tuple[int, Any]] = field(default_factory=list)  # (id, signals): indexed before signals existed
    touch: list[tuple[int, int, int]] = field(default_factory=list)  # (id, size, mtime_ns): same bytes
    skipped: list[Skipped] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)  # indexed paths that are no longer readable images
    unchanged: int = 0


def prepare(
    paths: list[Path],
    known: dict[str, Any],
    index_folder: Path,
    signals: Callable[[Path, LoadedImage], Any] | None = None,
    needs_signals: frozenset[str] = frozenset(),
) -> Batch:
    """Stat, read, hash, decode and thumbnail `paths`; `known` maps indexed paths to their rows.
    Unchanged files (same size and mtime, or same bytes) are not decoded again, unless their row
    has no photo signals yet (`needs_signals`): then `signals(path, image)` fills them in."""
    batch = Batch()
    for p in paths:
        try:
            st = p.stat()
        except OSError as exc:
            batch.skipped.append(Skipped(str(p), f"{p.name}: cannot read ({exc.strerror or exc})"))
            continue
        row = known.get(str(p))
        backfill = signals is not None and str(p) in needs_signals
        if row is not None and row["size"] == st.st_size and row["mtime_ns"] == st.st_mtime_ns and not backfill:
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
            if backfill:
                batch.backfill.append((row["id"], signals(p, loaded)))
            continue
        sig = signals(p, loaded) if signals is not None else None
        batch.todo.append((p, st, loaded, thumbnail(loaded, index_folder), sig))
    return batch


def thumbnail(li: LoadedImage, index_folder: Path) -> str:
    """Cached by content hash, inside the index folder; returns the path relative to it."""
    rel = f"thumbs/{li.sha256[:2]}/{li.sha256}.jpg"
    target = index_folder / rel
    if not target.exists():
        im = li.image.copy()
        im.thumbnail((THUMB_SIZE, THUMB_SIZE))

        def write(fh: Any) -> None:
            im.save(fh, "JPEG", quality=85)

        atomic_writer(target, write)
    return rel


def drop_orphan_thumbnails(index_folder: Path, live: set[str]) -> None:
    """Delete cached thumbnails no row refers to (`live`: paths relative to the index folder)."""
    for f in (index_folder / "thumbs").glob("*/*.jpg"):
        if f"thumbs/{f.parent.name}/{f.name}" not in live:
            try:
                f.unlink()
            except OSError:
                pass


def walk(root: Path, recursive: bool) -> tuple[list[Path], int]:
    """Image files under `root` (sorted, hidden folders and our own index folders skipped), and how
    many other files were seen."""
    files: list[Path] = []
    ignored = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and not _is_index(Path(dirpath, d)))
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


def _is_index(folder: Path) -> bool:
    return (folder / "manifest.json").exists() and (folder / "index.sqlite").exists()


def progress_bar(total: int, show: bool) -> Any:
    if not show or total == 0:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="img", desc="indexing", leave=False)
