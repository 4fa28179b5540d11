"""VectorTable: one named set of vectors, stored in SQLite (the truth) and searched through FAISS
(a rebuildable view). Every index kind keeps its vectors in one or more of these.

Vectors are written to SQLite (float32 blobs) in the same transaction as the rows they belong to;
the FAISS file is saved atomically under a generation number. On open, a FAISS file whose
generation differs from SQLite's (a crash between commit and save) is repaired by an id diff:
missing vectors are added from SQLite, stale ones removed. So a kill -9 at any moment leaves the
table at its last committed transaction. Which FAISS index type, and its calibrated search knobs,
come from indexes/ann.py; they are kept in the FAISS pointer file so every reader searches alike.
Types without removal (HNSW, IVF, IVF-PQ) keep deleted vectors as tombstones that searches skip;
the table rebuilds when they exceed 20%.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from indexes.ann import (
    MIN_TRAIN,
    TRAINED,
    ExactTop10,
    IndexParams,
    apply_search,
    calibrate,
    calibration_grid,
    calibration_sample,
    default_search,
    new_faiss_index,
    search_parameters,
)
from polymodal.fsutil import atomic_write_json, atomic_writer

__all__ = ["VectorTable", "IndexParams", "connect_sqlite"]


def connect_sqlite(path: Path, read_only: bool = False) -> sqlite3.Connection:
    """A SQLite connection in WAL mode, foreign keys on, usable from several threads (guarded by callers)."""
    if read_only:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    else:
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.row_factory = sqlite3.Row
    return conn


class VectorTable:
    """Vectors keyed by stable int64 ids: float32 copies in SQLite table `name` (written inside the
    owner's transaction), searched through a FAISS index saved as `<name>.<generation>.faiss`."""

    def __init__(
        self,
        folder: Path,
        conn: sqlite3.Connection,
        dim: int,
        name: str = "vectors",
        params: IndexParams | None = None,
        read_only: bool = False,
    ) -> None:
        self.folder = Path(folder)
        self.conn = conn
        self.dim = dim
        self.name = name
        self.params = params or IndexParams()
        self.read_only = read_only
        self._lock = threading.RLock()
        self._index = None
        self._type = "flat"
        self._live: tuple[int, int] | None = None  # (generation, live vector count)
        self._search: dict = {}  # nprobe / efSearch (and nlist) the index is searched with
        self._calibration: dict | None = None  # what the build measured; kept in the pointer file
        if not read_only:
            conn.execute(f"CREATE TABLE IF NOT EXISTS {name} (id INTEGER PRIMARY KEY, vec BLOB NOT NULL)")
            conn.execute("CREATE TABLE IF NOT EXISTS store_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)")

    # -- generation bookkeeping --------------------------------------------------------------
    def _gen_key(self) -> str:
        return f"gen:{self.name}"

    def sqlite_generation(self) -> int:
        row = self.conn.execute("SELECT value FROM store_state WHERE key=?", (self._gen_key(),)).fetchone()
        return int(row[0]) if row else 0

    def bump_generation(self) -> None:
        """Call inside the writer's transaction."""
        self.conn.execute(
            "INSERT INTO store_state(key, value) VALUES(?, '1') "
            "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
            (self._gen_key(),),
        )

    @property
    def _pointer(self) -> Path:
        return self.folder / f"{self.name}.faiss.json"

    # -- SQLite side (call inside the owner's transaction) -----------------------------------
    def write(self, ids: Sequence[int], vecs: np.ndarray) -> None:
        vecs = np.ascontiguousarray(vecs, dtype=np.float32)
        if vecs.ndim != 2 or vecs.shape[1] != self.dim:
            raise ValueError(f"expected vectors of shape (n, {self.dim}), got {vecs.shape}")
        self.conn.executemany(
            f"INSERT OR REPLACE INTO {self.name}(id, vec) VALUES(?, ?)",
            ((int(i), v.tobytes()) for i, v in zip(ids, vecs)),
        )

    def erase(self, ids: Iterable[int]) -> None:
        self.conn.executemany(f"DELETE FROM {self.name} WHERE id=?", ((int(i),) for i in ids))

    def vectors(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        out: dict[int, np.ndarray] = {}
        ids = [int(i) for i in ids]
        for start in range(0, len(ids), 900):
            part = ids[start : start + 900]
            q = f"SELECT id, vec FROM {self.name} WHERE id IN ({','.join('?' * len(part))})"
            for row in self.conn.execute(q, part):
                out[row[0]] = np.frombuffer(row[1], dtype=np.float32)
        return out

    def count(self) -> int:
        return int(self.conn.execute(f"SELECT COUNT(*) FROM {self.name}").fetchone()[0])

    def ids(self) -> np.ndarray:
        """Every stored id, ascending."""
        return np.fromiter((r[0] for r in self.conn.execute(f"SELECT id FROM {self.name} ORDER BY id")), dtype=np.int64)

    def _iter_vectors(
        self, ids: np.ndarray | None = None, batch: int = 20_000
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        if ids is None:
            cur = self.conn.execute(f"SELECT id, vec FROM {self.name} ORDER BY id")
            while True:
                rows = cur.fetchmany(batch)
                if not rows:
                    return
                yield (
                    np.array([r[0] for r in rows], dtype=np.int64),
                    np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), self.dim),
                )
        else:
            for s in range(0, len(ids), batch):
                part = ids[s : s + batch]
                got = self.vectors(part)
                keep = np.array([i for i in part if int(i) in got], dtype=np.int64)
                if len(keep):
                    yield keep, np.stack([got[int(i)] for i in keep])

    # -- FAISS side ----------------------------------------------------------------------------
    def _new_index(self, kind: str, train: np.ndarray | None = None, n_total: int = 0):
        return new_faiss_index(kind, self.dim, self.params, train, n_total)

    def _set_search(self, search: dict) -> None:
        self._search = search
        apply_search(self._index, search)

    @property
    def index_type(self) -> str:
        return self._type

    @property
    def ntotal(self) -> int:
        return 0 if self._index is None else int(self._index.ntotal)

    def load(self) -> dict:
        """Load the saved FAISS file; repair it against SQLite. Returns what repair did."""
        import faiss

        with self._lock:
            info = {"loaded": False, "added": 0, "removed": 0, "rebuilt": False}
            pointer = None
            if self._pointer.exists():
                try:
                    pointer = json.loads(self._pointer.read_text())
                except (OSError, ValueError):
                    pointer = None
            if pointer and (self.folder / pointer["file"]).exists():
                path = str(self.folder / pointer["file"])
                flags = faiss.IO_FLAG_MMAP if self.read_only else 0
                try:
                    self._index = faiss.read_index(path, flags)
                except RuntimeError:
                    self._index = faiss.read_index(path)
                self._type = pointer.get("type", "flat")
                self._set_search({**default_search(self._type, self._index, self.params), **pointer.get("search", {})})
                self._calibration = pointer.get("calibration")
                info["loaded"] = True
                if pointer.get("generation") == self.sqlite_generation():
                    return info
            if self.read_only and self._index is None:  # a reader builds no ANN index: exact search in memory
                self._index = self._new_index("flat")
                self._add_ids_from_sqlite(self.ids())
                return info
            info.update(self.repair())  # a reader repairs in memory only: save() never runs read-only
            return info

    def repair(self) -> dict:
        """Make FAISS hold exactly the vectors SQLite holds."""
        with self._lock:
            want = self.ids()
            if self._index is None:
                return {"rebuilt": True, **self.rebuild()}
            have = self.faiss_ids()
            missing = np.setdiff1d(want, have, assume_unique=True)
            stale = np.setdiff1d(have, want, assume_unique=True)
            if len(stale) and not self._remove(stale):
                return {"rebuilt": True, **self.rebuild()}
            self._add_ids_from_sqlite(missing)
            return {"added": int(len(missing)), "removed": int(len(stale))}

    def faiss_ids(self) -> np.ndarray:
        import faiss

        if self._index is None or self._index.ntotal == 0:
            return np.zeros(0, dtype=np.int64)
        return np.sort(faiss.vector_to_array(self._index.id_map).astype(np.int64))

    def _add_ids_from_sqlite(self, ids: np.ndarray) -> None:
        for part_ids, vecs in self._iter_vectors(ids if len(ids) != self.count() else None):
            self._index.add_with_ids(vecs, part_ids)

    def rebuild(self, kind: str | None = None, progress: Callable[[int], None] | None = None) -> dict:
        """Build a fresh FAISS index of the right type from the SQLite vectors, and calibrate it.
        `progress(vectors added)` is called as the build goes."""
        with self._lock:
            n = self.count()
            kind = kind or self.params.buildable(n)
            if kind in TRAINED and n < MIN_TRAIN:  # an explicit kind, but too few vectors to train on
                kind = "flat"
            all_ids = self.ids() if kind != "flat" else None  # read once: sample and training
            sample = calibration_sample(all_ids, self.params, self.vectors) if all_ids is not None else None
            truth = self._build(kind, n, sample, all_ids=all_ids, progress=progress)
            if sample is not None:
                self._calibrate(sample, truth, n)
                cal = self._calibration
                too_wide = kind == "ivf" and (
                    cal["recall@10"] < self.params.target_recall
                    or cal["nprobe"] / cal["nlist"] > self.params.ivf_max_scan
                )
                if too_wide and self.params.index_type == "auto":
                    # IVF would scan too much of this collection to reach the target: a graph it is.
                    kind = "hnsw"
                    self._build(kind, n, sample, truth=False, all_ids=all_ids, progress=progress)
                    self._calibrate(sample, truth, n)
                    self._calibration["ivf_rejected"] = cal
                self._index.add_with_ids(sample[1], sample[0])
            return {"added": n, "removed": 0, "type": kind, "calibration": self._calibration}

    def _build(
        self,
        kind: str,
        n: int,
        sample: tuple[np.ndarray, np.ndarray] | None,
        truth: bool = True,
        all_ids: np.ndarray | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray | None:
        """Stream the SQLite vectors into a new index. With a calibration sample, its vectors are held
        out (the caller adds them after calibrating, so they are held-out queries, as a user's are)
        and their exact top-10 among the rest is returned from the same pass: no second read."""
        train = None
        if kind in TRAINED:
            ids = self.ids() if all_ids is None else all_ids
            take = np.random.default_rng(0).choice(len(ids), size=min(len(ids), 200_000), replace=False)
            train = np.stack(list(self.vectors(np.sort(ids[take])).values()))
        self._index, self._type = self._new_index(kind, train, n), kind
        self._set_search(default_search(kind, self._index, self.params))
        self._calibration = None
        exact = ExactTop10(sample[1]) if sample is not None and truth else None
        on_ray = kind in TRAINED and self.params.build_on_ray
        batches = self._batches(sample[0] if sample is not None else None, exact, on_ray)
        if on_ray:  # the same vectors in the same order, added on Ray actors and merged here
            from indexes.distributed.ann_build import add_on_ray

            add_on_ray(self._index, batches, progress=progress)
        else:
            for ids, vecs in batches:
                self._index.add_with_ids(vecs, ids)
                if progress is not None:
                    progress(int(self._index.ntotal))
        return exact.ids if exact is not None else None

    def _batches(
        self, held_out: np.ndarray | None, exact: ExactTop10 | None, on_ray: bool = False
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The stored vectors in id order less the held-out ones, fed to `exact` on the way."""
        for ids, vecs in self._iter_vectors(batch=self.params.ray_slice_rows if on_ray else 20_000):
            if held_out is not None:
                keep = ~np.isin(ids, held_out)
                ids, vecs = ids[keep], vecs[keep]
            if exact is not None:
                exact.feed(ids, vecs)
            yield ids, vecs

    def _calibrate(self, sample: tuple[np.ndarray, np.ndarray], truth: np.ndarray, n: int) -> None:
        """Keep the smallest knobs reaching the recall target on the held-out sample."""

        def search_with(knobs: dict) -> np.ndarray:
            self._set_search({**self._search, **knobs})
            return self.search(sample[1], 10)[1]

        grid = calibration_grid(self._type, self.params, self._search.get("nlist", 0))
        knobs, recall = calibrate(grid, search_with, truth, self.params.target_recall)
        self._set_search({**self._search, **knobs})
        self._calibration = {
            **self._search,
            "recall@10": round(recall, 4),
            "target": self.params.target_recall,
            "queries": int(len(sample[0])),
            "vectors": int(n),
            "type": self._type,
        }

    def _remove(self, ids: np.ndarray) -> bool:
        """Remove from FAISS where the index type supports it; False means tombstones stay."""
        import faiss

        if self._type != "flat":
            return True  # tombstones: searches skip ids missing from SQLite
        self._index.remove_ids(faiss.IDSelectorBatch(np.asarray(ids, dtype=np.int64)))
        return True

    def add(self, ids: Sequence[int], vecs: np.ndarray) -> None:
        """After the owner's commit: add to FAISS (which is in memory; save() persists)."""
        with self._lock:
            if self._index is None:
                self._index = self._new_index("flat")
                self._type, self._search = "flat", {}
            # Owners never reuse ids (SQLite AUTOINCREMENT), so an add never shadows a live id.
            ids_arr = np.asarray(ids, dtype=np.int64)
            self._index.add_with_ids(np.ascontiguousarray(vecs, dtype=np.float32), ids_arr)

    def remove(self, ids: Sequence[int]) -> None:
        with self._lock:
            if self._index is not None and len(ids):
                self._remove(np.asarray(ids, dtype=np.int64))

    def tombstones(self) -> int:
        """Deleted vectors FAISS still holds. Flat indexes remove for real; otherwise the live count
        is cached per SQLite generation (COUNT(*) over the blobs costs ~400 ms at 100k vectors)."""
        if self._type == "flat":
            return 0
        gen = self.sqlite_generation()
        if self._live is None or self._live[0] != gen:
            self._live = (gen, self.count())
        return max(0, self.ntotal - self._live[1])

    def _needs_rebuild(self, n: int) -> bool:
        if self._index is None:
            return True
        wanted = self.params.buildable(n)
        allowed = {wanted, "hnsw"} if wanted == "ivf" and self.params.index_type == "auto" else {wanted}
        cal = self._calibration
        return (
            self._type not in allowed
            or self.tombstones() > 0.2 * max(n, 1)
            or (self._type != "flat" and cal is not None and n > 2 * cal["vectors"])
        )

    @property
    def calibration(self) -> dict | None:
        """What the last build measured: knob values, recall@10 on stored vectors, target."""
        return self._calibration

    def save(self) -> Path | None:
        """Persist FAISS atomically under the current SQLite generation; rebuild first if the
        collection outgrew its index type or its calibration (doubled since), or tombstones exceed 20%."""
        import faiss

        with self._lock:
            if self.read_only:
                return None
            if self._needs_rebuild(self.count()):
                self.rebuild()
            gen = self.sqlite_generation()
            fname = f"{self.name}.{gen}.faiss"
            atomic_writer(self.folder / fname, lambda fh: fh.write(faiss.serialize_index(self._index).tobytes()))
            old = None
            if self._pointer.exists():
                try:
                    old = json.loads(self._pointer.read_text()).get("file")
                except (OSError, ValueError):
                    old = None
            atomic_write_json(
                self._pointer,
                {
                    "file": fname,
                    "generation": gen,
                    "type": self._type,
                    "count": int(self._index.ntotal),
                    "dim": self.dim,
                    "search": self._search,
                    "calibration": self._calibration,
                },
            )
            if old and old != fname:
                try:
                    os.unlink(self.folder / old)
                except OSError:
                    pass
            return self.folder / fname

    # -- search ----------------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) per query; `allowed` restricts to those ids. Ids are -1 where fewer exist.
        Tombstoned ids may appear: owners drop ids they no longer hold (see `over_fetch`)."""
        import faiss

        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        with self._lock:
            if self._index is None or self._index.ntotal == 0:
                return np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
            fetch = k
            if self._type == "ivfpq":
                fetch = k * int(self._search.get("rerank", 10))
            fetch = min(fetch + self.tombstones(), int(self._index.ntotal))
            params = None
            if allowed is not None:
                sel = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
                params = search_parameters(self._type, self._search, sel)
            # One query gains nothing from OpenMP, and on busy cores the thread hand-off costs
            # ~20 ms (0.9 ms single-threaded). The OpenMP thread count is per calling thread.
            before = faiss.omp_get_max_threads()
            if len(q) == 1:
                faiss.omp_set_num_threads(1)
            try:
                D, I = self._index.search(q, fetch, params=params) if params else self._index.search(q, fetch)
            finally:
                faiss.omp_set_num_threads(before)
        if self._type == "ivfpq":
            D, I = self._rerank(q, I, k)
        return D, I

    def _rerank(self, q: np.ndarray, I: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact inner products for IVF-PQ candidates, from the float vectors in SQLite."""
        outD = np.full((len(q), k), -np.inf, dtype=np.float32)
        outI = np.full((len(q), k), -1, dtype=np.int64)
        for row, cand in enumerate(I):
            cand = cand[cand >= 0]
            got = self.vectors(cand)
            ids = np.array([c for c in cand if int(c) in got], dtype=np.int64)
            if not len(ids):
                continue
            scores = np.stack([got[int(c)] for c in ids]) @ q[row]
            order = np.argsort(-scores)[:k]
            outD[row, : len(order)] = scores[order]
            outI[row, : len(order)] = ids[order]
        return outD, outI
