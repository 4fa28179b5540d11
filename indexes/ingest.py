"""Ingestion: folders of documents -> a TextIndex, incrementally and without losing stored data.

Each file is read, hashed and compared with what the index holds: unchanged files are skipped,
changed ones replaced (document id = absolute path), and with `sync=True` documents whose file has
gone from an ingested folder are deleted. A file that cannot be read is skipped with a one-line
reason; files read fine are committed in batches, so a failure later in the run keeps them. A new
knowledge base that receives nothing is not created (no empty folder is left behind).
`ingest_documents` takes documents from elsewhere (a LangChain loader: indexes/loaders.py) the same way.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Literal

from indexes.embedders import cjk_ratio
from indexes.readers import READERS, ReadOptions, read_file
from indexes.store import IndexParams
from indexes.text import Document, TextIndex
from polymodal.config import Config
from polymodal.errors import InputError, UnsupportedFile

__all__ = [
    "ingest_paths",
    "ingest_documents",
    "IngestReport",
    "FileResult",
    "discover",
    "choose_embedder",
    "read_options",
    "open_for_ingest",
    "remove_new_entries",
    "sync_deleted",
]

Status = Literal["added", "updated", "unchanged", "skipped", "deleted"]
ProgressFn = Callable[[int, int, str], None]


@dataclass
class FileResult:
    path: str
    status: Status
    chunks: int = 0
    reason: str = ""


@dataclass
class IngestReport:
    kb: str
    embedder: str
    files: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0
    stats: dict[str, float] = field(default_factory=dict)  # on Ray: seconds per stage, counts

    def count(self, status: Status) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def chunks(self) -> int:
        return sum(f.chunks for f in self.files)

    @property
    def ok(self) -> bool:
        """True when no file had to be skipped."""
        return self.count("skipped") == 0

    def summary(self) -> str:
        parts = [f"{self.count(s)} {s}" for s in ("added", "updated", "unchanged", "deleted", "skipped")]
        return f"{len(self.files)} files: {', '.join(parts)}; {self.chunks} chunks in {self.seconds:.1f}s -> {self.kb}"


def discover(paths: Iterable[str | Path]) -> tuple[list[Path], list[FileResult]]:
    """Files under `paths` with a supported suffix (recursively; hidden entries skipped), and
    a skip record for each path that does not exist or cannot be listed."""
    files: list[Path] = []
    problems: list[FileResult] = []
    for raw in paths:
        p = Path(raw).expanduser()
        if not p.exists():
            problems.append(FileResult(str(p), "skipped", reason="no such file or folder"))
            continue
        if p.is_file():
            files.append(p.resolve())
            continue

        def onerror(err: OSError) -> None:
            problems.append(FileResult(str(err.filename), "skipped", reason=f"cannot list folder: {err.strerror}"))

        for root, dirs, names in os.walk(p, onerror=onerror):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(names):
                if not name.startswith(".") and Path(name).suffix.lower() in READERS:
                    files.append((Path(root) / name).resolve())
    return list(dict.fromkeys(files)), problems


def choose_embedder(config: Config, sample: str) -> str:
    """The embedder a new knowledge base gets: the configured one, or with "auto" the
    multilingual model when the corpus is mostly CJK, MiniLM otherwise."""
    if config.embedder.model != "auto":
        return config.embedder.model
    return config.embedder.multilingual if cjk_ratio(sample) > 0.3 else config.embedder.english


def _doc_type(path: Path) -> str:
    return path.suffix.lower().lstrip(".")


def read_options(config: Config, show_progress: bool = False) -> ReadOptions:
    kb = config.kb
    return ReadOptions(kb.max_file_mb * 2**20, kb.json_text_field, kb.ocr, kb.ocr_languages, show_progress)


def _read_all(files: list[Path], options: ReadOptions, show_progress: bool) -> tuple[list[Document], list[FileResult]]:
    """Read every file (cheap next to embedding, except OCR: a bar shows it) into documents."""
    from tqdm import tqdm

    docs: list[Document] = []
    skipped: list[FileResult] = []
    for f in tqdm(files, unit="file", desc="read", disable=not show_progress, file=sys.stderr, leave=False):
        try:
            got = read_file(f, options)
        except UnsupportedFile as exc:
            skipped.append(FileResult(str(f), "skipped", reason=str(exc)))
            continue
        meta = {"reader_notes": got.notes} if got.notes else {}
        docs.append(
            Document(id=str(f), text=got.text, source=str(f), type=_doc_type(f), metadata=meta, marks=got.marks)
        )
    return docs, skipped


def ingest_paths(
    kb: str | Path | TextIndex,
    paths: Iterable[str | Path],
    *,
    config: Config | None = None,
    sync: bool = False,
    tags: list[str] | None = None,
    show_progress: bool | None = None,
    on_progress: ProgressFn | None = None,
    batch_chunks: int = 1024,
) -> IngestReport:
    """Ingest files and folders into the knowledge base `kb` (a folder or an open TextIndex)."""
    config = config or Config()
    started = time.perf_counter()
    paths = list(paths)
    if not paths:
        raise InputError("nothing to ingest: give at least one file or folder")
    files, problems = discover(paths)
    if show_progress is None:
        show_progress = sys.stderr.isatty()
    docs, skipped = _read_all(files, read_options(config, show_progress), show_progress)
    for d in docs:
        d.tags = list(tags or [])
    report = ingest_documents(
        kb,
        docs,
        config=config,
        show_progress=show_progress,
        on_progress=on_progress,
        batch_chunks=batch_chunks,
        sync_roots=paths if sync else None,
        present={str(f) for f in files},
    )
    report.files = problems + skipped + report.files
    report.seconds = time.perf_counter() - started
    return report


def ingest_documents(
    kb: str | Path | TextIndex,
    docs: Iterable[Document],
    *,
    config: Config | None = None,
    show_progress: bool | None = None,
    on_progress: ProgressFn | None = None,
    batch_chunks: int = 1024,
    sync_roots: list[str | Path] | None = None,
    present: set[str] | None = None,
) -> IngestReport:
    """Add or replace documents in `kb` (unchanged ones, by content hash, are left alone); a new
    knowledge base picks its embedder from their text. With `sync_roots`, stored documents under
    those folders whose id is not in `present` are deleted."""
    config = config or Config()
    started = time.perf_counter()
    docs = list(docs)
    own = isinstance(kb, (str, Path))  # else an open index: a TextIndex or a ShardedTextIndex
    if own:
        opened = open_for_ingest(kb, config, "".join(d.text[:2000] for d in docs[:50]), bool(docs), show_progress)
        if opened is None:  # nothing to add: no empty KB is created
            return IngestReport(str(Path(kb).expanduser()), choose_embedder(config, ""), [], 0.0)
        index, new_kb, before = opened
    else:
        index, new_kb, before = kb, False, None
    committed = 0

    def progress(done: int, total: int, path: str) -> None:
        nonlocal committed
        committed = done
        if on_progress:
            on_progress(done, total, path)

    try:
        report = IngestReport(kb=str(index.folder), embedder=index.embedder.name)
        known = index.content_hashes()
        results: list[FileResult] = []
        todo: list[tuple[Path, Document, Status]] = []
        for doc in docs:
            if known.get(doc.id) == doc.content_hash():
                results.append(FileResult(doc.source or doc.id, "unchanged"))
            else:
                todo.append((Path(doc.source or doc.id), doc, "updated" if doc.id in known else "added"))
        results.extend(_write_batches(index, todo, batch_chunks, show_progress, progress))
        if sync_roots:
            results.extend(sync_deleted(index, sync_roots, present or set()))
        report.files = results
        report.seconds = time.perf_counter() - started
        return report
    finally:
        if own:
            index.close()
            if new_kb and not committed:  # the first write failed: leave no empty KB behind
                remove_new_entries(index.folder, before)


def open_for_ingest(
    kb: str | Path, config: Config, sample: str, have_docs: bool, show_progress: bool | None
) -> tuple[TextIndex, bool, set[str] | None] | None:
    """Open the knowledge base at `kb` for writing, creating it (its embedder chosen from `sample`)
    when absent and `have_docs`. Returns (index, created, the folder's entries before) or None
    when there is nothing to create."""
    kb_path = Path(kb).expanduser()
    params = IndexParams.from_config(config.kb)
    if (kb_path / "manifest.json").exists():
        index = TextIndex.open(
            kb_path, embedder_backend=config.embedder.backend, params=params, show_progress=show_progress
        )
        return index, False, None
    if not have_docs:
        return None
    before = set(os.listdir(kb_path)) if kb_path.is_dir() else None
    index = TextIndex.open(
        kb_path,
        choose_embedder(config, sample),
        chunk_tokens=config.kb.chunk_tokens,
        chunk_overlap=config.kb.chunk_overlap,
        embedder_backend=config.embedder.backend,
        params=params,
    )
    return index, True, before


def _write_batches(
    index: TextIndex,
    todo: list[tuple[Path, Document, Status]],
    batch_chunks: int,
    show_progress: bool | None,
    on_progress: ProgressFn | None,
) -> list[FileResult]:
    from tqdm import tqdm

    if show_progress is None:
        show_progress = sys.stderr.isatty()
    bar = tqdm(total=len(todo), unit="file", desc="ingest", disable=not show_progress, file=sys.stderr)
    results: list[FileResult] = []
    batch: list[tuple[Path, Document, Status]] = []
    est = done = 0

    def flush() -> None:
        nonlocal batch, est, done
        if not batch:
            return
        stored = index.upsert([d for _, d, _ in batch])
        for f, d, status in batch:
            results.append(FileResult(str(f), status, chunks=stored[d.id]))
        bar.update(len(batch))
        done += len(batch)  # bar.n stays 0 when the bar is disabled
        if on_progress:
            on_progress(done, len(todo), str(batch[-1][0]))
        batch, est = [], 0

    for item in todo:
        batch.append(item)
        est += max(1, len(item[1].text) // 400)
        if est >= batch_chunks:
            flush()
    flush()
    bar.close()
    return results


def sync_deleted(index: TextIndex, roots: list[str | Path], present: set[str]) -> list[FileResult]:
    """Delete documents under the ingested folders whose files no longer exist."""
    gone: list[str] = []
    for root in roots:
        p = Path(root).expanduser()
        if not p.is_dir():
            continue
        prefix = str(p.resolve()).rstrip(os.sep) + os.sep
        gone.extend(d for d in index.content_hashes(prefix) if d not in present)
    gone = sorted(set(gone))
    index.delete(gone)
    return [FileResult(d, "deleted") for d in gone]


def remove_new_entries(folder: Path, before: set[str] | None) -> None:
    """Remove what `folder` did not hold `before` (all of it when it did not exist)."""
    import shutil

    if before is None:
        shutil.rmtree(folder, ignore_errors=True)
        return
    for name in set(os.listdir(folder)) - before:
        path = folder / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
