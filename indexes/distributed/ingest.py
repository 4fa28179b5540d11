"""Knowledge-base ingestion on Ray: workers read, chunk and embed; this process commits.

    report = ingest_on_ray("kb/", ["~/docs"], address="auto", actors=2)

The driver (this process) discovers the files and knows what the index holds (content hashes). A
Ray Data pipeline reads each file, skips it when its text is unchanged, chunks and analyses it
(`map_batches` tasks), then embeds the chunks in a pool of actors, each loading its embedder once
with one thread. The driver streams the results into the index with `TextIndex.write_prepared`,
one transaction per batch: SQLite stays the one writer and the truth, so a rerun after a crash
skips every committed document (same content hash) and embeds only the rest. Ray retries a task or
restarts an actor whose worker died; the index only ever sees whole, committed batches.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from indexes.embedders import Embedder
from indexes.ingest import (
    FileResult,
    IngestReport,
    ProgressFn,
    discover,
    open_for_ingest,
    read_options,
    remove_new_entries,
    sync_deleted,
)
from indexes.prepare import Prepared, Preparer, WriteSpec
from indexes.readers import ReadOptions, read_file
from indexes.text import Document
from polymodal.config import Config
from polymodal.errors import InputError, UnsupportedFile

__all__ = ["ingest_on_ray", "actor_cpus"]

EmbedderFactory = Callable[[], Embedder]
_READ_CPUS = 0.25  # what one read/chunk task reserves


def _doc_of(path: Path, options: ReadOptions, tags: list[str]) -> Document:
    got = read_file(path, options)
    meta = {"reader_notes": got.notes} if got.notes else {}
    return Document(
        id=str(path),
        text=got.text,
        source=str(path),
        type=path.suffix.lower().lstrip("."),
        tags=list(tags),
        metadata=meta,
        marks=got.marks,
    )


def _row(path: str, status: str, reason: str = "", payload: str = "", n: int = 0, secs: float = 0.0) -> dict:
    return {"path": path, "status": status, "reason": reason, "payload": payload, "chunks": n, "read_s": secs}


def read_and_chunk(
    batch: dict[str, np.ndarray],
    spec: WriteSpec,
    options: ReadOptions,
    known: dict[str, str],
    tags: list[str],
    factory: EmbedderFactory | None,
) -> dict[str, list]:
    """A Ray Data task: files -> unchanged / skipped (with the reason) / chunked and analysed."""
    preparer = _preparer(spec, factory)
    rows = []
    for path in batch["path"]:
        t0 = time.perf_counter()
        p = Path(str(path))
        try:
            doc = _doc_of(p, options, tags)
        except UnsupportedFile as exc:
            rows.append(_row(str(p), "skipped", reason=str(exc)))
            continue
        if known.get(doc.id) == doc.content_hash():
            rows.append(_row(str(p), "unchanged"))
            continue
        item = preparer.chunk(doc)
        status = "updated" if doc.id in known else "added"
        payload = item.to_row()["payload"]
        rows.append(_row(str(p), status, payload=payload, n=len(item.spans), secs=time.perf_counter() - t0))
    return {k: [r[k] for r in rows] for k in ("path", "status", "reason", "payload", "chunks", "read_s")}


_PREPARERS: dict[tuple, Preparer] = {}


def _preparer(spec: WriteSpec, factory: EmbedderFactory | None, threads: int = 1) -> Preparer:
    """One per worker process (Ray reuses workers): the embedder loads once. A factory arrives as a new
    object in every task, so it is known by its repr (a functools.partial's names its class and arguments)."""
    key = (spec, repr(factory) if factory else None)
    if key not in _PREPARERS:
        _PREPARERS[key] = Preparer(spec, factory() if factory else None, threads=threads)
    return _PREPARERS[key]


class EmbedActor:
    """A Ray Data actor: loads the embedder once (one thread), embeds every chunk of each batch."""

    def __init__(self, spec: WriteSpec, factory: EmbedderFactory | None) -> None:
        os.environ["OMP_NUM_THREADS"] = "1"
        self.spec = spec
        self.preparer = Preparer(spec, factory() if factory else None, threads=1)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        t0 = time.perf_counter()
        out: dict[str, list] = {k: list(batch[k]) for k in ("path", "status", "reason", "payload", "chunks", "read_s")}
        todo = [i for i, s in enumerate(out["status"]) if s in ("added", "updated")]
        items = [Prepared.from_row({"payload": out["payload"][i]}, self.spec.dim) for i in todo]
        self.preparer.embed(items)
        vectors = [b""] * len(out["path"])
        for i, it in zip(todo, items):
            vectors[i] = it.vector_bytes()
        out["vectors"] = vectors
        out["embed_s"] = [time.perf_counter() - t0 if i == 0 else 0.0 for i in range(len(out["path"]))]
        return out


def ingest_on_ray(
    kb: str | Path,
    paths: Iterable[str | Path],
    *,
    address: str | None = "auto",
    config: Config | None = None,
    sync: bool = False,
    tags: list[str] | None = None,
    actors: int = 2,
    files_per_task: int = 16,
    embed_files: int = 64,
    batch_chunks: int = 1024,
    show_progress: bool | None = None,
    on_progress: ProgressFn | None = None,
    embedder_factory: EmbedderFactory | None = None,
) -> IngestReport:
    """Ingest files and folders into the knowledge base `kb` on the Ray cluster at `address`
    (polymodal.cluster.connect). Same result as `indexes.ingest.ingest_paths`; `report.stats` has
    the time per stage. `embedder_factory` builds the workers' embedder (default: the one the
    index names)."""
    from polymodal.cluster import connect

    config = config or Config()
    started = time.perf_counter()
    paths = list(paths)
    if not paths:
        raise InputError("nothing to ingest: give at least one file or folder")
    if min(actors, files_per_task, embed_files) < 1:
        raise InputError("actors, files_per_task and embed_files must be at least 1")
    if show_progress is None:
        show_progress = sys.stderr.isatty()
    ray = connect(address)
    files, problems = discover(paths)
    options = read_options(config)
    opened = open_for_ingest(kb, config, _sample(files, options), bool(files), show_progress)
    if opened is None:
        return IngestReport(str(Path(kb).expanduser()), "", problems, time.perf_counter() - started)
    index, new_kb, before = opened
    committed = 0
    # seconds per stage (read/chunk and embed summed over workers) and counts: report.stats
    stats: dict[str, float] = dict(
        read_chunk_s=0.0, embed_s=0.0, commit_s=0.0, chunks=0, files=len(files), actors=actors
    )
    try:
        known = index.content_hashes()
        spec = index.write_spec()
        per_actor = actor_cpus(ray, actors)
        ctx = ray.data.DataContext.get_current()
        # committed in discovery order, as one process would: the same row ids, so even ties rank alike
        # (a dataset copies the context when it is made)
        ctx.execution_options.preserve_order = True
        ctx.enable_progress_bars = False  # ours counts files
        ctx.print_on_execution_start = False
        ds = ray.data.from_items(
            [{"path": str(f)} for f in files], override_num_blocks=min(1000, -(-len(files) // files_per_task))
        )
        ds = ds.map_batches(
            read_and_chunk,
            batch_size=files_per_task,
            fn_kwargs={
                "spec": spec,
                "options": options,
                "known": known,
                "tags": tags or [],
                "factory": embedder_factory,
            },
            num_cpus=_READ_CPUS,
        )
        ds = ds.map_batches(
            EmbedActor,
            batch_size=max(files_per_task, embed_files),  # large calls: the embedder sorts texts by length
            fn_constructor_kwargs={"spec": spec, "factory": embedder_factory},
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=per_actor,
        )
        results: list[FileResult] = []
        pending: list[tuple[Prepared, str]] = []
        pending_chunks = 0
        from tqdm import tqdm

        bar = tqdm(total=len(files), unit="file", desc="ingest (ray)", disable=not show_progress, file=sys.stderr)

        def flush() -> None:
            nonlocal pending, pending_chunks, committed
            if not pending:
                return
            t0 = time.perf_counter()
            stored = index.write_prepared([it for it, _ in pending])
            stats["commit_s"] += time.perf_counter() - t0
            results.extend(FileResult(it.doc.source or it.doc.id, s, chunks=stored[it.doc.id]) for it, s in pending)
            committed += len(pending)
            if on_progress:
                on_progress(committed, len(files), pending[-1][0].doc.id)
            pending, pending_chunks = [], 0

        seen = 0
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=2):
            for i in range(len(batch["path"])):
                status = str(batch["status"][i])
                stats["read_chunk_s"] += float(batch["read_s"][i])
                stats["embed_s"] += float(batch["embed_s"][i])
                if status in ("added", "updated"):
                    row = {"payload": batch["payload"][i], "vectors": batch["vectors"][i]}
                    pending.append((Prepared.from_row(row, spec.dim), status))
                    pending_chunks += int(batch["chunks"][i])
                    stats["chunks"] += int(batch["chunks"][i])
                else:
                    results.append(FileResult(str(batch["path"][i]), status, reason=str(batch["reason"][i])))
                seen += 1
            bar.update(len(batch["path"]))
            if pending_chunks >= batch_chunks:
                flush()
        flush()
        bar.close()
        if seen != len(files):
            raise InputError(f"the Ray pipeline returned {seen} of {len(files)} files")
        if sync:
            results.extend(sync_deleted(index, paths, {str(f) for f in files}))
        report = IngestReport(kb=str(index.folder), embedder=index.embedder.name, files=problems + results)
        report.seconds = time.perf_counter() - started
        stats["wall_s"] = report.seconds
        report.stats = dict(stats)
        return report
    finally:
        index.close()
        if new_kb and not committed:  # the first write failed: leave no empty KB behind
            remove_new_entries(index.folder, before)


def actor_cpus(ray, actors: int, read_cpus: float = _READ_CPUS) -> float:
    """CPUs each embedding actor reserves: up to one, leaving room for a read task on every node,
    or a cluster the actors fill would never read (the pipeline would wait forever)."""
    nodes = [n["Resources"].get("CPU", 0.0) for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU")]
    if not nodes:
        raise InputError("the Ray cluster has no CPUs")
    per_node = -(-actors // len(nodes))
    return max(0.05, min(1.0, (min(nodes) - read_cpus) / per_node))


def _sample(files: list[Path], options: ReadOptions) -> str:
    """Text of the first readable files, from which a new knowledge base picks its embedder."""
    parts: list[str] = []
    for f in files[:50]:
        try:
            parts.append(read_file(f, options).text[:2000])
        except UnsupportedFile:
            continue
    return "".join(parts)
