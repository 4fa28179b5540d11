"""Photo indexing on Ray: tasks read, hash, decode, thumbnail and extract the signals of each batch;
actors (each loading the image encoder once) encode it; this process commits, in order.

    with ImageIndex.open("photos.idx") as idx:
        idx.index_folder("~/Pictures", runner=RayImageRunner("auto", actors=2))

The index stays the one writer (`ImageIndex._commit`, one transaction per batch): unchanged files
are skipped by size/mtime and content hash exactly as in one process, thumbnails land in the index
folder (which every node must see at the same path), and an interrupted run resumes from what it
committed.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Iterator

from indexes.image_encoders import EncodedImages, encoder_from_spec, encoder_spec
from indexes.image_files import Batch, prepare
from polymodal.errors import InputError

__all__ = ["RayImageRunner"]

_READ_CPUS = 0.25


def _signals(path: Path, loaded: Any, faces: bool, ocr: bool, root: Path | None, state: dict) -> Any:
    from indexes.photo_signals import extract

    if faces and "faces" not in state:  # one face detector per worker process
        from indexes.faces import FaceCounter, available

        state["faces"] = FaceCounter() if available() else None
    return extract(path, loaded, state.get("faces") if faces else None, ocr, root)


_WORKER_STATE: dict = {}


def prepare_batch(
    paths: list[Path], known: dict, folder: Path, opts: tuple[bool, bool, bool], needs: frozenset, root: Path | None
) -> Batch:
    """A Ray task: `indexes.image_files.prepare` with this worker's own signal extractors."""
    enabled, faces, ocr = opts
    signals = functools.partial(_signals, faces=faces, ocr=ocr, root=root, state=_WORKER_STATE) if enabled else None
    return prepare(paths, known, folder, signals, needs)


class EncodeActor:
    """Loads the index's image encoder once; encodes the new images of prepared batches."""

    def __init__(self, spec: dict) -> None:
        os.environ["OMP_NUM_THREADS"] = "1"
        try:
            import torch

            torch.set_num_threads(1)
        except ImportError:
            pass
        self.encoder = encoder_from_spec(spec)

    def encode(self, batch: Batch) -> EncodedImages | None:
        return self.encoder.encode([t[2].image for t in batch.todo]) if batch.todo else None


class RayImageRunner:
    """Prepares and encodes `ImageIndex.add`'s batches on the Ray cluster at `address`
    (polymodal.cluster.connect), keeping at most `window` batches in flight."""

    def __init__(self, address: str | None = "auto", actors: int = 2, window: int | None = None) -> None:
        if actors < 1:
            raise InputError("actors must be at least 1")
        self.address, self.actors, self.window = address, actors, window or 2 * actors + 1

    def run(
        self, index: Any, batches: list[list[Path]], known: dict, needs: frozenset, root: Path | None
    ) -> Iterator[tuple[int, Batch, EncodedImages | None]]:
        from indexes.distributed.ingest import actor_cpus
        from polymodal.cluster import connect

        ray = connect(self.address)
        if not batches:
            return
        opts = (index.signals_enabled, index.faces_enabled, index.ocr_enabled)
        task = ray.remote(num_cpus=_READ_CPUS, max_retries=3)(prepare_batch)
        actor_cls = ray.remote(EncodeActor).options(
            num_cpus=actor_cpus(ray, self.actors, _READ_CPUS), max_restarts=-1, max_task_retries=-1
        )
        spec = encoder_spec(index.encoder)
        pool = [actor_cls.remote(spec) for _ in range(self.actors)]
        inflight: list[tuple[int, Any, Any]] = []

        def submit(i: int) -> None:
            paths = batches[i]
            mine = {str(p): known[str(p)] for p in paths if str(p) in known}
            wants = frozenset(str(p) for p in paths if str(p) in needs)
            prepared = task.remote(paths, mine, index.folder, opts, wants, root)
            inflight.append((len(paths), prepared, pool[i % len(pool)].encode.remote(prepared)))

        try:
            for i in range(min(self.window, len(batches))):
                submit(i)
            nxt = len(inflight)
            while inflight:
                size, prepared, encoded = inflight.pop(0)
                batch, enc = ray.get([prepared, encoded])
                if nxt < len(batches):
                    submit(nxt)
                    nxt += 1
                yield size, batch, enc
        finally:
            for actor in pool:
                ray.kill(actor)
