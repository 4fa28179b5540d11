"""Large IVF / IVF-PQ builds on Ray: the driver trains the quantizer (same sample and parameters as
the single-process build), Ray actors add id-ordered slices to copies of the trained empty index,
and the driver merges them back in slice order with `faiss.merge_into`.

The trained empty index travels as `faiss.serialize_index` bytes (no pickle), put in the object
store once, and each filled slice comes back the same way. A slice's vectors are added under their
global positions as internal ids, so the merged inverted lists are the ones a single-process build
writes, byte for byte, and calibration then runs unchanged (`VectorTable.rebuild`). Slices are stateless: an actor
that dies is restarted and its slices retried.

    table.params.build_on_ray = True; table.rebuild()    # or:  build_on_ray(table)
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from typing import Any, Callable, Iterable

import numpy as np

from indexes.ann import TRAINED
from polymodal.errors import EmbedderMismatch, StoreError

__all__ = ["build_on_ray", "add_on_ray", "ACTOR_PREFIX"]

log = logging.getLogger(__name__)
ACTOR_PREFIX = "polymodal-ann-build"  # named actors, so an operator (or a test) can find them
_RETRIES = 3


class SliceAdder:
    """`add` fills a copy of the trained empty index with one slice and returns it serialized. It keeps
    no state (the empty index comes with each call, as one object-store object every call shares), so
    Ray can restart it and retry the call on a fresh worker."""

    def __init__(self) -> None:
        import faiss

        faiss.omp_set_num_threads(1)  # one actor per CPU the cluster offers

    def add(self, empty: np.ndarray, first: int, vecs: np.ndarray) -> np.ndarray:
        import faiss

        index = faiss.deserialize_index(empty)
        index.add_with_ids(np.ascontiguousarray(vecs, dtype=np.float32), np.arange(first, first + len(vecs)))
        return faiss.serialize_index(index)


def _check(table: Any) -> int:
    """The stored vector count; a one-line error for a table there is nothing right to build from."""
    n = table.count()
    if n == 0:
        raise StoreError(f"vector table {table.name!r} is empty: there is nothing to build an index from")
    row = table.conn.execute(f"SELECT length(vec) FROM {table.name} WHERE length(vec) != ? LIMIT 1", (4 * table.dim,))
    bad = row.fetchone()
    if bad is not None:
        raise EmbedderMismatch(
            f"vector table {table.name!r} holds {bad[0] // 4}-d vectors but was opened as {table.dim}-d: "
            "rebuild it with the embedder that wrote it"
        )
    return n


def build_on_ray(table: Any, kind: str | None = None, progress: Callable[[int], None] | None = None) -> dict:
    """Rebuild `table` (a `VectorTable`) with its IVF/IVF-PQ vectors added on Ray, then calibrate as
    usual. Other index types are built in this process. Returns what `VectorTable.rebuild` returns."""
    _check(table)
    before = table.params
    table.params = replace(before, build_on_ray=True)
    try:
        out = table.rebuild(kind, progress=progress)
    finally:
        table.params = before
    out["on_ray"] = out["type"] in TRAINED or "ivf_rejected" in (out.get("calibration") or {})
    return out


def add_on_ray(
    index: Any,
    batches: Iterable[tuple[np.ndarray, np.ndarray]],
    progress: Callable[[int], None] | None = None,
    workers: int = 0,
) -> None:
    """Add every (ids, vectors) batch to `index` (a trained, empty `IndexIDMap2` over an IVF or IVF-PQ
    index) on Ray actors, one per cluster CPU unless `workers` says; merged here in batch order."""
    import faiss

    from polymodal.cluster import connect

    ray = connect()  # the cluster this process is on, else RAY_ADDRESS, else a local one
    inner = faiss.downcast_index(index.index)
    if index.ntotal or not isinstance(inner, faiss.IndexIVF):
        raise ValueError("add_on_ray needs a trained, empty IndexIDMap2 over an IVF index")
    workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    remote = ray.remote(num_cpus=1, max_restarts=_RETRIES, max_task_retries=_RETRIES)(SliceAdder)
    empty = ray.put(faiss.serialize_index(inner))
    run = uuid.uuid4().hex[:8]
    actors = [remote.options(name=f"{ACTOR_PREFIX}-{run}-{i}").remote() for i in range(workers)]
    merger = _Merger(index, inner, progress)
    try:
        pending: dict[Any, int] = {}  # result ref -> slice number
        first = 0
        for ids, vecs in batches:
            if not len(ids):
                continue
            while len(pending) >= 2 * workers:  # bound the slices in flight (driver and object store memory)
                _collect(ray, pending, merger)
            ref = actors[merger.slices % workers].add.remote(empty, first, vecs)
            pending[ref] = merger.expect(ids)
            first += len(ids)
        while pending:
            _collect(ray, pending, merger)
        merger.finish()
    finally:
        for actor in actors:
            ray.kill(actor, no_restart=True)


def _collect(ray: Any, pending: dict, merger: "_Merger") -> None:
    done, _ = ray.wait(list(pending), num_returns=1)
    for ref in done:
        merger.arrived(pending.pop(ref), ray.get(ref))


class _Merger:
    """Merges filled slices into the driver's index strictly in slice order (a slice that arrives
    early waits), so internal ids and inverted lists come out as a single-process build leaves them."""

    def __init__(self, index: Any, inner: Any, progress: Callable[[int], None] | None) -> None:
        self.index, self.inner, self.progress = index, inner, progress
        self.ids: list[np.ndarray] = []  # external ids, per slice
        self.early: dict[int, np.ndarray] = {}
        self.next = 0

    @property
    def slices(self) -> int:
        return len(self.ids)

    def expect(self, ids: np.ndarray) -> int:
        self.ids.append(np.asarray(ids, dtype=np.int64))
        return len(self.ids) - 1

    def arrived(self, number: int, blob: np.ndarray) -> None:
        import faiss

        self.early[number] = blob
        while self.next in self.early:
            part = faiss.deserialize_index(self.early.pop(self.next))
            faiss.merge_into(self.inner, part, False)  # internal ids are already global positions
            self.next += 1
            if self.progress is not None:
                self.progress(int(self.inner.ntotal))
            log.info("IVF build on Ray: %d vectors merged (%d slices)", self.inner.ntotal, self.next)

    def finish(self) -> None:
        import faiss

        ids = np.concatenate(self.ids) if self.ids else np.zeros(0, dtype=np.int64)
        if self.next != len(self.ids) or len(ids) != self.inner.ntotal:
            raise StoreError(f"IVF build on Ray: merged {self.inner.ntotal} vectors of {len(ids)}")
        self.index.id_map.resize(len(ids))
        faiss.copy_array_to_vector(ids, self.index.id_map)
        self.index.ntotal = self.inner.ntotal
        self.index.construct_rev_map()
