"""Knowledge-base and image-library handlers: ingest with progress, list, delete, index, search.

Plain functions (no gradio at import), so they are tested without a browser.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from orchestrator.ui.chat import _first
from orchestrator.ui.services import IMAGE_TYPES, AppServices
from polymodal.errors import Cancelled, InputError

log = logging.getLogger("polymodal.app")


# -- knowledge base ------------------------------------------------------------------------------


def doc_types() -> tuple[str, ...]:
    """The file types the knowledge base reads (the upload box accepts only these)."""
    from indexes.readers import READERS

    return tuple(READERS)


def ingest_documents(
    services: AppServices,
    files: list[str] | None,
    folder: str,
    cancel: threading.Event | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> Iterator[tuple[str, list[list[Any]]]]:
    """Yield (status line, per-file rows) as ingestion goes; the last yield is the summary."""
    from indexes.ingest import discover, ingest_paths

    paths: list[str] = []
    rows: list[list[Any]] = []
    for f in files or []:
        try:
            paths.append(str(services.accept_upload(f, doc_types(), "kb")))
        except InputError as exc:
            rows.append([Path(f).name, "skipped", 0, str(exc)])
    folder = (folder or "").strip()
    if folder:
        # discover() resolves each file: one reached through a symlink out of the roots is refused
        found, problems = discover([services.server_folder(folder)])
        rows += [[f.path, f.status, f.chunks, f.reason] for f in problems]
        for f in found:
            if services.within_roots(f):
                paths.append(str(f))
            else:
                rows.append([str(f), "skipped", 0, "outside [app] ingest_roots (reached through a symlink)"])
        if not paths:
            raise InputError(f"no documents of a readable type ({', '.join(doc_types())}) under {folder}")
    if not paths:
        raise InputError("choose files to upload or name a folder")
    cancel = cancel or threading.Event()
    events: "queue.Queue[tuple]" = queue.Queue()

    def on_progress(done: int, total: int, path: str) -> None:
        events.put(("progress", done, total, path))
        if cancel.is_set():
            raise Cancelled("ingestion cancelled; the files already stored are kept")

    def work() -> None:
        try:
            with services.kb_lock:
                report = ingest_paths(
                    services.config.kb_path(),
                    paths,
                    config=services.config,
                    on_progress=on_progress,
                    show_progress=False,
                    batch_chunks=64,
                )
            events.put(("done", report))
        except BaseException as exc:  # noqa: BLE001 - handed to the UI thread
            events.put(("error", exc))

    threading.Thread(target=work, name="app-ingest", daemon=True).start()
    yield f"Reading {len(paths)} path(s)…", rows
    while True:
        item = events.get()
        if item[0] == "progress":
            _, done, total, path = item
            # `done` stays 0 while ingest's tqdm bar is disabled (indexes/ingest.py counts with bar.n),
            # so say what is sure: how many files and which one was stored last.
            line = (
                f"Embedded {done}/{total} files" if done else f"Embedding {total} files"
            ) + f" (last stored: {Path(path).name})"
            if progress is not None and total:
                progress(done / total, line)
            yield line, rows
        elif item[0] == "error":
            raise item[1]
        else:
            report = item[1]
            rows += [[f.path, f.status, f.chunks, f.reason] for f in report.files]
            yield report.summary(), rows
            return


def _open_kb(services: AppServices, read_only: bool = True):
    from indexes.text import TextIndex

    path = services.config.kb_path()
    if not (path / "manifest.json").exists():
        return None
    return TextIndex.open(path, read_only=read_only, embedder_backend=services.config.embedder.backend)


def list_documents(services: AppServices) -> list[list[Any]]:
    kb = _open_kb(services)
    if kb is None:
        return []
    with kb:
        return [
            [d.doc_id, d.type, d.chunks, d.chars, time.strftime("%Y-%m-%d %H:%M", time.localtime(d.added_at))]
            for d in kb.list_documents()
        ]


def delete_documents(services: AppServices, ids: list[str]) -> int:
    if not ids:
        raise InputError("choose documents to delete")
    with services.kb_lock:
        kb = _open_kb(services, read_only=False)
        if kb is None:
            return 0
        with kb:
            n = kb.delete(list(ids))
    # An uploaded document lives only for the knowledge base: its copy goes with it.
    for doc_id in ids:
        p = Path(doc_id)
        if p.is_relative_to(services.uploads / "kb") and p.is_file():
            p.unlink()
    return n


# -- image library ---------------------------------------------------------------------------------


def _image_index(services: AppServices, create: bool = False):
    """The image library's index (indexes.images) for writing, or the shared reader; one-line
    reasons when it is unavailable. The reader is the image_search tool's own index when the agent
    has one, so the encoder loads once."""
    try:
        from indexes.images import ImageIndex
    except ModuleNotFoundError as exc:
        raise InputError(f"image search is not available in this install ({exc.name} is missing)") from None
    path = services.config.images_path()
    if create:
        reader = services.image_reader
        if reader is not None:
            return ImageIndex.open(path, reader.encoder, config=services.config.images)
        if (path / "manifest.json").exists():  # the encoder it was built with
            return ImageIndex.open(path, None, config=services.config.images)
        return ImageIndex.open(path, services.config.images.encoder, config=services.config.images)
    if not (path / "manifest.json").exists():
        raise InputError("the image library is empty: index a folder first")
    with services.images_lock:
        if services.image_reader is None:
            from tools.image_search import ImageSearchTool

            tool = next((t for t in services.agent_tools().values() if isinstance(t, ImageSearchTool)), None)
            reader = tool.index if tool is not None else None
            services.image_reader = reader or ImageIndex.open(path, None, config=services.config.images, read_only=True)
        return services.image_reader


def index_images(
    services: AppServices,
    folder: str,
    cancel: threading.Event | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> Iterator[tuple[str, list[list[Any]]]]:
    """Yield (status line, skipped-file rows) as a folder is indexed; the last yield is the summary."""
    folder = (folder or "").strip()
    if not folder:
        raise InputError("name a folder of photos to index")
    p = services.server_folder(folder)
    cancel = cancel or threading.Event()
    events: "queue.Queue[tuple]" = queue.Queue()

    def work() -> None:
        try:
            with services.images_lock:
                with _image_index(services, create=True) as index:  # the reader picks the writes up
                    report = index.index_folder(
                        p,
                        progress=lambda d, t: events.put(("progress", d, t)),
                        cancel=cancel,
                        within=services.ingest_roots,
                    )
            events.put(("done", report))
        except BaseException as exc:  # noqa: BLE001 - handed to the UI thread
            events.put(("error", exc))

    threading.Thread(target=work, name="app-images", daemon=True).start()
    yield f"Indexing {p}…", []
    while True:
        item = events.get()
        if item[0] == "progress":
            line = f"Indexed {item[1]}/{item[2]} images"
            if progress is not None and item[2]:
                progress(item[1] / item[2], line)
            yield line, []
        elif item[0] == "error":
            raise item[1]
        else:
            report = item[1]
            yield report.summary(), [[s.path, "skipped", s.reason] for s in report.skipped]
            return


def search_images(
    services: AppServices,
    text: str,
    image: str | None,
    k: int = 8,
    date_from: str = "",
    date_to: str = "",
    faces: str = "any",
) -> tuple[list[tuple[str, str]], str]:
    """(gallery items, status line) for a text and/or example-image query; `faces`: any | with | without."""
    text = (text or "").strip()
    if not text and not image:
        raise InputError("type what the photo shows or give an example image")
    if image:
        image = str(services.accept_upload(image, IMAGE_TYPES, "queries", by_content=True))
    filters = {"date_from": (date_from or "").strip(), "date_to": (date_to or "").strip()}
    if faces in ("with", "without"):
        filters["has_faces"] = faces == "with"
    idx = _image_index(services)
    hits = idx.search(text, image=image, k=int(k), filters=filters)
    gallery = []
    for h in hits:
        path = _first(h, "path")
        shown = services.servable(path) or services.servable(_first(h, "thumbnail") or path)
        if shown:
            n = getattr(h, "faces", 0)
            bits = (getattr(h, "taken_at", "")[:10], getattr(h, "place", ""), f"{n} face(s)" if n else "")
            about = " · ".join(b for b in bits if b)
            score = float(_first(h, "score") or 0)
            gallery.append((shown, f"{Path(path).name} · score {score:.3f} · {about + ' · ' if about else ''}{path}"))
    encoder = _first(hits[0], "encoder") if hits else ""
    what = " and ".join(x for x in (f"'{text}'" if text else "", "the example image" if image else "") if x)
    understood = idx.understand(text).understood() if text and getattr(idx, "has_signals", False) else {}
    if understood:
        what += " (" + "; ".join(f"{key}: {value}" for key, value in understood.items() if value) + ")"
    return gallery, f"{len(gallery)} photo(s) for {what}" + (f" · encoder {encoder}" if encoder else "")
